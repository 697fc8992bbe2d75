#!/usr/bin/env bash
# The notebook (notebooks/ibu_classifier.ipynb), executed headless against a fresh stack started
# with `make run` (test/stack.sh): every cell must run, and its asserts check the data, the
# cross-validation, scikit-learn's baseline and the enrichment of arriving beers.  The committed
# notebook must keep its outputs, so that a reader sees the plots without running it.
# Run by test/run.sh.
set -uo pipefail
ROOT=${BREWML_ROOT:?run me from test/run.sh}
WORK=${BREWML_WORK:?run me from test/run.sh}
NB=$ROOT/notebooks/ibu_classifier.ipynb
n=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
notok() { n=$((n + 1)); echo "not ok $n - $1"; [ -n "${2:-}" ] && sed 's/^/# /' <<<"$2" | tail -n 40; }
. "$ROOT/test/stack.sh"
trap stack_down EXIT

# The notebook's own kernel and libraries are Debian's: /usr/bin/python3, whatever else is on PATH.
PY=/usr/bin/python3
# summary FILE: code cells, cells with outputs, error outputs, images
summary() {
  "$PY" - "$1" <<'PY'
import json, sys
cells = [c for c in json.load(open(sys.argv[1]))["cells"] if c["cell_type"] == "code"]
outputs = [o for c in cells for o in c.get("outputs", [])]
print(len(cells), sum(1 for c in cells if c.get("outputs")),
      sum(1 for o in outputs if o["output_type"] == "error"),
      sum(1 for o in outputs if any(k in o.get("data", {}) for k in ("image/png", "image/svg+xml"))))
PY
}

read -r cells with_out errors images < <(summary "$NB")
if [ "$cells" -gt 0 ] && [ "$with_out" = "$cells" ] && [ "$errors" = 0 ] && [ "$images" -ge 4 ]; then
  ok "the committed notebook keeps its outputs: $cells code cells, all with output, $images plots, no error"
else
  notok "the committed notebook keeps its outputs" "$cells code cells, $with_out with output, $errors errors, $images plots"
fi

if ! stack_up notebook 2; then
  notok "make run starts a fresh stack for the notebook" "$(tail -n 30 "$STACK_OUT")"
  exit 1
fi
# execute AS: the notebook run headless, its output in $WORK; nbconvert fails if a cell fails
execute() {
  local out=$WORK/ibu_classifier-$1.ipynb started=$SECONDS log
  if log=$(cd "$ROOT/notebooks" && "$PY" -m nbconvert --to notebook --execute \
             --ExecutePreprocessor.timeout=600 --output "$out" ibu_classifier.ipynb 2>&1); then
    read -r cells with_out errors images < <(summary "$out")
    if [ "$images" -ge 4 ] && [ "$errors" = 0 ]; then
      ok "the notebook runs headless $2, every cell, in $((SECONDS - started)) s ($images plots)"
    else
      notok "the notebook runs headless $2" "$errors errors, $images plots"
    fi
  else
    notok "the notebook runs headless $2, every cell" "$(grep -v 'Debugger\|frozen\|Debugging' <<<"$log")"
  fi
}
check_sql() { [ "$(psql -X -qtAc "$2")" = t ] && ok "$1" || notok "$1" "$(psql -X -c "$2" 2>&1)"; }
execute first "against a fresh stack"
check_sql "after it, the stack has the catalogue and a deployed IBU model that scored every beer" \
  "SELECT (SELECT count(*) = 325 FROM brewml.cleaned_beers)
      AND EXISTS (SELECT FROM brewml.deployments WHERE name = 'ibu')
      AND (SELECT count(*) = 0 FROM brewml.cleaned_beers c, brewml.deployments d
            WHERE d.name = 'ibu' AND c.ibu_model_id IS DISTINCT FROM d.model_id)"
# make notebook on a stack that already ran it: a second version, the same checks
execute again "a second time on the same stack (as make notebook does)"
echo "1..$n"

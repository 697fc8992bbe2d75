#!/usr/bin/env bash
# The synthetic collects.csv has the real file's shape, and the in-database
# refactor of draft.py answers exactly what draft.py's algorithm answers.
# Runs against the temporary cluster of test/run.sh (PG* variables set).
set -uo pipefail
ROOT=${BREWML_ROOT:?run me from test/run.sh}
WORK=${BREWML_WORK:?run me from test/run.sh}
n=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
notok() { n=$((n + 1)); echo "not ok $n - $1"; [ -n "${2:-}" ] && sed 's/^/# /' <<<"$2"; }
check() { local desc=$1; shift; local out; if out=$("$@" 2>&1); then ok "$desc"; else notok "$desc" "$out"; fi; }

csv=$WORK/collects.csv
"$ROOT/test/gen-collects" -o "$csv" && chmod 644 "$csv"
check "gen-collects writes the default 33,901 rows" test "$(wc -l <"$csv")" -eq 33902
check "the same seed gives the same bytes" \
  cmp -s "$csv" <("$ROOT/test/gen-collects")
check "another seed gives another file" \
  bash -c "! cmp -s '$csv' <('$ROOT/test/gen-collects' -s 43)"
check "gen-collects rejects a bad row count with exit 2" \
  bash -c "'$ROOT/test/gen-collects' -n abc >/dev/null 2>&1; test \$? -eq 2"
check "the file has the shape of collects.csv" python3 "$ROOT/test/integration/collects_shape.py" "$csv"

# Load it, fit all sensors and columns, and compare with draft.py's algorithm.
check "brewml.load_readings loads every row" \
  test "$(psql -X -qtA -c "SELECT brewml.load_readings('$csv')")" = 33901
check "brewml.fit_readings fits 10 sensors x 6 columns" \
  test "$(psql -X -qtA -c "SELECT brewml.fit_readings()")" = 60
psql -X -qtA -F, -c "SELECT sensor_id, column_name, n, mean, std FROM brewml.column_weights" >"$WORK/weights.csv"
for v in 0.0005 0.0015 0.003 0.08 0.2; do
  psql -X -qtA -F, -c "SELECT * FROM brewml.in_alert($v)" >"$WORK/alert_$v.csv"
done
check "weights and in_alert equal draft.py's, for 5 values" \
  python3 "$ROOT/test/integration/draft_reference.py" "$csv" "$WORK"
echo "1..$n"

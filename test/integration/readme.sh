#!/usr/bin/env bash
# README, tried as a new user would: `make run` on a fresh state folder (test/stack.sh), then
# every sql and sh example of README.md in document order, each output compared with what README
# shows (test/readme_check.py says how), then `make stop`.  Run by test/run.sh.
set -uo pipefail
ROOT=${BREWML_ROOT:?run me from test/run.sh}
WORK=${BREWML_WORK:?run me from test/run.sh}
. "$ROOT/test/stack.sh"
trap stack_down EXIT

if stack_up readme 1; then
  echo "ok 1 - make run starts a fresh stack (PostgreSQL, the local Punk API, PostgREST, nginx)"
else
  echo "not ok 1 - make run starts a fresh stack"
  tail -n 30 "$STACK_OUT" | sed 's/^/# /'
  exit 1
fi
# The examples run in a mirror of the checkout, so that what they write stays out of it.
SCRATCH=$WORK/readme-examples
mkdir -p "$SCRATCH"
for f in "$ROOT"/*; do
  [ "$(basename "$f")" = var ] || ln -s "$f" "$SCRATCH/"
done
[ "$(id -u)" = 0 ] && chown postgres "$SCRATCH"
# README names every object that brewml and the api schema create, and every brewml.* setting.
missing=$(psql -X -qtA -v ON_ERROR_STOP=1 -c "
  SELECT p.proname FROM pg_proc p WHERE p.pronamespace IN ('brewml'::regnamespace, 'api'::regnamespace)
  UNION SELECT c.relname FROM pg_class c
   WHERE c.relnamespace IN ('brewml'::regnamespace, 'api'::regnamespace) AND c.relkind IN ('r', 'v', 'm', 'c')
  UNION SELECT name FROM pg_settings WHERE name LIKE 'brewml.%' ORDER BY 1" 2>&1 |
  while read -r name; do grep -qFw -- "$name" "$ROOT/README.md" || echo "$name"; done)
if [ -z "$missing" ]; then
  echo "ok 2 - README names every function, aggregate, table, view, type and setting of brewml and api"
else
  echo "not ok 2 - README names every function, aggregate, table, view, type and setting of brewml and api"
  echo "# missing: $(echo $missing)"
fi
python3 "$ROOT/test/readme_check.py" "$ROOT/README.md" "$SCRATCH" "$STACK_OUT" 3

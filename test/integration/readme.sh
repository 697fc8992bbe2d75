#!/usr/bin/env bash
# README, tried as a new user would: `make run` on a fresh state folder (test/stack.sh), then
# every sql and sh example of README.md in document order, each output compared with what README
# shows (test/readme_check.py says how), then `make stop`.  Run by test/run.sh.
set -uo pipefail
ROOT=${BREWML_ROOT:?run me from test/run.sh}
WORK=${BREWML_WORK:?run me from test/run.sh}
. "$ROOT/test/stack.sh"
# files the examples write are read by the server, which runs as another user
umask 022
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
python3 "$ROOT/test/readme_check.py" "$ROOT/README.md" "$SCRATCH" "$STACK_OUT" 2

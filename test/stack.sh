# A fresh brewml stack started the way README tells a new user, with `make run`,
# on a state folder and ports of its own, for the tests that follow README
# (test/integration/readme.sh, notebook.sh).  Sourced, not run; needs ROOT and WORK.
#
#   stack_up NAME N   runs make run with its state in $WORK/NAME and ports offset by N,
#                     keeps make run's output in $WORK/NAME.out, sets the stack's PG*
#                     and BREWML_* variables; returns make run's status
#   stack_down        make stop on the same stack

stack_up() {
  export BREWML_VAR=$WORK/$1 BREWML_DB=brewml
  export BREWML_PGPORT=$((5480 + $2)) BREWML_PUNKAPI_PORT=$((8370 + $2)) BREWML_HTTP_PORT=$((8470 + $2))
  export BREWML_POSTGREST_PORT=$((3470 + 2 * $2)) BREWML_POSTGREST_ADMIN_PORT=$((3471 + 2 * $2))
  # what a new user has: make run's own defaults, not the integration cluster's
  unset BREWML_PUNKAPI_URL BREWML_POLL_INTERVAL BREWML_BEERS_PER_POLL PGHOST PGPORT PGUSER PGDATABASE
  STACK_OUT=$WORK/$1.out
  make -C "$ROOT" --no-print-directory run >"$STACK_OUT" 2>&1
  local rc=$?
  eval "$("$ROOT/scripts/cluster.sh" env)"
  export BREWML_URL=http://127.0.0.1:$BREWML_HTTP_PORT
  return $rc
}

stack_down() {
  # only a stack that stack_up started: never the test cluster of test/run.sh
  [ -n "${STACK_OUT:-}" ] || return 0
  make -C "$ROOT" --no-print-directory stop >/dev/null 2>&1
}

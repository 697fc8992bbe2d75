#!/usr/bin/env bash
# Runs every test: pg_regress on a temporary instance that preloads brewml,
# then the integration tests (test/integration/*.sh) against another
# temporary cluster.  Neither touches the cluster of `make run`.
# Ends with the line "N passed, N failed"; exits non-zero if any failed.
# Expects the extension built and installed (make test does both).
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PGBIN=/usr/lib/postgresql/15/bin
PGXS_DIR=$("$PGBIN/pg_config" --pkglibdir)/pgxs
passed=0
failed=0

as_pg() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

WORK=$(mktemp -d /tmp/brewml-test.XXXXXX)
[ "$(id -u)" = 0 ] && chown postgres:postgres "$WORK"
chmod 755 "$WORK"
cleanup() {
  BREWML_VAR=$WORK/cluster BREWML_PGPORT=${BREWML_TEST_PGPORT:-5499} BREWML_DB=brewml_test \
    BREWML_HTTP_PORT=${BREWML_TEST_HTTP_PORT:-8499} "$ROOT/scripts/http.sh" stop >/dev/null 2>&1
  BREWML_VAR=$WORK/cluster "$ROOT/scripts/punkapi.sh" stop >/dev/null 2>&1
  # the fresh make run stacks of readme.sh and notebook.sh (test/stack.sh), if left running
  for s in "$WORK/readme" "$WORK/notebook"; do
    [ -d "$s" ] && BREWML_VAR=$s make -C "$ROOT" --no-print-directory stop >/dev/null 2>&1
  done
  [ -f "$WORK/cluster/pgdata/postmaster.pid" ] &&
    as_pg "$PGBIN/pg_ctl" -D "$WORK/cluster/pgdata" -m immediate -w stop >/dev/null 2>&1
  [ -n "${BREWML_KEEP:-}" ] && { echo "kept $WORK"; return; }
  rm -rf "$WORK"
}
trap cleanup EXIT

# --- pg_regress ---------------------------------------------------------------
# Copied into $WORK so that the postgres user can read the tests and write results.
as_pg mkdir -p "$WORK/regress"
cp -r "$ROOT/sql" "$ROOT/expected" "$WORK/regress/"
[ -d "$ROOT/test/fixtures" ] && cp -r "$ROOT/test/fixtures" "$WORK/regress/"
# the Punk API data set, from its npm package (scripts/setup.sh installs it)
cp "$ROOT/node_modules/punkapi-db/data.json" "$WORK/regress/fixtures/punkapi-data.json"
[ "$(id -u)" = 0 ] && chown -R postgres:postgres "$WORK/regress"
printf "shared_preload_libraries = 'brewml'\nmax_parallel_workers_per_gather = 2\n# no Punk API worker in the regression instance\nbrewml.database = ''\n" > "$WORK/regress/temp.conf"
tests=$(cd "$ROOT/sql" && ls *.sql | sed 's/\.sql$//' | sort)
echo "== pg_regress: $(echo $tests)"
(cd "$WORK/regress" && as_pg "$PGXS_DIR/src/test/regress/pg_regress" \
  --temp-instance="$WORK/regress/instance" --temp-config="$WORK/regress/temp.conf" \
  --inputdir=. --outputdir=. --bindir="$PGBIN" --load-extension=brewml \
  --dbname=contrib_regression $tests) | tee "$WORK/regress/summary.txt"
for t in $tests; do
  if grep -Eq "^(test| ) *$t +\.\.\. ok" "$WORK/regress/summary.txt"; then
    passed=$((passed + 1))
  else
    failed=$((failed + 1))
  fi
done
if [ -s "$WORK/regress/regression.diffs" ]; then
  mkdir -p "$ROOT/var" && cp "$WORK/regress/regression.diffs" "$ROOT/var/regression.diffs"
  echo "== regression.diffs (kept in var/regression.diffs):"
  head -n 200 "$WORK/regress/regression.diffs"
fi

# --- integration tests ---------------------------------------------------------
# A temporary cluster on its own port; each test script prints TAP lines.
export BREWML_VAR=$WORK/cluster BREWML_PGPORT=${BREWML_TEST_PGPORT:-5499} BREWML_DB=brewml_test
export BREWML_ROOT=$ROOT BREWML_WORK=$WORK
export BREWML_PUNKAPI_PORT=${BREWML_TEST_PUNKAPI_PORT:-8399} BREWML_POLL_INTERVAL=1s BREWML_BEERS_PER_POLL=2
export BREWML_HTTP_PORT=${BREWML_TEST_HTTP_PORT:-8499} BREWML_POSTGREST_PORT=${BREWML_TEST_POSTGREST_PORT:-3499}
export BREWML_POSTGREST_ADMIN_PORT=${BREWML_TEST_POSTGREST_ADMIN_PORT:-3498}
if "$ROOT/scripts/punkapi.sh" start >"$WORK/cluster-start.log" 2>&1 &&
   "$ROOT/scripts/cluster.sh" start >>"$WORK/cluster-start.log" 2>&1; then
  eval "$("$ROOT/scripts/cluster.sh" env)"
  for t in "$ROOT"/test/integration/*.sh; do
    [ -e "$t" ] || continue
    echo "== $(basename "$t")"
    out=$("$t" 2>&1); rc=$?
    echo "$out"
    ok=$(grep -c '^ok ' <<<"$out")
    nok=$(grep -c '^not ok ' <<<"$out")
    passed=$((passed + ok))
    failed=$((failed + nok))
    plan=$(grep -E '^1\.\.[0-9]+$' <<<"$out" | tail -n 1)
    if [ $rc -ne 0 ] && [ "$nok" -eq 0 ]; then
      echo "not ok - $(basename "$t") exited with status $rc"
      failed=$((failed + 1))
    elif [ "$nok" -eq 0 ] && [ "${plan#1..}" != "$((ok + nok))" ]; then
      # checks that quietly did not run are a failure too
      echo "not ok - $(basename "$t") planned ${plan:-no tests} but ran $((ok + nok))"
      failed=$((failed + 1))
    fi
  done
else
  echo "not ok - the integration cluster did not start:"
  cat "$WORK/cluster-start.log"
  failed=$((failed + 1))
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]

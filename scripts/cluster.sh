#!/usr/bin/env bash
# The project-local PostgreSQL 15 cluster that `make run` starts.
# Usage: scripts/cluster.sh start|stop|status|psql [psql args]|env
#
# State lives in $BREWML_VAR (default: var/ in the checkout, git-ignored):
# pgdata/, run/ (the socket), postgres.log.  As root, the server runs as the
# `postgres` system user, since PostgreSQL refuses to run as root.
# Settings: BREWML_PGPORT (5433), BREWML_DB (brewml); for the Punk API worker
# BREWML_PUNKAPI_URL (the local API of scripts/punkapi.sh), BREWML_POLL_INTERVAL
# (10s, so that a new user sees beers arrive at once), BREWML_BEERS_PER_POLL (3).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
PORT=${BREWML_PGPORT:-5433}
DB=${BREWML_DB:-brewml}

export_env() {
  export PGHOST=$SOCK PGPORT=$PORT PGUSER=postgres PGDATABASE=$DB
}

running() { as_pg "$PGBIN/pg_ctl" -D "$PGDATA" status >/dev/null 2>&1; }

start() {
  if [ ! -f "$PGDATA/PG_VERSION" ]; then
    echo "cluster: initdb in $PGDATA"
    as_pg "$PGBIN/initdb" -D "$PGDATA" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >/dev/null
  fi
  # Our settings, rewritten every start so that a changed port or path takes effect.
  as_pg tee "$PGDATA/brewml.conf" >/dev/null <<CONF
# written by scripts/cluster.sh on every start; edit postgresql.conf instead
listen_addresses = '127.0.0.1'
port = $PORT
unix_socket_directories = '$SOCK'
shared_preload_libraries = 'brewml'
brewml.database = '$DB'
brewml.punkapi_url = '${BREWML_PUNKAPI_URL:-http://127.0.0.1:${BREWML_PUNKAPI_PORT:-8383}/v2/beers/random}'
brewml.poll_interval = '${BREWML_POLL_INTERVAL:-10s}'
brewml.beers_per_poll = ${BREWML_BEERS_PER_POLL:-3}
logging_collector = off
log_line_prefix = '%m [%p] %q%u@%d '
CONF
  grep -q "^include_if_exists = 'brewml.conf'" "$PGDATA/postgresql.conf" ||
    echo "include_if_exists = 'brewml.conf'" | as_pg tee -a "$PGDATA/postgresql.conf" >/dev/null

  # A preloaded library that changed since the server started is loaded only
  # by a restart; make install copies it anew every time, so compare contents.
  lib=$("$PGBIN/pg_config" --pkglibdir)/brewml.so
  sum=$(md5sum <"$lib" | cut -d' ' -f1)
  if running && [ "$(cat "$VAR/brewml.so.md5" 2>/dev/null)" != "$sum" ]; then
    echo "cluster: brewml.so changed since the server started, restarting"
    as_pg "$PGBIN/pg_ctl" -D "$PGDATA" -m fast -w stop >/dev/null
  fi
  if running; then
    echo "cluster: already running on port $PORT"
    as_pg "$PGBIN/pg_ctl" -D "$PGDATA" reload >/dev/null
  else
    if port_busy "$PORT"; then
      echo "cluster: port $PORT is taken by another program; choose another with BREWML_PGPORT=..." >&2
      exit 1
    fi
    if ! as_pg "$PGBIN/pg_ctl" -D "$PGDATA" -l "$LOG" -w -t 60 start >/dev/null; then
      echo "cluster: PostgreSQL did not start; the end of $LOG:" >&2
      tail -n 20 "$LOG" >&2
      exit 1
    fi
    echo "$sum" >"$VAR/brewml.so.md5"
  fi
  export_env
  psql -X -q -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname = '$DB'" | grep -q 1 ||
    psql -X -q -d postgres -c "CREATE DATABASE \"$DB\""
  PGOPTIONS="-c client_min_messages=warning" psql -X -q -v ON_ERROR_STOP=1 \
    -c "CREATE EXTENSION IF NOT EXISTS brewml" -c "ALTER EXTENSION brewml UPDATE"
  # At a first start the worker starts before its database exists, exits, and is started
  # again within seconds: wait for it, so that "running" below includes the pipeline.
  if [ "$(psql -X -qtAc "SHOW brewml.database")" = "$DB" ]; then
    for _ in $(seq 150); do
      [ "$(psql -X -qtAc "SELECT running FROM brewml.worker_status")" = t ] && break
      sleep 0.1
    done
    [ "$(psql -X -qtAc "SELECT running FROM brewml.worker_status")" = t ] ||
      echo "cluster: the Punk API worker is not running; $LOG says why" >&2
  fi
  cat <<MSG
brewml is running: PostgreSQL 15 on port $PORT, database $DB.
  connect:  psql "host=$SOCK port=$PORT dbname=$DB user=postgres"
       or:  psql "host=127.0.0.1 port=$PORT dbname=$DB user=postgres"
  try:      SELECT * FROM brewml.fit('SEN0001', ARRAY[10, 5, 6, 9]);
            SELECT count(*) FROM brewml.cleaned_beers;   -- beers arrive every ${BREWML_POLL_INTERVAL:-10s}
  stop:     make stop
MSG
}

stop() {
  if [ -f "$PGDATA/PG_VERSION" ] && running; then
    as_pg "$PGBIN/pg_ctl" -D "$PGDATA" -m fast -w stop >/dev/null
    echo "cluster: stopped"
  else
    echo "cluster: not running"
  fi
}

state_dir
PGDATA=$VAR/pgdata
SOCK=$VAR/run
LOG=$VAR/postgres.log
case ${1:-} in
  start) start ;;
  stop) stop ;;
  status) if running; then echo "running on port $PORT ($PGDATA)"; else echo "not running"; exit 3; fi ;;
  psql) shift; export_env; exec psql -X "$@" ;;
  env) export_env; echo "export PGHOST=$PGHOST PGPORT=$PGPORT PGUSER=$PGUSER PGDATABASE=$PGDATABASE" ;;
  *) echo "usage: scripts/cluster.sh start|stop|status|psql [args]|env" >&2; exit 2 ;;
esac

#!/usr/bin/env bash
# The local Punk API (test/punkapi.py) that `make run` starts for the worker.
# Usage: scripts/punkapi.sh start|stop|status
# Settings: BREWML_PUNKAPI_PORT (8383); state in $BREWML_VAR like the cluster.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
PORT=${BREWML_PUNKAPI_PORT:-8383}
DATA=$ROOT/node_modules/punkapi-db/data.json
state_dir
PIDFILE=$VAR/punkapi.pid
LOG=$VAR/punkapi.log

alive() { [ -f "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; }

start() {
  if alive; then
    echo "punkapi: already running on http://127.0.0.1:$PORT/v2/beers"
    return
  fi
  if port_busy "$PORT"; then
    echo "punkapi: port $PORT is taken by another program; choose another with BREWML_PUNKAPI_PORT=..." >&2
    exit 1
  fi
  [ -f "$DATA" ] || { echo "punkapi: $DATA is missing; run scripts/setup.sh" >&2; exit 1; }
  nohup python3 "$ROOT/test/punkapi.py" --port "$PORT" --data "$DATA" >"$LOG" 2>&1 &
  echo $! >"$PIDFILE"
  for _ in $(seq 50); do
    port_busy "$PORT" && { echo "punkapi: serving http://127.0.0.1:$PORT/v2/beers"; return; }
    alive || break
    sleep 0.1
  done
  echo "punkapi: did not start; $LOG says:" >&2
  cat "$LOG" >&2
  exit 1
}

stop() {
  if alive; then
    kill "$(cat "$PIDFILE")"
    rm -f "$PIDFILE"
    echo "punkapi: stopped"
  else
    echo "punkapi: not running"
  fi
}

case ${1:-} in
  start) start ;;
  stop) stop ;;
  status) if alive; then echo "running on port $PORT"; else echo "not running"; exit 3; fi ;;
  *) echo "usage: scripts/punkapi.sh start|stop|status" >&2; exit 2 ;;
esac

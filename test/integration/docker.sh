#!/usr/bin/env bash
# docker/ without a Docker engine (none runs on this project's machines): the compose file has
# the four services of make run and a one-shot migrate, all of one image built from
# docker/Dockerfile, which builds with `make build` on postgres:15; and the commands of the
# migrate, punkapi, postgrest and nginx services, with their environment, run against the test
# cluster over TCP (the containers' host names become 127.0.0.1, their ports test ports): migrate
# readies a new database (and again, as at every up), and the others serve requests end to end.
# Run by test/run.sh.
set -uo pipefail
ROOT=${BREWML_ROOT:?run me from test/run.sh}
WORK=${BREWML_WORK:?run me from test/run.sh}
n=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
notok() { n=$((n + 1)); echo "not ok $n - $1"; [ -n "${2:-}" ] && sed 's/^/# /' <<<"$2" | tail -n 30; }
check() { if eval "$2"; then ok "$1"; else notok "$1" "${3:-}"; fi; }
q() { psql -X -qtA -v ON_ERROR_STOP=1 "$@"; }
DB=brewml_docker
DIR=$WORK/docker
mkdir -p "$DIR"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done; wait 2>/dev/null; }
trap cleanup EXIT

# --- the files -------------------------------------------------------------------
shape=$(python3 - "$ROOT/docker/compose.yaml" <<'PY' 2>&1
import sys, yaml
c = yaml.safe_load(open(sys.argv[1]))
s = c["services"]
assert sorted(s) == ["db", "migrate", "nginx", "postgrest", "punkapi"], sorted(s)
b = s["db"]["build"]
assert b.get("context") == ".." and b.get("dockerfile") == "docker/Dockerfile", b
# built once: two builds tagged alike fail on compose's newer builders
assert [n for n in s if "build" in s[n]] == ["db"]
for name, svc in s.items():
    assert svc.get("image") == s["db"]["image"], name
assert "shared_preload_libraries=brewml" in s["db"]["command"]
assert s["migrate"]["depends_on"]["db"]["condition"] == "service_healthy"
assert s["postgrest"]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
print("ok")
PY
)
check "compose.yaml: database, migrate, Punk API, PostgREST and nginx, one image built once from docker/Dockerfile" \
  '[ "$shape" = ok ]' "$shape"
check "the Dockerfile builds on postgres:15 with make build, the steps of make run" \
  'grep -q "^FROM postgres:15" "$ROOT/docker/Dockerfile" && grep -q "^RUN make build" "$ROOT/docker/Dockerfile" &&
   grep -q "^build:" "$ROOT/Makefile" && grep -q "^run: build" "$ROOT/Makefile"'

# --- the services' commands --------------------------------------------------------
# Each service's environment and command, with the containers' names and ports made local.
# PGHOST is the cluster's TCP address: the containers reach the database over the network.
secret=$(. "$ROOT/scripts/lib.sh"; new_secret)
password=$(. "$ROOT/scripts/lib.sh"; new_secret)
q -d postgres -c "DROP DATABASE IF EXISTS $DB" -c "CREATE DATABASE $DB" >/dev/null 2>&1
PGRST=3490 ADMIN=3491 HTTP=8490 API=8390
launch=$(python3 - "$ROOT/docker/compose.yaml" <<PY
import shlex, sys, yaml
services = yaml.safe_load(open(sys.argv[1]))["services"]
local = {"PGHOST": "127.0.0.1", "PGPORT": "$PGPORT", "PGDATABASE": "$DB", "PGPASSWORD": "$password",
         "BREWML_AUTHENTICATOR_PASSWORD": "$password",
         "BREWML_JWT_SECRET": "$secret", "BREWML_POSTGREST_HOST": "127.0.0.1", "BREWML_VAR": "$DIR",
         "BREWML_POSTGREST_PORT": "$PGRST", "BREWML_POSTGREST_ADMIN_PORT": "$ADMIN", "BREWML_HTTP_PORT": "$HTTP"}
for name in ["migrate", "punkapi", "postgrest", "nginx"]:
    svc = services[name]
    env = {k: local.get(k, str(v)) for k, v in (svc.get("environment") or {}).items()}
    cmd = ["$API" if a == "8383" else a for a in svc["command"]]
    print(name, " ".join(shlex.quote(f"{k}={v}") for k, v in env.items()), " ".join(shlex.quote(a) for a in cmd), sep="|")
PY
)
# as the containers' user (postgres) where that user may enter the checkout
runas=()
[ "$(id -u)" = 0 ] && runuser -u postgres -- test -x "$ROOT" 2>/dev/null && runas=(runuser -u postgres --) &&
  chown postgres "$DIR"
# run NAME: becomes the service's command, in the image's working folder (call it in a subshell)
run() {
  local line envs cmd
  line=$(grep "^$1|" <<<"$launch")
  IFS='|' read -r _ envs cmd <<<"$line"
  cd "$ROOT" && eval "exec ${runas[*]} env -u PGUSER $envs $cmd"
}
migrated() {
  [ "$(q -d $DB -c "SELECT (SELECT extversion FROM pg_extension WHERE extname = 'brewml')
        = (SELECT default_version FROM pg_available_extensions WHERE name = 'brewml')
      AND to_regprocedure('api.predict(text, double precision)') IS NOT NULL
      AND (SELECT rolpassword IS NOT NULL FROM pg_authid WHERE rolname = 'brewml_authenticator')")" = t ]
}
out=$(run migrate 2>&1); rc=$?
check "the migrate service readies a new database: brewml at its default version, the api schema, PostgREST's password" \
  '[ $rc = 0 ] && migrated' "$out"
out=$(run migrate 2>&1); rc=$?
check "migrate again, as at every up, succeeds and leaves it so" '[ $rc = 0 ] && migrated' "$out"
for name in punkapi postgrest nginx; do
  run "$name" >"$DIR/$name.log" 2>&1 &
  pids+=($!)
done
wait_url() {
  for _ in $(seq 100); do curl -fs -o /dev/null "$1" && return 0; sleep 0.1; done
  return 1
}
check "the postgrest service's command serves the api over TCP with its password (/ready)" \
  'wait_url http://127.0.0.1:$ADMIN/ready' "$(cat "$DIR/postgrest.log" 2>/dev/null)"
token=$(BREWML_JWT_SECRET=$secret "$ROOT/scripts/http.sh" token brewml_ingest)
check "the nginx service's command proxies the seed's routes: POST /SEN0001/fit with a token" \
  'wait_url http://127.0.0.1:$HTTP/ &&
   body=$(curl -s -X POST "http://127.0.0.1:$HTTP/SEN0001/fit" -H "Authorization: Bearer $token" -d "{\"values\": [10, 5, 6, 9]}") &&
   grep -q "\"mean\":7.5" <<<"$body"' '$body $(cat "$DIR/nginx.log" "$DIR/http/error.log" 2>/dev/null)'
check "the punkapi service's command serves the data set (GET /v2/beers/1)" \
  'wait_url http://127.0.0.1:$API/v2/beers/1 &&
   [ "$(curl -s "http://127.0.0.1:$API/v2/beers/1" | python3 -c "import json,sys; print(json.load(sys.stdin)[0][\"name\"])")" = Buzz ]' \
  "$(cat "$DIR/punkapi.log" 2>/dev/null)"
echo "1..$n"

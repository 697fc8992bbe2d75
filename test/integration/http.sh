#!/usr/bin/env bash
# The HTTP surface (issue: HTTP surface): PostgREST over the api schema and
# nginx in front of it, started with scripts/http.sh against the test
# cluster.  Every route with its status and body, the sensor case's
# api_tests bodies through nginx unchanged, the auth matrix, CSV output,
# errors as JSON and never a 5xx.  Run by test/run.sh.
set -uo pipefail
ROOT=${BREWML_ROOT:?run me from test/run.sh}
WORK=${BREWML_WORK:?run me from test/run.sh}
B=http://127.0.0.1:$BREWML_HTTP_PORT
P=http://127.0.0.1:$BREWML_POSTGREST_PORT
n=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
notok() { n=$((n + 1)); echo "not ok $n - $1"; [ -n "${2:-}" ] && sed 's/^/# /' <<<"$2"; }
check() { if eval "$2"; then ok "$1"; else notok "$1" "${3:-status $status, body: ${body:0:300}}"; fi; }
q() { psql -X -qtA -v ON_ERROR_STOP=1 -c "$1"; }
statuses=$WORK/http-statuses
: >"$statuses"
# req METHOD URL [curl args...]: sets status and body
req() {
  local m=$1 u=$2
  shift 2
  body=$(curl -s -X "$m" -o - -w '\n%{http_code}' "$@" "$u")
  status=${body##*$'\n'}
  body=${body%$'\n'*}
  echo "$status $m $u" >>"$statuses"
}
json() { python3 -c "import json,sys; d=json.loads(sys.argv[1]); print($2)" "$body" 2>/dev/null; }
is_error_json() { [ "$(json "$body" "'message' in d and 'code' in d")" = True ]; }
trap '"$ROOT/scripts/http.sh" stop >/dev/null 2>&1' EXIT

if out=$("$ROOT/scripts/http.sh" start 2>&1); then
  ok "scripts/http.sh start brings up PostgREST and nginx and waits for /ready"
else
  notok "scripts/http.sh start brings up PostgREST and nginx and waits for /ready" "$out"
  exit 1
fi
ING=$("$ROOT/scripts/http.sh" token brewml_ingest)
ADM=$("$ROOT/scripts/http.sh" token brewml_admin)
H_ING="Authorization: Bearer $ING"
H_ADM="Authorization: Bearer $ADM"

# --- health and description --------------------------------------------------------
req GET "http://127.0.0.1:$BREWML_POSTGREST_ADMIN_PORT/live"; live=$status
req GET "http://127.0.0.1:$BREWML_POSTGREST_ADMIN_PORT/ready"
check "PostgREST's admin /live and /ready answer 200" '[ "$live" = 200 ] && [ "$status" = 200 ]'
req GET "$B/"
check "the OpenAPI description is reachable through nginx and lists the api's routes" \
  '[ "$status" = 200 ] && [ "$(json "$body" "d[\"swagger\"] == \"2.0\" and \"/rpc/predict\" in d[\"paths\"] and \"/cleaned_beers\" in d[\"paths\"]")" = True ]'
check "the description shows no brewml internals (only the api schema)" \
  '[ "$(json "$body" "any(\"register_model\" in p or \"models_changed\" in p for p in d[\"paths\"])")" = False ]'

# --- the sensor case's api_tests, unchanged, through nginx -----------------------
T=$WORK/api_tests
mkdir -p "$T"
printf '{"values": [10, 5, 6, 9]}' >"$T/post_fit_SEN0001.json"
printf '{"value": 10}' >"$T/post_predict_SEN0001.json"
for f in get_weights_SEN0001 get_weights_SEN0002 post_adjust_SEN0001; do printf '{\n\n}\n' >"$T/$f.json"; done
req POST "$B/SEN0001/fit" -H "$H_ING" --data-binary @"$T/post_fit_SEN0001.json"
check "POST /SEN0001/fit with post_fit_SEN0001.json: 200, mean 7.5, sample std 2.3804761428476167" \
  '[ "$status" = 200 ] && [ "$(json "$body" "(d[\"mean\"], d[\"std\"], d[\"n\"])")" = "(7.5, 2.3804761428476167, 4)" ]'
req GET "$B/SEN0001/weights" --data-binary @"$T/get_weights_SEN0001.json"
check "GET /SEN0001/weights with get_weights_SEN0001.json ({ newline }): 200, the stored weights" \
  '[ "$status" = 200 ] && [ "$(json "$body" "d[\"sensor_id\"] + \" \" + str(d[\"mean\"])")" = "SEN0001 7.5" ]'
req GET "$B/SEN0002/weights" --data-binary @"$T/get_weights_SEN0002.json"
check "GET /SEN0002/weights (never fitted): 404 with a JSON error naming the sensor" \
  '[ "$status" = 404 ] && is_error_json && grep -q SEN0002 <<<"$body"'
req POST "$B/SEN0001/predict" --data-binary @"$T/post_predict_SEN0001.json"
check "POST /SEN0001/predict with post_predict_SEN0001.json: 200 and a bare JSON false (10 < 12.26)" \
  '[ "$status" = 200 ] && [ "$body" = false ]'
req POST "$B/SEN0001/predict" -d '{"value": 12.3}'
check "POST /SEN0001/predict 12.3: a bare true" '[ "$status" = 200 ] && [ "$body" = true ]'
req POST "$B/SEN0001/adjust" -H "$H_ING" --data-binary @"$T/post_adjust_SEN0001.json"
check "POST /SEN0001/adjust with post_adjust_SEN0001.json: 200, mean 8.25" \
  '[ "$status" = 200 ] && [ "$(json "$body" "d[\"mean\"]")" = 8.25 ]'
req POST "$B/SEN0001/adjust" -H "$H_ING"
check "POST /SEN0001/adjust with no body at all also works (mean 9.075)" \
  '[ "$status" = 200 ] && [ "$(json "$body" "round(d[\"mean\"], 6)")" = 9.075 ]'

# --- the same through PostgREST directly, by name ------------------------------------
req POST "$P/rpc/fit" -H "$H_ING" -H 'Content-Type: application/json' -d '{"sensor_id": "S2", "values": [1, 2, 3, null]}'
check "POST /rpc/fit on PostgREST: 200, NULLs skipped (n 3)" '[ "$status" = 200 ] && [ "$(json "$body" "d[\"n\"]")" = 3 ]'
req GET "$P/rpc/weights?sensor_id=S2"
check "GET /rpc/weights?sensor_id=S2: 200" '[ "$status" = 200 ] && [ "$(json "$body" "float(d[\"mean\"])")" = 2.0 ]'
req GET "$P/rpc/predict?sensor_id=S2&value=5"
check "GET /rpc/predict?sensor_id=S2&value=5: true (5 >= 2 + 2 * 1)" '[ "$status" = 200 ] && [ "$body" = true ]'
req POST "$P/rpc/predict_batch" -H 'Content-Type: application/json' -d '{"sensor_id": "S2", "values": [1, 3.9, 4, 100]}'
check "POST /rpc/predict_batch for one sensor: the alerts in order" \
  '[ "$status" = 200 ] && [ "$(tr -d " " <<<"$body")" = "[false,false,true,true]" ]'
req POST "$P/rpc/predict_batch" -H 'Content-Type: application/json' -d '{"sensor_ids": ["S2", "SEN0001"], "values": [4, 4]}'
check "POST /rpc/predict_batch in sensor/value pairs" '[ "$status" = 200 ] && [ "$(tr -d " " <<<"$body")" = "[true,false]" ]'
req POST "$P/rpc/predict_batch" -H 'Content-Type: application/json' -d '{"sensor_ids": ["S2", "NOPE"], "values": [4, 4]}'
check "predict_batch with an unknown sensor: 404 naming it" '[ "$status" = 404 ] && grep -q NOPE <<<"$body"'
req POST "$P/rpc/predict_batch" -H 'Content-Type: application/json' -d '{"sensor_ids": ["S2"], "values": [4, 4]}'
check "predict_batch with unpaired arrays: 400" '[ "$status" = 400 ] && is_error_json'
req GET "$B/sensors?select=sensor_id,n&order=sensor_id"
check "GET /sensors lists the fitted sensors" '[ "$status" = 200 ] && [ "$(json "$body" "\",\".join(r[\"sensor_id\"] for r in d)")" = "S2,SEN0001" ]'

# --- bad input: 4xx with a JSON body, never a 5xx -----------------------------------
bad() {	# bad NAME WANT METHOD URL [curl args]
  local name=$1 want=$2
  shift 2
  req "$@"
  check "$name -> $want with a JSON error" '[ "$status" = "$want" ] && is_error_json'
}
bad "POST /SEN0009/predict (unknown sensor)" 404 POST "$B/SEN0009/predict" -d '{"value": 1}'
bad "POST /SEN0009/adjust (unknown sensor)" 404 POST "$B/SEN0009/adjust" -H "$H_ING"
bad "POST /SEN0001/predict with malformed JSON" 400 POST "$B/SEN0001/predict" -d '{"value'
bad "POST /SEN0001/predict with a string value" 400 POST "$B/SEN0001/predict" -d '{"value": "ten"}'
bad "POST /SEN0001/predict without value" 400 POST "$B/SEN0001/predict" -d '{"valeu": 1}'
bad "POST /SEN0001/predict with an array body" 400 POST "$B/SEN0001/predict" -d '[10]'
bad "POST /SEN0001/fit with no values" 400 POST "$B/SEN0001/fit" -H "$H_ING" -d '{"values": []}'
bad "POST /SEN0001/fit with one value (no sample std)" 400 POST "$B/SEN0001/fit" -H "$H_ING" -d '{"values": [1]}'
bad "POST /SEN0001/fit with a non-number" 400 POST "$B/SEN0001/fit" -H "$H_ING" -d '{"values": [1, "x"]}'
bad "POST /SEN0001/fit with a huge number" 400 POST "$B/SEN0001/fit" -H "$H_ING" -d '{"values": [1, 1e400]}'
bad "GET /SEN0001/predict (wrong method)" 405 GET "$B/SEN0001/predict"
bad "a 2 MB body to POST /SEN0001/predict" 413 POST "$B/SEN0001/predict" --data-binary @<(head -c 2000000 /dev/zero | tr '\0' ' ')
bad "GET /no_such_table" 404 GET "$B/no_such_table"
bad "GET /SEN0001/no_such_action (a path PostgREST answers with a bare {})" 404 GET "$B/SEN0001/no_such_action"
bad "GET /rpc/predict_ibu before any model is deployed" 404 GET "$B/rpc/predict_ibu?abv=5"
req GET "$B/SEN0001/weights"
check "after all that, SEN0001 still has its weights (nothing lost)" '[ "$status" = 200 ] && [ "$(json "$body" "d[\"n\"]")" = 4 ]'

# --- auth matrix on a write ---------------------------------------------------------
OTHER=$(python3 - <<'PY'
import base64, hashlib, hmac, json, time
b = lambda x: base64.urlsafe_b64encode(x).rstrip(b"=").decode()
h = b(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
p = b(json.dumps({"role": "brewml_admin", "exp": int(time.time()) + 600}).encode())
print(f"{h}.{p}." + b(hmac.new(b"not-the-secret-not-the-secret-not-the-secret", f"{h}.{p}".encode(), hashlib.sha256).digest()))
PY
)
FIT=(-d '{"values": [1, 2, 3]}')
req POST "$B/AUTH1/fit" "${FIT[@]}"
check "no token on a write: 401" '[ "$status" = 401 ] && is_error_json'
req POST "$B/AUTH1/fit" -H "Authorization: Bearer $("$ROOT/scripts/http.sh" token brewml_anon)" "${FIT[@]}"
check "a token for the anonymous role on a write: 401 (PostgREST treats it as anonymous)" '[ "$status" = 401 ] && is_error_json'
req POST "$B/AUTH1/fit" -H "Authorization: Bearer $("$ROOT/scripts/http.sh" token postgres)" "${FIT[@]}"
check "a token claiming the superuser role: 403 (the authenticator cannot become it)" '[ "$status" = 403 ] && is_error_json'
req POST "$B/AUTH1/fit" -H "Authorization: Bearer $("$ROOT/scripts/http.sh" token brewml_ingest -120)" "${FIT[@]}"
check "an expired token: 401" '[ "$status" = 401 ] && is_error_json && grep -qi expired <<<"$body"'
req POST "$B/AUTH1/fit" -H "Authorization: Bearer $OTHER" "${FIT[@]}"
check "a token signed with another secret: 401" '[ "$status" = 401 ] && is_error_json'
req POST "$B/AUTH1/fit" -H "$H_ING" "${FIT[@]}"
check "an ingest token: 200" '[ "$status" = 200 ]'
req POST "$B/rpc/train_ibu" -H "$H_ING" -H 'Content-Type: application/json' -d '{}'
check "an ingest token on an admin route (train_ibu): 403" '[ "$status" = 403 ] && is_error_json'
req POST "$B/sensors" -H "$H_ADM" -H 'Content-Type: application/json' -d '{"sensor_id": "x", "mean": 1, "std": 1, "n": 2, "fitted_at": "now"}'
check "even an admin cannot write the views directly: 403" '[ "$status" = 403 ]'
AUTHN="'brewml_authenticator'"
check "the authenticator is NOINHERIT and no superuser; web roles cannot reach brewml's tables" \
  '[ "$(q "SELECT NOT rolsuper AND NOT rolinherit FROM pg_roles WHERE rolname = $AUTHN")" = t ] &&
   ! psql -X -qtA -c "SET ROLE brewml_admin; SELECT count(*) FROM brewml.models" >/dev/null 2>&1'

# --- beers: post, clean, predict, CSV ------------------------------------------------
req POST "$B/rpc/train_ibu" -H "$H_ADM" -H 'Content-Type: application/json' -d '{"params": {"n_trees": 30}}'
model=$(json "$body" "d[\"id\"]")
check "POST /rpc/train_ibu with an admin token: 200 and the new model with its metrics" \
  '[ "$status" = 200 ] && [ -n "$model" ] && [ "$(json "$body" "0 <= d[\"accuracy\"] <= 1")" = True ]'
req POST "$B/rpc/deploy" -H "$H_ADM" -H 'Content-Type: application/json' -d "{\"model_id\": $model}"
check "POST /rpc/deploy: 200" '[ "$status" = 200 ] && [ "$(json "$body" "d[\"model_id\"]")" = "$model" ]'
bad "POST /rpc/deploy of an unknown model" 404 POST "$B/rpc/deploy" -H "$H_ADM" -H 'Content-Type: application/json' -d '{"model_id": 999999}'
bad "POST /rpc/rollback with nothing to roll back to" 409 POST "$B/rpc/rollback" -H "$H_ADM" -H 'Content-Type: application/json' -d '{"model_name": "ibu"}'
req GET "$B/rpc/predict_ibu?abv=8&target_fg=1012&target_og=1075&ebc=40&srm=20&ph=4.4"
check "GET /rpc/predict_ibu: 200, a class of ibu_classes from the deployed model" \
  '[ "$status" = 200 ] && [ "$(json "$body" "d[\"model_id\"]")" = "$model" ] &&
   q "SELECT label FROM brewml.ibu_classes" | grep -qFx -- "$(json "$body" "d[\"class\"]")"'
req POST "$B/beers" -H "$H_ING" -d '[{"id": 90001, "name": "HTTP Pale", "abv": 5.2, "target_fg": 1010, "target_og": 1050, "ebc": 15, "srm": 7.5, "ph": 4.4}, {"id": 90002, "name": "HTTP Stout", "abv": 8}]'
check "POST /beers with two beers: 200, both stored" '[ "$status" = 200 ] && [ "$(json "$body" "d[\"stored\"]")" = 2 ]'
req GET "$B/cleaned_beers?id=in.(90001,90002)&select=id,ibu_class,ibu_model_id&order=id"
check "they reached cleaned_beers with the deployed model's prediction, in the same request" \
  '[ "$status" = 200 ] && [ "$(json "$body" "[r[\"ibu_model_id\"] for r in d if r[\"ibu_class\"]]")" = "[$model, $model]" ]'
http_beers="SELECT count(*) FROM brewml.raw_beers WHERE source_url = 'http'"
before=$(q "$http_beers")
bad "POST /beers with a beer without id" 400 POST "$B/beers" -H "$H_ING" -d '[{"id": 90003}, {"name": "no id"}]'
bad "POST /beers with broken JSON" 400 POST "$B/beers" -H "$H_ING" -d '[{"id": 9'
bad "POST /beers without a token" 401 POST "$B/beers" -d '{"id": 90004}'
check "the refused posts stored nothing (all or nothing per request)" '[ "$(q "$http_beers")" = "$before" ]'
# the worker keeps adding beers: the CSV has as many lines as beers at some point in between
low=$(q "SELECT count(*) FROM brewml.cleaned_beers")
req GET "$B/cleaned?order=id" -H 'Accept: text/csv'
high=$(q "SELECT count(*) FROM brewml.cleaned_beers")
lines=$(($(wc -l <<<"$body") - 1))
check "GET /cleaned with Accept: text/csv: the header and one line per beer" \
  '[ "$status" = 200 ] && [ "$(head -n 1 <<<"$body")" = "id,name,abv,ibu,target_fg,target_og,ebc,srm,ph" ] &&
   [ "$lines" -ge "$low" ] && [ "$lines" -le "$high" ]' "$low <= $lines <= $high?"
req GET "$B/models?select=id,name,deployed"
check "GET /models lists the registry" '[ "$status" = 200 ] && [ "$(json "$body" "any(r[\"id\"] == $model and r[\"deployed\"] for r in d)")" = True ]'
req GET "$B/beer_predictions?limit=1"
check "GET /beer_predictions: 200" '[ "$status" = 200 ]'
req GET "$B/worker_status"
check "GET /worker_status: 200, the worker's row" '[ "$status" = 200 ] && [ "$(json "$body" "len(d)")" = 1 ]'
req POST "$B/rpc/poll_now" -H "$H_ADM"
check "POST /rpc/poll_now as admin: 200" '[ "$status" = 200 ]'

# leave the database as the next suites expect it: beers only from the local API
q "DELETE FROM brewml.cleaned_beers WHERE raw_id IN (SELECT id FROM brewml.raw_beers WHERE source_url = 'http');
   DELETE FROM brewml.raw_beers WHERE source_url = 'http';
   TRUNCATE brewml.deployments, brewml.deployment_log, brewml.models, brewml.sensor_weights;
   UPDATE brewml.cleaned_beers SET ibu_class = NULL, ibu_class_probability = NULL, ibu_model_id = NULL;" >/dev/null

check "no request of this suite got a 5xx" '! grep -q "^5" "$statuses"' "$(grep "^5" "$statuses")"
echo "1..$n"

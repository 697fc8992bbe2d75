#!/usr/bin/env bash
# The Punk API worker against the local API (test/punkapi.py): beers arrive in
# raw and cleaned and match the data set; every fault is logged, counted and
# writes nothing, and the next good poll succeeds; back-off and Retry-After;
# no transaction is open while waiting on the network; SIGTERM, SIGKILL and a
# server restart bring the worker back.  Run by test/run.sh, which started the
# cluster (PG* set) with the worker aimed at the API on $BREWML_PUNKAPI_PORT.
set -uo pipefail
ROOT=${BREWML_ROOT:?run me from test/run.sh}
WORK=${BREWML_WORK:?run me from test/run.sh}
API=http://127.0.0.1:${BREWML_PUNKAPI_PORT:?}
DATA=$ROOT/node_modules/punkapi-db/data.json
n=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
notok() { n=$((n + 1)); echo "not ok $n - $1"; [ -n "${2:-}" ] && sed 's/^/# /' <<<"$2"; }
q() { psql -X -qtA -v ON_ERROR_STOP=1 -c "$1"; }
# wait_for SECONDS SQL: until SQL answers t
wait_for() {
  local deadline=$((SECONDS + $1))
  while [ $SECONDS -lt $deadline ]; do
    [ "$(q "$2" 2>/dev/null)" = t ] && return 0
    sleep 0.2
  done
  return 1
}
check() { if eval "$2"; then ok "$1"; else notok "$1" "${3:-}"; fi; }
fault() { python3 - "$API/_faults?$1" <<'PY'
import sys, urllib.request
urllib.request.urlopen(urllib.request.Request(sys.argv[1], method="POST"), timeout=5).read()
PY
}
api_clear() { python3 -c "import urllib.request as u; u.urlopen(u.Request('$API/_faults', method='DELETE'), timeout=5).read()"; }
set_conf() { q "ALTER SYSTEM SET $1 = '$2'" >/dev/null; q "SELECT pg_reload_conf()" >/dev/null; sleep 0.5; }
worker_pid() { q "SELECT pid FROM brewml.worker_status WHERE running"; }

# --- beers arrive -----------------------------------------------------------------
check "the worker runs and beers reach cleaned_beers within 30 s" \
  'wait_for 30 "SELECT count(*) > 0 FROM brewml.cleaned_beers"'
check "raw_beers holds every beer the log counts, with its URL and status 200" \
  '[ "$(q "SELECT (SELECT count(*) FROM brewml.raw_beers) = (SELECT sum(beers) FROM brewml.fetch_log)
            AND (SELECT bool_and(source_url LIKE '"'"'%/v2/beers/random'"'"' AND http_status = 200) FROM brewml.raw_beers)")" = t ]'
check "every cleaned beer comes from raw" \
  '[ "$(q "SELECT bool_and(EXISTS (SELECT 1 FROM brewml.raw_beers r WHERE r.id = c.raw_id)) FROM brewml.cleaned_beers c")" = t ]'
# both exports from one snapshot: the worker keeps adding beers meanwhile
psql -X -qtA -v ON_ERROR_STOP=1 >/dev/null <<SQL
BEGIN ISOLATION LEVEL REPEATABLE READ;
\o $WORK/cleaned.csv
SELECT brewml.cleaned_csv();
\o $WORK/copied.csv
COPY (SELECT * FROM brewml.cleaned ORDER BY id) TO STDOUT WITH CSV HEADER;
COMMIT;
SQL
check "the CSV export has the seed's header and the data set's values" \
  'out=$(python3 "$ROOT/test/integration/punkapi_check.py" csv "$WORK/cleaned.csv" "$DATA" 2>&1)' '$out'
check "COPY of brewml.cleaned gives the same CSV as brewml.cleaned_csv()" \
  'diff <(sed "/^\$/d" "$WORK/cleaned.csv") "$WORK/copied.csv" >/dev/null'
q "SELECT brewml.raw_ndjson()" >"$WORK/raw.ndjson"
check "the NDJSON export is the data set's objects, one a line" \
  'out=$(python3 "$ROOT/test/integration/punkapi_check.py" ndjson "$WORK/raw.ndjson" "$DATA" 2>&1)' '$out'
check "the worker reports its tables' statistics (for autovacuum)" \
  'wait_for 10 "SELECT n_tup_ins > 0 FROM pg_stat_user_tables WHERE relid = '"'"'brewml.raw_beers'"'"'::regclass"'

# --- faults: logged, counted, nothing written, the next good poll succeeds ----------
set_conf brewml.poll_interval 1h
set_conf brewml.fetch_timeout 1s
set_conf brewml.max_response_bytes 100kB
set_conf brewml.beers_per_poll 1
sleep 1
for spec in "500 http_error" "429 rate_limited" "hang&seconds=3 timeout" "truncated bad_json" \
            "huge too_large" "huge_chunked too_large" "redirect_file refused_protocol" \
            "redirect_loop too_many_redirects" "empty empty" "not_json bad_json" \
            "wrong_shape bad_payload" "bad_utf8 bad_json"; do
  mode=${spec% *}; want=${spec#* }
  before=$(q "SELECT coalesce(max(id), 0) FROM brewml.fetch_log")
  raw=$(q "SELECT count(*) FROM brewml.raw_beers")
  failures=$(q "SELECT failures FROM brewml.worker_status")
  fault "mode=$mode"
  q "SELECT brewml.poll_now()" >/dev/null
  if wait_for 15 "SELECT count(*) = 1 FROM brewml.fetch_log WHERE id > $before"; then
    got=$(q "SELECT outcome || ' ' || beers || ' ' || (error IS NOT NULL) FROM brewml.fetch_log WHERE id > $before")
    now_raw=$(q "SELECT count(*) FROM brewml.raw_beers")
    now_failures=$(q "SELECT failures FROM brewml.worker_status")
    if [ "$got" = "$want 0 true" ] && [ "$now_raw" = "$raw" ] && [ "$now_failures" = $((failures + 1)) ]; then
      ok "fault ${mode%%&*}: logged as $want with its error, counted, no row written"
    else
      notok "fault ${mode%%&*}" "log: $got (want $want 0 true); raw $raw -> $now_raw; failures $failures -> $now_failures"
    fi
  else
    notok "fault ${mode%%&*}: no fetch_log row within 15 s"
  fi
done
check "the worker kept running through every fault" '[ -n "$(worker_pid)" ]'
before=$(q "SELECT coalesce(max(id), 0) FROM brewml.fetch_log")
raw=$(q "SELECT count(*) FROM brewml.raw_beers")
q "SELECT brewml.poll_now()" >/dev/null
check "the next good poll succeeds and resets the back-off" \
  'wait_for 15 "SELECT outcome = '"'"'ok'"'"' FROM brewml.fetch_log WHERE id > $before" &&
   [ "$(q "SELECT count(*) > $raw FROM brewml.raw_beers")" = t ] &&
   [ "$(q "SELECT consecutive_failures = 0 AND last_success_at >= last_poll_at FROM brewml.worker_status")" = t ]'

# --- no transaction is held while the worker waits on the network ------------------
set_conf brewml.fetch_timeout 10s
fault "mode=hang&seconds=3"
q "SELECT brewml.poll_now()" >/dev/null
check "while a request hangs, the worker holds no transaction" \
  'wait_for 5 "SELECT wait_event IS NOT NULL OR query LIKE '"'"'%fetching%'"'"' FROM pg_stat_activity WHERE pid = $(worker_pid)" &&
   [ "$(q "SELECT query LIKE '"'"'%fetching%'"'"' AND xact_start IS NULL AND backend_xid IS NULL FROM pg_stat_activity WHERE pid = $(worker_pid)")" = t ]' \
  "$(q "SELECT state, query, xact_start, backend_xid FROM pg_stat_activity WHERE pid = $(worker_pid)")"
sleep 3.5

# --- back-off and Retry-After ------------------------------------------------------
set_conf brewml.poll_interval 1s
fault "mode=500&count=3"
check "after 3 failed polls in a row the next one waits 8 x the 1 s interval" \
  'wait_for 20 "SELECT consecutive_failures = 3 FROM brewml.worker_status" &&
   [ "$(q "SELECT next_poll_at - last_poll_at BETWEEN interval '"'"'7.5 s'"'"' AND interval '"'"'8.5 s'"'"' FROM brewml.worker_status")" = t ]' \
  "$(q "SELECT consecutive_failures, next_poll_at - last_poll_at FROM brewml.worker_status")"
api_clear
q "SELECT brewml.poll_now()" >/dev/null
wait_for 10 "SELECT consecutive_failures = 0 FROM brewml.worker_status"
fault "mode=429&retry_after=40"
check "a 429 with Retry-After: 40 puts the next poll 40 s away" \
  'wait_for 10 "SELECT consecutive_failures = 1 FROM brewml.worker_status" &&
   [ "$(q "SELECT next_poll_at - last_poll_at BETWEEN interval '"'"'39.5 s'"'"' AND interval '"'"'40.5 s'"'"' FROM brewml.worker_status")" = t ]' \
  "$(q "SELECT consecutive_failures, next_poll_at - last_poll_at FROM brewml.worker_status")"
q "SELECT brewml.poll_now()" >/dev/null
check "poll_now overrides the back-off" 'wait_for 10 "SELECT consecutive_failures = 0 FROM brewml.worker_status"'

# --- TLS is verified: a self-signed certificate is refused ----------------------------
tls_port=$((BREWML_PUNKAPI_PORT + 1))
openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=127.0.0.1 \
  -keyout "$WORK/tls.key" -out "$WORK/tls.crt" >/dev/null 2>&1
python3 "$ROOT/test/punkapi.py" --port $tls_port --data "$DATA" \
  --tls-cert "$WORK/tls.crt" --tls-key "$WORK/tls.key" >"$WORK/tls.log" 2>&1 &
tls_pid=$!
sleep 1
set_conf brewml.poll_interval 1h
set_conf brewml.punkapi_url "https://127.0.0.1:$tls_port/v2/beers/random"
before=$(q "SELECT coalesce(max(id), 0) FROM brewml.fetch_log")
q "SELECT brewml.poll_now()" >/dev/null
check "an https server with a self-signed certificate is refused" \
  'wait_for 10 "SELECT outcome = '"'"'network_error'"'"' AND error ~* '"'"'certificate'"'"' AND beers = 0
                FROM brewml.fetch_log WHERE id > $before"' \
  "$(q "SELECT outcome, error FROM brewml.fetch_log WHERE id > $before")"
kill $tls_pid
q "ALTER SYSTEM RESET brewml.punkapi_url" >/dev/null; q "SELECT pg_reload_conf()" >/dev/null

# --- the worker comes back ---------------------------------------------------------
pid=$(worker_pid)
q "SELECT pg_terminate_backend($pid)" >/dev/null
check "after SIGTERM the worker restarts and polls again" \
  'wait_for 20 "SELECT running AND pid <> $pid AND polls > 0 FROM brewml.worker_status"'
pid=$(worker_pid)
raw=$(q "SELECT count(*) FROM brewml.raw_beers")
kill -9 "$pid"
check "after SIGKILL (a crash restart of the server) the worker comes back and polls again" \
  'wait_for 30 "SELECT running AND pid <> $pid AND polls > 0 FROM brewml.worker_status" &&
   [ "$(q "SELECT count(*) >= $raw FROM brewml.raw_beers")" = t ]'
pid=$(worker_pid)
"$ROOT/scripts/cluster.sh" stop >/dev/null && "$ROOT/scripts/cluster.sh" start >/dev/null
check "after a server restart the worker comes back and polls again" \
  'wait_for 30 "SELECT running AND pid <> $pid AND polls > 0 FROM brewml.worker_status"'
check "fetch_log kept all 11 kinds of outcome across the restarts" \
  '[ "$(q "SELECT count(DISTINCT outcome) = 11 FROM brewml.fetch_log")" = t ]'
q "ALTER SYSTEM RESET ALL" >/dev/null; q "SELECT pg_reload_conf()" >/dev/null
echo "1..$n"

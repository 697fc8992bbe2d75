#!/usr/bin/env bash
# Score ingestion (issue: score ingestion): brewml-push sends a directory of
# JSON Lines files through nginx and PostgREST.  Exact counts; re-sending
# changes nothing; bad lines are listed by line number while every good one
# loads; SIGKILL mid-file and --resume lose and double nothing; a PostgREST
# restart mid-push is ridden out; no token is refused.  Run by test/run.sh.
set -uo pipefail
ROOT=${BREWML_ROOT:?run me from test/run.sh}
WORK=${BREWML_WORK:?run me from test/run.sh}
export BREWML_URL=http://127.0.0.1:$BREWML_HTTP_PORT
PUSH=$ROOT/client/brewml-push
Q="'"		# a single quote, for SQL inside the checks
GEN=$ROOT/test/gen-scores
n=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
notok() { n=$((n + 1)); echo "not ok $n - $1"; [ -n "${2:-}" ] && sed 's/^/# /' <<<"$2"; }
check() { if eval "$2"; then ok "$1"; else notok "$1" "${3:-$out}"; fi; }
q() { psql -X -qtA -v ON_ERROR_STOP=1 -c "$1"; }
chunks_of() { q "SELECT count(*) FROM brewml.score_chunks c JOIN brewml.score_batches b ON b.id = c.batch_id WHERE b.model = '$1'"; }
# push_until MODEL N DIR: starts brewml-push on DIR in the background (pid in $pid), returns once N chunks are in
push_until() {
  "$PUSH" -q -c 256K -j 2 "$3" >"$3.log" 2>&1 &
  pid=$!
  for _ in $(seq 300); do
    [ "$(chunks_of "$1")" -ge "$2" ] && return
    sleep 0.1
  done
}
trap '"$ROOT/scripts/http.sh" stop >/dev/null 2>&1' EXIT
"$ROOT/scripts/http.sh" start >/dev/null || { notok "the HTTP stack starts"; exit 1; }
export BREWML_TOKEN=$("$ROOT/scripts/http.sh" token brewml_ingest)
D=$WORK/scores
mkdir -p "$D/dir/sub" "$D/bad" "$D/kill" "$D/restart" "$D/notoken"

# --- a directory of files, counted exactly; sending again changes nothing ---------
"$GEN" --lines 20000 --seed 1 "$D/dir/alpha.jsonl"
"$GEN" --lines 5000 --seed 2 --keys 1000 --numbers "$D/dir/beta.jsonl"
"$GEN" --lines 3000 --seed 3 "$D/dir/sub/gamma.jsonl"
echo "not a score file" >"$D/dir/readme.txt"
out=$("$PUSH" -c 64K -j 3 "$D/dir" 2>&1); rc=$?
check "brewml-push DIR loads every *.jsonl under it (subfolders too) and exits 0" '[ $rc = 0 ]'
beta_keys=$(python3 -c "import json; print(len({str(json.loads(l)['pk']) for l in open('$D/dir/beta.jsonl')}))")
check "scores hold exactly each model's distinct keys (beta repeats keys: $beta_keys of 5000 lines)" \
  '[ "$(q "SELECT string_agg(model || ${Q}=${Q} || n, ${Q} ${Q} ORDER BY model) FROM (SELECT model, count(*) n FROM brewml.scores GROUP BY model) s")" = "alpha=20000 beta=$beta_keys gamma=3000" ]'
beta_last=$(python3 -c "
import json
last = {}
for line in open('$D/dir/beta.jsonl'):
    o = json.loads(line); last[str(o['pk'])] = o['score']
print(sum(float(v) for v in last.values()))")
check "beta's scores are those of each key's last line" \
  '[ "$(q "SELECT round(sum(score), 2) FROM brewml.scores WHERE model = ${Q}beta${Q}")" = "$(printf %.2f "$beta_last")" ]'
check "each file is a finished batch whose totals match the file" \
  '[ "$(q "SELECT string_agg(source_file || ${Q}:${Q} || lines_seen || ${Q}/${Q} || rows_loaded || ${Q}/${Q} || lines_rejected, ${Q} ${Q} ORDER BY source_file) FROM brewml.score_batches WHERE status = ${Q}done${Q}")" = "alpha.jsonl:20000/20000/0 beta.jsonl:5000/5000/0 sub/gamma.jsonl:3000/3000/0" ]'
before=$(q "SELECT count(*) || '/' || sum(score) || '/' || max(loaded_at) FROM brewml.scores")
batches=$(q "SELECT count(*) FROM brewml.score_batches")
out=$("$PUSH" "$D/dir" 2>&1); rc=$?
check "sending the directory again: exit 0, every file already loaded" '[ $rc = 0 ] && [ "$(grep -c "already loaded" <<<"$out")" = 3 ]'
check "and nothing changed: same rows, same scores, no new batch" \
  '[ "$(q "SELECT count(*) || ${Q}/${Q} || sum(score) || ${Q}/${Q} || max(loaded_at) FROM brewml.scores")" = "$before" ] &&
   [ "$(q "SELECT count(*) FROM brewml.score_batches")" = "$batches" ]'

# --- bad lines: every good line loads, every bad one is listed by number ----------
{
  printf '\xEF\xBB\xBF{ "pk": "b1", "score": "1" }\n'		# 1 BOM: good
  printf '{ "pk": "b2", "score": "2" }\n'			# 2 good
  printf 'this is not JSON\n'					# 3
  printf '{ "score": "3" }\n'					# 4 no pk
  printf '{ "pk": "b5", "score": "abc" }\n'			# 5 score not numeric
  printf '\n'							# 6 empty line
  printf '{ "pk": "b7", "score": "7" }\r\n'			# 7 CRLF: good
  printf '{ "pk": "b8", "score": "'; head -c 10000000 /dev/zero | tr '\0' 7; printf '" }\n'	# 8: a 10 MB line
  printf '{ "pk": "b9", "score": "\xff" }\n'			# 9 not UTF-8
  printf '{ "pk": "b10", "score": 10 }'				# 10 good, no final newline
} >"$D/bad/bad.jsonl"
out=$("$PUSH" -c 1M "$D/bad" 2>&1); rc=$?
check "a file with bad lines: exit status 1" '[ $rc = 1 ]'
check "its good lines loaded: BOM, CRLF and no final newline included" \
  '[ "$(q "SELECT string_agg(pk, ${Q} ${Q} ORDER BY pk) FROM brewml.scores WHERE model = ${Q}bad${Q}")" = "b1 b10 b2 b7" ]'
check "every bad line is reported as file:line with its reason" \
  'for l in 3 4 5 6 8 9; do grep -q "bad.jsonl:$l: " <<<"$out" || exit 1; done' 
check "and stored in score_rejects with the line as received (the 10 MB one cut to its first KB)" \
  '[ "$(q "SELECT string_agg(r.line_number || ${Q}:${Q} || least(octet_length(r.line), 9999), ${Q} ${Q} ORDER BY r.line_number) FROM brewml.score_rejects r JOIN brewml.score_batches b ON b.id = r.batch_id WHERE b.model = ${Q}bad${Q}")" = "3:16 4:16 5:30 6:0 8:1024 9:28" ]'
check "the batch's totals: 10 lines, 4 loaded, 6 rejected" \
  '[ "$(q "SELECT lines_seen || ${Q}/${Q} || rows_loaded || ${Q}/${Q} || lines_rejected FROM brewml.score_batches WHERE model = ${Q}bad${Q}")" = "10/4/6" ]'

# --- SIGKILL mid-file, then --resume: nothing lost, nothing doubled ----------------
"$GEN" --lines 1500000 --seed 4 "$D/kill/big.jsonl"
lines=$(wc -l <"$D/kill/big.jsonl")
push_until big 10 "$D/kill"
kill -9 $pid 2>/dev/null; wait $pid 2>/dev/null
sleep 1
partial=$(q "SELECT count(*) FROM brewml.scores WHERE model = 'big'")
check "killed with SIGKILL mid-file: part of it is in (${partial} of $lines rows), the batch is unfinished" \
  '[ "$partial" -gt 0 ] && [ "$partial" -lt "$lines" ] && [ "$(q "SELECT status FROM brewml.score_batches WHERE model = ${Q}big${Q}")" = loading ]'
out=$("$PUSH" -q "$D/kill" 2>&1); rc=$?
check "sending it again without --resume is refused with a hint (exit 2)" '[ $rc = 2 ] && grep -q -- "--resume" <<<"$out"'
committed_before=$(chunks_of big)
LOG=$BREWML_VAR/http/access.log
sleep 2.5; sent_before=$(grep -c "POST /rpc/load_scores" "$LOG")
out=$("$PUSH" -q -r "$D/kill" 2>&1); rc=$?
check "--resume completes it (exit 0)" '[ $rc = 0 ]'
chunks=$(chunks_of big)
check "every line in exactly once: rows = lines = loaded, each chunk committed once" \
  '[ "$(q "SELECT count(*) FROM brewml.scores WHERE model = ${Q}big${Q}")" = "$lines" ] &&
   [ "$(q "SELECT lines_seen || ${Q}/${Q} || rows_loaded FROM brewml.score_batches WHERE model = ${Q}big${Q}")" = "$lines/$lines" ] &&
   [ "$(q "SELECT max(seq) + 1 FROM brewml.score_chunks c JOIN brewml.score_batches b ON b.id = c.batch_id WHERE b.model = ${Q}big${Q}")" = "$chunks" ]'
sleep 2.5; sent=$(( $(grep -c "POST /rpc/load_scores" "$LOG") - sent_before ))
check "the resumed run sent only the $((chunks - committed_before)) chunks not committed before the kill" \
  '[ "$sent" = "$((chunks - committed_before))" ]' "sent $sent of $chunks chunks, $committed_before were committed"

# --- PostgREST restarted during a push: the client rides it out --------------------
"$GEN" --lines 1500000 --seed 5 "$D/restart/again.jsonl"
push_until again 5 "$D/restart"
PGRST_PID=$(cat "$BREWML_VAR/http/postgrest.pid")
kill "$PGRST_PID"; sleep 2
"$ROOT/scripts/http.sh" start >/dev/null 2>&1
wait $pid; rc=$?
out=$(cat "$D/restart.log")
check "PostgREST stopped for 2 s and started again mid-push: the client still completes (exit 0)" '[ $rc = 0 ]'
check "with every line in exactly once" \
  '[ "$(q "SELECT count(*) FROM brewml.scores WHERE model = ${Q}again${Q}")" = 1500000 ] &&
   [ "$(q "SELECT lines_seen FROM brewml.score_batches WHERE model = ${Q}again${Q}")" = 1500000 ]'

# --- no token: refused, nothing loaded ---------------------------------------------
"$GEN" --lines 10 "$D/notoken/anon.jsonl"
out=$(BREWML_TOKEN= "$PUSH" "$D/notoken" 2>&1); rc=$?
check "without a token: exit 2, the 401 reported, nothing loaded" \
  '[ $rc = 2 ] && grep -q "HTTP 401" <<<"$out" && [ "$(q "SELECT count(*) FROM brewml.scores WHERE model = ${Q}anon${Q}")" = 0 ]'
mkdir -p "$D/odd"
: >"$D/odd/empty.jsonl"
echo '{"pk": "1", "score": "2"}' >"$D/odd/bad name.jsonl"
out=$("$PUSH" "$D/odd" 2>&1); rc=$?
check "a file name that is no model name: exit 2 naming it and the rule; an empty file is an empty batch" \
  '[ $rc = 2 ] && grep -q "bad name.jsonl: model name" <<<"$out" && grep -q "empty.jsonl: 0 lines" <<<"$out" &&
   [ "$(q "SELECT status || ${Q}/${Q} || lines_seen FROM brewml.score_batches WHERE model = ${Q}empty${Q}")" = "done/0" ]'
out=$("$PUSH" "$D/nope" 2>&1); rc=$?
check "a missing directory: exit 64 with a message" '[ $rc = 64 ] && grep -q "not a directory" <<<"$out"'

q "TRUNCATE brewml.scores, brewml.score_batches CASCADE" >/dev/null 2>&1
echo "1..$n"

"""Benchmark of score ingestion (issue: score ingestion), printing ratios.

A JSON Lines file of BENCH_SCORES_BYTES (default 4.5e9, the seed's record file)
in the seed's shape, made by test/gen-scores, and the same rows as CSV. In one run:
  COPY          the CSV into brewml.scores from a local file: PostgreSQL's own
                fastest path, which needs direct database access (the anchor)
  brewml-push   the JSON Lines file through nginx and PostgREST, BENCH_SCORES_JOBS
                (4) chunks of BENCH_SCORES_CHUNK (8M) in flight; the client's peak
                RSS, and the private RSS of PostgREST and of its busiest PostgreSQL
                backend, sampled every 0.5 s: the peak over the first quarter of
                the push against the peak over all of it (flat: they match)
  naive         one INSERT per line over HTTP (one POST per line to a one-row SQL
                function through nginx, as a typical answer to the seed would do),
                on the first BENCH_SCORES_NAIVE_LINES (20,000) lines, 4 at a time
Each loads into an emptied brewml.scores with its primary key. Needs PG* aimed at a
database with brewml and the cluster's BREWML_* settings (bench/run.sh sets them).
"""
import json
import os
import subprocess
import sys
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor

from benchlib import psql, sql_seconds

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WORK = os.path.join(os.environ.get("BREWML_BENCH_DIR", "/tmp/brewml-bench"), "scores")
BYTES = int(float(os.environ.get("BENCH_SCORES_BYTES", "4.5e9")))
JOBS = os.environ.get("BENCH_SCORES_JOBS", "4")
CHUNK = os.environ.get("BENCH_SCORES_CHUNK", "8M")
NAIVE_LINES = int(os.environ.get("BENCH_SCORES_NAIVE_LINES", "20000"))
PORTS = {"BREWML_HTTP_PORT": "8497", "BREWML_POSTGREST_PORT": "3497", "BREWML_POSTGREST_ADMIN_PORT": "3496"}
MODEL = "bench_scores"


def rss_kb(pid):
    """A process's private resident memory (RssAnon: shared buffers not counted), KB."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("RssAnon:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def sample_server(stop, samples, pgrst_pid):
    """(time, PostgREST's RSS, the largest RSS of a backend of its pool) every 0.5 s, until stop."""
    while not stop.is_set():
        pids = psql("SELECT pid FROM pg_stat_activity WHERE application_name = 'postgrest'").split()
        samples.append((time.time(), rss_kb(pgrst_pid), max([0] + [rss_kb(int(p)) for p in pids])))
        stop.wait(0.5)


def main():
    os.makedirs(WORK, exist_ok=True)
    os.chmod(WORK, 0o755)
    data_dir = os.path.join(WORK, "files")
    os.makedirs(data_dir, exist_ok=True)
    jsonl = os.path.join(data_dir, MODEL + ".jsonl")
    csv = os.path.join(WORK, MODEL + ".csv")
    gen = os.path.join(ROOT, "test", "gen-scores")
    if not os.path.exists(jsonl) or abs(os.path.getsize(jsonl) - BYTES) > 100:
        subprocess.run([gen, "--bytes", str(BYTES), "--seed", "2", jsonl], check=True)
        subprocess.run([gen, "--bytes", str(BYTES), "--seed", "2", "--csv", MODEL, csv], check=True)
    lines = int(subprocess.run(["wc", "-l", jsonl], capture_output=True, text=True).stdout.split()[0])
    size = os.path.getsize(jsonl)

    # COPY, the anchor
    psql("TRUNCATE brewml.scores, brewml.score_batches CASCADE")
    copy_s, _ = sql_seconds(f"COPY brewml.scores (model, pk, score, batch_id, line, loaded_at) FROM '{csv}' CSV", runs=1)
    copied = int(psql(f"SELECT count(*) FROM brewml.scores WHERE model = '{MODEL}'"))
    psql("TRUNCATE brewml.scores, brewml.score_batches CASCADE", "CHECKPOINT")

    os.environ.update(PORTS)
    http = os.path.join(ROOT, "scripts", "http.sh")
    subprocess.run([http, "start"], check=True, stdout=subprocess.DEVNULL)
    try:
        token = subprocess.run([http, "token", "brewml_ingest", "86400"], capture_output=True, text=True,
                               check=True).stdout.strip()
        base = f"http://127.0.0.1:{PORTS['BREWML_HTTP_PORT']}"
        pgrst_pid = int(open(os.path.join(os.environ["BREWML_VAR"], "http", "postgrest.pid")).read())
        samples = []
        stop = threading.Event()
        sampler = threading.Thread(target=sample_server, args=(stop, samples, pgrst_pid))
        sampler.start()
        t0 = time.time()
        log = os.path.join(WORK, "push.log")
        with open(log, "w") as logf:
            proc = subprocess.Popen([os.path.join(ROOT, "client", "brewml-push"), "-q", "-j", JOBS, "-c", CHUNK,
                                     "-u", base, "-t", token, data_dir], stdout=logf, stderr=subprocess.STDOUT)
            _, status, usage = os.wait4(proc.pid, 0)	# this child's own peak RSS
        push_s = time.time() - t0
        client_rss = usage.ru_maxrss		# KB
        stop.set()
        sampler.join()
        if os.waitstatus_to_exitcode(status) != 0:
            raise RuntimeError(f"brewml-push failed: {open(log).read()[-2000:]}")
        pushed = int(psql(f"SELECT count(*) FROM brewml.scores WHERE model = '{MODEL}'"))

        # the naive client: one POST, one INSERT per line
        psql("CREATE OR REPLACE FUNCTION api.bench_insert_score(pk text, score text) RETURNS void "
             "LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp BEGIN ATOMIC "
             f"INSERT INTO brewml.scores VALUES ('{MODEL}_naive', pk, score::numeric, 0, 0, now()) "
             "ON CONFLICT (model, pk) DO UPDATE SET score = EXCLUDED.score; END",
             "GRANT EXECUTE ON FUNCTION api.bench_insert_score(text, text) TO brewml_ingest",
             "NOTIFY pgrst, 'reload schema'")
        time.sleep(1)
        sample = []
        with open(jsonl) as f:
            for _ in range(NAIVE_LINES):
                sample.append(f.readline())

        def one(line):
            req = urllib.request.Request(base + "/rpc/bench_insert_score", data=json.dumps(json.loads(line)).encode(),
                                         method="POST", headers={"Content-Type": "application/json",
                                                                 "Authorization": f"Bearer {token}"})
            urllib.request.urlopen(req, timeout=30).read()

        t0 = time.time()
        with ThreadPoolExecutor(4) as pool:
            list(pool.map(one, sample))
        naive_s = time.time() - t0
        naive_rows = int(psql(f"SELECT count(*) FROM brewml.scores WHERE model = '{MODEL}_naive'"))
    finally:
        subprocess.run([http, "stop"], stdout=subprocess.DEVNULL)

    if copied != lines or pushed != lines or naive_rows != len(sample):
        raise RuntimeError(f"row counts differ: file {lines}, COPY {copied}, push {pushed}, naive {naive_rows}")
    print(f"\nbench/scores: {size / 1e9:.2f} GB of JSON Lines, {lines:,} rows, into brewml.scores "
          f"(primary key model, pk); push: {JOBS} jobs of {CHUNK} chunks")
    print(f"| {'path':<52} | {'seconds':>9} | {'rows/s':>10} | vs COPY")
    print(f"|{'-' * 54}|{'-' * 11}|{'-' * 12}|--------")
    for name, secs, rows in [("COPY of the CSV from a local file (direct access)", copy_s, lines),
                             ("brewml-push through nginx + PostgREST", push_s, lines),
                             (f"naive: one POST + INSERT per line ({len(sample):,} lines)", naive_s, len(sample))]:
        print(f"| {name:<52} | {secs:>9.1f} | {rows / secs:>10,.0f} | {(rows / secs) / (lines / copy_s):.2f}")
    print(f"\n| {'measure':<52} | {'value':>10} | target")
    print(f"|{'-' * 54}|{'-' * 12}|-------")
    print(f"| {'brewml-push rows/s / COPY rows/s':<52} | {copy_s / push_s:>10.2f} | >= 0.50")
    print(f"| {'brewml-push peak RSS, MB':<52} | {client_rss / 1024:>10.1f} | < 64")
    # flat: the peak over the first quarter of the push against the peak over all of it
    quarter = [s for s in samples if s[0] <= samples[0][0] + push_s / 4] or samples[:1]
    for label, k in (("PostgREST", 1), ("largest PostgreSQL backend", 2)):
        first, whole = max(s[k] for s in quarter) / 1024, max(s[k] for s in samples) / 1024
        print(f"| {label + ' private RSS, MB: first quarter / all':<52} | {first:>4.0f} / {whole:<3.0f} | flat")


if __name__ == "__main__":
    sys.exit(main())

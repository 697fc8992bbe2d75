"""Benchmark of the HTTP surface (issue: HTTP surface), printing ratios.
(Named web.py: a module named http would hide the standard library's.)

The sensor case's POST /{sensor_id}/predict, measured with wrk in one run:
  nginx        POST /SEN0001/predict {"value": 10} through nginx (the seed's route)
  postgrest    POST /rpc/predict {"sensor_id", "value"} on PostgREST directly
  trivial      POST /rpc/bench_trivial {"value": 10} on PostgREST: a one-line SQL
               function, PostgREST's own ceiling on this machine
  flask        the same route and table in Flask under gunicorn, one worker per core,
               one psycopg connection each (bench/http_flask.py), the typical answer
  batch        POST /rpc/predict_batch with 10,000 values a request: predictions/s
Requests/s and p99 latency, wrk with BENCH_HTTP_CONNECTIONS (16) connections for
BENCH_HTTP_SECONDS (5) each, the routes taken in turn BENCH_HTTP_ROUNDS (3) times
(this machine's neighbours make one run of a few seconds vary by 10%); a route's
figures are the means over its rounds.  Needs PG* aimed at a database with brewml and the
cluster's BREWML_* settings (bench/run.sh sets them).
"""
import json
import os
import re
import subprocess
import sys
import time
import urllib.request

from benchlib import psql

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCH = os.path.join(ROOT, "bench")
SECONDS = int(os.environ.get("BENCH_HTTP_SECONDS", "5"))
ROUNDS = int(os.environ.get("BENCH_HTTP_ROUNDS", "3"))
CONNS = int(os.environ.get("BENCH_HTTP_CONNECTIONS", "16"))
CORES = os.cpu_count() or 2
PORTS = {"BREWML_HTTP_PORT": "8497", "BREWML_POSTGREST_PORT": "3497", "BREWML_POSTGREST_ADMIN_PORT": "3496"}
FLASK_PORT = 8496
BATCH = 10000


def url(port, path):
    return f"http://127.0.0.1:{port}{path}"


def post(u, body, ctype="application/json"):
    req = urllib.request.Request(u, data=body.encode(), method="POST", headers={"Content-Type": ctype})
    with urllib.request.urlopen(req, timeout=10) as r:
        return r.read().decode().strip()


def wrk(u, body, conns=CONNS):
    """Requests/s and p99 latency in ms of POSTing body to u."""
    env = dict(os.environ, WRK_BODY=body)
    out = subprocess.run(["wrk", f"-t{min(CORES, conns)}", f"-c{conns}", f"-d{SECONDS}s", "--latency",
                          "-s", os.path.join(BENCH, "wrk_post.lua"), u],
                         capture_output=True, text=True, env=env, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([0-9.]+)", out).group(1))
    p99 = re.search(r"99%\s+([0-9.]+)(us|ms|s)", out)
    scale = {"us": 0.001, "ms": 1, "s": 1000}[p99.group(2)]
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if bad:
        raise RuntimeError(f"{u}: {bad.group(1)} error responses\n{out}")
    return rps, float(p99.group(1)) * scale


def wait(u, seconds=20):
    deadline = time.time() + seconds
    while time.time() < deadline:
        try:
            urllib.request.urlopen(u, timeout=2)
            return
        except urllib.error.HTTPError:
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{u} did not answer")


def main():
    os.environ.update(PORTS)
    http = os.path.join(ROOT, "scripts", "http.sh")
    subprocess.run([http, "start"], check=True, stdout=subprocess.DEVNULL)
    flask = None
    try:
        psql("SELECT brewml.fit('SEN0001', ARRAY[10, 5, 6, 9])",
             "CREATE OR REPLACE FUNCTION api.bench_trivial(value float8) RETURNS boolean "
             "LANGUAGE sql IMMUTABLE RETURN value > 0",
             "GRANT EXECUTE ON FUNCTION api.bench_trivial(float8) TO brewml_anon",
             "NOTIFY pgrst, 'reload schema'")
        time.sleep(1)
        flask = subprocess.Popen(["/usr/bin/python3", "-m", "gunicorn", "-w", str(CORES), "-b",
                                  f"127.0.0.1:{FLASK_PORT}", "--chdir", BENCH, "--log-level", "warning",
                                  "http_flask:app"])
        wait(url(FLASK_PORT, "/"))

        nginx, pgrst = PORTS["BREWML_HTTP_PORT"], PORTS["BREWML_POSTGREST_PORT"]
        routes = [
            ("through nginx: POST /SEN0001/predict", url(nginx, "/SEN0001/predict"), '{"value": 10}'),
            ("PostgREST: POST /rpc/predict", url(pgrst, "/rpc/predict"), '{"sensor_id": "SEN0001", "value": 10}'),
            ("PostgREST ceiling: POST /rpc/bench_trivial", url(pgrst, "/rpc/bench_trivial"), '{"value": 10}'),
            ("Flask + gunicorn: POST /SEN0001/predict", url(FLASK_PORT, "/SEN0001/predict"), '{"value": 10}'),
        ]
        for name, u, body in routes:	# every route answers right before it is timed
            got = post(u, body)
            want = "true" if "trivial" in u else "false"
            if got != want:
                raise RuntimeError(f"{name} answered {got!r}, not {want}")
        values = [i % 20 for i in range(BATCH)]
        batch_body = json.dumps({"sensor_id": "SEN0001", "values": values})
        batch_url = url(pgrst, "/rpc/predict_batch")
        if json.loads(post(batch_url, batch_body)) != [v >= 7.5 + 2 * 2.3804761428476167 for v in values]:
            raise RuntimeError("predict_batch answered wrong")

        runs = {name: [] for name, _, _ in routes}
        for _ in range(ROUNDS):
            for name, u, body in routes:
                runs[name].append(wrk(u, body))
        results = {name: (sum(r[0] for r in rs) / len(rs), sum(r[1] for r in rs) / len(rs))
                   for name, rs in runs.items()}
        batch_rps, batch_p99 = wrk(batch_url, batch_body, conns=CORES * 2)
    finally:
        if flask:
            flask.terminate()
            flask.wait()
        subprocess.run([http, "stop"], stdout=subprocess.DEVNULL)

    names = [r[0] for r in routes]
    nginx_r, pgrst_r, trivial_r, flask_r = (results[n][0] for n in names)
    print(f"\nbench/web: POST predict, wrk {CONNS} connections, {ROUNDS} rounds of {SECONDS} s per route, "
          f"{CORES} cores shared by wrk, the servers and PostgreSQL")
    print(f"| {'route':<46} | {'requests/s':>10} | {'p99 ms':>7} |")
    print(f"|{'-' * 48}|{'-' * 12}|{'-' * 9}|")
    for n in names:
        print(f"| {n:<46} | {results[n][0]:>10,.0f} | {results[n][1]:>7.2f} |")
    print(f"| {'PostgREST: POST /rpc/predict_batch, ' + format(BATCH, ',') + ' values':<46} | "
          f"{batch_rps:>10,.1f} | {batch_p99:>7.2f} |")
    print(f"\n| {'ratio':<58} | {'value':>8} | target")
    print(f"|{'-' * 60}|{'-' * 10}|-------")
    for label, value, target in [
        ("PostgREST predict / Flask predict", pgrst_r / flask_r, ">= 1.00"),
        ("nginx predict / PostgREST predict", nginx_r / pgrst_r, ">= 0.85"),
        ("PostgREST predict / PostgREST trivial function", pgrst_r / trivial_r, ">= 0.90"),
    ]:
        print(f"| {label:<58} | {value:>8.2f} | {target}")
    print(f"| {'batch predictions/s':<58} | {batch_rps * BATCH:>8,.0f} | >= 100,000")


if __name__ == "__main__":
    sys.exit(main())

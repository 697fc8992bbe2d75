"""Benchmark of the sensor models (issue: foundation), printing time ratios.

For each size (BENCH_ROWS, default "33901 10000000") it generates collects.csv
with test/gen-collects, then times, in the same run:
  brewml    brewml.fit_readings() + brewml.in_alert(v), from the readings table
  (c)       PostgreSQL's built-in avg/stddev_samp, 12 aggregates GROUP BY sensor
  (b)       pandas: read_csv + groupby mean/std + vectorised alert
  (a)       draft.py's loops in plain Python (test/draft.py)
Each side starts from its data at rest: the CSV file for Python, the readings
table for PostgreSQL. The one-off COPY of the CSV into the table is its own row.
Database sides take the best of 3 runs; Python sides run once at the large size.
Needs PG* variables aimed at a database with brewml (bench/run.sh sets them).
"""
import json
import os
import subprocess
import sys
import time

from benchlib import psql, sql_seconds

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WORK = os.environ.get("BREWML_BENCH_DIR", "/tmp/brewml-bench")
PYTHON = "/usr/bin/python3"          # Debian's, with python3-pandas
VALUE = 0.003                        # the value in_alert is asked about
COLS = ["vel_rms_x", "vel_rms_y", "vel_rms_z", "accel_rms_x", "accel_rms_y", "accel_rms_z"]
BUILTIN = ("SELECT sensor_id, " + ", ".join(f"avg({c}), stddev_samp({c})" for c in COLS) +
           " FROM brewml.readings GROUP BY sensor_id")


def python_side(script, csv, runs):
    best = None
    for _ in range(runs):
        r = subprocess.run([PYTHON, os.path.join(ROOT, "bench", script), csv, str(VALUE)],
                           check=True, capture_output=True, text=True)
        res = json.loads(r.stdout)
        res["total"] = res["read"] + res["fit"] + res["alert"]
        if best is None or res["total"] < best["total"]:
            best = res
    return best


def bench(rows):
    csv = os.path.join(WORK, f"collects_{rows}.csv")
    if not os.path.exists(csv):
        subprocess.run([os.path.join(ROOT, "test", "gen-collects"), "-n", str(rows), "-o", csv],
                       check=True)
        os.chmod(csv, 0o644)
    psql("TRUNCATE brewml.readings")
    copy_s, _ = sql_seconds(f"SELECT brewml.load_readings('{csv}')", runs=1)
    psql("VACUUM ANALYZE brewml.readings")
    sql_seconds("SELECT count(*) FROM brewml.readings", runs=1)   # warm the cache alike for all

    fit_s, _ = sql_seconds("SELECT brewml.fit_readings()")
    alert_s, alerts = sql_seconds(
        "SELECT count(*) FILTER (WHERE a) FROM brewml.in_alert(%s) i, "
        "unnest(ARRAY[vel_rms_x, vel_rms_y, vel_rms_z, accel_rms_x, accel_rms_y, accel_rms_z]) a" % VALUE)
    builtin_s, _ = sql_seconds(BUILTIN)
    serial = ("SET max_parallel_workers_per_gather = 0",)
    serial_s, _ = sql_seconds("SELECT brewml.fit_readings()", setup=serial)
    serial_builtin_s, _ = sql_seconds(BUILTIN, setup=serial)

    runs = 3 if rows <= 1_000_000 else 1
    pandas = python_side("pandas_side.py", csv, runs)
    draft = python_side("draft_side.py", csv, runs)

    brewml_s = fit_s + alert_s
    for name, res in (("pandas", pandas), ("draft", draft)):
        if res["alerts"] != int(alerts) or res["sensors"] != 10:
            sys.exit(f"bench: {name} disagrees with brewml: {res} vs {alerts} alerts")
    table = [
        ("COPY collects.csv into brewml.readings (one-off)", copy_s, None,
         f"{rows / copy_s:,.0f} rows/s"),
        ("brewml: fit_readings() + in_alert()", brewml_s, 1.0, "parallel, one scan"),
        ("brewml: fit_readings() alone", fit_s, None, "parallel"),
        ("brewml: fit_readings() alone, serial", serial_s, None, "max_parallel_workers_per_gather = 0"),
        ("(c) built-in avg/stddev_samp x 12, GROUP BY", builtin_s, builtin_s / fit_s,
         "against fit_readings() alone"),
        ("(c) built-ins, serial", serial_builtin_s, serial_builtin_s / serial_s,
         "against fit_readings() alone, serial"),
        ("(b) pandas read_csv + groupby + alert", pandas["total"], pandas["total"] / brewml_s,
         f"read {pandas['read']:.2f}s, groupby {pandas['fit']:.3f}s"),
        ("(a) draft.py loops, plain Python", draft["total"], draft["total"] / brewml_s,
         f"read {draft['read']:.2f}s, loops {draft['fit']:.2f}s"),
    ]
    print(f"\n{rows:,} rows ({os.path.getsize(csv) / 1e6:,.0f} MB of CSV); {alerts} (sensor, column) "
          f"pairs in alert at {VALUE}, the same on every side")
    print(f"| {'side':<50} | {'seconds':>9} | {'anchor / brewml':>15} | note")
    print(f"|{'-' * 52}|{'-' * 11}|{'-' * 17}|------")
    for name, secs, ratio, note in table:
        r = "" if ratio is None else f"{ratio:,.2f}x"
        print(f"| {name:<50} | {secs:>9.3f} | {r:>15} | {note}")
    sys.stdout.flush()


if __name__ == "__main__":
    os.makedirs(WORK, exist_ok=True)
    print(f"bench/sensor: {time.strftime('%Y-%m-%d %H:%M')}, {os.cpu_count()} cores; "
          "anchor / brewml > 1 means brewml is that many times faster")
    for n in os.environ.get("BENCH_ROWS", "33901 10000000").split():
        bench(int(n))

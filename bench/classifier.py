"""Benchmark of the in-database classifier (issue: IBU classifier), printing ratios.

A synthetic table of BENCH_CLASSIFIER_ROWS (default 1,000,000) beers with the six
features of the IBU model (abv, target_fg, target_og, ebc, srm, ph; 1% missing)
and a class from a noisy IBU, plus a 200,000-row test table, made in SQL from a
seed. In the same run:
  training   brewml.train (reading the table included) against scikit-learn's
             RandomForestClassifier.fit on the same rows in memory, one core, with
             the same trees, depth and features per split (median-imputed for sklearn)
  predicting brewml.classify over the test table in SQL, rows/s, against
             sklearn's predict on the same rows (vectorised, in memory)
  quality    accuracy of each on the test table
Needs PG* variables aimed at a database with brewml (bench/run.sh sets them).
"""
import json
import os
import subprocess
import sys

from benchlib import psql, sql_seconds

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WORK = os.environ.get("BREWML_BENCH_DIR", "/tmp/brewml-bench")
ROWS = int(os.environ.get("BENCH_CLASSIFIER_ROWS", "1000000"))
TEST_ROWS = 200000
N_TREES, DEPTH, MAX_FEATURES = 50, 10, 2
PYTHON = "/usr/bin/python3"

MAKE = """
DROP TABLE IF EXISTS {t};
SELECT setseed({seed});
CREATE TABLE {t} AS
WITH b AS (
  SELECT i, exp(1.6 + 0.35 * sqrt(-2 * ln(1 - random())) * cos(2 * pi() * random())) AS abv,
         exp(3.3 + 0.9 * sqrt(-2 * ln(1 - random())) * cos(2 * pi() * random())) AS ebc,
         random() AS u1, random() AS u2, random() AS u3, random() AS u4, random() AS u5, random() AS m
    FROM generate_series(1, {n}) i)
SELECT i AS id, abv,
       1000 + (7.5 * abv + 8 * (u1 - 0.5)) * 0.24 + 4 * (u2 - 0.5) AS target_fg,
       1000 + 7.5 * abv + 8 * (u1 - 0.5) AS target_og,
       CASE WHEN m < 0.01 THEN NULL ELSE ebc END AS ebc,
       ebc * 0.508 + (u3 - 0.5) AS srm,
       CASE WHEN m > 0.995 THEN NULL ELSE 4.4 + 0.6 * (u4 - 0.5) END AS ph,
       brewml.ibu_class(greatest(0, 8 + 5.5 * abv + 12 * sin(ebc / 40) + 60 * (u5 - 0.5) + 25 * (u4 - 0.5)))
         AS label
  FROM b;
"""


def main():
    os.makedirs(WORK, exist_ok=True)
    psql(MAKE.format(t="bench_train", seed=0.42, n=ROWS), MAKE.format(t="bench_test", seed=0.24, n=TEST_ROWS),
         "ANALYZE bench_train", "ANALYZE bench_test")
    cols = "id, label, abv, target_fg, target_og, ebc, srm, ph"
    for t in ("bench_train", "bench_test"):
        path = os.path.join(WORK, t + ".csv")
        with open(path, "w") as f:
            subprocess.run(["psql", "-X", "-q", "-c", f"COPY (SELECT {cols} FROM {t} ORDER BY id) TO STDOUT CSV HEADER"],
                           check=True, stdout=f)

    params = json.dumps({"n_trees": N_TREES, "max_depth": DEPTH, "max_features": MAX_FEATURES, "oob_rows": 0})
    train_s, model_id = sql_seconds(
        "SELECT brewml.train('bench', 'SELECT label, abv, target_fg, target_og, ebc, srm, ph FROM bench_train ORDER BY id', "
        f"'label', ARRAY['abv', 'target_fg', 'target_og', 'ebc', 'srm', 'ph'], '{params}')", runs=1)
    psql(f"SELECT brewml.deploy({model_id})")
    classify = "brewml.classify('bench', ARRAY[abv, target_fg, target_og, ebc, srm, ph])"
    predict_s, right = sql_seconds(f"SELECT count(*) FILTER (WHERE {classify} = label) FROM bench_test")
    serial_s, _ = sql_seconds(f"SELECT count(*) FILTER (WHERE {classify} = label) FROM bench_test",
                              setup=("SET max_parallel_workers_per_gather = 0",))
    big_s, _ = sql_seconds(f"SELECT count({classify}) FROM bench_train", runs=1)
    # on 2 cores the leader competes with its 2 workers for the CPUs
    workers_s, _ = sql_seconds(f"SELECT count({classify}) FROM bench_train", runs=1,
                               setup=("SET parallel_leader_participation = off",))

    r = subprocess.run([PYTHON, os.path.join(ROOT, "bench", "classifier_sklearn.py"),
                        os.path.join(WORK, "bench_train.csv"), os.path.join(WORK, "bench_test.csv"),
                        str(N_TREES), str(DEPTH), str(MAX_FEATURES)], check=True, capture_output=True, text=True)
    sk = json.loads(r.stdout)

    acc = int(right) / TEST_ROWS
    print(f"\nbench/classifier: random forest, {N_TREES} trees, max_depth {DEPTH}, max_features {MAX_FEATURES}; "
          f"{ROWS:,} training rows, {TEST_ROWS:,} test rows; 'sklearn / brewml' > 1 means brewml is faster")
    print(f"| {'measure':<52} | {'brewml':>12} | {'scikit-learn':>12} | {'sklearn / brewml':>16}")
    print(f"|{'-' * 54}|{'-' * 14}|{'-' * 14}|{'-' * 18}")
    rows = [
        ("training, seconds (brewml: reading the table too)", f"{train_s:.2f}", f"{sk['fit']:.2f}", f"{sk['fit'] / train_s:.2f}x"),
        (f"predict {TEST_ROWS:,} rows in SQL, rows/s (parallel)", f"{TEST_ROWS / predict_s:,.0f}", f"{TEST_ROWS / sk['predict']:,.0f}",
         f"{sk['predict'] / predict_s:.2f}x"),
        (f"predict {TEST_ROWS:,} rows in SQL, rows/s (1 process)", f"{TEST_ROWS / serial_s:,.0f}", "", ""),
        (f"predict {ROWS:,} rows in SQL, rows/s (parallel)", f"{ROWS / big_s:,.0f}", "", ""),
        (f"the same, parallel_leader_participation = off", f"{ROWS / workers_s:,.0f}", "", ""),
        ("test accuracy", f"{acc:.4f}", f"{sk['accuracy']:.4f}", ""),
    ]
    for name, a, b, c in rows:
        print(f"| {name:<52} | {a:>12} | {b:>12} | {c:>16}")
    psql("DROP TABLE bench_train, bench_test")


if __name__ == "__main__":
    main()
    sys.stdout.flush()

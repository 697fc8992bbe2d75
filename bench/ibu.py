"""The IBU baseline protocol (../shared/spec/punkapi.md) in brewml and in scikit-learn,
over the same five cross-validation seeds, in the same run.

brewml: brewml.cross_validate_ibu() on the punkapi-db beers (defaults: 300 trees,
1 feature per split, leaves of 3); scikit-learn: bench/ibu_sklearn.py (300 trees,
median imputation), the spec's baseline. Prints accuracy and macro-F1 per seed, their
means, and the seconds each side took per protocol run (25 fits).
Needs PG* variables aimed at a database with brewml (bench/run.sh sets them).
"""
import json
import os
import subprocess
import time

from benchlib import psql, sql_seconds

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.path.join(ROOT, "node_modules", "punkapi-db", "data.json")
SEEDS = [0, 1, 2, 3, 4]


def main():
    with open(DATA) as f:
        payload = f.read().replace("'", "''")
    psql("TRUNCATE brewml.raw_beers, brewml.cleaned_beers",
         f"SELECT brewml.ingest_beers('punkapi-db', NULL, '{payload}'::jsonb)")
    ours = []
    for s in SEEDS:
        seconds, out = sql_seconds(f"SELECT accuracy_mean, macro_f1_mean FROM brewml.cross_validate_ibu(seed => {s})",
                                   runs=1)
        acc, f1 = map(float, out.split("|"))
        ours.append((acc, f1, seconds))
    t0 = time.perf_counter()
    r = subprocess.run(["/usr/bin/python3", os.path.join(ROOT, "bench", "ibu_sklearn.py"), DATA] + [str(s) for s in SEEDS],
                       check=True, capture_output=True, text=True)
    sk_seconds = (time.perf_counter() - t0) / len(SEEDS)
    theirs = [json.loads(line) for line in r.stdout.splitlines()]

    print("\nbench/ibu: the IBU protocol (5-fold stratified, repeated 5 times), per cross-validation seed")
    print(f"| {'seed':>4} | {'brewml accuracy':>15} | {'brewml macro-F1':>15} | {'sklearn accuracy':>16} | {'sklearn macro-F1':>16}")
    print(f"|{'-' * 6}|{'-' * 17}|{'-' * 17}|{'-' * 18}|{'-' * 18}")
    for s, (a, f, _), t in zip(SEEDS, ours, theirs):
        print(f"| {s:>4} | {a:>15.4f} | {f:>15.4f} | {t['accuracy']:>16.4f} | {t['macro_f1']:>16.4f}")
    mean = lambda xs: sum(xs) / len(xs)
    print(f"| mean | {mean([o[0] for o in ours]):>15.4f} | {mean([o[1] for o in ours]):>15.4f} | "
          f"{mean([t['accuracy'] for t in theirs]):>16.4f} | {mean([t['macro_f1'] for t in theirs]):>16.4f}")
    ours_s = mean([o[2] for o in ours])
    print(f"seconds per protocol run (25 fits of 300 trees): brewml {ours_s:.2f}, scikit-learn {sk_seconds:.2f} "
          f"(with its start-up), sklearn / brewml = {sk_seconds / ours_s:.1f}x")
    psql("TRUNCATE brewml.raw_beers, brewml.cleaned_beers")


if __name__ == "__main__":
    main()

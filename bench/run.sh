#!/usr/bin/env bash
# Runs the benchmarks on a temporary cluster of their own (never the one of
# make run), with the data under $BREWML_BENCH_DIR (default /tmp/brewml-bench).
# BENCH="sensor classifier ibu web scores" picks the benchmarks; BENCH_ROWS="33901 10000000"
# sets the sizes of bench/sensor.py, BENCH_CLASSIFIER_ROWS (1000000) those of
# bench/classifier.py.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
export BREWML_BENCH_DIR=${BREWML_BENCH_DIR:-/tmp/brewml-bench}
mkdir -p "$BREWML_BENCH_DIR" && chmod 755 "$BREWML_BENCH_DIR"
export BREWML_VAR=$BREWML_BENCH_DIR/cluster BREWML_PGPORT=${BREWML_BENCH_PGPORT:-5498} BREWML_DB=brewml_bench
trap '"$ROOT/scripts/cluster.sh" stop >/dev/null' EXIT
"$ROOT/scripts/cluster.sh" start >/dev/null
eval "$("$ROOT/scripts/cluster.sh" env)"
for b in ${BENCH:-sensor classifier ibu web scores}; do
  python3 "$ROOT/bench/$b.py"
done

"""Anchor (a) of bench/sensor.py: draft.py's loops in plain Python (test/draft.py).
Prints the seconds of each step as JSON."""
import json
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "test"))
import draft  # noqa: E402

path, value = sys.argv[1], float(sys.argv[2])
t0 = time.perf_counter()
rows = draft.read_rows(path)
t1 = time.perf_counter()
model = draft.fit(rows)
t2 = time.perf_counter()
alert = draft.in_alert(model, value)
t3 = time.perf_counter()
print(json.dumps({"read": t1 - t0, "fit": t2 - t1, "alert": t3 - t2, "sensors": len(model),
                  "alerts": sum(bool(v) for cols in alert.values() for v in cols.values())}))

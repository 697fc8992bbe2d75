"""Anchor (b) of bench/sensor.py: the sensor model in pandas, vectorised.

Reads collects.csv, fits mean and sample std of the six vibration columns per
sensor with one groupby, and answers in_alert for a value. Prints the seconds
of each step as JSON. Run with Debian's python3 (python3-pandas)."""
import json
import sys
import time

import pandas as pd

COLUMNS = ["params.velRMS.x", "params.velRMS.y", "params.velRMS.z",
           "params.accelRMS.x", "params.accelRMS.y", "params.accelRMS.z"]
path, value = sys.argv[1], float(sys.argv[2])
t0 = time.perf_counter()
df = pd.read_csv(path, usecols=COLUMNS + ["sensorId"])
t1 = time.perf_counter()
stats = df.groupby("sensorId")[COLUMNS].agg(["mean", "std"])
t2 = time.perf_counter()
means = stats.xs("mean", axis=1, level=1)
stds = stats.xs("std", axis=1, level=1)
alert = value >= means + 2 * stds
t3 = time.perf_counter()
print(json.dumps({"read": t1 - t0, "fit": t2 - t1, "alert": t3 - t2,
                  "sensors": len(stats), "alerts": int(alert.values.sum())}))

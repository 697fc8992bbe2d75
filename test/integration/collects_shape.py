"""Check that a generated collects.csv has the shape of the case's data file
(../shared/spec/sensor-case.md): header, sensors in order, NaN holes, ranges."""
import csv
import re
import sys

HEADER = ["_id", "createdAt", "params.accelRMS.x", "params.accelRMS.y", "params.accelRMS.z",
          "params.duration", "params.sampRate", "params.timeStart", "params.velRMS.x",
          "params.velRMS.y", "params.velRMS.z", "sensorId", "temp"]
SENSORS = ["IAJ9206", "LZY4270", "MUR8453", "MXK6435", "MYD8706", "MYS2071", "MZU6388",
           "NAH4736", "NAI1549", "NEW4797"]
errors = []
with open(sys.argv[1], newline="") as f:
    reader = csv.reader(f)
    header = next(reader)
    rows = list(reader)
if header != HEADER:
    errors.append(f"header {header}")
if len(rows) != 33901:
    errors.append(f"{len(rows)} rows")
if any(len(r) != 13 for r in rows):
    errors.append("a row without 13 fields")
order = []
for r in rows:
    if r[11] not in order:
        order.append(r[11])
if order != SENSORS:
    errors.append(f"sensors in order of first appearance: {order}")
for j, name in enumerate(HEADER):
    empty = sum(1 for r in rows if r[j] == "")
    want = 460 if name.startswith("params.") else 0
    if empty != want:
        errors.append(f"{name}: {empty} empty values, want {want}")
if len({r[0] for r in rows}) != len(rows) or not all(re.fullmatch(r"[0-9a-f]{24}", r[0]) for r in rows):
    errors.append("_id is not a unique 24-hex id")
if not all(re.fullmatch(r"2021-0[67]-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", r[1]) for r in rows):
    errors.append("createdAt is not ISO-8601 UTC in June/July 2021")
ts = [float(r[7]) for r in rows if r[7]]
if min(ts) < 1622505600 or max(ts) > 1625702399:
    errors.append(f"timeStart outside June 1 to July 7 2021: {min(ts)}..{max(ts)}")
temps = [float(r[12]) for r in rows]
if min(temps) != -45.5 or max(temps) != 132.2:
    errors.append(f"temp range {min(temps)}..{max(temps)}")
for j, (lo, hi, cap) in {2: (0.03, 0.06, 0.5), 3: (0.03, 0.06, 0.5), 4: (0.03, 0.07, 0.5),
                         8: (0.0005, 0.0012, 0.012), 9: (0.0008, 0.002, 0.012),
                         10: (0.0005, 0.0012, 0.012)}.items():
    v = [float(r[j]) for r in rows if r[j]]
    mean = sum(v) / len(v)
    if not (lo <= mean <= hi) or max(v) > cap or min(v) <= 0:
        errors.append(f"{HEADER[j]}: mean {mean}, max {max(v)}")
for e in errors:
    print(e)
sys.exit(1 if errors else 0)

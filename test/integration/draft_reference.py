"""Compare brewml's weights and in_alert (exported by collects.sh) with test/draft.py."""
import csv
import glob
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
import draft  # noqa: E402

path, work = sys.argv[1], sys.argv[2]
model = draft.fit(draft.read_rows(path))
errors = []

got = {}
with open(os.path.join(work, "weights.csv")) as f:
    for sensor, col, n, mean, std in csv.reader(f):
        got[(sensor, col)] = (int(n), float(mean), float(std) if std else None)
want = {(s, c): v for s, cols in model.items() for c, v in cols.items()}
if set(got) != set(want):
    errors.append(f"(sensor, column) pairs differ: {sorted(set(got) ^ set(want))[:5]}")
for key in sorted(set(got) & set(want)):
    (gn, gm, gs), (wn, wm, ws) = got[key], want[key]
    scale = max(abs(wm), ws or 0.0)
    if gn != wn or abs(gm - wm) > 1e-12 * scale or (gs is None) != (ws is None) or \
            (ws is not None and abs(gs - ws) > 1e-12 * ws):
        errors.append(f"{key}: brewml {got[key]} draft {want[key]}")

names = list(draft.COLUMNS.values())
for f in sorted(glob.glob(os.path.join(work, "alert_*.csv"))):
    value = float(os.path.basename(f)[len("alert_"):-len(".csv")])
    ref = draft.in_alert(model, value)
    seen = set()
    with open(f) as fh:
        for row in csv.reader(fh):
            sensor, flags = row[0], row[1:]
            seen.add(sensor)
            for col, flag in zip(names, flags):
                g = None if flag == "" else flag == "t"
                if g != ref[sensor][col]:
                    errors.append(f"in_alert({value}) {sensor}.{col}: brewml {g} draft {ref[sensor][col]}")
    if seen != set(ref):
        errors.append(f"in_alert({value}) sensors differ: {sorted(seen ^ set(ref))}")

for e in errors[:20]:
    print(e)
sys.exit(1 if errors else 0)

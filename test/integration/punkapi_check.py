"""Compare brewml's exports with punkapi-db's data.json.

    punkapi_check.py csv FILE data.json      the cleaned CSV: header and values
    punkapi_check.py ndjson FILE data.json   the raw NDJSON: each line a data set object
"""
import csv
import json
import sys

HEADER = ["id", "name", "abv", "ibu", "target_fg", "target_og", "ebc", "srm", "ph"]
kind, path, data = sys.argv[1:4]
beers = {b["id"]: b for b in json.load(open(data))}
errors = []
if kind == "csv":
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    rows = [r for r in rows if r]          # psql adds a blank line after the value
    if rows[0] != HEADER:
        errors.append(f"header {rows[0]}")
    if len(rows) < 2:
        errors.append("no beer in the CSV")
    for r in rows[1:]:
        want = beers.get(int(r[0]))
        if want is None:
            errors.append(f"id {r[0]} is not in the data set")
            continue
        if r[1] != want["name"]:
            errors.append(f"id {r[0]}: name {r[1]!r} != {want['name']!r}")
        for k, v in zip(HEADER[2:], r[2:]):
            w = want[k]
            if (w is None) != (v == "") or (w is not None and float(v) != float(w)):
                errors.append(f"id {r[0]}: {k} {v!r} != {w!r}")
    ids = [int(r[0]) for r in rows[1:]]
    if ids != sorted(set(ids)):
        errors.append("ids are not unique and ordered")
else:
    lines = [line for line in open(path).read().split("\n") if line.strip()]
    if not lines:
        errors.append("no line")
    for i, line in enumerate(lines, 1):
        obj = json.loads(line)
        if obj != beers.get(obj.get("id")):
            errors.append(f"line {i}: beer {obj.get('id')} differs from the data set")
for e in errors[:20]:
    print(e)
sys.exit(1 if errors else 0)

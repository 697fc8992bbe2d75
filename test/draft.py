"""The sensor case's draft.py algorithm, in plain Python, as the case describes it.

For every sensor and each of the six vibration columns: mean and sample standard
deviation of the non-missing values.  A value is in alert for a (sensor, column)
when value >= mean + 2 * std.  Loops over rows, sensors and columns, as the draft
does; this is the reference the tests compare brewml with, and anchor (a) of
bench/sensor.
"""
import csv
import math

# CSV column -> brewml.readings column, in brewml.in_alert's order
COLUMNS = {
    "params.velRMS.x": "vel_rms_x", "params.velRMS.y": "vel_rms_y", "params.velRMS.z": "vel_rms_z",
    "params.accelRMS.x": "accel_rms_x", "params.accelRMS.y": "accel_rms_y",
    "params.accelRMS.z": "accel_rms_z",
}


def read_rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def fit(rows):
    """{sensor: {column: (n, mean, std)}}; std is None below 2 values."""
    sensors = []
    for row in rows:
        if row["sensorId"] not in sensors:
            sensors.append(row["sensorId"])
    model = {}
    for sensor in sensors:
        model[sensor] = {}
        for src, col in COLUMNS.items():
            values = []
            for row in rows:
                if row["sensorId"] == sensor and row[src] != "":
                    x = float(row[src])
                    if not math.isnan(x):
                        values.append(x)
            n = len(values)
            mean = sum(values) / n if n else None
            std = (math.sqrt(sum((x - mean) ** 2 for x in values) / (n - 1))
                   if n > 1 else None)
            model[sensor][col] = (n, mean, std)
    return model


def in_alert(model, value):
    """{sensor: {column: bool or None}}: draft.py's in_alert table."""
    return {sensor: {col: (None if std is None else value >= mean + 2 * std)
                     for col, (n, mean, std) in cols.items()}
            for sensor, cols in model.items()}

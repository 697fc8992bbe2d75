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
    """The rows as (sensorId, (six raw fields)): only what the model reads, so
    that 10,000,000 rows fit in memory."""
    with open(path, newline="") as f:
        reader = csv.reader(f)
        header = next(reader)
        at = [header.index(src) for src in COLUMNS]
        sid = header.index("sensorId")
        return [(row[sid], tuple(row[j] for j in at)) for row in reader]


def fit(rows):
    """{sensor: {column: (n, mean, std)}}; std is None below 2 values."""
    sensors = []
    for sensor, _ in rows:
        if sensor not in sensors:
            sensors.append(sensor)
    model = {}
    for sensor in sensors:
        model[sensor] = {}
        for k, col in enumerate(COLUMNS.values()):
            values = []
            for row_sensor, fields in rows:
                if row_sensor == sensor and fields[k] != "":
                    x = float(fields[k])
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

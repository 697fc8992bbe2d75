"""The anchor of bench/http.py: the sensor case's predict route as a typical
Python answer would write it, Flask under gunicorn (one worker per core), one
psycopg connection per worker, on the same table and rule as brewml."""
import psycopg
from flask import Flask, jsonify, request

app = Flask(__name__)
_conn = None


def conn():
    global _conn
    if _conn is None:
        _conn = psycopg.connect("", autocommit=True)	# PG* from the environment
    return _conn


@app.post("/<sensor_id>/predict")
def predict(sensor_id):
    body = request.get_json(silent=True)
    if not isinstance(body, dict) or not isinstance(body.get("value"), (int, float)):
        return jsonify(message='"value" is required and must be a number'), 400
    row = conn().execute("SELECT mean, std FROM brewml.sensor_weights WHERE sensor_id = %s",
                         (sensor_id,)).fetchone()
    if row is None:
        return jsonify(message=f'sensor "{sensor_id}" has not been fitted'), 404
    mean, std = row
    return jsonify(body["value"] >= mean + 2 * std)

-- draft.py in the database: load collects.csv, fit every (sensor, column), in_alert.
\pset null '(null)'
\getenv abs_srcdir PG_ABS_SRCDIR
\set good :abs_srcdir '/fixtures/collects_200.csv'
\set bad_header :abs_srcdir '/fixtures/collects_bad_header.csv'
\set bad_value :abs_srcdir '/fixtures/collects_bad_value.csv'

-- errors name the file (shown relative to the test folder) and the line
CREATE FUNCTION try_load(path text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE state text; msg text; detail text; ctx text;
BEGIN
  RETURN 'loaded ' || brewml.load_readings(path);
EXCEPTION WHEN OTHERS THEN
  GET STACKED DIAGNOSTICS state = RETURNED_SQLSTATE, msg = MESSAGE_TEXT, detail = PG_EXCEPTION_DETAIL,
                          ctx = PG_EXCEPTION_CONTEXT;
  RETURN replace(format('%s: %s | %s | %s', state, msg, detail,
                        substring(ctx from 'COPY readings, line [0-9]+[^\n]*')),
                 current_setting('brewml_test.dir'), '<dir>');
END $$;
SELECT set_config('brewml_test.dir', :'abs_srcdir', false) IS NOT NULL AS ok;

SELECT try_load(:'good');
SELECT count(*), count(DISTINCT sensor_id) AS sensors, count(*) - count(vel_rms_x) AS holes
  FROM brewml.readings;
-- a bad header or a bad value loads nothing, and says where
SELECT try_load(:'bad_header');
SELECT try_load(:'bad_value');
SELECT try_load(:'abs_srcdir' || '/fixtures/no_such_file.csv');
SELECT try_load(NULL);
SELECT count(*) AS still FROM brewml.readings;
-- loading the same file twice is refused by the key, and keeps the first load
SELECT try_load(:'good') LIKE '23505: duplicate key%' AS duplicate_refused;
SELECT count(*) AS still FROM brewml.readings;

-- in_alert before any fit
\set SHOW_CONTEXT never
\set ON_ERROR_STOP 0
SELECT * FROM brewml.in_alert(0.1);
\set ON_ERROR_STOP 1

-- fit every (sensor, column): 10 sensors x 6 columns, same as the built-ins per column
SELECT brewml.fit_readings() AS fitted;
SELECT count(*) AS models, count(DISTINCT sensor_id) AS sensors, count(DISTINCT column_name) AS columns
  FROM brewml.column_weights;
SELECT bool_and(w.n = b.n AND abs(w.mean - b.m) <= 1e-12 * abs(b.m) AND abs(w.std - b.s) <= 1e-12 * b.s) AS same_as_builtin
  FROM brewml.column_weights w
  JOIN (SELECT sensor_id, c.column_name, count(c.v) n, avg(c.v) m, stddev_samp(c.v) s
          FROM brewml.readings r,
               LATERAL (VALUES ('vel_rms_x', r.vel_rms_x), ('vel_rms_y', r.vel_rms_y), ('vel_rms_z', r.vel_rms_z),
                               ('accel_rms_x', r.accel_rms_x), ('accel_rms_y', r.accel_rms_y),
                               ('accel_rms_z', r.accel_rms_z)) c(column_name, v)
         GROUP BY 1, 2) b USING (sensor_id, column_name);

-- in_alert: one row per sensor, one boolean per column, the rule value >= mean + 2 * std
SELECT * FROM brewml.in_alert(0.0);
SELECT * FROM brewml.in_alert(1.0);
SELECT count(*) FILTER (WHERE a.vel_rms_x) AS vel_x_alerts,
       bool_and(a.vel_rms_x = (0.0025 >= w.mean + 2 * w.std)) AS rule_holds
  FROM brewml.in_alert(0.0025) a JOIN brewml.column_weights w
    ON w.sensor_id = a.sensor_id AND w.column_name = 'vel_rms_x';

-- refitting replaces the model whole: a sensor gone from readings is gone from the model
DELETE FROM brewml.readings WHERE sensor_id = 'NEW4797';
SELECT brewml.fit_readings() AS fitted;
SELECT count(*) FILTER (WHERE sensor_id = 'NEW4797') AS gone FROM brewml.column_weights;
-- a sensor with a single value in a column: std unknown, never in alert (NULL), no crash
DELETE FROM brewml.readings WHERE sensor_id = 'NAI1549' AND id <> (SELECT min(id) FROM brewml.readings WHERE sensor_id = 'NAI1549' AND vel_rms_x IS NOT NULL);
SELECT brewml.fit_readings() AS fitted;
SELECT n, std FROM brewml.column_weights WHERE sensor_id = 'NAI1549' AND column_name = 'vel_rms_x';
SELECT vel_rms_x FROM brewml.in_alert(1.0) WHERE sensor_id = 'NAI1549';
-- an empty table fits nothing and clears the model
TRUNCATE brewml.readings;
SELECT brewml.fit_readings() AS fitted;
SELECT count(*) FROM brewml.column_weights;
\set ON_ERROR_STOP 0
SELECT * FROM brewml.in_alert(NULL);
\set ON_ERROR_STOP 1
DROP FUNCTION try_load(text);

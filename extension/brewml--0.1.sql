-- brewml 0.1: the sensor models (seed 001)
\echo Use "CREATE EXTENSION brewml" to load this file. \quit

COMMENT ON SCHEMA brewml IS 'brewml: machine learning inside PostgreSQL';

-------------------------------------------------------------------------------
-- moments: count, mean and sample standard deviation in one pass
-------------------------------------------------------------------------------

CREATE TYPE brewml.moments AS (n bigint, mean float8, std float8);
COMMENT ON TYPE brewml.moments IS
  'Count of usable values, their mean and sample standard deviation (NULL below 1 and 2 values)';

CREATE FUNCTION brewml.moments_accum(internal, VARIADIC "any") RETURNS internal
  AS 'MODULE_PATHNAME', 'moments_accum' LANGUAGE C CALLED ON NULL INPUT PARALLEL SAFE;
COMMENT ON FUNCTION brewml.moments_accum(internal, "any") IS
  'Transition function of brewml.moments and brewml.moments_each (Welford)';

CREATE FUNCTION brewml.moments_combine(internal, internal) RETURNS internal
  AS 'MODULE_PATHNAME', 'moments_combine' LANGUAGE C CALLED ON NULL INPUT PARALLEL SAFE;
COMMENT ON FUNCTION brewml.moments_combine(internal, internal) IS
  'Combine function of brewml.moments and brewml.moments_each (Chan et al.)';

CREATE FUNCTION brewml.moments_serialize(internal) RETURNS bytea
  AS 'MODULE_PATHNAME', 'moments_serialize' LANGUAGE C STRICT PARALLEL SAFE;
COMMENT ON FUNCTION brewml.moments_serialize(internal) IS
  'Serialize function of brewml.moments and brewml.moments_each';

CREATE FUNCTION brewml.moments_deserialize(bytea, internal) RETURNS internal
  AS 'MODULE_PATHNAME', 'moments_deserialize' LANGUAGE C STRICT PARALLEL SAFE;
COMMENT ON FUNCTION brewml.moments_deserialize(bytea, internal) IS
  'Deserialize function of brewml.moments and brewml.moments_each';

CREATE FUNCTION brewml.moments_final(internal) RETURNS brewml.moments
  AS 'MODULE_PATHNAME', 'moments_final' LANGUAGE C CALLED ON NULL INPUT PARALLEL SAFE;
COMMENT ON FUNCTION brewml.moments_final(internal) IS 'Final function of brewml.moments';

CREATE FUNCTION brewml.moments_each_final(internal) RETURNS brewml.moments[]
  AS 'MODULE_PATHNAME', 'moments_each_final' LANGUAGE C CALLED ON NULL INPUT PARALLEL SAFE;
COMMENT ON FUNCTION brewml.moments_each_final(internal) IS 'Final function of brewml.moments_each';

CREATE AGGREGATE brewml.moments(float8) (
  SFUNC = brewml.moments_accum, STYPE = internal, FINALFUNC = brewml.moments_final,
  COMBINEFUNC = brewml.moments_combine,
  SERIALFUNC = brewml.moments_serialize, DESERIALFUNC = brewml.moments_deserialize,
  PARALLEL = SAFE);
COMMENT ON AGGREGATE brewml.moments(float8) IS
  'Count, mean and sample standard deviation in one pass; NULL and NaN are skipped, infinity is an error';

CREATE AGGREGATE brewml.moments_each(VARIADIC "any") (
  SFUNC = brewml.moments_accum, STYPE = internal, FINALFUNC = brewml.moments_each_final,
  COMBINEFUNC = brewml.moments_combine,
  SERIALFUNC = brewml.moments_serialize, DESERIALFUNC = brewml.moments_deserialize,
  PARALLEL = SAFE);
COMMENT ON AGGREGATE brewml.moments_each(VARIADIC "any") IS
  'brewml.moments of each numeric argument, in one pass over the rows: one element per argument';

CREATE TYPE brewml.group_moments AS (key text, moments brewml.moments[]);
COMMENT ON TYPE brewml.group_moments IS 'One key of brewml.moments_by: its brewml.moments per column';

CREATE FUNCTION brewml.moments_by_accum(internal, text, VARIADIC "any") RETURNS internal
  AS 'MODULE_PATHNAME', 'moments_by_accum' LANGUAGE C CALLED ON NULL INPUT PARALLEL SAFE;
COMMENT ON FUNCTION brewml.moments_by_accum(internal, text, "any") IS
  'Transition function of brewml.moments_by';

CREATE FUNCTION brewml.moments_by_combine(internal, internal) RETURNS internal
  AS 'MODULE_PATHNAME', 'moments_by_combine' LANGUAGE C CALLED ON NULL INPUT PARALLEL SAFE;
COMMENT ON FUNCTION brewml.moments_by_combine(internal, internal) IS
  'Combine function of brewml.moments_by';

CREATE FUNCTION brewml.moments_by_serialize(internal) RETURNS bytea
  AS 'MODULE_PATHNAME', 'moments_by_serialize' LANGUAGE C STRICT PARALLEL SAFE;
COMMENT ON FUNCTION brewml.moments_by_serialize(internal) IS 'Serialize function of brewml.moments_by';

CREATE FUNCTION brewml.moments_by_deserialize(bytea, internal) RETURNS internal
  AS 'MODULE_PATHNAME', 'moments_by_deserialize' LANGUAGE C STRICT PARALLEL SAFE;
COMMENT ON FUNCTION brewml.moments_by_deserialize(bytea, internal) IS 'Deserialize function of brewml.moments_by';

CREATE FUNCTION brewml.moments_by_final(internal) RETURNS brewml.group_moments[]
  AS 'MODULE_PATHNAME', 'moments_by_final' LANGUAGE C CALLED ON NULL INPUT PARALLEL SAFE;
COMMENT ON FUNCTION brewml.moments_by_final(internal) IS 'Final function of brewml.moments_by';

CREATE AGGREGATE brewml.moments_by(text, VARIADIC "any") (
  SFUNC = brewml.moments_by_accum, STYPE = internal, FINALFUNC = brewml.moments_by_final,
  COMBINEFUNC = brewml.moments_by_combine,
  SERIALFUNC = brewml.moments_by_serialize, DESERIALFUNC = brewml.moments_by_deserialize,
  PARALLEL = SAFE);
COMMENT ON AGGREGATE brewml.moments_by(text, VARIADIC "any") IS
  'brewml.moments_each of the numeric arguments for every distinct key, without GROUP BY: one (key, moments[]) per key, in byte order; NULL keys skipped';

-------------------------------------------------------------------------------
-- The sensor API: fit, weights, predict, adjust
-------------------------------------------------------------------------------

CREATE TABLE brewml.sensor_weights (
  sensor_id   text PRIMARY KEY CHECK (octet_length(sensor_id) BETWEEN 1 AND 128),
  mean        float8 NOT NULL CHECK (mean NOT IN ('NaN', 'Infinity', '-Infinity')),
  std         float8 NOT NULL CHECK (std >= 0 AND std <> 'Infinity' AND std <> 'NaN'),
  n           bigint NOT NULL CHECK (n >= 2),
  fitted_at   timestamptz NOT NULL,
  adjusted_at timestamptz
);
COMMENT ON TABLE brewml.sensor_weights IS
  'The fitted model of each sensor: mean and sample standard deviation (brewml.fit, brewml.adjust)';
COMMENT ON COLUMN brewml.sensor_weights.n IS 'How many usable values the fit saw';
COMMENT ON COLUMN brewml.sensor_weights.adjusted_at IS 'Last brewml.adjust since the fit, or NULL';
SELECT pg_catalog.pg_extension_config_dump('brewml.sensor_weights', '');

CREATE FUNCTION brewml.fit(sensor_id text, "values" float8[]) RETURNS brewml.sensor_weights
  AS 'MODULE_PATHNAME', 'sensor_fit' LANGUAGE C VOLATILE CALLED ON NULL INPUT PARALLEL UNSAFE;
COMMENT ON FUNCTION brewml.fit(text, float8[]) IS
  'Fit a sensor: store the mean and sample standard deviation of values (NULL and NaN skipped), replacing the old ones';

CREATE FUNCTION brewml.weights(sensor_id text) RETURNS brewml.sensor_weights
  AS 'MODULE_PATHNAME', 'sensor_weights' LANGUAGE C STABLE CALLED ON NULL INPUT PARALLEL SAFE;
COMMENT ON FUNCTION brewml.weights(text) IS 'The stored weights of a fitted sensor';

CREATE FUNCTION brewml.predict(sensor_id text, value float8) RETURNS boolean
  AS 'MODULE_PATHNAME', 'sensor_predict' LANGUAGE C STABLE CALLED ON NULL INPUT PARALLEL SAFE;
COMMENT ON FUNCTION brewml.predict(text, float8) IS
  'Whether value is in alert for the sensor: value >= mean + 2 * std';

CREATE FUNCTION brewml.adjust(sensor_id text) RETURNS brewml.sensor_weights
  AS 'MODULE_PATHNAME', 'sensor_adjust' LANGUAGE C VOLATILE CALLED ON NULL INPUT PARALLEL UNSAFE;
COMMENT ON FUNCTION brewml.adjust(text) IS 'Raise the sensor''s stored mean by 10%; returns the new weights';

CREATE FUNCTION brewml.is_alert(value float8, mean float8, std float8) RETURNS boolean
  AS 'MODULE_PATHNAME', 'sensor_is_alert' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION brewml.is_alert(float8, float8, float8) IS
  'The alert rule of the sensor case: value >= mean + 2 * std';

-------------------------------------------------------------------------------
-- draft.py in the database: readings, their loader, the per-column model
-------------------------------------------------------------------------------

CREATE TABLE brewml.readings (
  created_at  timestamptz NOT NULL,
  accel_rms_x float8,
  accel_rms_y float8,
  accel_rms_z float8,
  duration    float8,
  samp_rate   float8,
  time_start  float8,
  vel_rms_x   float8,
  vel_rms_y   float8,
  vel_rms_z   float8,
  temp        float8,
  sensor_id   text NOT NULL,
  id          text COLLATE "C" PRIMARY KEY
);
COMMENT ON TABLE brewml.readings IS
  'Sensor readings, the columns of the case''s collects.csv (brewml.load_readings); fixed-width columns first, which makes scans faster';
COMMENT ON COLUMN brewml.readings.id IS 'The Mongo _id of the reading';
COMMENT ON COLUMN brewml.readings.time_start IS 'params.timeStart, epoch seconds';
SELECT pg_catalog.pg_extension_config_dump('brewml.readings', '');

CREATE FUNCTION brewml.load_readings(path text) RETURNS bigint
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  expected constant text := '_id,createdAt,params.accelRMS.x,params.accelRMS.y,params.accelRMS.z,'
    'params.duration,params.sampRate,params.timeStart,params.velRMS.x,params.velRMS.y,'
    'params.velRMS.z,sensorId,temp';
  head text;
  loaded bigint;
BEGIN
  IF path IS NULL THEN
    RAISE EXCEPTION 'brewml.load_readings: path must not be NULL' USING ERRCODE = '22004';
  END IF;
  head := split_part(pg_read_file(path, 0, 1024), E'\n', 1);
  head := rtrim(ltrim(head, U&'\FEFF'), E'\r');
  IF head IS DISTINCT FROM expected THEN
    RAISE EXCEPTION 'brewml.load_readings: %:1: the header is not the one of collects.csv', path
      USING ERRCODE = '22P04', DETAIL = format('expected: %s; found: %s', expected, head);
  END IF;
  EXECUTE format('COPY brewml.readings (id, created_at, accel_rms_x, accel_rms_y, accel_rms_z,'
                 ' duration, samp_rate, time_start, vel_rms_x, vel_rms_y, vel_rms_z, sensor_id, temp)'
                 ' FROM %L WITH (FORMAT csv, HEADER true)', path);
  GET DIAGNOSTICS loaded = ROW_COUNT;
  RETURN loaded;
END
$$;
COMMENT ON FUNCTION brewml.load_readings(text) IS
  'Append a collects.csv file (a path on the database server) to brewml.readings; returns the rows loaded';

CREATE TABLE brewml.column_weights (
  sensor_id   text NOT NULL,
  column_name text NOT NULL CHECK (column_name IN
    ('vel_rms_x', 'vel_rms_y', 'vel_rms_z', 'accel_rms_x', 'accel_rms_y', 'accel_rms_z')),
  n           bigint NOT NULL,
  mean        float8,
  std         float8,
  fitted_at   timestamptz NOT NULL,
  PRIMARY KEY (sensor_id, column_name)
);
COMMENT ON TABLE brewml.column_weights IS
  'draft.py''s model: mean and sample std of each vibration column of each sensor (brewml.fit_readings)';
COMMENT ON COLUMN brewml.column_weights.std IS 'NULL when fewer than 2 values: that column is never in alert';
SELECT pg_catalog.pg_extension_config_dump('brewml.column_weights', '');

CREATE FUNCTION brewml.fit_readings() RETURNS integer
  AS 'MODULE_PATHNAME', 'fit_readings' LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION brewml.fit_readings() IS
  'Fit every (sensor, column) of brewml.readings in one scan, replacing brewml.column_weights; returns how many';

CREATE FUNCTION brewml.in_alert(value float8)
RETURNS TABLE (sensor_id text, vel_rms_x boolean, vel_rms_y boolean, vel_rms_z boolean,
               accel_rms_x boolean, accel_rms_y boolean, accel_rms_z boolean)
LANGUAGE plpgsql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  IF value IS NULL THEN
    RAISE EXCEPTION 'brewml.in_alert: value must not be NULL' USING ERRCODE = '22004';
  END IF;
  RETURN QUERY
    SELECT w.sensor_id,
           bool_or(brewml.is_alert(value, w.mean, w.std)) FILTER (WHERE w.column_name = 'vel_rms_x'),
           bool_or(brewml.is_alert(value, w.mean, w.std)) FILTER (WHERE w.column_name = 'vel_rms_y'),
           bool_or(brewml.is_alert(value, w.mean, w.std)) FILTER (WHERE w.column_name = 'vel_rms_z'),
           bool_or(brewml.is_alert(value, w.mean, w.std)) FILTER (WHERE w.column_name = 'accel_rms_x'),
           bool_or(brewml.is_alert(value, w.mean, w.std)) FILTER (WHERE w.column_name = 'accel_rms_y'),
           bool_or(brewml.is_alert(value, w.mean, w.std)) FILTER (WHERE w.column_name = 'accel_rms_z')
      FROM brewml.column_weights w
     GROUP BY w.sensor_id
     ORDER BY w.sensor_id;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'brewml.in_alert: no sensor columns are fitted'
      USING ERRCODE = 'P0002', HINT = 'Load readings and call brewml.fit_readings() first.';
  END IF;
END
$$;
COMMENT ON FUNCTION brewml.in_alert(float8) IS
  'draft.py''s in_alert: for each sensor, whether value is in alert on each column (NULL where std is unknown)';

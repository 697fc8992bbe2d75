-- brewml 0.4: sensor weights cached in each backend, for the HTTP predict route
\echo Use "ALTER EXTENSION brewml UPDATE" to load this file. \quit

-- Every change to the weights tells every backend to drop its cached ones.
CREATE TRIGGER sensor_weights_changed
  AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON brewml.sensor_weights
  FOR EACH STATEMENT EXECUTE FUNCTION brewml.models_changed();
COMMENT ON TRIGGER sensor_weights_changed ON brewml.sensor_weights IS
  'Makes every backend drop its cached sensor weights (brewml.predict, brewml.sensor_alert)';
COMMENT ON FUNCTION brewml.models_changed() IS
  'Trigger: sends a relcache invalidation for its table, so that every backend drops what it cached of it (models, sensor weights)';

CREATE FUNCTION brewml.sensor_alert(sensor_id text, value float8) RETURNS boolean
  AS 'MODULE_PATHNAME', 'sensor_alert' LANGUAGE C STABLE CALLED ON NULL INPUT PARALLEL SAFE;
COMMENT ON FUNCTION brewml.sensor_alert(text, float8) IS
  'Like brewml.predict, but NULL for a sensor never fitted instead of an error';

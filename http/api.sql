-- The api schema: all that PostgREST exposes, and the roles it may become.
--
-- Applied by scripts/http.sh (as the superuser, idempotently) after the
-- brewml extension exists; not part of the extension, since roles are
-- cluster-wide.  Roles:
--   brewml_authenticator  LOGIN NOINHERIT: PostgREST's connection; it can only become
--   brewml_anon           requests without a token: read and predict
--   brewml_ingest         a JWT with role brewml_ingest: anon's rights, plus writes of data
--                         (fit and adjust sensors, post beers)
--   brewml_admin          a JWT with role brewml_admin: ingest's rights, plus training,
--                         deploying and waking the worker
--   brewml_api            NOLOGIN, owns every api object; the only role with rights on
--                         brewml's tables, and only those the api functions need.  The web
--                         roles touch nothing but the api schema.
-- Errors: an unknown sensor or model is 404 (SQLSTATE PT404), a body or value
-- out of domain 400 (PostgREST's default for the class 22 codes brewml raises).

\set ON_ERROR_STOP 1
SET client_min_messages = warning;

DO $$
DECLARE
  r text;
BEGIN
  FOREACH r IN ARRAY ARRAY['brewml_anon', 'brewml_ingest', 'brewml_admin', 'brewml_api'] LOOP
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = r) THEN
      EXECUTE format('CREATE ROLE %I NOLOGIN', r);
    END IF;
  END LOOP;
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'brewml_authenticator') THEN
    CREATE ROLE brewml_authenticator LOGIN NOINHERIT;
  END IF;
END
$$;
ALTER ROLE brewml_authenticator LOGIN NOINHERIT NOSUPERUSER NOCREATEDB NOCREATEROLE;
GRANT brewml_anon, brewml_ingest, brewml_admin TO brewml_authenticator;
GRANT brewml_anon TO brewml_ingest;
GRANT brewml_ingest TO brewml_admin;
COMMENT ON ROLE brewml_authenticator IS 'PostgREST''s login; NOINHERIT: it has only the rights of the role a request becomes';
COMMENT ON ROLE brewml_anon IS 'HTTP requests without a token: read and predict through the api schema';
COMMENT ON ROLE brewml_ingest IS 'HTTP requests with an ingest JWT: anon''s rights plus writes of data';
COMMENT ON ROLE brewml_admin IS 'HTTP requests with an admin JWT: ingest''s rights plus training and deployment';
COMMENT ON ROLE brewml_api IS 'Owner of the api schema''s objects, with the rights on brewml they need';

BEGIN;

DROP SCHEMA IF EXISTS api CASCADE;
DROP SCHEMA IF EXISTS api_private CASCADE;
CREATE SCHEMA api AUTHORIZATION brewml_api;
CREATE SCHEMA api_private AUTHORIZATION brewml_api;
COMMENT ON SCHEMA api IS 'What the web may touch: PostgREST exposes this schema, and only it';
COMMENT ON SCHEMA api_private IS 'Helpers of the api functions, not exposed';

-- what the owner of the api may do in brewml, and no more
GRANT USAGE ON SCHEMA brewml TO brewml_api;
GRANT SELECT, INSERT, UPDATE ON brewml.sensor_weights TO brewml_api;
GRANT SELECT, INSERT ON brewml.raw_beers TO brewml_api;
GRANT SELECT, INSERT, UPDATE ON brewml.cleaned_beers TO brewml_api;
GRANT SELECT ON brewml.ibu_classes, brewml.fetch_log TO brewml_api;
GRANT SELECT, INSERT ON brewml.models, brewml.deployment_log TO brewml_api;
GRANT SELECT, INSERT, UPDATE ON brewml.deployments TO brewml_api;
GRANT SELECT ON brewml.model_registry, brewml.beer_predictions, brewml.worker_status TO brewml_api;
GRANT SELECT, INSERT, UPDATE ON brewml.scores, brewml.score_batches, brewml.score_chunks TO brewml_api;
GRANT SELECT, INSERT ON brewml.score_rejects TO brewml_api;
GRANT SELECT ON brewml.score_batch_totals TO brewml_api;
GRANT EXECUTE ON FUNCTION brewml.poll_now(),
  brewml.register_model(text, text, jsonb, text, text[], text[], text, bigint, bigint, float8, jsonb, bytea)
  TO brewml_api;

SET LOCAL ROLE brewml_api;

-------------------------------------------------------------------------------
-- helpers
-------------------------------------------------------------------------------

-- The sensor a request is about: the argument, else the X-Sensor-Id header nginx sets from the URL.
CREATE FUNCTION api_private.sensor_id(arg text) RETURNS text
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  id text := coalesce(arg, current_setting('request.headers', true)::json ->> 'x-sensor-id');
BEGIN
  IF id IS NULL OR id = '' THEN
    RAISE EXCEPTION 'sensor_id is required' USING ERRCODE = '22023',
      HINT = 'Pass sensor_id, or use the route /{sensor_id}/... through nginx.';
  END IF;
  RETURN id;
END
$$;
COMMENT ON FUNCTION api_private.sensor_id(text) IS
  'The sensor of a request: the argument, else the X-Sensor-Id header set by nginx';

-- A sensor's stored weights as JSON; 404 if it was never fitted.
CREATE FUNCTION api_private.weights_json(sensor text) RETURNS json
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  w brewml.sensor_weights;
BEGIN
  SELECT * INTO w FROM brewml.sensor_weights WHERE sensor_id = sensor;
  IF NOT FOUND THEN
    RAISE SQLSTATE 'PT404' USING MESSAGE = format('sensor "%s" has not been fitted', sensor),
      HINT = 'POST /{sensor_id}/fit with {"values": [...]} first.';
  END IF;
  RETURN row_to_json(w);
END
$$;
COMMENT ON FUNCTION api_private.weights_json(text) IS 'A sensor''s weights as a JSON object; PT404 (HTTP 404) if not fitted';

-- Helpers that read routes call as the caller (the anon role).

-- The sensor of a request, or NULL: the argument, else the X-Sensor-Id header.
CREATE FUNCTION api_private.request_sensor(arg text) RETURNS text
LANGUAGE sql STABLE
RETURN coalesce(arg, nullif(current_setting('request.headers', true)::json ->> 'x-sensor-id', ''));
COMMENT ON FUNCTION api_private.request_sensor(text) IS
  'The sensor of a request: the argument, else the X-Sensor-Id header nginx sets; NULL if neither';

-- Raises a 400 (22023) with message; typed like like_value, for use in an expression.
CREATE FUNCTION api_private.fail_400(message text, like_value anyelement) RETURNS anyelement
LANGUAGE plpgsql STABLE AS $$
BEGIN
  RAISE EXCEPTION '%', message USING ERRCODE = '22023';
END
$$;
COMMENT ON FUNCTION api_private.fail_400(text, anyelement) IS 'Raise a 400 (SQLSTATE 22023) from inside an expression';

-- Raises a 404 (PT404) with message; typed like like_value, for use in an expression.
CREATE FUNCTION api_private.fail_404(message text, like_value anyelement) RETURNS anyelement
LANGUAGE plpgsql STABLE AS $$
BEGIN
  RAISE SQLSTATE 'PT404' USING MESSAGE = message;
END
$$;
COMMENT ON FUNCTION api_private.fail_404(text, anyelement) IS 'Raise a 404 (SQLSTATE PT404) from inside an expression';

-- A raw body (text) as a JSON object, or a 400 naming the route; an empty body is {}.
CREATE FUNCTION api_private.body_object(body text, route text) RETURNS json
LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  j json;
BEGIN
  IF body IS NULL OR btrim(body, E' \t\r\n') = '' THEN
    RETURN '{}'::json;
  END IF;
  BEGIN
    j := body::json;
  EXCEPTION WHEN invalid_text_representation THEN
    RAISE EXCEPTION '%: the body is not valid JSON', route USING ERRCODE = '22023',
      DETAIL = format('It begins %s.', left(body, 60));
  END;
  IF json_typeof(j) <> 'object' THEN
    RAISE EXCEPTION '%: the body must be a JSON object, not a JSON %', route, json_typeof(j)
      USING ERRCODE = '22023';
  END IF;
  RETURN j;
END
$$;
COMMENT ON FUNCTION api_private.body_object(text, text) IS
  'A raw request body as a JSON object ({} if empty), else a 400 naming the route';

-- The numbers of a JSON array, or a 400 naming the key.
CREATE FUNCTION api_private.numbers(arr json, key text) RETURNS float8[]
LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  bad record;
BEGIN
  IF arr IS NULL OR json_typeof(arr) <> 'array' THEN
    RAISE EXCEPTION '"%" must be a JSON array of numbers', key USING ERRCODE = '22023';
  END IF;
  SELECT n, e INTO bad FROM json_array_elements(arr) WITH ORDINALITY a(e, n)
   WHERE json_typeof(e) NOT IN ('number', 'null') ORDER BY n LIMIT 1;
  IF FOUND THEN
    RAISE EXCEPTION 'element % of "%" is not a number: %', bad.n, key, left(bad.e::text, 40)
      USING ERRCODE = '22023';
  END IF;
  RETURN ARRAY(SELECT e::text::float8 FROM json_array_elements(arr) e);
END
$$;
COMMENT ON FUNCTION api_private.numbers(json, text) IS 'A JSON array of numbers (nulls allowed) as float8[], else a 400';

-------------------------------------------------------------------------------
-- sensors (seed 001)
-------------------------------------------------------------------------------

CREATE VIEW api.sensors AS
  SELECT sensor_id, mean, std, n, fitted_at, adjusted_at FROM brewml.sensor_weights;
COMMENT ON VIEW api.sensors IS 'GET /sensors: every fitted sensor with its mean, sample std and the number of values';

-- POST /rpc/fit {"sensor_id", "values"}: fit a sensor; its weights.
CREATE FUNCTION api.fit(sensor_id text DEFAULT NULL, "values" float8[] DEFAULT NULL) RETURNS json
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  sensor text := api_private.sensor_id(fit.sensor_id);
BEGIN
  IF fit."values" IS NULL THEN
    RAISE EXCEPTION '"values" is required: {"values": [numbers]}' USING ERRCODE = '22023';
  END IF;
  PERFORM brewml.fit(sensor, fit."values");
  RETURN api_private.weights_json(sensor);
END
$$;
COMMENT ON FUNCTION api.fit(text, float8[]) IS
  'POST /rpc/fit: store the mean and sample std of values for the sensor (ingest role); returns the weights';

-- GET /rpc/weights?sensor_id=: a sensor's weights.
CREATE FUNCTION api.weights(sensor_id text DEFAULT NULL) RETURNS json
LANGUAGE sql STABLE
RETURN CASE
  WHEN api_private.request_sensor(sensor_id) IS NULL THEN api_private.fail_400('sensor_id is required', NULL::json)
  ELSE coalesce((SELECT row_to_json(s) FROM api.sensors s WHERE s.sensor_id = api_private.request_sensor(weights.sensor_id)),
                api_private.fail_404(format('sensor "%s" has not been fitted', api_private.request_sensor(sensor_id)), NULL::json))
END;
COMMENT ON FUNCTION api.weights(text) IS 'GET /rpc/weights?sensor_id=S: the sensor''s stored weights; 404 if never fitted';

-- POST or GET /rpc/predict: whether value is in alert for the sensor.  The hot
-- route: plpgsql (plans kept per connection), and SECURITY DEFINER without SET
-- search_path, which costs a configuration change per call; every name in it
-- is schema-qualified and the web roles can create no objects, so the caller's
-- search_path can change nothing here.
CREATE FUNCTION api.predict(sensor_id text DEFAULT NULL, value float8 DEFAULT NULL) RETURNS boolean
LANGUAGE plpgsql STABLE SECURITY DEFINER AS $$
DECLARE
  sensor text := api_private.request_sensor(predict.sensor_id);
  alert boolean;
BEGIN
  IF predict.value IS NULL OR predict.value = 'NaN'::float8 THEN
    RAISE EXCEPTION '"value" is required and must be a number: {"value": number}' USING ERRCODE = '22023';
  ELSIF sensor IS NULL THEN
    RAISE EXCEPTION 'sensor_id is required' USING ERRCODE = '22023';
  END IF;
  alert := brewml.sensor_alert(sensor, predict.value);		-- cached weights, NULL if unknown
  IF alert IS NULL THEN
    RAISE SQLSTATE 'PT404' USING MESSAGE = pg_catalog.format('sensor "%s" has not been fitted', sensor);
  END IF;
  RETURN alert;
END
$$;
COMMENT ON FUNCTION api.predict(text, float8) IS
  'POST /rpc/predict {"sensor_id", "value"}: true if value >= mean + 2 * std for the sensor; 404 if never fitted';

-- POST /rpc/predict_batch: many values for one sensor, or one value per sensor.
CREATE FUNCTION api.predict_batch(sensor_id text DEFAULT NULL, "values" float8[] DEFAULT NULL,
                                  sensor_ids text[] DEFAULT NULL) RETURNS boolean[]
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  result boolean[];
  missing text;
BEGIN
  IF predict_batch."values" IS NULL THEN
    RAISE EXCEPTION '"values" is required: an array of numbers' USING ERRCODE = '22023';
  END IF;
  IF array_position(predict_batch."values", NULL) IS NOT NULL OR 'NaN' = ANY (predict_batch."values") THEN
    RAISE EXCEPTION 'element % of "values" is not a number',
      coalesce(array_position(predict_batch."values", NULL), array_position(predict_batch."values", 'NaN'))
      USING ERRCODE = '22023';
  END IF;
  IF predict_batch.sensor_ids IS NULL THEN
    SELECT array_agg(brewml.is_alert(v, w.mean, w.std) ORDER BY i) INTO result
      FROM brewml.sensor_weights w, unnest(predict_batch."values") WITH ORDINALITY u(v, i)
     WHERE w.sensor_id = api_private.sensor_id(predict_batch.sensor_id);
    IF result IS NULL AND cardinality(predict_batch."values") > 0 THEN
      RAISE SQLSTATE 'PT404' USING MESSAGE =
        format('sensor "%s" has not been fitted', api_private.sensor_id(predict_batch.sensor_id));
    END IF;
    RETURN coalesce(result, '{}');
  END IF;
  IF cardinality(predict_batch.sensor_ids) <> cardinality(predict_batch."values") THEN
    RAISE EXCEPTION '"sensor_ids" has % elements and "values" %: they go in pairs',
      cardinality(predict_batch.sensor_ids), cardinality(predict_batch."values") USING ERRCODE = '22023';
  END IF;
  SELECT min(s) INTO missing FROM unnest(predict_batch.sensor_ids) s
   WHERE NOT EXISTS (SELECT FROM brewml.sensor_weights w WHERE w.sensor_id = s);
  IF missing IS NOT NULL OR array_position(predict_batch.sensor_ids, NULL) IS NOT NULL THEN
    RAISE SQLSTATE 'PT404' USING MESSAGE = format('sensor "%s" has not been fitted', coalesce(missing, 'null'));
  END IF;
  SELECT array_agg(brewml.is_alert(u.v, w.mean, w.std) ORDER BY u.i) INTO result
    FROM unnest(predict_batch.sensor_ids, predict_batch."values") WITH ORDINALITY u(s, v, i)
    JOIN brewml.sensor_weights w ON w.sensor_id = u.s;
  RETURN coalesce(result, '{}');
END
$$;
COMMENT ON FUNCTION api.predict_batch(text, float8[], text[]) IS
  'POST /rpc/predict_batch: {"sensor_id", "values": [...]} or {"sensor_ids": [...], "values": [...]} in pairs; an array of alerts in order';

-- POST /rpc/adjust {"sensor_id"}: raise the sensor's mean by 10%.
CREATE FUNCTION api.adjust(sensor_id text DEFAULT NULL) RETURNS json
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  sensor text := api_private.sensor_id(adjust.sensor_id);
BEGIN
  PERFORM api_private.weights_json(sensor);	-- 404 if unknown
  PERFORM brewml.adjust(sensor);
  RETURN api_private.weights_json(sensor);
END
$$;
COMMENT ON FUNCTION api.adjust(text) IS 'POST /rpc/adjust: raise the sensor''s stored mean by 10% (ingest role); returns the weights';

-- The seed's routes, through nginx: the raw body as text (nginx sends it as text/plain,
-- so that any body reaches these functions and gets a 400 of their own when malformed),
-- the sensor from the URL (X-Sensor-Id).

-- POST /{sensor_id}/fit with {"values": [...]}.
CREATE FUNCTION api.sensor_fit(text) RETURNS json
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  body json := api_private.body_object($1, 'POST /{sensor_id}/fit');
BEGIN
  RETURN api.fit(NULL, api_private.numbers(body -> 'values', 'values'));
END
$$;
COMMENT ON FUNCTION api.sensor_fit(text) IS 'POST /{sensor_id}/fit through nginx: the body {"values": [numbers]}';

-- POST /{sensor_id}/predict with {"value": number}: a bare JSON boolean.  The hot
-- route takes its body as JSON (nginx sends application/json; PostgREST refuses
-- malformed JSON with a 400).
CREATE FUNCTION api.sensor_predict(json) RETURNS boolean
LANGUAGE plpgsql STABLE AS $$
BEGIN
  RETURN api.predict(NULL, CASE WHEN pg_catalog.json_typeof($1 -> 'value') = 'number'
                                THEN ($1 ->> 'value')::float8 END);
END
$$;
COMMENT ON FUNCTION api.sensor_predict(json) IS 'POST /{sensor_id}/predict through nginx: the body {"value": number}; true or false';

-- POST /{sensor_id}/adjust with {} (or no body).
CREATE FUNCTION api.sensor_adjust(text) RETURNS json
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  PERFORM api_private.body_object($1, 'POST /{sensor_id}/adjust');
  RETURN api.adjust(NULL);
END
$$;
COMMENT ON FUNCTION api.sensor_adjust(text) IS 'POST /{sensor_id}/adjust through nginx: an empty object as body';

-------------------------------------------------------------------------------
-- beers (seeds 000, 003, 004)
-------------------------------------------------------------------------------

CREATE VIEW api.raw_beers AS
  SELECT id, fetched_at, source_url, http_status, payload FROM brewml.raw_beers;
COMMENT ON VIEW api.raw_beers IS 'GET /raw_beers: every beer payload as received';

CREATE VIEW api.cleaned_beers AS
  SELECT id, name, abv, ibu, target_fg, target_og, ebc, srm, ph, ibu_class, ibu_class_probability,
         ibu_model_id, first_seen, last_seen, times_seen
    FROM brewml.cleaned_beers;
COMMENT ON VIEW api.cleaned_beers IS
  'GET /cleaned_beers (JSON, or CSV with Accept: text/csv): one row per beer, with its predicted IBU class';

CREATE VIEW api.cleaned AS
  SELECT id, name, abv, ibu, target_fg, target_og, ebc, srm, ph FROM brewml.cleaned_beers;
COMMENT ON VIEW api.cleaned IS 'GET /cleaned: the cleaned table of seed 000, its nine columns (Accept: text/csv for CSV)';

-- brewml.beer_predictions spelled out: a function in a view runs as the caller,
-- who has no rights in brewml
CREATE VIEW api.beer_predictions AS
  SELECT b.id, b.name, b.ibu, c.label AS actual_class, b.ibu_class AS predicted_class,
         b.ibu_class_probability AS probability, b.ibu_model_id AS model_id
    FROM brewml.cleaned_beers b
    LEFT JOIN brewml.ibu_classes c ON b.ibu >= c.lower AND (c.upper IS NULL OR b.ibu < c.upper);
COMMENT ON VIEW api.beer_predictions IS 'GET /beer_predictions: each beer''s actual IBU class beside the predicted one';

-- POST /beers (nginx) or /rpc/ingest_beers (text/plain): a JSON beer or array of beers.
CREATE FUNCTION api.ingest_beers(text) RETURNS json
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  payload jsonb;
BEGIN
  BEGIN
    payload := $1::jsonb;
  EXCEPTION WHEN invalid_text_representation THEN
    RAISE EXCEPTION 'POST /beers: the body is not valid JSON' USING ERRCODE = '22023',
      DETAIL = format('It begins %s.', left($1, 60));
  END;
  RETURN (SELECT row_to_json(r) FROM (SELECT brewml.ingest_beers('http', 200, payload) AS stored) r);
END
$$;
COMMENT ON FUNCTION api.ingest_beers(text) IS
  'POST /beers: a beer or an array of beers, stored raw, cleaned and predicted in one transaction (ingest role)';

-------------------------------------------------------------------------------
-- models (seeds 000, 004)
-------------------------------------------------------------------------------

CREATE VIEW api.models AS
  SELECT r.*, m.params, m.features, m.classes, m.metrics
    FROM brewml.model_registry r JOIN brewml.models m USING (id);
COMMENT ON VIEW api.models IS 'GET /models: every model with its params, features, classes and out-of-bag metrics';

-- GET or POST /rpc/predict_ibu: the deployed IBU model's class for six features.
CREATE FUNCTION api.predict_ibu(abv float8 DEFAULT NULL, target_fg float8 DEFAULT NULL,
                                target_og float8 DEFAULT NULL, ebc float8 DEFAULT NULL,
                                srm float8 DEFAULT NULL, ph float8 DEFAULT NULL) RETURNS json
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  d record;
BEGIN
  SELECT * INTO d FROM brewml.classify_detail('ibu', ARRAY[abv, target_fg, target_og, ebc, srm, ph], true);
  IF d.class IS NULL THEN
    RAISE SQLSTATE 'PT404' USING MESSAGE = 'no IBU model is deployed',
      HINT = 'An admin can POST /rpc/train_ibu, then POST /rpc/deploy.';
  END IF;
  RETURN row_to_json(d);
END
$$;
COMMENT ON FUNCTION api.predict_ibu(float8, float8, float8, float8, float8, float8) IS
  'GET /rpc/predict_ibu?abv=&target_fg=&target_og=&ebc=&srm=&ph=: the IBU class (missing features allowed); 404 if no model is deployed';

-- POST /rpc/train_ibu {"params"}: train an IBU model (admin).
CREATE FUNCTION api.train_ibu(params jsonb DEFAULT '{}') RETURNS json
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  new_id bigint := brewml.train_ibu(coalesce(params, '{}'));
BEGIN
  RETURN (SELECT row_to_json(m) FROM api.models m WHERE m.id = new_id);
END
$$;
COMMENT ON FUNCTION api.train_ibu(jsonb) IS 'POST /rpc/train_ibu: train an IBU model on cleaned_beers (admin role); the new model';

-- POST /rpc/deploy {"model_id"}: deploy a model (admin).
CREATE FUNCTION api.deploy(model_id bigint) RETURNS json
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  IF NOT EXISTS (SELECT FROM brewml.models m WHERE m.id = deploy.model_id) THEN
    RAISE SQLSTATE 'PT404' USING MESSAGE = format('no model has id %s', deploy.model_id);
  END IF;
  RETURN (SELECT row_to_json(d) FROM brewml.deploy(deploy.model_id) d);
END
$$;
COMMENT ON FUNCTION api.deploy(bigint) IS 'POST /rpc/deploy: deploy a model under its name, re-scoring beers for ibu (admin role)';

-- POST /rpc/rollback {"model_name"}: back to the previous deployment (admin).
CREATE FUNCTION api.rollback(model_name text) RETURNS json
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  IF NOT EXISTS (SELECT FROM brewml.deployments d WHERE d.name = rollback.model_name) THEN
    RAISE SQLSTATE 'PT404' USING MESSAGE = format('no model named "%s" is deployed', rollback.model_name);
  END IF;
  RETURN (SELECT row_to_json(d) FROM brewml.rollback(rollback.model_name) d);
EXCEPTION WHEN object_not_in_prerequisite_state THEN
  -- nothing to roll back to: a conflict with the registry's state, 409
  RAISE SQLSTATE 'PGRST' USING
    MESSAGE = json_build_object('code', '55000', 'message', SQLERRM, 'details', NULL, 'hint', NULL)::text,
    DETAIL = '{"status": 409, "headers": {}}';
END
$$;
COMMENT ON FUNCTION api.rollback(text) IS 'POST /rpc/rollback: return a name to its previous deployment (admin role)';

-------------------------------------------------------------------------------
-- scores of batch models (seed 002): brewml-push's endpoints
-------------------------------------------------------------------------------

-- A request header as text, or NULL.
CREATE FUNCTION api_private.header(name text) RETURNS text
LANGUAGE sql STABLE
RETURN current_setting('request.headers', true)::json ->> name;
COMMENT ON FUNCTION api_private.header(text) IS 'A request header (lower-case name), or NULL';

-- A request header that must hold an integer, or a 400 naming it.
CREATE FUNCTION api_private.header_int(name text) RETURNS bigint
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  v text := api_private.header(name);
BEGIN
  IF v IS NULL OR v !~ '^[0-9]{1,18}$' THEN
    RAISE EXCEPTION 'header % must be a non-negative integer, not %', name, coalesce(v, 'missing')
      USING ERRCODE = '22023';
  END IF;
  RETURN v::bigint;
END
$$;
COMMENT ON FUNCTION api_private.header_int(text) IS 'A request header holding an integer, else a 400';

CREATE VIEW api.scores AS SELECT model, pk, score, batch_id, line, loaded_at FROM brewml.scores;
COMMENT ON VIEW api.scores IS 'GET /scores?model=eq.M&pk=eq.K: a model''s current score for a key (the primary key)';

CREATE VIEW api.score_batches AS
  SELECT b.id, b.model, b.source_file, b.bytes, b.chunk_bytes, b.started_at, b.finished_at, b.status,
         t.chunks, t.lines_seen, t.rows_loaded, t.lines_rejected
    FROM brewml.score_batches b JOIN brewml.score_batch_totals t ON t.batch_id = b.id;
COMMENT ON VIEW api.score_batches IS 'GET /score_batches: every load of a file, with its counts so far';

CREATE VIEW api.score_rejects AS
  SELECT r.batch_id, b.source_file, r.line_number, encode(r.line, 'escape') AS line, r.reason
    FROM brewml.score_rejects r JOIN brewml.score_batches b ON b.id = r.batch_id;
COMMENT ON VIEW api.score_rejects IS 'GET /score_rejects?batch_id=eq.N: the lines not loaded, by file and line number, and why';

-- POST /rpc/open_score_batch: open (or find) the batch of a file.
CREATE FUNCTION api.open_score_batch(model text, source_file text, fingerprint text, bytes bigint,
                                     chunk_bytes integer, resume boolean DEFAULT false) RETURNS json
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  RETURN (SELECT row_to_json(o) FROM brewml.open_score_batch(model, source_file, fingerprint, bytes,
                                                             chunk_bytes, resume) o);
EXCEPTION WHEN object_not_in_prerequisite_state THEN
  RAISE SQLSTATE 'PGRST' USING
    MESSAGE = json_build_object('code', '55000', 'message', SQLERRM, 'details', NULL,
                                'hint', 'Resume it (brewml-push --resume), or change the file.')::text,
    DETAIL = '{"status": 409, "headers": {}}';
END
$$;
COMMENT ON FUNCTION api.open_score_batch(text, text, text, bigint, integer, boolean) IS
  'POST /rpc/open_score_batch: the batch of a file, its chunk size and its committed chunks (ingest role)';

-- POST /rpc/load_scores: one chunk of JSON Lines as application/octet-stream,
-- with headers X-Batch-Id, X-Chunk-Seq, X-First-Line.
CREATE FUNCTION api.load_scores(bytea) RETURNS json
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  batch bigint := api_private.header_int('x-batch-id');
BEGIN
  IF NOT EXISTS (SELECT FROM brewml.score_batches b WHERE b.id = batch) THEN
    RAISE SQLSTATE 'PT404' USING MESSAGE = format('no score batch has id %s', batch);
  END IF;
  RETURN (SELECT row_to_json(r) FROM brewml.load_scores(batch, api_private.header_int('x-chunk-seq')::integer,
                                                          api_private.header_int('x-first-line'), $1) r);
END
$$;
COMMENT ON FUNCTION api.load_scores(bytea) IS
  'POST /rpc/load_scores: load a chunk (octet-stream body; X-Batch-Id, X-Chunk-Seq, X-First-Line); its counts (ingest role)';

-- POST /rpc/reject_score_line: a line the client could not send (octet-stream: its beginning),
-- with headers X-Batch-Id, X-Line-Number, X-Reason.
CREATE FUNCTION api.reject_score_line(bytea) RETURNS json
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  PERFORM brewml.reject_score_line(api_private.header_int('x-batch-id'), api_private.header_int('x-line-number'),
                                   $1, coalesce(api_private.header('x-reason'), 'rejected by the client'));
  RETURN '{"rejected": 1}'::json;
END
$$;
COMMENT ON FUNCTION api.reject_score_line(bytea) IS
  'POST /rpc/reject_score_line: record a line the client could not send, by number (ingest role)';

-- POST /rpc/finish_score_batch {"batch_id", "chunks"}: close a batch; its totals.
CREATE FUNCTION api.finish_score_batch(batch_id bigint, chunks integer) RETURNS json
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  RETURN (SELECT row_to_json(b) FROM brewml.finish_score_batch(batch_id, chunks) b);
END
$$;
COMMENT ON FUNCTION api.finish_score_batch(bigint, integer) IS
  'POST /rpc/finish_score_batch: close a batch whose chunks are all committed; its totals (ingest role)';

-------------------------------------------------------------------------------
-- the worker
-------------------------------------------------------------------------------

CREATE VIEW api.worker_status AS SELECT * FROM brewml.worker_status;
COMMENT ON VIEW api.worker_status IS 'GET /worker_status: the Punk API worker''s state and counters';

CREATE VIEW api.fetch_log AS
  SELECT * FROM brewml.fetch_log WHERE fetched_at > now() - interval '1 day';
COMMENT ON VIEW api.fetch_log IS 'GET /fetch_log: the worker''s requests of the last day, with latency and outcome';

-- POST /rpc/poll_now: wake the worker (admin).
CREATE FUNCTION api.poll_now() RETURNS boolean
LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
RETURN brewml.poll_now();
COMMENT ON FUNCTION api.poll_now() IS 'POST /rpc/poll_now: wake the Punk API worker for a poll at once (admin role)';

-------------------------------------------------------------------------------
-- who may do what
-------------------------------------------------------------------------------

RESET ROLE;
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA api, api_private FROM PUBLIC;
GRANT USAGE ON SCHEMA api, api_private TO brewml_anon;
GRANT EXECUTE ON FUNCTION api_private.request_sensor(text), api_private.fail_400(text, anyelement),
  api_private.fail_404(text, anyelement) TO brewml_anon;
GRANT EXECUTE ON FUNCTION api_private.request_sensor(text) TO brewml_api;
GRANT SELECT ON ALL TABLES IN SCHEMA api TO brewml_anon;
GRANT EXECUTE ON FUNCTION api.weights(text), api.predict(text, float8),
  api.predict_batch(text, float8[], text[]), api.sensor_predict(json),
  api.predict_ibu(float8, float8, float8, float8, float8, float8) TO brewml_anon;
GRANT EXECUTE ON FUNCTION api_private.header(text), api_private.header_int(text) TO brewml_api;
GRANT EXECUTE ON FUNCTION api.open_score_batch(text, text, text, bigint, integer, boolean),
  api.load_scores(bytea), api.reject_score_line(bytea), api.finish_score_batch(bigint, integer) TO brewml_ingest;
GRANT EXECUTE ON FUNCTION api.fit(text, float8[]), api.adjust(text), api.sensor_fit(text),
  api.sensor_adjust(text), api.ingest_beers(text) TO brewml_ingest;
GRANT EXECUTE ON FUNCTION api.train_ibu(jsonb), api.deploy(bigint), api.rollback(text),
  api.poll_now() TO brewml_admin;

COMMIT;

NOTIFY pgrst, 'reload schema';

-- brewml 0.3: the in-database classifier and the IBU model (seeds 000 and 004)
\echo Use "ALTER EXTENSION brewml UPDATE TO '0.3'" to load this file. \quit

-------------------------------------------------------------------------------
-- The model registry
-------------------------------------------------------------------------------

CREATE TABLE brewml.models (
  id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  name          text NOT NULL CHECK (octet_length(name) BETWEEN 1 AND 63),
  version       integer NOT NULL CHECK (version >= 1),
  algorithm     text NOT NULL,
  params        jsonb NOT NULL,
  label         text NOT NULL,
  features      text[] NOT NULL,
  classes       text[] NOT NULL,
  source        text NOT NULL,
  training_rows bigint NOT NULL,
  skipped_rows  bigint NOT NULL,
  train_seconds float8 NOT NULL,
  metrics       jsonb NOT NULL,
  model         bytea NOT NULL,
  checksum      text NOT NULL,
  created_at    timestamptz NOT NULL DEFAULT now(),
  created_by    name NOT NULL DEFAULT current_user,
  UNIQUE (name, version)
);
COMMENT ON TABLE brewml.models IS
  'Every trained model: a versioned, checksummed binary with its parameters, features, classes, training size and time, and metrics';
COMMENT ON COLUMN brewml.models.params IS 'The parameters in force, defaults included';
COMMENT ON COLUMN brewml.models.metrics IS
  'Out-of-bag accuracy, macro-F1, per-class precision/recall/F1 and the confusion matrix (rows: truth, columns: prediction, in classes order)';
COMMENT ON COLUMN brewml.models.model IS 'The forest in brewml''s binary format 1 (header, CRC-32C of the body)';
COMMENT ON COLUMN brewml.models.checksum IS 'SHA-256 of model, hex: equal checksums, equal models';
SELECT pg_catalog.pg_extension_config_dump('brewml.models', '');
SELECT pg_catalog.pg_extension_config_dump('brewml.models_id_seq', '');

CREATE FUNCTION brewml.register_model(name text, algorithm text, params jsonb, label text,
                                      features text[], classes text[], source text,
                                      training_rows bigint, skipped_rows bigint,
                                      train_seconds float8, metrics jsonb, model bytea)
RETURNS bigint
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  new_id bigint;
BEGIN
  -- one version number per name, also under concurrent training
  PERFORM pg_advisory_xact_lock(hashtext('brewml.models'), hashtext(name));
  INSERT INTO brewml.models (name, version, algorithm, params, label, features, classes, source,
                             training_rows, skipped_rows, train_seconds, metrics, model, checksum)
  VALUES (name, coalesce((SELECT max(m.version) FROM brewml.models m WHERE m.name = register_model.name), 0) + 1,
          algorithm, params, label, features, classes, source, training_rows, skipped_rows,
          train_seconds, metrics, model, encode(sha256(model), 'hex'))
  RETURNING id INTO new_id;
  RETURN new_id;
END
$$;
COMMENT ON FUNCTION brewml.register_model(text, text, jsonb, text, text[], text[], text, bigint, bigint, float8, jsonb, bytea) IS
  'Internal to brewml.train: store a trained model under the next version of its name';
REVOKE ALL ON FUNCTION brewml.register_model(text, text, jsonb, text, text[], text[], text, bigint, bigint, float8, jsonb, bytea) FROM PUBLIC;

CREATE TABLE brewml.deployments (
  name        text PRIMARY KEY,
  model_id    bigint NOT NULL REFERENCES brewml.models (id),
  deployed_at timestamptz NOT NULL DEFAULT now(),
  history     bigint[] NOT NULL DEFAULT '{}'
);
COMMENT ON TABLE brewml.deployments IS 'The model deployed under each name: what classify() uses';
COMMENT ON COLUMN brewml.deployments.history IS 'Earlier deployments, the latest last: what brewml.rollback() returns to';
SELECT pg_catalog.pg_extension_config_dump('brewml.deployments', '');

CREATE TABLE brewml.deployment_log (
  id       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  name     text NOT NULL,
  model_id bigint NOT NULL,
  action   text NOT NULL CHECK (action IN ('deploy', 'rollback')),
  at       timestamptz NOT NULL DEFAULT now(),
  by       name NOT NULL DEFAULT current_user
);
COMMENT ON TABLE brewml.deployment_log IS 'Every deploy and rollback';
SELECT pg_catalog.pg_extension_config_dump('brewml.deployment_log', '');
SELECT pg_catalog.pg_extension_config_dump('brewml.deployment_log_id_seq', '');

CREATE FUNCTION brewml.models_changed() RETURNS trigger
  AS 'MODULE_PATHNAME', 'model_registry_changed' LANGUAGE C;
COMMENT ON FUNCTION brewml.models_changed() IS
  'Trigger: makes every backend drop its cached models when the registry or a deployment changes';
CREATE TRIGGER models_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON brewml.deployments
  FOR EACH STATEMENT EXECUTE FUNCTION brewml.models_changed();
COMMENT ON TRIGGER models_changed ON brewml.deployments IS 'Drops cached models in every backend';
CREATE TRIGGER models_changed AFTER UPDATE OR DELETE OR TRUNCATE ON brewml.models
  FOR EACH STATEMENT EXECUTE FUNCTION brewml.models_changed();
COMMENT ON TRIGGER models_changed ON brewml.models IS 'Drops cached models in every backend';

CREATE VIEW brewml.model_registry AS
  SELECT m.id, m.name, m.version, d.name IS NOT NULL AS deployed, m.algorithm, m.training_rows,
         m.skipped_rows, round(m.train_seconds::numeric, 3) AS train_seconds,
         (m.metrics ->> 'accuracy')::float8 AS accuracy, (m.metrics ->> 'macro_f1')::float8 AS macro_f1,
         octet_length(m.model) AS bytes, m.checksum, m.created_at
    FROM brewml.models m LEFT JOIN brewml.deployments d ON d.model_id = m.id;
COMMENT ON VIEW brewml.model_registry IS 'Every model with its out-of-bag scores and whether it is deployed, without the binary';

-------------------------------------------------------------------------------
-- Training, evaluation, prediction
-------------------------------------------------------------------------------

CREATE FUNCTION brewml.train(model_name text, source text, label text, features text[],
                             params jsonb DEFAULT '{}')
RETURNS bigint
  AS 'MODULE_PATHNAME', 'model_train' LANGUAGE C VOLATILE CALLED ON NULL INPUT PARALLEL UNSAFE;
COMMENT ON FUNCTION brewml.train(text, text, text, text[], jsonb) IS
  'Train a random forest on a relation or query (one scan), register it as the next version of model_name; returns its id';

CREATE FUNCTION brewml.cross_validate(source text, label text, features text[], params jsonb DEFAULT '{}',
                                      folds integer DEFAULT 5, repeats integer DEFAULT 5, seed bigint DEFAULT 0,
                                      OUT runs integer, OUT accuracy_mean float8, OUT accuracy_std float8,
                                      OUT macro_f1_mean float8, OUT macro_f1_std float8, OUT metrics jsonb)
  AS 'MODULE_PATHNAME', 'model_cross_validate' LANGUAGE C VOLATILE CALLED ON NULL INPUT PARALLEL UNSAFE;
COMMENT ON FUNCTION brewml.cross_validate(text, text, text[], jsonb, integer, integer, bigint) IS
  'Repeated stratified k-fold: mean and standard deviation over the folds of accuracy and macro-F1, and the pooled confusion matrix';

CREATE FUNCTION brewml.classify(model_name text, features float8[]) RETURNS text
  AS 'MODULE_PATHNAME', 'model_classify' LANGUAGE C STABLE CALLED ON NULL INPUT PARALLEL SAFE COST 100;
COMMENT ON FUNCTION brewml.classify(text, float8[]) IS
  'The class the model deployed under model_name predicts; NULL elements are missing values';

CREATE FUNCTION brewml.classify_proba(model_name text, features float8[]) RETURNS jsonb
  AS 'MODULE_PATHNAME', 'model_classify_proba' LANGUAGE C STABLE CALLED ON NULL INPUT PARALLEL SAFE COST 100;
COMMENT ON FUNCTION brewml.classify_proba(text, float8[]) IS
  'The probability of every class under the deployed model, as {class: probability}';

CREATE FUNCTION brewml.classify_detail(model_name text, features float8[], missing_ok boolean DEFAULT false,
                                       OUT class text, OUT probability float8, OUT model_id bigint,
                                       OUT version integer)
  AS 'MODULE_PATHNAME', 'model_classify_detail' LANGUAGE C STABLE CALLED ON NULL INPUT PARALLEL SAFE COST 100;
COMMENT ON FUNCTION brewml.classify_detail(text, float8[], boolean) IS
  'The predicted class, its probability and the model that said so; all NULL when missing_ok and nothing is deployed';

-------------------------------------------------------------------------------
-- Deploy and roll back
-------------------------------------------------------------------------------

CREATE FUNCTION brewml.deploy(model_id bigint) RETURNS brewml.deployments
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  m record;
  d brewml.deployments;
BEGIN
  SELECT id, name, version, features INTO m FROM brewml.models WHERE id = model_id;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'no model with id %', model_id USING ERRCODE = 'P0002';
  END IF;
  IF m.name = 'ibu' AND m.features IS DISTINCT FROM ARRAY['abv', 'target_fg', 'target_og', 'ebc', 'srm', 'ph'] THEN
    RAISE EXCEPTION 'a model deployed as "ibu" must take abv, target_fg, target_og, ebc, srm, ph; model % takes %',
      model_id, array_to_string(m.features, ', ') USING ERRCODE = '22023',
      HINT = 'Enrichment of brewml.cleaned_beers passes those six columns, in that order.';
  END IF;
  INSERT INTO brewml.deployments AS cur (name, model_id) VALUES (m.name, m.id)
  ON CONFLICT (name) DO UPDATE
     SET model_id = EXCLUDED.model_id, deployed_at = now(), history = cur.history || cur.model_id
   WHERE cur.model_id <> EXCLUDED.model_id
  RETURNING * INTO d;
  IF d IS NULL THEN   -- already deployed: nothing changes
    SELECT * INTO d FROM brewml.deployments WHERE name = m.name;
    RETURN d;
  END IF;
  INSERT INTO brewml.deployment_log (name, model_id, action) VALUES (m.name, m.id, 'deploy');
  IF m.name = 'ibu' THEN
    PERFORM brewml.rescore_beers();
  END IF;
  RETURN d;
END
$$;
COMMENT ON FUNCTION brewml.deploy(bigint) IS
  'Deploy a model under its name (the earlier one can be rolled back to); deploying "ibu" re-scores every beer';

CREATE FUNCTION brewml.deploy(model_name text, version integer) RETURNS brewml.deployments
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  wanted bigint;
BEGIN
  SELECT id INTO wanted FROM brewml.models m WHERE m.name = model_name AND m.version = deploy.version;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'model "%" has no version %', model_name, version USING ERRCODE = 'P0002';
  END IF;
  RETURN brewml.deploy(wanted);
END
$$;
COMMENT ON FUNCTION brewml.deploy(text, integer) IS 'Deploy a version of a named model';

CREATE FUNCTION brewml.rollback(model_name text) RETURNS brewml.deployments
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  d brewml.deployments;
BEGIN
  SELECT * INTO d FROM brewml.deployments WHERE name = model_name FOR UPDATE;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'no model is deployed as "%"', model_name USING ERRCODE = 'P0002';
  END IF;
  IF cardinality(d.history) = 0 THEN
    RAISE EXCEPTION 'model "%" has no earlier deployment to roll back to', model_name
      USING ERRCODE = '55000';
  END IF;
  UPDATE brewml.deployments
     SET model_id = d.history[cardinality(d.history)], deployed_at = now(),
         history = d.history[1:cardinality(d.history) - 1]
   WHERE name = model_name
  RETURNING * INTO d;
  INSERT INTO brewml.deployment_log (name, model_id, action) VALUES (model_name, d.model_id, 'rollback');
  IF model_name = 'ibu' THEN
    PERFORM brewml.rescore_beers();
  END IF;
  RETURN d;
END
$$;
COMMENT ON FUNCTION brewml.rollback(text) IS
  'Return a name to the model deployed before the current one; rolling back "ibu" re-scores every beer';

-------------------------------------------------------------------------------
-- IBU classes and the IBU model
-------------------------------------------------------------------------------

CREATE TABLE brewml.ibu_classes (
  label text PRIMARY KEY,
  lower float8 NOT NULL,
  upper float8,
  CHECK (upper IS NULL OR lower < upper)
);
COMMENT ON TABLE brewml.ibu_classes IS
  'The IBU classes: label for lower <= ibu < upper (upper NULL: no bound); they must tile the line without gaps or overlaps';
INSERT INTO brewml.ibu_classes VALUES
  ('<20', 0, 20), ('20-40', 20, 40), ('40-60', 40, 60), ('60-100', 60, 100), ('>=100', 100, NULL);

CREATE FUNCTION brewml.check_ibu_classes() RETURNS void
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  prev record;
  c record;
  n integer := 0;
BEGIN
  FOR c IN SELECT label, lower, upper FROM brewml.ibu_classes ORDER BY lower LOOP
    n := n + 1;
    IF prev IS NOT NULL THEN
      IF prev.upper IS NULL OR c.lower < prev.upper THEN
        RAISE EXCEPTION 'brewml.ibu_classes: classes "%" and "%" overlap', prev.label, c.label
          USING ERRCODE = '22023',
                DETAIL = format('"%s" is [%s, %s), "%s" is [%s, %s).', prev.label, prev.lower,
                                coalesce(prev.upper::text, 'infinity'), c.label, c.lower,
                                coalesce(c.upper::text, 'infinity'));
      ELSIF c.lower > prev.upper THEN
        RAISE EXCEPTION 'brewml.ibu_classes: nothing covers [%, %)', prev.upper, c.lower
          USING ERRCODE = '22023', DETAIL = format('The gap lies between "%s" and "%s".', prev.label, c.label);
      END IF;
    END IF;
    prev := c;
  END LOOP;
  IF n < 2 THEN
    RAISE EXCEPTION 'brewml.ibu_classes needs at least 2 classes, it has %', n USING ERRCODE = '22023';
  END IF;
END
$$;
COMMENT ON FUNCTION brewml.check_ibu_classes() IS
  'Error unless brewml.ibu_classes has at least 2 classes without gaps or overlaps';

CREATE FUNCTION brewml.ibu_classes_checked() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  PERFORM brewml.check_ibu_classes();
  RETURN NULL;
END
$$;
COMMENT ON FUNCTION brewml.ibu_classes_checked() IS 'Trigger: brewml.check_ibu_classes() at commit';
CREATE CONSTRAINT TRIGGER ibu_classes_checked AFTER INSERT OR UPDATE OR DELETE ON brewml.ibu_classes
  DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION brewml.ibu_classes_checked();
COMMENT ON TRIGGER ibu_classes_checked ON brewml.ibu_classes IS
  'A change that leaves gaps or overlaps is refused at commit';

CREATE FUNCTION brewml.ibu_class(ibu float8) RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
  SELECT c.label FROM brewml.ibu_classes c WHERE ibu >= c.lower AND (c.upper IS NULL OR ibu < c.upper)
$$;
COMMENT ON FUNCTION brewml.ibu_class(float8) IS 'The IBU class of an ibu value, NULL if none';

CREATE FUNCTION brewml.ibu_training_params(params jsonb) RETURNS jsonb
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  PERFORM brewml.check_ibu_classes();
  RETURN jsonb_build_object('n_trees', 300, 'max_features', 1, 'min_samples_leaf', 3,
                            'classes', (SELECT jsonb_agg(label ORDER BY lower) FROM brewml.ibu_classes))
         || coalesce(params, '{}');
END
$$;
COMMENT ON FUNCTION brewml.ibu_training_params(jsonb) IS
  'The IBU model''s parameters: 300 trees, 1 feature tried per split, leaves of at least 3 rows, the classes of brewml.ibu_classes in their order; params override them';

CREATE FUNCTION brewml.train_ibu(params jsonb DEFAULT '{}') RETURNS bigint
LANGUAGE sql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
  SELECT brewml.train('ibu',
    'SELECT brewml.ibu_class(ibu) AS ibu_class, abv, target_fg, target_og, ebc, srm, ph FROM brewml.cleaned_beers WHERE ibu IS NOT NULL ORDER BY id',
    'ibu_class', ARRAY['abv', 'target_fg', 'target_og', 'ebc', 'srm', 'ph'],
    brewml.ibu_training_params(params))
$$;
COMMENT ON FUNCTION brewml.train_ibu(jsonb) IS
  'Train the IBU model on brewml.cleaned_beers (abv, target_fg, target_og, ebc, srm, ph); returns its id, deploy it with brewml.deploy(id)';

CREATE FUNCTION brewml.cross_validate_ibu(params jsonb DEFAULT '{}', folds integer DEFAULT 5,
                                          repeats integer DEFAULT 5, seed bigint DEFAULT 0,
                                          OUT runs integer, OUT accuracy_mean float8, OUT accuracy_std float8,
                                          OUT macro_f1_mean float8, OUT macro_f1_std float8, OUT metrics jsonb)
LANGUAGE sql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
  SELECT * FROM brewml.cross_validate(
    'SELECT brewml.ibu_class(ibu) AS ibu_class, abv, target_fg, target_og, ebc, srm, ph FROM brewml.cleaned_beers WHERE ibu IS NOT NULL ORDER BY id',
    'ibu_class', ARRAY['abv', 'target_fg', 'target_og', 'ebc', 'srm', 'ph'],
    brewml.ibu_training_params(params), folds, repeats, seed)
$$;
COMMENT ON FUNCTION brewml.cross_validate_ibu(jsonb, integer, integer, bigint) IS
  'The protocol of the IBU baseline (5-fold stratified, repeated 5 times) on brewml.cleaned_beers';

-------------------------------------------------------------------------------
-- Enrichment: every beer gets the deployed IBU model's prediction as it arrives
-------------------------------------------------------------------------------

ALTER TABLE brewml.cleaned_beers
  ADD COLUMN ibu_class text,
  ADD COLUMN ibu_class_probability float8,
  ADD COLUMN ibu_model_id bigint;
COMMENT ON COLUMN brewml.cleaned_beers.ibu_class IS 'The IBU class the deployed "ibu" model predicts (NULL while none is deployed)';
COMMENT ON COLUMN brewml.cleaned_beers.ibu_class_probability IS 'The probability the model gives that class';
COMMENT ON COLUMN brewml.cleaned_beers.ibu_model_id IS 'The brewml.models id of the model that predicted';

CREATE FUNCTION brewml.cleaned_beers_predict() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  SELECT d.class, d.probability, d.model_id
    INTO NEW.ibu_class, NEW.ibu_class_probability, NEW.ibu_model_id
    FROM brewml.classify_detail('ibu', ARRAY[NEW.abv, NEW.target_fg, NEW.target_og, NEW.ebc, NEW.srm, NEW.ph], true) d;
  RETURN NEW;
END
$$;
COMMENT ON FUNCTION brewml.cleaned_beers_predict() IS
  'Trigger: the deployed IBU model''s class, probability and model id for a beer, in the transaction that stores it';
CREATE TRIGGER cleaned_beers_predict BEFORE INSERT OR UPDATE OF abv, target_fg, target_og, ebc, srm, ph
  ON brewml.cleaned_beers FOR EACH ROW EXECUTE FUNCTION brewml.cleaned_beers_predict();
COMMENT ON TRIGGER cleaned_beers_predict ON brewml.cleaned_beers IS
  'Enriches each new or changed beer with its predicted IBU class (seed 004)';

CREATE FUNCTION brewml.rescore_beers() RETURNS bigint
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  n bigint;
BEGIN
  UPDATE brewml.cleaned_beers c
     SET (ibu_class, ibu_class_probability, ibu_model_id) =
         (SELECT d.class, d.probability, d.model_id
            FROM brewml.classify_detail('ibu', ARRAY[c.abv, c.target_fg, c.target_og, c.ebc, c.srm, c.ph], true) d);
  GET DIAGNOSTICS n = ROW_COUNT;
  RETURN n;
END
$$;
COMMENT ON FUNCTION brewml.rescore_beers() IS
  'Predict every beer again with the deployed IBU model (deploy and rollback of "ibu" call it); returns the beers scored';

CREATE VIEW brewml.beer_predictions AS
  SELECT id, name, ibu, brewml.ibu_class(ibu) AS actual_class, ibu_class AS predicted_class,
         ibu_class_probability AS probability, ibu_model_id AS model_id
    FROM brewml.cleaned_beers;
COMMENT ON VIEW brewml.beer_predictions IS 'Each beer''s actual IBU class beside the predicted one';

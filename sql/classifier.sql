-- The in-database classifier: training, determinism, prediction, registry,
-- deploy and rollback, enrichment of beers, the baseline protocol, errors.
\pset null '(null)'
\getenv abs_srcdir PG_ABS_SRCDIR
\set punk :abs_srcdir '/fixtures/punkapi-data.json'
SELECT brewml.ingest_beers('punkapi-db', NULL, pg_read_file(:'punk')::jsonb) AS beers;

-- the IBU model: 320 beers with an ibu, the classes of brewml.ibu_classes in their order
SELECT brewml.train_ibu() AS ibu1 \gset
SELECT name, version, algorithm, label, features, classes, training_rows, skipped_rows,
       params, metrics ->> 'method' AS metrics, metrics ->> 'rows' AS oob_rows
  FROM brewml.models WHERE id = :ibu1;
SELECT (metrics ->> 'accuracy')::float8 > 0.45 AS oob_accuracy_sane,
       jsonb_array_length(metrics -> 'confusion') AS confusion_rows,
       (SELECT sum(v::int) FROM jsonb_array_elements(metrics -> 'confusion') r, jsonb_array_elements_text(r) v) AS confusion_total
  FROM brewml.models WHERE id = :ibu1;
-- a seed makes training reproducible, bit for bit; another seed gives another forest
SELECT brewml.train_ibu() AS ibu2 \gset
SELECT brewml.train_ibu('{"seed": 7}') AS ibu3 \gset
SELECT a.checksum = b.checksum AS same_seed_same_model, a.checksum <> c.checksum AS other_seed_other_model,
       b.version AS second_version
  FROM brewml.models a, brewml.models b, brewml.models c WHERE a.id = :ibu1 AND b.id = :ibu2 AND c.id = :ibu3;

-- nothing deployed yet: beers are stored, their prediction is NULL
SELECT count(*) AS beers, count(ibu_class) AS predicted FROM brewml.cleaned_beers;
\set ON_ERROR_STOP 0
\set SHOW_CONTEXT never
SELECT brewml.classify('ibu', ARRAY[4.5, 1010, 1044, 20, 10, 4.4]);
\set ON_ERROR_STOP 1

-- deploy: every beer is scored in the same call, and new ones as they arrive
SELECT name, model_id = :ibu1 AS first, history FROM brewml.deploy(:ibu1);
SELECT count(*) AS beers, count(ibu_class) AS predicted, bool_and(ibu_model_id = :ibu1) AS by_model,
       bool_and(ibu_class_probability BETWEEN 0.2 AND 1) AS probabilities
  FROM brewml.cleaned_beers;
SELECT brewml.ingest_beers('test', 200, '{"id": 1001, "name": "Strong", "abv": 9, "target_fg": 1012, "target_og": 1080, "ebc": 30, "srm": 15, "ph": 4.4}');
SELECT id, ibu_class IS NOT NULL AS predicted, ibu_model_id = :ibu1 AS by_model FROM brewml.cleaned_beers WHERE id = 1001;
-- prediction agrees with the trigger's, and the probabilities add up
SELECT bool_and(brewml.classify('ibu', ARRAY[abv, target_fg, target_og, ebc, srm, ph]) = ibu_class) AS same_as_trigger
  FROM brewml.cleaned_beers;
SELECT string_agg(key, ' ' ORDER BY key) AS classes, round(sum(value::numeric), 6) AS total
  FROM jsonb_each_text(brewml.classify_proba('ibu', ARRAY[4.5, 1010, 1044, 20, 10, 4.4]));
-- the compiled walk (ranked thresholds, eight trees at a time) agrees with the
-- plain walk of the stored nodes to the last bit, missing values included;
-- this model's deep sparse trees are compiled as linked nodes (the DEBUG
-- line comes from compiling it on first use in a new session)
\c
SET client_min_messages = debug1;
SELECT brewml.classify('ibu', ARRAY[4.5, 1010, 1044, 20, 10, 4.4]) IS NOT NULL AS compiled;
RESET client_min_messages;
CREATE TEMP TABLE compiled AS
  SELECT id, brewml.classify_proba('ibu', ARRAY[abv, target_fg, target_og, ebc, srm, ph]) AS p FROM brewml.cleaned_beers;
SET brewml.compiled_predict = off;
SELECT count(*) AS beers, bool_and(c.p = brewml.classify_proba('ibu', ARRAY[abv, target_fg, target_og, ebc, srm, ph])) AS identical
  FROM brewml.cleaned_beers b JOIN compiled c USING (id);
RESET brewml.compiled_predict;
-- missing features (NULL or NaN) still get a class
SELECT brewml.classify('ibu', ARRAY[4.5, NULL, 1044, NULL, 10, 'NaN']) IS NOT NULL AS with_missing;
SELECT brewml.classify('ibu', ARRAY[NULL, NULL, NULL, NULL, NULL, NULL]::float8[]) IS NOT NULL AS all_missing;
-- training-set accuracy of the deployed model is high (it has seen them), across classes
SELECT round(avg((predicted_class = actual_class)::int), 1) >= 0.8 AS fits_training_data
  FROM brewml.beer_predictions WHERE actual_class IS NOT NULL;

-- a new deployment re-scores; rollback returns to the one before, and re-scores
SELECT model_id = :ibu3 AS third, history = ARRAY[:ibu1]::bigint[] AS history FROM brewml.deploy(:ibu3);
SELECT bool_and(ibu_model_id = :ibu3) AS rescored FROM brewml.cleaned_beers;
SELECT model_id = :ibu1 AS back_to_first, history FROM brewml.rollback('ibu');
SELECT bool_and(ibu_model_id = :ibu1) AS rescored_back FROM brewml.cleaned_beers;
SELECT model_id = :ibu1 AS unchanged FROM brewml.deploy(:ibu1);
SELECT model_id = :ibu2 AS by_version FROM brewml.deploy('ibu', 2);
SELECT action, model_id - :ibu1 AS model FROM brewml.deployment_log ORDER BY id;
SELECT brewml.rescore_beers() AS rescored;
SELECT name, version, deployed FROM brewml.model_registry ORDER BY id;

-- a backend that cached the model sees a new deployment at its next statement
CREATE EXTENSION dblink;
SELECT dblink_connect('other', format('dbname=%s port=%s host=%s', current_database(),
       current_setting('port'), split_part(current_setting('unix_socket_directories'), ',', 1)));
SELECT model_id - :ibu1 AS other_sees FROM dblink('other',
       $$SELECT model_id FROM brewml.classify_detail('ibu', ARRAY[4.5, 1010, 1044, 20, 10, 4.4])$$) AS t(model_id bigint);
SELECT (brewml.deploy(:ibu3)).model_id - :ibu1 AS deployed;
SELECT model_id - :ibu1 AS other_sees FROM dblink('other',
       $$SELECT model_id FROM brewml.classify_detail('ibu', ARRAY[4.5, 1010, 1044, 20, 10, 4.4])$$) AS t(model_id bigint);
SELECT dblink_disconnect('other');
DROP EXTENSION dblink;

-- the baseline protocol: 5-fold stratified, repeated 5 times; beat 0.519 / 0.487
SELECT runs, accuracy_mean >= 0.52 AS accuracy_ok, macro_f1_mean >= 0.49 AS macro_f1_ok,
       accuracy_std < 0.1 AS spread_sane, metrics ->> 'rows' AS pooled_rows
  FROM brewml.cross_validate_ibu();

-- the API is general: any relation or query, text/int/bool labels
CREATE TABLE points AS
  SELECT (x + y > 1)::text AS side, x, y, (i % 3)::int AS third
    FROM (SELECT i, (i * 7919 % 1000) / 1000.0 AS x, (i * 104729 % 1000) / 1000.0 AS y
            FROM generate_series(1, 2000) i) s;
SELECT brewml.train('side', 'points', 'side', ARRAY['x', 'y'], '{"n_trees": 20, "max_depth": 6}') AS side \gset
SELECT classes, training_rows, (metrics ->> 'accuracy')::float8 > 0.9 AS learns FROM brewml.models WHERE id = :side;
SELECT (brewml.deploy(:side)).name;
SELECT brewml.classify('side', ARRAY[0.9, 0.9]) AS far, brewml.classify('side', ARRAY[0.1, 0.2]) AS near;
-- a shallow forest of dense trees: every group compiled as complete trees,
-- and the same to the last bit as the plain walk (3 trees: padding lanes too)
SELECT brewml.deploy(brewml.train('shallow', 'points', 'side', ARRAY['x', 'y'],
                                  '{"n_trees": 3, "max_depth": 4, "seed": 3}')) IS NOT NULL AS deployed;
SET client_min_messages = debug1;
SELECT brewml.classify('shallow', ARRAY[0.5, NULL]) IS NOT NULL AS compiled;
RESET client_min_messages;
CREATE TEMP TABLE shallow AS
  SELECT x, y, brewml.classify_proba('shallow', ARRAY[x, CASE WHEN x < 0.1 THEN NULL ELSE y END]) AS p FROM points;
SET brewml.compiled_predict = off;
SELECT count(*) AS points,
       bool_and(p = brewml.classify_proba('shallow', ARRAY[x, CASE WHEN x < 0.1 THEN NULL ELSE y END])) AS identical
  FROM shallow;
RESET brewml.compiled_predict;
SELECT brewml.train('third', 'SELECT third, x, y FROM points WHERE x < 0.5', 'third', ARRAY['x', 'y'],
                    '{"n_trees": 5, "bootstrap": false, "max_features": "all"}') > 0 AS from_query;
SELECT classes, training_rows, metrics ->> 'method' AS metrics FROM brewml.models WHERE name = 'third';
-- boolean features count as 0 and 1; a relation whose name starts like a keyword is a relation
CREATE TABLE selections AS SELECT side, x > 0.5 AS right_half, y FROM points;
SELECT brewml.train('flags', 'selections', 'side', ARRAY['right_half', 'y'], '{"n_trees": 5}') > 0 AS trained;
SELECT features, training_rows FROM brewml.models WHERE name = 'flags';
DROP TABLE selections;

-- bad input: a clear error each time, never a crash
\set ON_ERROR_STOP 0
SELECT brewml.classify('nope', ARRAY[1.0]);
SELECT brewml.classify('third', ARRAY[1.0, 2.0]);
SELECT brewml.classify('ibu', ARRAY[1, 2, 3]::float8[]);
SELECT brewml.classify('ibu', ARRAY[[1, 2, 3], [4, 5, 6]]::float8[]);
SELECT brewml.classify('ibu', NULL);
SELECT brewml.classify(NULL, ARRAY[1.0]);
SELECT brewml.train('x', 'brewml.cleaned_beers', 'ibu', ARRAY['abv']);
SELECT brewml.train('x', 'brewml.cleaned_beers', 'name', ARRAY['abv']);
SELECT brewml.train('x', 'brewml.cleaned_beers', 'ibu_class', ARRAY['name']);
SELECT brewml.train('x', 'no_such_table', 'side', ARRAY['x']);
SELECT brewml.train('x', 'points', 'no_such_column', ARRAY['x']);
SELECT brewml.train('x', 'points', 'side', ARRAY[]::text[]);
SELECT brewml.train('x', 'SELECT ''a'' AS l, 1.0 AS f FROM points', 'l', ARRAY['f']);
SELECT brewml.train('x', 'SELECT side, x FROM points LIMIT 1', 'side', ARRAY['x']);
SELECT brewml.train('x', 'points', 'side', ARRAY['x'], '{"n_trees": 0}');
SELECT brewml.train('x', 'points', 'side', ARRAY['x'], '{"depth": 3}');
SELECT brewml.train('x', 'points', 'side', ARRAY['x'], '{"max_features": "most"}');
SELECT brewml.train('x', 'points', 'side', ARRAY['x'], '{"classes": ["true"]}');
SELECT brewml.train('x', 'points', 'side', ARRAY['x'], '[1, 2]');
SELECT brewml.train('x', 'SELECT side, ''Infinity''::float8 AS f FROM points', 'side', ARRAY['f']);
SELECT brewml.cross_validate('points', 'side', ARRAY['x'], '{}', 1);
SELECT brewml.deploy(123456);
SELECT brewml.deploy('ibu', 99);
SELECT brewml.rollback('side');
SELECT brewml.rollback('nothing');
-- a model deployed as "ibu" must take the six features enrichment passes
UPDATE brewml.models SET name = 'ibu', version = 100 WHERE id = :side;
SELECT brewml.deploy(:side);
UPDATE brewml.models SET name = 'side', version = 1 WHERE id = :side;
\set ON_ERROR_STOP 1

-- a corrupted binary is refused when loaded, with the model named; repairing it works again
SELECT model AS good_model FROM brewml.models WHERE id = :side \gset
UPDATE brewml.models SET model = overlay(model placing '\xff'::bytea from 200 for 1) WHERE id = :side;
\set ON_ERROR_STOP 0
SELECT brewml.classify('side', ARRAY[0.9, 0.9]);
UPDATE brewml.models SET model = substring(model from 1 for 100) WHERE id = :side;
SELECT brewml.classify('side', ARRAY[0.9, 0.9]);
UPDATE brewml.models SET model = '\x00'::bytea WHERE id = :side;
SELECT brewml.classify('side', ARRAY[0.9, 0.9]);
UPDATE brewml.models SET model = overlay(:'good_model'::bytea placing '\x4e'::bytea from 1 for 1) WHERE id = :side;
SELECT brewml.classify('side', ARRAY[0.9, 0.9]);
UPDATE brewml.models SET model = :'good_model', classes = ARRAY['a', 'b', 'c'] WHERE id = :side;
SELECT brewml.classify('side', ARRAY[0.9, 0.9]);
\set ON_ERROR_STOP 1
UPDATE brewml.models SET model = :'good_model', classes = ARRAY['false', 'true'] WHERE id = :side;
SELECT brewml.classify('side', ARRAY[0.9, 0.9]) AS repaired;

-- the IBU classes must tile the line: gaps and overlaps are refused at commit
SELECT brewml.ibu_class(19.9) AS a, brewml.ibu_class(20) AS b, brewml.ibu_class(1157) AS c, brewml.ibu_class(-1) AS d;
\set ON_ERROR_STOP 0
UPDATE brewml.ibu_classes SET upper = 45 WHERE label = '20-40';
UPDATE brewml.ibu_classes SET upper = 35 WHERE label = '20-40';
DELETE FROM brewml.ibu_classes WHERE label <> '<20';
\set ON_ERROR_STOP 1
-- a change that keeps them whole is fine, within one transaction
BEGIN;
UPDATE brewml.ibu_classes SET upper = 30 WHERE label = '20-40';
UPDATE brewml.ibu_classes SET lower = 30 WHERE label = '40-60';
COMMIT;
SELECT label, lower, upper FROM brewml.ibu_classes ORDER BY lower;
-- a broken table also stops training, with the same message
BEGIN;
SET CONSTRAINTS brewml.ibu_classes_checked IMMEDIATE;
\set ON_ERROR_STOP 0
INSERT INTO brewml.ibu_classes VALUES ('huge', 500, 600);
\set ON_ERROR_STOP 1
ROLLBACK;
BEGIN;
ALTER TABLE brewml.ibu_classes DISABLE TRIGGER ibu_classes_checked;
UPDATE brewml.ibu_classes SET lower = 35 WHERE label = '40-60';
\set ON_ERROR_STOP 0
SELECT brewml.train_ibu();
\set ON_ERROR_STOP 1
ROLLBACK;

-- leave the database as this suite found it
DROP TABLE points;
TRUNCATE brewml.deployments, brewml.deployment_log, brewml.models, brewml.raw_beers, brewml.cleaned_beers;
BEGIN;
DELETE FROM brewml.ibu_classes;
INSERT INTO brewml.ibu_classes VALUES
  ('<20', 0, 20), ('20-40', 20, 40), ('40-60', 40, 60), ('60-100', 60, 100), ('>=100', 100, NULL);
COMMIT;

-- The Punk API pipeline without the network: raw -> trigger -> cleaned, the
-- exports, brewml.ingest_beers and its errors.  The worker is off here
-- (brewml.database = '' in the regression instance); test/integration covers it.
\pset null '(null)'
\getenv abs_srcdir PG_ABS_SRCDIR
\set sample :abs_srcdir '/fixtures/beers_sample.json'
SELECT pg_read_file(:'sample')::jsonb AS sample \gset

-- a payload of 9 real beers (nulls, a comma in a name, ph 79, ibu 1157)
SELECT brewml.ingest_beers('http://example/v2/beers', 200, :'sample', '2026-01-01 00:00+00') AS stored;
SELECT count(*) AS raw, count(DISTINCT source_url) AS urls, min(http_status) AS status FROM brewml.raw_beers;
SELECT * FROM brewml.cleaned ORDER BY id;
SELECT id, first_seen, last_seen, times_seen, raw_id IS NOT NULL AS has_raw FROM brewml.cleaned_beers WHERE id = 1;

-- the same beer again, changed: the latest payload wins, first_seen stays
SELECT brewml.ingest_beers(NULL, NULL, (:'sample'::jsonb -> 0) || '{"abv": 4.6}', '2026-01-02 00:00+00') AS stored;
SELECT id, abv, first_seen, last_seen, times_seen FROM brewml.cleaned_beers WHERE id = 1;
-- an older payload arriving late keeps last_seen and first_seen right
SELECT brewml.ingest_beers(NULL, NULL, :'sample'::jsonb -> 0, '2025-12-31 00:00+00') AS stored;
SELECT id, abv, first_seen, last_seen, times_seen FROM brewml.cleaned_beers WHERE id = 1;

-- anything inserting into raw feeds cleaned the same way: a plain INSERT, a COPY
INSERT INTO brewml.raw_beers (payload) VALUES ('{"id": 400, "name": "Direct", "abv": 5, "ph": null}');
-- (NDJSON goes in with CSV quoting and delimiter turned off, so that JSON's
-- backslash escapes reach jsonb untouched)
COPY brewml.raw_beers (payload) FROM STDIN (FORMAT csv, QUOTE E'\x01', DELIMITER E'\x02');
{"id": 401, "name": "Copied \"quoted\"\t\\", "abv": 6.5, "ibu": 40.5}
\.
SELECT * FROM brewml.cleaned WHERE id >= 400 ORDER BY id;

-- the CSV export: exactly the seed's header, COPY's quoting, NULL as empty
SELECT brewml.cleaned_csv();
-- NDJSON: one beer object a line, in arrival order
SELECT count(*) AS lines, bool_and(line::jsonb ? 'id') AS all_beers
  FROM regexp_split_to_table(rtrim(brewml.raw_ndjson(), E'\n'), E'\n') AS line;
SELECT line::jsonb -> 'id' AS id, line::jsonb -> 'abv' AS abv, length(line) > 1000 AS whole_payload
  FROM regexp_split_to_table(rtrim(brewml.raw_ndjson('2026-01-02 00:00+00'), E'\n'), E'\n') AS line;
SELECT brewml.raw_ndjson(now() + interval '1 day') = '' AS none_in_the_future;

-- bad payloads: a clear error, and nothing stored (all or nothing)
\set SHOW_CONTEXT never
\set ON_ERROR_STOP 0
SELECT brewml.ingest_beers('u', 200, NULL);
SELECT brewml.ingest_beers('u', 200, '"just a string"');
SELECT brewml.ingest_beers('u', 200, '[{"id": 500, "name": "ok"}, 42]');
SELECT brewml.ingest_beers('u', 200, '[{"name": "no id"}]');
SELECT brewml.ingest_beers('u', 200, '[{"id": "7"}]');
SELECT brewml.ingest_beers('u', 200, '[{"id": 500, "abv": "strong"}]');
SELECT brewml.ingest_beers('u', 200, '[{"id": 501, "ibu": [1]}, {"id": 502}]');
SELECT brewml.ingest_beers('u', 200, '[{"id": 2.5}]');
SELECT brewml.ingest_beers('u', 200, '[{"id": -3}]');
SELECT brewml.ingest_beers('u', 200, '[{"id": 503, "name": 12}]');
SELECT brewml.ingest_beers('u', 200, '[{"id": 1e12}]');
SELECT brewml.ingest_beers('u', 200, '{truncated');
\set VERBOSITY terse
INSERT INTO brewml.raw_beers (payload) VALUES ('[1, 2]');
\set VERBOSITY default
INSERT INTO brewml.raw_beers (id, payload) VALUES (1, '{"id": 1}');
\set ON_ERROR_STOP 1
SELECT count(*) AS raw_after_errors FROM brewml.raw_beers;
SELECT count(*) AS cleaned_after_errors FROM brewml.cleaned_beers WHERE id >= 500;
-- an empty array stores nothing and says so with 0
SELECT brewml.ingest_beers('u', 200, '[]') AS stored;

-- the worker's functions when it does not run
SELECT running, polls, beers FROM brewml.worker_status;
SELECT brewml.poll_now();
-- poll_now and the URL are for superusers
CREATE ROLE brewml_punk_reader;
GRANT USAGE ON SCHEMA brewml TO brewml_punk_reader;
SET ROLE brewml_punk_reader;
\set ON_ERROR_STOP 0
SELECT brewml.poll_now();
SHOW brewml.punkapi_url;
\set ON_ERROR_STOP 1
RESET ROLE;
REVOKE USAGE ON SCHEMA brewml FROM brewml_punk_reader;
DROP ROLE brewml_punk_reader;
\set ON_ERROR_STOP 0
ALTER SYSTEM SET brewml.punkapi_url = 'file:///etc/passwd';
ALTER SYSTEM SET brewml.punkapi_url = 'gopher://example.com/';
SET brewml.poll_interval = '1s';
\set ON_ERROR_STOP 1

-- leave the database as this suite found it
TRUNCATE brewml.raw_beers, brewml.cleaned_beers;

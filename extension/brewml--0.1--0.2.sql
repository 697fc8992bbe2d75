-- brewml 0.2: the Punk API pipeline (seeds 000 and 003)
\echo Use "ALTER EXTENSION brewml UPDATE TO '0.2'" to load this file. \quit

-------------------------------------------------------------------------------
-- raw: every beer as received; cleaned: the typed columns, fed by a trigger
-------------------------------------------------------------------------------

CREATE TABLE brewml.raw_beers (
  id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  fetched_at  timestamptz NOT NULL DEFAULT now(),
  source_url  text,
  http_status integer,
  payload     jsonb NOT NULL
    CONSTRAINT raw_beers_payload_is_a_beer
    CHECK (jsonb_typeof(payload) = 'object' AND jsonb_typeof(payload -> 'id') = 'number')
);
COMMENT ON TABLE brewml.raw_beers IS
  'Every beer object as received, one row each (the raw bucket of seed 000); inserting here feeds brewml.cleaned_beers';
COMMENT ON COLUMN brewml.raw_beers.source_url IS 'Where the payload came from: the polled URL, or NULL for a direct insert';
COMMENT ON COLUMN brewml.raw_beers.http_status IS 'HTTP status of the response that carried it, or NULL';
CREATE INDEX raw_beers_beer_id ON brewml.raw_beers (((payload ->> 'id')::numeric));
COMMENT ON INDEX brewml.raw_beers_beer_id IS 'Finds every payload of a beer id';
SELECT pg_catalog.pg_extension_config_dump('brewml.raw_beers', '');
SELECT pg_catalog.pg_extension_config_dump('brewml.raw_beers_id_seq', '');

CREATE TABLE brewml.cleaned_beers (
  id          integer PRIMARY KEY,
  name        text,
  abv         float8,
  ibu         float8,
  target_fg   float8,
  target_og   float8,
  ebc         float8,
  srm         float8,
  ph          float8,
  first_seen  timestamptz NOT NULL,
  last_seen   timestamptz NOT NULL,
  times_seen  integer NOT NULL DEFAULT 1,
  raw_id      bigint NOT NULL
);
COMMENT ON TABLE brewml.cleaned_beers IS
  'One row per beer id with the typed columns of seed 000 (the cleaned bucket); the latest payload wins';
COMMENT ON COLUMN brewml.cleaned_beers.raw_id IS 'The brewml.raw_beers row the values come from';
COMMENT ON COLUMN brewml.cleaned_beers.times_seen IS 'How many raw payloads carried this beer';
SELECT pg_catalog.pg_extension_config_dump('brewml.cleaned_beers', '');

-- A number field of a beer: a JSON number, null or absent (NULL); anything else is an error.
CREATE FUNCTION brewml.beer_number(payload jsonb, field text) RETURNS float8
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  kind text := jsonb_typeof(payload -> field);
BEGIN
  IF kind IS NULL OR kind = 'null' THEN
    RETURN NULL;
  ELSIF kind = 'number' THEN
    RETURN (payload ->> field)::float8;
  END IF;
  RAISE EXCEPTION 'beer %: "%" must be a number or null, not a JSON %', payload -> 'id', field, kind
    USING ERRCODE = '22023', DETAIL = format('The value is %s.', left((payload -> field)::text, 100));
END
$$;
COMMENT ON FUNCTION brewml.beer_number(jsonb, text) IS
  'A numeric field of a beer payload as float8: NULL when null or absent, an error when not a number';

CREATE FUNCTION brewml.raw_beers_to_cleaned() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  p jsonb := NEW.payload;
  beer numeric := (p ->> 'id')::numeric;
BEGIN
  IF beer <> trunc(beer) OR beer < 1 OR beer > 2147483647 THEN
    RAISE EXCEPTION 'beer id % is not a positive integer', p -> 'id' USING ERRCODE = '22023';
  END IF;
  IF jsonb_typeof(p -> 'name') NOT IN ('string', 'null') THEN
    RAISE EXCEPTION 'beer %: "name" must be a string or null, not a JSON %', beer, jsonb_typeof(p -> 'name')
      USING ERRCODE = '22023';
  END IF;
  INSERT INTO brewml.cleaned_beers AS c
         (id, name, abv, ibu, target_fg, target_og, ebc, srm, ph, first_seen, last_seen, raw_id)
  VALUES (beer, p ->> 'name', brewml.beer_number(p, 'abv'), brewml.beer_number(p, 'ibu'),
          brewml.beer_number(p, 'target_fg'), brewml.beer_number(p, 'target_og'),
          brewml.beer_number(p, 'ebc'), brewml.beer_number(p, 'srm'), brewml.beer_number(p, 'ph'),
          NEW.fetched_at, NEW.fetched_at, NEW.id)
  ON CONFLICT (id) DO UPDATE
     SET name = EXCLUDED.name, abv = EXCLUDED.abv, ibu = EXCLUDED.ibu,
         target_fg = EXCLUDED.target_fg, target_og = EXCLUDED.target_og, ebc = EXCLUDED.ebc,
         srm = EXCLUDED.srm, ph = EXCLUDED.ph,
         first_seen = least(c.first_seen, EXCLUDED.first_seen),
         last_seen = greatest(c.last_seen, EXCLUDED.last_seen),
         times_seen = c.times_seen + 1, raw_id = EXCLUDED.raw_id;
  RETURN NULL;
END
$$;
COMMENT ON FUNCTION brewml.raw_beers_to_cleaned() IS
  'Trigger: upsert the typed columns of a new raw beer into brewml.cleaned_beers';

CREATE TRIGGER raw_beers_to_cleaned AFTER INSERT ON brewml.raw_beers
  FOR EACH ROW EXECUTE FUNCTION brewml.raw_beers_to_cleaned();
COMMENT ON TRIGGER raw_beers_to_cleaned ON brewml.raw_beers IS
  'The second consumer of seed 000: whatever inserts into raw (the worker, HTTP, COPY) feeds cleaned';

CREATE FUNCTION brewml.ingest_beers(source_url text, http_status integer, payload jsonb,
                                    fetched_at timestamptz DEFAULT now())
RETURNS integer
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  bad record;
  stored integer;
BEGIN
  IF payload IS NULL THEN
    RAISE EXCEPTION 'brewml.ingest_beers: payload must not be NULL' USING ERRCODE = '22004';
  END IF;
  IF jsonb_typeof(payload) = 'object' THEN
    payload := jsonb_build_array(payload);
  ELSIF jsonb_typeof(payload) <> 'array' THEN
    RAISE EXCEPTION 'brewml.ingest_beers: the payload must be a JSON array of beers, not a JSON %',
      jsonb_typeof(payload) USING ERRCODE = '22023';
  END IF;
  SELECT n, e INTO bad FROM jsonb_array_elements(payload) WITH ORDINALITY AS a(e, n)
   WHERE jsonb_typeof(e) <> 'object' OR jsonb_typeof(e -> 'id') IS DISTINCT FROM 'number'
   ORDER BY n LIMIT 1;
  IF FOUND THEN
    RAISE EXCEPTION 'brewml.ingest_beers: element % of the payload is not a beer object with a numeric "id"', bad.n
      USING ERRCODE = '22023', DETAIL = format('It begins %s.', left(bad.e::text, 100));
  END IF;
  INSERT INTO brewml.raw_beers (fetched_at, source_url, http_status, payload)
  SELECT fetched_at, source_url, http_status, e FROM jsonb_array_elements(payload) e;
  GET DIAGNOSTICS stored = ROW_COUNT;
  RETURN stored;
END
$$;
COMMENT ON FUNCTION brewml.ingest_beers(text, integer, jsonb, timestamptz) IS
  'Store a Punk API payload (an array of beers, or one beer) in brewml.raw_beers, all or nothing; returns the beers stored';

-------------------------------------------------------------------------------
-- Exports: cleaned as CSV, raw as NDJSON
-------------------------------------------------------------------------------

CREATE VIEW brewml.cleaned AS
  SELECT id, name, abv, ibu, target_fg, target_og, ebc, srm, ph FROM brewml.cleaned_beers;
COMMENT ON VIEW brewml.cleaned IS
  'The cleaned columns of seed 000, in its order: COPY (SELECT * FROM brewml.cleaned ORDER BY id) TO STDOUT WITH CSV HEADER';

CREATE FUNCTION brewml.csv_field(value text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
  SELECT CASE WHEN value IS NULL THEN ''
              WHEN value = '' OR value ~ '[",\r\n]' THEN '"' || replace(value, '"', '""') || '"'
              ELSE value END
$$;
COMMENT ON FUNCTION brewml.csv_field(text) IS
  'One CSV field as COPY writes it: NULL empty, quoted when it holds a comma, quote or line break';

CREATE FUNCTION brewml.cleaned_csv() RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
  SELECT 'id,name,abv,ibu,target_fg,target_og,ebc,srm,ph' || E'\n' || coalesce(string_agg(
           concat_ws(',', c.id, brewml.csv_field(c.name), brewml.csv_field(c.abv::text),
                     brewml.csv_field(c.ibu::text), brewml.csv_field(c.target_fg::text),
                     brewml.csv_field(c.target_og::text), brewml.csv_field(c.ebc::text),
                     brewml.csv_field(c.srm::text), brewml.csv_field(c.ph::text)) || E'\n',
           '' ORDER BY c.id), '')
    FROM brewml.cleaned c
$$;
COMMENT ON FUNCTION brewml.cleaned_csv() IS
  'brewml.cleaned as one CSV document with the header id,name,abv,ibu,target_fg,target_og,ebc,srm,ph, ordered by id';

CREATE FUNCTION brewml.raw_ndjson(since timestamptz DEFAULT NULL) RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
  SELECT coalesce(string_agg(r.payload::text || E'\n', '' ORDER BY r.id), '')
    FROM brewml.raw_beers r
   WHERE since IS NULL OR r.fetched_at >= since
$$;
COMMENT ON FUNCTION brewml.raw_ndjson(timestamptz) IS
  'brewml.raw_beers as NDJSON: one beer object a line, in arrival order, optionally since a time';

-------------------------------------------------------------------------------
-- The worker: its log, its status, and a way to wake it
-------------------------------------------------------------------------------

CREATE TABLE brewml.fetch_log (
  id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  fetched_at  timestamptz NOT NULL,
  url         text NOT NULL,
  http_status integer,
  latency_ms  float8 NOT NULL,
  bytes       bigint NOT NULL,
  beers       integer NOT NULL,
  outcome     text NOT NULL CHECK (outcome IN ('ok', 'empty', 'bad_json', 'bad_payload', 'http_error',
                'rate_limited', 'timeout', 'too_large', 'refused_protocol', 'too_many_redirects',
                'network_error')),
  error       text
);
CREATE INDEX fetch_log_fetched_at ON brewml.fetch_log (fetched_at);
COMMENT ON INDEX brewml.fetch_log_fetched_at IS 'For recent fetches, and for the worker''s retention delete';
COMMENT ON TABLE brewml.fetch_log IS
  'Every request of the Punk API worker, good or bad, with its latency and outcome (kept brewml.fetch_log_retention days)';
SELECT pg_catalog.pg_extension_config_dump('brewml.fetch_log', '');
SELECT pg_catalog.pg_extension_config_dump('brewml.fetch_log_id_seq', '');

CREATE FUNCTION brewml.poll_now() RETURNS boolean
  AS 'MODULE_PATHNAME', 'worker_poll_now' LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION brewml.poll_now() IS
  'Wake the Punk API worker for a poll at once, back-off or not; false (and a warning) when it is not running';
REVOKE ALL ON FUNCTION brewml.poll_now() FROM PUBLIC;

CREATE FUNCTION brewml.worker_status(
  OUT running boolean, OUT pid integer, OUT started_at timestamptz, OUT last_poll_at timestamptz,
  OUT last_success_at timestamptz, OUT next_poll_at timestamptz, OUT polls bigint, OUT fetches bigint,
  OUT beers bigint, OUT failures bigint, OUT consecutive_failures integer, OUT last_error text,
  OUT last_error_at timestamptz)
  AS 'MODULE_PATHNAME', 'worker_status' LANGUAGE C VOLATILE PARALLEL RESTRICTED;
COMMENT ON FUNCTION brewml.worker_status() IS
  'The Punk API worker: whether it runs, its last and next poll, and its counts since it started';

CREATE VIEW brewml.worker_status AS SELECT * FROM brewml.worker_status();
COMMENT ON VIEW brewml.worker_status IS
  'The Punk API worker: whether it runs, its last and next poll, and its counts since it started';

-- brewml 0.5: batch models' scores, loaded from JSON Lines in chunks (seed 002)
\echo Use "ALTER EXTENSION brewml UPDATE" to load this file. \quit

-------------------------------------------------------------------------------
-- Schema: batches of a file, its chunks, the scores, the rejected lines
-------------------------------------------------------------------------------

CREATE TABLE brewml.score_batches (
  id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  model        text NOT NULL CHECK (model ~ '^[A-Za-z0-9_.:-]{1,128}$'),
  source_file  text NOT NULL CHECK (octet_length(source_file) BETWEEN 1 AND 4096),
  fingerprint  text NOT NULL CHECK (octet_length(fingerprint) BETWEEN 1 AND 256),
  bytes        bigint NOT NULL CHECK (bytes >= 0),
  chunk_bytes  integer NOT NULL CHECK (chunk_bytes BETWEEN 1024 AND 67108864),
  started_at   timestamptz NOT NULL DEFAULT now(),
  finished_at  timestamptz,
  lines_seen   bigint,
  rows_loaded  bigint,
  lines_rejected bigint,
  status       text NOT NULL DEFAULT 'loading' CHECK (status IN ('loading', 'done')),
  UNIQUE (model, source_file, fingerprint)
);
COMMENT ON TABLE brewml.score_batches IS
  'One load of one JSON Lines file of scores: its model, file and fingerprint (size and time), chunking, totals and status';
COMMENT ON COLUMN brewml.score_batches.fingerprint IS
  'What identifies the file''s content for the client (its size and modification time): the same file is the same batch';
COMMENT ON COLUMN brewml.score_batches.lines_seen IS 'Set when the batch is finished; brewml.score_batch_totals has them live';
SELECT pg_catalog.pg_extension_config_dump('brewml.score_batches', '');
SELECT pg_catalog.pg_extension_config_dump('brewml.score_batches_id_seq', '');

CREATE TABLE brewml.score_chunks (
  batch_id     bigint NOT NULL REFERENCES brewml.score_batches ON DELETE CASCADE,
  seq          integer NOT NULL CHECK (seq >= 0),
  first_line   bigint NOT NULL CHECK (first_line >= 1),
  bytes        integer NOT NULL,
  lines        integer,
  loaded       integer,
  rejected     integer,
  committed_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (batch_id, seq)
);
COMMENT ON TABLE brewml.score_chunks IS
  'Every chunk of a batch that was committed, with its counts: a chunk sent again is recognised here and not applied twice';
SELECT pg_catalog.pg_extension_config_dump('brewml.score_chunks', '');

CREATE TABLE brewml.scores (
  model        text NOT NULL,
  pk           text NOT NULL,
  score        numeric NOT NULL,
  batch_id     bigint NOT NULL,
  line         bigint NOT NULL,
  loaded_at    timestamptz NOT NULL,
  PRIMARY KEY (model, pk)
);
COMMENT ON TABLE brewml.scores IS
  'Each model''s current score per key: the latest batch wins, and within a batch the last line';
COMMENT ON COLUMN brewml.scores.line IS 'The line of the batch''s file the score came from';
SELECT pg_catalog.pg_extension_config_dump('brewml.scores', '');

CREATE TABLE brewml.score_rejects (
  batch_id     bigint NOT NULL REFERENCES brewml.score_batches ON DELETE CASCADE,
  line_number  bigint NOT NULL CHECK (line_number >= 1),
  line         bytea NOT NULL,
  reason       text NOT NULL,
  PRIMARY KEY (batch_id, line_number)
);
COMMENT ON TABLE brewml.score_rejects IS
  'Every line of a batch that was not loaded: the line as received (bytes) and why';
SELECT pg_catalog.pg_extension_config_dump('brewml.score_rejects', '');

-------------------------------------------------------------------------------
-- Loading: open a batch, load its chunks, finish it
-------------------------------------------------------------------------------

CREATE FUNCTION brewml.open_score_batch(model text, source_file text, fingerprint text, bytes bigint,
                                        chunk_bytes integer, resume boolean DEFAULT false,
                                        OUT batch_id bigint, OUT chunk_bytes_used integer, OUT status text,
                                        OUT committed integer[])
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  b brewml.score_batches;
BEGIN
  SELECT * INTO b FROM brewml.score_batches s
   WHERE s.model = open_score_batch.model AND s.source_file = open_score_batch.source_file
     AND s.fingerprint = open_score_batch.fingerprint;
  IF FOUND AND b.status = 'loading' AND NOT resume THEN
    RAISE EXCEPTION 'an unfinished load of "%" for model "%" exists (batch %)', source_file, model, b.id
      USING ERRCODE = '55000', HINT = 'Resume it (brewml-push --resume), or change the file.';
  END IF;
  IF NOT FOUND THEN
    INSERT INTO brewml.score_batches AS s (model, source_file, fingerprint, bytes, chunk_bytes)
    VALUES (model, source_file, fingerprint, bytes, chunk_bytes)
    ON CONFLICT ON CONSTRAINT score_batches_model_source_file_fingerprint_key DO NOTHING
    RETURNING * INTO b;
    IF NOT FOUND THEN		-- opened at the same moment by another client
      SELECT * INTO b FROM brewml.score_batches s
       WHERE s.model = open_score_batch.model AND s.source_file = open_score_batch.source_file
         AND s.fingerprint = open_score_batch.fingerprint;
    END IF;
  END IF;
  batch_id := b.id;
  chunk_bytes_used := b.chunk_bytes;
  status := b.status;
  committed := ARRAY(SELECT c.seq FROM brewml.score_chunks c WHERE c.batch_id = b.id ORDER BY c.seq);
END
$$;
COMMENT ON FUNCTION brewml.open_score_batch(text, text, text, bigint, integer, boolean) IS
  'Open the batch of a file (or find it: the same file is the same batch); returns its id, its chunk size and the chunks already committed';

CREATE FUNCTION brewml.load_scores(batch_id bigint, seq integer, first_line bigint, chunk bytea,
                                   OUT lines integer, OUT loaded integer, OUT rejected integer,
                                   OUT duplicate boolean)
  AS 'MODULE_PATHNAME', 'load_scores' LANGUAGE C VOLATILE CALLED ON NULL INPUT PARALLEL UNSAFE;
COMMENT ON FUNCTION brewml.load_scores(bigint, integer, bigint, bytea) IS
  'Load one chunk of JSON Lines (whole lines, the first being first_line) into brewml.scores, bad lines into score_rejects, in one transaction; a chunk already committed is not applied twice';

CREATE FUNCTION brewml.reject_score_line(batch_id bigint, line_number bigint, line bytea, reason text)
RETURNS void
LANGUAGE sql VOLATILE SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
  INSERT INTO brewml.score_rejects (batch_id, line_number, line, reason)
  VALUES (batch_id, line_number, line, reason) ON CONFLICT DO NOTHING;
END;
COMMENT ON FUNCTION brewml.reject_score_line(bigint, bigint, bytea, text) IS
  'Record a line the client could not send (longer than its chunk): its beginning and why';

CREATE VIEW brewml.score_batch_totals AS
  SELECT b.id AS batch_id, b.model, b.source_file, b.status, b.started_at, b.finished_at,
         count(c.seq) AS chunks,
         coalesce(sum(c.lines), 0) + (SELECT count(*) FROM brewml.score_rejects r WHERE r.batch_id = b.id)
           - coalesce(sum(c.rejected), 0) AS lines_seen,
         coalesce(sum(c.loaded), 0) AS rows_loaded,
         (SELECT count(*) FROM brewml.score_rejects r WHERE r.batch_id = b.id) AS lines_rejected
    FROM brewml.score_batches b LEFT JOIN brewml.score_chunks c ON c.batch_id = b.id
   GROUP BY b.id;
COMMENT ON VIEW brewml.score_batch_totals IS
  'Each batch''s counts so far, from its committed chunks and its rejected lines';

CREATE FUNCTION brewml.finish_score_batch(batch_id bigint, chunks integer) RETURNS brewml.score_batches
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  b brewml.score_batches;
  t record;
  missing integer;
BEGIN
  SELECT * INTO b FROM brewml.score_batches s WHERE s.id = finish_score_batch.batch_id FOR UPDATE;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'no score batch has id %', batch_id USING ERRCODE = 'P0002';
  END IF;
  SELECT min(g) INTO missing FROM generate_series(0, chunks - 1) g
   WHERE NOT EXISTS (SELECT FROM brewml.score_chunks c WHERE c.batch_id = b.id AND c.seq = g);
  IF missing IS NOT NULL THEN
    RAISE EXCEPTION 'batch % cannot finish: chunk % of % was never committed', b.id, missing, chunks
      USING ERRCODE = '55000';
  END IF;
  SELECT * INTO t FROM brewml.score_batch_totals v WHERE v.batch_id = b.id;
  UPDATE brewml.score_batches s
     SET status = 'done', finished_at = coalesce(s.finished_at, now()), lines_seen = t.lines_seen,
         rows_loaded = t.rows_loaded, lines_rejected = t.lines_rejected
   WHERE s.id = b.id RETURNING * INTO b;
  RETURN b;
END
$$;
COMMENT ON FUNCTION brewml.finish_score_batch(bigint, integer) IS
  'Close a batch once its chunks 0 .. chunks - 1 are all committed, storing its totals';

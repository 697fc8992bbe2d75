-- Scores of batch models (seed 002): a batch per file, chunks loaded once, bad lines kept apart.
\pset null '(null)'
SELECT batch_id, chunk_bytes_used, status, committed
  FROM brewml.open_score_batch('m1', 'a.jsonl', 'fp1', 100, 4096) \gset
SELECT :batch_id > 0 AS opened, :'status' AS status, :'committed' AS committed;
-- one chunk: the seed's own shape, a BOM, CRLF, numbers, escapes, other keys, and every kind of bad line
SELECT * FROM brewml.load_scores(:batch_id, 0, 1, convert_to(E''
  '\xEF\xBB\xBF{ "pk": "123", "score": "100" }\n'
  '{ "pk": "321", "score": "1" }\r\n'
  '{"pk": 50, "score": 98.5e1}\n'
  'not json\n'
  '{"score": 1}\n'
  '{"pk": "x", "score": "abc"}\n'
  '\n'
  '{"pk": "\\u0041", "score": -1, "other": [1, {"pk": 2}]}\n'
  '{"pk": "123", "score": "7"}\n'
  '[1]\n'
  '{"pk": null, "score": 1}\n'
  '{"pk": "big", "score": "1e5000"}\n'
  '{"pk": "inf", "score": "Infinity"}\n'
  '{"pk": "sp", "score": " 1"}\n'
  '{"pk": "", "score": 1}', 'UTF8'));
-- the last line of a pk wins; numbers keep their value
SELECT model, pk, score, line FROM brewml.scores WHERE batch_id = :batch_id ORDER BY pk;
SELECT line_number, encode(line, 'escape') AS line, reason FROM brewml.score_rejects
 WHERE batch_id = :batch_id ORDER BY 1;
-- lines that would stop a whole chunk are rejected alone: nesting past the parser's
-- stack, a score too long for numeric, and escapes (the parser's path) in a long run
SELECT lines, loaded, rejected FROM brewml.load_scores(:batch_id, 5, 101, convert_to(
  repeat('[', 100000) || E'\n'
  || '{"pk": "long", "score": "0.' || repeat('1', 20000) || E'"}\n'
  || (SELECT string_agg(format('{"pk": "e\u00e9%s", "score": %s}', i, i), E'\n') FROM generate_series(1, 3) i),
  'UTF8'));
SELECT line_number, left(reason, 40) AS reason FROM brewml.score_rejects WHERE batch_id = :batch_id AND line_number > 100;
SELECT pk, score FROM brewml.scores WHERE batch_id = :batch_id AND line > 100 ORDER BY pk;
-- the same chunk again is recognised and not applied: same counts, duplicate
SELECT * FROM brewml.load_scores(:batch_id, 0, 1, '\x7b7d');
-- invalid UTF-8 sinks only its own line
SELECT * FROM brewml.load_scores(:batch_id, 1, 16, E'\\x7b22706b223a202261222c202273636f7265223a20317d0aff0a'::bytea);
SELECT * FROM brewml.reject_score_line(:batch_id, 18, '\x7b22706b', 'line longer than 1048576 bytes');
SELECT chunks, lines_seen, rows_loaded, lines_rejected FROM brewml.score_batch_totals WHERE batch_id = :batch_id;
-- finishing needs every chunk; then the totals are stored and no chunk is taken
\set ON_ERROR_STOP 0
SELECT status FROM brewml.finish_score_batch(:batch_id, 3);
\set ON_ERROR_STOP 1
SELECT status, lines_seen, rows_loaded, lines_rejected FROM brewml.finish_score_batch(:batch_id, 2);
\set ON_ERROR_STOP 0
SELECT * FROM brewml.load_scores(:batch_id, 2, 19, '\x7b7d');
SELECT * FROM brewml.load_scores(999999, 0, 1, '\x7b7d');
SELECT * FROM brewml.load_scores(:batch_id, -1, 1, '\x7b7d');
\set ON_ERROR_STOP 1
-- the same file is the same batch: opening it again finds it done
SELECT batch_id = :batch_id AS same, status, committed FROM brewml.open_score_batch('m1', 'a.jsonl', 'fp1', 100, 4096);
-- a changed file is a new batch, whose newer lines win over the old batch's
SELECT batch_id AS batch2 FROM brewml.open_score_batch('m1', 'a.jsonl', 'fp2', 100, 4096) \gset
SELECT lines, loaded FROM brewml.load_scores(:batch2, 0, 1, convert_to('{"pk": "123", "score": "8"}', 'UTF8'));
SELECT score, batch_id = :batch2 AS from_new FROM brewml.scores WHERE model = 'm1' AND pk = '123';
-- an unfinished batch is only continued on purpose
\set ON_ERROR_STOP 0
SELECT * FROM brewml.open_score_batch('m1', 'a.jsonl', 'fp2', 100, 4096);
\set ON_ERROR_STOP 1
SELECT committed FROM brewml.open_score_batch('m1', 'a.jsonl', 'fp2', 100, 4096, resume => true);
-- a model's score is one index lookup away
EXPLAIN (COSTS OFF) SELECT score FROM brewml.scores WHERE model = 'm1' AND pk = '123';
TRUNCATE brewml.scores, brewml.score_batches CASCADE;

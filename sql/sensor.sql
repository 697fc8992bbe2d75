-- The sensor API: fit, weights, predict, adjust, and their errors.
\pset null '(null)'

-- The case's worked example: fit [10, 5, 6, 9] -> mean 7.5, std 2.3804761428476167
SELECT sensor_id, mean, std, n, fitted_at IS NOT NULL AS fitted, adjusted_at
  FROM brewml.fit('SEN0001', ARRAY[10, 5, 6, 9]);
SELECT sensor_id, mean, std, n FROM brewml.weights('SEN0001');
-- threshold 7.5 + 2 * 2.38... = 12.26...: 10 is not in alert, 12.27 is, the rule is inclusive
SELECT brewml.predict('SEN0001', 10) AS p10, brewml.predict('SEN0001', 12.27) AS p1227,
       brewml.predict('SEN0001', 12.26) AS p1226;
SELECT brewml.predict('SEN0001', 7.5 + 2 * 2.3804761428476167) AS at_threshold;
-- adjust raises the mean by 10%: 8.25, std unchanged, remembered
SELECT sensor_id, mean, std, n, adjusted_at IS NOT NULL AS adjusted FROM brewml.adjust('SEN0001');
SELECT mean FROM brewml.adjust('SEN0001');
SELECT brewml.predict('SEN0001', 12.27) AS after_adjust;
-- a new fit replaces the weights whole, adjustment included
SELECT mean, std, n, adjusted_at FROM brewml.fit('SEN0001', ARRAY[1, 2, 3]);
SELECT count(*) FROM brewml.sensor_weights WHERE sensor_id = 'SEN0001';

-- NULL and NaN are skipped, as pandas does; the array's bounds do not matter
SELECT mean, std, n FROM brewml.fit('SEN0002', ARRAY[10, NULL, 5, 'NaN', 6, 9]::float8[]);
SELECT mean, std, n FROM brewml.fit('SEN0003', '[0:3]={10,5,6,9}'::float8[]);
-- two values are enough; equal values give std 0, and then the mean itself is in alert
SELECT mean, std, n FROM brewml.fit('SEN0004', ARRAY[3, 3]);
SELECT brewml.predict('SEN0004', 3) AS equal_is_alert, brewml.predict('SEN0004', 2.999) AS below;
-- large offsets do not lose precision (two-pass)
SELECT mean, std FROM brewml.fit('SEN0005', ARRAY[1e9 + 4, 1e9 + 7, 1e9 + 13, 1e9 + 16]);
-- many values: the same answer as the built-in aggregates
SELECT abs(w.mean - b.m) < 1e-12 AS mean_ok, abs(w.std - b.s) < 1e-12 AS std_ok, w.n
  FROM brewml.fit('SEN0006', (SELECT array_agg(sin(i) * 100) FROM generate_series(1, 100000) i)) w,
       (SELECT avg(sin(i) * 100) m, stddev_samp(sin(i) * 100) s FROM generate_series(1, 100000) i) b;

-- the alert rule on its own
SELECT brewml.is_alert(12.27, 7.5, 2.3804761428476167), brewml.is_alert(10, 7.5, 2.3804761428476167),
       brewml.is_alert(1, 1, NULL);

-- bad input: a clear error with its SQLSTATE, nothing stored
\set VERBOSITY default
\set SHOW_CONTEXT never
\set ON_ERROR_STOP 0
SELECT brewml.fit(NULL, ARRAY[1, 2]);
SELECT brewml.fit('', ARRAY[1, 2]);
SELECT brewml.fit(repeat('x', 129), ARRAY[1, 2]);
SELECT brewml.fit('BAD0001', NULL);
SELECT brewml.fit('BAD0001', ARRAY[]::float8[]);
SELECT brewml.fit('BAD0001', ARRAY[7]);
SELECT brewml.fit('BAD0001', ARRAY[7, NULL, 'NaN']::float8[]);
SELECT brewml.fit('BAD0001', ARRAY[1, 'Infinity', 3]::float8[]);
SELECT brewml.fit('BAD0001', ARRAY[1, 2, '-Infinity']::float8[]);
SELECT brewml.fit('BAD0001', ARRAY[[1, 2], [3, 4]]);
SELECT brewml.fit('BAD0001', ARRAY[1e308, 1e308]);
SELECT brewml.weights('NOPE');
SELECT brewml.weights(NULL);
SELECT brewml.predict('NOPE', 1);
SELECT brewml.predict(NULL, 1);
SELECT brewml.predict('SEN0001', NULL);
SELECT brewml.predict('SEN0001', 'NaN');
SELECT brewml.predict('SEN0001', 'Infinity');
SELECT brewml.adjust('NOPE');
SELECT brewml.adjust(NULL);
SELECT brewml.is_alert('NaN', 1, 1);
\set ON_ERROR_STOP 1
-- the SQLSTATEs, for the HTTP layer that maps them to status codes
DO $$
DECLARE
  calls text[] := ARRAY[
    $c$SELECT brewml.fit(NULL, ARRAY[1, 2])$c$,
    $c$SELECT brewml.fit('BAD0001', ARRAY[]::float8[])$c$,
    $c$SELECT brewml.fit('BAD0001', ARRAY[7])$c$,
    $c$SELECT brewml.fit('BAD0001', ARRAY[1, 'Infinity']::float8[])$c$,
    $c$SELECT brewml.fit('BAD0001', ARRAY[[1, 2], [3, 4]])$c$,
    $c$SELECT brewml.weights('NOPE')$c$,
    $c$SELECT brewml.predict('SEN0001', 'NaN')$c$,
    $c$SELECT brewml.adjust('NOPE')$c$];
  c text;
  state text;
BEGIN
  FOREACH c IN ARRAY calls LOOP
    BEGIN
      EXECUTE c;
      RAISE NOTICE '% -> no error', c;
    EXCEPTION WHEN OTHERS THEN
      GET STACKED DIAGNOSTICS state = RETURNED_SQLSTATE;
      RAISE NOTICE '% -> %', c, state;
    END;
  END LOOP;
END $$;
-- nothing was stored by the failed calls, and SEN0001 kept its weights
SELECT count(*) AS bad_rows FROM brewml.sensor_weights WHERE sensor_id IN ('BAD0001', 'NOPE', '');
SELECT mean, std, n FROM brewml.weights('SEN0001');
-- a failed fit inside a transaction leaves the earlier fit of that transaction intact
BEGIN;
SELECT mean FROM brewml.fit('SEN0007', ARRAY[1, 3]);
SAVEPOINT s;
\set ON_ERROR_STOP 0
SELECT brewml.fit('SEN0007', ARRAY[1]);
\set ON_ERROR_STOP 1
ROLLBACK TO SAVEPOINT s;
SELECT mean FROM brewml.weights('SEN0007');
COMMIT;

-- predictions read each backend's cache of weights; every change reaches it:
-- a fit, a direct UPDATE, a rolled-back fit, a DELETE, a TRUNCATE
SELECT (brewml.fit('CACHE1', ARRAY[0, 2])).n AS fitted;		-- mean 1, std 1.41...: threshold 3.83
SELECT brewml.predict('CACHE1', 3) AS p3, brewml.sensor_alert('CACHE1', 3) AS a3;
UPDATE brewml.sensor_weights SET mean = 0 WHERE sensor_id = 'CACHE1';
SELECT brewml.predict('CACHE1', 3) AS after_update;		-- threshold 2.83
BEGIN;
SELECT (brewml.fit('CACHE1', ARRAY[100, 200])).n AS refit;
SELECT brewml.predict('CACHE1', 3) AS inside;
ROLLBACK;
SELECT brewml.predict('CACHE1', 3) AS after_rollback;
DELETE FROM brewml.sensor_weights WHERE sensor_id = 'CACHE1';
-- sensor_alert is predict with NULL for a sensor never fitted (remembered too, and forgotten on a fit)
SELECT brewml.sensor_alert('CACHE1', 3) AS deleted, brewml.sensor_alert('NOPE', 1) AS never;
-- (a prediction reads the latest weights, not the statement's snapshot: it sees a fit made earlier in the same statement)
SELECT (brewml.fit('NOPE', ARRAY[0, 0])).n AS fitted, brewml.sensor_alert('NOPE', 1) AS same_statement;
SELECT brewml.sensor_alert('NOPE', 1) AS now_known;
\set ON_ERROR_STOP 0
SELECT brewml.predict('CACHE1', 3);
SELECT brewml.sensor_alert('NOPE', 'NaN');
SELECT brewml.sensor_alert(NULL, 1);
\set ON_ERROR_STOP 1
-- another backend sees a change at its next transaction (dblink: a second session)
CREATE EXTENSION dblink;
SELECT dblink_connect('other', 'dbname=' || current_database());
SELECT * FROM dblink('other', $$SELECT brewml.predict('NOPE', 1)$$) AS t(alert boolean);
UPDATE brewml.sensor_weights SET mean = 5 WHERE sensor_id = 'NOPE';
SELECT * FROM dblink('other', $$SELECT brewml.predict('NOPE', 1)$$) AS t(alert boolean);
TRUNCATE brewml.sensor_weights;
SELECT * FROM dblink('other', $$SELECT brewml.sensor_alert('NOPE', 1)$$) AS t(alert boolean);
SELECT dblink_disconnect('other');
DROP EXTENSION dblink;

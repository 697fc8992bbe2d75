-- brewml.moments and brewml.moments_each: one pass, NULL/NaN skipped, parallel safe.
\pset null '(null)'

SELECT (brewml.moments(x)).* FROM unnest(ARRAY[10, 5, 6, 9]::float8[]) x;
SELECT (brewml.moments(x)).* FROM unnest(ARRAY[10, NULL, 5, 'NaN', 6, 9]::float8[]) x;
-- no rows, one row, only NULL and NaN: count 0 or 1, undefined parts NULL
SELECT (brewml.moments(x)).* FROM unnest(ARRAY[]::float8[]) x;
SELECT (brewml.moments(x)).* FROM unnest(ARRAY[4]::float8[]) x;
SELECT (brewml.moments(x)).* FROM unnest(ARRAY[NULL, 'NaN']::float8[]) x;
-- grouped, and against the built-ins
SELECT g, (brewml.moments(x)).n, abs((brewml.moments(x)).mean - avg(x)) < 1e-12 AS mean_ok,
       abs((brewml.moments(x)).std - stddev_samp(x)) < 1e-12 AS std_ok
  FROM (SELECT i % 3 AS g, cos(i) * 1000 + 5 AS x FROM generate_series(1, 30000) i) s
 GROUP BY g ORDER BY g;

-- moments_each: one element per argument, in order, any numeric type
SELECT brewml.moments_each(x, x * 2, NULL::float8)
  FROM unnest(ARRAY[10, 5, 6, 9, 'NaN']::float8[]) x;
SELECT m.* FROM (SELECT brewml.moments_each(i::int2, i::int4, i::int8, i::float4, i::numeric) AS ms
                   FROM generate_series(1, 5) i) s, unnest(s.ms) m;
SELECT brewml.moments_each(x) FROM unnest(ARRAY[]::float8[]) x;

-- moments_by: the same per key, without GROUP BY; keys in byte order ('Z' < 'a'), NULL keys skipped
SELECT g.key, m.* FROM unnest((SELECT brewml.moments_by(k, x)
                                 FROM (VALUES ('b', 10.0::float8), ('a', 1), (NULL, 99), ('b', 5), ('a', 2),
                                              ('b', 6), ('b', 9), ('Z', 'NaN'), ('a', NULL)) v(k, x))) g,
                   unnest(g.moments) m;
SELECT brewml.moments_by(k, x) FROM (VALUES (NULL::text, 1.0::float8)) v(k, x);
-- many keys (the hash table grows), each against GROUP BY with the built-ins
SELECT count(*) AS keys,
       bool_and((g.moments[1]).n = b.n AND abs((g.moments[1]).mean - b.m) <= 1e-12 * abs(b.m)
                AND abs((g.moments[1]).std - b.s) <= 1e-12 * b.s
                AND (g.moments[2]).n = b.n2) AS same_as_group_by
  FROM unnest((SELECT brewml.moments_by('k' || (i % 5000), i * 1.5, NULL::int) FROM generate_series(1, 50000) i)) g
  JOIN (SELECT 'k' || (i % 5000) AS key, count(*) n, avg(i * 1.5) m, stddev_samp(i * 1.5) s, 0 AS n2
          FROM generate_series(1, 50000) i GROUP BY 1) b USING (key);

-- errors
\set SHOW_CONTEXT never
\set ON_ERROR_STOP 0
SELECT brewml.moments(x) FROM unnest(ARRAY[1, 'Infinity']::float8[]) x;
SELECT brewml.moments_each(x, -x) FROM unnest(ARRAY[1, 2, '-Infinity']::float8[]) x;
SELECT brewml.moments_each(x::text) FROM unnest(ARRAY[1, 2]::float8[]) x;
SELECT brewml.moments_each(VARIADIC ARRAY[1.0, 2.0]::float8[]);
SELECT brewml.moments_by('a', 'x'::text);
SELECT brewml.moments_by(k, x) FROM (VALUES ('a', 1.0::float8), ('a', '-Infinity')) v(k, x);
\set ON_ERROR_STOP 1

-- Serial and parallel plans give the same answer.  The table is big enough that
-- every worker gets rows, and the parallel plan really runs with workers.
CREATE TABLE moments_data AS
  SELECT i % 7 AS g,
         CASE WHEN i % 101 = 0 THEN NULL ELSE sin(i) * 50 + 100 END AS a,
         CASE WHEN i % 103 = 0 THEN 'NaN'::float8 ELSE cos(i) * 0.001 END AS b
    FROM generate_series(1, 400000) i;
ANALYZE moments_data;
CREATE TABLE serial_result AS
  SELECT g, brewml.moments(a) AS ma, brewml.moments_each(a, b) AS mab FROM moments_data GROUP BY g;
CREATE TABLE serial_total AS SELECT brewml.moments(a) AS ma, brewml.moments_each(a, b) AS mab FROM moments_data;
CREATE TABLE serial_by AS SELECT (g).key::int AS g, (g).moments AS mab
  FROM unnest((SELECT brewml.moments_by(g::text, a, b) FROM moments_data)) g;

SET parallel_setup_cost = 0;
SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0;
SET max_parallel_workers_per_gather = 2;
SET parallel_leader_participation = off;
EXPLAIN (COSTS OFF) SELECT brewml.moments(a), brewml.moments_each(a, b) FROM moments_data;
-- workers were launched, so states went through serialize, deserialize and combine
CREATE FUNCTION workers_launched(q text) RETURNS int LANGUAGE plpgsql AS $$
DECLARE plan json;
BEGIN
  EXECUTE 'EXPLAIN (ANALYZE, FORMAT JSON) ' || q INTO plan;
  RETURN (SELECT max((p->>'Workers Launched')::int)
            FROM jsonb_path_query(plan::jsonb, 'strict $.**') p
           WHERE jsonb_typeof(p) = 'object' AND p ? 'Workers Launched');
END $$;
SELECT workers_launched('SELECT brewml.moments(a), brewml.moments_each(a, b) FROM moments_data') > 0 AS parallel_total,
       workers_launched('SELECT g, brewml.moments(a), brewml.moments_each(a, b) FROM moments_data GROUP BY g') > 0 AS parallel_grouped,
       workers_launched('SELECT brewml.moments_by(g::text, a, b) FROM moments_data') > 0 AS parallel_by;
CREATE TABLE parallel_result AS
  SELECT g, brewml.moments(a) AS ma, brewml.moments_each(a, b) AS mab FROM moments_data GROUP BY g;
CREATE TABLE parallel_total AS SELECT brewml.moments(a) AS ma, brewml.moments_each(a, b) AS mab FROM moments_data;
CREATE TABLE parallel_by AS SELECT (g).key::int AS g, (g).moments AS mab
  FROM unnest((SELECT brewml.moments_by(g::text, a, b) FROM moments_data)) g;
RESET ALL;

-- counts equal exactly, means and stds to 1e-12 of the data's scale (the
-- summation order differs; a mean near zero is judged against the spread)
CREATE FUNCTION same(x brewml.moments, y brewml.moments) RETURNS boolean LANGUAGE sql AS $$
  SELECT x.n = y.n
     AND abs(x.mean - y.mean) <= 1e-12 * greatest(abs(x.mean), x.std)
     AND abs(x.std - y.std) <= 1e-12 * x.std $$;
SELECT count(*) AS groups,
       bool_and(same(s.ma, p.ma)) AS moments_same,
       bool_and(same(s.mab[1], p.mab[1]) AND same(s.mab[2], p.mab[2])) AS each_same,
       bool_and(same(s.ma, s.mab[1])) AS each_matches_single
  FROM serial_result s JOIN parallel_result p USING (g);
SELECT same(s.ma, p.ma) AS total_same, same(s.mab[2], p.mab[2]) AS total_each_same, (s.ma).n, (s.mab[2]).n
  FROM serial_total s, parallel_total p;
SELECT count(*) AS keys, bool_and(same(s.mab[1], p.mab[1]) AND same(s.mab[2], p.mab[2])) AS by_same,
       bool_and(same(p.mab[1], r.mab[1]) AND same(p.mab[2], r.mab[2])) AS by_matches_group_by
  FROM serial_by s JOIN parallel_by p USING (g) JOIN serial_result r USING (g);
-- and both agree with the built-ins
SELECT bool_and(abs((r.ma).mean - b.m) <= 1e-12 * abs(b.m) AND abs((r.ma).std - b.s) <= 1e-12 * b.s) AS builtin_same
  FROM parallel_result r JOIN (SELECT g, avg(a) m, stddev_samp(a) s FROM moments_data GROUP BY g) b USING (g);
DROP TABLE moments_data, serial_result, serial_total, serial_by, parallel_result, parallel_total, parallel_by;
DROP FUNCTION workers_launched(text), same(brewml.moments, brewml.moments);

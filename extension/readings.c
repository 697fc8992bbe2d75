/*
 * readings.c
 *		brewml.fit_readings(): the model of the sensor case's draft.py, fitted
 *		in one scan of brewml.readings.  For every sensor and each of the six
 *		vibration columns it stores count, mean and sample standard deviation
 *		in brewml.column_weights, replacing the previous model whole.
 *
 *		The scan is a plain SELECT through SPI of brewml.moments_by, which
 *		groups by sensor inside the aggregate, so the planner may run it in
 *		parallel (INSERT ... SELECT would not be).
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"

/* The columns draft.py models, in the order of brewml.in_alert's result. */
static const char *const reading_columns[] = {
	"vel_rms_x", "vel_rms_y", "vel_rms_z",
	"accel_rms_x", "accel_rms_y", "accel_rms_z",
};

#define NUM_READING_COLUMNS lengthof(reading_columns)

static const char scan_sql[] =
"SELECT brewml.moments_by(r.sensor_id, r.vel_rms_x, r.vel_rms_y, r.vel_rms_z,"
" r.accel_rms_x, r.accel_rms_y, r.accel_rms_z) FROM brewml.readings r";

static const char clear_sql[] = "DELETE FROM brewml.column_weights";

static const char store_sql[] =
"INSERT INTO brewml.column_weights (sensor_id, column_name, n, mean, std, fitted_at)"
" SELECT s, c, n, m, d, now() FROM unnest($1::text[], $2::text[], $3::int8[], $4::float8[], $5::float8[])"
" AS u(s, c, n, m, d)";

/* The elements of a one-dimensional array without NULLs. */
static void
ReadingsElements(ArrayType *arr, Datum **elems, int *n)
{
	int16		typlen;
	bool		typbyval;
	char		typalign;

	get_typlenbyvalalign(ARR_ELEMTYPE(arr), &typlen, &typbyval, &typalign);
	deconstruct_array(arr, ARR_ELEMTYPE(arr), typlen, typbyval, typalign, elems, NULL, n);
}

/* A one-dimensional array of n elements of one type, for an SPI argument. */
static Datum
ReadingsArray(Datum *elems, bool *nulls, int n, Oid type)
{
	int			dims[1] = {n};
	int			lbs[1] = {1};
	int16		typlen;
	bool		typbyval;
	char		typalign;

	get_typlenbyvalalign(type, &typlen, &typbyval, &typalign);
	return PointerGetDatum(construct_md_array(elems, nulls, 1, dims, lbs, type,
											  typlen, typbyval, typalign));
}

/* brewml.fit_readings(): fit every (sensor, column) of brewml.readings; returns how many. */
PG_FUNCTION_INFO_V1(fit_readings);
Datum
fit_readings(PG_FUNCTION_ARGS)
{
	MemoryContext callcxt = CurrentMemoryContext;
	MemoryContext spicxt;
	int			ret;
	int			nout = 0;
	Datum	   *groups = NULL;
	int			ngroups = 0;
	Datum	   *sensors,
			   *columns,
			   *counts,
			   *means,
			   *stds;
	bool	   *mean_nulls,
			   *std_nulls;
	Datum		args[5];
	Oid			argtypes[5] = {TEXTARRAYOID, TEXTARRAYOID, INT8ARRAYOID,
	FLOAT8ARRAYOID, FLOAT8ARRAYOID};
	bool		isnull;
	Datum		result;

	SPI_connect();
	ret = SPI_execute(scan_sql, false, 0);
	if (ret != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "brewml.fit_readings: scan failed: %s", SPI_result_code_string(ret));
	result = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);

	/* Gather the model in the caller's context: it must outlive the next SPI call. */
	spicxt = MemoryContextSwitchTo(callcxt);
	if (!isnull)
		ReadingsElements(DatumGetArrayTypePCopy(result), &groups, &ngroups);
	nout = ngroups * (int) NUM_READING_COLUMNS;
	sensors = palloc(sizeof(Datum) * Max(nout, 1));
	columns = palloc(sizeof(Datum) * Max(nout, 1));
	counts = palloc(sizeof(Datum) * Max(nout, 1));
	means = palloc(sizeof(Datum) * Max(nout, 1));
	stds = palloc(sizeof(Datum) * Max(nout, 1));
	mean_nulls = palloc(sizeof(bool) * Max(nout, 1));
	std_nulls = palloc(sizeof(bool) * Max(nout, 1));
	for (int g = 0; g < ngroups; g++)
	{
		HeapTupleHeader group = DatumGetHeapTupleHeader(groups[g]);
		Datum		sensor = GetAttributeByNum(group, 1, &isnull);
		ArrayType  *cols = DatumGetArrayTypeP(GetAttributeByNum(group, 2, &isnull));
		Datum	   *elems;
		int			nelems;

		ReadingsElements(cols, &elems, &nelems);
		if (nelems != NUM_READING_COLUMNS)
			elog(ERROR, "brewml.moments_by returned %d columns, expected %d",
				 nelems, (int) NUM_READING_COLUMNS);
		for (int c = 0; c < nelems; c++)
		{
			HeapTupleHeader m = DatumGetHeapTupleHeader(elems[c]);
			int			k = g * (int) NUM_READING_COLUMNS + c;

			sensors[k] = sensor;
			columns[k] = CStringGetTextDatum(reading_columns[c]);
			counts[k] = GetAttributeByNum(m, 1, &isnull);
			means[k] = GetAttributeByNum(m, 2, &mean_nulls[k]);
			stds[k] = GetAttributeByNum(m, 3, &std_nulls[k]);
		}
	}
	args[0] = ReadingsArray(sensors, NULL, nout, TEXTOID);
	args[1] = ReadingsArray(columns, NULL, nout, TEXTOID);
	args[2] = ReadingsArray(counts, NULL, nout, INT8OID);
	args[3] = ReadingsArray(means, mean_nulls, nout, FLOAT8OID);
	args[4] = ReadingsArray(stds, std_nulls, nout, FLOAT8OID);
	MemoryContextSwitchTo(spicxt);

	ret = SPI_execute(clear_sql, false, 0);
	if (ret != SPI_OK_DELETE)
		elog(ERROR, "brewml.fit_readings: clear failed: %s", SPI_result_code_string(ret));
	ret = SPI_execute_with_args(store_sql, 5, argtypes, args, NULL, false, 0);
	if (ret != SPI_OK_INSERT)
		elog(ERROR, "brewml.fit_readings: store failed: %s", SPI_result_code_string(ret));
	SPI_finish();
	PG_RETURN_INT32(nout);
}

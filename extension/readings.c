/*
 * readings.c
 *		brewml.fit_readings(): the model of the sensor case's draft.py, fitted
 *		in one scan of brewml.readings.  For every sensor and each of the six
 *		vibration columns it stores count, mean and sample standard deviation
 *		in brewml.column_weights, replacing the previous model whole.
 *
 *		The scan is a plain SELECT through SPI with brewml.moments_each, so the
 *		planner may run it in parallel (INSERT ... SELECT would not be).
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/lsyscache.h"

/* The columns draft.py models, in the order of brewml.in_alert's result. */
static const char *const reading_columns[] = {
	"vel_rms_x", "vel_rms_y", "vel_rms_z",
	"accel_rms_x", "accel_rms_y", "accel_rms_z",
};

#define NUM_READING_COLUMNS lengthof(reading_columns)

static const char scan_sql[] =
"SELECT r.sensor_id, brewml.moments_each(r.vel_rms_x, r.vel_rms_y, r.vel_rms_z,"
" r.accel_rms_x, r.accel_rms_y, r.accel_rms_z)"
" FROM brewml.readings r GROUP BY r.sensor_id";

static const char clear_sql[] = "DELETE FROM brewml.column_weights";

static const char store_sql[] =
"INSERT INTO brewml.column_weights (sensor_id, column_name, n, mean, std, fitted_at)"
" SELECT s, c, n, m, d, now() FROM unnest($1::text[], $2::text[], $3::int8[], $4::float8[], $5::float8[])"
" AS u(s, c, n, m, d)";

/* brewml.fit_readings(): fit every (sensor, column) of brewml.readings; returns how many. */
PG_FUNCTION_INFO_V1(fit_readings);
Datum
fit_readings(PG_FUNCTION_ARGS)
{
	int			ret;
	int			nsensors;
	int			nout;
	Datum	   *sensors,
			   *columns,
			   *counts,
			   *means,
			   *stds;
	bool	   *mean_nulls,
			   *std_nulls;
	Datum		args[5];
	char		argnulls[5] = {' ', ' ', ' ', ' ', ' '};
	Oid			argtypes[5] = {TEXTARRAYOID, TEXTARRAYOID, INT8ARRAYOID,
	FLOAT8ARRAYOID, FLOAT8ARRAYOID};
	int			dims[1];
	int			lbs[1] = {1};
	int			skipped = 0;
	int16		typlen;
	bool		typbyval;
	char		typalign;
	MemoryContext callcxt = CurrentMemoryContext;

	SPI_connect();
	ret = SPI_execute(scan_sql, false, 0);
	if (ret != SPI_OK_SELECT)
		elog(ERROR, "brewml.fit_readings: scan failed: %s", SPI_result_code_string(ret));
	nsensors = (int) SPI_processed;
	nout = nsensors * (int) NUM_READING_COLUMNS;

	/* Gather the result in the caller's context: it must outlive the next SPI call. */
	{
		MemoryContext spicxt = MemoryContextSwitchTo(callcxt);

		sensors = palloc(sizeof(Datum) * Max(nout, 1));
		columns = palloc(sizeof(Datum) * Max(nout, 1));
		counts = palloc(sizeof(Datum) * Max(nout, 1));
		means = palloc(sizeof(Datum) * Max(nout, 1));
		stds = palloc(sizeof(Datum) * Max(nout, 1));
		mean_nulls = palloc(sizeof(bool) * Max(nout, 1));
		std_nulls = palloc(sizeof(bool) * Max(nout, 1));

		for (int s = 0; s < nsensors; s++)
		{
			HeapTuple	row = SPI_tuptable->vals[s];
			TupleDesc	desc = SPI_tuptable->tupdesc;
			bool		isnull;
			Datum		sensor = SPI_getbinval(row, desc, 1, &isnull);
			Datum		colsdatum;
			ArrayType  *cols;
			Datum	   *elems;
			int			nelems;
			Oid			elemtype;

			if (isnull)
			{
				/* A row without a sensor cannot be modelled; say so below. */
				skipped++;
				continue;
			}
			sensor = datumCopy(sensor, false, -1);
			colsdatum = SPI_getbinval(row, desc, 2, &isnull);
			cols = DatumGetArrayTypeP(colsdatum);
			elemtype = ARR_ELEMTYPE(cols);
			get_typlenbyvalalign(elemtype, &typlen, &typbyval, &typalign);
			deconstruct_array(cols, elemtype, typlen, typbyval, typalign, &elems, NULL, &nelems);
			if (nelems != NUM_READING_COLUMNS)
				elog(ERROR, "brewml.moments_each returned %d columns, expected %d",
					 nelems, (int) NUM_READING_COLUMNS);
			for (int c = 0; c < nelems; c++)
			{
				HeapTupleHeader m = DatumGetHeapTupleHeader(elems[c]);
				int			k = (s - skipped) * (int) NUM_READING_COLUMNS + c;
				bool		nnull;

				sensors[k] = sensor;
				columns[k] = CStringGetTextDatum(reading_columns[c]);
				counts[k] = GetAttributeByNum(m, 1, &nnull);
				means[k] = GetAttributeByNum(m, 2, &mean_nulls[k]);
				stds[k] = GetAttributeByNum(m, 3, &std_nulls[k]);
			}
		}
		MemoryContextSwitchTo(spicxt);
	}
	nout = (nsensors - skipped) * (int) NUM_READING_COLUMNS;
	if (skipped > 0)
		ereport(WARNING,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("brewml.fit_readings: readings with a NULL sensor_id were not modelled")));

	dims[0] = nout;
	args[0] = PointerGetDatum(construct_array(sensors, nout, TEXTOID, -1, false, TYPALIGN_INT));
	args[1] = PointerGetDatum(construct_array(columns, nout, TEXTOID, -1, false, TYPALIGN_INT));
	args[2] = PointerGetDatum(construct_array(counts, nout, INT8OID, sizeof(int64),
											  FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
	args[3] = PointerGetDatum(construct_md_array(means, mean_nulls, 1, dims, lbs, FLOAT8OID,
												 sizeof(float8), FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
	args[4] = PointerGetDatum(construct_md_array(stds, std_nulls, 1, dims, lbs, FLOAT8OID,
												 sizeof(float8), FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
	ret = SPI_execute(clear_sql, false, 0);
	if (ret != SPI_OK_DELETE)
		elog(ERROR, "brewml.fit_readings: clear failed: %s", SPI_result_code_string(ret));
	ret = SPI_execute_with_args(store_sql, 5, argtypes, args, argnulls, false, 0);
	if (ret != SPI_OK_INSERT)
		elog(ERROR, "brewml.fit_readings: store failed: %s", SPI_result_code_string(ret));
	SPI_finish();
	PG_RETURN_INT32(nout);
}

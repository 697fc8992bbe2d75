/*
 * sensor.c
 *		The sensor model of the sensor case: fit a sensor's mean and sample
 *		standard deviation, read them back, predict an alert, adjust the mean.
 *		Weights live in brewml.sensor_weights, one row per sensor.
 */
#include "postgres.h"

#include <math.h>

#include "brewml.h"
#include "welford.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "utils/array.h"
#include "utils/builtins.h"

typedef enum SensorPlan
{
	PLAN_FIT,
	PLAN_WEIGHTS,
	PLAN_ADJUST,
	NUM_SENSOR_PLANS
} SensorPlan;

static const char *const sensor_sql[NUM_SENSOR_PLANS] = {
	[PLAN_FIT] =
	"INSERT INTO brewml.sensor_weights AS w (sensor_id, mean, std, n, fitted_at, adjusted_at)"
	" VALUES ($1, $2, $3, $4, now(), NULL)"
	" ON CONFLICT (sensor_id) DO UPDATE SET mean = EXCLUDED.mean, std = EXCLUDED.std,"
	" n = EXCLUDED.n, fitted_at = EXCLUDED.fitted_at, adjusted_at = NULL"
	" RETURNING w.*",
	[PLAN_WEIGHTS] =
	"SELECT w.* FROM brewml.sensor_weights w WHERE w.sensor_id = $1",
	[PLAN_ADJUST] =
	"UPDATE brewml.sensor_weights AS w SET mean = w.mean * $2, adjusted_at = now()"
	" WHERE w.sensor_id = $1 RETURNING w.*",
};

static const int sensor_nargs[NUM_SENSOR_PLANS] = {
	[PLAN_FIT] = 4,[PLAN_WEIGHTS] = 1,[PLAN_ADJUST] = 2,
};

static const Oid sensor_argtypes[NUM_SENSOR_PLANS][4] = {
	[PLAN_FIT] = {TEXTOID, FLOAT8OID, FLOAT8OID, INT8OID},
	[PLAN_WEIGHTS] = {TEXTOID},
	[PLAN_ADJUST] = {TEXTOID, FLOAT8OID},
};

/* Saved plans, prepared on first use in each backend. */
static SPIPlanPtr sensor_plans[NUM_SENSOR_PLANS];

/* Runs one of the statements above; the caller has done SPI_connect. */
static int
SensorExecute(SensorPlan which, Datum *values, bool read_only)
{
	int			ret;

	if (sensor_plans[which] == NULL)
	{
		SPIPlanPtr	plan = SPI_prepare(sensor_sql[which], sensor_nargs[which],
									   (Oid *) sensor_argtypes[which]);

		if (plan == NULL)
			elog(ERROR, "SPI_prepare failed: %s", SPI_result_code_string(SPI_result));
		if (SPI_keepplan(plan) != 0)
			elog(ERROR, "SPI_keepplan failed");
		sensor_plans[which] = plan;
	}
	ret = SPI_execute_plan(sensor_plans[which], values, NULL, read_only, 0);
	if (ret < 0)
		elog(ERROR, "SPI_execute_plan failed: %s", SPI_result_code_string(ret));
	return ret;
}

/*
 * The sensor id argument, checked: not NULL, 1 to SENSOR_ID_MAX bytes.
 * Returns the text datum; *name gets it as a C string for messages.
 */
static Datum
SensorIdArg(FunctionCallInfo fcinfo, int argno, char **name)
{
	text	   *id;
	int			len;

	if (PG_ARGISNULL(argno))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("sensor_id must not be NULL")));
	id = PG_GETARG_TEXT_PP(argno);
	len = VARSIZE_ANY_EXHDR(id);
	if (len < 1 || len > SENSOR_ID_MAX)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("sensor_id must be 1 to %d bytes long, not %d", SENSOR_ID_MAX, len)));
	*name = text_to_cstring(id);
	return PointerGetDatum(id);
}

static void
SensorNotFound(const char *sensor)
{
	ereport(ERROR,
			(errcode(ERRCODE_NO_DATA_FOUND),
			 errmsg("sensor \"%s\" has not been fitted", sensor),
			 errhint("Call brewml.fit('%s', ARRAY[...]) first.", sensor)));
}

/* A value to compare against a sensor's threshold must be a finite number. */
static void
SensorCheckValue(const char *sensor, double value)
{
	if (isnan(value))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("cannot predict for sensor \"%s\": value is NaN", sensor)));
	if (isinf(value))
		ereport(ERROR,
				(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
				 errmsg("cannot predict for sensor \"%s\": value is infinite", sensor)));
}

/*
 * Mean and sample standard deviation of an array, skipping NULL and NaN:
 * two passes (mean, then squared deviations with the rounding correction),
 * which is exact on small integers such as the case's worked example.
 */
static void
SensorArrayMoments(const char *sensor, ArrayType *arr, Welford *out)
{
	Datum	   *elems;
	bool	   *nulls;
	int			nelems;
	int			lbound;
	int64		n = 0;
	double		sum = 0.0,
				mean,
				dev = 0.0,
				m2 = 0.0;

	if (ARR_NDIM(arr) > 1)
		ereport(ERROR,
				(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
				 errmsg("cannot fit sensor \"%s\": values must be a one-dimensional array, not %d-dimensional",
						sensor, ARR_NDIM(arr))));
	deconstruct_array(arr, FLOAT8OID, sizeof(float8), FLOAT8PASSBYVAL, TYPALIGN_DOUBLE,
					  &elems, &nulls, &nelems);
	if (nelems == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("cannot fit sensor \"%s\": values is empty", sensor),
				 errhint("Pass at least 2 numbers, e.g. {\"values\": [10, 5, 6, 9]}.")));
	lbound = ARR_LBOUND(arr)[0];

	for (int i = 0; i < nelems; i++)
	{
		double		x;

		if (nulls[i])
			continue;
		x = DatumGetFloat8(elems[i]);
		if (isnan(x))
			continue;
		if (isinf(x))
			ereport(ERROR,
					(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
					 errmsg("cannot fit sensor \"%s\": values[%d] is infinite", sensor, lbound + i)));
		sum += x;
		n++;
	}
	if (n < 2)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("cannot fit sensor \"%s\": %lld usable value%s, at least 2 are needed",
						sensor, (long long) n, n == 1 ? "" : "s"),
				 errdetail("%d of %d values were NULL or NaN, which are skipped.",
						   nelems - (int) n, nelems)));
	mean = sum / (double) n;
	if (!isfinite(mean))
		ereport(ERROR,
				(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
				 errmsg("cannot fit sensor \"%s\": the values overflow double precision", sensor)));

	for (int i = 0; i < nelems; i++)
	{
		double		d;

		if (nulls[i] || isnan(DatumGetFloat8(elems[i])))
			continue;
		d = DatumGetFloat8(elems[i]) - mean;
		dev += d;
		m2 += d * d;
	}
	m2 -= dev * dev / (double) n;
	if (!isfinite(m2))
		ereport(ERROR,
				(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
				 errmsg("cannot fit sensor \"%s\": the spread of the values overflows double precision",
						sensor)));
	out->n = n;
	out->mean = mean;
	out->m2 = m2 < 0.0 ? 0.0 : m2;
}

/* The one row SPI returned, as this function's composite result. */
static Datum
SensorReturnRow(const char *sensor)
{
	HeapTupleHeader row;

	if (SPI_processed != 1)
		SensorNotFound(sensor);
	row = SPI_returntuple(SPI_tuptable->vals[0], SPI_tuptable->tupdesc);
	SPI_finish();
	return PointerGetDatum(row);
}

/* brewml.fit(sensor_id, values): store the sensor's mean and sample std. */
PG_FUNCTION_INFO_V1(sensor_fit);
Datum
sensor_fit(PG_FUNCTION_ARGS)
{
	char	   *sensor;
	Datum		args[4];
	Welford		w;

	args[0] = SensorIdArg(fcinfo, 0, &sensor);
	if (PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("cannot fit sensor \"%s\": values must not be NULL", sensor)));
	SensorArrayMoments(sensor, PG_GETARG_ARRAYTYPE_P(1), &w);

	args[1] = Float8GetDatum(w.mean);
	args[2] = Float8GetDatum(WelfordStd(&w));
	args[3] = Int64GetDatum(w.n);
	SPI_connect();
	SensorExecute(PLAN_FIT, args, false);
	PG_RETURN_DATUM(SensorReturnRow(sensor));
}

/* brewml.weights(sensor_id): the stored weights of a fitted sensor. */
PG_FUNCTION_INFO_V1(sensor_weights);
Datum
sensor_weights(PG_FUNCTION_ARGS)
{
	char	   *sensor;
	Datum		args[1];

	args[0] = SensorIdArg(fcinfo, 0, &sensor);
	SPI_connect();
	SensorExecute(PLAN_WEIGHTS, args, true);
	PG_RETURN_DATUM(SensorReturnRow(sensor));
}

/*
 * Whether argument 1 is in alert for the sensor in argument 0 (through the
 * weights cache); NULL when the sensor was never fitted and missing_ok,
 * else an error.
 */
static Datum
SensorAlert(FunctionCallInfo fcinfo, bool missing_ok)
{
	char	   *sensor;
	double		value,
				mean,
				std;

	(void) SensorIdArg(fcinfo, 0, &sensor);
	if (PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("cannot predict for sensor \"%s\": value must not be NULL", sensor)));
	value = PG_GETARG_FLOAT8(1);
	SensorCheckValue(sensor, value);
	if (!SensorCachedWeights(sensor, &mean, &std))
	{
		if (!missing_ok)
			SensorNotFound(sensor);
		PG_RETURN_NULL();
	}
	PG_RETURN_BOOL(BrewmlIsAlert(value, mean, std));
}

/* brewml.predict(sensor_id, value): whether value is in alert for the sensor. */
PG_FUNCTION_INFO_V1(sensor_predict);
Datum
sensor_predict(PG_FUNCTION_ARGS)
{
	return SensorAlert(fcinfo, false);
}

/* brewml.sensor_alert(sensor_id, value): the same, NULL for a sensor never fitted. */
PG_FUNCTION_INFO_V1(sensor_alert);
Datum
sensor_alert(PG_FUNCTION_ARGS)
{
	return SensorAlert(fcinfo, true);
}

/* brewml.adjust(sensor_id): raise the sensor's mean by 10%, return the new weights. */
PG_FUNCTION_INFO_V1(sensor_adjust);
Datum
sensor_adjust(PG_FUNCTION_ARGS)
{
	char	   *sensor;
	Datum		args[2];

	args[0] = SensorIdArg(fcinfo, 0, &sensor);
	args[1] = Float8GetDatum(BREWML_ADJUST_FACTOR);
	SPI_connect();
	SensorExecute(PLAN_ADJUST, args, false);
	PG_RETURN_DATUM(SensorReturnRow(sensor));
}

/* brewml.is_alert(value, mean, std): the alert rule, value >= mean + 2 * std. */
PG_FUNCTION_INFO_V1(sensor_is_alert);
Datum
sensor_is_alert(PG_FUNCTION_ARGS)
{
	double		value = PG_GETARG_FLOAT8(0);

	if (isnan(value) || isinf(value))
		ereport(ERROR,
				(errcode(isnan(value) ? ERRCODE_INVALID_PARAMETER_VALUE
						 : ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
				 errmsg("brewml.is_alert: value must be a finite number, not %s",
						isnan(value) ? "NaN" : "infinite")));
	PG_RETURN_BOOL(BrewmlIsAlert(value, PG_GETARG_FLOAT8(1), PG_GETARG_FLOAT8(2)));
}

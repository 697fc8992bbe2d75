/*
 * moments.c
 *		brewml.moments(float8) and brewml.moments_each(VARIADIC "any"):
 *		count, mean and sample standard deviation in one pass, skipping NULL
 *		and NaN as pandas does.  Both aggregates share one transition state
 *		(a Welford summary per column), so they share the transition, combine,
 *		serialize and deserialize functions and both run in parallel plans.
 */
#include "postgres.h"

#include <math.h>

#include "brewml.h"
#include "moments.h"
#include "welford.h"

#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "fmgr.h"
#include "funcapi.h"
#include "libpq/pqformat.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/typcache.h"

typedef struct MomentsState
{
	int32		ncols;
	Welford		cols[FLEXIBLE_ARRAY_MEMBER];
} MomentsState;

#define MomentsStateSize(ncols) \
	(offsetof(MomentsState, cols) + sizeof(Welford) * (ncols))

static MomentsState *
MomentsStateCreate(MemoryContext cxt, int ncols)
{
	return (MomentsState *) MemoryContextAllocZero(cxt, MomentsStateSize(ncols));
}

MemoryContext
MomentsAggContext(FunctionCallInfo fcinfo, const char *fname)
{
	MemoryContext aggcxt;

	if (!AggCheckCallContext(fcinfo, &aggcxt))
		elog(ERROR, "%s called in non-aggregate context", fname);
	return aggcxt;
}

/*
 * The types of the ncols data arguments from argument number first on,
 * checked once per call site and cached in fn_extra: each must be a number
 * that converts to float8 (float8, float4, int2, int4, int8, numeric).
 */
Oid *
MomentsArgTypes(FunctionCallInfo fcinfo, int first, int ncols, const char *fname)
{
	Oid		   *types = (Oid *) fcinfo->flinfo->fn_extra;

	if (types == NULL)
	{
		types = MemoryContextAlloc(fcinfo->flinfo->fn_mcxt, sizeof(Oid) * ncols);
		for (int i = 0; i < ncols; i++)
		{
			Oid			t = get_fn_expr_argtype(fcinfo->flinfo, first + i);

			if (t != FLOAT8OID && t != FLOAT4OID && t != INT2OID &&
				t != INT4OID && t != INT8OID && t != NUMERICOID)
				ereport(ERROR,
						(errcode(ERRCODE_DATATYPE_MISMATCH),
						 errmsg("%s argument %d is of type %s, not a number",
								fname, first + i, format_type_be(t)),
						 errhint("Pass float8, float4, integer or numeric columns, one per argument.")));
			types[i] = t;
		}
		fcinfo->flinfo->fn_extra = types;
	}
	return types;
}

double
MomentsValueAsDouble(Datum d, Oid type)
{
	switch (type)
	{
		case FLOAT8OID:
			return DatumGetFloat8(d);
		case FLOAT4OID:
			return (double) DatumGetFloat4(d);
		case INT2OID:
			return (double) DatumGetInt16(d);
		case INT4OID:
			return (double) DatumGetInt32(d);
		case INT8OID:
			return (double) DatumGetInt64(d);
		case NUMERICOID:
			return DatumGetFloat8(DirectFunctionCall1(numeric_float8_no_overflow, d));
	}
	elog(ERROR, "unexpected type %u in brewml.moments", type);
	return 0.0;					/* keep compiler quiet */
}

/*
 * Adds the ncols data arguments from argument number first on to cols,
 * skipping NULL and NaN; infinity is an error.
 */
void
MomentsAddRow(FunctionCallInfo fcinfo, int first, int ncols, const Oid *types, Welford *cols)
{
	for (int i = 0; i < ncols; i++)
	{
		double		x;

		if (PG_ARGISNULL(first + i))
			continue;
		x = MomentsValueAsDouble(PG_GETARG_DATUM(first + i), types[i]);
		if (isnan(x))
			continue;
		if (unlikely(isinf(x)))
			ereport(ERROR,
					(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
					 errmsg("brewml.moments: value of column %d is infinite", i + 1),
					 errdetail("Mean and standard deviation are undefined over infinite values."),
					 errhint("Filter the row out or store NULL or NaN, which are skipped.")));
		WelfordAdd(&cols[i], x);
	}
}

/* Transition function of brewml.moments and brewml.moments_each: adds one row. */
PG_FUNCTION_INFO_V1(moments_accum);
Datum
moments_accum(PG_FUNCTION_ARGS)
{
	MemoryContext aggcxt = MomentsAggContext(fcinfo, "moments_accum");
	MomentsState *state = PG_ARGISNULL(0) ? NULL : (MomentsState *) PG_GETARG_POINTER(0);
	int			ncols = PG_NARGS() - 1;
	Oid		   *types;

	if (state == NULL)
	{
		if (ncols < 1 || ncols > MOMENTS_MAX_COLUMNS)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("brewml.moments_each takes 1 to %d columns, not %d",
							MOMENTS_MAX_COLUMNS, ncols)));
		state = MomentsStateCreate(aggcxt, ncols);
		state->ncols = ncols;
	}
	types = MomentsArgTypes(fcinfo, 1, ncols, "brewml.moments_each");
	MomentsAddRow(fcinfo, 1, ncols, types, state->cols);
	PG_RETURN_POINTER(state);
}

/* Combine function: merges two partial states of a parallel plan. */
PG_FUNCTION_INFO_V1(moments_combine);
Datum
moments_combine(PG_FUNCTION_ARGS)
{
	MemoryContext aggcxt = MomentsAggContext(fcinfo, "moments_combine");
	MomentsState *a = PG_ARGISNULL(0) ? NULL : (MomentsState *) PG_GETARG_POINTER(0);
	MomentsState *b = PG_ARGISNULL(1) ? NULL : (MomentsState *) PG_GETARG_POINTER(1);

	if (b == NULL)
	{
		if (a == NULL)
			PG_RETURN_NULL();
		PG_RETURN_POINTER(a);
	}
	if (a == NULL)
	{
		a = MomentsStateCreate(aggcxt, b->ncols);
		memcpy(a, b, MomentsStateSize(b->ncols));
		PG_RETURN_POINTER(a);
	}
	if (a->ncols != b->ncols)
		elog(ERROR, "brewml.moments: cannot combine states of %d and %d columns",
			 a->ncols, b->ncols);
	for (int i = 0; i < a->ncols; i++)
		WelfordMerge(&a->cols[i], &b->cols[i]);
	PG_RETURN_POINTER(a);
}

/* Serialize function: the state as bytea, for parallel workers. */
PG_FUNCTION_INFO_V1(moments_serialize);
Datum
moments_serialize(PG_FUNCTION_ARGS)
{
	MomentsState *state;
	StringInfoData buf;

	(void) MomentsAggContext(fcinfo, "moments_serialize");
	state = (MomentsState *) PG_GETARG_POINTER(0);
	pq_begintypsend(&buf);
	pq_sendint32(&buf, state->ncols);
	for (int i = 0; i < state->ncols; i++)
	{
		pq_sendint64(&buf, state->cols[i].n);
		pq_sendfloat8(&buf, state->cols[i].mean);
		pq_sendfloat8(&buf, state->cols[i].m2);
	}
	PG_RETURN_BYTEA_P(pq_endtypsend(&buf));
}

/* Deserialize function: the inverse of moments_serialize. */
PG_FUNCTION_INFO_V1(moments_deserialize);
Datum
moments_deserialize(PG_FUNCTION_ARGS)
{
	MemoryContext aggcxt = MomentsAggContext(fcinfo, "moments_deserialize");
	bytea	   *bytes = PG_GETARG_BYTEA_PP(0);
	StringInfoData buf;
	MomentsState *state;
	int32		ncols;

	buf.data = VARDATA_ANY(bytes);
	buf.len = VARSIZE_ANY_EXHDR(bytes);
	buf.maxlen = buf.len;
	buf.cursor = 0;
	ncols = pq_getmsgint(&buf, 4);
	if (ncols < 1 || ncols > MOMENTS_MAX_COLUMNS)
		elog(ERROR, "brewml.moments: corrupt serialized state (%d columns)", ncols);
	state = MomentsStateCreate(aggcxt, ncols);
	state->ncols = ncols;
	for (int i = 0; i < ncols; i++)
	{
		state->cols[i].n = pq_getmsgint64(&buf);
		state->cols[i].mean = pq_getmsgfloat8(&buf);
		state->cols[i].m2 = pq_getmsgfloat8(&buf);
	}
	pq_getmsgend(&buf);
	PG_RETURN_POINTER(state);
}

/* One brewml.moments row (n, mean, std) from a column's summary. */
HeapTuple
MomentsTuple(TupleDesc desc, const Welford *w)
{
	Datum		values[3];
	bool		nulls[3] = {false, w->n < 1, w->n < 2};

	values[0] = Int64GetDatum(w->n);
	values[1] = Float8GetDatum(w->mean);
	values[2] = Float8GetDatum(WelfordStd(w));
	return heap_form_tuple(desc, values, nulls);
}

/* Final function of brewml.moments: (n, mean, std) of the one column. */
PG_FUNCTION_INFO_V1(moments_final);
Datum
moments_final(PG_FUNCTION_ARGS)
{
	MomentsState *state = PG_ARGISNULL(0) ? NULL : (MomentsState *) PG_GETARG_POINTER(0);
	Welford		empty = {0, 0.0, 0.0};
	TupleDesc	desc;

	if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "brewml.moments must return a composite type");
	desc = BlessTupleDesc(desc);
	PG_RETURN_DATUM(HeapTupleGetDatum(MomentsTuple(desc, state ? &state->cols[0] : &empty)));
}

/* Final function of brewml.moments_each: one (n, mean, std) per argument, in order. */
PG_FUNCTION_INFO_V1(moments_each_final);
Datum
moments_each_final(PG_FUNCTION_ARGS)
{
	MomentsState *state = PG_ARGISNULL(0) ? NULL : (MomentsState *) PG_GETARG_POINTER(0);
	Oid			elemtype = get_element_type(get_fn_expr_rettype(fcinfo->flinfo));
	TupleDesc	desc;
	Datum	   *elems;
	int16		typlen;
	bool		typbyval;
	char		typalign;

	if (state == NULL)
		PG_RETURN_NULL();
	if (!OidIsValid(elemtype))
		elog(ERROR, "brewml.moments_each must return an array");
	desc = lookup_rowtype_tupdesc_copy(elemtype, -1);
	desc = BlessTupleDesc(desc);
	elems = palloc(sizeof(Datum) * state->ncols);
	for (int i = 0; i < state->ncols; i++)
		elems[i] = HeapTupleGetDatum(MomentsTuple(desc, &state->cols[i]));
	get_typlenbyvalalign(elemtype, &typlen, &typbyval, &typalign);
	PG_RETURN_ARRAYTYPE_P(construct_array(elems, state->ncols, elemtype,
										  typlen, typbyval, typalign));
}

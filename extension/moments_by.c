/*
 * moments_by.c
 *		brewml.moments_by(key text, VARIADIC "any"): brewml.moments_each of
 *		the numeric arguments for every distinct key, in one aggregate call
 *		per row and no GROUP BY.  The keys are grouped inside the state by a
 *		small open-addressing hash table on the key's bytes, which costs far
 *		less per row than the executor's hash aggregation over text; the state
 *		combines and serializes, so the aggregate runs in parallel plans.
 *
 *		Keys compare by their bytes (as under a deterministic collation); rows
 *		with a NULL key are skipped.  The result is one (key, moments[]) per
 *		key, in byte order of the keys.
 */
#include "postgres.h"

#include "brewml.h"
#include "moments.h"
#include "welford.h"

#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "common/hashfn.h"
#include "fmgr.h"
#include "funcapi.h"
#include "libpq/pqformat.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/typcache.h"

/* More distinct keys than this is not what this aggregate is for. */
#define MOMENTS_BY_MAX_KEYS 1000000

typedef struct KeyEntry
{
	uint32		hash;
	int32		len;
	char	   *key;
	Welford    *cols;
} KeyEntry;

typedef struct KeyedState
{
	MemoryContext cxt;			/* where the state and its keys live */
	int32		ncols;
	int32		nkeys;
	int32		maxkeys;		/* allocated length of entries */
	int32		mask;			/* slots - 1; slots is a power of 2 */
	int32	   *slots;			/* index into entries + 1, or 0 when free */
	int32		last;			/* entry of the previous row, a cheap first guess */
	KeyEntry   *entries;
} KeyedState;

static KeyedState *
KeyedCreate(MemoryContext cxt, int ncols)
{
	KeyedState *state = MemoryContextAllocZero(cxt, sizeof(KeyedState));

	state->cxt = cxt;
	state->ncols = ncols;
	state->maxkeys = 16;
	state->mask = 31;
	state->slots = MemoryContextAllocZero(cxt, sizeof(int32) * 32);
	state->entries = MemoryContextAlloc(cxt, sizeof(KeyEntry) * state->maxkeys);
	state->last = -1;
	return state;
}

static void
KeyedGrowSlots(KeyedState *state)
{
	int			nslots = (state->mask + 1) * 2;

	pfree(state->slots);
	state->slots = MemoryContextAllocZero(state->cxt, sizeof(int32) * nslots);
	state->mask = nslots - 1;
	for (int i = 0; i < state->nkeys; i++)
	{
		uint32		s = state->entries[i].hash & state->mask;

		while (state->slots[s] != 0)
			s = (s + 1) & state->mask;
		state->slots[s] = i + 1;
	}
}

/* The Welford summaries of a key, added if new. */
static Welford *
KeyedLookup(KeyedState *state, const char *key, int len)
{
	uint32		hash;
	uint32		s;
	KeyEntry   *e;

	if (state->last >= 0)
	{
		e = &state->entries[state->last];
		if (e->len == len && memcmp(e->key, key, len) == 0)
			return e->cols;
	}
	hash = hash_bytes((const unsigned char *) key, len);
	for (s = hash & state->mask; state->slots[s] != 0; s = (s + 1) & state->mask)
	{
		e = &state->entries[state->slots[s] - 1];
		if (e->hash == hash && e->len == len && memcmp(e->key, key, len) == 0)
		{
			state->last = state->slots[s] - 1;
			return e->cols;
		}
	}

	/* A new key. */
	if (state->nkeys >= MOMENTS_BY_MAX_KEYS)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("brewml.moments_by: more than %d distinct keys", MOMENTS_BY_MAX_KEYS),
				 errhint("Use GROUP BY key with brewml.moments_each instead.")));
	if (state->nkeys == state->maxkeys)
	{
		state->maxkeys *= 2;
		state->entries = repalloc(state->entries, sizeof(KeyEntry) * state->maxkeys);
	}
	e = &state->entries[state->nkeys];
	e->hash = hash;
	e->len = len;
	e->key = MemoryContextAlloc(state->cxt, Max(len, 1));
	memcpy(e->key, key, len);
	e->cols = MemoryContextAllocZero(state->cxt, sizeof(Welford) * state->ncols);
	state->slots[s] = state->nkeys + 1;
	state->last = state->nkeys;
	state->nkeys++;
	if (state->nkeys * 2 > state->mask + 1)
		KeyedGrowSlots(state);
	return e->cols;
}

/* Transition function of brewml.moments_by: adds one row to its key. */
PG_FUNCTION_INFO_V1(moments_by_accum);
Datum
moments_by_accum(PG_FUNCTION_ARGS)
{
	MemoryContext aggcxt = MomentsAggContext(fcinfo, "moments_by_accum");
	KeyedState *state = PG_ARGISNULL(0) ? NULL : (KeyedState *) PG_GETARG_POINTER(0);
	int			ncols = PG_NARGS() - 2;
	Oid		   *types;
	text	   *key;

	if (state == NULL)
	{
		if (ncols < 1 || ncols > MOMENTS_MAX_COLUMNS)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("brewml.moments_by takes a key and 1 to %d columns, not %d",
							MOMENTS_MAX_COLUMNS, ncols)));
		state = KeyedCreate(aggcxt, ncols);
	}
	if (PG_ARGISNULL(1))
		PG_RETURN_POINTER(state);
	types = MomentsArgTypes(fcinfo, 2, ncols, "brewml.moments_by");
	key = PG_GETARG_TEXT_PP(1);
	MomentsAddRow(fcinfo, 2, ncols, types,
				  KeyedLookup(state, VARDATA_ANY(key), VARSIZE_ANY_EXHDR(key)));
	PG_RETURN_POINTER(state);
}

/* Combine function of brewml.moments_by: merges the keys of two partial states. */
PG_FUNCTION_INFO_V1(moments_by_combine);
Datum
moments_by_combine(PG_FUNCTION_ARGS)
{
	MemoryContext aggcxt = MomentsAggContext(fcinfo, "moments_by_combine");
	KeyedState *a = PG_ARGISNULL(0) ? NULL : (KeyedState *) PG_GETARG_POINTER(0);
	KeyedState *b = PG_ARGISNULL(1) ? NULL : (KeyedState *) PG_GETARG_POINTER(1);

	if (b == NULL)
	{
		if (a == NULL)
			PG_RETURN_NULL();
		PG_RETURN_POINTER(a);
	}
	if (a == NULL)
		a = KeyedCreate(aggcxt, b->ncols);
	if (a->ncols != b->ncols)
		elog(ERROR, "brewml.moments_by: cannot combine states of %d and %d columns",
			 a->ncols, b->ncols);
	for (int i = 0; i < b->nkeys; i++)
	{
		KeyEntry   *e = &b->entries[i];
		Welford    *cols = KeyedLookup(a, e->key, e->len);

		for (int c = 0; c < a->ncols; c++)
			WelfordMerge(&cols[c], &e->cols[c]);
	}
	PG_RETURN_POINTER(a);
}

/* Serialize function of brewml.moments_by. */
PG_FUNCTION_INFO_V1(moments_by_serialize);
Datum
moments_by_serialize(PG_FUNCTION_ARGS)
{
	KeyedState *state;
	StringInfoData buf;

	(void) MomentsAggContext(fcinfo, "moments_by_serialize");
	state = (KeyedState *) PG_GETARG_POINTER(0);
	pq_begintypsend(&buf);
	pq_sendint32(&buf, state->ncols);
	pq_sendint32(&buf, state->nkeys);
	for (int i = 0; i < state->nkeys; i++)
	{
		KeyEntry   *e = &state->entries[i];

		pq_sendint32(&buf, e->len);
		pq_sendbytes(&buf, e->key, e->len);
		for (int c = 0; c < state->ncols; c++)
		{
			pq_sendint64(&buf, e->cols[c].n);
			pq_sendfloat8(&buf, e->cols[c].mean);
			pq_sendfloat8(&buf, e->cols[c].m2);
		}
	}
	PG_RETURN_BYTEA_P(pq_endtypsend(&buf));
}

/* Deserialize function of brewml.moments_by. */
PG_FUNCTION_INFO_V1(moments_by_deserialize);
Datum
moments_by_deserialize(PG_FUNCTION_ARGS)
{
	MemoryContext aggcxt = MomentsAggContext(fcinfo, "moments_by_deserialize");
	bytea	   *bytes = PG_GETARG_BYTEA_PP(0);
	StringInfoData buf;
	KeyedState *state;
	int32		ncols,
				nkeys;

	buf.data = VARDATA_ANY(bytes);
	buf.len = VARSIZE_ANY_EXHDR(bytes);
	buf.maxlen = buf.len;
	buf.cursor = 0;
	ncols = pq_getmsgint(&buf, 4);
	nkeys = pq_getmsgint(&buf, 4);
	if (ncols < 1 || ncols > MOMENTS_MAX_COLUMNS || nkeys < 0 || nkeys > MOMENTS_BY_MAX_KEYS)
		elog(ERROR, "brewml.moments_by: corrupt serialized state (%d columns, %d keys)",
			 ncols, nkeys);
	state = KeyedCreate(aggcxt, ncols);
	for (int i = 0; i < nkeys; i++)
	{
		int32		len = pq_getmsgint(&buf, 4);
		const char *key = pq_getmsgbytes(&buf, len);
		Welford    *cols = KeyedLookup(state, key, len);

		for (int c = 0; c < ncols; c++)
		{
			cols[c].n = pq_getmsgint64(&buf);
			cols[c].mean = pq_getmsgfloat8(&buf);
			cols[c].m2 = pq_getmsgfloat8(&buf);
		}
	}
	pq_getmsgend(&buf);
	PG_RETURN_POINTER(state);
}

static int
KeyEntryCompare(const void *a, const void *b)
{
	const KeyEntry *x = (const KeyEntry *) a;
	const KeyEntry *y = (const KeyEntry *) b;
	int			r = memcmp(x->key, y->key, Min(x->len, y->len));

	return r != 0 ? r : (x->len > y->len) - (x->len < y->len);
}

/* Final function of brewml.moments_by: (key, moments[]) per key, keys in byte order. */
PG_FUNCTION_INFO_V1(moments_by_final);
Datum
moments_by_final(PG_FUNCTION_ARGS)
{
	KeyedState *state = PG_ARGISNULL(0) ? NULL : (KeyedState *) PG_GETARG_POINTER(0);
	Oid			grouptype = get_element_type(get_fn_expr_rettype(fcinfo->flinfo));
	TupleDesc	groupdesc,
				momentsdesc;
	Oid			momentsarray,
				momentstype;
	int16		glen,
				mlen;
	bool		gbyval,
				mbyval;
	char		galign,
				malign;
	KeyEntry   *sorted;
	Datum	   *groups,
			   *moments;

	if (state == NULL || state->nkeys == 0)
		PG_RETURN_NULL();
	if (!OidIsValid(grouptype))
		elog(ERROR, "brewml.moments_by must return an array");
	groupdesc = BlessTupleDesc(lookup_rowtype_tupdesc_copy(grouptype, -1));
	momentsarray = TupleDescAttr(groupdesc, 1)->atttypid;
	momentstype = get_element_type(momentsarray);
	momentsdesc = BlessTupleDesc(lookup_rowtype_tupdesc_copy(momentstype, -1));
	get_typlenbyvalalign(grouptype, &glen, &gbyval, &galign);
	get_typlenbyvalalign(momentstype, &mlen, &mbyval, &malign);

	/* Sort a copy: the state may be finalized again (window or shared aggregates). */
	sorted = palloc(sizeof(KeyEntry) * state->nkeys);
	memcpy(sorted, state->entries, sizeof(KeyEntry) * state->nkeys);
	qsort(sorted, state->nkeys, sizeof(KeyEntry), KeyEntryCompare);

	groups = palloc(sizeof(Datum) * state->nkeys);
	moments = palloc(sizeof(Datum) * state->ncols);
	for (int i = 0; i < state->nkeys; i++)
	{
		Datum		values[2];
		bool		nulls[2] = {false, false};

		for (int c = 0; c < state->ncols; c++)
			moments[c] = HeapTupleGetDatum(MomentsTuple(momentsdesc, &sorted[i].cols[c]));
		values[0] = PointerGetDatum(cstring_to_text_with_len(sorted[i].key, sorted[i].len));
		values[1] = PointerGetDatum(construct_array(moments, state->ncols, momentstype,
													mlen, mbyval, malign));
		groups[i] = HeapTupleGetDatum(heap_form_tuple(groupdesc, values, nulls));
	}
	PG_RETURN_ARRAYTYPE_P(construct_array(groups, state->nkeys, grouptype, glen, gbyval, galign));
}

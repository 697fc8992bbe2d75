/*
 * predict.c
 *		brewml.classify(), classify_proba() and classify_detail(): predictions
 *		of the model deployed under a name.
 *
 *		Each backend keeps the deployed models it has used, deserialized, in
 *		a cache of its own.  Changing brewml.deployments or brewml.models fires
 *		brewml.models_changed(), which sends a relcache invalidation for that
 *		table; every backend's callback then empties its cache, at the
 *		latest when it next reads invalidations (its next transaction), and
 *		the backend that made the change at its next command.  A call site
 *		remembers its model in fn_extra while the cache's generation holds,
 *		so a prediction over many rows looks nothing up after the first.
 */
#include "postgres.h"

#include <math.h>

#include "brewml.h"
#include "forest.h"

#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/float.h"
#include "utils/inval.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"

typedef struct CachedModel
{
	struct CachedModel *next;
	MemoryContext cxt;			/* holds this entry and all it points to */
	char	   *name;
	int64		model_id;
	int32		version;
	Forest	   *forest;
	char	  **classes;		/* forest->k */
	text	  **class_texts;	/* the same, ready to return */
	char	  **features;		/* forest->p */
} CachedModel;

typedef struct CallSite
{
	uint64		generation;
	CachedModel *model;
	text	   *name;			/* the name the model was found under */
} CallSite;

static CachedModel *model_cache = NULL;
static uint64 cache_generation = 1;
static bool callback_registered = false;
static Oid	registry_relids[2] = {InvalidOid, InvalidOid};

static void
ModelCacheInvalidate(Datum arg, Oid relid)
{
	(void) arg;
	if (relid != InvalidOid && relid != registry_relids[0] && relid != registry_relids[1])
		return;
	while (model_cache != NULL)
	{
		CachedModel *m = model_cache;

		model_cache = m->next;
		MemoryContextDelete(m->cxt);
	}
	cache_generation++;
}

static void
RememberRegistry(void)
{
	Oid			nsp = get_namespace_oid("brewml", false);

	registry_relids[0] = get_relname_relid("deployments", nsp);
	registry_relids[1] = get_relname_relid("models", nsp);
	if (!callback_registered)
	{
		CacheRegisterRelcacheCallback(ModelCacheInvalidate, (Datum) 0);
		callback_registered = true;
	}
}

static char **
TextArrayStrings(Datum arr, int *n, MemoryContext cxt)
{
	Datum	   *elems;
	char	  **out;
	MemoryContext old;

	deconstruct_array(DatumGetArrayTypeP(arr), TEXTOID, -1, false, TYPALIGN_INT, &elems, NULL, n);
	old = MemoryContextSwitchTo(cxt);
	out = palloc(sizeof(char *) * Max(*n, 1));
	for (int i = 0; i < *n; i++)
		out[i] = TextDatumGetCString(elems[i]);
	MemoryContextSwitchTo(old);
	return out;
}

/* Loads the model deployed under name into the cache; NULL if none and missing_ok. */
static CachedModel *
LoadModel(const char *name, bool missing_ok)
{
	Oid			types[1] = {TEXTOID};
	Datum		args[1] = {CStringGetTextDatum(name)};
	CachedModel *m;
	MemoryContext cxt;
	MemoryContext caller;
	HeapTuple	tup;
	TupleDesc	desc;
	bool		isnull;
	int			nclasses,
				nfeatures;
	char	   *what;

	SPI_connect();
	RememberRegistry();
	if (SPI_execute_with_args("SELECT m.id, m.version, m.model, m.features, m.classes"
							  " FROM brewml.deployments d JOIN brewml.models m ON m.id = d.model_id"
							  " WHERE d.name = $1", 1, types, args, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "brewml: could not read the model registry");
	if (SPI_processed == 0)
	{
		bool		known;

		if (missing_ok)
		{
			SPI_finish();
			return NULL;
		}
		SPI_execute_with_args("SELECT 1 FROM brewml.models WHERE name = $1", 1, types, args,
							  NULL, true, 1);
		known = SPI_processed > 0;
		if (known)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("model \"%s\" is not deployed", name),
					 errhint("Deploy a version: SELECT brewml.deploy(id) FROM brewml.models WHERE name = '%s' ORDER BY version DESC LIMIT 1.",
							 name)));
		ereport(ERROR,
				(errcode(ERRCODE_NO_DATA_FOUND),
				 errmsg("no model named \"%s\"", name),
				 errhint("Train one with brewml.train('%s', ...).", name)));
	}

	cxt = AllocSetContextCreate(CacheMemoryContext, "brewml model", ALLOCSET_DEFAULT_SIZES);
	caller = MemoryContextSwitchTo(cxt);
	m = palloc0(sizeof(CachedModel));
	m->cxt = cxt;
	m->name = pstrdup(name);
	MemoryContextSwitchTo(caller);

	PG_TRY();
	{
		bytea	   *bin;

		tup = SPI_tuptable->vals[0];
		desc = SPI_tuptable->tupdesc;
		m->model_id = DatumGetInt64(SPI_getbinval(tup, desc, 1, &isnull));
		m->version = DatumGetInt32(SPI_getbinval(tup, desc, 2, &isnull));
		what = psprintf("model \"%s\" version %d (id " INT64_FORMAT ")", name, m->version, m->model_id);
		/* detoasted in SPI's context: only the forest is kept */
		bin = DatumGetByteaPP(SPI_getbinval(tup, desc, 3, &isnull));
		MemoryContextSwitchTo(cxt);
		m->forest = ForestDeserialize(bin, what);
		ForestCompile(m->forest);
		MemoryContextSwitchTo(caller);
		m->features = TextArrayStrings(SPI_getbinval(tup, desc, 4, &isnull), &nfeatures, cxt);
		m->classes = TextArrayStrings(SPI_getbinval(tup, desc, 5, &isnull), &nclasses, cxt);
		if (nfeatures != m->forest->p || nclasses != m->forest->k)
			ereport(ERROR,
					(errcode(ERRCODE_DATA_CORRUPTED),
					 errmsg("%s is corrupt: its binary has %d features and %d classes, its row %d and %d",
							what, m->forest->p, m->forest->k, nfeatures, nclasses)));
		MemoryContextSwitchTo(cxt);
		m->class_texts = palloc(sizeof(text *) * nclasses);
		for (int c = 0; c < nclasses; c++)
			m->class_texts[c] = cstring_to_text(m->classes[c]);
		MemoryContextSwitchTo(caller);
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(caller);
		MemoryContextDelete(cxt);
		PG_RE_THROW();
	}
	PG_END_TRY();
	SPI_finish();

	m->next = model_cache;
	model_cache = m;
	return m;
}

/* The model deployed under the name in argument 0, through the call site's memo. */
static CachedModel *
CallModel(FunctionCallInfo fcinfo, bool missing_ok)
{
	CallSite   *site = (CallSite *) fcinfo->flinfo->fn_extra;
	text	   *name;
	char	   *cname;
	CachedModel *m;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("model_name must not be NULL")));
	name = PG_GETARG_TEXT_PP(0);
	if (site != NULL && site->generation == cache_generation && site->model != NULL &&
		VARSIZE_ANY_EXHDR(site->name) == VARSIZE_ANY_EXHDR(name) &&
		memcmp(VARDATA_ANY(site->name), VARDATA_ANY(name), VARSIZE_ANY_EXHDR(name)) == 0)
		return site->model;

	cname = text_to_cstring(name);
	for (m = model_cache; m != NULL; m = m->next)
		if (strcmp(m->name, cname) == 0)
			break;
	if (m == NULL)
		m = LoadModel(cname, missing_ok);
	if (m == NULL)
		return NULL;

	if (site == NULL)
		site = fcinfo->flinfo->fn_extra = MemoryContextAllocZero(fcinfo->flinfo->fn_mcxt, sizeof(CallSite));
	if (site->name != NULL)
		pfree(site->name);
	site->name = MemoryContextAlloc(fcinfo->flinfo->fn_mcxt, VARSIZE_ANY(name));
	memcpy(site->name, name, VARSIZE_ANY(name));
	site->model = m;
	site->generation = cache_generation;
	return m;
}

/*
 * The features argument (1), detoasted.  Called before CallModel: detoasting
 * may read invalidations, which empty the model cache, so nothing that can
 * touch the catalogs may run between CallModel and the end of the prediction.
 */
static ArrayType *
CallFeatureArray(FunctionCallInfo fcinfo)
{
	if (PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("features must not be NULL; use NULL elements for missing values")));
	return PG_GETARG_ARRAYTYPE_P(1);
}

/* The features as the model's p doubles, NULL elements as NaN (missing). */
static const double *
CallFeatures(ArrayType *arr, const CachedModel *m)
{
	int			n;

	if (ARR_NDIM(arr) > 1)
		ereport(ERROR,
				(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
				 errmsg("features must be a one-dimensional array, not %d-dimensional", ARR_NDIM(arr))));
	n = ArrayGetNItems(ARR_NDIM(arr), ARR_DIMS(arr));
	if (n != m->forest->p)
	{
		StringInfoData names;

		initStringInfo(&names);
		for (int i = 0; i < m->forest->p; i++)
			appendStringInfo(&names, "%s%s", i > 0 ? ", " : "", m->features[i]);
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("model \"%s\" takes %d features, not %d", m->name, m->forest->p, n),
				 errdetail("Its features are, in order: %s.", names.data)));
	}
	if (!ARR_HASNULL(arr))
		return (const double *) ARR_DATA_PTR(arr);
	{
		double	   *x = palloc(sizeof(double) * n);
		Datum	   *elems;
		bool	   *nulls;

		deconstruct_array(arr, FLOAT8OID, sizeof(float8), FLOAT8PASSBYVAL, TYPALIGN_DOUBLE,
						  &elems, &nulls, &n);
		for (int i = 0; i < n; i++)
			x[i] = nulls[i] ? NAN : DatumGetFloat8(elems[i]);
		return x;
	}
}

/* brewml.classify(model_name, features): the most probable class. */
PG_FUNCTION_INFO_V1(model_classify);
Datum
model_classify(PG_FUNCTION_ARGS)
{
	ArrayType  *features = CallFeatureArray(fcinfo);
	CachedModel *m = CallModel(fcinfo, false);
	int			c = ForestClassify(m->forest, CallFeatures(features, m), NULL, !brewml_compiled_predict);
	text	   *t = m->class_texts[c];
	text	   *result = palloc(VARSIZE(t));

	memcpy(result, t, VARSIZE(t));
	PG_RETURN_TEXT_P(result);
}

/* brewml.classify_proba(model_name, features): {class: probability} for every class. */
PG_FUNCTION_INFO_V1(model_classify_proba);
Datum
model_classify_proba(PG_FUNCTION_ARGS)
{
	ArrayType  *features = CallFeatureArray(fcinfo);
	CachedModel *m = CallModel(fcinfo, false);
	double	   *probs = palloc(sizeof(double) * m->forest->k);
	StringInfoData out;

	ForestPredict(m->forest, CallFeatures(features, m), probs, !brewml_compiled_predict);
	initStringInfo(&out);
	appendStringInfoChar(&out, '{');
	for (int c = 0; c < m->forest->k; c++)
	{
		if (c > 0)
			appendStringInfoString(&out, ", ");
		escape_json(&out, m->classes[c]);
		appendStringInfo(&out, ": %s", float8out_internal(probs[c]));
	}
	appendStringInfoChar(&out, '}');
	PG_RETURN_DATUM(DirectFunctionCall1(jsonb_in, CStringGetDatum(out.data)));
}

/*
 * brewml.classify_detail(model_name, features, missing_ok): the class, its
 * probability, and the model's id and version; all NULL when missing_ok
 * and no model is deployed under the name.
 */
PG_FUNCTION_INFO_V1(model_classify_detail);
Datum
model_classify_detail(PG_FUNCTION_ARGS)
{
	bool		missing_ok = !PG_ARGISNULL(2) && PG_GETARG_BOOL(2);
	ArrayType  *features = CallFeatureArray(fcinfo);
	TupleDesc	desc;
	CachedModel *m;
	Datum		values[4];
	bool		nulls[4] = {true, true, true, true};

	if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "brewml.classify_detail must return a composite type");
	desc = BlessTupleDesc(desc);
	m = CallModel(fcinfo, missing_ok);
	if (m != NULL)
	{
		double		prob;
		int			c = ForestClassify(m->forest, CallFeatures(features, m), &prob, !brewml_compiled_predict);

		values[0] = CStringGetTextDatum(m->classes[c]);
		values[1] = Float8GetDatum(prob);
		values[2] = Int64GetDatum(m->model_id);
		values[3] = Int32GetDatum(m->version);
		memset(nulls, 0, sizeof(nulls));
	}
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(desc, values, nulls)));
}

/* Trigger brewml.models_changed(): tells every backend to drop its cached models. */
PG_FUNCTION_INFO_V1(model_registry_changed);
Datum
model_registry_changed(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;

	if (!CALLED_AS_TRIGGER(fcinfo))
		elog(ERROR, "brewml.models_changed must be called as a trigger");
	CacheInvalidateRelcacheByRelid(RelationGetRelid(trigdata->tg_relation));
	PG_RETURN_POINTER(NULL);
}

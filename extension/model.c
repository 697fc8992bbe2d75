/*
 * model.c
 *		brewml.train() and brewml.cross_validate(): read the training rows in
 *		one scan, train a random forest (forest_train.c), and store it in the
 *		model registry (brewml.models) with its parameters, classes, size,
 *		time and out-of-bag metrics.
 */
#include "postgres.h"

#include <ctype.h>
#include <limits.h>
#include <math.h>

#include "forest.h"

#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "lib/stringinfo.h"
#include "portability/instr_time.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/regproc.h"
#include "utils/varlena.h"

#define MAX_CLASSES 256
#define MAX_FEATURES 1000

/* Rows read for training: features row-major, labels as class indexes. */
typedef struct TrainingSet
{
	int			n;
	int			p;
	int			k;
	double	   *x;
	int32	   *y;
	char	  **classes;		/* k names, in class index order */
	int64		skipped;		/* rows without a label */
} TrainingSet;

/* Where the rows come from: a query in parentheses, or a quoted relation name. */
static char *
SourceClause(const char *source)
{
	const char *s = source;

	static const char *const keywords[] = {"select", "with", "values", "table"};

	while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r' || *s == '(')
		s++;
	for (size_t i = 0; i < lengthof(keywords); i++)
	{
		size_t		len = strlen(keywords[i]);
		char		next = s[len];

		/* a keyword, not the start of a name such as "selections" */
		if (pg_strncasecmp(s, keywords[i], len) == 0 &&
			!(isalnum((unsigned char) next) || next == '_' || next == '$'))
			return psprintf("(%s) AS brewml_source", source);
	}
	{
		List	   *names = stringToQualifiedNameList(source);
		RangeVar   *rv = makeRangeVarFromNameList(names);
		Oid			relid = RangeVarGetRelid(rv, AccessShareLock, false);

		return psprintf("%s.%s", quote_identifier(get_namespace_name(get_rel_namespace(relid))),
						quote_identifier(get_rel_name(relid)));
	}
}

static bool
IsNumericType(Oid t)
{
	return t == INT2OID || t == INT4OID || t == INT8OID || t == FLOAT4OID ||
		t == FLOAT8OID || t == NUMERICOID || t == BOOLOID;
}

static bool
IsClassType(Oid t)
{
	return t == TEXTOID || t == VARCHAROID || t == BPCHAROID || t == NAMEOID ||
		t == INT2OID || t == INT4OID || t == INT8OID || t == BOOLOID;
}

/*
 * Checks the label and feature columns of the source and returns the query
 * that reads them as text and float8.
 */
static char *
TrainingQuery(const char *source, const char *label, ArrayType *features, int *p,
			  char ***feature_names)
{
	char	   *from = SourceClause(source);
	Datum	   *elems;
	bool	   *nulls;
	StringInfoData cols,
				typed;
	int			ret;

	deconstruct_array(features, TEXTOID, -1, false, TYPALIGN_INT, &elems, &nulls, p);
	if (*p < 1 || *p > MAX_FEATURES)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("a model takes 1 to %d feature columns, not %d", MAX_FEATURES, *p)));
	*feature_names = palloc(sizeof(char *) * *p);
	initStringInfo(&cols);
	initStringInfo(&typed);
	appendStringInfo(&cols, "%s", quote_identifier(label));
	appendStringInfo(&typed, "(%s)::text", quote_identifier(label));
	for (int i = 0; i < *p; i++)
	{
		if (nulls[i])
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("feature column %d is NULL", i + 1)));
		(*feature_names)[i] = TextDatumGetCString(elems[i]);
		appendStringInfo(&cols, ", %s", quote_identifier((*feature_names)[i]));
	}

	ret = SPI_execute(psprintf("SELECT %s FROM %s LIMIT 0", cols.data, from), true, 0);
	if (ret != SPI_OK_SELECT)
		elog(ERROR, "brewml: could not read the source: %s", SPI_result_code_string(ret));
	if (!IsClassType(SPI_gettypeid(SPI_tuptable->tupdesc, 1)))
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("label column \"%s\" is of type %s, which is not a class", label,
						format_type_be(SPI_gettypeid(SPI_tuptable->tupdesc, 1))),
				 errhint("Labels are text, integer or boolean classes; bin a numeric target "
						 "first, as brewml.ibu_class(ibu) does.")));
	for (int i = 0; i < *p; i++)
	{
		Oid			t = SPI_gettypeid(SPI_tuptable->tupdesc, i + 2);

		if (!IsNumericType(t))
			ereport(ERROR,
					(errcode(ERRCODE_DATATYPE_MISMATCH),
					 errmsg("feature column \"%s\" is of type %s, not a number", (*feature_names)[i],
							format_type_be(t))));
		/* boolean has no cast to float8, but one to integer */
		appendStringInfo(&typed, t == BOOLOID ? ", (%s)::int::float8" : ", (%s)::float8",
						 quote_identifier((*feature_names)[i]));
	}
	return psprintf("SELECT %s FROM %s", typed.data, from);
}

/* Class index of a label; classes are added as they appear unless fixed. */
static int
ClassIndex(TrainingSet *ts, const char *label, bool fixed)
{
	for (int c = 0; c < ts->k; c++)
		if (strcmp(ts->classes[c], label) == 0)
			return c;
	if (fixed)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("label \"%s\" is not one of the classes given in params", label)));
	if (ts->k >= MAX_CLASSES)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("the label has more than %d distinct values", MAX_CLASSES),
				 errhint("A label is a class; bin a numeric target first.")));
	ts->classes[ts->k] = pstrdup(label);
	return ts->k++;
}

static int
CompareClassNames(const void *a, const void *b)
{
	return strcmp(*(char *const *) a, *(char *const *) b);
}

/*
 * Reads every row of the query in one pass through a cursor, in batches.
 * classes, when given, fixes the classes and their order; otherwise they
 * are the distinct labels in byte order.
 */
static void
ReadTrainingSet(const char *query, int p, char **classes, int nclasses, TrainingSet *ts)
{
	Portal		portal;
	SPIPlanPtr	plan = SPI_prepare(query, 0, NULL);
	int			cap = 1024;
	MemoryContext cxt = CurrentMemoryContext;

	if (plan == NULL)
		elog(ERROR, "brewml: could not prepare the training query: %s",
			 SPI_result_code_string(SPI_result));
	memset(ts, 0, sizeof(*ts));
	ts->p = p;
	ts->classes = palloc(sizeof(char *) * MAX_CLASSES);
	for (int c = 0; c < nclasses; c++)
		ts->classes[ts->k++] = classes[c];
	ts->x = palloc_extended(sizeof(double) * cap * p, MCXT_ALLOC_HUGE);
	ts->y = palloc_extended(sizeof(int32) * cap, MCXT_ALLOC_HUGE);

	portal = SPI_cursor_open(NULL, plan, NULL, NULL, true);
	for (;;)
	{
		SPI_cursor_fetch(portal, true, 10000);
		if (SPI_processed == 0)
			break;
		MemoryContextSwitchTo(cxt);
		for (uint64 r = 0; r < SPI_processed; r++)
		{
			HeapTuple	tup = SPI_tuptable->vals[r];
			TupleDesc	desc = SPI_tuptable->tupdesc;
			bool		isnull;
			Datum		d = SPI_getbinval(tup, desc, 1, &isnull);

			if (isnull)
			{
				ts->skipped++;
				continue;
			}
			if (ts->n == cap)
			{
				if (cap >= INT_MAX / 2)
					ereport(ERROR,
							(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
							 errmsg("more than %d training rows", INT_MAX / 2)));
				cap *= 2;
				ts->x = repalloc_huge(ts->x, sizeof(double) * cap * p);
				ts->y = repalloc_huge(ts->y, sizeof(int32) * cap);
			}
			{
				char	   *name = TextDatumGetCString(d);

				ts->y[ts->n] = ClassIndex(ts, name, nclasses > 0);
				pfree(name);
			}
			for (int f = 0; f < p; f++)
			{
				double		v;

				d = SPI_getbinval(tup, desc, f + 2, &isnull);
				v = isnull ? NAN : DatumGetFloat8(d);
				if (isinf(v))
					ereport(ERROR,
							(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
							 errmsg("feature \"%s\" is infinite in training row %d",
									NameStr(TupleDescAttr(desc, f + 1)->attname), ts->n + 1),
							 errhint("Use NULL (or NaN) for a missing value.")));
				ts->x[(size_t) ts->n * p + f] = v;
			}
			ts->n++;
		}
		SPI_freetuptable(SPI_tuptable);
	}
	SPI_cursor_close(portal);

	if (ts->n < 2)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%d training rows with a label, at least 2 are needed", ts->n)));
	if (nclasses == 0)
	{
		/* Classes in byte order, so that a model does not depend on row order. */
		char	  **sorted = palloc(sizeof(char *) * ts->k);
		int		   *remap = palloc(sizeof(int) * ts->k);

		memcpy(sorted, ts->classes, sizeof(char *) * ts->k);
		qsort(sorted, ts->k, sizeof(char *), CompareClassNames);
		for (int c = 0; c < ts->k; c++)
			for (int j = 0; j < ts->k; j++)
				if (ts->classes[c] == sorted[j])
					remap[c] = j;
		for (int i = 0; i < ts->n; i++)
			ts->y[i] = remap[ts->y[i]];
		ts->classes = sorted;
	}
}

/* An integer parameter from params, within [lo, hi]. */
static int
ParamInt(JsonbValue *v, const char *key, int lo, int hi)
{
	double		d;

	if (v->type != jbvNumeric)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("parameter \"%s\" must be a number", key)));
	d = DatumGetFloat8(DirectFunctionCall1(numeric_float8, NumericGetDatum(v->val.numeric)));
	if (d != floor(d) || d < lo || d > hi)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("parameter \"%s\" must be a whole number from %d to %d", key, lo, hi)));
	return (int) d;
}

/*
 * Reads params over the defaults.  Keys: n_trees, max_depth (0 or null:
 * unlimited), min_samples_split, min_samples_leaf, max_features (a number,
 * "sqrt", "log2" or "all"), max_bins, bootstrap, class_weight ("balanced" or
 * null), seed, oob_rows, classes (an array fixing the classes and their order).
 */
static void
ReadParams(Jsonb *params, int p, ForestParams *fp, char ***classes, int *nclasses)
{
	JsonbIterator *it;
	JsonbValue	v;
	JsonbIteratorToken tok;
	char	   *key = NULL;

	ForestDefaultParams(fp, p);
	*classes = NULL;
	*nclasses = 0;
	if (params == NULL)
		return;
	if (!JB_ROOT_IS_OBJECT(params))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("params must be a JSON object")));
	it = JsonbIteratorInit(&params->root);
	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		if (tok == WJB_KEY)
		{
			key = pnstrdup(v.val.string.val, v.val.string.len);
			continue;
		}
		if (tok != WJB_VALUE)
			continue;
		if (strcmp(key, "classes") == 0)
		{
			JsonbIterator *ait;
			JsonbValue	e;

			if (v.type != jbvBinary || !JsonContainerIsArray(v.val.binary.data))
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("parameter \"classes\" must be an array of strings")));
			*classes = palloc(sizeof(char *) * MAX_CLASSES);
			ait = JsonbIteratorInit(v.val.binary.data);
			while ((tok = JsonbIteratorNext(&ait, &e, true)) != WJB_DONE)
			{
				if (tok != WJB_ELEM)
					continue;
				if (e.type != jbvString || *nclasses >= MAX_CLASSES)
					ereport(ERROR,
							(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
							 errmsg("parameter \"classes\" must be an array of at most %d strings",
									MAX_CLASSES)));
				for (int c = 0; c < *nclasses; c++)
					if (strlen((*classes)[c]) == (size_t) e.val.string.len &&
						strncmp((*classes)[c], e.val.string.val, e.val.string.len) == 0)
						ereport(ERROR,
								(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
								 errmsg("parameter \"classes\" names class \"%s\" twice", (*classes)[c])));
				(*classes)[(*nclasses)++] = pnstrdup(e.val.string.val, e.val.string.len);
			}
			continue;
		}
		if (v.type == jbvBinary)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("parameter \"%s\" must be a scalar", key)));
		if (strcmp(key, "n_trees") == 0)
			fp->n_trees = ParamInt(&v, key, 1, 10000);
		else if (strcmp(key, "max_depth") == 0)
			fp->max_depth = v.type == jbvNull ? 0 : ParamInt(&v, key, 0, 1000);
		else if (strcmp(key, "min_samples_split") == 0)
			fp->min_samples_split = ParamInt(&v, key, 2, INT_MAX);
		else if (strcmp(key, "min_samples_leaf") == 0)
			fp->min_samples_leaf = ParamInt(&v, key, 1, INT_MAX);
		else if (strcmp(key, "max_bins") == 0)
			fp->max_bins = ParamInt(&v, key, 2, 255);
		else if (strcmp(key, "seed") == 0)
			fp->seed = (uint64) ParamInt(&v, key, 0, INT_MAX);
		else if (strcmp(key, "oob_rows") == 0)
			fp->oob_rows = ParamInt(&v, key, 0, INT_MAX);
		else if (strcmp(key, "bootstrap") == 0 && v.type == jbvBool)
			fp->bootstrap = v.val.boolean;
		else if (strcmp(key, "class_weight") == 0 &&
				 (v.type == jbvNull || (v.type == jbvString && v.val.string.len == 8 &&
										strncmp(v.val.string.val, "balanced", 8) == 0)))
			fp->balanced = v.type == jbvString;
		else if (strcmp(key, "max_features") == 0 && v.type == jbvString)
		{
			char	   *s = pnstrdup(v.val.string.val, v.val.string.len);

			if (strcmp(s, "sqrt") == 0)
				fp->max_features = Max(1, (int) floor(sqrt((double) p)));
			else if (strcmp(s, "log2") == 0)
				fp->max_features = Max(1, (int) floor(log2((double) p)));
			else if (strcmp(s, "all") == 0)
				fp->max_features = p;
			else
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("parameter \"max_features\" must be a number, \"sqrt\", \"log2\" or \"all\"")));
		}
		else if (strcmp(key, "max_features") == 0)
			fp->max_features = ParamInt(&v, key, 1, p);
		else
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("unknown or ill-typed parameter \"%s\"", key),
					 errhint("Parameters: n_trees, max_depth, min_samples_split, min_samples_leaf, "
							 "max_features, max_bins, bootstrap, class_weight, seed, oob_rows, classes.")));
	}
}

/* The parameters in force, as stored with the model. */
static char *
ParamsJson(const ForestParams *fp)
{
	return psprintf("{\"n_trees\": %d, \"max_depth\": %s, \"min_samples_split\": %d, "
					"\"min_samples_leaf\": %d, \"max_features\": %d, \"max_bins\": %d, "
					"\"bootstrap\": %s, \"class_weight\": %s, \"seed\": " UINT64_FORMAT
					", \"oob_rows\": %d}",
					fp->n_trees, fp->max_depth > 0 ? psprintf("%d", fp->max_depth) : "null",
					fp->min_samples_split, fp->min_samples_leaf, fp->max_features, fp->max_bins,
					fp->bootstrap ? "true" : "false", fp->balanced ? "\"balanced\"" : "null",
					fp->seed, fp->oob_rows);
}

static Datum
TextArray(char **items, int n)
{
	Datum	   *d = palloc(sizeof(Datum) * Max(n, 1));

	for (int i = 0; i < n; i++)
		d[i] = CStringGetTextDatum(items[i]);
	return PointerGetDatum(construct_array(d, n, TEXTOID, -1, false, TYPALIGN_INT));
}

/* brewml.train(name, source, label, features, params): train and register a model; returns its id. */
PG_FUNCTION_INFO_V1(model_train);
Datum
model_train(PG_FUNCTION_ARGS)
{
	char	   *name,
			   *source,
			   *label,
			  **feature_names,
			  **classes,
			   *query;
	int			p,
				nclasses;
	ForestParams fp;
	TrainingSet ts;
	ForestData fd;
	Forest	   *forest;
	instr_time	start,
				elapsed;
	StringInfoData metrics;
	Oid			types[12] = {TEXTOID, TEXTOID, TEXTOID, TEXTARRAYOID, TEXTARRAYOID, TEXTOID,
	INT8OID, INT8OID, FLOAT8OID, TEXTOID, BYTEAOID, TEXTOID};
	Datum		args[12];
	char		nulls[12] = "            ";
	bool		isnull;
	int64		id;

	for (int i = 0; i < 4; i++)
		if (PG_ARGISNULL(i))
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("brewml.train: %s must not be NULL",
							(const char *[]) {"model_name", "source", "label", "features"}[i])));
	name = text_to_cstring(PG_GETARG_TEXT_PP(0));
	source = text_to_cstring(PG_GETARG_TEXT_PP(1));
	label = text_to_cstring(PG_GETARG_TEXT_PP(2));
	if (name[0] == '\0' || strlen(name) > 63)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("a model name is 1 to 63 bytes long")));

	SPI_connect();
	query = TrainingQuery(source, label, PG_GETARG_ARRAYTYPE_P(3), &p, &feature_names);
	ReadParams(PG_ARGISNULL(4) ? NULL : PG_GETARG_JSONB_P(4), p, &fp, &classes, &nclasses);
	ReadTrainingSet(query, p, classes, nclasses, &ts);
	if (ts.k < 2)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("every training row has the same label \"%s\": nothing to classify",
						ts.classes[0])));

	fd = (ForestData) {ts.n, ts.p, ts.k, ts.x, ts.y};
	INSTR_TIME_SET_CURRENT(start);
	forest = ForestTrain(&fd, &fp);
	INSTR_TIME_SET_CURRENT(elapsed);
	INSTR_TIME_SUBTRACT(elapsed, start);

	initStringInfo(&metrics);
	if (forest->oob_confusion != NULL && forest->oob_evaluated > 0)
		ForestMetricsJson(&metrics, forest->oob_confusion, ts.k, (const char *const *) ts.classes,
						  "out_of_bag");
	else
		appendStringInfoString(&metrics, "{\"method\": \"none\"}");

	args[0] = CStringGetTextDatum(name);
	args[1] = CStringGetTextDatum(ParamsJson(&fp));
	args[2] = CStringGetTextDatum(label);
	args[3] = TextArray(feature_names, p);
	args[4] = TextArray(ts.classes, ts.k);
	args[5] = CStringGetTextDatum(source);
	args[6] = Int64GetDatum(ts.n);
	args[7] = Int64GetDatum(ts.skipped);
	args[8] = Float8GetDatum(INSTR_TIME_GET_DOUBLE(elapsed));
	args[9] = CStringGetTextDatum(metrics.data);
	args[10] = PointerGetDatum(ForestSerialize(forest));
	args[11] = CStringGetTextDatum("random_forest");
	if (SPI_execute_with_args("SELECT brewml.register_model($1, $12, $2::jsonb, $3, $4, $5, $6, $7, $8, $9, $10::jsonb, $11)",
							  12, types, args, nulls, false, 1) != SPI_OK_SELECT)
		elog(ERROR, "brewml.train: could not register the model");
	id = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	SPI_finish();
	PG_RETURN_INT64(id);
}

/* Stratified folds: each class's rows shuffled, then dealt round the folds. */
static void
StratifiedFolds(const TrainingSet *ts, int folds, uint64 seed, int *fold_of)
{
	int		   *order = palloc(sizeof(int) * ts->n);
	int			next = 0;
	uint64		state = seed;

	for (int c = 0; c < ts->k; c++)
	{
		int			m = 0;

		for (int i = 0; i < ts->n; i++)
			if (ts->y[i] == c)
				order[m++] = i;
		for (int i = m - 1; i > 0; i--)
		{
			uint64		z = (state += UINT64CONST(0x9e3779b97f4a7c15));
			int			j;
			int			t;

			z = (z ^ (z >> 30)) * UINT64CONST(0xbf58476d1ce4e5b9);
			z = (z ^ (z >> 27)) * UINT64CONST(0x94d049bb133111eb);
			z ^= z >> 31;
			j = (int) (z % (uint64) (i + 1));
			t = order[i];
			order[i] = order[j];
			order[j] = t;
		}
		for (int i = 0; i < m; i++)
			fold_of[order[i]] = next++ % folds;
	}
	pfree(order);
}

/*
 * brewml.cross_validate(source, label, features, params, folds, repeats, seed):
 * repeated stratified k-fold; mean and standard deviation of accuracy and macro-F1.
 */
PG_FUNCTION_INFO_V1(model_cross_validate);
Datum
model_cross_validate(PG_FUNCTION_ARGS)
{
	char	   *source,
			   *label,
			  **feature_names,
			  **classes,
			   *query;
	int			p,
				nclasses,
				folds,
				repeats,
				runs = 0;
	int64		seed;
	ForestParams fp;
	TrainingSet ts;
	int		   *fold_of;
	int64	   *total_confusion;
	double		acc_sum = 0,
				acc_sq = 0,
				f1_sum = 0,
				f1_sq = 0;
	StringInfoData metrics;
	TupleDesc	desc;
	Datum		values[6];
	bool		nulls[6] = {0};
	MemoryContext callcxt,
				old;

	for (int i = 0; i < 3; i++)
		if (PG_ARGISNULL(i))
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("brewml.cross_validate: %s must not be NULL",
							(const char *[]) {"source", "label", "features"}[i])));
	source = text_to_cstring(PG_GETARG_TEXT_PP(0));
	label = text_to_cstring(PG_GETARG_TEXT_PP(1));
	folds = PG_ARGISNULL(4) ? 5 : PG_GETARG_INT32(4);
	repeats = PG_ARGISNULL(5) ? 5 : PG_GETARG_INT32(5);
	seed = PG_ARGISNULL(6) ? 0 : PG_GETARG_INT64(6);
	if (folds < 2 || folds > 100 || repeats < 1 || repeats > 100)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("folds must be 2 to 100 and repeats 1 to 100, not %d and %d", folds, repeats)));
	if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "brewml.cross_validate must return a composite type");

	callcxt = CurrentMemoryContext;
	SPI_connect();
	query = TrainingQuery(source, label, PG_GETARG_ARRAYTYPE_P(2), &p, &feature_names);
	ReadParams(PG_ARGISNULL(3) ? NULL : PG_GETARG_JSONB_P(3), p, &fp, &classes, &nclasses);
	fp.oob_rows = 0;
	ReadTrainingSet(query, p, classes, nclasses, &ts);
	if (ts.n < folds)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%d rows cannot be cut into %d folds", ts.n, folds)));

	fold_of = palloc(sizeof(int) * ts.n);
	total_confusion = palloc0(sizeof(int64) * ts.k * ts.k);
	for (int r = 0; r < repeats; r++)
	{
		StratifiedFolds(&ts, folds, (uint64) seed * 1000003 + r, fold_of);
		for (int f = 0; f < folds; f++)
		{
			MemoryContext fold_cxt = AllocSetContextCreate(CurrentMemoryContext, "brewml fold",
														   ALLOCSET_DEFAULT_SIZES);
			MemoryContext old = MemoryContextSwitchTo(fold_cxt);
			double	   *x = palloc(sizeof(double) * ts.n * p);
			int32	   *y = palloc(sizeof(int32) * ts.n);
			int64	   *confusion = palloc0(sizeof(int64) * ts.k * ts.k);
			int			m = 0;
			ForestData	fd;
			Forest	   *forest;
			ForestScores sc;

			for (int i = 0; i < ts.n; i++)
				if (fold_of[i] != f)
				{
					memcpy(&x[(size_t) m * p], &ts.x[(size_t) i * p], sizeof(double) * p);
					y[m++] = ts.y[i];
				}
			fd = (ForestData) {m, p, ts.k, x, y};
			forest = ForestTrain(&fd, &fp);
			for (int i = 0; i < ts.n; i++)
				if (fold_of[i] == f)
				{
					int			c = ForestClassify(forest, &ts.x[(size_t) i * p], NULL, true);

					confusion[ts.y[i] * ts.k + c]++;
					total_confusion[ts.y[i] * ts.k + c]++;
				}
			sc = ForestScore(confusion, ts.k);
			acc_sum += sc.accuracy;
			acc_sq += sc.accuracy * sc.accuracy;
			f1_sum += sc.macro_f1;
			f1_sq += sc.macro_f1 * sc.macro_f1;
			runs++;
			MemoryContextSwitchTo(old);
			MemoryContextDelete(fold_cxt);
		}
	}
	/* the result must outlive SPI_finish, which frees everything allocated since SPI_connect */
	old = MemoryContextSwitchTo(callcxt);
	initStringInfo(&metrics);
	ForestMetricsJson(&metrics, total_confusion, ts.k, (const char *const *) ts.classes,
					  "cross_validation");
	MemoryContextSwitchTo(old);
	SPI_finish();

	values[0] = Int32GetDatum(runs);
	values[1] = Float8GetDatum(acc_sum / runs);
	values[2] = Float8GetDatum(sqrt(Max(0.0, acc_sq / runs - (acc_sum / runs) * (acc_sum / runs))));
	values[3] = Float8GetDatum(f1_sum / runs);
	values[4] = Float8GetDatum(sqrt(Max(0.0, f1_sq / runs - (f1_sum / runs) * (f1_sum / runs))));
	values[5] = DirectFunctionCall1(jsonb_in, CStringGetDatum(metrics.data));
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(desc), values, nulls)));
}

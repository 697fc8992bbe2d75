/*
 * scores.c
 *		brewml.load_scores(): one chunk of a JSON Lines file of batch model
 *		scores ({"pk": "123", "score": "100"}) into brewml.scores, in one
 *		transaction.  Each line is checked on its own: an object with "pk"
 *		(string or number) and "score" (a string or number holding a finite
 *		decimal number); other keys are ignored.  Good lines are upserted in
 *		bulk (one statement over arrays), bad ones go to brewml.score_rejects
 *		with their line number and reason.  A chunk already committed (same
 *		batch and sequence number) is recognised and not applied again.
 *
 *		Lines of the usual shape (no escapes) are read by a small scanner;
 *		anything else goes through PostgreSQL's JSON parser, which decides.
 */
#include "postgres.h"

#include "brewml.h"

#include "catalog/pg_type.h"
#include "common/jsonapi.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "mb/pg_wchar.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/numeric.h"

/*
 * Longest pk accepted, in bytes; largest decimal exponent and longest text of
 * a score (within numeric's limits, so that converting it cannot fail); the
 * deepest nesting of a line handed to the JSON parser (which would otherwise
 * stop the whole chunk at the stack depth limit).
 */
#define SCORE_PK_MAX 256
#define SCORE_EXPONENT_MAX 1000
#define SCORE_TEXT_MAX 1000
#define LINE_DEPTH_MAX 64

/* A field value as read: where it is, and whether it was a JSON string. */
typedef struct FieldValue
{
	char	   *text;			/* de-escaped string, or the number's text */
	int			len;
	JsonTokenType type;			/* JSON_TOKEN_INVALID if the key is absent */
} FieldValue;

typedef struct ScoreLine
{
	FieldValue	pk;
	FieldValue	score;
} ScoreLine;

/* State of the JSON parser's callbacks: the two fields at depth 1. */
typedef struct ParseState
{
	int			depth;
	FieldValue *want;			/* the field being read, or NULL */
	ScoreLine  *line;
	bool		not_object;
} ParseState;

static void
ParseObjectStart(void *state)
{
	((ParseState *) state)->depth++;
}

static void
ParseObjectEnd(void *state)
{
	((ParseState *) state)->depth--;
}

static void
ParseArrayStart(void *state)
{
	ParseState *ps = state;

	if (ps->depth == 0)
		ps->not_object = true;
	ps->depth++;
}

static void
ParseFieldStart(void *state, char *fname, bool isnull)
{
	ParseState *ps = state;

	(void) isnull;
	ps->want = NULL;
	if (ps->depth != 1)
		return;
	if (strcmp(fname, "pk") == 0)
		ps->want = &ps->line->pk;
	else if (strcmp(fname, "score") == 0)
		ps->want = &ps->line->score;
	if (ps->want != NULL)
		ps->want->type = JSON_TOKEN_NULL;	/* present; a nested value stays "not a scalar" */
}

static void
ParseScalar(void *state, char *token, JsonTokenType type)
{
	ParseState *ps = state;

	if (ps->depth == 0)
		ps->not_object = true;
	if (ps->depth != 1 || ps->want == NULL)
		return;
	ps->want->text = token;
	ps->want->len = strlen(token);
	ps->want->type = type;
	ps->want = NULL;
}

/* Whether s[0..len) is a JSON number: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)? */
static bool
IsJsonNumber(const char *s, int len, int *exponent)
{
	int			i = 0;
	int			digits;

	*exponent = 0;
	if (i < len && s[i] == '-')
		i++;
	if (i < len && s[i] == '0')
		i++;
	else if (i < len && s[i] >= '1' && s[i] <= '9')
		while (i < len && s[i] >= '0' && s[i] <= '9')
			i++;
	else
		return false;
	if (i < len && s[i] == '.')
	{
		for (i++, digits = 0; i < len && s[i] >= '0' && s[i] <= '9'; i++)
			digits++;
		if (digits == 0)
			return false;
	}
	if (i < len && (s[i] == 'e' || s[i] == 'E'))
	{
		bool		neg = false;

		i++;
		if (i < len && (s[i] == '+' || s[i] == '-'))
			neg = s[i++] == '-';
		for (digits = 0; i < len && s[i] >= '0' && s[i] <= '9'; i++, digits++)
			if (*exponent <= SCORE_EXPONENT_MAX)
				*exponent = *exponent * 10 + (s[i] - '0');
		if (digits == 0)
			return false;
		if (neg)
			*exponent = -*exponent;
	}
	return i == len;
}

/*
 * The usual shape, read without allocating: an object whose keys and string
 * values have no backslash, with string or number values.  Returns false
 * when the line is anything else (the JSON parser then decides); the line is
 * valid UTF-8 already.  Fields point into the line.
 */
static bool
ScanSimple(char *s, int len, ScoreLine *out)
{
	int			i = 0;

#define SKIP_WS() while (i < len && (s[i] == ' ' || s[i] == '\t' || s[i] == '\r' || s[i] == '\n')) i++
	SKIP_WS();
	if (i >= len || s[i++] != '{')
		return false;
	SKIP_WS();
	if (i < len && s[i] == '}')
	{
		i++;
		SKIP_WS();
		return i == len;
	}
	for (;;)
	{
		int			kstart,
					klen;
		FieldValue	v;
		FieldValue *dest = NULL;

		if (i >= len || s[i++] != '"')
			return false;
		kstart = i;
		while (i < len && s[i] != '"' && s[i] != '\\' && (unsigned char) s[i] >= 0x20)
			i++;
		if (i >= len || s[i] != '"')
			return false;
		klen = i++ - kstart;
		SKIP_WS();
		if (i >= len || s[i++] != ':')
			return false;
		SKIP_WS();
		if (i < len && s[i] == '"')
		{
			v.text = &s[++i];
			while (i < len && s[i] != '"' && s[i] != '\\' && (unsigned char) s[i] >= 0x20)
				i++;
			if (i >= len || s[i] != '"')
				return false;
			v.len = &s[i++] - v.text;
			v.type = JSON_TOKEN_STRING;
		}
		else if (i < len && (s[i] == '-' || (s[i] >= '0' && s[i] <= '9')))
		{
			int			exponent;

			v.text = &s[i];
			while (i < len && s[i] != ',' && s[i] != '}' && s[i] != ' ' && s[i] != '\t' && s[i] != '\r')
				i++;
			v.len = &s[i] - v.text;
			v.type = JSON_TOKEN_NUMBER;
			if (!IsJsonNumber(v.text, v.len, &exponent))
				return false;
		}
		else
			return false;		/* true, false, null, nested: the parser decides */
		if (klen == 2 && memcmp(&s[kstart], "pk", 2) == 0)
			dest = &out->pk;
		else if (klen == 5 && memcmp(&s[kstart], "score", 5) == 0)
			dest = &out->score;
		if (dest != NULL)
			*dest = v;
		SKIP_WS();
		if (i < len && s[i] == ',')
		{
			i++;
			SKIP_WS();
			continue;
		}
		if (i < len && s[i] == '}')
		{
			i++;
			SKIP_WS();
			return i == len;
		}
		return false;
	}
#undef SKIP_WS
}

/* Whether the line nests objects or arrays deeper than LINE_DEPTH_MAX (outside strings). */
static bool
TooDeep(const char *s, int len)
{
	int			depth = 0;
	bool		in_string = false;

	for (int i = 0; i < len; i++)
	{
		if (in_string)
		{
			if (s[i] == '\\')
				i++;
			else if (s[i] == '"')
				in_string = false;
		}
		else if (s[i] == '"')
			in_string = true;
		else if (s[i] == '{' || s[i] == '[')
		{
			if (++depth > LINE_DEPTH_MAX)
				return true;
		}
		else if (s[i] == '}' || s[i] == ']')
			depth--;
	}
	return false;
}

/* Reads one line's fields; NULL if good, else why not. */
static const char *
ParseLine(char *s, int len, ScoreLine *out)
{
	JsonLexContext *lex;
	JsonSemAction sem;
	ParseState	ps;
	JsonParseErrorType err;
	int			exponent;

	memset(out, 0, sizeof(ScoreLine));
	if (len == 0)
		return "empty line";
	if (!pg_verify_mbstr(PG_UTF8, s, len, true))
		return "not valid UTF-8";
	if (!ScanSimple(s, len, out))
	{
		if (TooDeep(s, len))
			return psprintf("nested deeper than %d levels", LINE_DEPTH_MAX);
		memset(out, 0, sizeof(ScoreLine));
		memset(&sem, 0, sizeof(sem));
		memset(&ps, 0, sizeof(ps));
		ps.line = out;
		sem.semstate = &ps;
		sem.object_start = ParseObjectStart;
		sem.object_end = ParseObjectEnd;
		sem.array_start = ParseArrayStart;
		sem.array_end = ParseObjectEnd;
		sem.object_field_start = ParseFieldStart;
		sem.scalar = ParseScalar;
		lex = makeJsonLexContextCstringLen(s, len, PG_UTF8, true);
		err = pg_parse_json(lex, &sem);
		if (err != JSON_SUCCESS)
			return psprintf("not JSON: %s", json_errdetail(err, lex));
		if (ps.not_object)
			return "not a JSON object";
	}
	if (out->pk.type == JSON_TOKEN_INVALID)
		return "no \"pk\"";
	if (out->pk.type != JSON_TOKEN_STRING && out->pk.type != JSON_TOKEN_NUMBER)
		return "\"pk\" is not a string or a number";
	if (out->pk.len == 0 || out->pk.len > SCORE_PK_MAX)
		return psprintf("\"pk\" must be 1 to %d bytes", SCORE_PK_MAX);
	if (memchr(out->pk.text, '\0', out->pk.len) != NULL)
		return "\"pk\" holds a NUL character";
	if (out->score.type == JSON_TOKEN_INVALID)
		return "no \"score\"";
	if (out->score.type != JSON_TOKEN_STRING && out->score.type != JSON_TOKEN_NUMBER)
		return "\"score\" is not a string or a number";
	if (out->score.len > SCORE_TEXT_MAX)
		return psprintf("\"score\" is longer than %d characters", SCORE_TEXT_MAX);
	if (!IsJsonNumber(out->score.text, out->score.len, &exponent))
		return "\"score\" is not a number";
	if (exponent > SCORE_EXPONENT_MAX || exponent < -SCORE_EXPONENT_MAX)
		return "\"score\" is out of range";
	return NULL;
}

/* A good line, kept for the bulk insert. */
typedef struct GoodLine
{
	char	   *pk;
	int			pk_len;
	char	   *score;			/* NUL-terminated */
	int64		line;
} GoodLine;

static int
CompareGood(const void *a, const void *b)
{
	const GoodLine *x = a;
	const GoodLine *y = b;
	int			c = memcmp(x->pk, y->pk, Min(x->pk_len, y->pk_len));

	if (c != 0)
		return c;
	if (x->pk_len != y->pk_len)
		return x->pk_len < y->pk_len ? -1 : 1;
	return (x->line > y->line) - (x->line < y->line);
}

static SPIPlanPtr
Prepare(SPIPlanPtr *slot, const char *sql, int nargs, Oid *types)
{
	if (*slot == NULL)
	{
		SPIPlanPtr	plan = SPI_prepare(sql, nargs, types);

		if (plan == NULL || SPI_keepplan(plan) != 0)
			elog(ERROR, "SPI_prepare failed: %s", SPI_result_code_string(SPI_result));
		*slot = plan;
	}
	return *slot;
}

static SPIPlanPtr claim_plan,
			counts_plan,
			upsert_plan,
			reject_plan,
			done_plan,
			batch_plan;

/* Stores the chunk's good lines (the last of each pk) and its rejects. */
static void
StoreLines(Datum model, int64 batch, GoodLine *good, int n_good,
		   Datum *rej_lines, Datum *rej_bytes, Datum *rej_reasons, int n_rej)
{
	Datum	   *pks = palloc(sizeof(Datum) * Max(n_good, 1));
	Datum	   *scores = palloc(sizeof(Datum) * Max(n_good, 1));
	Datum	   *lines = palloc(sizeof(Datum) * Max(n_good, 1));
	int			n = 0;

	/* one row per pk (an upsert may not touch a row twice): the last line wins */
	qsort(good, n_good, sizeof(GoodLine), CompareGood);
	for (int i = 0; i < n_good; i++)
	{
		if (i + 1 < n_good && good[i].pk_len == good[i + 1].pk_len &&
			memcmp(good[i].pk, good[i + 1].pk, good[i].pk_len) == 0)
			continue;
		pks[n] = PointerGetDatum(cstring_to_text_with_len(good[i].pk, good[i].pk_len));
		scores[n] = DirectFunctionCall3(numeric_in, CStringGetDatum(good[i].score),
										ObjectIdGetDatum(InvalidOid), Int32GetDatum(-1));
		lines[n] = Int64GetDatum(good[i].line);
		n++;
	}
	if (n > 0)
	{
		Oid			types[5] = {TEXTOID, INT8OID, TEXTARRAYOID, NUMERICARRAYOID, INT8ARRAYOID};
		Datum		args[5];

		args[0] = model;
		args[1] = Int64GetDatum(batch);
		args[2] = PointerGetDatum(construct_array(pks, n, TEXTOID, -1, false, TYPALIGN_INT));
		args[3] = PointerGetDatum(construct_array(scores, n, NUMERICOID, -1, false, TYPALIGN_INT));
		args[4] = PointerGetDatum(construct_array(lines, n, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
		if (SPI_execute_plan(Prepare(&upsert_plan,
									 "INSERT INTO brewml.scores AS s (model, pk, score, batch_id, line, loaded_at)"
									 " SELECT $1, u.pk, u.score, $2, u.line, now()"
									 " FROM unnest($3, $4, $5) AS u(pk, score, line)"
									 " ON CONFLICT (model, pk) DO UPDATE SET score = EXCLUDED.score,"
									 " batch_id = EXCLUDED.batch_id, line = EXCLUDED.line, loaded_at = EXCLUDED.loaded_at"
									 " WHERE (s.batch_id, s.line) < (EXCLUDED.batch_id, EXCLUDED.line)",
									 5, types), args, NULL, false, 0) != SPI_OK_INSERT)
			elog(ERROR, "inserting scores failed");
	}
	if (n_rej > 0)
	{
		Oid			types[4] = {INT8OID, INT8ARRAYOID, BYTEAARRAYOID, TEXTARRAYOID};
		Datum		args[4];

		args[0] = Int64GetDatum(batch);
		args[1] = PointerGetDatum(construct_array(rej_lines, n_rej, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
		args[2] = PointerGetDatum(construct_array(rej_bytes, n_rej, BYTEAOID, -1, false, TYPALIGN_INT));
		args[3] = PointerGetDatum(construct_array(rej_reasons, n_rej, TEXTOID, -1, false, TYPALIGN_INT));
		if (SPI_execute_plan(Prepare(&reject_plan,
									 "INSERT INTO brewml.score_rejects (batch_id, line_number, line, reason)"
									 " SELECT $1, u.n, u.l, u.r FROM unnest($2, $3, $4) AS u(n, l, r)"
									 " ON CONFLICT DO NOTHING",
									 4, types), args, NULL, false, 0) != SPI_OK_INSERT)
			elog(ERROR, "inserting rejects failed");
	}
}

/* brewml.load_scores(batch_id, seq, first_line, chunk): load one chunk of lines. */
PG_FUNCTION_INFO_V1(load_scores);
Datum
load_scores(PG_FUNCTION_ARGS)
{
	int64		batch;
	int32		seq;
	int64		first_line;
	bytea	   *chunk;
	char	   *data;
	int			len;
	TupleDesc	desc;
	Datum		values[4];
	bool		nulls[4] = {false, false, false, false};
	Datum		model;
	GoodLine   *good;
	Datum	   *rej_lines,
			   *rej_bytes,
			   *rej_reasons;
	int			n_good = 0,
				n_rej = 0,
				n_lines = 0,
				cap;
	MemoryContext linecxt,
				chunkcxt;
	bool		isnull;

	for (int i = 0; i < 4; i++)
		if (PG_ARGISNULL(i))
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("brewml.load_scores: batch_id, seq, first_line and chunk must not be NULL")));
	batch = PG_GETARG_INT64(0);
	seq = PG_GETARG_INT32(1);
	first_line = PG_GETARG_INT64(2);
	chunk = PG_GETARG_BYTEA_PP(3);
	data = VARDATA_ANY(chunk);
	len = VARSIZE_ANY_EXHDR(chunk);
	if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "brewml.load_scores must return a composite type");
	if (GetDatabaseEncoding() != PG_UTF8)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("brewml.load_scores needs a UTF8 database, not %s", GetDatabaseEncodingName()),
				 errdetail("JSON Lines are UTF-8; keys are stored as received.")));
	if (seq < 0 || first_line < 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("brewml.load_scores: seq must be >= 0 and first_line >= 1, not %d and " INT64_FORMAT,
						seq, first_line)));

	SPI_connect();
	{
		Oid			types[1] = {INT8OID};
		Datum		args[1] = {Int64GetDatum(batch)};

		if (SPI_execute_plan(Prepare(&batch_plan,
									 "SELECT model, status FROM brewml.score_batches WHERE id = $1 FOR SHARE",
									 1, types), args, NULL, false, 1) != SPI_OK_SELECT)
			elog(ERROR, "reading the batch failed");
		if (SPI_processed != 1)
			ereport(ERROR,
					(errcode(ERRCODE_NO_DATA_FOUND),
					 errmsg("no score batch has id " INT64_FORMAT, batch),
					 errhint("Open one with brewml.open_score_batch.")));
		model = SPI_datumTransfer(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull),
								  false, -1);
		if (strcmp(TextDatumGetCString(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull)),
				   "done") == 0)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("score batch " INT64_FORMAT " is finished; it takes no more chunks", batch)));
	}
	{
		Oid			types[4] = {INT8OID, INT4OID, INT8OID, INT4OID};
		Datum		args[4] = {Int64GetDatum(batch), Int32GetDatum(seq), Int64GetDatum(first_line), Int32GetDatum(len)};

		if (SPI_execute_plan(Prepare(&claim_plan,
									 "INSERT INTO brewml.score_chunks (batch_id, seq, first_line, bytes)"
									 " VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
									 4, types), args, NULL, false, 0) != SPI_OK_INSERT)
			elog(ERROR, "claiming the chunk failed");
		if (SPI_processed == 0)
		{
			/* committed before: answer what it did then */
			if (SPI_execute_plan(Prepare(&counts_plan,
										 "SELECT lines, loaded, rejected FROM brewml.score_chunks"
										 " WHERE batch_id = $1 AND seq = $2",
										 2, types), args, NULL, false, 1) != SPI_OK_SELECT || SPI_processed != 1)
				elog(ERROR, "reading the committed chunk failed");
			for (int i = 0; i < 3; i++)
				values[i] = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, i + 1, &nulls[i]);
			values[3] = BoolGetDatum(true);
			SPI_finish();
			PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(desc), values, nulls)));
		}
	}

	/* the JSON parser allocates per line and cannot free: each line gets a fresh context */
	chunkcxt = CurrentMemoryContext;
	linecxt = AllocSetContextCreate(chunkcxt, "brewml score line", ALLOCSET_SMALL_SIZES);
	cap = 1024;
	good = palloc(sizeof(GoodLine) * cap);
	rej_lines = palloc(sizeof(Datum) * cap);
	rej_bytes = palloc(sizeof(Datum) * cap);
	rej_reasons = palloc(sizeof(Datum) * cap);
	for (int start = 0; start < len;)
	{
		char	   *nl = memchr(data + start, '\n', len - start);
		int			end = nl != NULL ? nl - data : len;
		char	   *s = data + start;
		int			slen = end - start;
		int64		lineno = first_line + n_lines;
		int			line_start = start;
		ScoreLine	sl;
		const char *why;

		start = end + 1;
		n_lines++;
		if (slen > 0 && s[slen - 1] == '\r')
			slen--;				/* CRLF line ends */
		if (lineno == 1 && slen >= 3 && memcmp(s, "\xEF\xBB\xBF", 3) == 0)
		{
			s += 3;				/* a UTF-8 byte order mark at the start of the file */
			slen -= 3;
		}
		if (n_good >= cap || n_rej >= cap)
		{
			cap *= 2;
			good = repalloc_huge(good, sizeof(GoodLine) * cap);
			rej_lines = repalloc_huge(rej_lines, sizeof(Datum) * cap);
			rej_bytes = repalloc_huge(rej_bytes, sizeof(Datum) * cap);
			rej_reasons = repalloc_huge(rej_reasons, sizeof(Datum) * cap);
		}
		MemoryContextReset(linecxt);
		MemoryContextSwitchTo(linecxt);
		why = ParseLine(s, slen, &sl);
		MemoryContextSwitchTo(chunkcxt);
		if (why != NULL)
		{
			/* the line as received, CR and byte order mark included */
			int			raw_len = end - line_start;
			bytea	   *raw = palloc(VARHDRSZ + raw_len);

			SET_VARSIZE(raw, VARHDRSZ + raw_len);
			memcpy(VARDATA(raw), data + line_start, raw_len);
			rej_lines[n_rej] = Int64GetDatum(lineno);
			rej_bytes[n_rej] = PointerGetDatum(raw);
			rej_reasons[n_rej] = CStringGetTextDatum(why);
			n_rej++;
			continue;
		}
		good[n_good].pk = pnstrdup(sl.pk.text, sl.pk.len);
		good[n_good].pk_len = sl.pk.len;
		good[n_good].score = pnstrdup(sl.score.text, sl.score.len);
		good[n_good].line = lineno;
		n_good++;
	}

	StoreLines(model, batch, good, n_good, rej_lines, rej_bytes, rej_reasons, n_rej);
	{
		Oid			types[5] = {INT8OID, INT4OID, INT4OID, INT4OID, INT4OID};
		Datum		args[5] = {Int64GetDatum(batch), Int32GetDatum(seq), Int32GetDatum(n_lines),
		Int32GetDatum(n_good), Int32GetDatum(n_rej)};

		if (SPI_execute_plan(Prepare(&done_plan,
									 "UPDATE brewml.score_chunks SET lines = $3, loaded = $4, rejected = $5"
									 " WHERE batch_id = $1 AND seq = $2",
									 5, types), args, NULL, false, 0) != SPI_OK_UPDATE)
			elog(ERROR, "recording the chunk failed");
	}
	SPI_finish();
	values[0] = Int32GetDatum(n_lines);
	values[1] = Int32GetDatum(n_good);
	values[2] = Int32GetDatum(n_rej);
	values[3] = BoolGetDatum(false);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(desc), values, nulls)));
}

/*
 * forest.c
 *		A trained forest's binary format, and the metrics of a model.
 *
 *		The binary format (format 1), in the host's byte order:
 *			header: magic "BRMF", uint16 format, uint16 zero,
 *			        int32 p, k, n_trees, n_nodes, n_leaves, uint32 CRC-32C of the body
 *			body:   int32 roots[n_trees], ForestNode nodes[n_nodes],
 *			        float4 leaf_probs[n_leaves * k]
 *		Loading checks the magic, format, sizes and checksum, then that every
 *		node points forward inside the forest (so no walk can loop or stray)
 *		and every probability is in [0, 1]: a damaged model is an error, never
 *		a crash or a wrong answer.
 */
#include "postgres.h"

#include <limits.h>
#include <math.h>

#include "forest.h"

#include "port/pg_crc32c.h"
#include "utils/memutils.h"
#include "utils/float.h"
#include "utils/json.h"

#define FOREST_MAGIC 0x464D5242	/* "BRMF" read as a little-endian uint32 */
#define FOREST_FORMAT 1

typedef struct ForestHeader
{
	uint32		magic;
	uint16		format;
	uint16		zero;
	int32		p;
	int32		k;
	int32		n_trees;
	int32		n_nodes;
	int32		n_leaves;
	uint32		crc;
} ForestHeader;

static size_t
ForestBodySize(int64 n_trees, int64 n_nodes, int64 n_leaves, int64 k)
{
	return sizeof(int32) * n_trees + sizeof(ForestNode) * n_nodes + sizeof(float) * n_leaves * k;
}

bytea *
ForestSerialize(const Forest *forest)
{
	size_t		body = ForestBodySize(forest->n_trees, forest->n_nodes, forest->n_leaves, forest->k);
	size_t		total = VARHDRSZ + sizeof(ForestHeader) + body;
	bytea	   *bin;
	ForestHeader hdr;
	char	   *p;
	pg_crc32c	crc;

	if (total > MaxAllocSize)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("the trained model takes %zu bytes, more than the 1 GB a value can hold", total),
				 errhint("Use fewer trees, a smaller max_depth or a larger min_samples_leaf.")));
	bin = palloc(total);
	SET_VARSIZE(bin, total);
	p = VARDATA(bin) + sizeof(ForestHeader);
	memcpy(p, forest->roots, sizeof(int32) * forest->n_trees);
	p += sizeof(int32) * forest->n_trees;
	memcpy(p, forest->nodes, sizeof(ForestNode) * forest->n_nodes);
	p += sizeof(ForestNode) * forest->n_nodes;
	memcpy(p, forest->leaf_probs, sizeof(float) * forest->n_leaves * forest->k);

	INIT_CRC32C(crc);
	COMP_CRC32C(crc, VARDATA(bin) + sizeof(ForestHeader), body);
	FIN_CRC32C(crc);
	memset(&hdr, 0, sizeof(hdr));
	hdr.magic = FOREST_MAGIC;
	hdr.format = FOREST_FORMAT;
	hdr.p = forest->p;
	hdr.k = forest->k;
	hdr.n_trees = forest->n_trees;
	hdr.n_nodes = forest->n_nodes;
	hdr.n_leaves = forest->n_leaves;
	hdr.crc = crc;
	memcpy(VARDATA(bin), &hdr, sizeof(hdr));
	return bin;
}

static void
Corrupt(const char *what, const char *why)
{
	ereport(ERROR,
			(errcode(ERRCODE_DATA_CORRUPTED),
			 errmsg("%s is corrupt: %s", what, why),
			 errhint("Train the model again, or deploy another version.")));
}

Forest *
ForestDeserialize(const bytea *bin, const char *what)
{
	size_t		len = VARSIZE_ANY_EXHDR(bin);
	const char *data = VARDATA_ANY(bin);
	ForestHeader hdr;
	Forest	   *fo;
	pg_crc32c	crc;
	size_t		body;

	if (len < sizeof(ForestHeader))
		Corrupt(what, "it is shorter than its header");
	memcpy(&hdr, data, sizeof(hdr));
	if (hdr.magic != FOREST_MAGIC)
		Corrupt(what, "it is not a brewml forest (bad magic number)");
	if (hdr.format != FOREST_FORMAT)
		Corrupt(what, psprintf("format %u is not known to this brewml", hdr.format));
	if (hdr.p < 1 || hdr.k < 1 || hdr.k > 256 || hdr.n_trees < 1 || hdr.n_nodes < hdr.n_trees ||
		hdr.n_leaves < 1 || hdr.n_leaves > hdr.n_nodes)
		Corrupt(what, "its sizes are impossible");
	body = ForestBodySize(hdr.n_trees, hdr.n_nodes, hdr.n_leaves, hdr.k);
	if (len != sizeof(ForestHeader) + body)
		Corrupt(what, psprintf("it has %zu bytes, its header announces %zu",
							   len, sizeof(ForestHeader) + body));
	INIT_CRC32C(crc);
	COMP_CRC32C(crc, data + sizeof(ForestHeader), body);
	FIN_CRC32C(crc);
	if (crc != hdr.crc)
		Corrupt(what, "checksum mismatch");

	fo = palloc0(sizeof(Forest));
	fo->p = hdr.p;
	fo->k = hdr.k;
	fo->n_trees = hdr.n_trees;
	fo->n_nodes = hdr.n_nodes;
	fo->n_leaves = hdr.n_leaves;
	fo->roots = palloc(sizeof(int32) * hdr.n_trees);
	fo->nodes = palloc_extended(sizeof(ForestNode) * hdr.n_nodes, MCXT_ALLOC_HUGE);
	fo->leaf_probs = palloc_extended(sizeof(float) * hdr.n_leaves * hdr.k, MCXT_ALLOC_HUGE);
	data += sizeof(ForestHeader);
	memcpy(fo->roots, data, sizeof(int32) * hdr.n_trees);
	data += sizeof(int32) * hdr.n_trees;
	memcpy(fo->nodes, data, sizeof(ForestNode) * hdr.n_nodes);
	data += sizeof(ForestNode) * hdr.n_nodes;
	memcpy(fo->leaf_probs, data, sizeof(float) * hdr.n_leaves * hdr.k);

	/*
	 * The shape training makes, which the walks rely on: tree t's nodes are
	 * the range [roots[t], roots[t + 1]), its root first; children lie after
	 * their parent and inside its tree (so no walk loops or strays); and every
	 * node but a root has exactly one parent (so each tree is a tree).
	 */
	{
		uint8	   *parents = palloc0(fo->n_nodes);

		for (int t = 0; t < fo->n_trees; t++)
			if ((t == 0 ? fo->roots[t] != 0 : fo->roots[t] <= fo->roots[t - 1]) ||
				fo->roots[t] >= fo->n_nodes)
				Corrupt(what, "the trees' roots are out of order");
		for (int t = 0; t < fo->n_trees; t++)
		{
			int			end = t + 1 < fo->n_trees ? fo->roots[t + 1] : fo->n_nodes;

			for (int i = fo->roots[t]; i < end; i++)
			{
				const ForestNode *nd = &fo->nodes[i];

				if (nd->feature == -1)
				{
					if (nd->left < 0 || nd->left >= fo->n_leaves)
						Corrupt(what, "a leaf points outside the probabilities");
				}
				else if (nd->feature < 0 || nd->feature >= fo->p || nd->left <= i ||
						 nd->left + 1 >= end || isnan(nd->threshold))
					Corrupt(what, psprintf("node %d is malformed", i));
				else if (parents[nd->left]++ > 0 || parents[nd->left + 1]++ > 0)
					Corrupt(what, psprintf("node %d has two parents", nd->left));
			}
			for (int i = fo->roots[t] + 1; i < end; i++)
				if (parents[i] != 1)
					Corrupt(what, psprintf("node %d belongs to no tree", i));
		}
		pfree(parents);
	}
	for (int64 i = 0; i < (int64) fo->n_leaves * fo->k; i++)
		if (!(fo->leaf_probs[i] >= 0.0f && fo->leaf_probs[i] <= 1.0f))
			Corrupt(what, "a class probability is outside [0, 1]");
	return fo;
}

typedef struct ClassScore
{
	double		precision;
	double		recall;
	double		f1;
	int64		support;
	int64		predicted;
} ClassScore;

static void
ScoreClass(const int64 *confusion, int k, int c, ClassScore *s)
{
	int64		tp = confusion[c * k + c];

	s->support = 0;
	s->predicted = 0;
	for (int j = 0; j < k; j++)
	{
		s->support += confusion[c * k + j];
		s->predicted += confusion[j * k + c];
	}
	s->precision = s->predicted > 0 ? (double) tp / s->predicted : 0.0;
	s->recall = s->support > 0 ? (double) tp / s->support : 0.0;
	s->f1 = s->precision + s->recall > 0.0 ?
		2.0 * s->precision * s->recall / (s->precision + s->recall) : 0.0;
}

/*
 * Accuracy, and macro-F1 over the classes that occur in the truth or the
 * predictions (as scikit-learn's f1_score(average='macro'), 0 where undefined).
 */
ForestScores
ForestScore(const int64 *confusion, int k)
{
	ForestScores r = {0.0, 0.0};
	int64		total = 0,
				right = 0;
	int			present = 0;

	for (int c = 0; c < k; c++)
	{
		ClassScore s;

		ScoreClass(confusion, k, c, &s);
		right += confusion[c * k + c];
		total += s.support;
		if (s.support > 0 || s.predicted > 0)
		{
			r.macro_f1 += s.f1;
			present++;
		}
	}
	r.accuracy = total > 0 ? (double) right / total : 0.0;
	r.macro_f1 = present > 0 ? r.macro_f1 / present : 0.0;
	return r;
}

static void
JsonNumber(StringInfo out, const char *key, double v)
{
	appendStringInfo(out, "\"%s\": %s", key, float8out_internal(v));
}

/* The metrics of a confusion matrix as a JSON object. */
void
ForestMetricsJson(StringInfo out, const int64 *confusion, int k,
				  const char *const *classes, const char *method)
{
	ForestScores scores = ForestScore(confusion, k);
	int64		total = 0;

	for (int i = 0; i < k * k; i++)
		total += confusion[i];
	appendStringInfo(out, "{\"method\": \"%s\", \"rows\": " INT64_FORMAT ", ", method, total);
	JsonNumber(out, "accuracy", scores.accuracy);
	appendStringInfoString(out, ", ");
	JsonNumber(out, "macro_f1", scores.macro_f1);
	appendStringInfoString(out, ", \"classes\": [");
	for (int c = 0; c < k; c++)
	{
		ClassScore s;

		ScoreClass(confusion, k, c, &s);
		appendStringInfoString(out, c > 0 ? ", {\"class\": " : "{\"class\": ");
		escape_json(out, classes[c]);
		appendStringInfoString(out, ", ");
		JsonNumber(out, "precision", s.precision);
		appendStringInfoString(out, ", ");
		JsonNumber(out, "recall", s.recall);
		appendStringInfoString(out, ", ");
		JsonNumber(out, "f1", s.f1);
		appendStringInfo(out, ", \"support\": " INT64_FORMAT "}", s.support);
	}
	appendStringInfoString(out, "], \"confusion\": [");
	for (int c = 0; c < k; c++)
	{
		appendStringInfoString(out, c > 0 ? ", [" : "[");
		for (int j = 0; j < k; j++)
			appendStringInfo(out, j > 0 ? ", " INT64_FORMAT : INT64_FORMAT, confusion[c * k + j]);
		appendStringInfoChar(out, ']');
	}
	appendStringInfoString(out, "]}");
}

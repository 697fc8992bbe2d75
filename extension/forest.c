/*
 * forest.c
 *		Prediction with a trained forest, its binary format, and metrics.
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

/* Rank of a missing value when it goes right: above every threshold's. */
#define RANK_HIGH 0xFFFF

/*
 * A node of the fast walk.  A threshold is replaced by its rank among the
 * feature's distinct thresholds: x <= threshold exactly when fewer than
 * rank + 1 thresholds lie below x, so a row's features are ranked once and
 * each node compares two small integers.  Each feature has two ranks per
 * row, which differ only for a missing value (0, or RANK_HIGH), and a node's
 * slot picks the one matching its missing-value direction; a node goes right
 * when that rank exceeds its own.  A leaf has rank RANK_HIGH and points at
 * itself, so a walk can run a fixed number of steps without a branch.
 */
typedef struct WalkNode
{
	uint16		rank;
	uint8		slot;			/* 2 * feature, + 1 if a missing value goes right */
	uint8		pad;
	int32		next;			/* the left child; the right is next + 1 */
} WalkNode;

/* Trees walked side by side, their memory loads overlapping. */
#define LANES 8

static const float zero_probs[256];

/*
 * Adds the class probabilities of eight trees' leaves to probs: pairwise in
 * single precision (eight values in [0, 1], short dependency chains), then
 * to the double total.  Both walks sum in this one order, so that they give
 * the same answer to the last bit.
 */
static inline void
AddLeaves(double *probs, const float *const *l, int k)
{
	for (int c = 0; c < k; c++)
		probs[c] += (double) (((l[0][c] + l[1][c]) + (l[2][c] + l[3][c])) +
							  ((l[4][c] + l[5][c]) + (l[6][c] + l[7][c])));
}

static int
CompareDoubles(const void *a, const void *b)
{
	double		x = *(const double *) a;
	double		y = *(const double *) b;

	return (x > y) - (x < y);
}

/* The number of edges below x (x not NaN); a binary search without branches. */
static inline int
RankOf(const double *edges, int n, double x)
{
	const double *base = edges;

	if (n == 0)
		return 0;
	while (n > 1)
	{
		int			half = n / 2;

		base += (base[half - 1] < x) * half;
		n -= half;
	}
	return (int) (base - edges) + (base[0] < x);
}

/*
 * Prepares a forest for fast prediction (ForestPredict): ranked thresholds,
 * 8-byte nodes, each tree's depth, and trees padded to a multiple of LANES
 * with a leaf that predicts nothing.  Forests with more than 128 features or
 * 65534 thresholds on one feature keep the plain walk.
 */
void
ForestCompile(Forest *forest)
{
	int		   *count;
	int32	   *node_depth;
	int			n_walk;

	if (forest->p > 128)
		return;
	count = palloc0(sizeof(int) * forest->p);
	for (int i = 0; i < forest->n_nodes; i++)
		if (forest->nodes[i].feature >= 0)
			count[forest->nodes[i].feature]++;
	forest->edges = palloc(sizeof(double *) * forest->p);
	forest->n_edges = palloc0(sizeof(int) * forest->p);
	for (int f = 0; f < forest->p; f++)
		forest->edges[f] = palloc(sizeof(double) * Max(count[f], 1));
	for (int i = 0; i < forest->n_nodes; i++)
	{
		const ForestNode *nd = &forest->nodes[i];

		if (nd->feature >= 0)
			forest->edges[nd->feature][forest->n_edges[nd->feature]++] = nd->threshold;
	}
	for (int f = 0; f < forest->p; f++)
	{
		int			m = 0;

		qsort(forest->edges[f], forest->n_edges[f], sizeof(double), CompareDoubles);
		for (int i = 0; i < forest->n_edges[f]; i++)
			if (m == 0 || forest->edges[f][i] != forest->edges[f][m - 1])
				forest->edges[f][m++] = forest->edges[f][i];
		forest->n_edges[f] = m;
		if (m >= RANK_HIGH)
		{
			forest->edges = NULL;	/* too many to rank in 16 bits: plain walk */
			return;
		}
	}

	/*
	 * The walk: the nodes in place, then one padding leaf.  A walk ends on a
	 * node, so probabilities are kept by node (zeros for inner nodes and the
	 * padding leaf): one memory load fewer per tree than through the leaf.
	 */
	n_walk = forest->n_nodes + 1;
	forest->walk = palloc_extended(sizeof(WalkNode) * n_walk, MCXT_ALLOC_HUGE);
	forest->walk_probs = palloc_extended(sizeof(float) * (size_t) n_walk * forest->k,
										 MCXT_ALLOC_HUGE | MCXT_ALLOC_ZERO);
	node_depth = palloc0(sizeof(int32) * forest->n_nodes);
	for (int i = 0; i < n_walk; i++)
	{
		const ForestNode *nd = &forest->nodes[i];
		WalkNode   *w = &forest->walk[i];

		memset(w, 0, sizeof(WalkNode));
		if (i == forest->n_nodes || nd->feature < 0)
		{
			if (i < forest->n_nodes)
				memcpy(&forest->walk_probs[(size_t) i * forest->k],
					   &forest->leaf_probs[(size_t) nd->left * forest->k], sizeof(float) * forest->k);
			w->rank = RANK_HIGH;
			w->next = i;
			continue;
		}
		w->rank = (uint16) RankOf(forest->edges[nd->feature], forest->n_edges[nd->feature], nd->threshold);
		w->slot = (uint8) (2 * nd->feature + (nd->missing_left ? 0 : 1));
		w->next = nd->left;
		node_depth[nd->left] = node_depth[nd->left + 1] = node_depth[i] + 1;
	}

	/* roots and depths, padded to whole groups of LANES trees */
	forest->n_walk_trees = (forest->n_trees + LANES - 1) / LANES * LANES;
	forest->walk_roots = palloc(sizeof(int32) * forest->n_walk_trees);
	forest->depth = palloc0(sizeof(int32) * forest->n_walk_trees);
	for (int t = 0; t < forest->n_walk_trees; t++)
	{
		if (t >= forest->n_trees)
		{
			forest->walk_roots[t] = forest->n_nodes;
			continue;
		}
		forest->walk_roots[t] = forest->roots[t];
		/* a tree's nodes are contiguous, from its root to the next tree's */
		for (int i = forest->roots[t]; i < (t + 1 < forest->n_trees ? forest->roots[t + 1] : forest->n_nodes); i++)
			forest->depth[t] = Max(forest->depth[t], node_depth[i]);
	}
	pfree(node_depth);
	pfree(count);
}

/* One step of one lane: to the left child, or the right one (next + 1). */
#define WALK_STEP(at) \
	do { \
		const WalkNode *nd_ = &walk[at]; \
		(at) = nd_->next + (rank[nd_->slot] > nd_->rank); \
	} while (0)

/* Adds the leaf probabilities the compiled walk reaches for row x. */
static void
ForestWalk(const Forest *forest, const double *x, double *probs)
{
	const WalkNode *walk = forest->walk;
	int			k = forest->k;
	uint16		rank[256];
	const float *leaves[LANES];

	for (int f = 0; f < forest->p; f++)
	{
		if (x[f] != x[f])
		{
			rank[2 * f] = 0;
			rank[2 * f + 1] = RANK_HIGH;
		}
		else
			rank[2 * f] = rank[2 * f + 1] =
				(uint16) RankOf(forest->edges[f], forest->n_edges[f], x[f]);
	}
	for (int g = 0; g < forest->n_walk_trees; g += LANES)
	{
		const int32 *r = &forest->walk_roots[g];
		int32		a0 = r[0], a1 = r[1], a2 = r[2], a3 = r[3],
					a4 = r[4], a5 = r[5], a6 = r[6], a7 = r[7];
		int			steps = 0;
		int32		ends[LANES];

		for (int j = 0; j < LANES; j++)
			steps = Max(steps, forest->depth[g + j]);
		for (int s = 0; s < steps; s++)
		{
			WALK_STEP(a0);
			WALK_STEP(a1);
			WALK_STEP(a2);
			WALK_STEP(a3);
			WALK_STEP(a4);
			WALK_STEP(a5);
			WALK_STEP(a6);
			WALK_STEP(a7);
		}
		ends[0] = a0, ends[1] = a1, ends[2] = a2, ends[3] = a3;
		ends[4] = a4, ends[5] = a5, ends[6] = a6, ends[7] = a7;
		/* a padding lane adds zeros, which changes no sum */
		for (int j = 0; j < LANES; j++)
			leaves[j] = &forest->walk_probs[(size_t) ends[j] * k];
		AddLeaves(probs, leaves, k);
	}
}

/*
 * Mean class probabilities over the trees; plain walks the nodes as stored
 * even when the forest is compiled (the same answer, slower: for tests).
 */
void
ForestPredict(const Forest *forest, const double *x, double *probs, bool plain)
{
	int			k = forest->k;

	for (int c = 0; c < k; c++)
		probs[c] = 0.0;
	if (plain || forest->walk == NULL || forest->edges == NULL)
	{
		for (int t0 = 0; t0 < forest->n_trees; t0 += LANES)
		{
			const float *leaves[LANES];

			for (int j = 0; j < LANES; j++)
				leaves[j] = t0 + j < forest->n_trees ? ForestTreeLeaf(forest, t0 + j, x) : zero_probs;
			AddLeaves(probs, leaves, k);
		}
	}
	else
		ForestWalk(forest, x, probs);
	for (int c = 0; c < k; c++)
		probs[c] /= forest->n_trees;
}

/* The most probable class (the first on ties), and its probability. */
int
ForestClassify(const Forest *forest, const double *x, double *best_prob, bool plain)
{
	double		stack_probs[16];
	double	   *probs = forest->k <= 16 ? stack_probs : palloc(sizeof(double) * forest->k);
	int			best = 0;

	ForestPredict(forest, x, probs, plain);
	for (int c = 1; c < forest->k; c++)
		if (probs[c] > probs[best])
			best = c;
	if (best_prob)
		*best_prob = probs[best];
	if (probs != stack_probs)
		pfree(probs);
	return best;
}

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

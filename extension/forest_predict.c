/*
 * forest_predict.c
 *		Prediction with a trained forest: the plain walk of the stored nodes,
 *		and the compiled walks ForestCompile prepares, which give the same
 *		answer to the last bit, faster.
 *
 *		Compiling ranks every threshold among its feature's distinct
 *		thresholds, so a row's features are ranked once and each node
 *		compares two bytes; it needs at most 255 distinct thresholds per
 *		feature, which brewml's training (at most 255 bins) always gives, and
 *		leaves other forests to the plain walk.  Trees are walked LANES at a time, side
 *		by side, their memory loads overlapping, for a fixed number of steps
 *		(the group's depth) without a branch.  A group of trees is laid out
 *		one of two ways:
 *		  implicit  each tree as a complete binary tree of the group's depth,
 *		            the lanes' nodes interleaved level by level, no child
 *		            pointers: 2 bytes a node, so a forest of shallow dense
 *		            trees (the usual one on large data) stays in cache
 *		  linked    nodes with child pointers, leaves pointing at themselves;
 *		            for deep or sparse trees, whose complete form would be
 *		            too large
 */
#include "postgres.h"

#include "forest.h"

#include "utils/float.h"
#include "utils/memutils.h"

/* Rank of a missing value when it goes right: above every threshold's. */
#define RANK_HIGH 0xFF

/* Trees walked side by side. */
#define LANES 8

/* Deepest group laid out as complete trees, and its memory allowance. */
#define IMPLICIT_MAX_DEPTH 16
#define IMPLICIT_GROWTH 4		/* at most this many times the linked size */
#define IMPLICIT_SLACK 65536	/* plus this many bytes */

/*
 * A compiled node.  A node's rank is the number of its feature's thresholds
 * below its own (at most 254); a row's is the number below its value (at
 * most 255).  Each feature has two ranks per row, which differ only for a
 * missing value (0, or RANK_HIGH); slot picks the one matching the node's
 * missing-value direction, and the walk goes right when that rank exceeds
 * the node's.  A node of rank RANK_HIGH never goes right: leaves are such
 * nodes (in the linked layout they also point at themselves).
 */
typedef struct WalkNode
{
	uint8		rank;
	uint8		slot;			/* 2 * feature, + 1 if a missing value goes right */
} WalkNode;

typedef struct LinkedNode
{
	WalkNode	w;
	uint16		pad;
	int32		next;			/* the left child; the right is next + 1 */
} LinkedNode;

typedef struct WalkGroup
{
	int			depth;			/* steps of the walk */
	bool		implicit;
	/* implicit: lane j's node at position i of its tree is inner[i * LANES + j] */
	WalkNode   *inner;			/* (2^depth - 1) * LANES */
	float	   *leaves;			/* lane j, bottom position b: [(j << depth) + b] * k */
	/* linked: trees' roots in ForestCompiled.linked */
	int32		roots[LANES];
} WalkGroup;

struct ForestCompiled
{
	int			n_groups;
	WalkGroup  *groups;
	double	  **edges;			/* p: each feature's distinct thresholds, ascending,
								 * then +Infinity up to 2 * half */
	int		   *n_edges;		/* p */
	int			half;			/* a power of two, or 0 if no feature has edges */
	LinkedNode *linked;			/* NULL when every group is implicit */
	float	   *linked_probs;	/* per linked node: a leaf's probabilities, else zeros */
};

static const float zero_probs[256];

/*
 * Adds the class probabilities of eight trees' leaves to probs: pairwise in
 * single precision (eight values in [0, 1], short dependency chains), then
 * to the double total.  Every walk sums in this one order, so that all give
 * the same answer to the last bit.
 */
static inline void
AddLeaves(double *probs, const float *const *l, int k)
{
	StaticAssertStmt(LANES == 8, "AddLeaves sums eight lanes");
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

/*
 * The number of edges below x (x not NaN): a search without branches over
 * edges padded with +Infinity to twice half entries (half a power of two,
 * or 0 for no edges), a fixed number of steps whatever x.
 */
static inline int
RankOf(const double *edges, int half, double x)
{
	int			pos = 0;

	for (int step = half; step > 0; step >>= 1)
		pos += edges[pos + step - 1] < x ? step : 0;
	return pos;
}

/*
 * The row's two ranks per feature.  Four features are searched in step,
 * in registers: four independent chains of loads at once.  A feature past
 * the last searches edges[0] for 0, and its rank is not kept.
 */
static void
RankRow(const Forest *forest, const ForestCompiled *fc, const double *x, uint8 *rank)
{
	int			p = forest->p;

	for (int f = 0; f < p; f += 4)
	{
		const double *e0 = fc->edges[f],
				   *e1 = f + 1 < p ? fc->edges[f + 1] : fc->edges[0],
				   *e2 = f + 2 < p ? fc->edges[f + 2] : fc->edges[0],
				   *e3 = f + 3 < p ? fc->edges[f + 3] : fc->edges[0];
		double		x0 = x[f],
					x1 = f + 1 < p ? x[f + 1] : 0,
					x2 = f + 2 < p ? x[f + 2] : 0,
					x3 = f + 3 < p ? x[f + 3] : 0;
		int			r0 = 0,
					r1 = 0,
					r2 = 0,
					r3 = 0;
		int			r[4];

		for (int step = fc->half; step > 0; step >>= 1)
		{
			r0 += e0[r0 + step - 1] < x0 ? step : 0;
			r1 += e1[r1 + step - 1] < x1 ? step : 0;
			r2 += e2[r2 + step - 1] < x2 ? step : 0;
			r3 += e3[r3 + step - 1] < x3 ? step : 0;
		}
		r[0] = r0, r[1] = r1, r[2] = r2, r[3] = r3;
		for (int i = 0; i < 4 && f + i < p; i++)
		{
			bool		missing = x[f + i] != x[f + i];

			rank[2 * (f + i)] = missing ? 0 : (uint8) r[i];
			rank[2 * (f + i) + 1] = missing ? RANK_HIGH : (uint8) r[i];
		}
	}
}

/*
 * Each feature's distinct thresholds, padded for RankOf to a common length;
 * false if a feature has too many to rank in a byte.
 */
static bool
CompileEdges(const Forest *forest, ForestCompiled *fc)
{
	int			most = 0;
	int			common = 1;

	fc->edges = palloc(sizeof(double *) * forest->p);
	fc->n_edges = palloc0(sizeof(int) * forest->p);
	for (int i = 0; i < forest->n_nodes; i++)
		if (forest->nodes[i].feature >= 0)
			fc->n_edges[forest->nodes[i].feature]++;
	for (int f = 0; f < forest->p; f++)
	{
		fc->edges[f] = palloc(sizeof(double) * Max(fc->n_edges[f], 1));
		fc->n_edges[f] = 0;
	}
	for (int i = 0; i < forest->n_nodes; i++)
	{
		const ForestNode *nd = &forest->nodes[i];

		if (nd->feature >= 0)
			fc->edges[nd->feature][fc->n_edges[nd->feature]++] = nd->threshold;
	}
	for (int f = 0; f < forest->p; f++)
	{
		int			m = 0;

		qsort(fc->edges[f], fc->n_edges[f], sizeof(double), CompareDoubles);
		for (int i = 0; i < fc->n_edges[f]; i++)
			if (m == 0 || fc->edges[f][i] != fc->edges[f][m - 1])
				fc->edges[f][m++] = fc->edges[f][i];
		fc->n_edges[f] = m;
		if (m > RANK_HIGH)
			return false;
		most = Max(most, m);
	}
	while (common <= most)
		common <<= 1;
	for (int f = 0; f < forest->p; f++)
	{
		fc->edges[f] = repalloc(fc->edges[f], sizeof(double) * common);
		for (int i = fc->n_edges[f]; i < common; i++)
			fc->edges[f][i] = get_float8_infinity();
	}
	fc->half = common / 2;
	return true;
}

/* The compiled form of stored node i (a leaf never goes right). */
static WalkNode
CompileNode(const Forest *forest, const ForestCompiled *fc, int i)
{
	const ForestNode *nd = &forest->nodes[i];
	WalkNode	w = {RANK_HIGH, 0};

	if (nd->feature >= 0)
	{
		w.rank = (uint8) RankOf(fc->edges[nd->feature], fc->half, nd->threshold);
		w.slot = (uint8) (2 * nd->feature + (nd->missing_left ? 0 : 1));
	}
	return w;
}

/* The end of tree t's nodes. */
static inline int
TreeEnd(const Forest *forest, int t)
{
	return t + 1 < forest->n_trees ? forest->roots[t + 1] : forest->n_nodes;
}

/* Lays out tree t as lane j of an implicit group, from stored node i at position pos. */
static void
PlaceImplicit(const Forest *forest, const ForestCompiled *fc, WalkGroup *g, int j,
			  int i, int64 pos, int level)
{
	const ForestNode *nd = &forest->nodes[i];

	if (nd->feature < 0)
	{
		/* a leaf: the walk goes on left, to the bottom, where its probabilities wait */
		while (level++ < g->depth)
			pos = 2 * pos + 1;
		memcpy(&g->leaves[(((int64) j << g->depth) + pos - ((int64) 1 << g->depth) + 1) * forest->k],
			   &forest->leaf_probs[(size_t) nd->left * forest->k], sizeof(float) * forest->k);
		return;
	}
	g->inner[pos * LANES + j] = CompileNode(forest, fc, i);
	PlaceImplicit(forest, fc, g, j, nd->left, 2 * pos + 1, level + 1);
	PlaceImplicit(forest, fc, g, j, nd->left + 1, 2 * pos + 2, level + 1);
}

/* Fills fc->linked and linked_probs with every stored node, plus a padding leaf. */
static void
CompileLinked(const Forest *forest, ForestCompiled *fc)
{
	int			n = forest->n_nodes + 1;

	fc->linked = palloc_extended(sizeof(LinkedNode) * n, MCXT_ALLOC_HUGE);
	fc->linked_probs = palloc_extended(sizeof(float) * (size_t) n * forest->k,
									   MCXT_ALLOC_HUGE | MCXT_ALLOC_ZERO);
	for (int i = 0; i < n; i++)
	{
		LinkedNode *ln = &fc->linked[i];

		if (i == forest->n_nodes || forest->nodes[i].feature < 0)
		{
			ln->w = (WalkNode) {RANK_HIGH, 0};
			ln->next = i;
			if (i < forest->n_nodes)
				memcpy(&fc->linked_probs[(size_t) i * forest->k],
					   &forest->leaf_probs[(size_t) forest->nodes[i].left * forest->k],
					   sizeof(float) * forest->k);
			continue;
		}
		ln->w = CompileNode(forest, fc, i);
		ln->next = forest->nodes[i].left;
	}
}

/*
 * Prepares a forest for fast prediction (ForestPredict) in the current
 * memory context.  Forests with more than 128 features or 255 thresholds on
 * one feature keep the plain walk.
 */
void
ForestCompile(Forest *forest)
{
	ForestCompiled *fc;
	int32	   *node_depth;
	bool		any_linked = false;

	if (forest->p > 128)
		return;
	fc = palloc0(sizeof(ForestCompiled));
	if (!CompileEdges(forest, fc))
		return;

	node_depth = palloc0(sizeof(int32) * forest->n_nodes);
	for (int i = 0; i < forest->n_nodes; i++)
		if (forest->nodes[i].feature >= 0)
			node_depth[forest->nodes[i].left] = node_depth[forest->nodes[i].left + 1] = node_depth[i] + 1;

	fc->n_groups = (forest->n_trees + LANES - 1) / LANES;
	fc->groups = palloc0(sizeof(WalkGroup) * fc->n_groups);
	for (int gi = 0; gi < fc->n_groups; gi++)
	{
		WalkGroup  *g = &fc->groups[gi];
		int64		linked_bytes = 0;
		int64		implicit_bytes;

		for (int j = 0; j < LANES; j++)
		{
			int			t = gi * LANES + j;

			if (t >= forest->n_trees)
				continue;
			for (int i = forest->roots[t]; i < TreeEnd(forest, t); i++)
				g->depth = Max(g->depth, node_depth[i]);
			linked_bytes += (TreeEnd(forest, t) - forest->roots[t]) *
				(int64) (sizeof(LinkedNode) + sizeof(float) * forest->k);
		}
		implicit_bytes = g->depth > IMPLICIT_MAX_DEPTH ? PG_INT64_MAX :
			((int64) LANES << g->depth) * (int64) (sizeof(WalkNode) + sizeof(float) * forest->k);
		g->implicit = implicit_bytes <= IMPLICIT_GROWTH * linked_bytes + IMPLICIT_SLACK;
		if (!g->implicit)
		{
			any_linked = true;
			continue;
		}
		g->inner = palloc_extended(sizeof(WalkNode) * (((size_t) 1 << g->depth) - 1) * LANES,
								   MCXT_ALLOC_HUGE);
		for (size_t i = 0; i < (((size_t) 1 << g->depth) - 1) * LANES; i++)
			g->inner[i] = (WalkNode) {RANK_HIGH, 0};
		/* padding lanes keep zeros: they add nothing to any sum */
		g->leaves = palloc_extended(sizeof(float) * ((size_t) LANES << g->depth) * forest->k,
									MCXT_ALLOC_HUGE | MCXT_ALLOC_ZERO);
		for (int j = 0; j < LANES && gi * LANES + j < forest->n_trees; j++)
			PlaceImplicit(forest, fc, g, j, forest->roots[gi * LANES + j], 0, 0);
	}
	if (any_linked)
	{
		CompileLinked(forest, fc);
		for (int gi = 0; gi < fc->n_groups; gi++)
			for (int j = 0; j < LANES; j++)
				fc->groups[gi].roots[j] = gi * LANES + j < forest->n_trees ?
					forest->roots[gi * LANES + j] : forest->n_nodes;
	}
	pfree(node_depth);
	forest->compiled = fc;
	if (message_level_is_interesting(DEBUG1))
	{
		int			implicit = 0;

		for (int gi = 0; gi < fc->n_groups; gi++)
			implicit += fc->groups[gi].implicit;
		elog(DEBUG1, "compiled a forest of %d trees: %d groups of %d as complete trees, %d linked",
			 forest->n_trees, implicit, LANES, fc->n_groups - implicit);
	}
}

/* One step of lane j in an implicit group: position i to 2i + 1 or 2i + 2, interleaved. */
#define IMPLICIT_STEP(at, j) \
	do { \
		const WalkNode nd_ = inner[at]; \
		(at) = 2 * (at) + (LANES - (j)) + LANES * (rank[nd_.slot] > nd_.rank); \
	} while (0)

/* One step of a lane in a linked group: to the left child, or the right one. */
#define LINKED_STEP(at) \
	do { \
		const LinkedNode *nd_ = &linked[at]; \
		(at) = nd_->next + (rank[nd_->w.slot] > nd_->w.rank); \
	} while (0)

/* Finds the leaves an implicit group's trees send a ranked row to. */
static inline void
WalkImplicit(const WalkGroup *g, const uint8 *rank, int k, const float **leaves)
{
	const WalkNode *inner = g->inner;
	int64		a0 = 0, a1 = 1, a2 = 2, a3 = 3, a4 = 4, a5 = 5, a6 = 6, a7 = 7;
	int64		ends[LANES];
	int64		bottom = ((int64) 1 << g->depth) - 1;

	for (int s = 0; s < g->depth; s++)
	{
		IMPLICIT_STEP(a0, 0);
		IMPLICIT_STEP(a1, 1);
		IMPLICIT_STEP(a2, 2);
		IMPLICIT_STEP(a3, 3);
		IMPLICIT_STEP(a4, 4);
		IMPLICIT_STEP(a5, 5);
		IMPLICIT_STEP(a6, 6);
		IMPLICIT_STEP(a7, 7);
	}
	ends[0] = a0, ends[1] = a1, ends[2] = a2, ends[3] = a3;
	ends[4] = a4, ends[5] = a5, ends[6] = a6, ends[7] = a7;
	for (int j = 0; j < LANES; j++)
	{
		leaves[j] = &g->leaves[(((int64) j << g->depth) + ends[j] / LANES - bottom) * k];
		__builtin_prefetch(leaves[j]);
	}
}

/* Finds the leaves a linked group's trees send a ranked row to. */
static inline void
WalkLinked(const ForestCompiled *fc, const WalkGroup *g, const uint8 *rank, int k, const float **leaves)
{
	const LinkedNode *linked = fc->linked;
	const int32 *r = g->roots;
	int32		a0 = r[0], a1 = r[1], a2 = r[2], a3 = r[3],
				a4 = r[4], a5 = r[5], a6 = r[6], a7 = r[7];
	int32		ends[LANES];

	for (int s = 0; s < g->depth; s++)
	{
		LINKED_STEP(a0);
		LINKED_STEP(a1);
		LINKED_STEP(a2);
		LINKED_STEP(a3);
		LINKED_STEP(a4);
		LINKED_STEP(a5);
		LINKED_STEP(a6);
		LINKED_STEP(a7);
	}
	ends[0] = a0, ends[1] = a1, ends[2] = a2, ends[3] = a3;
	ends[4] = a4, ends[5] = a5, ends[6] = a6, ends[7] = a7;
	/* a padding lane ends on the padding leaf, whose zeros change no sum */
	for (int j = 0; j < LANES; j++)
	{
		leaves[j] = &fc->linked_probs[(size_t) ends[j] * k];
		__builtin_prefetch(leaves[j]);
	}
}

/* Adds the leaf probabilities the compiled walks reach for row x. */
static void
ForestWalk(const Forest *forest, const double *x, double *probs)
{
	const ForestCompiled *fc = forest->compiled;
	uint8		rank[256];
	const float *leaves[2][LANES];

	RankRow(forest, fc, x, rank);
	/*
	 * A group's leaves are summed after the next group's walk, which runs
	 * while their memory loads are in flight; the order of the sums stays
	 * the groups' order.
	 */
	for (int gi = 0; gi < fc->n_groups; gi++)
	{
		const WalkGroup *g = &fc->groups[gi];

		if (g->implicit)
			WalkImplicit(g, rank, forest->k, leaves[gi & 1]);
		else
			WalkLinked(fc, g, rank, forest->k, leaves[gi & 1]);
		if (gi > 0)
			AddLeaves(probs, leaves[(gi - 1) & 1], forest->k);
	}
	AddLeaves(probs, leaves[(fc->n_groups - 1) & 1], forest->k);
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
	if (plain || forest->compiled == NULL)
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

/*
 * forest_train.c
 *		Training of the random forest (forest.h).
 *
 *		Each feature is first cut into at most max_bins bins (one per distinct
 *		value when there are few; quantiles otherwise), so that finding the
 *		best split of a node is one pass over its rows to fill a histogram per
 *		tried feature, then one pass over the bins.  Split points are the
 *		midpoints between neighbouring values, as in CART; missing values
 *		(NaN) form a bin of their own and go to whichever side is better.
 *		Trees grow depth first on bootstrap samples (a count per row), trying
 *		max_features random features per split (more while those tried are
 *		constant in the node), with Gini impurity.  Every random choice comes
 *		from a generator seeded by the seed and the tree's number, so a seed
 *		gives the same forest, bit for bit.
 */
#include "postgres.h"

#include <limits.h>
#include <math.h>

#include "forest.h"

#include "miscadmin.h"
#include "utils/memutils.h"

#define MISSING_BIN 255

/* xoshiro256** seeded by splitmix64. */
typedef struct Rng
{
	uint64		s[4];
} Rng;

static uint64
SplitMix(uint64 *x)
{
	uint64		z = (*x += UINT64CONST(0x9e3779b97f4a7c15));

	z = (z ^ (z >> 30)) * UINT64CONST(0xbf58476d1ce4e5b9);
	z = (z ^ (z >> 27)) * UINT64CONST(0x94d049bb133111eb);
	return z ^ (z >> 31);
}

static void
RngSeed(Rng *rng, uint64 seed, uint64 stream)
{
	uint64		x = seed ^ (stream * UINT64CONST(0xd1342543de82ef95));

	for (int i = 0; i < 4; i++)
		rng->s[i] = SplitMix(&x);
}

static inline uint64
Rotl(uint64 x, int k)
{
	return (x << k) | (x >> (64 - k));
}

static inline uint64
RngNext(Rng *rng)
{
	uint64	   *s = rng->s;
	uint64		result = Rotl(s[1] * 5, 7) * 9;
	uint64		t = s[1] << 17;

	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = Rotl(s[3], 45);
	return result;
}

/* Uniform in [0, n), n < 2^32. */
static inline uint32
RngBelow(Rng *rng, uint32 n)
{
	return (uint32) (((RngNext(rng) >> 32) * (uint64) n) >> 32);
}

/* The features cut into bins, column by column. */
typedef struct Binned
{
	int			n;
	int			p;
	uint8	   *bins;			/* p * n: bins[f * n + i] */
	int		   *nbins;			/* p */
	double	   *edges;			/* p * 256: bin b holds x <= edges[b] (and > edges[b - 1]) */
} Binned;

static int
CompareDouble(const void *a, const void *b)
{
	double		x = *(const double *) a;
	double		y = *(const double *) b;

	return (x > y) - (x < y);
}

/* A split point strictly between a < b, that a falls below and b above. */
static double
Midpoint(double a, double b)
{
	double		m = a + (b - a) / 2.0;

	return (m >= b || m < a) ? a : m;
}

static void
BinFeature(const ForestData *data, int f, int max_bins, double *sorted, Binned *out)
{
	double	   *edges = &out->edges[f * 256];
	int			m = 0,
				distinct = 0,
				nb = 0;

	for (int i = 0; i < data->n; i++)
	{
		double		v = data->x[(size_t) i * data->p + f];

		if (!isnan(v))
			sorted[m++] = v;
	}
	qsort(sorted, m, sizeof(double), CompareDouble);
	for (int i = 0; i < m; i++)
		if (i == 0 || sorted[i] != sorted[i - 1])
			distinct++;

	if (distinct <= max_bins)
	{
		for (int i = 1; i < m; i++)
			if (sorted[i] != sorted[i - 1])
				edges[nb++] = Midpoint(sorted[i - 1], sorted[i]);
	}
	else
	{
		/* Quantiles of the rows; an edge never splits equal values. */
		for (int b = 1; b < max_bins; b++)
		{
			int			at = (int) ((int64) b * m / max_bins);
			double		v = sorted[at];
			int			j = at;

			while (j + 1 < m && sorted[j + 1] == v)
				j++;
			if (j + 1 >= m)
				break;
			if (nb == 0 || Midpoint(v, sorted[j + 1]) > edges[nb - 1])
				edges[nb++] = Midpoint(v, sorted[j + 1]);
		}
	}
	edges[nb++] = INFINITY;
	out->nbins[f] = nb;

	for (int i = 0; i < data->n; i++)
	{
		double		v = data->x[(size_t) i * data->p + f];
		int			lo = 0,
					hi = nb - 1;

		if (isnan(v))
		{
			out->bins[(size_t) f * data->n + i] = MISSING_BIN;
			continue;
		}
		while (lo < hi)			/* the first bin whose edge is >= v */
		{
			int			mid = (lo + hi) / 2;

			if (v <= edges[mid])
				hi = mid;
			else
				lo = mid + 1;
		}
		out->bins[(size_t) f * data->n + i] = (uint8) lo;
	}
}

static Binned *
BinAll(const ForestData *data, int max_bins)
{
	Binned	   *b = palloc(sizeof(Binned));
	double	   *sorted = palloc(sizeof(double) * Max(data->n, 1));

	b->n = data->n;
	b->p = data->p;
	b->bins = palloc((size_t) data->p * data->n);
	b->nbins = palloc(sizeof(int) * data->p);
	b->edges = palloc(sizeof(double) * 256 * data->p);
	for (int f = 0; f < data->p; f++)
		BinFeature(data, f, max_bins, sorted, b);
	pfree(sorted);
	return b;
}

/* What grows one forest. */
typedef struct Builder
{
	const ForestData *data;
	const ForestParams *params;
	const Binned *binned;
	double	   *class_weight;	/* k */
	float	   *w;				/* n: bootstrap count of each row */
	int32	   *idx;			/* the in-bag rows, partitioned node by node */
	double	   *hist;			/* 257 * k class weights per bin, the missing bin last */
	double	   *count;			/* 257 rows per bin */
	int		   *features;		/* p, shuffled per node */
	Rng			rng;
	Forest	   *forest;
	int			cap_nodes;
	int			cap_leaves;
} Builder;

typedef struct Split
{
	double		score;			/* sum over sides of sum_c w_c^2 / w, larger is purer */
	int			feature;
	int			bin;
	bool		missing_left;
} Split;

static int
NewNode(Builder *bd)
{
	Forest	   *fo = bd->forest;

	if (fo->n_nodes == bd->cap_nodes)
	{
		if (bd->cap_nodes >= INT_MAX / 2)
			ereport(ERROR,
					(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
					 errmsg("the forest has too many nodes"),
					 errhint("Limit max_depth or raise min_samples_leaf.")));
		bd->cap_nodes *= 2;
		fo->nodes = repalloc_huge(fo->nodes, sizeof(ForestNode) * bd->cap_nodes);
	}
	memset(&fo->nodes[fo->n_nodes], 0, sizeof(ForestNode));
	return fo->n_nodes++;
}

static void
MakeLeaf(Builder *bd, int node, const double *tot)
{
	Forest	   *fo = bd->forest;
	int			k = fo->k;
	double		sum = 0.0;
	float	   *probs;

	if (fo->n_leaves == bd->cap_leaves)
	{
		bd->cap_leaves *= 2;
		fo->leaf_probs = repalloc_huge(fo->leaf_probs, sizeof(float) * k * bd->cap_leaves);
	}
	probs = &fo->leaf_probs[(size_t) fo->n_leaves * k];
	for (int c = 0; c < k; c++)
		sum += tot[c];
	for (int c = 0; c < k; c++)
		probs[c] = sum > 0.0 ? (float) (tot[c] / sum) : 1.0f / k;
	fo->nodes[node].feature = -1;
	fo->nodes[node].left = fo->n_leaves++;
}

static inline double
Purity(const double *cls, int k, double total)
{
	double		s = 0.0;

	if (total <= 0.0)
		return 0.0;
	for (int c = 0; c < k; c++)
		s += cls[c] * cls[c];
	return s / total;
}

/* The best split of rows idx[start, end) on feature f, if better than *best. */
static void
TryFeature(Builder *bd, int f, int start, int end, const double *tot, double wtot,
		   double ntot, Split *best, bool *varied)
{
	int			k = bd->forest->k;
	int			n = bd->binned->n;
	int			nb = bd->binned->nbins[f];
	const uint8 *bins = &bd->binned->bins[(size_t) f * n];
	const int32 *y = bd->data->y;
	double	   *hist = bd->hist;
	double	   *count = bd->count;
	double	   *miss = &hist[256 * k];
	double		left[256],
				lw = 0.0,
				ln = 0.0,
				mw = 0.0,
				mn = 0.0;
	double		min_leaf = bd->params->min_samples_leaf;
	int			lo = 255,
				hi = -1,
				last;

	Assert(k <= 256);
	memset(hist, 0, sizeof(double) * 257 * k);
	memset(count, 0, sizeof(double) * 257);
	for (int j = start; j < end; j++)
	{
		int			i = bd->idx[j];
		int			b = bins[i];
		double		wi = bd->w[i];

		if (b == MISSING_BIN)
		{
			miss[y[i]] += wi * bd->class_weight[y[i]];
			count[256] += wi;
			continue;
		}
		hist[b * k + y[i]] += wi * bd->class_weight[y[i]];
		count[b] += wi;
		lo = Min(lo, b);
		hi = Max(hi, b);
	}
	for (int c = 0; c < k; c++)
		mw += miss[c];
	mn = count[256];
	if (hi < 0 || (lo == hi && mn == 0.0))
		return;					/* constant in this node */
	*varied = true;

	memset(left, 0, sizeof(double) * k);
	/* the last bin is a split point too when it can part the missing rows off */
	last = Min(mn > 0.0 ? hi : hi - 1, nb - 1);
	for (int b = lo; b <= last; b++)
	{
		double		right[256];
		double		rw,
					rn;

		if (count[b] == 0.0)
			continue;
		for (int c = 0; c < k; c++)
			left[c] += hist[b * k + c];
		for (int c = 0; c < k; c++)
			lw += hist[b * k + c];
		ln += count[b];

		/* missing rows to the right, then (if any) to the left */
		for (int side = 0; side < (mn > 0.0 ? 2 : 1); side++)
		{
			double		cl[256];
			double		clw = lw + (side ? mw : 0.0);
			double		cln = ln + (side ? mn : 0.0);
			double		score;

			rw = wtot - clw;
			rn = ntot - cln;
			if (cln < min_leaf || rn < min_leaf || clw <= 0.0 || rw <= 0.0)
				continue;
			for (int c = 0; c < k; c++)
			{
				cl[c] = left[c] + (side ? miss[c] : 0.0);
				right[c] = tot[c] - cl[c];
			}
			score = Purity(cl, k, clw) + Purity(right, k, rw);
			if (score > best->score + 1e-12 * fabs(best->score))
			{
				best->score = score;
				best->feature = f;
				best->bin = b;
				/* with no missing rows here, they follow the larger side */
				best->missing_left = mn > 0.0 ? side == 1 : cln >= rn;
			}
		}
	}
}

/* Grows one tree on the rows idx[0, nidx), returns its root. */
static int
GrowTree(Builder *bd, int nidx)
{
	typedef struct Pending
	{
		int			node,
					start,
					end,
					depth;
	} Pending;
	int			k = bd->forest->k;
	int			p = bd->data->p;
	int			root = NewNode(bd);
	int			cap = 64,
				top = 0;
	Pending    *stack = palloc(sizeof(Pending) * cap);
	double	   *tot = palloc(sizeof(double) * k);

	stack[top++] = (Pending) {root, 0, nidx, 0};
	while (top > 0)
	{
		Pending		nd = stack[--top];
		double		wtot = 0.0,
					ntot = 0.0;
		int			classes = 0,
					tried = 0;
		Split		best;
		bool		leaf;

		memset(tot, 0, sizeof(double) * k);
		for (int j = nd.start; j < nd.end; j++)
		{
			int			i = bd->idx[j];

			tot[bd->data->y[i]] += bd->w[i] * bd->class_weight[bd->data->y[i]];
			ntot += bd->w[i];
		}
		for (int c = 0; c < k; c++)
		{
			wtot += tot[c];
			classes += tot[c] > 0.0;
		}
		leaf = classes <= 1 ||
			(bd->params->max_depth > 0 && nd.depth >= bd->params->max_depth) ||
			ntot < bd->params->min_samples_split ||
			ntot < 2.0 * bd->params->min_samples_leaf;

		best.score = Purity(tot, k, wtot);
		best.feature = -1;
		if (!leaf)
		{
			/* Random features, until max_features that vary here were tried. */
			for (int j = 0; j < p && tried < bd->params->max_features; j++)
			{
				int			r = j + (int) RngBelow(&bd->rng, (uint32) (p - j));
				int			f = bd->features[r];
				bool		varied = false;

				bd->features[r] = bd->features[j];
				bd->features[j] = f;
				TryFeature(bd, f, nd.start, nd.end, tot, wtot, ntot, &best, &varied);
				tried += varied;
			}
		}
		if (best.feature < 0)
		{
			MakeLeaf(bd, nd.node, tot);
			continue;
		}

		/* Partition the node's rows, left side first. */
		{
			const uint8 *bins = &bd->binned->bins[(size_t) best.feature * bd->binned->n];
			int			i = nd.start,
						j = nd.end - 1;
			int			left;

			while (i <= j)
			{
				int			b = bins[bd->idx[i]];
				bool		goes_left = b == MISSING_BIN ? best.missing_left : b <= best.bin;

				if (goes_left)
					i++;
				else
				{
					int32		t = bd->idx[i];

					bd->idx[i] = bd->idx[j];
					bd->idx[j--] = t;
				}
			}
			left = NewNode(bd);
			(void) NewNode(bd);
			bd->forest->nodes[nd.node].feature = (int16) best.feature;
			bd->forest->nodes[nd.node].threshold = bd->binned->edges[best.feature * 256 + best.bin];
			bd->forest->nodes[nd.node].missing_left = best.missing_left;
			bd->forest->nodes[nd.node].left = left;
			if (top + 2 > cap)
			{
				cap *= 2;
				stack = repalloc(stack, sizeof(Pending) * cap);
			}
			stack[top++] = (Pending) {left + 1, i, nd.end, nd.depth + 1};
			stack[top++] = (Pending) {left, nd.start, i, nd.depth + 1};
		}
	}
	pfree(stack);
	pfree(tot);
	return root;
}

void
ForestDefaultParams(ForestParams *params, int p)
{
	params->n_trees = 100;
	params->max_depth = 0;
	params->min_samples_split = 2;
	params->min_samples_leaf = 1;
	params->max_features = Max(1, (int) floor(sqrt((double) p)));
	params->max_bins = 255;
	params->bootstrap = true;
	params->balanced = false;
	params->seed = 42;
	params->oob_rows = 100000;
}

/*
 * Trains a forest.  The result lives in the caller's memory context; all
 * scratch memory in a context of its own, freed before returning.
 */
Forest *
ForestTrain(const ForestData *data, const ForestParams *params)
{
	MemoryContext caller = CurrentMemoryContext;
	MemoryContext scratch = AllocSetContextCreate(caller, "brewml forest training",
												  ALLOCSET_DEFAULT_SIZES);
	Forest	   *fo = palloc0(sizeof(Forest));
	Builder		bd;
	int		   *eval_rows = NULL;
	int			n_eval = 0;
	double	   *oob_probs = NULL;
	int		   *oob_votes = NULL;

	fo->p = data->p;
	fo->k = data->k;
	fo->n_trees = params->n_trees;
	fo->roots = palloc(sizeof(int32) * params->n_trees);
	bd.cap_nodes = 1024;
	bd.cap_leaves = 512;
	fo->nodes = palloc(sizeof(ForestNode) * bd.cap_nodes);
	fo->leaf_probs = palloc(sizeof(float) * data->k * bd.cap_leaves);

	MemoryContextSwitchTo(scratch);
	bd.data = data;
	bd.params = params;
	bd.forest = fo;
	bd.binned = BinAll(data, Min(params->max_bins, 255));
	bd.w = palloc(sizeof(float) * data->n);
	bd.idx = palloc(sizeof(int32) * data->n);
	bd.hist = palloc(sizeof(double) * 257 * data->k);
	bd.count = palloc(sizeof(double) * 257);
	bd.features = palloc(sizeof(int) * data->p);
	bd.class_weight = palloc(sizeof(double) * data->k);
	for (int c = 0; c < data->k; c++)
		bd.class_weight[c] = 1.0;
	if (params->balanced)
	{
		int64	   *per = palloc0(sizeof(int64) * data->k);

		for (int i = 0; i < data->n; i++)
			per[data->y[i]]++;
		for (int c = 0; c < data->k; c++)
			bd.class_weight[c] = per[c] > 0 ? (double) data->n / ((double) data->k * per[c]) : 0.0;
	}

	/* The rows out-of-bag metrics are measured on: all, or a seeded sample. */
	if (params->bootstrap && params->oob_rows > 0)
	{
		Rng			rng;

		RngSeed(&rng, params->seed, UINT64CONST(0xffffffff));
		n_eval = Min(data->n, params->oob_rows);
		eval_rows = palloc(sizeof(int) * data->n);
		for (int i = 0; i < data->n; i++)
			eval_rows[i] = i;
		for (int i = 0; i < n_eval && n_eval < data->n; i++)
		{
			int			r = i + (int) RngBelow(&rng, (uint32) (data->n - i));
			int			t = eval_rows[r];

			eval_rows[r] = eval_rows[i];
			eval_rows[i] = t;
		}
		oob_probs = palloc0(sizeof(double) * n_eval * data->k);
		oob_votes = palloc0(sizeof(int) * n_eval);
	}

	for (int t = 0; t < params->n_trees; t++)
	{
		int			nidx = 0;

		CHECK_FOR_INTERRUPTS();
		RngSeed(&bd.rng, params->seed, (uint64) t);
		for (int f = 0; f < data->p; f++)
			bd.features[f] = f;
		if (params->bootstrap)
		{
			memset(bd.w, 0, sizeof(float) * data->n);
			for (int i = 0; i < data->n; i++)
				bd.w[RngBelow(&bd.rng, (uint32) data->n)] += 1.0f;
		}
		else
		{
			for (int i = 0; i < data->n; i++)
				bd.w[i] = 1.0f;
		}
		for (int i = 0; i < data->n; i++)
			if (bd.w[i] > 0.0f)
				bd.idx[nidx++] = i;

		fo->roots[t] = GrowTree(&bd, nidx);

		for (int j = 0; j < n_eval; j++)
		{
			int			i = eval_rows[j];
			const float *leaf;

			if (bd.w[i] > 0.0f)
				continue;
			leaf = ForestTreeLeaf(fo, t, &data->x[(size_t) i * data->p]);
			for (int c = 0; c < data->k; c++)
				oob_probs[(size_t) j * data->k + c] += leaf[c];
			oob_votes[j]++;
		}
	}

	if (n_eval > 0)
	{
		MemoryContextSwitchTo(caller);
		fo->oob_confusion = palloc0(sizeof(int64) * data->k * data->k);
		for (int j = 0; j < n_eval; j++)
		{
			int			bestc = 0;

			if (oob_votes[j] == 0)
				continue;
			for (int c = 1; c < data->k; c++)
				if (oob_probs[(size_t) j * data->k + c] > oob_probs[(size_t) j * data->k + bestc])
					bestc = c;
			fo->oob_confusion[data->y[eval_rows[j]] * data->k + bestc]++;
			fo->oob_evaluated++;
		}
	}
	MemoryContextSwitchTo(caller);
	MemoryContextDelete(scratch);
	return fo;
}

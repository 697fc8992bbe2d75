/*
 * forest.h
 *		A random forest of CART classification trees: training on binned
 *		features (histograms, so a split costs one pass over a node's rows),
 *		prediction on raw float8 features, a checksummed binary format, and
 *		the metrics brewml stores with a model.  Pure computation: no SPI, no
 *		catalog access; memory comes from the current memory context.
 */
#ifndef BREWML_FOREST_H
#define BREWML_FOREST_H

#include "postgres.h"

#include "lib/stringinfo.h"

/* Training data: n rows of p features (NaN = missing), labels 0..k-1. */
typedef struct ForestData
{
	int			n;
	int			p;
	int			k;
	const double *x;			/* row-major, n * p */
	const int32 *y;
} ForestData;

typedef struct ForestParams
{
	int			n_trees;
	int			max_depth;		/* 0: unlimited */
	int			min_samples_split;
	int			min_samples_leaf;
	int			max_features;	/* features tried per split */
	int			max_bins;		/* at most 256 */
	bool		bootstrap;
	bool		balanced;		/* class weights n / (k * n_c) */
	uint64		seed;
	int			oob_rows;		/* out-of-bag metrics on at most this many rows; 0: none */
} ForestParams;

/*
 * A node: an internal node sends x <= threshold to child `left`, else to
 * left + 1; a missing x goes left when missing_left.  A leaf has feature -1
 * and left indexes its class probabilities in Forest.leaf_probs.
 */
typedef struct ForestNode
{
	double		threshold;
	int32		left;
	int16		feature;
	uint8		missing_left;
	uint8		pad;
} ForestNode;

typedef struct ForestCompiled ForestCompiled;

typedef struct Forest
{
	int			p;
	int			k;
	int			n_trees;
	int			n_nodes;
	int			n_leaves;
	int32	   *roots;			/* n_trees */
	ForestNode *nodes;			/* n_nodes */
	float	   *leaf_probs;		/* n_leaves * k */
	struct ForestCompiled *compiled;	/* by ForestCompile, for fast prediction; or NULL */
	/* filled by training only, when oob_rows > 0 */
	int64	   *oob_confusion;	/* k * k, true class by row, predicted by column */
	int			oob_evaluated;
} Forest;

/* The class probabilities of the leaf that tree t sends row x (p features) to. */
static inline const float *
ForestTreeLeaf(const Forest *forest, int t, const double *x)
{
	const ForestNode *nodes = forest->nodes;
	int			i = forest->roots[t];

	while (nodes[i].feature >= 0)
	{
		const ForestNode *nd = &nodes[i];
		double		v = x[nd->feature];

		if (v != v)				/* NaN: missing */
			i = nd->missing_left ? nd->left : nd->left + 1;
		else
			i = v <= nd->threshold ? nd->left : nd->left + 1;
	}
	return &forest->leaf_probs[(size_t) nodes[i].left * forest->k];
}

/* Confusion-matrix summaries. */
typedef struct ForestScores
{
	double		accuracy;
	double		macro_f1;
} ForestScores;

extern void ForestDefaultParams(ForestParams *params, int p);
extern Forest *ForestTrain(const ForestData *data, const ForestParams *params);
extern void ForestCompile(Forest *forest);
extern void ForestPredict(const Forest *forest, const double *x, double *probs, bool plain);
extern int	ForestClassify(const Forest *forest, const double *x, double *best_prob, bool plain);

extern bytea *ForestSerialize(const Forest *forest);
extern Forest *ForestDeserialize(const bytea *bin, const char *what);

extern ForestScores ForestScore(const int64 *confusion, int k);
extern void ForestMetricsJson(StringInfo out, const int64 *confusion, int k,
							  const char *const *classes, const char *method);

#endif							/* BREWML_FOREST_H */

/*
 * welford.h
 *		One-pass, numerically stable count / mean / variance (Welford), and
 *		the pairwise merge of two such summaries (Chan et al.), shared by the
 *		aggregates and the sensor functions.
 */
#ifndef BREWML_WELFORD_H
#define BREWML_WELFORD_H

#include <math.h>

typedef struct Welford
{
	int64		n;				/* values seen */
	double		mean;			/* running mean */
	double		m2;				/* sum of squared deviations from the mean */
} Welford;

static inline void
WelfordAdd(Welford *w, double x)
{
	double		delta = x - w->mean;

	w->n++;
	w->mean += delta / (double) w->n;
	w->m2 += delta * (x - w->mean);
}

static inline void
WelfordMerge(Welford *a, const Welford *b)
{
	double		n,
				delta;

	if (b->n == 0)
		return;
	if (a->n == 0)
	{
		*a = *b;
		return;
	}
	n = (double) a->n + (double) b->n;
	delta = b->mean - a->mean;
	a->mean += delta * ((double) b->n / n);
	a->m2 += b->m2 + delta * delta * ((double) a->n * (double) b->n / n);
	a->n += b->n;
}

/* Sample standard deviation (divides by n - 1), as pandas; NaN below 2 values. */
static inline double
WelfordStd(const Welford *w)
{
	if (w->n < 2)
		return NAN;
	return sqrt(w->m2 / (double) (w->n - 1));
}

#endif							/* BREWML_WELFORD_H */

/*
 * brewml.h
 *		Declarations shared by the brewml C sources.
 */
#ifndef BREWML_H
#define BREWML_H

#include "postgres.h"

/* The sensor alert rule: in alert when value >= mean + BREWML_ALERT_K * std. */
#define BREWML_ALERT_K 2.0

/* brewml.adjust raises a sensor's mean by this factor. */
#define BREWML_ADJUST_FACTOR 1.10

static inline bool
BrewmlIsAlert(double value, double mean, double std)
{
	return value >= mean + BREWML_ALERT_K * std;
}

#endif							/* BREWML_H */

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

/* Longest sensor id accepted, in bytes. */
#define SENSOR_ID_MAX 128

/* A sensor's weights through each backend's cache (sensor_cache.c). */
extern bool SensorCachedWeights(const char *sensor, double *mean, double *std);

/* Settings (brewml.c); see README's configuration table. */
extern char *brewml_database;
extern char *brewml_punkapi_url;
extern int	brewml_poll_interval;
extern int	brewml_beers_per_poll;
extern int	brewml_max_response_bytes;
extern int	brewml_fetch_timeout;
extern int	brewml_max_redirects;
extern int	brewml_fetch_log_retention;
extern bool brewml_compiled_predict;

/* The Punk API worker (worker.c). */
extern void WorkerRegister(void);
extern void WorkerShmemRequest(void);
extern void WorkerShmemStartup(void);

#endif							/* BREWML_H */

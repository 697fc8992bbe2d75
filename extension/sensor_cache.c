/*
 * sensor_cache.c
 *		Each backend's cache of sensor weights, for predictions: a lookup in
 *		a hash table instead of a query per call (the HTTP predict route's
 *		hot path).  Sensors never fitted are remembered too.
 *
 *		A statement trigger on brewml.sensor_weights (brewml.models_changed)
 *		sends a relcache invalidation for the table on every change; the
 *		callback below then empties the cache, in every backend at its next
 *		transaction and in the changing one at its next command, as the model
 *		cache does.  A lookup first takes pending invalidations, then reads
 *		the latest committed weights (not the statement's snapshot, which may
 *		predate a change whose invalidation was already taken); if an
 *		invalidation arrived meanwhile it returns what it read but keeps
 *		nothing.  So predictions always use the latest weights, even inside
 *		a REPEATABLE READ transaction.
 */
#include "postgres.h"

#include "brewml.h"

#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"

/* Sensors kept at most; past it the cache starts again empty. */
#define SENSOR_CACHE_MAX 100000

typedef struct SensorEntry
{
	char		sensor_id[SENSOR_ID_MAX + 1];	/* the key */
	bool		fitted;
	double		mean;
	double		std;
} SensorEntry;

static HTAB *sensor_cache = NULL;
static uint64 sensor_cache_generation = 0;
static Oid	sensor_weights_relid = InvalidOid;	/* looked up again after a drop */
static bool callback_registered = false;
static SPIPlanPtr lookup_plan = NULL;

static void
SensorCacheInvalidate(Datum arg, Oid relid)
{
	(void) arg;
	if (relid != InvalidOid && relid != sensor_weights_relid)
		return;
	sensor_weights_relid = InvalidOid;	/* the table may have been recreated */
	if (sensor_cache != NULL)
	{
		hash_destroy(sensor_cache);
		sensor_cache = NULL;
	}
	sensor_cache_generation++;
}

static void
SensorCacheInit(void)
{
	HASHCTL		ctl;

	if (sensor_weights_relid == InvalidOid)
	{
		sensor_weights_relid = get_relname_relid("sensor_weights", get_namespace_oid("brewml", false));
		if (sensor_weights_relid == InvalidOid)
			elog(ERROR, "brewml.sensor_weights does not exist");
	}
	if (!callback_registered)
	{
		CacheRegisterRelcacheCallback(SensorCacheInvalidate, (Datum) 0);
		callback_registered = true;
	}
	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = SENSOR_ID_MAX + 1;
	ctl.entrysize = sizeof(SensorEntry);
	ctl.hcxt = TopMemoryContext;
	sensor_cache = hash_create("brewml sensor weights", 1024, &ctl, HASH_ELEM | HASH_STRINGS | HASH_CONTEXT);
}

/* Reads a sensor's weights from the table; false if it was never fitted. */
static bool
SensorRead(const char *sensor, double *mean, double *std)
{
	Datum		arg = CStringGetTextDatum(sensor);
	bool		found,
				isnull;

	SPI_connect();
	if (lookup_plan == NULL)
	{
		Oid			argtype = TEXTOID;
		SPIPlanPtr	plan = SPI_prepare("SELECT w.mean, w.std FROM brewml.sensor_weights w WHERE w.sensor_id = $1",
									   1, &argtype);

		if (plan == NULL || SPI_keepplan(plan) != 0)
			elog(ERROR, "SPI_prepare failed: %s", SPI_result_code_string(SPI_result));
		lookup_plan = plan;
	}
	if (SPI_execute_snapshot(lookup_plan, &arg, NULL, GetLatestSnapshot(), InvalidSnapshot,
							 true, false, 1) != SPI_OK_SELECT)
		elog(ERROR, "reading brewml.sensor_weights failed");
	found = SPI_processed == 1;
	if (found)
	{
		*mean = DatumGetFloat8(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
		*std = DatumGetFloat8(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull));
	}
	SPI_finish();
	return found;
}

/*
 * A sensor's mean and std, from the cache or the table; false if it was
 * never fitted.  sensor is at most SENSOR_ID_MAX bytes.
 */
bool
SensorCachedWeights(const char *sensor, double *mean, double *std)
{
	SensorEntry *e;
	uint64		generation;
	bool		fitted;

	if (sensor_cache == NULL)
		SensorCacheInit();
	e = hash_search(sensor_cache, sensor, HASH_FIND, NULL);
	if (e != NULL)
	{
		*mean = e->mean;
		*std = e->std;
		return e->fitted;
	}

	/*
	 * Take pending invalidations first, so that the latest snapshot read next
	 * is at least as new as every change they announce; reading may take more,
	 * which destroy the table: keep the answer only if none came.
	 */
	AcceptInvalidationMessages();
	generation = sensor_cache_generation;
	fitted = SensorRead(sensor, mean, std);
	if (generation != sensor_cache_generation)
		return fitted;
	if (sensor_cache == NULL || hash_get_num_entries(sensor_cache) >= SENSOR_CACHE_MAX)
	{
		if (sensor_cache != NULL)
			hash_destroy(sensor_cache);
		SensorCacheInit();
	}
	e = hash_search(sensor_cache, sensor, HASH_ENTER, NULL);
	e->fitted = fitted;
	e->mean = fitted ? *mean : 0;
	e->std = fitted ? *std : 0;
	return fitted;
}

/*
 * brewml.c
 *		Module entry point of the brewml extension: the brewml.* settings, and
 *		the Punk API worker and its shared memory when preloaded.
 */
#include "postgres.h"

#include <limits.h>

#include "brewml.h"

#include "fmgr.h"
#include "miscadmin.h"
#include "storage/ipc.h"
#include "utils/guc.h"

PG_MODULE_MAGIC;

void		_PG_init(void);

char	   *brewml_database = NULL;
char	   *brewml_punkapi_url = NULL;
int			brewml_poll_interval = 300;
int			brewml_beers_per_poll = 1;
int			brewml_max_response_bytes = 1024 * 1024;
int			brewml_fetch_timeout = 10000;
int			brewml_max_redirects = 3;
int			brewml_fetch_log_retention = 30;
bool		brewml_compiled_predict = true;

static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

/* Only http and https URLs may aim the worker (no file://, no gopher://). */
static bool
CheckPunkapiUrl(char **newval, void **extra, GucSource source)
{
	const char *url = *newval;

	(void) extra;
	(void) source;
	if (url == NULL || url[0] == '\0')
		return true;
	if (pg_strncasecmp(url, "http://", 7) == 0 || pg_strncasecmp(url, "https://", 8) == 0)
		return true;
	GUC_check_errdetail("brewml.punkapi_url must be an http:// or https:// URL.");
	return false;
}

static void
BrewmlShmemRequest(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	WorkerShmemRequest();
}

static void
BrewmlShmemStartup(void)
{
	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();
	WorkerShmemStartup();
}

/* Runs when the library is loaded, at server start with shared_preload_libraries. */
void
_PG_init(void)
{
	DefineCustomStringVariable("brewml.database",
							   "Database the Punk API worker connects to; empty disables the worker.",
							   NULL, &brewml_database, "brewml",
							   PGC_POSTMASTER, 0, NULL, NULL, NULL);
	DefineCustomStringVariable("brewml.punkapi_url",
							   "URL the Punk API worker polls; empty leaves it idle.",
							   NULL, &brewml_punkapi_url, "",
							   PGC_SIGHUP, GUC_SUPERUSER_ONLY, CheckPunkapiUrl, NULL, NULL);
	DefineCustomIntVariable("brewml.poll_interval",
							"Time between two polls of the Punk API.",
							NULL, &brewml_poll_interval, 300, 1, 86400,
							PGC_SIGHUP, GUC_UNIT_S, NULL, NULL, NULL);
	DefineCustomIntVariable("brewml.beers_per_poll",
							"Requests the worker sends at once in each poll.",
							NULL, &brewml_beers_per_poll, 1, 1, 100,
							PGC_SIGHUP, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("brewml.max_response_bytes",
							"Largest response body the worker accepts.",
							NULL, &brewml_max_response_bytes, 1024 * 1024, 1024, INT_MAX / 2,
							PGC_SIGHUP, GUC_UNIT_BYTE, NULL, NULL, NULL);
	DefineCustomIntVariable("brewml.fetch_timeout",
							"Longest time one request of the worker may take.",
							NULL, &brewml_fetch_timeout, 10000, 100, 600000,
							PGC_SIGHUP, GUC_UNIT_MS, NULL, NULL, NULL);
	DefineCustomIntVariable("brewml.max_redirects",
							"Redirects the worker follows in one request (http and https only).",
							NULL, &brewml_max_redirects, 3, 0, 20,
							PGC_SIGHUP, GUC_SUPERUSER_ONLY, NULL, NULL, NULL);
	DefineCustomIntVariable("brewml.fetch_log_retention",
							"Days brewml.fetch_log keeps its rows; 0 keeps them forever.",
							NULL, &brewml_fetch_log_retention, 30, 0, 36500,
							PGC_SIGHUP, 0, NULL, NULL, NULL);
	DefineCustomBoolVariable("brewml.compiled_predict",
							 "Predicts with the compiled, branch-free walk of a forest (off: the plain walk, same answers).",
							 NULL, &brewml_compiled_predict, true,
							 PGC_USERSET, 0, NULL, NULL, NULL);
	MarkGUCPrefixReserved("brewml");

	if (!process_shared_preload_libraries_in_progress)
		return;
	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = BrewmlShmemRequest;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = BrewmlShmemStartup;
	WorkerRegister();
}

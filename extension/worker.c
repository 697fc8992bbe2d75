/*
 * worker.c
 *		The Punk API worker: a background worker that polls brewml.punkapi_url
 *		every brewml.poll_interval, brewml.beers_per_poll requests at once, and
 *		stores every beer it receives in brewml.raw_beers (whose trigger feeds
 *		brewml.cleaned_beers) and every request in brewml.fetch_log.
 *
 *		The network is awaited with no transaction open; what arrived is then
 *		stored in one short transaction, each response in a subtransaction of
 *		its own, so a bad payload is logged and counted and writes no row.
 *		After a poll where every request failed the worker backs off (doubling
 *		the interval, up to an hour, longer if a 429 says Retry-After);
 *		brewml.poll_now() wakes it at once regardless.
 */
#include "postgres.h"

#include "brewml.h"
#include "fetch.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/proc.h"
#include "storage/shmem.h"
#include "storage/spin.h"
#include "tcop/tcopprot.h"
#include "mb/pg_wchar.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

/* Seconds the postmaster waits before starting a worker that exited. */
#define WORKER_RESTART_SECONDS 5
/* The longest back-off after failures, unless the poll interval is longer. */
#define WORKER_MAX_BACKOFF_SECONDS 3600

typedef struct WorkerShared
{
	slock_t		mutex;
	pid_t		pid;			/* 0 when no worker runs */
	Latch	   *latch;			/* the worker's, to wake it */
	bool		poll_requested;
	TimestampTz started_at;
	TimestampTz last_poll_at;
	TimestampTz last_success_at;
	TimestampTz next_poll_at;
	TimestampTz last_error_at;
	int64		polls;
	int64		fetches;
	int64		beers;
	int64		failures;
	int32		consecutive_failures;
	char		last_error[256];
} WorkerShared;

static WorkerShared *worker_shared = NULL;

PGDLLEXPORT void brewml_worker_main(Datum arg);

void
WorkerShmemRequest(void)
{
	RequestAddinShmemSpace(MAXALIGN(sizeof(WorkerShared)));
}

void
WorkerShmemStartup(void)
{
	bool		found;

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	worker_shared = ShmemInitStruct("brewml worker", sizeof(WorkerShared), &found);
	if (!found)
	{
		memset(worker_shared, 0, sizeof(WorkerShared));
		SpinLockInit(&worker_shared->mutex);
	}
	LWLockRelease(AddinShmemInitLock);
}

/* Registers the worker at server start, unless brewml.database is empty. */
void
WorkerRegister(void)
{
	BackgroundWorker worker;

	if (brewml_database == NULL || brewml_database[0] == '\0')
		return;
	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker.bgw_restart_time = WORKER_RESTART_SECONDS;
	snprintf(worker.bgw_library_name, BGW_MAXLEN, "brewml");
	snprintf(worker.bgw_function_name, BGW_MAXLEN, "brewml_worker_main");
	snprintf(worker.bgw_name, BGW_MAXLEN, "brewml punkapi worker");
	snprintf(worker.bgw_type, BGW_MAXLEN, "brewml punkapi worker");
	RegisterBackgroundWorker(&worker);
}

static void
WorkerDetach(int code, Datum arg)
{
	(void) code;
	(void) arg;
	SpinLockAcquire(&worker_shared->mutex);
	worker_shared->pid = 0;
	worker_shared->latch = NULL;
	SpinLockRelease(&worker_shared->mutex);
}

static void
WorkerRecordError(const char *message)
{
	SpinLockAcquire(&worker_shared->mutex);
	strlcpy(worker_shared->last_error, message, sizeof(worker_shared->last_error));
	worker_shared->last_error_at = GetCurrentTimestamp();
	SpinLockRelease(&worker_shared->mutex);
}

/*
 * Stores one response: its beers through brewml.ingest_beers, in a
 * subtransaction, so that a bad payload rolls back alone.  Returns the
 * number of beers stored; on failure sets *outcome and error.
 */
static int
WorkerIngest(const char *url, FetchResult *r, TimestampTz fetched_at,
			 const char **outcome, char *error, size_t errlen)
{
	MemoryContext cxt = CurrentMemoryContext;
	ResourceOwner owner = CurrentResourceOwner;
	Oid			types[4] = {TEXTOID, INT4OID, TEXTOID, TIMESTAMPTZOID};
	Datum		args[4];
	int			beers = 0;

	args[0] = CStringGetTextDatum(url);
	args[1] = Int32GetDatum((int32) r->http_status);
	args[3] = TimestampTzGetDatum(fetched_at);

	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(cxt);
	PG_TRY();
	{
		bool		isnull;
		char	   *body;

		/* JSON travels in UTF-8: verified, and converted to the database's encoding */
		body = pg_any_to_server(r->body, (int) r->len, PG_UTF8);
		args[2] = PointerGetDatum(cstring_to_text(body));

		if (SPI_execute_with_args("SELECT brewml.ingest_beers($1, $2, $3::jsonb, $4)",
								  4, types, args, NULL, false, 1) != SPI_OK_SELECT)
			elog(ERROR, "brewml.ingest_beers failed");
		beers = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc,
											1, &isnull));
		ReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(cxt);
		CurrentResourceOwner = owner;
		if (beers == 0)
		{
			*outcome = "empty";
			snprintf(error, errlen, "the response held no beer");
		}
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(cxt);
		edata = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(cxt);
		CurrentResourceOwner = owner;
		*outcome = (edata->sqlerrcode == ERRCODE_INVALID_TEXT_REPRESENTATION ||
					edata->sqlerrcode == ERRCODE_CHARACTER_NOT_IN_REPERTOIRE ||
					edata->sqlerrcode == ERRCODE_UNTRANSLATABLE_CHARACTER) ? "bad_json" : "bad_payload";
		snprintf(error, errlen, "%s", edata->message);
		FreeErrorData(edata);
		beers = 0;
	}
	PG_END_TRY();
	return beers;
}

/* Logs one request in brewml.fetch_log. */
static void
WorkerLogFetch(const char *url, const FetchResult *r, TimestampTz fetched_at, int beers,
			   const char *outcome, const char *error)
{
	Oid			types[8] = {TIMESTAMPTZOID, TEXTOID, INT4OID, FLOAT8OID, INT8OID, INT4OID,
	TEXTOID, TEXTOID};
	Datum		args[8];
	char		nulls[8] = "        ";

	args[0] = TimestampTzGetDatum(fetched_at);
	args[1] = CStringGetTextDatum(url);
	args[2] = Int32GetDatum((int32) r->http_status);
	if (r->http_status == 0)
		nulls[2] = 'n';
	args[3] = Float8GetDatum(r->seconds * 1000.0);
	args[4] = Int64GetDatum((int64) r->len);
	args[5] = Int32GetDatum(beers);
	args[6] = CStringGetTextDatum(outcome);
	args[7] = CStringGetTextDatum(error);
	if (error[0] == '\0')
		nulls[7] = 'n';
	if (SPI_execute_with_args("INSERT INTO brewml.fetch_log (fetched_at, url, http_status, latency_ms,"
							  " bytes, beers, outcome, error) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
							  8, types, args, nulls, false, 0) != SPI_OK_INSERT)
		elog(ERROR, "could not insert into brewml.fetch_log");
	ereport(strcmp(outcome, "ok") == 0 ? DEBUG1 : LOG,
			(errmsg("brewml punkapi worker: GET %s: %s in %.1f ms, %d beer%s%s%s",
					url, outcome, r->seconds * 1000.0, beers, beers == 1 ? "" : "s",
					error[0] ? ": " : "", error)));
}

/*
 * One poll: fetch, then store.  Returns how many requests succeeded; sets
 * *retry_after to the longest Retry-After seen (seconds) or -1.
 */
static int
WorkerPoll(long *retry_after)
{
	char	   *url = pstrdup(brewml_punkapi_url);
	int			n = brewml_beers_per_poll;
	FetchOptions opts = {brewml_fetch_timeout, brewml_max_redirects,
	(size_t) brewml_max_response_bytes};
	FetchResult *results = palloc(sizeof(FetchResult) * n);
	TimestampTz fetched_at;
	int			ok = 0,
				beers = 0;

	*retry_after = -1;
	pgstat_report_activity(STATE_RUNNING, "brewml: fetching beers");
	FetchMany(url, n, &opts, results);
	fetched_at = GetCurrentTimestamp();

	pgstat_report_activity(STATE_RUNNING, "brewml: storing beers");
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	PushActiveSnapshot(GetTransactionSnapshot());
	for (int i = 0; i < n; i++)
	{
		FetchResult *r = &results[i];
		const char *outcome = FetchOutcomeName(r->outcome);
		char		error[512];
		int			got = 0;

		snprintf(error, sizeof(error), "%s", r->error);
		if (r->outcome == FETCH_OK)
			got = WorkerIngest(url, r, fetched_at, &outcome, error, sizeof(error));
		if (r->retry_after > *retry_after)
			*retry_after = r->retry_after;
		WorkerLogFetch(url, r, fetched_at, got, outcome, error);
		if (got > 0)
			ok++;
		else
			WorkerRecordError(error);
		beers += got;
	}
	if (brewml_fetch_log_retention > 0)
	{
		Oid			types[1] = {INT4OID};
		Datum		args[1] = {Int32GetDatum(brewml_fetch_log_retention)};

		SPI_execute_with_args("DELETE FROM brewml.fetch_log WHERE fetched_at < now() - make_interval(days => $1)",
							  1, types, args, NULL, false, 0);
	}
	SPI_finish();
	PopActiveSnapshot();
	CommitTransactionCommand();
	pgstat_report_stat(false);
	pgstat_report_activity(STATE_IDLE, NULL);

	SpinLockAcquire(&worker_shared->mutex);
	worker_shared->polls++;
	worker_shared->fetches += n;
	worker_shared->beers += beers;
	worker_shared->failures += n - ok;
	worker_shared->last_poll_at = fetched_at;
	if (ok > 0)
		worker_shared->last_success_at = fetched_at;
	SpinLockRelease(&worker_shared->mutex);
	return ok;
}

/* Seconds until the next poll after one that had ok successes. */
static long
WorkerDelay(int ok, long retry_after)
{
	long		interval = brewml_poll_interval;
	long		delay = interval;
	long		cap = Max(interval, WORKER_MAX_BACKOFF_SECONDS);
	int			failures;

	SpinLockAcquire(&worker_shared->mutex);
	worker_shared->consecutive_failures = ok > 0 ? 0 : worker_shared->consecutive_failures + 1;
	failures = worker_shared->consecutive_failures;
	SpinLockRelease(&worker_shared->mutex);

	if (failures > 0)
		delay = Min(interval << Min(failures, 12), cap);
	/* no sooner than Retry-After asks, and never sooner than the interval */
	return Max(delay, Min(retry_after, cap));
}

/* Entry point of the Punk API worker. */
void
brewml_worker_main(Datum arg)
{
	MemoryContext pollcxt;
	TimestampTz next_poll;

	(void) arg;
	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnection(brewml_database, NULL, 0);
	pgstat_report_appname("brewml punkapi worker");
	FetchGlobalInit();

	SpinLockAcquire(&worker_shared->mutex);
	worker_shared->pid = MyProcPid;
	worker_shared->latch = MyLatch;
	worker_shared->started_at = GetCurrentTimestamp();
	SpinLockRelease(&worker_shared->mutex);
	before_shmem_exit(WorkerDetach, 0);
	ereport(LOG, (errmsg("brewml punkapi worker started in database \"%s\"", brewml_database)));

	pollcxt = AllocSetContextCreate(TopMemoryContext, "brewml poll", ALLOCSET_DEFAULT_SIZES);
	next_poll = GetCurrentTimestamp();
	for (;;)
	{
		bool		requested;
		TimestampTz now = GetCurrentTimestamp();
		bool		configured = brewml_punkapi_url != NULL && brewml_punkapi_url[0] != '\0';

		SpinLockAcquire(&worker_shared->mutex);
		requested = worker_shared->poll_requested;
		worker_shared->poll_requested = false;
		worker_shared->next_poll_at = configured ? next_poll : 0;
		SpinLockRelease(&worker_shared->mutex);

		if (configured && (requested || now >= next_poll))
		{
			MemoryContext oldcxt = MemoryContextSwitchTo(pollcxt);
			volatile int ok = 0;
			volatile long retry_after = -1;

			PG_TRY();
			{
				long		ra = -1;

				ok = WorkerPoll(&ra);
				retry_after = ra;
			}
			PG_CATCH();
			{
				ErrorData  *edata;

				/* Not a bad payload (those are handled): the database itself. */
				MemoryContextSwitchTo(pollcxt);
				edata = CopyErrorData();
				FlushErrorState();
				AbortCurrentTransaction();
				pgstat_report_activity(STATE_IDLE, NULL);
				ereport(LOG,
						(errmsg("brewml punkapi worker: could not store a poll: %s", edata->message),
						 errhint("Is the brewml extension created and up to date in database \"%s\"?",
								 brewml_database)));
				WorkerRecordError(edata->message);
				SpinLockAcquire(&worker_shared->mutex);
				worker_shared->polls++;
				worker_shared->failures++;
				SpinLockRelease(&worker_shared->mutex);
			}
			PG_END_TRY();
			MemoryContextSwitchTo(oldcxt);
			MemoryContextReset(pollcxt);
			next_poll = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
													WorkerDelay(ok, retry_after) * 1000);
			continue;
		}

		(void) WaitLatch(MyLatch,
						 WL_LATCH_SET | WL_EXIT_ON_PM_DEATH | (configured ? WL_TIMEOUT : 0),
						 configured ? Max(1, TimestampDifferenceMilliseconds(now, next_poll)) : -1,
						 PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			int			old_interval = brewml_poll_interval;

			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
			/* A shorter interval takes effect now, not after the old one. */
			if (brewml_poll_interval < old_interval)
				next_poll = Min(next_poll, TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
																	   brewml_poll_interval * 1000L));
		}
	}
}

static void
WorkerCheckLoaded(void)
{
	if (worker_shared == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("the brewml worker needs brewml in shared_preload_libraries"),
				 errhint("Add brewml to shared_preload_libraries and restart the server.")));
}

/* brewml.poll_now(): wake the worker for a poll at once; false if it is not running. */
PG_FUNCTION_INFO_V1(worker_poll_now);
Datum
worker_poll_now(PG_FUNCTION_ARGS)
{
	Latch	   *latch;

	WorkerCheckLoaded();
	SpinLockAcquire(&worker_shared->mutex);
	latch = worker_shared->pid != 0 ? worker_shared->latch : NULL;
	if (latch != NULL)
		worker_shared->poll_requested = true;
	SpinLockRelease(&worker_shared->mutex);
	if (latch == NULL)
	{
		ereport(WARNING,
				(errmsg("the brewml punkapi worker is not running"),
				 errhint("Check brewml.database and the server log.")));
		PG_RETURN_BOOL(false);
	}
	SetLatch(latch);
	PG_RETURN_BOOL(true);
}

static void
StatusTimestamp(Datum *values, bool *nulls, int i, TimestampTz ts)
{
	values[i] = TimestampTzGetDatum(ts);
	nulls[i] = ts == 0;
}

/* brewml.worker_status(): what the worker is doing and has done since it started. */
PG_FUNCTION_INFO_V1(worker_status);
Datum
worker_status(PG_FUNCTION_ARGS)
{
	WorkerShared copy;
	TupleDesc	desc;
	Datum		values[13];
	bool		nulls[13] = {0};

	WorkerCheckLoaded();
	if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "brewml.worker_status must return a composite type");
	SpinLockAcquire(&worker_shared->mutex);
	memcpy(&copy, worker_shared, sizeof(copy));
	SpinLockRelease(&worker_shared->mutex);

	values[0] = BoolGetDatum(copy.pid != 0);
	values[1] = Int32GetDatum(copy.pid);
	nulls[1] = copy.pid == 0;
	StatusTimestamp(values, nulls, 2, copy.started_at);
	StatusTimestamp(values, nulls, 3, copy.last_poll_at);
	StatusTimestamp(values, nulls, 4, copy.last_success_at);
	StatusTimestamp(values, nulls, 5, copy.pid != 0 ? copy.next_poll_at : 0);
	values[6] = Int64GetDatum(copy.polls);
	values[7] = Int64GetDatum(copy.fetches);
	values[8] = Int64GetDatum(copy.beers);
	values[9] = Int64GetDatum(copy.failures);
	values[10] = Int32GetDatum(copy.consecutive_failures);
	values[11] = CStringGetTextDatum(copy.last_error);
	nulls[11] = copy.last_error[0] == '\0';
	StatusTimestamp(values, nulls, 12, copy.last_error_at);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(desc), values, nulls)));
}

/*
 * fetch.c
 *		Sends n GETs of one URL at once with libcurl's multi interface.
 *
 *		Only http and https are spoken, also after a redirect; redirects are
 *		bounded; TLS peers and host names are verified (libcurl's defaults,
 *		never turned off); a body larger than max_bytes is cut off, whether
 *		announced by Content-Length or not.  While waiting on the network the
 *		caller's interrupts are served every 100 ms and the process exits if
 *		the postmaster died.  No transaction may be open around FetchMany.
 *
 *		libcurl calls back into this file from inside curl_multi_perform, so
 *		the callbacks use malloc, never palloc: an ERROR must not longjmp
 *		through libcurl's frames.
 */
#include "postgres.h"

#include <curl/curl.h>

#include "fetch.h"

#include "miscadmin.h"
#include "postmaster/postmaster.h"
#include "storage/ipc.h"
#include "storage/pmsignal.h"

typedef struct Transfer
{
	CURL	   *easy;
	char	   *data;			/* malloc'd */
	size_t		len;
	size_t		cap;
	size_t		max;
	bool		too_large;
	bool		oom;
	char		errbuf[CURL_ERROR_SIZE];
} Transfer;

static const char *const outcome_names[] = {
	[FETCH_OK] = "ok",
	[FETCH_HTTP_ERROR] = "http_error",
	[FETCH_RATE_LIMITED] = "rate_limited",
	[FETCH_TIMEOUT] = "timeout",
	[FETCH_TOO_LARGE] = "too_large",
	[FETCH_REFUSED_PROTOCOL] = "refused_protocol",
	[FETCH_TOO_MANY_REDIRECTS] = "too_many_redirects",
	[FETCH_NETWORK_ERROR] = "network_error",
};

const char *
FetchOutcomeName(FetchOutcome outcome)
{
	return outcome_names[outcome];
}

void
FetchGlobalInit(void)
{
	CURLcode	rc = curl_global_init(CURL_GLOBAL_DEFAULT);

	if (rc != CURLE_OK)
		elog(ERROR, "curl_global_init failed: %s", curl_easy_strerror(rc));
}

/* libcurl's write callback: keep the body, up to max bytes. */
static size_t
FetchWrite(char *ptr, size_t size, size_t nmemb, void *arg)
{
	Transfer   *t = (Transfer *) arg;
	size_t		n = size * nmemb;

	if (t->len + n > t->max)
	{
		t->too_large = true;
		return 0;				/* aborts the transfer with CURLE_WRITE_ERROR */
	}
	if (t->len + n + 1 > t->cap)
	{
		size_t		cap = Max(t->cap * 2, t->len + n + 1);
		char	   *data = realloc(t->data, Min(cap, t->max + 1));

		if (data == NULL)
		{
			t->oom = true;
			return 0;
		}
		t->data = data;
		t->cap = Min(cap, t->max + 1);
	}
	memcpy(t->data + t->len, ptr, n);
	t->len += n;
	return n;
}

static CURL *
FetchEasy(const char *url, const FetchOptions *opts, Transfer *t)
{
	CURL	   *easy = curl_easy_init();

	if (easy == NULL)
		return NULL;
	curl_easy_setopt(easy, CURLOPT_URL, url);
	curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(easy, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(easy, CURLOPT_FOLLOWLOCATION, opts->max_redirects > 0 ? 1L : 0L);
	curl_easy_setopt(easy, CURLOPT_MAXREDIRS, opts->max_redirects);
	curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, opts->timeout_ms);
	curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS, Min(opts->timeout_ms, 5000L));
	curl_easy_setopt(easy, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t) opts->max_bytes);
	curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(easy, CURLOPT_ACCEPT_ENCODING, "");
	curl_easy_setopt(easy, CURLOPT_USERAGENT, "brewml/0.2 (PostgreSQL extension)");
	curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, FetchWrite);
	curl_easy_setopt(easy, CURLOPT_WRITEDATA, t);
	curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, t->errbuf);
	curl_easy_setopt(easy, CURLOPT_PRIVATE, t);
	return easy;
}

/* Turns a finished transfer into its FetchResult. */
static void
FetchFinish(Transfer *t, CURLcode rc, FetchResult *r)
{
	curl_off_t	retry_after = -1;

	r->error[0] = '\0';
	curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &r->http_status);
	curl_easy_getinfo(t->easy, CURLINFO_TOTAL_TIME, &r->seconds);
	if (curl_easy_getinfo(t->easy, CURLINFO_RETRY_AFTER, &retry_after) == CURLE_OK && retry_after > 0)
		r->retry_after = (long) retry_after;
	else
		r->retry_after = -1;

	if (t->too_large || rc == CURLE_FILESIZE_EXCEEDED)
	{
		r->outcome = FETCH_TOO_LARGE;
		snprintf(r->error, sizeof(r->error), "response larger than %zu bytes", t->max);
	}
	else if (t->oom)
	{
		r->outcome = FETCH_NETWORK_ERROR;
		snprintf(r->error, sizeof(r->error), "out of memory reading the response");
	}
	else if (rc == CURLE_OPERATION_TIMEDOUT)
		r->outcome = FETCH_TIMEOUT;
	else if (rc == CURLE_UNSUPPORTED_PROTOCOL)
		r->outcome = FETCH_REFUSED_PROTOCOL;
	else if (rc == CURLE_TOO_MANY_REDIRECTS)
		r->outcome = FETCH_TOO_MANY_REDIRECTS;
	else if (rc != CURLE_OK)
		r->outcome = FETCH_NETWORK_ERROR;
	else if (r->http_status == 429)
		r->outcome = FETCH_RATE_LIMITED;
	else if (r->http_status != 200)
		r->outcome = FETCH_HTTP_ERROR;
	else
		r->outcome = FETCH_OK;

	if (r->error[0] == '\0' && r->outcome != FETCH_OK)
	{
		if (rc != CURLE_OK)
			snprintf(r->error, sizeof(r->error), "%s",
					 t->errbuf[0] ? t->errbuf : curl_easy_strerror(rc));
		else
			snprintf(r->error, sizeof(r->error), "HTTP status %ld", r->http_status);
	}
	if (r->outcome == FETCH_OK)
	{
		r->body = palloc(t->len + 1);
		if (t->len > 0)
			memcpy(r->body, t->data, t->len);
		r->body[t->len] = '\0';
		r->len = t->len;
	}
}

/*
 * Sends n GETs of url at once and waits for all of them; results[i] gets
 * the outcome of the i-th.  Bodies are palloc'd in the current context.
 */
void
FetchMany(const char *url, int n, const FetchOptions *opts, FetchResult *results)
{
	CURLM	   *multi = curl_multi_init();
	Transfer   *transfers = palloc0(sizeof(Transfer) * n);

	if (multi == NULL)
		elog(ERROR, "curl_multi_init failed");
	memset(results, 0, sizeof(FetchResult) * n);

	PG_TRY();
	{
		int			running = 0;

		for (int i = 0; i < n; i++)
		{
			results[i].outcome = FETCH_NETWORK_ERROR;
			snprintf(results[i].error, sizeof(results[i].error), "the transfer never finished");
			transfers[i].max = opts->max_bytes;
			transfers[i].easy = FetchEasy(url, opts, &transfers[i]);
			if (transfers[i].easy == NULL)
				elog(ERROR, "curl_easy_init failed");
			curl_multi_add_handle(multi, transfers[i].easy);
		}
		do
		{
			CURLMcode	mrc = curl_multi_perform(multi, &running);
			CURLMsg    *msg;
			int			left;

			if (mrc != CURLM_OK)
				elog(ERROR, "curl_multi_perform failed: %s", curl_multi_strerror(mrc));
			while ((msg = curl_multi_info_read(multi, &left)) != NULL)
			{
				Transfer   *t;

				if (msg->msg != CURLMSG_DONE)
					continue;
				curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **) &t);
				FetchFinish(t, msg->data.result, &results[t - transfers]);
			}
			if (running > 0)
				curl_multi_poll(multi, NULL, 0, 100, NULL);
			CHECK_FOR_INTERRUPTS();
			if (!PostmasterIsAlive())
				proc_exit(1);
		} while (running > 0);
	}
	PG_FINALLY();
	{
		for (int i = 0; i < n; i++)
		{
			if (transfers[i].easy != NULL)
			{
				curl_multi_remove_handle(multi, transfers[i].easy);
				curl_easy_cleanup(transfers[i].easy);
			}
			free(transfers[i].data);
		}
		curl_multi_cleanup(multi);
	}
	PG_END_TRY();
	pfree(transfers);
}

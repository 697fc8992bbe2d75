/*
 * fetch.h
 *		Several HTTP GETs at once with libcurl's multi interface, bounded in
 *		time, size, redirects and protocols (fetch.c).
 */
#ifndef BREWML_FETCH_H
#define BREWML_FETCH_H

#include "postgres.h"

typedef enum FetchOutcome
{
	FETCH_OK,					/* HTTP 200 with a body */
	FETCH_HTTP_ERROR,			/* another status */
	FETCH_RATE_LIMITED,			/* 429 */
	FETCH_TIMEOUT,
	FETCH_TOO_LARGE,			/* over max_bytes */
	FETCH_REFUSED_PROTOCOL,		/* a redirect to file://, say */
	FETCH_TOO_MANY_REDIRECTS,
	FETCH_NETWORK_ERROR			/* anything else libcurl reports */
} FetchOutcome;

typedef struct FetchOptions
{
	long		timeout_ms;
	long		max_redirects;
	size_t		max_bytes;
} FetchOptions;

typedef struct FetchResult
{
	FetchOutcome outcome;
	long		http_status;	/* 0 when no response */
	double		seconds;		/* total time of the request */
	long		retry_after;	/* seconds from a Retry-After header, or -1 */
	char	   *body;			/* palloc'd, NUL-terminated; NULL unless FETCH_OK */
	size_t		len;
	char		error[256];		/* what went wrong, empty when FETCH_OK */
} FetchResult;

extern void FetchGlobalInit(void);
extern void FetchMany(const char *url, int n, const FetchOptions *opts, FetchResult *results);
extern const char *FetchOutcomeName(FetchOutcome outcome);

#endif							/* BREWML_FETCH_H */

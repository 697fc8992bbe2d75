/*
 * brewml-push: send every *.jsonl file under a directory of batch model
 * scores to brewml over HTTP (seed 002).
 *
 *	brewml-push [options] DIR
 *
 * Each file is one batch (its model is the file name without .jsonl, unless
 * --model).  The file is streamed in chunks of whole lines of at most the
 * batch's chunk size; several chunks are in flight at once (--jobs); a chunk
 * that fails for the network or a 5xx is sent again after a growing pause.
 * The server keeps the resume state: it knows each batch by file and
 * fingerprint (size and modification time) and which chunks it committed,
 * so `brewml-push --resume DIR` after a crash or a kill sends only the rest,
 * and sending a loaded file again changes nothing.  Memory stays flat: the
 * chunks in flight and one read buffer, whatever the file size.
 *
 * Exit status: 0 if every line of every file was loaded, 1 if some line was
 * rejected (each listed as file:line: reason), 2 if a file could not be
 * sent, 64 for bad usage.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <curl/curl.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MAX_JOBS 64
#define REJECT_PREFIX 1024		/* bytes of an overlong line sent as its reject */

typedef struct Options
{
	const char *url;
	const char *token;
	const char *model;
	int			jobs;
	long		chunk_bytes;
	int			retries;
	bool		resume;
	bool		quiet;
} Options;

static Options opt = {"http://127.0.0.1:8080", NULL, NULL, 4, 4 << 20, 8, false, false};

typedef struct Buffer
{
	char	   *data;
	size_t		len;
	size_t		cap;
} Buffer;

static void
Die(const char *fmt,...)
{
	va_list		ap;

	va_start(ap, fmt);
	fputs("brewml-push: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	exit(2);
}

static void
BufferAppend(Buffer *b, const char *data, size_t len)
{
	if (b->len + len + 1 > b->cap)
	{
		b->cap = (b->len + len + 1) * 2;
		b->data = realloc(b->data, b->cap);
		if (b->data == NULL)
			Die("out of memory");
	}
	memcpy(b->data + b->len, data, len);
	b->len += len;
	b->data[b->len] = '\0';
}

static size_t
WriteToBuffer(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	Buffer	   *b = userdata;

	if (b->len < (1 << 20))		/* answers are small; keep the first MB of any */
		BufferAppend(b, ptr, size * nmemb);
	return size * nmemb;
}

static double
Now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* The integer after "key": in a JSON answer, or def. */
static long long
JsonInt(const char *json, const char *key, long long def)
{
	char		pat[64];
	const char *p;

	snprintf(pat, sizeof(pat), "\"%s\"", key);
	if (json == NULL || (p = strstr(json, pat)) == NULL)
		return def;
	p += strlen(pat);
	while (*p == ' ' || *p == ':')
		p++;
	return isdigit((unsigned char) *p) || *p == '-' ? strtoll(p, NULL, 10) : def;
}

/* The string after "key": in a JSON answer (no escapes), into out. */
static void
JsonString(const char *json, const char *key, char *out, size_t outlen)
{
	char		pat[64];
	const char *p;
	size_t		n = 0;

	out[0] = '\0';
	snprintf(pat, sizeof(pat), "\"%s\"", key);
	if (json == NULL || (p = strstr(json, pat)) == NULL)
		return;
	p += strlen(pat);
	while (*p == ' ' || *p == ':')
		p++;
	if (*p++ != '"')
		return;
	while (*p && *p != '"' && n + 1 < outlen)
	{
		if (*p == '\\' && p[1] != '\0')
			p++;				/* \" and \\ as themselves; other escapes are rare in reasons */
		out[n++] = *p++;
	}
	out[n] = '\0';
}

/* s as a JSON string literal, into b. */
static void
JsonQuote(Buffer *b, const char *s)
{
	BufferAppend(b, "\"", 1);
	for (; *s; s++)
	{
		char		esc[8];

		if (*s == '"' || *s == '\\')
		{
			esc[0] = '\\', esc[1] = *s;
			BufferAppend(b, esc, 2);
		}
		else if ((unsigned char) *s < 0x20)
		{
			snprintf(esc, sizeof(esc), "\\u%04x", (unsigned char) *s);
			BufferAppend(b, esc, 6);
		}
		else
			BufferAppend(b, s, 1);
	}
	BufferAppend(b, "\"", 1);
}

static struct curl_slist *
BaseHeaders(const char *content_type)
{
	struct curl_slist *h = NULL;
	char		line[4096];

	snprintf(line, sizeof(line), "Content-Type: %s", content_type);
	h = curl_slist_append(h, line);
	h = curl_slist_append(h, "Expect:");
	if (opt.token)
	{
		snprintf(line, sizeof(line), "Authorization: Bearer %s", opt.token);
		h = curl_slist_append(h, line);
	}
	return h;
}

static CURL *
NewHandle(const char *path, struct curl_slist *headers, const char *body, size_t len, Buffer *answer)
{
	CURL	   *c = curl_easy_init();
	char		url[4096];

	snprintf(url, sizeof(url), "%s%s", opt.url, path);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
	if (body != NULL)
	{
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t) len);
	}
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, WriteToBuffer);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, answer);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 10L);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, 300L);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	return c;
}

/* Whether a failed request is worth sending again: the network, a 5xx, 408 or 429. */
static bool
Retryable(CURLcode rc, long status)
{
	return rc != CURLE_OK || status >= 500 || status == 408 || status == 429 || status == 0;
}

static double
Backoff(int attempt)
{
	double		s = 0.25 * (1 << (attempt < 7 ? attempt : 7));

	return s > 30 ? 30 : s;
}

/*
 * A control call (JSON in, JSON out), retried like chunks; returns the HTTP
 * status (0 if the network never answered) and the answer in *answer.
 */
static long
Call(const char *path, const char *json, Buffer *answer)
{
	long		status = 0;

	for (int attempt = 0;; attempt++)
	{
		struct curl_slist *h = BaseHeaders("application/json");
		CURL	   *c;
		CURLcode	rc;

		answer->len = 0;
		c = NewHandle(path, h, json, json ? strlen(json) : 0, answer);
		if (json == NULL)
			curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
		rc = curl_easy_perform(c);
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
		curl_easy_cleanup(c);
		curl_slist_free_all(h);
		if (!Retryable(rc, status) || attempt >= opt.retries)
		{
			if (rc != CURLE_OK)
			{
				answer->len = 0;
				BufferAppend(answer, curl_easy_strerror(rc), strlen(curl_easy_strerror(rc)));
			}
			return rc == CURLE_OK ? status : 0;
		}
		usleep((useconds_t) (Backoff(attempt) * 1e6));
	}
}

/* One chunk in flight. */
typedef struct Job
{
	bool		busy;
	CURL	   *curl;
	struct curl_slist *headers;
	Buffer		data;
	Buffer		answer;
	int			seq;
	int64_t		first_line;
	int			attempt;
	double		not_before;		/* for a retry */
	bool		waiting;		/* failed, waiting for its retry */
} Job;

typedef struct FileRun
{
	const char *path;			/* as given, for messages */
	const char *name;			/* relative to DIR: the batch's source_file */
	char		model[256];
	int64_t		batch;
	long		chunk_bytes;
	int		   *committed;		/* sorted */
	int			n_committed;
	int64_t		bytes_total;
	int64_t		bytes_done;
	int64_t		lines;
	int64_t		loaded;
	int64_t		rejected;
	int			chunks;
	bool		failed;
	char		error[1024];
} FileRun;

/* Totals over all files, for the progress line. */
static int64_t all_bytes, all_bytes_done, all_loaded;
static double start_time, last_progress;

static void
Progress(bool final)
{
	double		t = Now(),
				el = t - start_time;
	double		rate,
				pct;

	if (opt.quiet || !isatty(STDERR_FILENO) || (!final && t - last_progress < 0.25))
		return;
	last_progress = t;
	rate = el > 0 ? all_bytes_done / el : 0;
	pct = all_bytes > 0 ? 100.0 * all_bytes_done / all_bytes : 100;
	{
		int			width = 30,
					fill = (int) (pct / 100 * width);
		char		bar[64];
		double		eta = rate > 0 ? (all_bytes - all_bytes_done) / rate : 0;

		for (int i = 0; i < width; i++)
			bar[i] = i < fill ? '#' : '.';
		bar[width] = '\0';
		fprintf(stderr, "\r[%s] %5.1f%%  %7.1f MB/s  %9.0f rows/s  ETA %4.0f s ", bar, pct,
				rate / 1e6, el > 0 ? all_loaded / el : 0, eta);
		if (final)
			fputc('\n', stderr);
	}
}

static bool
IsCommitted(const FileRun *f, int seq)
{
	int			lo = 0,
				hi = f->n_committed - 1;

	while (lo <= hi)
	{
		int			mid = (lo + hi) / 2;

		if (f->committed[mid] == seq)
			return true;
		if (f->committed[mid] < seq)
			lo = mid + 1;
		else
			hi = mid - 1;
	}
	return false;
}

static void
StartJob(CURLM *multi, FileRun *f, Job *j)
{
	char		line[256];
	char		path[] = "/rpc/load_scores";

	j->headers = BaseHeaders("application/octet-stream");
	snprintf(line, sizeof(line), "X-Batch-Id: %" PRId64, f->batch);
	j->headers = curl_slist_append(j->headers, line);
	snprintf(line, sizeof(line), "X-Chunk-Seq: %d", j->seq);
	j->headers = curl_slist_append(j->headers, line);
	snprintf(line, sizeof(line), "X-First-Line: %" PRId64, j->first_line);
	j->headers = curl_slist_append(j->headers, line);
	j->answer.len = 0;
	j->curl = NewHandle(path, j->headers, j->data.data, j->data.len, &j->answer);
	curl_easy_setopt(j->curl, CURLOPT_PRIVATE, j);
	curl_multi_add_handle(multi, j->curl);
	j->busy = true;
	j->waiting = false;
}

/* Handles finished transfers; returns how many jobs became free. */
static int
Reap(CURLM *multi, FileRun *f)
{
	CURLMsg    *msg;
	int			left,
				freed = 0;

	while ((msg = curl_multi_info_read(multi, &left)) != NULL)
	{
		Job		   *j;
		long		status = 0;
		CURL	   *easy = msg->easy_handle;	/* msg is gone once the handle is removed */
		CURLcode	rc = msg->data.result;

		if (msg->msg != CURLMSG_DONE)
			continue;
		curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **) &j);
		curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
		curl_multi_remove_handle(multi, easy);
		curl_easy_cleanup(easy);
		curl_slist_free_all(j->headers);
		j->curl = NULL;
		if (rc == CURLE_OK && status == 200)
		{
			f->lines += JsonInt(j->answer.data, "lines", 0);
			f->loaded += JsonInt(j->answer.data, "loaded", 0);
			f->rejected += JsonInt(j->answer.data, "rejected", 0);
			all_loaded += JsonInt(j->answer.data, "loaded", 0);
			f->bytes_done += j->data.len;
			all_bytes_done += j->data.len;
			j->busy = false;
			freed++;
		}
		else if (Retryable(rc, status) && j->attempt < opt.retries)
		{
			j->not_before = Now() + Backoff(j->attempt++);
			j->waiting = true;
		}
		else
		{
			if (!f->failed)
				snprintf(f->error, sizeof(f->error), "chunk %d (from line %" PRId64 "): %s", j->seq,
						 j->first_line, rc != CURLE_OK ? curl_easy_strerror(rc) :
						 j->answer.len ? j->answer.data : "no answer");
			f->failed = true;
			j->busy = false;
			freed++;
		}
	}
	return freed;
}

/* Waits for a free job (running transfers and retries meanwhile); NULL once the file failed. */
static Job *
FreeJob(CURLM *multi, FileRun *f, Job *jobs, bool drain)
{
	for (;;)
	{
		int			running,
					busy = 0;

		for (int i = 0; i < opt.jobs; i++)
		{
			if (jobs[i].busy && jobs[i].waiting && Now() >= jobs[i].not_before)
				StartJob(multi, f, &jobs[i]);
			busy += jobs[i].busy;
		}
		if (!drain && !f->failed)
			for (int i = 0; i < opt.jobs; i++)
				if (!jobs[i].busy)
					return &jobs[i];
		if (busy == 0)
			return NULL;
		curl_multi_perform(multi, &running);
		Reap(multi, f);
		Progress(false);
		curl_multi_poll(multi, NULL, 0, 100, NULL);
	}
}

/* Records a line too long to send as a reject: its beginning. */
static void
RejectLong(FileRun *f, int64_t lineno, const char *prefix, size_t len)
{
	struct curl_slist *h = BaseHeaders("application/octet-stream");
	char		line[256];
	Buffer		answer = {0};
	long		status = 0;

	snprintf(line, sizeof(line), "X-Batch-Id: %" PRId64, f->batch);
	h = curl_slist_append(h, line);
	snprintf(line, sizeof(line), "X-Line-Number: %" PRId64, lineno);
	h = curl_slist_append(h, line);
	snprintf(line, sizeof(line), "X-Reason: line longer than the chunk size (%ld bytes)", f->chunk_bytes);
	h = curl_slist_append(h, line);
	for (int attempt = 0;; attempt++)
	{
		CURL	   *c = NewHandle("/rpc/reject_score_line", h, prefix, len, &answer);
		CURLcode	rc = curl_easy_perform(c);

		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
		curl_easy_cleanup(c);
		if (!Retryable(rc, status) || attempt >= opt.retries)
			break;
		usleep((useconds_t) (Backoff(attempt) * 1e6));
	}
	curl_slist_free_all(h);
	free(answer.data);
	if (status != 200 && !f->failed)
	{
		f->failed = true;
		snprintf(f->error, sizeof(f->error), "recording line %" PRId64 " as rejected failed (HTTP %ld)",
				 lineno, status);
	}
}

/* Streams the file in chunks of whole lines, sending those not committed yet. */
static void
SendChunks(FileRun *f, CURLM *multi, Job *jobs)
{
	int			fd = open(f->path, O_RDONLY);
	Buffer		in = {0};
	bool		eof = false;
	int64_t		lineno = 1;
	int			seq = 0;

	if (fd < 0)
	{
		f->failed = true;
		snprintf(f->error, sizeof(f->error), "cannot open: %s", strerror(errno));
		return;
	}
	posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
	in.cap = f->chunk_bytes + 1;
	in.data = malloc(in.cap);
	while (!f->failed)
	{
		size_t		cut = 0;
		char	   *nl;

		/* fill up to one chunk's worth */
		while (!eof && in.len < (size_t) f->chunk_bytes)
		{
			ssize_t		r = read(fd, in.data + in.len, f->chunk_bytes - in.len);

			if (r < 0 && errno == EINTR)
				continue;
			if (r < 0)
			{
				f->failed = true;
				snprintf(f->error, sizeof(f->error), "read error: %s", strerror(errno));
				break;
			}
			if (r == 0)
				eof = true;
			in.len += r;
		}
		if (in.len == 0 || f->failed)
			break;
		nl = memrchr(in.data, '\n', in.len);
		if (nl != NULL)
			cut = nl - in.data + 1;
		else if (eof)
			cut = in.len;		/* the last line, without a newline */
		else
		{
			/* one line longer than a chunk: record its beginning, skip the rest */
			size_t		skipped = in.len;

			RejectLong(f, lineno, in.data, in.len < REJECT_PREFIX ? in.len : REJECT_PREFIX);
			for (;;)
			{
				ssize_t		r = read(fd, in.data, f->chunk_bytes);

				if (r < 0 && errno == EINTR)
					continue;
				if (r < 0)
				{
					f->failed = true;
					snprintf(f->error, sizeof(f->error), "read error: %s", strerror(errno));
					in.len = 0;
					break;
				}
				if (r == 0)
				{
					eof = true;
					in.len = 0;
					break;
				}
				nl = memchr(in.data, '\n', r);
				if (nl != NULL)
				{
					size_t		rest = r - (nl - in.data + 1);

					skipped += nl - in.data + 1;
					memmove(in.data, nl + 1, rest);
					in.len = rest;
					break;
				}
				skipped += r;
			}
			f->bytes_done += skipped;
			all_bytes_done += skipped;
			lineno++;
			continue;
		}

		{
			int64_t		nlines = 0;

			for (char *p = in.data; (p = memchr(p, '\n', in.data + cut - p)) != NULL; p++)
				nlines++;
			if (cut > 0 && in.data[cut - 1] != '\n')
				nlines++;
			if (IsCommitted(f, seq))
			{
				f->bytes_done += cut;
				all_bytes_done += cut;
			}
			else
			{
				Job		   *j = FreeJob(multi, f, jobs, false);

				if (j == NULL)
					break;
				if (j->data.cap < (size_t) f->chunk_bytes + 1)
				{
					/* exactly one chunk: memory is jobs x chunk size, whatever the file */
					free(j->data.data);
					j->data.cap = f->chunk_bytes + 1;
					if ((j->data.data = malloc(j->data.cap)) == NULL)
						Die("out of memory");
				}
				j->data.len = 0;
				BufferAppend(&j->data, in.data, cut);
				j->seq = seq;
				j->first_line = lineno;
				j->attempt = 0;
				StartJob(multi, f, j);
			}
			lineno += nlines;
			seq++;
			memmove(in.data, in.data + cut, in.len - cut);
			in.len -= cut;
		}
	}
	FreeJob(multi, f, jobs, true);
	f->chunks = seq;
	free(in.data);
	close(fd);
}

/* Prints up to ten rejected lines of the batch as file:line: reason. */
static void
ListRejects(FileRun *f)
{
	char		path[256];
	Buffer		answer = {0};

	snprintf(path, sizeof(path), "/score_rejects?batch_id=eq.%" PRId64 "&select=line_number,reason"
			 "&order=line_number&limit=10", f->batch);
	if (Call(path, NULL, &answer) == 200)
	{
		const char *p = answer.data;

		while ((p = strstr(p, "\"line_number\"")) != NULL)
		{
			char		reason[512];

			JsonString(p, "reason", reason, sizeof(reason));
			fprintf(stderr, "%s:%lld: %s\n", f->path, JsonInt(p, "line_number", 0), reason);
			p++;
		}
		if (f->rejected > 10)
			fprintf(stderr, "%s: ... and %" PRId64 " more (GET /score_rejects?batch_id=eq.%" PRId64 ")\n",
					f->path, f->rejected - 10, f->batch);
	}
	free(answer.data);
}

/* Whether name is a model name the server accepts (brewml.score_batches' check). */
static bool
ValidModel(const char *name)
{
	size_t		len = strlen(name);

	if (len < 1 || len > 128)
		return false;
	for (size_t i = 0; i < len; i++)
		if (!isalnum((unsigned char) name[i]) && strchr("_.:-", name[i]) == NULL)
			return false;
	return true;
}

/* Sends one file; returns 0, 1 (lines rejected) or 2 (failed). */
static int
PushFile(const char *path, const char *name, CURLM *multi, Job *jobs)
{
	FileRun		f = {0};
	struct stat st;
	Buffer		req = {0},
				answer = {0};
	char		fingerprint[128],
				num[64],
				status_text[32];
	long		status;
	const char *p;

	f.path = path;
	f.name = name;
	if (stat(path, &st) != 0)
		return fprintf(stderr, "%s: cannot stat: %s\n", path, strerror(errno)), 2;
	if (opt.model)
		snprintf(f.model, sizeof(f.model), "%s", opt.model);
	else
	{
		const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;

		snprintf(f.model, sizeof(f.model), "%.*s", (int) (strlen(base) - strlen(".jsonl")), base);
	}
	if (!ValidModel(f.model))
	{
		fprintf(stderr, "%s: model name \"%s\" must be 1 to 128 of A-Z a-z 0-9 _ . : - "
				"(rename the file or pass --model)\n", path, f.model);
		return 2;
	}
	snprintf(fingerprint, sizeof(fingerprint), "%lld:%lld.%09ld", (long long) st.st_size,
			 (long long) st.st_mtim.tv_sec, st.st_mtim.tv_nsec);

	BufferAppend(&req, "{\"model\": ", 10);
	JsonQuote(&req, f.model);
	BufferAppend(&req, ", \"source_file\": ", 17);
	JsonQuote(&req, name);
	BufferAppend(&req, ", \"fingerprint\": ", 17);
	JsonQuote(&req, fingerprint);
	snprintf(num, sizeof(num), ", \"bytes\": %lld, \"chunk_bytes\": %ld, \"resume\": %s}",
			 (long long) st.st_size, opt.chunk_bytes, opt.resume ? "true" : "false");
	BufferAppend(&req, num, strlen(num));
	status = Call("/rpc/open_score_batch", req.data, &answer);
	free(req.data);
	if (status != 200)
	{
		fprintf(stderr, "%s: cannot open its batch (HTTP %ld): %s\n", path, status,
				answer.len ? answer.data : "no answer");
		free(answer.data);
		return 2;
	}
	f.batch = JsonInt(answer.data, "batch_id", 0);
	f.chunk_bytes = JsonInt(answer.data, "chunk_bytes_used", opt.chunk_bytes);
	JsonString(answer.data, "status", status_text, sizeof(status_text));
	f.bytes_total = st.st_size;
	if ((p = strstr(answer.data, "\"committed\"")) != NULL && (p = strchr(p, '[')) != NULL)
	{
		char	   *end;

		f.committed = malloc(sizeof(int) * 16);
		for (int cap = 16; *++p && *p != ']'; p = end)
		{
			long		v = strtol(p, &end, 10);

			if (end == p)
				break;
			if (f.n_committed == cap)
				f.committed = realloc(f.committed, sizeof(int) * (cap *= 2));
			f.committed[f.n_committed++] = (int) v;
			if (*end != ',')
				break;
		}
	}
	free(answer.data);

	if (strcmp(status_text, "done") == 0)
	{
		Buffer		totals = {0};
		char		q[128];

		snprintf(q, sizeof(q), "/score_batches?id=eq.%" PRId64, f.batch);
		Call(q, NULL, &totals);
		f.lines = JsonInt(totals.data, "lines_seen", 0);
		f.loaded = JsonInt(totals.data, "rows_loaded", 0);
		f.rejected = JsonInt(totals.data, "lines_rejected", 0);
		free(totals.data);
		all_bytes_done += st.st_size;
		printf("%s: already loaded (batch %" PRId64 "): %" PRId64 " lines, %" PRId64 " loaded, %" PRId64
			   " rejected\n", path, f.batch, f.lines, f.loaded, f.rejected);
		free(f.committed);
		return f.rejected > 0 ? 1 : 0;
	}

	SendChunks(&f, multi, jobs);
	if (!f.failed)
	{
		Buffer		fin = {0};

		snprintf(num, sizeof(num), "{\"batch_id\": %" PRId64 ", \"chunks\": %d}", f.batch, f.chunks);
		status = Call("/rpc/finish_score_batch", num, &fin);
		if (status == 200)
		{
			f.lines = JsonInt(fin.data, "lines_seen", f.lines);
			f.loaded = JsonInt(fin.data, "rows_loaded", f.loaded);
			f.rejected = JsonInt(fin.data, "lines_rejected", f.rejected);
		}
		else
		{
			f.failed = true;
			snprintf(f.error, sizeof(f.error), "finishing the batch failed (HTTP %ld): %s", status,
					 fin.len ? fin.data : "no answer");
		}
		free(fin.data);
	}
	Progress(true);
	free(f.committed);
	if (f.failed)
	{
		fprintf(stderr, "%s: not loaded (batch %" PRId64 "): %s\n", path, f.batch, f.error);
		fprintf(stderr, "%s: what was committed stays; run again with --resume to send the rest\n", path);
		return 2;
	}
	printf("%s: %" PRId64 " lines, %" PRId64 " loaded, %" PRId64 " rejected (batch %" PRId64 ", model %s)\n",
		   path, f.lines, f.loaded, f.rejected, f.batch, f.model);
	if (f.rejected > 0)
		ListRejects(&f);
	return f.rejected > 0 ? 1 : 0;
}

/* Files under dir (recursively) ending in .jsonl, sorted. */
static void
FindFiles(const char *dir, char ***files, int *n)
{
	struct dirent **ents;
	int			m = scandir(dir, &ents, NULL, alphasort);

	if (m < 0)
		Die("cannot read %s: %s", dir, strerror(errno));
	for (int i = 0; i < m; i++)
	{
		const char *e = ents[i]->d_name;
		char	   *path;
		struct stat st;
		size_t		len = strlen(e);

		if (e[0] == '.')
		{
			free(ents[i]);
			continue;
		}
		if (asprintf(&path, "%s%s%s", dir, dir[strlen(dir) - 1] == '/' ? "" : "/", e) < 0)
			Die("out of memory");
		if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
		{
			FindFiles(path, files, n);
			free(path);
		}
		else if (len > 6 && strcmp(e + len - 6, ".jsonl") == 0 && S_ISREG(st.st_mode))
		{
			*files = realloc(*files, sizeof(char *) * (*n + 1));
			(*files)[(*n)++] = path;
		}
		else
			free(path);
		free(ents[i]);
	}
	free(ents);
}

static long
ParseSize(const char *s)
{
	char	   *end;
	double		v = strtod(s, &end);

	if (end == s)
		return -1;
	if (*end == 'k' || *end == 'K')
		v *= 1024, end++;
	else if (*end == 'm' || *end == 'M')
		v *= 1024 * 1024, end++;
	return *end ? -1 : (long) v;
}

static void
Usage(FILE *out)
{
	fprintf(out,
			"usage: brewml-push [options] DIR\n"
			"Send every *.jsonl file under DIR (one JSON object a line, with \"pk\" and \"score\")\n"
			"to brewml's score ingestion endpoint, in chunks, several at once.\n\n"
			"  -u, --url URL         brewml's HTTP base URL (env BREWML_URL; default %s)\n"
			"  -t, --token JWT       a token with the brewml_ingest role (env BREWML_TOKEN)\n"
			"  -m, --model NAME      the model of every file (default: the file name without .jsonl)\n"
			"  -j, --jobs N          chunks in flight at once (default %d, at most %d)\n"
			"  -c, --chunk-size N    bytes a chunk, K or M suffix (default 4M; 1K to 16M)\n"
			"  -r, --resume          continue unfinished loads of these files (after a crash or kill)\n"
			"      --retries N       attempts after a network error or 5xx (default %d)\n"
			"  -q, --quiet           no progress bar\n"
			"  -h, --help            this text\n\n"
			"Exit status: 0 all loaded, 1 some lines rejected (listed as file:line: reason),\n"
			"2 a file could not be sent, 64 bad usage.\n",
			opt.url, opt.jobs, MAX_JOBS, opt.retries);
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"url", required_argument, NULL, 'u'},
		{"token", required_argument, NULL, 't'},
		{"model", required_argument, NULL, 'm'},
		{"jobs", required_argument, NULL, 'j'},
		{"chunk-size", required_argument, NULL, 'c'},
		{"resume", no_argument, NULL, 'r'},
		{"retries", required_argument, NULL, 'R'},
		{"quiet", no_argument, NULL, 'q'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0}
	};
	int			c,
				worst = 0;
	char	  **files = NULL;
	int			n = 0;
	Job			jobs[MAX_JOBS] = {0};
	CURLM	   *multi;

	if (getenv("BREWML_URL"))
		opt.url = getenv("BREWML_URL");
	opt.token = getenv("BREWML_TOKEN");
	while ((c = getopt_long(argc, argv, "u:t:m:j:c:rqh", longopts, NULL)) != -1)
	{
		switch (c)
		{
			case 'u':
				opt.url = optarg;
				break;
			case 't':
				opt.token = optarg;
				break;
			case 'm':
				opt.model = optarg;
				break;
			case 'j':
				opt.jobs = atoi(optarg);
				if (opt.jobs < 1 || opt.jobs > MAX_JOBS)
					return fprintf(stderr, "brewml-push: --jobs must be 1 to %d\n", MAX_JOBS), 64;
				break;
			case 'c':
				opt.chunk_bytes = ParseSize(optarg);
				if (opt.chunk_bytes < 1024 || opt.chunk_bytes > 16 << 20)
					return fprintf(stderr, "brewml-push: --chunk-size must be 1K to 16M, not %s\n", optarg), 64;
				break;
			case 'r':
				opt.resume = true;
				break;
			case 'R':
				opt.retries = atoi(optarg);
				break;
			case 'q':
				opt.quiet = true;
				break;
			case 'h':
				Usage(stdout);
				return 0;
			default:
				Usage(stderr);
				return 64;
		}
	}
	if (optind != argc - 1)
	{
		Usage(stderr);
		return 64;
	}
	{
		struct stat st;
		char	   *dir = argv[optind];
		size_t		len = strlen(dir);

		if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
			return fprintf(stderr, "brewml-push: %s is not a directory\n", dir), 64;
		/* DIR/ and DIR name the same files, as DIR/name */
		while (len > 1 && dir[len - 1] == '/')
			dir[--len] = '\0';
	}
	curl_global_init(CURL_GLOBAL_DEFAULT);
	FindFiles(argv[optind], &files, &n);
	if (n == 0)
		fprintf(stderr, "brewml-push: no *.jsonl file under %s\n", argv[optind]);
	for (int i = 0; i < n; i++)
	{
		struct stat st;

		if (stat(files[i], &st) == 0)
			all_bytes += st.st_size;
	}
	multi = curl_multi_init();
	curl_multi_setopt(multi, CURLMOPT_MAX_HOST_CONNECTIONS, (long) opt.jobs);
	start_time = Now();
	for (int i = 0; i < n; i++)
	{
		size_t		skip = strlen(argv[optind]) + (strcmp(argv[optind], "/") != 0);
		int			r = PushFile(files[i], files[i] + skip, multi, jobs);

		worst = r > worst ? r : worst;
		free(files[i]);
	}
	for (int i = 0; i < MAX_JOBS; i++)
	{
		free(jobs[i].data.data);
		free(jobs[i].answer.data);
	}
	free(files);
	curl_multi_cleanup(multi);
	curl_global_cleanup();
	return worst;
}

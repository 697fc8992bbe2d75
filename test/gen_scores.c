/*
 * gen-scores: a JSON Lines file of batch model scores in the seed's shape,
 * { "pk": "123", "score": "100" }, of any size, from a seed.
 *
 *	gen-scores [--lines N | --bytes N] [--seed S] [--keys K] [--numbers] [--csv MODEL] [FILE]
 *
 * pk runs 1, 2, 3, ... (so every line is a new key) unless --keys K draws
 * them from 1..K (repeats: the last line of a key wins); score is an
 * integer 0..100 or, one line in four, a decimal.  --numbers writes them as
 * JSON numbers instead of strings.  --csv MODEL writes the same rows (the
 * same --bytes counts the JSON lines they come from) as CSV for COPY into
 * brewml.scores: model,pk,score,batch_id 0,line,a fixed time.  Writes to
 * FILE or standard output.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint64_t state;

static uint64_t
Next(void)
{
	/* splitmix64 */
	uint64_t	z = (state += 0x9E3779B97F4A7C15ULL);

	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
	return z ^ (z >> 31);
}

int
main(int argc, char **argv)
{
	long long	lines = -1,
				bytes = -1,
				keys = 0;
	unsigned long long seed = 42;
	int			numbers = 0;
	const char *path = NULL;
	const char *csv = NULL;
	FILE	   *out = stdout;
	static char buf[1 << 20];
	long long	written = 0;

	for (int i = 1; i < argc; i++)
	{
		if (strcmp(argv[i], "--lines") == 0 && i + 1 < argc)
			lines = atoll(argv[++i]);
		else if (strcmp(argv[i], "--bytes") == 0 && i + 1 < argc)
			bytes = (long long) atof(argv[++i]);
		else if (strcmp(argv[i], "--seed") == 0 && i + 1 < argc)
			seed = strtoull(argv[++i], NULL, 10);
		else if (strcmp(argv[i], "--keys") == 0 && i + 1 < argc)
			keys = atoll(argv[++i]);
		else if (strcmp(argv[i], "--numbers") == 0)
			numbers = 1;
		else if (strcmp(argv[i], "--csv") == 0 && i + 1 < argc)
			csv = argv[++i];
		else if (argv[i][0] != '-' && path == NULL)
			path = argv[i];
		else
		{
			fprintf(stderr, "usage: gen-scores [--lines N | --bytes N] [--seed S] [--keys K] [--numbers] [--csv MODEL] [FILE]\n");
			return 64;
		}
	}
	if (lines < 0 && bytes < 0)
		lines = 1000;
	if (path != NULL && (out = fopen(path, "w")) == NULL)
	{
		perror(path);
		return 1;
	}
	setvbuf(out, buf, _IOFBF, sizeof(buf));
	state = seed;
	for (long long n = 1; lines < 0 || n <= lines; n++)
	{
		char		line[128];
		long long	pk = keys > 0 ? (long long) (Next() % (uint64_t) keys) + 1 : n;
		uint64_t	r = Next();
		int			len;

		if (r % 4 == 0)
			len = snprintf(line, sizeof(line), numbers ? "{ \"pk\": %lld, \"score\": %d.%02d }\n"
						   : "{ \"pk\": \"%lld\", \"score\": \"%d.%02d\" }\n", pk, (int) ((r >> 8) % 100),
						   (int) ((r >> 20) % 100));
		else
			len = snprintf(line, sizeof(line), numbers ? "{ \"pk\": %lld, \"score\": %d }\n"
						   : "{ \"pk\": \"%lld\", \"score\": \"%d\" }\n", pk, (int) ((r >> 8) % 101));
		if (bytes >= 0 && written + len > bytes)
			break;
		written += len;
		if (csv != NULL)
		{
			/* the same pk and score, out of the JSON line just made */
			char	   *v1 = strchr(line, ':') + 2,
					   *v2 = strchr(v1, ':') + 2;
			int			l1 = strcspn(v1 + (*v1 == '"'), "\","),
						l2 = strcspn(v2 + (*v2 == '"'), "\" }");

			fprintf(out, "%s,%.*s,%.*s,0,%lld,2026-01-01 00:00:00+00\n", csv, l1, v1 + (*v1 == '"'),
					l2, v2 + (*v2 == '"'), n);
			continue;
		}
		fwrite(line, 1, len, out);
	}
	if (fclose(out) != 0)
	{
		perror(path ? path : "stdout");
		return 1;
	}
	return 0;
}

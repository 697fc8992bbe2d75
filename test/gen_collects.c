/*
 * gen_collects.c
 *		Writes a synthetic collects.csv with the exact shape of the sensor
 *		case's data file (../shared/spec/sensor-case.md): the same 13-column
 *		header, the same 10 sensors in the same order of first appearance,
 *		NaN holes in every params.* column (460 at the default 33,901 rows,
 *		the same share at any size), similar magnitudes, June 1 to July 7 2021.
 *		The same seed and row count always give the same bytes.
 *
 *		gen-collects [-n ROWS] [-s SEED] [-o FILE]
 */
#define _DEFAULT_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_ROWS 33901
#define DEFAULT_HOLES 460
#define T_START 1622505600.0	/* 2021-06-01T00:00:00Z */
#define T_END 1625702399.0		/* 2021-07-07T23:59:59Z */
#define TEMP_MIN (-45.5)
#define TEMP_MAX 132.2

static const char *const header =
"_id,createdAt,params.accelRMS.x,params.accelRMS.y,params.accelRMS.z,"
"params.duration,params.sampRate,params.timeStart,params.velRMS.x,"
"params.velRMS.y,params.velRMS.z,sensorId,temp";

static const char *const sensors[] = {
	"IAJ9206", "LZY4270", "MUR8453", "MXK6435", "MYD8706",
	"MYS2071", "MZU6388", "NAH4736", "NAI1549", "NEW4797",
};
#define NSENSORS 10

/* Means of the real file's columns, and their maxima. */
static const double accel_mean[3] = {0.043, 0.046, 0.051};
static const double vel_mean[3] = {0.0008, 0.0013, 0.0008};
#define ACCEL_MAX 0.50
#define VEL_MAX 0.012

/* xoshiro256** seeded by splitmix64: small, fast and the same everywhere. */
static uint64_t rng[4];

static uint64_t
SplitMix(uint64_t *x)
{
	uint64_t	z = (*x += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static uint64_t
Rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

static uint64_t
Next(void)
{
	uint64_t	result = Rotl(rng[1] * 5, 7) * 9;
	uint64_t	t = rng[1] << 17;

	rng[2] ^= rng[0];
	rng[3] ^= rng[1];
	rng[1] ^= rng[2];
	rng[0] ^= rng[3];
	rng[2] ^= t;
	rng[3] = Rotl(rng[3], 45);
	return result;
}

/* Uniform in [0, 1). */
static double
Uniform(void)
{
	return (double) (Next() >> 11) * 0x1.0p-53;
}

static double
Normal(void)
{
	double		u = Uniform(),
				v = Uniform();

	return sqrt(-2.0 * log(1.0 - u)) * cos(2.0 * M_PI * v);
}

/* A positive, right-skewed reading with the given mean, capped at max. */
static double
Skewed(double mean, double level, double max)
{
	const double sigma = 0.6;
	double		x = mean * level * exp(sigma * Normal() - sigma * sigma / 2.0);

	if (Uniform() < 0.002)
		x *= 4.0 + 4.0 * Uniform();	/* the rare spikes an alert is for */
	return x > max ? max : x;
}

static void
Usage(FILE *out)
{
	fprintf(out,
			"usage: gen-collects [-n ROWS] [-s SEED] [-o FILE]\n"
			"  Writes a synthetic collects.csv (default %d rows, seed 42, to standard output).\n",
			DEFAULT_ROWS);
}

static long long
ParseCount(const char *arg, const char *what)
{
	char	   *end;
	long long	v;

	errno = 0;
	v = strtoll(arg, &end, 10);
	if (errno != 0 || *end != '\0' || end == arg || v < 0)
	{
		fprintf(stderr, "gen-collects: %s must be a non-negative integer, not \"%s\"\n", what, arg);
		exit(2);
	}
	return v;
}

int
main(int argc, char **argv)
{
	long long	rows = DEFAULT_ROWS,
				holes,
				holes_left,
				seed = 42;
	const char *path = NULL;
	FILE	   *out = stdout;
	uint64_t	sm;
	double		level[NSENSORS][6];
	double		temp_base[NSENSORS];
	int			opt;

	while ((opt = getopt(argc, argv, "n:s:o:h")) != -1)
	{
		switch (opt)
		{
			case 'n':
				rows = ParseCount(optarg, "ROWS");
				break;
			case 's':
				seed = ParseCount(optarg, "SEED");
				break;
			case 'o':
				path = optarg;
				break;
			case 'h':
				Usage(stdout);
				return 0;
			default:
				Usage(stderr);
				return 2;
		}
	}
	if (optind != argc)
	{
		Usage(stderr);
		return 2;
	}
	if (path != NULL && (out = fopen(path, "w")) == NULL)
	{
		fprintf(stderr, "gen-collects: cannot write %s: %s\n", path, strerror(errno));
		return 1;
	}
	setvbuf(out, NULL, _IOFBF, 1 << 20);

	sm = (uint64_t) seed;
	for (int i = 0; i < 4; i++)
		rng[i] = SplitMix(&sm);

	/* Each sensor has its own level per column and its own temperature. */
	for (int s = 0; s < NSENSORS; s++)
	{
		for (int c = 0; c < 6; c++)
			level[s][c] = 0.5 + Uniform();
		temp_base[s] = 15.0 + 40.0 * Uniform();
	}

	/* Exactly round(rows * 460 / 33901) rows lose their params (selection sampling). */
	holes = (rows * DEFAULT_HOLES * 2 + DEFAULT_ROWS) / (2 * DEFAULT_ROWS);
	holes_left = holes;

	fprintf(out, "%s\n", header);
	for (long long i = 0; i < rows; i++)
	{
		int			s = i < NSENSORS ? (int) i : (int) (Next() % NSENSORS);
		double		t = T_START + (T_END - T_START) * ((double) i + Uniform()) / (double) rows;
		double		created = t + 0.2 + 3.0 * Uniform();
		time_t		secs = (time_t) created;
		int			millis = (int) ((created - (double) secs) * 1000.0);
		struct tm	tm;
		char		stamp[32];
		double		temp;
		int			hole;

		hole = (double) holes_left > Uniform() * (double) (rows - i);
		if (hole)
			holes_left--;

		gmtime_r(&secs, &tm);
		strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
		temp = temp_base[s] + 12.0 * Normal();
		if (i == 0)
			temp = TEMP_MIN;
		else if (i == rows / 2)
			temp = TEMP_MAX;
		temp = temp < TEMP_MIN ? TEMP_MIN : temp > TEMP_MAX ? TEMP_MAX : temp;

		fprintf(out, "%08x%012" PRIx64 "%04llx,%s.%03dZ,",
				(unsigned) secs, Next() >> 16, i & 0xffff, stamp, millis);
		if (hole)
			fputs(",,,,,,,,,", out);
		else
		{
			double		a[3],
						v[3];

			for (int c = 0; c < 3; c++)
			{
				a[c] = Skewed(accel_mean[c], level[s][c], ACCEL_MAX);
				v[c] = Skewed(vel_mean[c], level[s][3 + c], VEL_MAX);
			}
			fprintf(out, "%.8g,%.8g,%.8g,%.4f,%d,%.0f,%.8g,%.8g,%.8g,",
					a[0], a[1], a[2], 1.6384, 20000, floor(t), v[0], v[1], v[2]);
		}
		fprintf(out, "%s,%.1f\n", sensors[s], temp);
	}
	if (fflush(out) != 0 || ferror(out) || (path != NULL && fclose(out) != 0))
	{
		fprintf(stderr, "gen-collects: write failed: %s\n", strerror(errno));
		return 1;
	}
	return 0;
}

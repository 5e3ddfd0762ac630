/* SPDX-License-Identifier: MIT */
/*
 * Writes the seed corpora (fuzz/seeds.c) into DIR/<target>/<name>, one
 * file per seed, after running each through its target so that a seed the
 * harness itself refuses is caught here and not mistaken for a finding.
 *
 * Usage: fuzz_make_corpus DIR
 */
#include <errno.h>
#include <sys/stat.h>

#include "fuzz.h"

struct dest {
	const char *dir;
	unsigned count;
	int failed;
};

static int run(const char *target, const uint8_t *p, size_t n)
{
	if (!strcmp(target, "decode"))
		return rdmig_fuzz_decode(p, n);
	if (!strcmp(target, "encode"))
		return rdmig_fuzz_encode(p, n);
	if (!strcmp(target, "sealed"))
		return rdmig_fuzz_sealed(p, n);
	return rdmig_fuzz_handshake(p, n);
}

static void write_seed(void *arg, const char *target, const char *name, const uint8_t *p, size_t n)
{
	struct dest *d = arg;
	char path[4096];
	FILE *f;

	run(target, p, n);
	snprintf(path, sizeof(path), "%s/%s", d->dir, target);
	if (mkdir(path, 0777) && errno != EEXIST) {
		perror(path);
		d->failed = 1;
		return;
	}
	snprintf(path, sizeof(path), "%s/%s/%s", d->dir, target, name);
	f = fopen(path, "wb");
	if (!f || fwrite(p, 1, n, f) != n || fclose(f)) {
		perror(path);
		d->failed = 1;
		return;
	}
	d->count++;
}

int main(int argc, char **argv)
{
	struct dest d = { 0 };

	if (argc != 2) {
		fprintf(stderr, "usage: %s DIR\n", argv[0]);
		return 2;
	}
	d.dir = argv[1];
	if (mkdir(d.dir, 0777) && errno != EEXIST) {
		perror(d.dir);
		return 1;
	}
	rdmig_fuzz_seeds(write_seed, &d);
	printf("fuzz_make_corpus: %u seeds in %s\n", d.count, d.dir);
	return d.failed;
}

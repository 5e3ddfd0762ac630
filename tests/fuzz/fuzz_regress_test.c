/* SPDX-License-Identifier: MIT */
/*
 * The fuzz targets (fuzz/) in the unit suite, built with the normal
 * compiler and no libFuzzer: every seed runs through its target with all
 * of the target's checks, then every single-bit flip of its first bytes
 * (a small deterministic fuzz, so that a broken invariant shows up in
 * ctest and not only under clang); and every input a fuzzer ever crashed
 * on stays here as a C array, run through its target and checked against
 * the library directly.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "fuzz/fuzz.h"

static int run(const char *target, const uint8_t *p, size_t n)
{
	if (!strcmp(target, "decode"))
		return rdmig_fuzz_decode(p, n);
	if (!strcmp(target, "encode"))
		return rdmig_fuzz_encode(p, n);
	if (!strcmp(target, "sealed"))
		return rdmig_fuzz_sealed(p, n);
	assert_string_equal(target, "handshake");
	return rdmig_fuzz_handshake(p, n);
}

struct tally {
	unsigned seeds, runs;
	bool flips;
};

/* A target aborts on a failed check: a seed or flip that returns passed. */
static void run_seed(void *arg, const char *target, const char *name, const uint8_t *p, size_t n)
{
	struct tally *t = arg;
	uint8_t *b;

	(void)name;
	assert_int_equal(run(target, p, n), 0);
	t->seeds++;
	t->runs++;
	if (!t->flips)
		return;
	b = malloc(n);
	assert_non_null(b);
	/* The encode seeds are whole structs: their first bytes are the type and header fields. */
	for (size_t i = 0; i < RDMIG__MIN(n, (size_t)96) * 8; i++) {
		memcpy(b, p, n);
		b[i / 8] ^= (uint8_t)(1u << (i % 8));
		assert_int_equal(run(target, b, n), 0);
		t->runs++;
	}
	free(b);
}

static void test_seeds(void **state)
{
	struct tally t = { 0 };

	(void)state;
	rdmig_fuzz_seeds(run_seed, &t);
	assert_true(t.seeds >= 60);
}

static void test_seed_flips(void **state)
{
	struct tally t = { .flips = true };

	(void)state;
	rdmig_fuzz_seeds(run_seed, &t);
	assert_true(t.runs > 10 * t.seeds);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_seeds),
		cmocka_unit_test(test_seed_flips),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

/* SPDX-License-Identifier: MIT */
/*
 * Tests of the handshake's logic (ctrl/handshake.c), its pure functions
 * driven between a source and a destination struct rdmig__hs with the bytes
 * passed by hand, so that a test can stand in the middle: the happy path
 * (same keys on both ends), version and capability negotiation, the auth
 * mode check, wrong keys, any byte of any message tampered with, another
 * connection's binding, reflected proofs and replayed messages. Nonces come
 * from a seeded source (rdmig__random_set_source), so a handshake can be
 * run again byte for byte.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "common/proto.h"
#include "common/seal.h"
#include "ctrl/handshake.h"

#define assert_contains(s, sub)                                            \
	do {                                                               \
		const char *s_ = (s);                                      \
		if (!strstr(s_, (sub)))                                    \
			fail_msg("'%s' does not contain '%s'", s_, (sub)); \
	} while (0)

#define KEY	  "a pre-shared key of the test"
#define OTHER_KEY "a pre-shared key of the tesT"

/* A connection as the source sees it; the destination sees it swapped. */
static const struct rdmig__xp_conn_info ci_src = {
	.local_gid = { 0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0x02, 0x11, 0x22, 0xff, 0xfe, 0x33, 0x44,
		       0x55 },
	.peer_gid = { 0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0x02, 0x66, 0x77, 0xff, 0xfe, 0x88, 0x99,
		      0xaa },
	.local_qpn = 0x000123,
	.peer_qpn = 0xabc456,
};

static struct rdmig__xp_conn_info ci_dst;
static struct rdmig__hs src, dst;
static uint8_t hello[RDMIG__HS_HELLO_MAX + 64], chall[256], auth[RDMIG__MSG_MAX];
static uint8_t tmp[RDMIG__MSG_MAX];
static size_t hello_len, chall_len, auth_len;
static struct rdmig__msg proposal, received, m;
static char err[512];
static bool fatal;

/* --- a seeded random source ---------------------------------------------------- */

static uint64_t rng;

static void seeded_random(void *arg, void *out, size_t len)
{
	uint64_t *s = arg;
	uint8_t *p = out;

	for (size_t i = 0; i < len; i++) {
		*s = *s * 6364136223846793005ull + 1442695040888963407ull;
		p[i] = (uint8_t)(*s >> 56);
	}
}

static int group_setup(void **state)
{
	(void)state;
	rdmig__random_set_source(seeded_random, &rng);
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	rdmig__random_set_source(NULL, NULL);
	return 0;
}

/* --- the two ends ----------------------------------------------------------------- */

static void ci_swap(const struct rdmig__xp_conn_info *a, struct rdmig__xp_conn_info *b)
{
	memcpy(b->local_gid, a->peer_gid, 16);
	memcpy(b->peer_gid, a->local_gid, 16);
	b->local_qpn = a->peer_qpn;
	b->peer_qpn = a->local_qpn;
}

/*
 * A source offering [4, 4] and our capabilities and a destination speaking
 * what this library speaks, as src.c and dst.c set them up; a NULL key is
 * an unauthenticated end. The nonces are those of `seed`.
 */
static void setup_ends(const char *src_key, const char *dst_key, uint64_t seed)
{
	rng = seed;
	memset(&src, 0, sizeof(src));
	memset(&dst, 0, sizeof(dst));
	src.psk = (const uint8_t *)src_key;
	src.psk_len = src_key ? strlen(src_key) : 0;
	src.ver_min = RDMIG__PROTO_VERSION;
	src.ver_max = RDMIG__PROTO_VERSION;
	src.caps = RDMIG__CAPS;
	dst.psk = (const uint8_t *)dst_key;
	dst.psk_len = dst_key ? strlen(dst_key) : 0;
	dst.ver_min = RDMIG__PROTO_MIN;
	dst.ver_max = RDMIG__PROTO_VERSION;
	dst.caps = RDMIG__CAPS;
	ci_swap(&ci_src, &ci_dst);
	rdmig__hs_bind(&src, &ci_src, true);
	rdmig__hs_bind(&dst, &ci_dst, false);
	hello_len = chall_len = auth_len = 0;
}

static void setup(const char *key)
{
	setup_ends(key, key, 1);
}

/* The source's HELLO into `hello`. */
static void src_hello(void)
{
	int len = rdmig__hs_src_hello(&src, hello, sizeof(hello), err, sizeof(err));

	if (len <= 0)
		fail_msg("source HELLO: %d %s", len, err);
	hello_len = (size_t)len;
	assert_int_equal(src.step, RDMIG__HS_SRC_HELLO_SENT);
}

/* The destination's answer to in: the CHALLENGE into `chall`, or the error. */
static int dst_hello(const uint8_t *in, size_t len)
{
	int ret;

	err[0] = '\0';
	ret = rdmig__hs_dst_hello(&dst, in, len, chall, sizeof(chall), &fatal, err, sizeof(err));
	if (ret > 0) {
		chall_len = (size_t)ret;
		assert_int_equal(dst.step, RDMIG__HS_DST_CHALLENGE_SENT);
		return 0;
	}
	assert_true(ret < 0);
	assert_int_equal(dst.step, RDMIG__HS_FAILED);
	return ret;
}

static int src_challenge(const uint8_t *in, size_t len)
{
	int ret;

	err[0] = '\0';
	ret = rdmig__hs_src_challenge(&src, in, len, err, sizeof(err));
	assert_int_equal(src.step, ret ? RDMIG__HS_FAILED : RDMIG__HS_SRC_CHALLENGE_OK);
	return ret;
}

/* The source's proposal: 4 KiB pages, 2 QPs, 2 regions, NOTICEs. */
static void make_proposal(struct rdmig__msg *p)
{
	memset(p, 0, sizeof(*p));
	p->auth.page_size = 4096;
	p->auth.nqps = 2;
	p->auth.nregions = 2;
	p->auth.flags = RDMIG__AUTH_NOTICES;
	p->auth.regions[0].gpa = 0;
	p->auth.regions[0].len = 640 << 10;
	p->auth.regions[1].gpa = 1ull << 32;
	p->auth.regions[1].len = 1ull << 30;
}

/* The source's AUTH into `auth`. */
static void src_auth(void)
{
	int len;

	make_proposal(&proposal);
	len = rdmig__hs_src_auth(&src, &proposal, auth, sizeof(auth), err, sizeof(err));
	if (len <= 0)
		fail_msg("source AUTH: %d %s", len, err);
	auth_len = (size_t)len;
	assert_int_equal(src.step, RDMIG__HS_DONE);
}

static int dst_auth(const uint8_t *in, size_t len)
{
	int ret;

	err[0] = '\0';
	memset(&received, 0xa5, sizeof(received));
	ret = rdmig__hs_dst_auth(&dst, in, len, &received, err, sizeof(err));
	assert_int_equal(dst.step, ret ? RDMIG__HS_FAILED : RDMIG__HS_DONE);
	return ret;
}

#define ASSERT_OK(expr)                                          \
	do {                                                     \
		int r_ = (expr);                                 \
		if (r_)                                          \
			fail_msg("%s: %d (%s)", #expr, r_, err); \
	} while (0)

/* Both ends up to and including the source's check of the CHALLENGE. */
static void run_to_challenge(void)
{
	src_hello();
	ASSERT_OK(dst_hello(hello, hello_len));
	ASSERT_OK(src_challenge(chall, chall_len));
}

/* The whole handshake, which must succeed. */
static void run_handshake(void)
{
	run_to_challenge();
	src_auth();
	ASSERT_OK(dst_auth(auth, auth_len));
}

static bool all_zero(const void *p, size_t len)
{
	const uint8_t *b = p;

	for (size_t i = 0; i < len; i++)
		if (b[i])
			return false;
	return true;
}

/* The keys are wiped on failure: nothing of a failed attempt is left to use. */
static void assert_failed_and_wiped(const struct rdmig__hs *hs)
{
	assert_int_equal(hs->step, RDMIG__HS_FAILED);
	assert_true(all_zero(&hs->keys, sizeof(hs->keys)));
}

/* The transcript's proofs, recomputed as proto.h documents them. */
static void dst_proof_of(const struct rdmig__keys *k, const uint8_t *binding, const uint8_t *h,
			 size_t hl, const uint8_t *c, size_t cl, uint8_t *out)
{
	struct rdmig__piece p[3] = { { h, hl }, { c, cl - RDMIG__KEY_LEN }, { binding, 40 } };

	assert_int_equal(rdmig__hmac(k->dst_proof, p, 3, out, RDMIG__KEY_LEN), 0);
}

static void src_proof_of(const uint8_t *key, const uint8_t *binding, const uint8_t *h, size_t hl,
			 const uint8_t *c, size_t cl, const uint8_t *a, size_t al, uint8_t *out)
{
	struct rdmig__piece p[4] = {
		{ h, hl }, { c, cl }, { binding, 40 }, { a, al - RDMIG__KEY_LEN }
	};

	assert_int_equal(rdmig__hmac(key, p, 4, out, RDMIG__KEY_LEN), 0);
}

/* --- the happy path ------------------------------------------------------------------ */

static void hs_happy_path_agrees_on_everything(void **state)
{
	(void)state;
	setup(KEY);
	run_handshake();
	assert_int_equal(src.version, RDMIG__PROTO_VERSION);
	assert_int_equal(dst.version, RDMIG__PROTO_VERSION);
	assert_int_equal(src.caps_agreed, RDMIG__CAPS);
	assert_int_equal(dst.caps_agreed, RDMIG__CAPS);
	assert_int_equal(dst.peer_caps, RDMIG__CAPS);
	assert_int_equal(dst.peer_min, RDMIG__PROTO_VERSION);
	assert_int_equal(dst.peer_max, RDMIG__PROTO_VERSION);
	/* the same nonces, the same keys, none of them zero */
	assert_memory_equal(src.nonce_src, dst.nonce_src, RDMIG__NONCE_LEN);
	assert_memory_equal(src.nonce_dst, dst.nonce_dst, RDMIG__NONCE_LEN);
	assert_memory_not_equal(src.nonce_src, src.nonce_dst, RDMIG__NONCE_LEN);
	assert_memory_equal(&src.keys, &dst.keys, sizeof(src.keys));
	assert_false(all_zero(src.keys.s2d, RDMIG__KEY_LEN));
	assert_false(all_zero(src.keys.hash_secret, sizeof(src.keys.hash_secret)));
	/* the proposal arrived as made, its proof with it */
	assert_int_equal(received.type, RDMIG__MSG_AUTH);
	assert_int_equal(received.auth.page_size, proposal.auth.page_size);
	assert_int_equal(received.auth.nqps, proposal.auth.nqps);
	assert_int_equal(received.auth.nregions, proposal.auth.nregions);
	assert_int_equal(received.auth.flags, proposal.auth.flags);
	for (unsigned i = 0; i < proposal.auth.nregions; i++) {
		assert_int_equal(received.auth.regions[i].gpa, proposal.auth.regions[i].gpa);
		assert_int_equal(received.auth.regions[i].len, proposal.auth.regions[i].len);
	}
	assert_memory_equal(received.auth.proof, auth + auth_len - RDMIG__KEY_LEN, RDMIG__KEY_LEN);
	/* what went over the wire */
	assert_int_equal(hello_len, RDMIG__HDR_LEN + RDMIG__HELLO_LEN);
	assert_int_equal(chall_len, RDMIG__HDR_LEN + 80);
	assert_int_equal(auth_len, RDMIG__HDR_LEN + 16 + 2 * 16 + RDMIG__KEY_LEN);
	ASSERT_OK(rdmig__msg_decode(hello, hello_len, &m, err, sizeof(err)));
	assert_int_equal(m.hello.auth, RDMIG__AUTH_PSK);
	assert_memory_equal(m.hello.nonce, src.nonce_src, RDMIG__NONCE_LEN);
	ASSERT_OK(rdmig__msg_decode(chall, chall_len, &m, err, sizeof(err)));
	assert_int_equal(m.challenge.version, RDMIG__PROTO_VERSION);
	assert_int_equal(m.challenge.auth, RDMIG__AUTH_PSK);
	assert_memory_equal(m.challenge.nonce, dst.nonce_dst, RDMIG__NONCE_LEN);
}

/* The agreed keys work: what one end seals on them, the other opens. */
static void hs_agreed_keys_seal_the_channel(void **state)
{
	struct rdmig__seal s, d;
	int len;

	(void)state;
	setup(KEY);
	run_handshake();
	assert_int_equal(rdmig__seal_init(&s, src.keys.s2d, src.keys.d2s, 0), 0);
	assert_int_equal(rdmig__seal_init(&d, dst.keys.d2s, dst.keys.s2d, 0), 0);
	memset(&m, 0, sizeof(m));
	m.type = RDMIG__MSG_COMPLETE;
	m.complete.passes = 3;
	len = rdmig__msg_encode_ext(&m, RDMIG__TRAILER_LEN, tmp, sizeof(tmp), err, sizeof(err));
	assert_true(len > 0);
	assert_int_equal(rdmig__seal_tx(&s, tmp, (size_t)len), 0);
	ASSERT_OK(rdmig__seal_rx(&d, tmp, (size_t)len, err, sizeof(err)));
	rdmig__seal_fini(&s);
	rdmig__seal_fini(&d);
}

/* RDMIG_AUTH=none on both ends: the same exchange, under an empty key. */
static void hs_unauthenticated_path_agrees(void **state)
{
	struct rdmig__keys keyed;

	(void)state;
	setup(KEY);
	run_handshake();
	keyed = src.keys;
	setup(NULL); /* the same seed: the same nonces */
	run_handshake();
	assert_memory_equal(&src.keys, &dst.keys, sizeof(src.keys));
	assert_memory_not_equal(&src.keys, &keyed, sizeof(keyed));
	ASSERT_OK(rdmig__msg_decode(hello, hello_len, &m, err, sizeof(err)));
	assert_int_equal(m.hello.auth, RDMIG__AUTH_NONE);
	ASSERT_OK(rdmig__msg_decode(chall, chall_len, &m, err, sizeof(err)));
	assert_int_equal(m.challenge.auth, RDMIG__AUTH_NONE);
}

/*
 * The binding and both proofs are exactly what proto.h says: recomputed
 * here from the documented pieces, they match what went over the wire.
 */
static void hs_transcript_is_the_documented_one(void **state)
{
	static const uint8_t binding[40] = {
		0xfe, 0x80, 0,	  0,	0,    0,    0,	  0,
		0x02, 0x11, 0x22, 0xff, 0xfe, 0x33, 0x44, 0x55, /* source GID */
		0x23, 0x01, 0,	  0,				/* source QPN */
		0xfe, 0x80, 0,	  0,	0,    0,    0,	  0,
		0x02, 0x66, 0x77, 0xff, 0xfe, 0x88, 0x99, 0xaa, /* destination GID */
		0x56, 0xc4, 0xab, 0,				/* destination QPN */
	};
	uint8_t proof[RDMIG__KEY_LEN];

	(void)state;
	setup(KEY);
	assert_memory_equal(src.binding, binding, sizeof(binding));
	assert_memory_equal(dst.binding, binding, sizeof(binding));
	run_handshake();
	dst_proof_of(&src.keys, binding, hello, hello_len, chall, chall_len, proof);
	assert_memory_equal(chall + chall_len - RDMIG__KEY_LEN, proof, RDMIG__KEY_LEN);
	src_proof_of(src.keys.src_proof, binding, hello, hello_len, chall, chall_len, auth,
		     auth_len, proof);
	assert_memory_equal(auth + auth_len - RDMIG__KEY_LEN, proof, RDMIG__KEY_LEN);
}

/* The same seed is the same handshake, byte for byte; another seed, another one. */
static void hs_seeded_handshake_replays_exactly(void **state)
{
	static uint8_t h1[RDMIG__HS_HELLO_MAX], c1[256], a1[256];
	size_t hl, cl, al;
	struct rdmig__keys k1;

	(void)state;
	setup_ends(KEY, KEY, 42);
	run_handshake();
	memcpy(h1, hello, hl = hello_len);
	memcpy(c1, chall, cl = chall_len);
	memcpy(a1, auth, al = auth_len);
	k1 = src.keys;
	setup_ends(KEY, KEY, 42);
	run_handshake();
	assert_memory_equal(hello, h1, hl);
	assert_memory_equal(chall, c1, cl);
	assert_memory_equal(auth, a1, al);
	assert_memory_equal(&src.keys, &k1, sizeof(k1));
	setup_ends(KEY, KEY, 43);
	run_handshake();
	assert_memory_not_equal(hello + 32, h1 + 32, RDMIG__NONCE_LEN);
	assert_memory_not_equal(chall + 32, c1 + 32, RDMIG__NONCE_LEN);
	assert_memory_not_equal(&src.keys, &k1, sizeof(k1));
}

/* --- versions and capabilities --------------------------------------------------------- */

/* A source speaking more than we do: the highest both speak is 4. */
static void hs_version_negotiation_settles_on_4(void **state)
{
	static const uint16_t offers[][2] = { { 3, 9 }, { 4, 9 }, { 1, 4 }, { 4, 0xffff } };

	(void)state;
	for (unsigned i = 0; i < RDMIG__ARRAY_SIZE(offers); i++) {
		setup(KEY);
		src.ver_min = offers[i][0];
		src.ver_max = offers[i][1];
		run_handshake();
		assert_int_equal(dst.peer_min, offers[i][0]);
		assert_int_equal(dst.peer_max, offers[i][1]);
		assert_int_equal(dst.version, 4);
		assert_int_equal(src.version, 4);
		ASSERT_OK(rdmig__msg_decode(chall, chall_len, &m, err, sizeof(err)));
		assert_int_equal(m.challenge.version, 4);
	}
}

/* No version in common: the destination refuses, naming both ranges. */
static void hs_no_common_version_eproto(void **state)
{
	static const uint16_t offers[][2] = { { 5, 9 }, { 2, 3 }, { 1, 1 }, { 5, 5 } };
	char want[32];

	(void)state;
	for (unsigned i = 0; i < RDMIG__ARRAY_SIZE(offers); i++) {
		setup(KEY);
		src.ver_min = offers[i][0];
		src.ver_max = offers[i][1];
		src_hello();
		assert_int_equal(dst_hello(hello, hello_len), -EPROTO);
		snprintf(want, sizeof(want), "[%u, %u]", offers[i][0], offers[i][1]);
		assert_contains(err, want);
		assert_contains(err, "the destination speaks [4, 4]");
		assert_contains(err, "no common protocol version");
		assert_false(fatal); /* another source may speak 4 */
		assert_failed_and_wiped(&dst);
	}
}

/* The HELLO of a protocol 2 or 3 source: refused, naming its range. */
static void hs_legacy_hello_refused_naming_its_range(void **state)
{
	static const uint16_t legacy[][3] = { { 3, 2, 3 }, { 2, 2, 2 }, { 3, 3, 3 } };
	char want[64];

	(void)state;
	for (unsigned i = 0; i < RDMIG__ARRAY_SIZE(legacy); i++) {
		const size_t len = 16 + 24 + RDMIG__SCAN_SECRET_SIZE + 16;

		setup(KEY);
		/* protocol 3's HELLO: range, page size, QPs, regions, flags, 0, secret, a region */
		memset(hello, 0, len);
		memcpy(hello, "RDMG", 4);
		hello[4] = (uint8_t)legacy[i][0];
		hello[6] = RDMIG__MSG_HELLO;
		hello[8] = (uint8_t)len;
		hello[9] = (uint8_t)(len >> 8);
		hello[16] = (uint8_t)legacy[i][1];
		hello[18] = (uint8_t)legacy[i][2];
		hello[21] = 0x10; /* 4096 */
		hello[24] = 3;
		hello[28] = 1;
		memset(hello + 40, 0x77, RDMIG__SCAN_SECRET_SIZE);
		hello[40 + RDMIG__SCAN_SECRET_SIZE + 8 + 1] = 0x10;
		assert_int_equal(dst_hello(hello, len), -EPROTO);
		snprintf(want, sizeof(want), "the source offers [%u, %u] (unauthenticated)",
			 legacy[i][1], legacy[i][2]);
		assert_contains(err, want);
		assert_contains(err, "[4, 4]");
		assert_false(fatal);
		assert_int_equal(dst.peer_min, legacy[i][1]);
		assert_int_equal(dst.peer_max, legacy[i][2]);
	}
}

/*
 * A later version's HELLO, longer than 48 bytes: answered, and its
 * appended bytes are in the transcript (a change to them in transit fails
 * the proof like any other).
 */
static void hs_later_hello_is_answered_and_covered_whole(void **state)
{
	(void)state;
	for (unsigned tamper = 0; tamper < 2; tamper++) {
		setup(KEY);
		src.ver_max = 9;
		src_hello();
		/* the source as a version 9 would be: the longer HELLO is its transcript */
		hello[4] = 9;
		memset(hello + hello_len, 0x3c, 20);
		hello_len += 20;
		hello[8] = (uint8_t)hello_len;
		memcpy(src.hello, hello, hello_len);
		src.hello_len = hello_len;
		memcpy(tmp, hello, hello_len);
		if (tamper)
			tmp[hello_len - 1] ^= 1;
		ASSERT_OK(dst_hello(tmp, hello_len));
		assert_int_equal(dst.hello_len, hello_len);
		assert_int_equal(dst.version, 4);
		if (tamper) {
			assert_int_equal(src_challenge(chall, chall_len), -EACCES);
			assert_contains(err, "authentication failed");
			continue;
		}
		ASSERT_OK(src_challenge(chall, chall_len));
		src_auth();
		ASSERT_OK(dst_auth(auth, auth_len));
	}
}

/* The transcript is kept whole up to RDMIG__HS_HELLO_MAX bytes: longer is refused. */
static void hs_oversized_hello_ebadmsg(void **state)
{
	(void)state;
	for (size_t len = RDMIG__HS_HELLO_MAX; len <= RDMIG__HS_HELLO_MAX + 1; len++) {
		setup(KEY);
		src_hello();
		hello[4] = 9;
		memset(hello + hello_len, 0, len - hello_len);
		hello[8] = (uint8_t)len;
		hello[9] = (uint8_t)(len >> 8);
		if (len == RDMIG__HS_HELLO_MAX) {
			ASSERT_OK(dst_hello(hello, len));
			continue;
		}
		assert_int_equal(dst_hello(hello, len), -EBADMSG);
		assert_contains(err, "a HELLO of 1025 bytes (at most 1024)");
	}
}

/* Capabilities the destination does not know are dropped; those it knows, kept if offered. */
static void hs_unknown_capabilities_are_dropped(void **state)
{
	static const uint32_t cases[][3] = {
		/* source offers, destination has, agreed */
		{ 0xffffffffu, RDMIG__CAPS, RDMIG__CAPS },
		{ 0x80000000u | RDMIG__CAP_NOTICES, RDMIG__CAPS, RDMIG__CAP_NOTICES },
		{ 0xfffffffeu, RDMIG__CAPS, 0 },
		{ 0, RDMIG__CAPS, 0 },
		{ RDMIG__CAPS, 0, 0 },
	};

	(void)state;
	for (unsigned i = 0; i < RDMIG__ARRAY_SIZE(cases); i++) {
		setup(KEY);
		src.caps = cases[i][0];
		dst.caps = cases[i][1];
		run_handshake();
		assert_int_equal(dst.peer_caps, cases[i][0]);
		assert_int_equal(dst.caps_agreed, cases[i][2]);
		assert_int_equal(src.caps_agreed, cases[i][2]);
		ASSERT_OK(rdmig__msg_decode(chall, chall_len, &m, err, sizeof(err)));
		assert_int_equal(m.challenge.caps, cases[i][2]);
	}
}

/*
 * Re-encodes the CHALLENGE after `edit` changed its decoded fields (its
 * proof is then stale: these checks must come before the proof's).
 */
static void rewrite_challenge(void (*edit)(struct rdmig__msg *))
{
	int len;

	ASSERT_OK(rdmig__msg_decode(chall, chall_len, &m, err, sizeof(err)));
	edit(&m);
	len = rdmig__msg_encode(&m, chall, sizeof(chall), err, sizeof(err));
	assert_int_equal(len, (int)chall_len);
}

static void edit_extra_cap(struct rdmig__msg *c)
{
	c->challenge.caps |= 2;
}

static void edit_version_5(struct rdmig__msg *c)
{
	c->challenge.version = 5;
}

static void edit_version_3(struct rdmig__msg *c)
{
	c->challenge.version = 3;
}

static void edit_auth_psk(struct rdmig__msg *c)
{
	c->challenge.auth = RDMIG__AUTH_PSK;
}

static void edit_auth_none(struct rdmig__msg *c)
{
	c->challenge.auth = RDMIG__AUTH_NONE;
}

/* The source takes no choice it did not offer, nor one it does not speak. */
static void hs_source_refuses_a_choice_it_did_not_offer(void **state)
{
	(void)state;
	setup(KEY);
	src_hello();
	ASSERT_OK(dst_hello(hello, hello_len));
	rewrite_challenge(edit_extra_cap);
	assert_int_equal(src_challenge(chall, chall_len), -EPROTO);
	assert_contains(err, "capabilities 0x3 the source did not offer (0x1)");

	setup(KEY);
	src_hello();
	ASSERT_OK(dst_hello(hello, hello_len));
	rewrite_challenge(edit_version_5);
	assert_int_equal(src_challenge(chall, chall_len), -EPROTO);
	assert_contains(err,
			"chose protocol version 5; the source offered [4, 4] and speaks [4, 4]");

	/* offered, but not spoken: a test source may offer what it does not speak */
	setup(KEY);
	src.ver_min = 3;
	src.ver_max = 9;
	src_hello();
	ASSERT_OK(dst_hello(hello, hello_len));
	rewrite_challenge(edit_version_3);
	assert_int_equal(src_challenge(chall, chall_len), -EPROTO);
	assert_contains(err, "version 3; the source offered [3, 9]");
	assert_failed_and_wiped(&src);
}

/* --- auth modes and keys ---------------------------------------------------------------- */

/* The source has a key, the destination none: both must fail, so the run ends (fatal). */
static void hs_auth_mismatch_keyed_source(void **state)
{
	(void)state;
	setup_ends(KEY, NULL, 1);
	src_hello();
	assert_int_equal(dst_hello(hello, hello_len), -EACCES);
	assert_contains(err, "authentication mismatch: the source has a pre-shared key, the "
			     "destination has none (RDMIG_AUTH=none)");
	assert_true(fatal);
}

/* The destination has a key, the source none: this attempt fails, the destination waits on. */
static void hs_auth_mismatch_keyed_destination(void **state)
{
	(void)state;
	setup_ends(NULL, KEY, 1);
	src_hello();
	assert_int_equal(dst_hello(hello, hello_len), -EACCES);
	assert_contains(err, "authentication mismatch: the destination requires a pre-shared key, "
			     "the source has none");
	assert_false(fatal);
	assert_failed_and_wiped(&dst);
}

/* The source checks the mode too: a CHALLENGE in the other mode is refused, named. */
static void hs_source_detects_auth_mismatch(void **state)
{
	(void)state;
	setup(NULL);
	src_hello();
	ASSERT_OK(dst_hello(hello, hello_len));
	rewrite_challenge(edit_auth_psk);
	assert_int_equal(src_challenge(chall, chall_len), -EACCES);
	assert_contains(err, "authentication mismatch: the source has no pre-shared key, the "
			     "destination has one");

	setup(KEY);
	src_hello();
	ASSERT_OK(dst_hello(hello, hello_len));
	rewrite_challenge(edit_auth_none);
	assert_int_equal(src_challenge(chall, chall_len), -EACCES);
	assert_contains(err, "authentication mismatch: the source has a pre-shared key, the "
			     "destination has none");
}

/* Different keys: the destination cannot tell from HELLO, the source sees the proof fail. */
static void hs_wrong_key_source_rejects_the_proof(void **state)
{
	(void)state;
	setup_ends(KEY, OTHER_KEY, 1);
	src_hello();
	ASSERT_OK(dst_hello(hello, hello_len));
	assert_int_equal(src_challenge(chall, chall_len), -EACCES);
	assert_contains(err, "authentication failed");
	assert_failed_and_wiped(&src);
	/* keys of different lengths, one a prefix of the other */
	setup_ends(KEY, "a pre-shared key", 1);
	src_hello();
	ASSERT_OK(dst_hello(hello, hello_len));
	assert_int_equal(src_challenge(chall, chall_len), -EACCES);
}

/*
 * A source without the key cannot make an AUTH that passes: whatever it
 * sends, the destination says "authentication failed" and nothing else
 * (no layout check answers a stranger).
 */
static void hs_wrong_key_destination_says_only_authentication_failed(void **state)
{
	struct rdmig__keys wrong;
	uint8_t proof[RDMIG__KEY_LEN];

	(void)state;
	/* an AUTH proven with a wrong key over the right transcript */
	setup(KEY);
	run_to_challenge();
	src_auth();
	assert_int_equal(rdmig__keys_derive((const uint8_t *)OTHER_KEY, strlen(OTHER_KEY),
					    src.nonce_src, src.nonce_dst, &wrong),
			 0);
	src_proof_of(wrong.src_proof, src.binding, hello, hello_len, chall, chall_len, auth,
		     auth_len, proof);
	memcpy(auth + auth_len - RDMIG__KEY_LEN, proof, RDMIG__KEY_LEN);
	assert_int_equal(dst_auth(auth, auth_len), -EACCES);
	assert_string_equal(err, "authentication failed");
	assert_failed_and_wiped(&dst);

	/* one with an invalid layout as well: still only that */
	setup(KEY);
	run_to_challenge();
	src_auth();
	auth[20] = 0; /* nqps 0 */
	auth[21] = 0;
	assert_int_equal(dst_auth(auth, auth_len), -EACCES);
	assert_string_equal(err, "authentication failed");

	/* garbage, too short for a proof, nothing at all */
	setup(KEY);
	run_to_challenge();
	memset(tmp, 0xff, 200);
	assert_int_equal(dst_auth(tmp, 200), -EACCES);
	assert_string_equal(err, "authentication failed");
	setup(KEY);
	run_to_challenge();
	assert_int_equal(dst_auth(tmp, RDMIG__HDR_LEN + RDMIG__KEY_LEN - 1), -EACCES);
	assert_string_equal(err, "authentication failed");
	setup(KEY);
	run_to_challenge();
	assert_int_equal(dst_auth(tmp, 0), -EACCES);
	assert_string_equal(err, "authentication failed");
}

/* Only a proven source learns that its layout is wrong. */
static void hs_proven_auth_is_then_decoded(void **state)
{
	uint8_t proof[RDMIG__KEY_LEN];

	(void)state;
	setup(KEY);
	run_to_challenge();
	src_auth();
	auth[20] = 0; /* nqps 0, proven anew with the right key */
	src_proof_of(src.keys.src_proof, src.binding, hello, hello_len, chall, chall_len, auth,
		     auth_len, proof);
	memcpy(auth + auth_len - RDMIG__KEY_LEN, proof, RDMIG__KEY_LEN);
	assert_int_equal(dst_auth(auth, auth_len), -EBADMSG);
	assert_contains(err, "bad AUTH: AUTH: 0 data QPs");
}

/* --- tampering ------------------------------------------------------------------------------ */

static const uint8_t masks[] = { 0x01, 0x80, 0xff };

/*
 * Any byte of HELLO changed in transit: the destination refuses it, or
 * answers over what it got, and the source's check of that answer fails.
 */
static void hs_tampered_hello_fails(void **state)
{
	unsigned at_source = 0, at_destination = 0;

	(void)state;
	setup(KEY);
	src_hello();
	for (size_t at = 0; at < hello_len; at++)
		for (unsigned k = 0; k < sizeof(masks); k++) {
			int ret;

			setup(KEY);
			src_hello();
			memcpy(tmp, hello, hello_len);
			tmp[at] ^= masks[k];
			if (dst_hello(tmp, hello_len)) {
				at_destination++;
				continue;
			}
			ret = src_challenge(chall, chall_len);
			if (ret != -EACCES)
				fail_msg("HELLO byte %zu ^ 0x%02x: the source said %d (%s)", at,
					 masks[k], ret, err);
			assert_contains(err, "authentication failed");
			at_source++;
		}
	/* every nonce and capability byte reaches the source's check, whatever the change */
	assert_true(at_source >= (RDMIG__NONCE_LEN + 4) * sizeof(masks));
	assert_int_equal(at_source + at_destination, hello_len * sizeof(masks));
}

/* Any byte of CHALLENGE changed in transit: the source refuses it. */
static void hs_tampered_challenge_fails(void **state)
{
	(void)state;
	setup(KEY);
	run_to_challenge();
	for (size_t at = 0; at < chall_len; at++)
		for (unsigned k = 0; k < sizeof(masks); k++) {
			int ret;

			setup(KEY);
			src_hello();
			ASSERT_OK(dst_hello(hello, hello_len));
			chall[at] ^= masks[k];
			ret = src_challenge(chall, chall_len);
			if (ret >= 0)
				fail_msg("CHALLENGE byte %zu ^ 0x%02x was accepted", at, masks[k]);
			assert_failed_and_wiped(&src);
		}
}

/* Any byte of AUTH changed in transit, or cut off, or one added: the destination refuses. */
static void hs_tampered_auth_fails(void **state)
{
	(void)state;
	setup(KEY);
	run_to_challenge();
	src_auth();
	for (size_t at = 0; at < auth_len; at++)
		for (unsigned k = 0; k < sizeof(masks); k++) {
			setup(KEY);
			run_to_challenge();
			src_auth();
			auth[at] ^= masks[k];
			if (dst_auth(auth, auth_len) != -EACCES)
				fail_msg("AUTH byte %zu ^ 0x%02x: %s", at, masks[k], err);
			assert_string_equal(err, "authentication failed");
		}
	for (size_t cut = 0; cut < auth_len; cut++) {
		setup(KEY);
		run_to_challenge();
		src_auth();
		assert_int_equal(dst_auth(auth, cut), -EACCES);
	}
	setup(KEY);
	run_to_challenge();
	src_auth();
	auth[auth_len] = 0;
	assert_int_equal(dst_auth(auth, auth_len + 1), -EACCES);
}

/* --- binding, reflection, replay -------------------------------------------------------------- */

/*
 * Both ends must see the same connection: a proof made for another QP or
 * another address (a man in the middle relaying between two connections)
 * fails at the source.
 */
static void hs_other_binding_fails(void **state)
{
	(void)state;
	for (unsigned v = 0; v < 7; v++) {
		struct rdmig__xp_conn_info ci;

		setup(KEY);
		ci = ci_dst;
		switch (v) {
		case 0:
			ci.local_qpn ^= 1; /* the destination's QP is another */
			break;
		case 1:
			ci.peer_qpn ^= 0x800000; /* the source's QP is another */
			break;
		case 2:
			ci.local_gid[15] ^= 1;
			break;
		case 3:
			ci.peer_gid[0] ^= 0x80;
			break;
		case 4:
			ci.peer_gid[8] ^= 0x02;
			break;
		case 5:
			/* the destination's view taken as a source's: roles swapped */
			rdmig__hs_bind(&dst, &ci_dst, true);
			break;
		case 6:
			ci_swap(&ci_dst, &ci); /* the source's view, as the destination's */
			break;
		}
		if (v != 5)
			rdmig__hs_bind(&dst, &ci, false);
		assert_memory_not_equal(dst.binding, src.binding, sizeof(src.binding));
		src_hello();
		ASSERT_OK(dst_hello(hello, hello_len));
		if (src_challenge(chall, chall_len) != -EACCES)
			fail_msg("binding case %u: %s", v, err);
		assert_contains(err, "authentication failed");
	}
	/* and at the destination: a source bound to another connection */
	setup(KEY);
	src_hello();
	ASSERT_OK(dst_hello(hello, hello_len));
	ASSERT_OK(src_challenge(chall, chall_len));
	src.binding[17] ^= 1; /* after its check: as if it proved for another QP */
	src_auth();
	assert_int_equal(dst_auth(auth, auth_len), -EACCES);
}

/*
 * The proofs have a key per role: the destination's proof, played back as
 * the source's (a stranger reflecting what it was sent), fails; so does a
 * proof over the source's transcript made with the destination's key.
 */
static void hs_reflected_proof_fails(void **state)
{
	uint8_t proof[RDMIG__KEY_LEN];

	(void)state;
	setup(KEY);
	run_to_challenge();
	src_auth();
	memcpy(auth + auth_len - RDMIG__KEY_LEN, chall + chall_len - RDMIG__KEY_LEN,
	       RDMIG__KEY_LEN);
	assert_int_equal(dst_auth(auth, auth_len), -EACCES);
	assert_string_equal(err, "authentication failed");

	setup(KEY);
	run_to_challenge();
	src_auth();
	src_proof_of(src.keys.dst_proof, src.binding, hello, hello_len, chall, chall_len, auth,
		     auth_len, proof);
	memcpy(auth + auth_len - RDMIG__KEY_LEN, proof, RDMIG__KEY_LEN);
	assert_int_equal(dst_auth(auth, auth_len), -EACCES);

	/* the source's own HELLO reflected back as the answer is no CHALLENGE */
	setup(KEY);
	src_hello();
	assert_int_equal(src_challenge(hello, hello_len), -EPROTO);
	assert_contains(err, "expected CHALLENGE, got HELLO");
}

/*
 * A recorded handshake played again to a fresh destination: it answers
 * with a new nonce, and the recorded AUTH does not prove this one.
 */
static void hs_replayed_auth_fails(void **state)
{
	static uint8_t old_hello[RDMIG__HS_HELLO_MAX], old_auth[256];
	uint8_t old_nonce[RDMIG__NONCE_LEN];
	size_t old_hello_len, old_auth_len, old_chall_len;

	(void)state;
	setup_ends(KEY, KEY, 100);
	run_handshake();
	memcpy(old_hello, hello, old_hello_len = hello_len);
	memcpy(old_auth, auth, old_auth_len = auth_len);
	memcpy(old_nonce, dst.nonce_dst, RDMIG__NONCE_LEN);

	/* the same HELLO (same source nonce), then the old AUTH */
	setup_ends(KEY, KEY, 200);
	ASSERT_OK(dst_hello(old_hello, old_hello_len));
	assert_memory_not_equal(dst.nonce_dst, old_nonce, RDMIG__NONCE_LEN);
	assert_int_equal(dst_auth(old_auth, old_auth_len), -EACCES);
	assert_string_equal(err, "authentication failed");

	/* a new handshake of both ends (other nonces), the old AUTH in place of the new */
	setup_ends(KEY, KEY, 300);
	run_to_challenge();
	assert_int_equal(dst_auth(old_auth, old_auth_len), -EACCES);

	/* and the old CHALLENGE to a new source */
	setup_ends(KEY, KEY, 100);
	run_to_challenge();
	memcpy(tmp, chall, old_chall_len = chall_len);
	setup_ends(KEY, KEY, 400);
	src_hello();
	assert_int_equal(src_challenge(tmp, old_chall_len), -EACCES);
	assert_contains(err, "authentication failed");
}

/* --- order, errors, wiping ------------------------------------------------------------------- */

static void hs_steps_out_of_order_fail(void **state)
{
	size_t len;

	(void)state;
	setup(KEY);
	assert_int_equal(src_challenge(chall, 96), -EPROTO);
	assert_contains(err, "a CHALLENGE before our HELLO");

	setup(KEY);
	make_proposal(&proposal);
	assert_int_equal(rdmig__hs_src_auth(&src, &proposal, auth, sizeof(auth), err, sizeof(err)),
			 -EINVAL);
	assert_int_equal(src.step, RDMIG__HS_FAILED);

	setup(KEY);
	src_hello();
	assert_int_equal(rdmig__hs_src_hello(&src, hello, sizeof(hello), err, sizeof(err)),
			 -EINVAL);

	setup(KEY);
	assert_int_equal(dst_auth(auth, 100), -EPROTO);
	assert_string_equal(err, "authentication failed");

	setup(KEY);
	src_hello();
	ASSERT_OK(dst_hello(hello, hello_len));
	assert_int_equal(dst_hello(hello, hello_len), -EPROTO);
	assert_contains(err, "a second HELLO");

	/* a failed handshake stays failed */
	setup_ends(KEY, OTHER_KEY, 1);
	src_hello();
	ASSERT_OK(dst_hello(hello, hello_len));
	assert_int_equal(src_challenge(chall, chall_len), -EACCES);
	assert_int_equal(src_challenge(chall, chall_len), -EPROTO);
	make_proposal(&proposal);
	assert_int_equal(rdmig__hs_src_auth(&src, &proposal, auth, sizeof(auth), err, sizeof(err)),
			 -EINVAL);

	/* the first message must be a HELLO */
	setup(KEY);
	run_to_challenge();
	memcpy(tmp, chall, len = chall_len);
	setup(KEY);
	assert_int_equal(dst_hello(tmp, len), -EPROTO);
	assert_contains(err, "expected HELLO first, got CHALLENGE");
	setup(KEY);
	tmp[0] = 'X';
	assert_int_equal(dst_hello(tmp, len), -EBADMSG);
	assert_contains(err, "bad first message");
}

/* The destination may answer HELLO with an ERROR: the source reports its text. */
static void hs_error_answer_is_reported(void **state)
{
	int len;

	(void)state;
	setup(KEY);
	src_hello();
	memset(&m, 0, sizeof(m));
	m.type = RDMIG__MSG_ERROR;
	m.error.code = EBUSY;
	m.error.len = 9;
	memcpy(m.error.text, "busy here", 9);
	len = rdmig__msg_encode(&m, tmp, sizeof(tmp), err, sizeof(err));
	assert_int_equal(src_challenge(tmp, (size_t)len), -ECONNREFUSED);
	assert_string_equal(err, "busy here");

	setup(KEY);
	src_hello();
	memset(tmp, 0, 64);
	assert_int_equal(src_challenge(tmp, 64), -EBADMSG);
	assert_contains(err, "bad answer to HELLO");
}

static void hs_wipe_clears_everything(void **state)
{
	static const struct rdmig__hs zero;

	(void)state;
	setup(KEY);
	run_handshake();
	rdmig__hs_wipe(&src);
	assert_memory_equal(&src, &zero, sizeof(src));
}

/* --- data QP tags ---------------------------------------------------------------------------- */

/* A data CONNECT's tag: both ends compute it alike, and it changes with each of its inputs. */
static void hs_data_tag_depends_on_every_input(void **state)
{
	static const uint32_t idx[] = { 0, 1, 63 };
	static const uint64_t tok[] = { 1, 0x8000000000000000ull, 0x0123456789abcdefull };
	static const uint32_t qpn[] = { 0x11, 0x12, 0xffffff };
	uint8_t tags[27][RDMIG__TAG_LEN], t[RDMIG__TAG_LEN];
	struct rdmig__keys k;
	unsigned n = 0;

	(void)state;
	setup(KEY);
	run_handshake();
	for (unsigned a = 0; a < 3; a++)
		for (unsigned b = 0; b < 3; b++)
			for (unsigned c = 0; c < 3; c++) {
				assert_int_equal(rdmig__hs_data_tag(&src.keys, idx[a], tok[b],
								    qpn[c], tags[n]),
						 0);
				assert_int_equal(
					rdmig__hs_data_tag(&dst.keys, idx[a], tok[b], qpn[c], t),
					0);
				assert_memory_equal(tags[n], t, RDMIG__TAG_LEN);
				n++;
			}
	for (unsigned i = 0; i < n; i++)
		for (unsigned j = i + 1; j < n; j++)
			if (!memcmp(tags[i], tags[j], RDMIG__TAG_LEN))
				fail_msg("tags %u and %u are equal", i, j);
	/* another session's keys, the same inputs */
	k = src.keys;
	setup_ends(KEY, KEY, 2);
	run_handshake();
	assert_int_equal(rdmig__hs_data_tag(&src.keys, idx[0], tok[0], qpn[0], t), 0);
	assert_memory_not_equal(tags[0], t, RDMIG__TAG_LEN);
	assert_int_equal(rdmig__hs_data_tag(&k, idx[0], tok[0], qpn[0], t), 0);
	assert_memory_equal(tags[0], t, RDMIG__TAG_LEN);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(hs_happy_path_agrees_on_everything),
		cmocka_unit_test(hs_agreed_keys_seal_the_channel),
		cmocka_unit_test(hs_unauthenticated_path_agrees),
		cmocka_unit_test(hs_transcript_is_the_documented_one),
		cmocka_unit_test(hs_seeded_handshake_replays_exactly),
		cmocka_unit_test(hs_version_negotiation_settles_on_4),
		cmocka_unit_test(hs_no_common_version_eproto),
		cmocka_unit_test(hs_legacy_hello_refused_naming_its_range),
		cmocka_unit_test(hs_later_hello_is_answered_and_covered_whole),
		cmocka_unit_test(hs_oversized_hello_ebadmsg),
		cmocka_unit_test(hs_unknown_capabilities_are_dropped),
		cmocka_unit_test(hs_source_refuses_a_choice_it_did_not_offer),
		cmocka_unit_test(hs_auth_mismatch_keyed_source),
		cmocka_unit_test(hs_auth_mismatch_keyed_destination),
		cmocka_unit_test(hs_source_detects_auth_mismatch),
		cmocka_unit_test(hs_wrong_key_source_rejects_the_proof),
		cmocka_unit_test(hs_wrong_key_destination_says_only_authentication_failed),
		cmocka_unit_test(hs_proven_auth_is_then_decoded),
		cmocka_unit_test(hs_tampered_hello_fails),
		cmocka_unit_test(hs_tampered_challenge_fails),
		cmocka_unit_test(hs_tampered_auth_fails),
		cmocka_unit_test(hs_other_binding_fails),
		cmocka_unit_test(hs_reflected_proof_fails),
		cmocka_unit_test(hs_replayed_auth_fails),
		cmocka_unit_test(hs_steps_out_of_order_fail),
		cmocka_unit_test(hs_error_answer_is_reported),
		cmocka_unit_test(hs_wipe_clears_everything),
		cmocka_unit_test(hs_data_tag_depends_on_every_input),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}

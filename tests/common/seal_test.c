/* SPDX-License-Identifier: MIT */
/*
 * Tests of the session's cryptography (common/seal.c): the key schedule
 * seal.h documents, pinned to values computed independently (Python's
 * hmac and hashlib, RFC 5869 by hand), and its sensitivity to every input;
 * HMAC over pieces; sealed messages between two ends, through the codec
 * and through endpoints (common/conn.c, no QP needed): every byte of a
 * sealed message is covered, replayed, skipped, moved and reflected
 * messages fail, and so does one from another session.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "common/conn.h"
#include "common/proto.h"
#include "common/seal.h"

#define assert_contains(s, sub)                                            \
	do {                                                               \
		const char *s_ = (s);                                      \
		if (!strstr(s_, (sub)))                                    \
			fail_msg("'%s' does not contain '%s'", s_, (sub)); \
	} while (0)

#define PSK	"correct horse battery staple"
#define PSK_LEN (sizeof(PSK) - 1)

static uint8_t psk[64];
static uint8_t nonce_src[RDMIG__NONCE_LEN], nonce_dst[RDMIG__NONCE_LEN];
static struct rdmig__keys keys, other;
static struct rdmig__msg msg_in, msg_out;
static uint8_t buf[RDMIG__MSG_MAX], tmp[RDMIG__MSG_MAX];
static char err[512];

/* The reference inputs: the PSK above, nonces 0x00..0x1f and 0x20..0x3f. */
static void reference_inputs(void)
{
	memset(psk, 0, sizeof(psk));
	memcpy(psk, PSK, PSK_LEN);
	for (unsigned i = 0; i < RDMIG__NONCE_LEN; i++) {
		nonce_src[i] = (uint8_t)i;
		nonce_dst[i] = (uint8_t)(0x20 + i);
	}
}

static void derive(const uint8_t *p, size_t len, const uint8_t *ns, const uint8_t *nd,
		   struct rdmig__keys *k)
{
	memset(k, 0xee, sizeof(*k));
	assert_int_equal(rdmig__keys_derive(p, len, ns, nd, k), 0);
}

/* The five keys of a and b, as (name, a's, b's) for the checks that follow. */
struct key_ref {
	const char *name;
	const uint8_t *a, *b;
	size_t len;
};

static unsigned key_refs(const struct rdmig__keys *a, const struct rdmig__keys *b,
			 struct key_ref *r)
{
	r[0] = (struct key_ref){ "src_proof", a->src_proof, b->src_proof, RDMIG__KEY_LEN };
	r[1] = (struct key_ref){ "dst_proof", a->dst_proof, b->dst_proof, RDMIG__KEY_LEN };
	r[2] = (struct key_ref){ "s2d", a->s2d, b->s2d, RDMIG__KEY_LEN };
	r[3] = (struct key_ref){ "d2s", a->d2s, b->d2s, RDMIG__KEY_LEN };
	r[4] = (struct key_ref){ "hash_secret", a->hash_secret, b->hash_secret,
				 RDMIG__SCAN_SECRET_SIZE };
	return 5;
}

/* Every one of the five keys of a differs from b's: `what` says which input changed. */
static void assert_all_keys_differ(const struct rdmig__keys *a, const struct rdmig__keys *b,
				   const char *what, unsigned i)
{
	struct key_ref r[5];
	unsigned n = key_refs(a, b, r);

	for (unsigned k = 0; k < n; k++)
		if (!memcmp(r[k].a, r[k].b, r[k].len))
			fail_msg("%s %u: %s did not change", what, i, r[k].name);
}

/* --- the key schedule ------------------------------------------------------- */

/*
 * HKDF-SHA256 with salt nonce_src || nonce_dst and the labels of seal.h,
 * computed outside this library: a change of label, of salt order or of
 * the KDF is a change of protocol and must show here.
 */
static void seal_keys_derive_matches_the_documented_schedule(void **state)
{
	static const uint8_t src_proof[32] = {
		0x43, 0xad, 0x33, 0x22, 0x46, 0xfc, 0xc1, 0xf9, 0x93, 0xd0, 0x08,
		0x62, 0xf0, 0x85, 0x18, 0xbc, 0xc4, 0x28, 0x44, 0xc2, 0x0e, 0x7f,
		0xd5, 0x14, 0xc5, 0x4a, 0xde, 0x50, 0x12, 0xa3, 0xa0, 0x34,
	};
	static const uint8_t dst_proof[32] = {
		0xa4, 0xf2, 0x6e, 0xcf, 0x78, 0x26, 0xea, 0x8c, 0xeb, 0xa7, 0xff,
		0x07, 0x02, 0x9b, 0xc2, 0xdb, 0x56, 0x42, 0x1a, 0x0d, 0xd9, 0xcd,
		0xd0, 0x74, 0xb5, 0x44, 0xce, 0xeb, 0xdd, 0x2d, 0x74, 0x31,
	};
	static const uint8_t s2d[32] = {
		0x3f, 0x35, 0xcd, 0x56, 0x23, 0x83, 0x01, 0x49, 0xf6, 0xe5, 0x7b,
		0x6e, 0xc9, 0x6a, 0xd5, 0xe3, 0xb8, 0x93, 0xdf, 0xaf, 0x42, 0x15,
		0xb8, 0xbe, 0x1b, 0x53, 0x64, 0x65, 0x45, 0x25, 0x5c, 0xe0,
	};
	static const uint8_t d2s[32] = {
		0x27, 0xe0, 0xde, 0xd6, 0xda, 0xd9, 0x1b, 0x02, 0x68, 0x74, 0x70,
		0xd4, 0xe9, 0x16, 0x45, 0xac, 0xe5, 0x59, 0xa9, 0xf7, 0x40, 0x6d,
		0x57, 0x02, 0x95, 0x20, 0x49, 0x8e, 0x63, 0xf0, 0xc1, 0x78,
	};
	/* the last 32 of its 192 bytes: the whole output was asked for */
	static const uint8_t hash_tail[32] = {
		0x0d, 0xfa, 0x5d, 0xb8, 0x3a, 0x15, 0x4d, 0x98, 0x7d, 0xe1, 0xe3,
		0x06, 0x3a, 0x34, 0x1e, 0x40, 0x1d, 0xa2, 0x98, 0x36, 0x96, 0xa8,
		0x38, 0x4f, 0xce, 0xa5, 0x41, 0x1e, 0x97, 0x4a, 0xb9, 0x42,
	};
	/* an empty PSK: HKDF's input key is the constant "rdmig v4: no pre-shared key" */
	static const uint8_t empty_src_proof[32] = {
		0x79, 0x2e, 0x74, 0xbc, 0xbc, 0xe6, 0x24, 0xf3, 0xa3, 0x9c, 0xed,
		0x9f, 0x77, 0x4a, 0x92, 0xa7, 0x9f, 0xb7, 0x2d, 0x0b, 0x44, 0x9d,
		0x71, 0x4b, 0x57, 0x49, 0xe0, 0x22, 0xf1, 0xf9, 0xd2, 0x27,
	};

	(void)state;
	reference_inputs();
	derive(psk, PSK_LEN, nonce_src, nonce_dst, &keys);
	assert_memory_equal(keys.src_proof, src_proof, 32);
	assert_memory_equal(keys.dst_proof, dst_proof, 32);
	assert_memory_equal(keys.s2d, s2d, 32);
	assert_memory_equal(keys.d2s, d2s, 32);
	assert_memory_equal(keys.hash_secret + RDMIG__SCAN_SECRET_SIZE - 32, hash_tail, 32);
	derive(NULL, 0, nonce_src, nonce_dst, &keys);
	assert_memory_equal(keys.src_proof, empty_src_proof, 32);
	/* A key of 32 zero bytes is a (weak) key, not "no key". */
	memset(psk, 0, 32);
	derive(psk, 32, nonce_src, nonce_dst, &other);
	assert_memory_not_equal(other.src_proof, keys.src_proof, 32);
	assert_memory_not_equal(other.s2d, keys.s2d, 32);
}

static void seal_keys_derive_is_deterministic(void **state)
{
	(void)state;
	reference_inputs();
	derive(psk, PSK_LEN, nonce_src, nonce_dst, &keys);
	derive(psk, PSK_LEN, nonce_src, nonce_dst, &other);
	assert_memory_equal(&keys, &other, sizeof(keys));
	/* the inputs are read, not kept: a copy elsewhere gives the same keys */
	memcpy(tmp, psk, PSK_LEN);
	memcpy(tmp + 64, nonce_src, RDMIG__NONCE_LEN);
	memcpy(tmp + 128, nonce_dst, RDMIG__NONCE_LEN);
	derive(tmp, PSK_LEN, tmp + 64, tmp + 128, &other);
	assert_memory_equal(&keys, &other, sizeof(keys));
}

/* A single bit of either nonce anywhere changes every key; so does swapping them. */
static void seal_keys_differ_for_any_other_nonce(void **state)
{
	(void)state;
	reference_inputs();
	derive(psk, PSK_LEN, nonce_src, nonce_dst, &keys);
	for (unsigned i = 0; i < RDMIG__NONCE_LEN; i++) {
		nonce_src[i] ^= 0x01;
		derive(psk, PSK_LEN, nonce_src, nonce_dst, &other);
		assert_all_keys_differ(&keys, &other, "source nonce byte", i);
		nonce_src[i] ^= 0x01;

		nonce_dst[i] ^= 0x80;
		derive(psk, PSK_LEN, nonce_src, nonce_dst, &other);
		assert_all_keys_differ(&keys, &other, "destination nonce byte", i);
		nonce_dst[i] ^= 0x80;
	}
	/* the roles are part of the salt: a reflected handshake gets other keys */
	derive(psk, PSK_LEN, nonce_dst, nonce_src, &other);
	assert_all_keys_differ(&keys, &other, "nonces swapped", 0);
	/* and equal nonces are nothing special */
	derive(psk, PSK_LEN, nonce_src, nonce_src, &other);
	assert_all_keys_differ(&keys, &other, "source nonce twice", 0);
}

static void seal_keys_differ_for_any_other_psk(void **state)
{
	(void)state;
	reference_inputs();
	derive(psk, PSK_LEN, nonce_src, nonce_dst, &keys);
	for (unsigned i = 0; i < PSK_LEN; i++) {
		psk[i] ^= 0x20;
		derive(psk, PSK_LEN, nonce_src, nonce_dst, &other);
		assert_all_keys_differ(&keys, &other, "PSK byte", i);
		psk[i] ^= 0x20;
	}
	/* its length counts: a prefix, or one more byte (a NUL), is another key */
	derive(psk, PSK_LEN - 1, nonce_src, nonce_dst, &other);
	assert_all_keys_differ(&keys, &other, "PSK one byte shorter", 0);
	derive(psk, PSK_LEN + 1, nonce_src, nonce_dst, &other);
	assert_all_keys_differ(&keys, &other, "PSK with a NUL appended", 0);
	derive(psk, 1, nonce_src, nonce_dst, &other);
	assert_all_keys_differ(&keys, &other, "PSK of one byte", 0);
	/* and no PSK at all */
	derive(NULL, 0, nonce_src, nonce_dst, &other);
	assert_all_keys_differ(&keys, &other, "no PSK", 0);
}

/* An unauthenticated session runs the same schedule with an empty PSK. */
static void seal_keys_empty_psk_works(void **state)
{
	(void)state;
	reference_inputs();
	derive(NULL, 0, nonce_src, nonce_dst, &keys);
	derive(psk, 0, nonce_src, nonce_dst, &other); /* a pointer, but no bytes */
	assert_memory_equal(&keys, &other, sizeof(keys));
	/* still a function of the nonces */
	nonce_dst[7] ^= 1;
	derive(NULL, 0, nonce_src, nonce_dst, &other);
	assert_all_keys_differ(&keys, &other, "no PSK, destination nonce byte", 7);
}

/* The five keys are five: no two purposes share key material. */
static void seal_keys_are_distinct(void **state)
{
	const uint8_t *k[4 + RDMIG__SCAN_SECRET_SIZE / RDMIG__KEY_LEN];
	static const uint8_t zero[RDMIG__KEY_LEN];
	unsigned n = 0;

	(void)state;
	reference_inputs();
	for (unsigned with_psk = 0; with_psk < 2; with_psk++) {
		derive(with_psk ? psk : NULL, with_psk ? PSK_LEN : 0, nonce_src, nonce_dst, &keys);
		n = 0;
		k[n++] = keys.src_proof;
		k[n++] = keys.dst_proof;
		k[n++] = keys.s2d;
		k[n++] = keys.d2s;
		/* every 32 bytes of the hash secret too: it is one long key, not a repeat */
		for (unsigned off = 0; off < RDMIG__SCAN_SECRET_SIZE; off += RDMIG__KEY_LEN)
			k[n++] = keys.hash_secret + off;
		for (unsigned i = 0; i < n; i++) {
			assert_memory_not_equal(k[i], zero, RDMIG__KEY_LEN);
			for (unsigned j = i + 1; j < n; j++)
				if (!memcmp(k[i], k[j], RDMIG__KEY_LEN))
					fail_msg("PSK %u: keys %u and %u are equal", with_psk, i,
						 j);
		}
	}
}

static void seal_keys_wipe_clears_everything(void **state)
{
	static const struct rdmig__keys zero;

	(void)state;
	reference_inputs();
	derive(psk, PSK_LEN, nonce_src, nonce_dst, &keys);
	rdmig__keys_wipe(&keys);
	assert_memory_equal(&keys, &zero, sizeof(keys));
}

/* --- HMAC and comparison ------------------------------------------------------ */

/* HMAC-SHA256 under a 32-byte key of 0x0b, of "Hi There", computed with Python's hmac. */
static void seal_hmac_matches_reference(void **state)
{
	static const uint8_t want[32] = {
		0x19, 0x8a, 0x60, 0x7e, 0xb4, 0x4b, 0xfb, 0xc6, 0x99, 0x03, 0xa0,
		0xf1, 0xcf, 0x2b, 0xbd, 0xc5, 0xba, 0x0a, 0xa3, 0xf3, 0xd9, 0xae,
		0x3c, 0x1c, 0x7a, 0x3b, 0x16, 0x96, 0xa0, 0xb6, 0x8c, 0xf7,
	};
	uint8_t key[RDMIG__KEY_LEN], out[32], out2[32];
	struct rdmig__piece whole = { "Hi There", 8 };
	struct rdmig__piece split[4] = { { "Hi", 2 }, { "", 0 }, { " The", 4 }, { "re", 2 } };

	(void)state;
	memset(key, 0x0b, sizeof(key));
	assert_int_equal(rdmig__hmac(key, &whole, 1, out, 32), 0);
	assert_memory_equal(out, want, 32);
	/* the pieces are one message, however it is cut (an empty piece included) */
	assert_int_equal(rdmig__hmac(key, split, 4, out2, 32), 0);
	assert_memory_equal(out2, want, 32);
	/* a shorter output is the prefix: the tags of sealed messages */
	memset(out2, 0x5a, sizeof(out2));
	assert_int_equal(rdmig__hmac(key, &whole, 1, out2, RDMIG__TAG_LEN), 0);
	assert_memory_equal(out2, want, RDMIG__TAG_LEN);
	for (unsigned i = RDMIG__TAG_LEN; i < 32; i++)
		assert_int_equal(out2[i], 0x5a);
	/* another key, another MAC */
	key[31] ^= 1;
	assert_int_equal(rdmig__hmac(key, &whole, 1, out2, 32), 0);
	assert_memory_not_equal(out2, want, 32);
}

static void seal_mac_equal_compares_every_byte(void **state)
{
	uint8_t a[RDMIG__KEY_LEN], b[RDMIG__KEY_LEN];

	(void)state;
	for (unsigned i = 0; i < sizeof(a); i++)
		a[i] = (uint8_t)(i * 37 + 1);
	memcpy(b, a, sizeof(a));
	assert_true(rdmig__mac_equal(a, b, sizeof(a)));
	for (unsigned i = 0; i < sizeof(a); i++) {
		b[i] ^= 0x01;
		assert_false(rdmig__mac_equal(a, b, sizeof(a)));
		assert_false(rdmig__mac_equal(b, a, sizeof(a)));
		b[i] ^= 0x81;
		assert_false(rdmig__mac_equal(a, b, sizeof(a)));
		b[i] ^= 0x80;
	}
	assert_true(rdmig__mac_equal(a, b, sizeof(a)));
	/* only len bytes are compared */
	b[RDMIG__TAG_LEN] ^= 1;
	assert_true(rdmig__mac_equal(a, b, RDMIG__TAG_LEN));
	assert_false(rdmig__mac_equal(a, b, RDMIG__TAG_LEN + 1));
	assert_true(rdmig__mac_equal(a, b, 0));
}

/* --- sealed messages ------------------------------------------------------------ */

/* The source's and the destination's ends of one channel, keyed as src.c and dst.c do. */
static struct rdmig__seal src_end, dst_end;

static void seal_pair(uint32_t chan)
{
	reference_inputs();
	derive(psk, PSK_LEN, nonce_src, nonce_dst, &keys);
	assert_int_equal(rdmig__seal_init(&src_end, keys.s2d, keys.d2s, chan), 0);
	assert_int_equal(rdmig__seal_init(&dst_end, keys.d2s, keys.s2d, chan), 0);
}

static int seal_teardown(void **state)
{
	(void)state;
	rdmig__seal_fini(&src_end);
	rdmig__seal_fini(&dst_end);
	return 0;
}

/* PASS_ACK of pass p: small, and each pass gives other bytes. */
static void make_pass_ack(struct rdmig__msg *m, uint64_t p)
{
	memset(m, 0, sizeof(*m));
	m->type = RDMIG__MSG_PASS_ACK;
	m->pass_ack.pass = p;
	m->pass_ack.bytes = 0x1000 * p;
}

/* Encodes m with room for the trailer into b, seals it on s; returns the length. */
static size_t seal_msg(struct rdmig__seal *s, const struct rdmig__msg *m, uint8_t *b)
{
	int len = rdmig__msg_encode_ext(m, RDMIG__TRAILER_LEN, b, RDMIG__MSG_MAX, err, sizeof(err));

	if (len < 0)
		fail_msg("encode: %d %s", len, err);
	assert_int_equal(rdmig__seal_tx(s, b, (size_t)len), 0);
	return (size_t)len;
}

/* Checks and decodes a sealed message on s; returns what rdmig__seal_rx said. */
static int open_msg(struct rdmig__seal *s, const uint8_t *b, size_t len)
{
	int ret;

	err[0] = '\0';
	ret = rdmig__seal_rx(s, b, len, err, sizeof(err));
	if (ret)
		return ret;
	memset(&msg_out, 0xa5, sizeof(msg_out));
	ret = rdmig__msg_decode_ext(b, len, RDMIG__TRAILER_LEN, &msg_out, err, sizeof(err));
	if (ret)
		fail_msg("sealed message checked but does not decode: %d %s", ret, err);
	return 0;
}

#define ASSERT_OPENS(s, b, len)                                                    \
	do {                                                                       \
		int r_ = open_msg(s, b, len);                                      \
		if (r_)                                                            \
			fail_msg("a genuine message was refused: %d %s", r_, err); \
	} while (0)

/* Both directions, interleaved, several message types: each arrives as sent. */
static void seal_round_trips_both_directions(void **state)
{
	size_t len;

	(void)state;
	seal_pair(0);
	for (uint64_t p = 1; p <= 5; p++) {
		make_pass_ack(&msg_in, p);
		len = seal_msg(&dst_end, &msg_in, buf);
		assert_int_equal(len, 32 + RDMIG__TRAILER_LEN);
		ASSERT_OPENS(&src_end, buf, len);
		assert_int_equal(msg_out.pass_ack.pass, p);
		assert_int_equal(msg_out.pass_ack.bytes, 0x1000 * p);

		memset(&msg_in, 0, sizeof(msg_in));
		msg_in.type = RDMIG__MSG_ERROR;
		msg_in.error.code = EIO;
		msg_in.error.len = (uint32_t)p;
		memset(msg_in.error.text, 'e', p);
		len = seal_msg(&src_end, &msg_in, buf);
		ASSERT_OPENS(&dst_end, buf, len);
		assert_int_equal(msg_out.type, RDMIG__MSG_ERROR);
		assert_int_equal(msg_out.error.len, p);
	}
	/* the largest message of a data QP */
	memset(&msg_in, 0, sizeof(msg_in));
	msg_in.type = RDMIG__MSG_HASHES;
	msg_in.hashes.pass = 9;
	msg_in.hashes.npages = RDMIG__NOTICE_PAGES;
	msg_in.hashes.nhashes = RDMIG__NOTICE_PAGES;
	for (unsigned i = 0; i < RDMIG__NOTICE_PAGES; i++)
		msg_in.hashes.hash[i].lo = msg_in.hashes.hash[i].hi = i + 1;
	len = seal_msg(&dst_end, &msg_in, buf);
	assert_int_equal(len, RDMIG__DATA_MSG_MAX);
	ASSERT_OPENS(&src_end, buf, len);
	assert_int_equal(msg_out.hashes.hash[255].hi, 256);
	/* each direction counted its own */
	assert_int_equal(src_end.tx_seq, 5);
	assert_int_equal(src_end.rx_seq, 6);
	assert_int_equal(dst_end.tx_seq, 6);
	assert_int_equal(dst_end.rx_seq, 5);
}

/*
 * The trailer is the u64 sequence number, then HMAC(direction key, the
 * channel as u32 || every byte before the tag) cut to 16 bytes (seal.h).
 */
static void seal_trailer_is_the_documented_one(void **state)
{
	uint8_t c[4] = { 7, 0, 0, 0 }, tag[RDMIG__TAG_LEN];
	struct rdmig__piece p[2];
	size_t len;

	(void)state;
	seal_pair(7);
	for (uint64_t seq = 0; seq < 3; seq++) {
		make_pass_ack(&msg_in, seq + 1);
		len = seal_msg(&src_end, &msg_in, buf);
		for (unsigned i = 0; i < 8; i++)
			assert_int_equal(buf[len - RDMIG__TRAILER_LEN + i],
					 (uint8_t)(seq >> (8 * i)));
		p[0] = (struct rdmig__piece){ c, sizeof(c) };
		p[1] = (struct rdmig__piece){ buf, len - RDMIG__TAG_LEN };
		assert_int_equal(rdmig__hmac(keys.s2d, p, 2, tag, sizeof(tag)), 0);
		assert_memory_equal(buf + len - RDMIG__TAG_LEN, tag, RDMIG__TAG_LEN);
		/* the header and payload are the plain encoding's, but for the length */
		assert_int_equal(rdmig__msg_encode(&msg_in, tmp, sizeof(tmp), err, sizeof(err)),
				 (int)(len - RDMIG__TRAILER_LEN));
		assert_memory_equal(buf + 16, tmp + 16, len - RDMIG__TRAILER_LEN - 16);
		ASSERT_OPENS(&dst_end, buf, len);
	}
}

/*
 * Flip any bit pattern of any single byte (header, payload, sequence
 * number, tag): the MAC fails, and the receiver is left as it was, so the
 * genuine message still arrives.
 */
static void seal_every_byte_flip_fails(void **state)
{
	static const uint8_t masks[] = { 0x01, 0x80, 0xff };
	size_t len;

	(void)state;
	seal_pair(0);
	memset(&msg_in, 0, sizeof(msg_in));
	msg_in.type = RDMIG__MSG_NOTICE;
	msg_in.notice.pass = 3;
	msg_in.notice.region = 1;
	msg_in.notice.npages = 4;
	for (unsigned i = 0; i < 4; i++)
		msg_in.notice.page[i] = 10 * i + 1;
	for (unsigned round = 0; round < 2; round++) {
		len = seal_msg(&src_end, &msg_in, buf);
		for (size_t at = 0; at < len; at++)
			for (unsigned k = 0; k < sizeof(masks); k++) {
				int ret;

				memcpy(tmp, buf, len);
				tmp[at] ^= masks[k];
				ret = open_msg(&dst_end, tmp, len);
				if (ret != -EBADMSG)
					fail_msg("round %u: byte %zu ^ 0x%02x of %zu: %d (%s)",
						 round, at, masks[k], len, ret, err);
				assert_contains(err, "bad MAC");
			}
		assert_int_equal(dst_end.rx_seq, round);
		ASSERT_OPENS(&dst_end, buf, len);
	}
}

/* A message cut short or with a byte more is not the one sealed. */
static void seal_truncated_or_extended_fails(void **state)
{
	size_t len;

	(void)state;
	seal_pair(0);
	make_pass_ack(&msg_in, 1);
	len = seal_msg(&src_end, &msg_in, buf);
	for (size_t cut = RDMIG__TRAILER_LEN; cut < len; cut++)
		assert_int_equal(open_msg(&dst_end, buf, cut), -EBADMSG);
	for (size_t cut = 0; cut < RDMIG__TRAILER_LEN; cut++) {
		assert_int_equal(open_msg(&dst_end, buf, cut), -EBADMSG);
		assert_contains(err, "has no MAC");
	}
	buf[len] = 0;
	assert_int_equal(open_msg(&dst_end, buf, len + 1), -EBADMSG);
	ASSERT_OPENS(&dst_end, buf, len);
}

static void seal_replayed_message_fails(void **state)
{
	uint8_t first[64];
	size_t len, len0;

	(void)state;
	seal_pair(0);
	make_pass_ack(&msg_in, 1);
	len0 = seal_msg(&src_end, &msg_in, first);
	ASSERT_OPENS(&dst_end, first, len0);
	/* at once */
	assert_int_equal(open_msg(&dst_end, first, len0), -EPROTO);
	assert_contains(err, "replayed");
	assert_contains(err, "sequence number 0 on channel 0, expected 1");
	/* later, after others */
	for (uint64_t p = 2; p < 5; p++) {
		make_pass_ack(&msg_in, p);
		len = seal_msg(&src_end, &msg_in, buf);
		ASSERT_OPENS(&dst_end, buf, len);
	}
	assert_int_equal(open_msg(&dst_end, first, len0), -EPROTO);
	assert_contains(err, "expected 4: a replayed message");
	assert_int_equal(open_msg(&dst_end, buf, len), -EPROTO);
	assert_contains(err, "replayed");
}

/* A message that never arrived is noticed with the next; once it comes, all is well. */
static void seal_skipped_message_fails(void **state)
{
	uint8_t second[64];
	size_t len, len1;

	(void)state;
	seal_pair(0);
	make_pass_ack(&msg_in, 1);
	len = seal_msg(&src_end, &msg_in, buf);
	ASSERT_OPENS(&dst_end, buf, len);
	make_pass_ack(&msg_in, 2);
	len1 = seal_msg(&src_end, &msg_in, second); /* lost */
	make_pass_ack(&msg_in, 3);
	len = seal_msg(&src_end, &msg_in, buf);
	assert_int_equal(open_msg(&dst_end, buf, len), -EPROTO);
	assert_contains(err, "sequence number 2 on channel 0, expected 1: a message is missing");
	/* refused, not taken: the missing one is still the next */
	ASSERT_OPENS(&dst_end, second, len1);
	assert_int_equal(msg_out.pass_ack.pass, 2);
	ASSERT_OPENS(&dst_end, buf, len);
	assert_int_equal(msg_out.pass_ack.pass, 3);
}

/* The channel is in the MAC: a message moved to another QP of the session fails. */
static void seal_other_channel_fails(void **state)
{
	static const uint32_t pairs[][2] = { { 1, 2 }, { 0, 1 }, { 2, 1 }, { 64, 0 } };
	struct rdmig__seal there;
	size_t len;

	(void)state;
	for (unsigned i = 0; i < RDMIG__ARRAY_SIZE(pairs); i++) {
		seal_pair(pairs[i][0]);
		assert_int_equal(rdmig__seal_init(&there, keys.d2s, keys.s2d, pairs[i][1]), 0);
		make_pass_ack(&msg_in, 1);
		len = seal_msg(&src_end, &msg_in, buf);
		/* same keys, same sequence number, other channel */
		assert_int_equal(open_msg(&there, buf, len), -EBADMSG);
		assert_contains(err, "bad MAC");
		ASSERT_OPENS(&dst_end, buf, len);
		rdmig__seal_fini(&there);
		seal_teardown(NULL);
	}
}

/*
 * Each direction has its key: a message reflected back to its sender, or
 * sealed with the other direction's key, fails.
 */
static void seal_other_direction_fails(void **state)
{
	struct rdmig__seal wrong;
	size_t len;

	(void)state;
	seal_pair(0);
	make_pass_ack(&msg_in, 1);
	len = seal_msg(&src_end, &msg_in, buf);
	/* reflected: the source's own message back to it, sequence number 0 as expected */
	assert_int_equal(open_msg(&src_end, buf, len), -EBADMSG);
	assert_contains(err, "bad MAC");
	/* a sender keyed the wrong way round: the destination's key for the source's messages */
	assert_int_equal(rdmig__seal_init(&wrong, keys.d2s, keys.s2d, 0), 0);
	len = seal_msg(&wrong, &msg_in, tmp);
	assert_int_equal(open_msg(&dst_end, tmp, len), -EBADMSG);
	rdmig__seal_fini(&wrong);
	/* the genuine one is still taken */
	len = seal_msg(&dst_end, &msg_in, tmp);
	ASSERT_OPENS(&src_end, tmp, len);
}

/* A message of another session (other nonces, same PSK) fails in this one. */
static void seal_other_session_fails(void **state)
{
	struct rdmig__seal old;
	size_t len;

	(void)state;
	seal_pair(0);
	nonce_dst[0] ^= 1;
	derive(psk, PSK_LEN, nonce_src, nonce_dst, &other);
	assert_int_equal(rdmig__seal_init(&old, other.s2d, other.d2s, 0), 0);
	make_pass_ack(&msg_in, 1);
	len = seal_msg(&old, &msg_in, buf);
	assert_int_equal(open_msg(&dst_end, buf, len), -EBADMSG);
	rdmig__seal_fini(&old);
}

static void seal_fini_is_safe_and_final(void **state)
{
	struct rdmig__seal s;

	(void)state;
	memset(&s, 0, sizeof(s));
	assert_false(rdmig__seal_on(&s));
	rdmig__seal_fini(&s); /* zeroed */
	seal_pair(3);
	assert_true(rdmig__seal_on(&src_end));
	assert_int_equal(src_end.chan, 3);
	assert_int_equal(src_end.tx_seq, 0);
	assert_int_equal(src_end.rx_seq, 0);
	rdmig__seal_fini(&src_end);
	assert_false(rdmig__seal_on(&src_end));
	assert_null(src_end.rx);
	rdmig__seal_fini(&src_end); /* twice */
}

/* --- through endpoints ------------------------------------------------------------ */

/* Zeroed endpoints with message buffers of `bufsize`: encoding needs no QP. */
static struct rdmig__ep ep_src, ep_dst;

static void ep_pair(uint32_t bufsize, bool sealed)
{
	memset(&ep_src, 0, sizeof(ep_src));
	memset(&ep_dst, 0, sizeof(ep_dst));
	ep_src.attr.bufsize = ep_dst.attr.bufsize = bufsize;
	if (!sealed)
		return;
	reference_inputs();
	derive(psk, PSK_LEN, nonce_src, nonce_dst, &keys);
	assert_int_equal(rdmig__seal_init(&ep_src.seal, keys.s2d, keys.d2s, 0), 0);
	assert_int_equal(rdmig__seal_init(&ep_dst.seal, keys.d2s, keys.s2d, 0), 0);
}

static int ep_teardown(void **state)
{
	(void)state;
	rdmig__seal_fini(&ep_src.seal);
	rdmig__seal_fini(&ep_dst.seal);
	return seal_teardown(state);
}

/* Until the handshake is done an endpoint sends and takes plain messages. */
static void seal_ep_unsealed_is_plain(void **state)
{
	int len;

	(void)state;
	ep_pair(RDMIG__MSG_MAX, false);
	make_pass_ack(&msg_in, 4);
	len = rdmig__ep_encode(&ep_src, &msg_in, buf);
	assert_int_equal(len, 32);
	assert_int_equal(rdmig__msg_encode(&msg_in, tmp, sizeof(tmp), err, sizeof(err)), 32);
	assert_memory_equal(buf, tmp, 32);
	assert_int_equal(rdmig__ep_open(&ep_dst, buf, (size_t)len, &msg_out, err, sizeof(err)), 0);
	assert_int_equal(msg_out.pass_ack.pass, 4);
}

static void seal_ep_round_trips(void **state)
{
	int len;

	(void)state;
	ep_pair(RDMIG__MSG_MAX, true);
	for (uint64_t p = 1; p < 4; p++) {
		make_pass_ack(&msg_in, p);
		len = rdmig__ep_encode(&ep_src, &msg_in, buf);
		assert_int_equal(len, 32 + RDMIG__TRAILER_LEN);
		assert_int_equal(buf[len - RDMIG__TRAILER_LEN], p - 1); /* the sequence number */
		memset(&msg_out, 0xa5, sizeof(msg_out));
		assert_int_equal(
			rdmig__ep_open(&ep_dst, buf, (size_t)len, &msg_out, err, sizeof(err)), 0);
		assert_int_equal(msg_out.type, RDMIG__MSG_PASS_ACK);
		assert_int_equal(msg_out.pass_ack.pass, p);

		len = rdmig__ep_encode(&ep_dst, &msg_in, buf);
		assert_int_equal(
			rdmig__ep_open(&ep_src, buf, (size_t)len, &msg_out, err, sizeof(err)), 0);
	}
}

/* Once sealed, an endpoint takes nothing else: plain, flipped, replayed, reflected. */
static void seal_ep_open_refuses_what_is_not_sealed_for_it(void **state)
{
	int len, plain;

	(void)state;
	ep_pair(RDMIG__MSG_MAX, true);
	make_pass_ack(&msg_in, 1);
	plain = rdmig__msg_encode(&msg_in, tmp, sizeof(tmp), err, sizeof(err));
	assert_int_equal(rdmig__ep_open(&ep_dst, tmp, (size_t)plain, &msg_out, err, sizeof(err)),
			 -EBADMSG);
	assert_contains(err, "bad MAC");

	len = rdmig__ep_encode(&ep_src, &msg_in, buf);
	for (int at = 0; at < len; at++) {
		buf[at] ^= 0x10;
		assert_int_equal(
			rdmig__ep_open(&ep_dst, buf, (size_t)len, &msg_out, err, sizeof(err)),
			-EBADMSG);
		buf[at] ^= 0x10;
	}
	/* reflected to its sender */
	assert_int_equal(rdmig__ep_open(&ep_src, buf, (size_t)len, &msg_out, err, sizeof(err)),
			 -EBADMSG);
	assert_int_equal(rdmig__ep_open(&ep_dst, buf, (size_t)len, &msg_out, err, sizeof(err)), 0);
	assert_int_equal(rdmig__ep_open(&ep_dst, buf, (size_t)len, &msg_out, err, sizeof(err)),
			 -EPROTO);
	assert_contains(err, "replayed");

	/* a sealed message to an endpoint that is not sealed yet: its trailer is extra bytes */
	rdmig__seal_fini(&ep_dst.seal);
	assert_int_equal(rdmig__ep_open(&ep_dst, buf, (size_t)len, &msg_out, err, sizeof(err)),
			 -EBADMSG);
}

/*
 * An encoding that does not fit takes no sequence number: the message
 * that follows is the next the peer expects.
 */
static void seal_ep_encode_failure_takes_no_sequence_number(void **state)
{
	int len;

	(void)state;
	ep_pair(32 + RDMIG__TRAILER_LEN - 1, true);
	make_pass_ack(&msg_in, 1);
	assert_int_equal(rdmig__ep_encode(&ep_src, &msg_in, buf), -ENOSPC);
	assert_int_equal(ep_src.seal.tx_seq, 0);
	memset(&msg_in, 0, sizeof(msg_in));
	msg_in.type = RDMIG__MSG_COMPLETE;
	msg_in.complete.passes = 7;
	len = rdmig__ep_encode(&ep_src, &msg_in, buf);
	assert_int_equal(len, 24 + RDMIG__TRAILER_LEN);
	assert_int_equal(rdmig__ep_open(&ep_dst, buf, (size_t)len, &msg_out, err, sizeof(err)), 0);
	assert_int_equal(msg_out.complete.passes, 7);
	/* an invalid message neither */
	make_pass_ack(&msg_in, 0);
	assert_int_equal(rdmig__ep_encode(&ep_src, &msg_in, buf), -EINVAL);
	assert_int_equal(ep_src.seal.tx_seq, 1);
}

/* --- the random source ------------------------------------------------------------- */

static void counting_source(void *arg, void *out, size_t len)
{
	unsigned *calls = arg;

	memset(out, (int)(0x40 + (*calls)++), len);
}

static void seal_random_source_can_be_replaced_and_restored(void **state)
{
	uint8_t a[32], b[32];
	unsigned calls = 0;

	(void)state;
	rdmig__random_set_source(counting_source, &calls);
	assert_int_equal(rdmig__random(a, sizeof(a)), 0);
	assert_int_equal(rdmig__random(b, sizeof(b)), 0);
	assert_int_equal(calls, 2);
	assert_int_equal(a[0], 0x40);
	assert_int_equal(a[31], 0x40);
	assert_int_equal(b[31], 0x41);
	rdmig__random_set_source(NULL, NULL);
	assert_int_equal(rdmig__random(a, sizeof(a)), 0);
	assert_int_equal(rdmig__random(b, sizeof(b)), 0);
	assert_int_equal(calls, 2);
	assert_memory_not_equal(a, b, sizeof(a)); /* 2^-256 */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(seal_keys_derive_matches_the_documented_schedule),
		cmocka_unit_test(seal_keys_derive_is_deterministic),
		cmocka_unit_test(seal_keys_differ_for_any_other_nonce),
		cmocka_unit_test(seal_keys_differ_for_any_other_psk),
		cmocka_unit_test(seal_keys_empty_psk_works),
		cmocka_unit_test(seal_keys_are_distinct),
		cmocka_unit_test(seal_keys_wipe_clears_everything),
		cmocka_unit_test(seal_hmac_matches_reference),
		cmocka_unit_test(seal_mac_equal_compares_every_byte),
		cmocka_unit_test_teardown(seal_round_trips_both_directions, seal_teardown),
		cmocka_unit_test_teardown(seal_trailer_is_the_documented_one, seal_teardown),
		cmocka_unit_test_teardown(seal_every_byte_flip_fails, seal_teardown),
		cmocka_unit_test_teardown(seal_truncated_or_extended_fails, seal_teardown),
		cmocka_unit_test_teardown(seal_replayed_message_fails, seal_teardown),
		cmocka_unit_test_teardown(seal_skipped_message_fails, seal_teardown),
		cmocka_unit_test_teardown(seal_other_channel_fails, seal_teardown),
		cmocka_unit_test_teardown(seal_other_direction_fails, seal_teardown),
		cmocka_unit_test_teardown(seal_other_session_fails, seal_teardown),
		cmocka_unit_test_teardown(seal_fini_is_safe_and_final, seal_teardown),
		cmocka_unit_test_teardown(seal_ep_unsealed_is_plain, ep_teardown),
		cmocka_unit_test_teardown(seal_ep_round_trips, ep_teardown),
		cmocka_unit_test_teardown(seal_ep_open_refuses_what_is_not_sealed_for_it,
					  ep_teardown),
		cmocka_unit_test_teardown(seal_ep_encode_failure_takes_no_sequence_number,
					  ep_teardown),
		cmocka_unit_test(seal_random_source_can_be_replaced_and_restored),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

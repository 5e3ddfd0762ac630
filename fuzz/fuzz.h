/* SPDX-License-Identifier: MIT */
/*
 * What the fuzz targets share: the fixed keys and the deterministic random
 * source (so every input replays byte for byte, and a target can MAC its
 * own mutations to reach the code behind a MAC check), a check that aborts
 * (libFuzzer and the replay test both see a crash), a reader over the
 * input, and the handshake's proofs computed afresh from the transcript as
 * common/proto.h describes them, so that the library's proofs are checked
 * against the document and not against themselves.
 *
 * The targets build two ways: with clang and libFuzzer (fuzz/CMakeLists.txt,
 * RDMIG_FUZZ=ON), and with RDMIG_FUZZ_NO_MAIN defined into the unit test
 * that replays the crashes found (tests/fuzz/fuzz_regress_test.c).
 *
 * Input formats (fuzz/make_corpus.c writes seeds in them):
 *   fuzz_decode     one message, raw
 *   fuzz_encode     a struct rdmig__msg, raw
 *   fuzz_sealed     u8 channel, then records { u8 mode, u16 len, len bytes }
 *   fuzz_handshake  u8 cfg[4], then records { u8 op, u16 len, len bytes }
 *                   (the nonces drawn from a hash of the whole input)
 */
#ifndef RDMIG_FUZZ_FUZZ_H
#define RDMIG_FUZZ_FUZZ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/conn.h"
#include "common/proto.h"
#include "common/seal.h"
#include "ctrl/handshake.h"

#define FZ_CHECK(cond, ...)                                                                      \
	do {                                                                                     \
		if (!(cond)) {                                                                   \
			fprintf(stderr, "%s:%d: check failed: %s: ", __FILE__, __LINE__, #cond); \
			fprintf(stderr, __VA_ARGS__);                                            \
			fputc('\n', stderr);                                                     \
			abort();                                                                 \
		}                                                                                \
	} while (0)

/* fuzz_sealed: a record's mode, how the target completes the message. */
#define FZ_SEALED_SEAL	     0x01 /* append seq and tag (else the bytes are the message) */
#define FZ_SEALED_SEQ_MASK   0x06 /* the sequence number sealed in: */
#define FZ_SEALED_SEQ_NEXT   0x00 /* the one the endpoint expects */
#define FZ_SEALED_SEQ_SKIP   0x02 /* one ahead (a message lost) */
#define FZ_SEALED_SEQ_REPLAY 0x04 /* one behind (a replay) */
#define FZ_SEALED_SEQ_FAR    0x06 /* 2^32 ahead */
#define FZ_SEALED_FIX_LEN    0x08 /* set the header's length to the message's */
#define FZ_SEALED_WRONG_CHAN 0x10 /* tag it for the next channel (a moved message) */
#define FZ_SEALED_WRONG_KEY  0x20 /* tag it with the other direction's key (a reflection) */
#define FZ_SEALED_PLAIN	     0x40 /* open it on an endpoint with no seal */

/* fuzz_handshake: cfg[0] bits. cfg[1]: the source's offer (a table index); cfg[2..3]: caps. */
#define FZ_HS_SRC_PSK	    0x01 /* the source has the key */
#define FZ_HS_DST_PSK	    0x02 /* the destination has a key... */
#define FZ_HS_DST_OTHER_PSK 0x04 /* ...another one */
#define FZ_HS_RELAY	    0x08 /* the two ends see different connections (a relay) */
#define FZ_HS_SAME_NONCES   0x10 /* the random source repeats itself: equal nonces */
/* fuzz_handshake: a record's op: the call (low 3 bits, modulo FZ_HS_OPS)... */
#define FZ_HS_SRC_HELLO	    0
#define FZ_HS_DST_HELLO	    1 /* the message fed: see FZ_HS_HOW_* */
#define FZ_HS_SRC_CHALLENGE 2
#define FZ_HS_SRC_AUTH	    3 /* the record: u32 page_size, nqps, nregions, flags, regions */
#define FZ_HS_DST_AUTH	    4
#define FZ_HS_OPS	    5
/* ...where the message fed comes from (bits 3-4)... */
#define FZ_HS_HOW_SHIFT	  3
#define FZ_HS_HOW_FORWARD 0 /* what the other end last sent */
#define FZ_HS_HOW_REPLACE 1 /* the record's bytes */
#define FZ_HS_HOW_PATCH	  2 /* what the other end sent, the record's bytes 2.. at u16 offset */
#define FZ_HS_HOW_RESIZE  3 /* what the other end sent, cut or grown to a u16 length */
/* ...and what the target fixes in it: a forger that holds the key. */
#define FZ_HS_FIX_LEN	    0x20 /* the header's length */
#define FZ_HS_FIX_PROOF	    0x40 /* CHALLENGE, AUTH: the proof, over these bytes */
#define FZ_HS_SHORT_CAP	    0x80 /* the calls that write a message get 32 bytes */
#define FZ_HS_OP(call, how) ((uint8_t)((call) | (how) << FZ_HS_HOW_SHIFT))

/* Entry points: LLVMFuzzerTestOneInput calls them; so does the replay test. */
int rdmig_fuzz_decode(const uint8_t *data, size_t size);
int rdmig_fuzz_encode(const uint8_t *data, size_t size);
int rdmig_fuzz_sealed(const uint8_t *data, size_t size);
int rdmig_fuzz_handshake(const uint8_t *data, size_t size);

struct fz_random;
/* fuzz_handshake's two ends as cfg[4] sets them up (the seeds replay them). */
void rdmig_fuzz_hs_setup(const uint8_t cfg[4], uint64_t seed, struct rdmig__hs *src,
			 struct rdmig__hs *dst, struct fz_random *rnd);
/* The proposal an FZ_HS_SRC_AUTH record makes (fewer than 16 bytes: a default one). */
void rdmig_fuzz_hs_proposal(const uint8_t *p, size_t n, struct rdmig__msg *m);

/*
 * The seeds of every target (fuzz/seeds.c), built with the codec, the seal
 * and the handshake from real messages of every type: emit() gets each
 * one, with its target's name ("decode", ...) and a name of its own.
 */
typedef void (*fz_emit_fn)(void *arg, const char *target, const char *name, const uint8_t *p,
			   size_t n);
void rdmig_fuzz_seeds(fz_emit_fn emit, void *arg);

/* The keys the targets hold (the PSK of both handshake ends, the seal's). */
static const uint8_t fz_psk[32] = "rdmig fuzzing pre-shared key 32";
static const uint8_t fz_psk_other[32] = "a different key, the wrong one";
static const uint8_t fz_key_a[RDMIG__KEY_LEN] = "fuzz seal key, direction A";
static const uint8_t fz_key_b[RDMIG__KEY_LEN] = "fuzz seal key, direction B";

/*
 * The random source: splitmix64 from a seed the target takes from its
 * input (fz_hash), so that an input always meets the same nonces while
 * no input can predict another's: with a fixed seed, a message recorded
 * from one run (a seed holds real ones) would be a valid replay in every
 * other, which fresh nonces rule out in a real session. With `repeat`,
 * every call starts the stream again: both ends draw the same nonce.
 */
struct fz_random {
	uint64_t seed, state;
	bool repeat;
};

static inline void fz_random_fn(void *arg, void *buf, size_t len)
{
	struct fz_random *r = arg;
	uint8_t *p = buf;

	if (r->repeat)
		r->state = r->seed;
	for (size_t i = 0; i < len; i++) {
		uint64_t z = (r->state += 0x9e3779b97f4a7c15ull);

		z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
		z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
		p[i] = (uint8_t)(z ^ (z >> 31));
	}
}

static inline void fz_random_reset(struct fz_random *r, uint64_t seed, bool repeat)
{
	r->seed = r->state = seed;
	r->repeat = repeat;
	rdmig__random_set_source(fz_random_fn, r);
}

/* FNV-1a: the random seed of an input. */
static inline uint64_t fz_hash(const uint8_t *p, size_t n)
{
	uint64_t h = 0xcbf29ce484222325ull;

	for (size_t i = 0; i < n; i++)
		h = (h ^ p[i]) * 0x100000001b3ull;
	return h;
}

/* A reader over the input; reads past the end give zeros. */
struct fz_in {
	const uint8_t *p;
	size_t left;
};

static inline uint8_t fz_u8(struct fz_in *in)
{
	if (!in->left)
		return 0;
	in->left--;
	return *in->p++;
}

static inline uint16_t fz_u16(struct fz_in *in)
{
	uint16_t lo = fz_u8(in);

	return (uint16_t)(lo | fz_u8(in) << 8);
}

/* The next record: its bytes (up to what is left) in *p, their count returned. */
static inline size_t fz_record(struct fz_in *in, uint8_t *op, const uint8_t **p)
{
	size_t n;

	*op = fz_u8(in);
	n = fz_u16(in);
	if (n > in->left)
		n = in->left;
	*p = in->p;
	in->p += n;
	in->left -= n;
	return n;
}

static inline void fz_le(uint8_t *p, uint64_t v, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static inline uint64_t fz_get_le(const uint8_t *p, unsigned n)
{
	uint64_t v = 0;

	for (unsigned i = 0; i < n; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

/*
 * Byte comparison the harness's own checks use. Not memcmp: libFuzzer
 * feeds the operands of every memcmp it intercepts back into its
 * mutations, which would hand it the expected proofs these checks see.
 */
static inline bool fz_same(const void *a, const void *b, size_t n)
{
	const volatile uint8_t *x = a, *y = b;
	uint8_t d = 0;

	for (size_t i = 0; i < n; i++)
		d |= x[i] ^ y[i];
	return d == 0;
}

static inline bool fz_zero(const void *a, size_t n)
{
	const volatile uint8_t *x = a;
	uint8_t d = 0;

	for (size_t i = 0; i < n; i++)
		d |= x[i];
	return d == 0;
}

/* A string the library wrote into an error buffer: terminated inside it. */
static inline bool fz_terminated(const char *s, size_t cap)
{
	return memchr(s, '\0', cap) != NULL;
}

/*
 * The destination's proof (common/proto.h): HMAC under the dst proof key
 * of HELLO, CHALLENGE up to its proof, the binding. Returns 0 or -1.
 */
static inline int fz_dst_proof(const uint8_t *psk, size_t psk_len, const uint8_t *nonce_src,
			       const uint8_t *nonce_dst, const uint8_t *hello, size_t hello_len,
			       const uint8_t *chall, size_t chall_len, const uint8_t *binding,
			       uint8_t *out)
{
	struct rdmig__keys k;
	struct rdmig__piece p[3] = { { hello, hello_len },
				     { chall, chall_len - RDMIG__KEY_LEN },
				     { binding, RDMIG__HS_BINDING } };
	int ret;

	if (chall_len < RDMIG__KEY_LEN ||
	    rdmig__keys_derive(psk, psk_len, nonce_src, nonce_dst, &k))
		return -1;
	ret = rdmig__hmac(k.dst_proof, p, 3, out, RDMIG__KEY_LEN) ? -1 : 0;
	rdmig__keys_wipe(&k);
	return ret;
}

/* The source's proof: HELLO, the whole CHALLENGE, the binding, AUTH up to its proof. */
static inline int fz_src_proof(const uint8_t *psk, size_t psk_len, const uint8_t *nonce_src,
			       const uint8_t *nonce_dst, const uint8_t *hello, size_t hello_len,
			       const uint8_t *chall, size_t chall_len, const uint8_t *binding,
			       const uint8_t *auth, size_t auth_len, uint8_t *out)
{
	struct rdmig__keys k;
	struct rdmig__piece p[4] = { { hello, hello_len },
				     { chall, chall_len },
				     { binding, RDMIG__HS_BINDING },
				     { auth, auth_len - RDMIG__KEY_LEN } };
	int ret;

	if (auth_len < RDMIG__KEY_LEN || rdmig__keys_derive(psk, psk_len, nonce_src, nonce_dst, &k))
		return -1;
	ret = rdmig__hmac(k.src_proof, p, 4, out, RDMIG__KEY_LEN) ? -1 : 0;
	rdmig__keys_wipe(&k);
	return ret;
}

/* The tag of a sealed message (common/seal.h), computed without a struct rdmig__seal. */
static inline int fz_seal_tag(const uint8_t *key, uint32_t chan, const uint8_t *buf, size_t len,
			      uint8_t *tag)
{
	uint8_t c[4];
	struct rdmig__piece p[2] = { { c, sizeof(c) }, { buf, len - RDMIG__TAG_LEN } };

	fz_le(c, chan, 4);
	return rdmig__hmac(key, p, 2, tag, RDMIG__TAG_LEN) ? -1 : 0;
}

#endif /* RDMIG_FUZZ_FUZZ_H */

/* SPDX-License-Identifier: MIT */
/*
 * The session's cryptography, all of it OpenSSL's libcrypto (HMAC-SHA256,
 * HKDF-SHA256, RAND_bytes, CRYPTO_memcmp): nothing here is written by hand.
 *
 * Keys. Both ends hold a pre-shared key (PSK). Each sends a fresh 32-byte
 * nonce in the handshake; from the PSK and both nonces HKDF derives, with a
 * label each, one key per purpose (TLS 1.3's key schedule in miniature):
 *
 *   prk          = HKDF-Extract(salt = nonce_src || nonce_dst, ikm = PSK)
 *   proof keys   = HKDF-Expand(prk, "rdmig v4 src proof" / "rdmig v4 dst proof")
 *   MAC keys     = HKDF-Expand(prk, "rdmig v4 mac src->dst" / "... dst->src")
 *   hash secret  = HKDF-Expand(prk, "rdmig v4 page hash", 192 bytes)
 *
 * The proofs use role-separated keys, so a proof the destination made
 * cannot be played back as the source's (no reflection). The hash secret
 * (the XXH3 key of the skip engine) is never sent. An unauthenticated
 * session (RDMIG_AUTH=none) runs the same schedule with an empty PSK: its
 * MACs catch corruption and replays, not an attacker.
 *
 * Sealed messages. After the handshake every message carries a trailer of
 * u64 sequence number and a 16-byte tag (HMAC-SHA256 truncated to 128
 * bits) over the channel number (0 for the control QP, i + 1 for data QP i)
 * and every byte before the tag, the header included. Sequence numbers
 * count per channel and direction from 0; a receiver takes exactly the
 * next one, so a replayed, reordered, skipped or moved message fails.
 *
 * Threads: a struct rdmig__seal belongs to the thread that owns its QP.
 */
#ifndef RDMIG_COMMON_SEAL_H
#define RDMIG_COMMON_SEAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../dataplane/scan.h"

#define RDMIG__NONCE_LEN   32
#define RDMIG__KEY_LEN	   32 /* HMAC-SHA256 keys and full proofs */
#define RDMIG__TAG_LEN	   16 /* truncated tags of sealed messages and data CONNECTs */
#define RDMIG__TRAILER_LEN (8 + RDMIG__TAG_LEN)

/* Everything a session derives from the PSK and both nonces. */
struct rdmig__keys {
	uint8_t src_proof[RDMIG__KEY_LEN], dst_proof[RDMIG__KEY_LEN];
	uint8_t s2d[RDMIG__KEY_LEN], d2s[RDMIG__KEY_LEN];
	uint8_t hash_secret[RDMIG__SCAN_SECRET_SIZE];
};

/* Derives the keys (psk may be empty for an unauthenticated session). */
int rdmig__keys_derive(const uint8_t *psk, size_t psk_len, const uint8_t *nonce_src,
		       const uint8_t *nonce_dst, struct rdmig__keys *k);
void rdmig__keys_wipe(struct rdmig__keys *k);

/* A piece of a MAC's input. */
struct rdmig__piece {
	const void *p;
	size_t len;
};

/* out = HMAC-SHA256(key, pieces[0] || ... || pieces[n-1]), `outlen` <= 32 bytes of it. */
int rdmig__hmac(const uint8_t *key, const struct rdmig__piece *pieces, unsigned n, uint8_t *out,
		size_t outlen);
/* Constant-time comparison (CRYPTO_memcmp): true if equal. */
bool rdmig__mac_equal(const void *a, const void *b, size_t len);

/* Cryptographically random bytes (RAND_bytes), or the test source below. */
int rdmig__random(void *buf, size_t len);

/*
 * Loads what the first handshake needs from libcrypto (the HMAC and HKDF
 * implementations, the random generator's seeding): once per process,
 * tens of milliseconds under emulation, otherwise paid inside the first
 * handshake. Any thread, any time; a failure is left for the real call
 * to report.
 */
void rdmig__crypto_warm(void);
/*
 * Tests and fuzzing only: replaces the random source (NULL restores
 * RAND_bytes), so a handshake can be replayed byte for byte. Global.
 */
typedef void (*rdmig__random_fn)(void *arg, void *buf, size_t len);
void rdmig__random_set_source(rdmig__random_fn fn, void *arg);

/* One channel's MAC state, both directions. */
struct rdmig__seal {
	void *tx, *rx; /* keyed EVP_MAC_CTX, NULL when not set up */
	uint64_t tx_seq, rx_seq;
	uint32_t chan;
};

/* Keys a channel; on failure nothing is left allocated. */
int rdmig__seal_init(struct rdmig__seal *s, const uint8_t *tx_key, const uint8_t *rx_key,
		     uint32_t chan);
/* Frees it; safe on a zeroed or finished seal. */
void rdmig__seal_fini(struct rdmig__seal *s);
static inline bool rdmig__seal_on(const struct rdmig__seal *s)
{
	return s->tx != NULL;
}

/*
 * Writes the trailer of the len-byte message at buf (its header's length
 * already counts the trailer: the last RDMIG__TRAILER_LEN bytes) and takes
 * the next send sequence number.
 */
int rdmig__seal_tx(struct rdmig__seal *s, uint8_t *buf, size_t len);
/*
 * Checks the trailer of a received len-byte message: the tag, then the
 * sequence number. Returns 0 (and takes the sequence number), -EBADMSG
 * (bad tag, or too short) or -EPROTO (a replayed or skipped message);
 * `err` says which.
 */
int rdmig__seal_rx(struct rdmig__seal *s, const uint8_t *buf, size_t len, char *err, size_t errlen);

#endif /* RDMIG_COMMON_SEAL_H */

/* SPDX-License-Identifier: MIT */
/* Keys, proofs and sealed messages over OpenSSL's libcrypto (see seal.h). */
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/params.h>
#include <openssl/rand.h>

#include "seal.h"
#include "util.h"

static EVP_MAC *hmac_alg;
static EVP_KDF *hkdf_alg;
static pthread_once_t alg_once = PTHREAD_ONCE_INIT;

static rdmig__random_fn test_random;
static void *test_random_arg;

static void alg_fetch(void)
{
	hmac_alg = EVP_MAC_fetch(NULL, "HMAC", NULL);
	hkdf_alg = EVP_KDF_fetch(NULL, "HKDF", NULL);
}

/* libcrypto's own reason for a failure, for the message. */
static int crypto_err(const char *what)
{
	char buf[256];
	unsigned long e = ERR_get_error();

	ERR_clear_error();
	if (e)
		ERR_error_string_n(e, buf, sizeof(buf));
	else
		snprintf(buf, sizeof(buf), "unknown error");
	return rdmig__err(-EIO, "libcrypto: %s failed: %s", what, buf);
}

static int algs(void)
{
	pthread_once(&alg_once, alg_fetch);
	if (!hmac_alg || !hkdf_alg)
		return crypto_err("fetching HMAC and HKDF");
	return 0;
}

static int hkdf(const uint8_t *ikm, size_t ikm_len, const uint8_t *salt, size_t salt_len,
		const char *label, uint8_t *out, size_t outlen)
{
	/*
	 * An empty PSK (no authentication) still needs a key for HKDF: a
	 * constant shorter than RDMIG_PSK_MIN, so no real key derives the
	 * same session keys (32 zero bytes would: a weak key would then act
	 * like no key at all).
	 */
	static const char nokey[] = "rdmig v4: no pre-shared key";
	OSSL_PARAM params[5];
	EVP_KDF_CTX *ctx;
	int ret = 0;

	params[0] = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)"SHA256", 0);
	params[1] = OSSL_PARAM_construct_octet_string(
		OSSL_KDF_PARAM_KEY, (void *)(uintptr_t)(ikm_len ? ikm : (const uint8_t *)nokey),
		ikm_len ? ikm_len : sizeof(nokey) - 1);
	params[2] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, (void *)(uintptr_t)salt,
						      salt_len);
	params[3] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, (void *)(uintptr_t)label,
						      strlen(label));
	params[4] = OSSL_PARAM_construct_end();
	ctx = EVP_KDF_CTX_new(hkdf_alg);
	if (!ctx || EVP_KDF_derive(ctx, out, outlen, params) != 1)
		ret = crypto_err("HKDF");
	EVP_KDF_CTX_free(ctx);
	return ret;
}

int rdmig__keys_derive(const uint8_t *psk, size_t psk_len, const uint8_t *nonce_src,
		       const uint8_t *nonce_dst, struct rdmig__keys *k)
{
	uint8_t salt[2 * RDMIG__NONCE_LEN];
	int ret;

	if ((ret = algs()))
		return ret;
	memcpy(salt, nonce_src, RDMIG__NONCE_LEN);
	memcpy(salt + RDMIG__NONCE_LEN, nonce_dst, RDMIG__NONCE_LEN);
	/* HKDF-Extract is the same for every label: OpenSSL's one-shot mode
	 * runs it each time, which costs microseconds once per session. */
	if ((ret = hkdf(psk, psk_len, salt, sizeof(salt), "rdmig v4 src proof", k->src_proof,
			sizeof(k->src_proof))) ||
	    (ret = hkdf(psk, psk_len, salt, sizeof(salt), "rdmig v4 dst proof", k->dst_proof,
			sizeof(k->dst_proof))) ||
	    (ret = hkdf(psk, psk_len, salt, sizeof(salt), "rdmig v4 mac src->dst", k->s2d,
			sizeof(k->s2d))) ||
	    (ret = hkdf(psk, psk_len, salt, sizeof(salt), "rdmig v4 mac dst->src", k->d2s,
			sizeof(k->d2s))) ||
	    (ret = hkdf(psk, psk_len, salt, sizeof(salt), "rdmig v4 page hash", k->hash_secret,
			sizeof(k->hash_secret))))
		rdmig__keys_wipe(k);
	return ret;
}

void rdmig__keys_wipe(struct rdmig__keys *k)
{
	OPENSSL_cleanse(k, sizeof(*k));
}

static EVP_MAC_CTX *mac_new(const uint8_t *key)
{
	OSSL_PARAM params[2] = {
		OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0),
		OSSL_PARAM_construct_end(),
	};
	EVP_MAC_CTX *ctx = EVP_MAC_CTX_new(hmac_alg);

	if (ctx && EVP_MAC_init(ctx, key, RDMIG__KEY_LEN, params) != 1) {
		EVP_MAC_CTX_free(ctx);
		ctx = NULL;
	}
	return ctx;
}

/* One MAC with a keyed context: init again (the key stays), feed, final. */
static int mac_run(EVP_MAC_CTX *ctx, const struct rdmig__piece *pieces, unsigned n, uint8_t *out,
		   size_t outlen)
{
	uint8_t full[EVP_MAX_MD_SIZE];
	size_t got = 0;

	if (EVP_MAC_init(ctx, NULL, 0, NULL) != 1)
		return crypto_err("HMAC init");
	for (unsigned i = 0; i < n; i++)
		if (pieces[i].len && EVP_MAC_update(ctx, pieces[i].p, pieces[i].len) != 1)
			return crypto_err("HMAC update");
	if (EVP_MAC_final(ctx, full, &got, sizeof(full)) != 1 || got < outlen)
		return crypto_err("HMAC final");
	memcpy(out, full, outlen);
	OPENSSL_cleanse(full, sizeof(full));
	return 0;
}

int rdmig__hmac(const uint8_t *key, const struct rdmig__piece *pieces, unsigned n, uint8_t *out,
		size_t outlen)
{
	EVP_MAC_CTX *ctx;
	int ret;

	if ((ret = algs()))
		return ret;
	if (!(ctx = mac_new(key)))
		return crypto_err("HMAC key setup");
	ret = mac_run(ctx, pieces, n, out, outlen);
	EVP_MAC_CTX_free(ctx);
	return ret;
}

bool rdmig__mac_equal(const void *a, const void *b, size_t len)
{
	return CRYPTO_memcmp(a, b, len) == 0;
}

void rdmig__random_set_source(rdmig__random_fn fn, void *arg)
{
	test_random_arg = arg;
	test_random = fn;
}

int rdmig__random(void *buf, size_t len)
{
	if (test_random) {
		test_random(test_random_arg, buf, len);
		return 0;
	}
	if (RAND_bytes(buf, (int)len) != 1)
		return crypto_err("RAND_bytes");
	return 0;
}

void rdmig__crypto_warm(void)
{
	uint8_t b[16];

	if (algs())
		rdmig__err_clear();
	if (RAND_bytes(b, sizeof(b)) != 1)
		ERR_clear_error();
	OPENSSL_cleanse(b, sizeof(b));
}

int rdmig__seal_init(struct rdmig__seal *s, const uint8_t *tx_key, const uint8_t *rx_key,
		     uint32_t chan)
{
	int ret;

	memset(s, 0, sizeof(*s));
	if ((ret = algs()))
		return ret;
	s->tx = mac_new(tx_key);
	s->rx = mac_new(rx_key);
	if (!s->tx || !s->rx) {
		rdmig__seal_fini(s);
		return crypto_err("HMAC key setup");
	}
	s->chan = chan;
	return 0;
}

void rdmig__seal_fini(struct rdmig__seal *s)
{
	EVP_MAC_CTX_free(s->tx);
	EVP_MAC_CTX_free(s->rx);
	memset(s, 0, sizeof(*s));
}

static void put_le(uint8_t *p, uint64_t v, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get_le(const uint8_t *p, unsigned n)
{
	uint64_t v = 0;

	for (unsigned i = 0; i < n; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

/* The tag of buf[0 .. len - TAG_LEN): the channel, then the message. */
static int tag_of(EVP_MAC_CTX *ctx, uint32_t chan, const uint8_t *buf, size_t len, uint8_t *tag)
{
	uint8_t c[4];
	struct rdmig__piece pieces[2] = { { c, sizeof(c) }, { buf, len - RDMIG__TAG_LEN } };

	put_le(c, chan, 4);
	return mac_run(ctx, pieces, 2, tag, RDMIG__TAG_LEN);
}

int rdmig__seal_tx(struct rdmig__seal *s, uint8_t *buf, size_t len)
{
	if (len < RDMIG__TRAILER_LEN)
		return rdmig__err(-EINVAL, "internal: sealing %zu bytes", len);
	put_le(buf + len - RDMIG__TRAILER_LEN, s->tx_seq, 8);
	if (tag_of(s->tx, s->chan, buf, len, buf + len - RDMIG__TAG_LEN))
		return -EIO;
	s->tx_seq++;
	return 0;
}

int rdmig__seal_rx(struct rdmig__seal *s, const uint8_t *buf, size_t len, char *err, size_t errlen)
{
	uint8_t tag[RDMIG__TAG_LEN];
	uint64_t seq;

	if (len < RDMIG__TRAILER_LEN) {
		snprintf(err, errlen, "message of %zu bytes has no MAC", len);
		return -EBADMSG;
	}
	if (tag_of(s->rx, s->chan, buf, len, tag)) {
		snprintf(err, errlen, "%s", rdmig_last_error());
		return -EIO;
	}
	if (!rdmig__mac_equal(tag, buf + len - RDMIG__TAG_LEN, RDMIG__TAG_LEN)) {
		snprintf(err, errlen, "bad MAC (message %llu on channel %u): forged or corrupted",
			 (unsigned long long)s->rx_seq, s->chan);
		return -EBADMSG;
	}
	seq = get_le(buf + len - RDMIG__TRAILER_LEN, 8);
	if (seq != s->rx_seq) {
		snprintf(err, errlen, "sequence number %llu on channel %u, expected %llu: %s",
			 (unsigned long long)seq, s->chan, (unsigned long long)s->rx_seq,
			 seq < s->rx_seq ? "a replayed message" : "a message is missing");
		return -EPROTO;
	}
	s->rx_seq++;
	return 0;
}

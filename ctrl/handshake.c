/* SPDX-License-Identifier: MIT */
/* The handshake's logic over message bytes; see handshake.h. */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>

#include "handshake.h"

static int hs_fail(struct rdmig__hs *hs, char *err, size_t errlen, int code, const char *fmt, ...)
	RDMIG__FMT(5, 6);

static int hs_fail(struct rdmig__hs *hs, char *err, size_t errlen, int code, const char *fmt, ...)
{
	va_list ap;

	hs->step = RDMIG__HS_FAILED;
	rdmig__keys_wipe(&hs->keys);
	if (err && errlen) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return code;
}

static void put_le(uint8_t *p, uint64_t v, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

void rdmig__hs_bind(struct rdmig__hs *hs, const struct rdmig__xp_conn_info *ci, bool am_source)
{
	const uint8_t *sg = am_source ? ci->local_gid : ci->peer_gid;
	const uint8_t *dg = am_source ? ci->peer_gid : ci->local_gid;

	memcpy(hs->binding, sg, 16);
	put_le(hs->binding + 16, am_source ? ci->local_qpn : ci->peer_qpn, 4);
	memcpy(hs->binding + 20, dg, 16);
	put_le(hs->binding + 36, am_source ? ci->peer_qpn : ci->local_qpn, 4);
}

void rdmig__hs_wipe(struct rdmig__hs *hs)
{
	OPENSSL_cleanse(hs, sizeof(*hs));
}

static uint32_t auth_mode(const struct rdmig__hs *hs)
{
	return hs->psk_len ? RDMIG__AUTH_PSK : RDMIG__AUTH_NONE;
}

/* The destination's proof: HELLO, CHALLENGE up to its proof, the binding. */
static int dst_proof(const struct rdmig__hs *hs, const uint8_t *chall, size_t chall_len,
		     uint8_t *out)
{
	struct rdmig__piece p[3] = { { hs->hello, hs->hello_len },
				     { chall, chall_len - RDMIG__KEY_LEN },
				     { hs->binding, sizeof(hs->binding) } };

	return rdmig__hmac(hs->keys.dst_proof, p, 3, out, RDMIG__KEY_LEN);
}

/*
 * The source's proof: HELLO, the whole CHALLENGE (so it covers the
 * destination's proof), the binding, AUTH up to its proof.
 */
static int src_proof(const struct rdmig__hs *hs, const uint8_t *auth, size_t auth_len, uint8_t *out)
{
	struct rdmig__piece p[4] = { { hs->hello, hs->hello_len },
				     { hs->chall, hs->chall_len },
				     { hs->binding, sizeof(hs->binding) },
				     { auth, auth_len - RDMIG__KEY_LEN } };

	return rdmig__hmac(hs->keys.src_proof, p, 4, out, RDMIG__KEY_LEN);
}

static int derive(struct rdmig__hs *hs)
{
	return rdmig__keys_derive(hs->psk, hs->psk_len, hs->nonce_src, hs->nonce_dst, &hs->keys);
}

int rdmig__hs_src_hello(struct rdmig__hs *hs, uint8_t *out, size_t cap, char *err, size_t errlen)
{
	struct rdmig__msg m;
	int len;

	if (hs->step != RDMIG__HS_START)
		return hs_fail(hs, err, errlen, -EINVAL, "internal: HELLO twice");
	if (rdmig__random(hs->nonce_src, sizeof(hs->nonce_src)))
		return hs_fail(hs, err, errlen, -EIO, "no random nonce");
	memset(&m, 0, sizeof(m));
	m.type = RDMIG__MSG_HELLO;
	m.hello.ver_min = hs->ver_min;
	m.hello.ver_max = hs->ver_max;
	m.hello.caps = hs->caps;
	m.hello.auth = auth_mode(hs);
	memcpy(m.hello.nonce, hs->nonce_src, RDMIG__NONCE_LEN);
	len = rdmig__msg_encode(&m, out, RDMIG__MIN(cap, sizeof(hs->hello)), err, errlen);
	if (len < 0)
		return hs_fail(hs, NULL, 0, len, "%s", "");
	memcpy(hs->hello, out, (size_t)len);
	hs->hello_len = (size_t)len;
	hs->step = RDMIG__HS_SRC_HELLO_SENT;
	return len;
}

int rdmig__hs_src_challenge(struct rdmig__hs *hs, const uint8_t *in, size_t len, char *err,
			    size_t errlen)
{
	uint8_t want[RDMIG__KEY_LEN];
	struct rdmig__msg m;
	char why[256];
	int ret;

	if (hs->step != RDMIG__HS_SRC_HELLO_SENT)
		return hs_fail(hs, err, errlen, -EPROTO, "a CHALLENGE before our HELLO");
	if ((ret = rdmig__msg_decode(in, len, &m, why, sizeof(why))))
		return hs_fail(hs, err, errlen, ret, "bad answer to HELLO: %s", why);
	if (m.type == RDMIG__MSG_ERROR)
		return hs_fail(hs, err, errlen, -ECONNREFUSED, "%s",
			       m.error.text[0] ? m.error.text : "refused, no reason given");
	if (m.type != RDMIG__MSG_CHALLENGE)
		return hs_fail(hs, err, errlen, -EPROTO, "expected CHALLENGE, got %s",
			       rdmig__msg_type_name(m.type));
	if (m.challenge.auth != auth_mode(hs))
		return hs_fail(hs, err, errlen, -EACCES,
			       "authentication mismatch: the source %s pre-shared key, the "
			       "destination %s",
			       hs->psk_len ? "has a" : "has no",
			       hs->psk_len ? "has none" : "has one");
	if (m.challenge.version < hs->ver_min || m.challenge.version > hs->ver_max ||
	    m.challenge.version < RDMIG__PROTO_MIN || m.challenge.version > RDMIG__PROTO_VERSION)
		return hs_fail(hs, err, errlen, -EPROTO,
			       "the destination chose protocol version %u; the source offered "
			       "[%u, %u] and speaks [%u, %u]",
			       m.challenge.version, hs->ver_min, hs->ver_max, RDMIG__PROTO_MIN,
			       RDMIG__PROTO_VERSION);
	if (m.challenge.caps & ~hs->caps)
		return hs_fail(hs, err, errlen, -EPROTO,
			       "the destination agreed to capabilities 0x%x the source did not "
			       "offer (0x%x)",
			       m.challenge.caps, hs->caps);
	hs->version = m.challenge.version;
	hs->caps_agreed = m.challenge.caps;
	memcpy(hs->nonce_dst, m.challenge.nonce, RDMIG__NONCE_LEN);
	memcpy(hs->chall, in, len); /* decode checked: exactly sizeof(hs->chall) */
	hs->chall_len = len;
	if ((ret = derive(hs)) || (ret = dst_proof(hs, in, len, want)))
		return hs_fail(hs, err, errlen, ret, "deriving the session keys failed");
	if (!rdmig__mac_equal(want, m.challenge.proof, sizeof(want)))
		return hs_fail(hs, err, errlen, -EACCES,
			       "authentication failed: the destination did not prove it holds "
			       "the key");
	hs->step = RDMIG__HS_SRC_CHALLENGE_OK;
	return 0;
}

int rdmig__hs_src_auth(struct rdmig__hs *hs, struct rdmig__msg *m, uint8_t *out, size_t cap,
		       char *err, size_t errlen)
{
	int len;

	if (hs->step != RDMIG__HS_SRC_CHALLENGE_OK)
		return hs_fail(hs, err, errlen, -EINVAL, "internal: AUTH before the CHALLENGE");
	m->type = RDMIG__MSG_AUTH;
	memset(m->auth.proof, 0, sizeof(m->auth.proof));
	len = rdmig__msg_encode(m, out, cap, err, errlen);
	if (len < 0)
		return hs_fail(hs, NULL, 0, len, "%s", "");
	if (src_proof(hs, out, (size_t)len, out + len - RDMIG__KEY_LEN))
		return hs_fail(hs, err, errlen, -EIO, "computing the proof failed");
	hs->step = RDMIG__HS_DONE;
	return len;
}

int rdmig__hs_dst_hello(struct rdmig__hs *hs, const uint8_t *in, size_t len, uint8_t *out,
			size_t cap, bool *mismatch_fatal, char *err, size_t errlen)
{
	struct rdmig__msg m;
	uint16_t lo, hi;
	char why[256];
	int ret, n;

	*mismatch_fatal = false;
	if (hs->step != RDMIG__HS_START)
		return hs_fail(hs, err, errlen, -EPROTO, "a second HELLO");
	if (len > sizeof(hs->hello))
		return hs_fail(hs, err, errlen, -EBADMSG, "a HELLO of %zu bytes (at most %zu)", len,
			       sizeof(hs->hello));
	if ((ret = rdmig__msg_decode(in, len, &m, why, sizeof(why))))
		return hs_fail(hs, err, errlen, ret, "bad first message: %s", why);
	if (m.type != RDMIG__MSG_HELLO)
		return hs_fail(hs, err, errlen, -EPROTO, "expected HELLO first, got %s",
			       rdmig__msg_type_name(m.type));
	hs->peer_min = m.hello.ver_min;
	hs->peer_max = m.hello.ver_max;
	lo = RDMIG__MAX(hs->ver_min, m.hello.ver_min);
	hi = RDMIG__MIN(hs->ver_max, m.hello.ver_max);
	if (m.hello.legacy || lo > hi)
		return hs_fail(hs, err, errlen, -EPROTO,
			       "no common protocol version: the source offers [%u, %u]%s, the "
			       "destination speaks [%u, %u]",
			       m.hello.ver_min, m.hello.ver_max,
			       m.hello.legacy ? " (unauthenticated)" : "", hs->ver_min,
			       hs->ver_max);
	if (m.hello.auth != auth_mode(hs)) {
		*mismatch_fatal = !hs->psk_len;
		return hs_fail(hs, err, errlen, -EACCES,
			       hs->psk_len ? "authentication mismatch: the destination requires a "
					     "pre-shared key, the source has none"
					   : "authentication mismatch: the source has a pre-shared "
					     "key, the destination has none (RDMIG_AUTH=none)");
	}
	hs->version = hi;
	hs->peer_caps = m.hello.caps;
	hs->caps_agreed = m.hello.caps & hs->caps;
	memcpy(hs->nonce_src, m.hello.nonce, RDMIG__NONCE_LEN);
	memcpy(hs->hello, in, len);
	hs->hello_len = len;
	if (rdmig__random(hs->nonce_dst, sizeof(hs->nonce_dst)) || derive(hs))
		return hs_fail(hs, err, errlen, -EIO, "internal error");

	memset(&m, 0, sizeof(m));
	m.type = RDMIG__MSG_CHALLENGE;
	m.challenge.version = hs->version;
	m.challenge.caps = hs->caps_agreed;
	m.challenge.auth = auth_mode(hs);
	memcpy(m.challenge.nonce, hs->nonce_dst, RDMIG__NONCE_LEN);
	n = rdmig__msg_encode(&m, out, RDMIG__MIN(cap, sizeof(hs->chall)), why, sizeof(why));
	if (n < 0)
		return hs_fail(hs, err, errlen, n, "internal: %s", why);
	if (dst_proof(hs, out, (size_t)n, out + n - RDMIG__KEY_LEN))
		return hs_fail(hs, err, errlen, -EIO, "internal error");
	memcpy(hs->chall, out, (size_t)n);
	hs->chall_len = (size_t)n;
	hs->step = RDMIG__HS_DST_CHALLENGE_SENT;
	return n;
}

int rdmig__hs_dst_auth(struct rdmig__hs *hs, const uint8_t *in, size_t len, struct rdmig__msg *m,
		       char *err, size_t errlen)
{
	uint8_t want[RDMIG__KEY_LEN];
	char why[256];
	int ret;

	if (hs->step != RDMIG__HS_DST_CHALLENGE_SENT)
		return hs_fail(hs, err, errlen, -EPROTO, "authentication failed");
	/* The proof first, over the raw bytes: nothing a stranger wrote is
	 * looked at, and no layout check answers him. */
	if (len < RDMIG__HDR_LEN + RDMIG__KEY_LEN || src_proof(hs, in, len, want) ||
	    !rdmig__mac_equal(want, in + len - RDMIG__KEY_LEN, sizeof(want)))
		return hs_fail(hs, err, errlen, -EACCES, "authentication failed");
	hs->proven = true;
	if ((ret = rdmig__msg_decode(in, len, m, why, sizeof(why))))
		return hs_fail(hs, err, errlen, ret, "bad AUTH: %s", why);
	if (m->type != RDMIG__MSG_AUTH)
		return hs_fail(hs, err, errlen, -EPROTO, "expected AUTH, got %s",
			       rdmig__msg_type_name(m->type));
	hs->step = RDMIG__HS_DONE;
	return 0;
}

int rdmig__hs_data_tag(const struct rdmig__keys *k, uint32_t index, uint64_t token, uint32_t qpn,
		       uint8_t *tag)
{
	static const char label[] = "rdmig v4 data qp";
	uint8_t b[16];
	struct rdmig__piece p[2] = { { label, sizeof(label) - 1 }, { b, sizeof(b) } };

	put_le(b, index, 4);
	put_le(b + 4, token, 8);
	put_le(b + 12, qpn, 4);
	return rdmig__hmac(k->s2d, p, 2, tag, RDMIG__TAG_LEN);
}

void rdmig__layout_tag(const struct rdmig_layout_mismatch *mm, char *buf, size_t len)
{
	int n = snprintf(buf, len, " [layout %u %u %u 0x%" PRIx64 " 0x%" PRIx64 "]", mm->field,
			 mm->region, mm->dst_region, mm->source, mm->destination);

	if (n < 0 || (size_t)n >= len)
		buf[0] = '\0';
}

bool rdmig__layout_untag(char *text, struct rdmig_layout_mismatch *mm)
{
	char *tag = strrchr(text, '[');
	unsigned f, r, d;
	uint64_t sv, dv;
	int end = 0;

	if (!tag || tag == text || tag[-1] != ' ' ||
	    sscanf(tag, "[layout %u %u %u 0x%" SCNx64 " 0x%" SCNx64 "]%n", &f, &r, &d, &sv, &dv,
		   &end) != 5 ||
	    !end || tag[end] || f == RDMIG_LAYOUT_NONE || f > RDMIG_LAYOUT_LENGTH)
		return false;
	mm->field = f;
	mm->region = r;
	mm->dst_region = d;
	mm->reserved = 0;
	mm->source = sv;
	mm->destination = dv;
	tag[-1] = '\0';
	return true;
}

int rdmig__layout_copy(const struct rdmig_layout_mismatch *from, struct rdmig_layout_mismatch *to)
{
	struct rdmig_layout_mismatch m = *from;

	if (!to || to->size < offsetof(struct rdmig_layout_mismatch, field) + sizeof(uint32_t))
		return rdmig__err(-EINVAL, "mm is NULL or mm->size is not set");
	m.size = to->size;
	memcpy(to, &m, RDMIG__MIN(to->size, sizeof(m)));
	if (m.field == RDMIG_LAYOUT_NONE)
		return rdmig__err(-ENODATA, "no layout mismatch recorded");
	return 0;
}

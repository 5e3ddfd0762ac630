/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target: the handshake state machine (ctrl/handshake.c), a source
 * and a destination struct rdmig__hs with the target in the middle. Each
 * record of the input is one call, on either end, in any order: the
 * message it is fed is what the other end last sent, the record's own
 * bytes, or a mix; the target may fix its length and, since it holds the
 * keys, its proof, so that the code behind the proof checks runs on
 * fuzzed bytes. The nonces come from a hash of the input: an input
 * replays, and no input can replay another's messages (fuzz.h).
 *
 * Checked after every call:
 *  - a failure leaves the end FAILED with its keys wiped, and nothing is
 *    accepted after a failure or out of order;
 *  - every message an end writes decodes, says what the end settled, and
 *    carries the proof common/proto.h defines (computed here afresh);
 *  - each receiving call's verdict matches a model: the source takes a
 *    CHALLENGE exactly when it decodes, its choice is one we offered and
 *    its proof is right; the destination takes an AUTH exactly when its
 *    proof is right and it decodes as AUTH, and a wrong proof gets
 *    "authentication failed" and nothing more;
 *  - a message the target did not forge is only accepted when both ends
 *    saw the same transcript (HELLO, CHALLENGE, binding, AUTH) under the
 *    same key, and then both hold the same keys: a DONE pair that no
 *    forger touched agrees on keys, version and capabilities.
 */
#include "fuzz.h"

/* The offers the source may make (cfg[1] modulo 16): mostly the real one. */
static const uint16_t offers[16][2] = {
	{ 4, 4 },     { 4, 4 }, { 4, 4 }, { 4, 4 }, { 1, 4 }, { 4, 5 }, { 2, 3 }, { 5, 6 },
	{ 4, 65535 }, { 1, 1 }, { 3, 4 }, { 0, 4 }, { 5, 4 }, { 4, 3 }, { 3, 3 }, { 65535, 65535 },
};

struct hs_run {
	struct rdmig__hs src, dst;
	uint8_t to_dst[RDMIG__MSG_MAX], to_src[RDMIG__MSG_MAX]; /* what each end last sent */
	size_t to_dst_len, to_src_len;
	uint8_t auth_sent[RDMIG__MSG_MAX]; /* the AUTH the source made */
	size_t auth_sent_len;
	bool chall_forged; /* the source took a CHALLENGE whose proof the target wrote */
	bool auth_forged;  /* the destination took such an AUTH */
};

static uint32_t mode_of(const struct rdmig__hs *hs)
{
	return hs->psk_len ? RDMIG__AUTH_PSK : RDMIG__AUTH_NONE;
}

static bool same_key(const struct rdmig__hs *a, const struct rdmig__hs *b)
{
	return a->psk_len == b->psk_len && fz_same(a->psk, b->psk, a->psk_len);
}

/*
 * What holds after any call on `hs`, which was at step `before`. `quiet`:
 * the failure may come without a message (a peer's ERROR with no text).
 */
static void after_call_quiet(const struct rdmig__hs *hs, enum rdmig__hs_step before, int ret,
			     enum rdmig__hs_step next, const char *err, size_t errcap,
			     const char *what, bool quiet)
{
	static int verbose = -1;

	/* RDMIG_FUZZ_VERBOSE=1: every call's outcome, to see what an input does. */
	if (verbose < 0)
		verbose = getenv("RDMIG_FUZZ_VERBOSE") != NULL;
	FZ_CHECK(fz_terminated(err, errcap), "%s: unterminated message", what);
	if (verbose)
		fprintf(stderr, "%s at step %d: %d, step %d%s%s\n", what, before, ret, hs->step,
			err[0] ? ": " : "", err);
	if (before == RDMIG__HS_FAILED || before == RDMIG__HS_DONE)
		FZ_CHECK(ret < 0, "%s accepted at step %d", what, before);
	if (ret < 0) {
		FZ_CHECK(hs->step == RDMIG__HS_FAILED, "%s failed (%d) at step %d", what, ret,
			 hs->step);
		FZ_CHECK(fz_zero(&hs->keys, sizeof(hs->keys)), "%s failed and kept its keys", what);
		FZ_CHECK(err[0] || quiet, "%s failed (%d) without a message", what, ret);
		return;
	}
	FZ_CHECK(hs->step == next, "%s succeeded at step %d", what, hs->step);
	if (next == RDMIG__HS_DONE || next == RDMIG__HS_SRC_CHALLENGE_OK ||
	    next == RDMIG__HS_DST_CHALLENGE_SENT)
		FZ_CHECK(!fz_zero(&hs->keys, sizeof(hs->keys)), "%s left no keys", what);
}

static void after_call(const struct rdmig__hs *hs, enum rdmig__hs_step before, int ret,
		       enum rdmig__hs_step next, const char *err, size_t errcap, const char *what)
{
	after_call_quiet(hs, before, ret, next, err, errcap, what, false);
}

/* The message a receiving call is fed (FZ_HS_HOW_*), into msg (cap bytes); its length. */
static size_t build(uint8_t op, const uint8_t *p, size_t n, const uint8_t *fwd, size_t fwd_len,
		    uint8_t *msg, size_t cap)
{
	size_t len = 0, off;

	switch ((op >> FZ_HS_HOW_SHIFT) & 3) {
	case FZ_HS_HOW_FORWARD:
		len = fwd_len;
		memcpy(msg, fwd, len);
		break;
	case FZ_HS_HOW_REPLACE:
		len = RDMIG__MIN(n, cap);
		memcpy(msg, p, len);
		break;
	case FZ_HS_HOW_PATCH:
		len = fwd_len;
		memcpy(msg, fwd, len);
		if (n < 2)
			break;
		off = fz_get_le(p, 2) % (fwd_len + 1);
		n = RDMIG__MIN(n - 2, cap - off);
		memcpy(msg + off, p + 2, n);
		len = RDMIG__MAX(len, off + n);
		break;
	case FZ_HS_HOW_RESIZE:
		len = n >= 2 ? fz_get_le(p, 2) % (cap + 1) : 0;
		memset(msg, 0, len);
		memcpy(msg, fwd, RDMIG__MIN(len, fwd_len));
		if (len > fwd_len && n > 2)
			memcpy(msg + fwd_len, p + 2, RDMIG__MIN(n - 2, len - fwd_len));
		break;
	}
	if ((op & FZ_HS_FIX_LEN) && len >= 12)
		fz_le(msg + 8, len, 4);
	return len;
}

static void src_hello(struct hs_run *r, uint8_t op)
{
	static uint8_t out[RDMIG__MSG_MAX];
	struct rdmig__hs *hs = &r->src;
	enum rdmig__hs_step before = hs->step;
	struct rdmig__msg m;
	char err[256] = "";
	int ret;

	ret = rdmig__hs_src_hello(hs, out, op & FZ_HS_SHORT_CAP ? 32 : sizeof(out), err,
				  sizeof(err));
	after_call(hs, before, ret, RDMIG__HS_SRC_HELLO_SENT, err, sizeof(err), "src HELLO");
	if (ret < 0)
		return;
	FZ_CHECK(before == RDMIG__HS_START, "a second HELLO was sent");
	FZ_CHECK(ret == RDMIG__HDR_LEN + RDMIG__HELLO_LEN, "a HELLO of %d bytes", ret);
	FZ_CHECK(!rdmig__msg_decode(out, (size_t)ret, &m, err, sizeof(err)) &&
			 m.type == RDMIG__MSG_HELLO,
		 "our HELLO does not decode: %s", err);
	FZ_CHECK(m.hello.ver_min == hs->ver_min && m.hello.ver_max == hs->ver_max &&
			 m.hello.caps == hs->caps && m.hello.auth == mode_of(hs) &&
			 fz_same(m.hello.nonce, hs->nonce_src, RDMIG__NONCE_LEN),
		 "the HELLO does not say what the source offers");
	FZ_CHECK(hs->hello_len == (size_t)ret && fz_same(hs->hello, out, (size_t)ret),
		 "the transcript does not hold the HELLO sent");
	memcpy(r->to_dst, out, (size_t)ret);
	r->to_dst_len = (size_t)ret;
}

static void dst_hello(struct hs_run *r, uint8_t op, const uint8_t *msg, size_t len)
{
	static uint8_t out[RDMIG__MSG_MAX];
	static struct rdmig__msg h, c;
	struct rdmig__hs *hs = &r->dst;
	enum rdmig__hs_step before = hs->step;
	uint8_t want[RDMIG__KEY_LEN];
	bool fatal = true, good;
	size_t cap = op & FZ_HS_SHORT_CAP ? 32 : sizeof(out);
	char err[256] = "";
	uint16_t lo, hi;
	int ret;

	/* The model: a HELLO of ours, a common version, the same auth mode. */
	good = before == RDMIG__HS_START && len <= RDMIG__HS_HELLO_MAX &&
	       !rdmig__msg_decode(msg, len, &h, NULL, 0) && h.type == RDMIG__MSG_HELLO &&
	       !h.hello.legacy && h.hello.auth == mode_of(hs);
	lo = good ? RDMIG__MAX(hs->ver_min, h.hello.ver_min) : 0;
	hi = good ? RDMIG__MIN(hs->ver_max, h.hello.ver_max) : 0;
	good = good && lo <= hi && cap >= RDMIG__HDR_LEN + 80;

	ret = rdmig__hs_dst_hello(hs, msg, len, out, cap, &fatal, err, sizeof(err));
	after_call(hs, before, ret, RDMIG__HS_DST_CHALLENGE_SENT, err, sizeof(err), "dst HELLO");
	FZ_CHECK(!fatal || (ret == -EACCES && !hs->psk_len), "fatal mismatch on %d", ret);
	FZ_CHECK((ret >= 0) == good, "dst HELLO gave %d (%s), the model %s", ret, err,
		 good ? "accepts" : "refuses");
	if (ret < 0)
		return;
	FZ_CHECK(ret == RDMIG__HDR_LEN + 80, "a CHALLENGE of %d bytes", ret);
	FZ_CHECK(!rdmig__msg_decode(out, (size_t)ret, &c, err, sizeof(err)) &&
			 c.type == RDMIG__MSG_CHALLENGE,
		 "our CHALLENGE does not decode: %s", err);
	FZ_CHECK(c.challenge.version == hi && c.challenge.caps == (h.hello.caps & hs->caps) &&
			 c.challenge.auth == mode_of(hs) &&
			 fz_same(c.challenge.nonce, hs->nonce_dst, RDMIG__NONCE_LEN),
		 "the CHALLENGE does not say what was settled");
	FZ_CHECK(hs->version == hi && hs->caps_agreed == c.challenge.caps &&
			 fz_same(hs->nonce_src, h.hello.nonce, RDMIG__NONCE_LEN),
		 "the destination settled something else");
	FZ_CHECK(hs->hello_len == len && fz_same(hs->hello, msg, len) &&
			 hs->chall_len == (size_t)ret && fz_same(hs->chall, out, (size_t)ret),
		 "the transcript does not hold what was exchanged");
	FZ_CHECK(!fz_dst_proof(hs->psk, hs->psk_len, h.hello.nonce, hs->nonce_dst, msg, len, out,
			       (size_t)ret, hs->binding, want) &&
			 fz_same(want, out + ret - RDMIG__KEY_LEN, sizeof(want)),
		 "the CHALLENGE's proof is not the one common/proto.h defines");
	memcpy(r->to_src, out, (size_t)ret);
	r->to_src_len = (size_t)ret;
}

static void src_challenge(struct hs_run *r, bool forged, const uint8_t *msg, size_t len)
{
	static struct rdmig__msg c;
	struct rdmig__hs *hs = &r->src, *dst = &r->dst;
	enum rdmig__hs_step before = hs->step;
	uint8_t want[RDMIG__KEY_LEN];
	char err[256] = "";
	bool decoded, good;
	int ret;

	decoded = before == RDMIG__HS_SRC_HELLO_SENT && !rdmig__msg_decode(msg, len, &c, NULL, 0);
	good = decoded && c.type == RDMIG__MSG_CHALLENGE && c.challenge.auth == mode_of(hs) &&
	       c.challenge.version >= hs->ver_min && c.challenge.version <= hs->ver_max &&
	       c.challenge.version >= RDMIG__PROTO_MIN &&
	       c.challenge.version <= RDMIG__PROTO_VERSION && !(c.challenge.caps & ~hs->caps) &&
	       !fz_dst_proof(hs->psk, hs->psk_len, hs->nonce_src, c.challenge.nonce, hs->hello,
			     hs->hello_len, msg, len, hs->binding, want) &&
	       fz_same(want, c.challenge.proof, sizeof(want));

	ret = rdmig__hs_src_challenge(hs, msg, len, err, sizeof(err));
	after_call_quiet(hs, before, ret, RDMIG__HS_SRC_CHALLENGE_OK, err, sizeof(err),
			 "src CHALLENGE",
			 decoded && c.type == RDMIG__MSG_ERROR && !c.error.text[0]);
	FZ_CHECK((ret == 0) == good, "src CHALLENGE gave %d (%s), the model %s", ret, err,
		 good ? "accepts" : "refuses");
	if (decoded && c.type == RDMIG__MSG_ERROR)
		FZ_CHECK(ret == -ECONNREFUSED && !strncmp(err, c.error.text, sizeof(err) - 1),
			 "an ERROR gave %d (%s)", ret, err);
	if (ret)
		return;
	FZ_CHECK(hs->version == c.challenge.version && hs->caps_agreed == c.challenge.caps &&
			 hs->chall_len == len && fz_same(hs->chall, msg, len),
		 "the source settled something else");
	r->chall_forged = forged;
	if (forged)
		return;
	/* Unforged: the destination made this CHALLENGE for this HELLO, here. */
	FZ_CHECK(dst->chall_len == len && fz_same(dst->chall, msg, len),
		 "the source took a CHALLENGE the destination never sent");
	FZ_CHECK(dst->hello_len == hs->hello_len && fz_same(dst->hello, hs->hello, hs->hello_len),
		 "the source took a CHALLENGE to another HELLO");
	FZ_CHECK(fz_same(dst->binding, hs->binding, RDMIG__HS_BINDING) && same_key(hs, dst),
		 "the source took a CHALLENGE made for another connection or key");
	if (dst->step == RDMIG__HS_DST_CHALLENGE_SENT)
		FZ_CHECK(fz_same(&dst->keys, &hs->keys, sizeof(hs->keys)),
			 "same transcript, different keys");
}

void rdmig_fuzz_hs_proposal(const uint8_t *p, size_t n, struct rdmig__msg *m)
{
	memset(m, 0, sizeof(*m));
	m->type = 0xffff; /* src_auth sets it */
	if (n < 16) {
		m->auth.page_size = 4096;
		m->auth.nqps = 4;
		m->auth.nregions = 2;
		m->auth.flags = RDMIG__AUTH_NOTICES;
		m->auth.regions[0].len = 1 << 20;
		m->auth.regions[1].gpa = 1ull << 32;
		m->auth.regions[1].len = 2 << 20;
		return;
	}
	m->auth.page_size = (uint32_t)fz_get_le(p, 4);
	m->auth.nqps = (uint32_t)fz_get_le(p + 4, 4);
	m->auth.nregions = (uint32_t)fz_get_le(p + 8, 4);
	m->auth.flags = (uint32_t)fz_get_le(p + 12, 4);
	for (size_t i = 0; i < RDMIG__MAX_REGIONS && 16 + 16 * (i + 1) <= n; i++) {
		m->auth.regions[i].gpa = fz_get_le(p + 16 + 16 * i, 8);
		m->auth.regions[i].len = fz_get_le(p + 24 + 16 * i, 8);
	}
}

static void src_auth(struct hs_run *r, uint8_t op, const uint8_t *p, size_t n)
{
	static uint8_t out[RDMIG__MSG_MAX];
	static struct rdmig__msg m, d;
	struct rdmig__hs *hs = &r->src;
	enum rdmig__hs_step before = hs->step;
	uint8_t want[RDMIG__KEY_LEN];
	char err[256] = "";
	int ret;

	rdmig_fuzz_hs_proposal(p, n, &m);
	ret = rdmig__hs_src_auth(hs, &m, out, op & FZ_HS_SHORT_CAP ? 32 : sizeof(out), err,
				 sizeof(err));
	after_call(hs, before, ret, RDMIG__HS_DONE, err, sizeof(err), "src AUTH");
	if (ret < 0)
		return;
	FZ_CHECK(before == RDMIG__HS_SRC_CHALLENGE_OK, "AUTH at step %d", before);
	FZ_CHECK(!rdmig__msg_decode(out, (size_t)ret, &d, err, sizeof(err)) &&
			 d.type == RDMIG__MSG_AUTH && d.auth.nregions == m.auth.nregions &&
			 d.auth.page_size == m.auth.page_size,
		 "our AUTH does not decode to the proposal: %s", err);
	FZ_CHECK(!fz_src_proof(hs->psk, hs->psk_len, hs->nonce_src, hs->nonce_dst, hs->hello,
			       hs->hello_len, hs->chall, hs->chall_len, hs->binding, out,
			       (size_t)ret, want) &&
			 fz_same(want, out + ret - RDMIG__KEY_LEN, sizeof(want)),
		 "the AUTH's proof is not the one common/proto.h defines");
	memcpy(r->to_dst, out, (size_t)ret);
	r->to_dst_len = (size_t)ret;
	memcpy(r->auth_sent, out, (size_t)ret);
	r->auth_sent_len = (size_t)ret;
}

static void dst_auth(struct hs_run *r, bool forged, const uint8_t *msg, size_t len)
{
	static struct rdmig__msg m, d;
	static uint8_t e1[RDMIG__MSG_MAX], e2[RDMIG__MSG_MAX];
	struct rdmig__hs *hs = &r->dst, *src = &r->src;
	enum rdmig__hs_step before = hs->step;
	uint8_t want[RDMIG__KEY_LEN];
	char err[256] = "";
	bool proven, good;
	int ret;

	proven = before == RDMIG__HS_DST_CHALLENGE_SENT && len >= RDMIG__HDR_LEN + RDMIG__KEY_LEN &&
		 !fz_src_proof(hs->psk, hs->psk_len, hs->nonce_src, hs->nonce_dst, hs->hello,
			       hs->hello_len, hs->chall, hs->chall_len, hs->binding, msg, len,
			       want) &&
		 fz_same(want, msg + len - RDMIG__KEY_LEN, sizeof(want));
	good = proven && !rdmig__msg_decode(msg, len, &d, NULL, 0) && d.type == RDMIG__MSG_AUTH;

	ret = rdmig__hs_dst_auth(hs, msg, len, &m, err, sizeof(err));
	after_call(hs, before, ret, RDMIG__HS_DONE, err, sizeof(err), "dst AUTH");
	FZ_CHECK((ret == 0) == good, "dst AUTH gave %d (%s), the model %s", ret, err,
		 good ? "accepts" : "refuses");
	/* Out of turn it is -EPROTO, a wrong proof -EACCES: the same words. */
	if (!proven)
		FZ_CHECK((ret == -EACCES ||
			  (ret == -EPROTO && before != RDMIG__HS_DST_CHALLENGE_SENT)) &&
				 !strcmp(err, "authentication failed"),
			 "an unproven AUTH got %d '%s': more than a stranger may learn", ret, err);
	if (ret)
		return;
	FZ_CHECK(rdmig__msg_encode(&m, e1, sizeof(e1), NULL, 0) ==
				 rdmig__msg_encode(&d, e2, sizeof(e2), NULL, 0) &&
			 fz_same(e1, e2, len),
		 "the AUTH taken is not the AUTH that came");
	r->auth_forged = forged;
	if (forged)
		return;
	/* Unforged: the source sent this AUTH, after the same HELLO and CHALLENGE, here. */
	FZ_CHECK(r->auth_sent_len == len && fz_same(r->auth_sent, msg, len),
		 "the destination took an AUTH the source never sent");
	FZ_CHECK(src->hello_len == hs->hello_len && fz_same(src->hello, hs->hello, hs->hello_len) &&
			 src->chall_len == hs->chall_len &&
			 fz_same(src->chall, hs->chall, hs->chall_len),
		 "the destination took an AUTH over another transcript");
	FZ_CHECK(fz_same(src->binding, hs->binding, RDMIG__HS_BINDING) && same_key(hs, src),
		 "the destination took an AUTH made for another connection or key");
	if (src->step == RDMIG__HS_DONE)
		FZ_CHECK(fz_same(&src->keys, &hs->keys, sizeof(hs->keys)),
			 "same transcript, different keys");
}

/* The proof a forger holding the key writes into msg, as the receiving end will check it. */
static void forge(const struct hs_run *r, unsigned call, uint8_t *msg, size_t len)
{
	static const uint8_t zero[RDMIG__NONCE_LEN];
	const struct rdmig__hs *s = &r->src, *d = &r->dst;
	uint8_t proof[RDMIG__KEY_LEN];

	if (len < RDMIG__KEY_LEN)
		return;
	if (call == FZ_HS_SRC_CHALLENGE) {
		/* CHALLENGE: header, u16 u16 u32 u32 u32, then the nonce */
		const uint8_t *nonce = len >= 64 ? msg + 32 : zero;

		if (fz_dst_proof(s->psk, s->psk_len, s->nonce_src, nonce, s->hello, s->hello_len,
				 msg, len, s->binding, proof))
			return;
	} else {
		if (fz_src_proof(d->psk, d->psk_len, d->nonce_src, d->nonce_dst, d->hello,
				 d->hello_len, d->chall, d->chall_len, d->binding, msg, len, proof))
			return;
	}
	memcpy(msg + len - RDMIG__KEY_LEN, proof, sizeof(proof));
}

/*
 * Both ends from cfg: keys, the source's offer, capabilities, and each
 * end's binding from its own view of the connection (rdmig__hs_bind).
 */
void rdmig_fuzz_hs_setup(const uint8_t cfg[4], uint64_t seed, struct rdmig__hs *src,
			 struct rdmig__hs *dst, struct fz_random *rnd)
{
	struct rdmig__xp_conn_info ci = {
		.local_gid = "source gid 16 b",
		.peer_gid = "destination gid",
		.local_qpn = 0x111,
		.peer_qpn = 0x222,
	};

	memset(src, 0, sizeof(*src));
	memset(dst, 0, sizeof(*dst));
	fz_random_reset(rnd, seed, cfg[0] & FZ_HS_SAME_NONCES);
	src->psk = cfg[0] & FZ_HS_SRC_PSK ? fz_psk : NULL;
	src->psk_len = cfg[0] & FZ_HS_SRC_PSK ? sizeof(fz_psk) : 0;
	src->ver_min = offers[cfg[1] % 16][0];
	src->ver_max = offers[cfg[1] % 16][1];
	src->caps = cfg[2];
	dst->psk = cfg[0] & FZ_HS_DST_PSK ? cfg[0] & FZ_HS_DST_OTHER_PSK ? fz_psk_other : fz_psk
					  : NULL;
	dst->psk_len = cfg[0] & FZ_HS_DST_PSK ? sizeof(fz_psk) : 0;
	/* The destination speaks what ctrl/dst.c gives it. */
	dst->ver_min = RDMIG__PROTO_MIN;
	dst->ver_max = RDMIG__PROTO_VERSION;
	dst->caps = cfg[3];
	rdmig__hs_bind(src, &ci, true);
	/* The destination's view of the same connection, or of the relay's. */
	memcpy(ci.local_gid, "destination gid", 16);
	memcpy(ci.peer_gid, "source gid 16 b", 16);
	ci.local_qpn = 0x222;
	ci.peer_qpn = cfg[0] & FZ_HS_RELAY ? 0x333 : 0x111;
	rdmig__hs_bind(dst, &ci, false);
	FZ_CHECK(fz_same(src->binding, dst->binding, RDMIG__HS_BINDING) == !(cfg[0] & FZ_HS_RELAY),
		 "the two views of a connection bind differently");
}

int rdmig_fuzz_handshake(const uint8_t *data, size_t size)
{
	static struct hs_run r;
	static struct fz_random rnd;
	struct fz_in in = { data, size };
	uint8_t cfg[4];
	const uint8_t *p;
	uint8_t op;
	size_t n;

	for (unsigned i = 0; i < sizeof(cfg); i++)
		cfg[i] = fz_u8(&in);
	memset(&r, 0, sizeof(r));
	rdmig_fuzz_hs_setup(cfg, fz_hash(data, size), &r.src, &r.dst, &rnd);

	while (in.left) {
		static uint8_t msg[RDMIG__MSG_MAX];
		unsigned call;
		uint8_t *exact;
		size_t len;

		n = fz_record(&in, &op, &p);
		call = (op & 7) % FZ_HS_OPS;
		if (call == FZ_HS_SRC_HELLO) {
			src_hello(&r, op);
			continue;
		}
		if (call == FZ_HS_SRC_AUTH) {
			src_auth(&r, op, p, n);
			continue;
		}
		if (call == FZ_HS_SRC_CHALLENGE)
			len = build(op, p, n, r.to_src, r.to_src_len, msg, sizeof(msg));
		else
			len = build(op, p, n, r.to_dst, r.to_dst_len, msg, sizeof(msg));
		if ((op & FZ_HS_FIX_PROOF) && call != FZ_HS_DST_HELLO)
			forge(&r, call, msg, len);
		/* Exactly len bytes, so that ASan sees a read past the message. */
		exact = malloc(len ? len : 1);
		FZ_CHECK(exact != NULL, "no memory");
		memcpy(exact, msg, len);
		if (call == FZ_HS_DST_HELLO)
			dst_hello(&r, op, exact, len);
		else if (call == FZ_HS_SRC_CHALLENGE)
			src_challenge(&r, op & FZ_HS_FIX_PROOF, exact, len);
		else
			dst_auth(&r, op & FZ_HS_FIX_PROOF, exact, len);
		free(exact);
	}

	if (r.src.step == RDMIG__HS_DONE && r.dst.step == RDMIG__HS_DONE && !r.chall_forged &&
	    !r.auth_forged) {
		uint8_t a[RDMIG__TAG_LEN], b[RDMIG__TAG_LEN];

		FZ_CHECK(fz_same(&r.src.keys, &r.dst.keys, sizeof(r.src.keys)) &&
				 r.src.version == r.dst.version &&
				 r.src.caps_agreed == r.dst.caps_agreed,
			 "both ends done, unforged, and they disagree");
		/* A data QP's CONNECT tag: the destination must compute the source's. */
		FZ_CHECK(!rdmig__hs_data_tag(&r.src.keys, 3, 0x1234, 0x456, a) &&
				 !rdmig__hs_data_tag(&r.dst.keys, 3, 0x1234, 0x456, b) &&
				 fz_same(a, b, sizeof(a)),
			 "the data QP tags differ");
	}
	rdmig__hs_wipe(&r.src);
	rdmig__hs_wipe(&r.dst);
	FZ_CHECK(fz_zero(&r.src, sizeof(r.src)) && fz_zero(&r.dst, sizeof(r.dst)),
		 "hs_wipe left state");
	rdmig__random_set_source(NULL, NULL);
	return 0;
}

#ifndef RDMIG_FUZZ_NO_MAIN
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	return rdmig_fuzz_handshake(data, size);
}
#endif

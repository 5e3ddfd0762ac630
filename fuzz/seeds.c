/* SPDX-License-Identifier: MIT */
/*
 * The seed inputs of the fuzz targets, built with the library's own codec,
 * seal and handshake: one real message of every type (with counts and
 * flags that reach the loops and bit checks), the same sealed as they
 * travel, and handshake scripts that complete, fail and forge. Nothing
 * here is stored: fuzz/make_corpus.c writes them into the build directory
 * and tests/fuzz/fuzz_regress_test.c runs them through every target.
 */
#include "fuzz.h"

#define NMSGS 24

struct sample {
	const char *name;
	struct rdmig__msg m;
};

/* One message of every type, some types twice (a full list, the limits). */
static unsigned samples(struct sample *s)
{
	unsigned n = 0;
	struct rdmig__msg *m;

#define NEXT(nm, t) (s[n].name = (nm), m = &s[n++].m, memset(m, 0, sizeof(*m)), m->type = (t))

	NEXT("connect-ctrl", RDMIG__MSG_CONNECT);
	m->connect.kind = RDMIG__CONN_CTRL;
	NEXT("connect-data", RDMIG__MSG_CONNECT);
	m->connect.kind = RDMIG__CONN_DATA;
	m->connect.index = 3;
	m->connect.token = 0x1122334455667788ull;
	memset(m->connect.tag, 0xc3, sizeof(m->connect.tag));
	NEXT("hello", RDMIG__MSG_HELLO);
	m->hello.ver_min = RDMIG__PROTO_MIN;
	m->hello.ver_max = RDMIG__PROTO_VERSION;
	m->hello.caps = RDMIG__CAPS;
	m->hello.auth = RDMIG__AUTH_PSK;
	memset(m->hello.nonce, 0x4e, sizeof(m->hello.nonce));
	NEXT("challenge", RDMIG__MSG_CHALLENGE);
	m->challenge.version = RDMIG__PROTO_VERSION;
	m->challenge.caps = RDMIG__CAPS;
	m->challenge.auth = RDMIG__AUTH_PSK;
	memset(m->challenge.nonce, 0x6e, sizeof(m->challenge.nonce));
	memset(m->challenge.proof, 0x70, sizeof(m->challenge.proof));
	NEXT("auth", RDMIG__MSG_AUTH);
	m->auth.page_size = 4096;
	m->auth.nqps = 4;
	m->auth.nregions = 3;
	m->auth.flags = RDMIG__AUTH_NOTICES;
	for (unsigned i = 0; i < 3; i++) {
		m->auth.regions[i].gpa = (uint64_t)i << 32;
		m->auth.regions[i].len = (uint64_t)(i + 1) << 20;
	}
	memset(m->auth.proof, 0x50, sizeof(m->auth.proof));
	NEXT("hello-ack", RDMIG__MSG_HELLO_ACK);
	m->hello_ack.version = RDMIG__PROTO_VERSION;
	m->hello_ack.page_size = 2u << 20;
	m->hello_ack.nqps = 2;
	m->hello_ack.nregions = 2;
	m->hello_ack.token = 0xfeedfacecafebeefull;
	for (unsigned i = 0; i < 2; i++) {
		struct rdmig__wire_target *t = &m->hello_ack.regions[i];

		t->gpa = (uint64_t)i << 30;
		t->len = 4u << 20;
		t->addr = 0x7f0000000000ull + ((uint64_t)i << 30);
		t->rkey = 0x1234 + i;
		t->flags = i ? RDMIG__TARGET_ZERO : 0;
	}
	NEXT("pass-end", RDMIG__MSG_PASS_END);
	m->pass_end.pass = 2;
	m->pass_end.qp = 1;
	m->pass_end.writes = 10;
	m->pass_end.bytes = 40960;
	NEXT("pass-ack", RDMIG__MSG_PASS_ACK);
	m->pass_ack.pass = 2;
	m->pass_ack.bytes = 81920;
	NEXT("progress", RDMIG__MSG_PROGRESS);
	m->progress.pass = 1;
	m->progress.elapsed_ms = 1500;
	NEXT("complete", RDMIG__MSG_COMPLETE);
	m->complete.passes = 5;
	NEXT("complete-ack", RDMIG__MSG_COMPLETE_ACK);
	m->complete.passes = 5;
	NEXT("error", RDMIG__MSG_ERROR);
	m->error.code = EACCES;
	m->error.len = (uint32_t)strlen("authentication failed");
	memcpy(m->error.text, "authentication failed", m->error.len);
	NEXT("notice", RDMIG__MSG_NOTICE);
	m->notice.pass = 3;
	m->notice.region = 1;
	m->notice.npages = 5;
	for (unsigned i = 0; i < 5; i++)
		m->notice.page[i] = (10 + 3 * i) | (i % 2 ? RDMIG__NOTICE_ZERO : 0);
	NEXT("notice-full", RDMIG__MSG_NOTICE);
	m->notice.pass = 1;
	m->notice.npages = RDMIG__NOTICE_PAGES;
	for (unsigned i = 0; i < RDMIG__NOTICE_PAGES; i++)
		m->notice.page[i] = i;
	NEXT("hashes", RDMIG__MSG_HASHES);
	m->hashes.pass = 3;
	m->hashes.region = 1;
	m->hashes.npages = 70;
	m->hashes.first = 10;
	m->hashes.landed_zero[0] = 0x5;
	m->hashes.landed_zero[1] = 0x2;
	m->hashes.nhashes = 4;
	for (unsigned i = 0; i < 4; i++) {
		m->hashes.hash[i].lo = 0x1111111111111111ull * (i + 1);
		m->hashes.hash[i].hi = ~m->hashes.hash[i].lo;
	}
	NEXT("hashes-full", RDMIG__MSG_HASHES);
	m->hashes.pass = 1;
	m->hashes.npages = RDMIG__NOTICE_PAGES;
	m->hashes.nhashes = RDMIG__NOTICE_PAGES;
	/* The device state's five messages (ctrl/blob.c). */
	NEXT("state-desc", RDMIG__MSG_STATE_DESC);
	m->state_desc.nblobs = 3;
	for (unsigned i = 0; i < 3; i++)
		m->state_desc.blob[i] = (struct rdmig__wire_blob){
			.id = 0x100 + i,
			.len = 3 * 4096 + i,
			.zero_pages = i,
			.nruns = i ? 1 : 0,
			.hash = { 0x1111000000000000ull + i, 0x2222000000000000ull + i },
		};
	NEXT("state-zero", RDMIG__MSG_STATE_ZERO);
	m->state_zero.blob = 2;
	m->state_zero.nruns = 3;
	for (unsigned i = 0; i < 3; i++)
		m->state_zero.run[i] = (struct rdmig__wire_run){ 10 * i + 1, 2 + i };
	NEXT("state-ready", RDMIG__MSG_STATE_READY);
	m->state_ready.nblobs = 2;
	m->state_ready.buf[0].addr = 0x7f0000100000ull;
	m->state_ready.buf[0].rkey = 0x77;
	NEXT("state-end", RDMIG__MSG_STATE_END);
	m->state_end.nblobs = 2;
	m->state_end.writes = 3;
	m->state_end.bytes = 12288;
	NEXT("state-ack", RDMIG__MSG_STATE_ACK);
	m->state_ack.nblobs = 2;
	m->state_ack.bytes = 12288;
#undef NEXT
	return n;
}

/* A buffer the seeds are put together in. */
struct out {
	uint8_t b[4 * RDMIG__MSG_MAX];
	size_t n;
};

static void put(struct out *o, const void *p, size_t n)
{
	FZ_CHECK(o->n + n <= sizeof(o->b), "seed too long");
	if (n)
		memcpy(o->b + o->n, p, n);
	o->n += n;
}

static void put_u8(struct out *o, uint8_t v)
{
	put(o, &v, 1);
}

static void record(struct out *o, uint8_t op, const void *p, size_t n)
{
	uint8_t len[2];

	fz_le(len, n, 2);
	put_u8(o, op);
	put(o, len, 2);
	put(o, p, n);
}

static int encode(const struct rdmig__msg *m, size_t trailer, uint8_t *buf)
{
	char err[256];
	int n = rdmig__msg_encode_ext(m, trailer, buf, RDMIG__MSG_MAX, err, sizeof(err));

	FZ_CHECK(n > 0, "seed %s does not encode: %s", rdmig__msg_type_name(m->type), err);
	return n;
}

static void codec_seeds(fz_emit_fn emit, void *arg, struct sample *s, unsigned ns)
{
	static uint8_t buf[RDMIG__MSG_MAX + 1];
	static struct out o;
	struct rdmig__seal seal;
	char name[64];
	int n;

	for (unsigned i = 0; i < ns; i++) {
		n = encode(&s[i].m, 0, buf);
		emit(arg, "decode", s[i].name, buf, (size_t)n);
		/* Sealed as on the wire: decode_ext with the trailer reads it too. */
		FZ_CHECK(!rdmig__seal_init(&seal, fz_key_a, fz_key_b, 0), "seal_init");
		n = encode(&s[i].m, RDMIG__TRAILER_LEN, buf);
		FZ_CHECK(!rdmig__seal_tx(&seal, buf, (size_t)n), "seal_tx");
		rdmig__seal_fini(&seal);
		snprintf(name, sizeof(name), "%s-sealed", s[i].name);
		emit(arg, "decode", name, buf, (size_t)n);

		/* fuzz_encode: the struct itself, the type's bit 15 asking for a trailer. */
		emit(arg, "encode", s[i].name, (const uint8_t *)&s[i].m, sizeof(s[i].m));
		s[i].m.type |= 0x8000;
		emit(arg, "encode", name, (const uint8_t *)&s[i].m, sizeof(s[i].m));
		s[i].m.type &= 0x7fff;
	}

	/* HELLO from other versions: a legacy one, a later one with more fields. */
	for (unsigned i = 0; i < ns; i++) {
		if (s[i].m.type != RDMIG__MSG_HELLO)
			continue;
		n = encode(&s[i].m, 0, buf);
		fz_le(buf + 4, 3, 2);
		emit(arg, "decode", "hello-v3", buf, (size_t)n);
		fz_le(buf + 4, RDMIG__PROTO_VERSION + 1, 2);
		memset(buf + n, 0xee, 16);
		fz_le(buf + 8, (uint64_t)n + 16, 4);
		emit(arg, "decode", "hello-v5-longer", buf, (size_t)n + 16);
	}

	/* Longer than any message may be. */
	memset(buf, 0, sizeof(buf));
	n = encode(&s[0].m, 0, buf);
	fz_le(buf + 8, sizeof(buf), 4);
	emit(arg, "decode", "oversized", buf, sizeof(buf));

	/* fuzz_sealed: each message as its own record, for the target to seal... */
	for (unsigned i = 0; i < ns; i++) {
		uint8_t chan = s[i].m.type == RDMIG__MSG_NOTICE ||
					       s[i].m.type == RDMIG__MSG_HASHES ||
					       s[i].m.type == RDMIG__MSG_PASS_END
				       ? 2
				       : 0;

		o.n = 0;
		put_u8(&o, chan);
		n = encode(&s[i].m, RDMIG__TRAILER_LEN, buf);
		record(&o, FZ_SEALED_SEAL, buf, (size_t)n - RDMIG__TRAILER_LEN);
		emit(arg, "sealed", s[i].name, o.b, o.n);
	}
	/* ...and a conversation sealed by a real peer: three in order, then a replay. */
	o.n = 0;
	put_u8(&o, 0);
	FZ_CHECK(!rdmig__seal_init(&seal, fz_key_a, fz_key_b, 0), "seal_init");
	for (unsigned i = 0; i < ns; i++) {
		if (s[i].m.type != RDMIG__MSG_PASS_ACK && s[i].m.type != RDMIG__MSG_PROGRESS &&
		    s[i].m.type != RDMIG__MSG_COMPLETE)
			continue;
		n = encode(&s[i].m, RDMIG__TRAILER_LEN, buf);
		FZ_CHECK(!rdmig__seal_tx(&seal, buf, (size_t)n), "seal_tx");
		record(&o, 0, buf, (size_t)n);
	}
	record(&o, 0, buf, (size_t)n);
	rdmig__seal_fini(&seal);
	emit(arg, "sealed", "conversation", o.b, o.n);
	/* Forged, moved and unsealed. */
	o.n = 0;
	put_u8(&o, 1);
	n = encode(&s[0].m, RDMIG__TRAILER_LEN, buf);
	record(&o, FZ_SEALED_SEAL | FZ_SEALED_WRONG_KEY, buf, (size_t)n - RDMIG__TRAILER_LEN);
	record(&o, FZ_SEALED_SEAL | FZ_SEALED_WRONG_CHAN, buf, (size_t)n - RDMIG__TRAILER_LEN);
	record(&o, FZ_SEALED_SEAL | FZ_SEALED_SEQ_SKIP, buf, (size_t)n - RDMIG__TRAILER_LEN);
	record(&o, 0, buf, (size_t)n);
	n = encode(&s[0].m, 0, buf);
	record(&o, FZ_SEALED_PLAIN, buf, (size_t)n);
	emit(arg, "sealed", "forged", o.b, o.n);
}

/* Runs a handshake as fuzz_handshake sets it up: the messages each end really sends. */
static void real_handshake(const uint8_t cfg[4], uint8_t *hello, size_t *hello_len, uint8_t *chall,
			   size_t *chall_len, uint8_t *auth, size_t *auth_len)
{
	static struct rdmig__hs src, dst;
	static struct rdmig__msg m;
	struct fz_random rnd;
	char err[256];
	bool fatal;
	int n;

	rdmig_fuzz_hs_setup(cfg, 1, &src, &dst, &rnd);
	n = rdmig__hs_src_hello(&src, hello, RDMIG__MSG_MAX, err, sizeof(err));
	FZ_CHECK(n > 0, "seed HELLO: %s", err);
	*hello_len = (size_t)n;
	n = rdmig__hs_dst_hello(&dst, hello, *hello_len, chall, RDMIG__MSG_MAX, &fatal, err,
				sizeof(err));
	FZ_CHECK(n > 0, "seed CHALLENGE: %s", err);
	*chall_len = (size_t)n;
	FZ_CHECK(!rdmig__hs_src_challenge(&src, chall, *chall_len, err, sizeof(err)),
		 "seed CHALLENGE refused: %s", err);
	rdmig_fuzz_hs_proposal(NULL, 0, &m);
	n = rdmig__hs_src_auth(&src, &m, auth, RDMIG__MSG_MAX, err, sizeof(err));
	FZ_CHECK(n > 0, "seed AUTH: %s", err);
	*auth_len = (size_t)n;
	FZ_CHECK(!rdmig__hs_dst_auth(&dst, auth, *auth_len, &m, err, sizeof(err)),
		 "seed AUTH refused: %s", err);
	rdmig__hs_wipe(&src);
	rdmig__hs_wipe(&dst);
	rdmig__random_set_source(NULL, NULL);
}

static void handshake_seeds(fz_emit_fn emit, void *arg, struct sample *s, unsigned ns)
{
	static const uint8_t psk[4] = { FZ_HS_SRC_PSK | FZ_HS_DST_PSK, 0, RDMIG__CAPS,
					RDMIG__CAPS };
	static const uint8_t none[4] = { 0, 0, RDMIG__CAPS, RDMIG__CAPS };
	static const struct {
		const char *name;
		uint8_t cfg0;
	} flows[] = {
		{ "flow-psk", FZ_HS_SRC_PSK | FZ_HS_DST_PSK },
		{ "flow-none", 0 },
		{ "flow-wrong-key", FZ_HS_SRC_PSK | FZ_HS_DST_PSK | FZ_HS_DST_OTHER_PSK },
		{ "flow-relay", FZ_HS_SRC_PSK | FZ_HS_DST_PSK | FZ_HS_RELAY },
		{ "flow-same-nonces", FZ_HS_SRC_PSK | FZ_HS_DST_PSK | FZ_HS_SAME_NONCES },
		{ "flow-src-key-only", FZ_HS_SRC_PSK },
		{ "flow-dst-key-only", FZ_HS_DST_PSK },
	};
	static uint8_t hello[RDMIG__MSG_MAX], chall[RDMIG__MSG_MAX], auth[RDMIG__MSG_MAX];
	static uint8_t buf[RDMIG__MSG_MAX];
	static struct out o;
	uint8_t proposal[16 + 2 * 16], patch[2 + 4];
	size_t hello_len, chall_len, auth_len;
	int n;

	/* A proposal record: u32 page size, QPs, regions, flags, then the regions. */
	fz_le(proposal, 4096, 4);
	fz_le(proposal + 4, 2, 4);
	fz_le(proposal + 8, 2, 4);
	fz_le(proposal + 12, RDMIG__AUTH_NOTICES, 4);
	fz_le(proposal + 16, 0, 8);
	fz_le(proposal + 24, 1 << 20, 8);
	fz_le(proposal + 32, 1ull << 32, 8);
	fz_le(proposal + 40, 1 << 20, 8);

	/* Every call in turn, each message forwarded as it was sent. */
	for (unsigned i = 0; i < RDMIG__ARRAY_SIZE(flows); i++) {
		o.n = 0;
		put_u8(&o, flows[i].cfg0);
		put(&o, psk + 1, 3);
		record(&o, FZ_HS_SRC_HELLO, NULL, 0);
		record(&o, FZ_HS_DST_HELLO, NULL, 0);
		record(&o, FZ_HS_SRC_CHALLENGE, NULL, 0);
		record(&o, FZ_HS_SRC_AUTH, proposal, sizeof(proposal));
		record(&o, FZ_HS_DST_AUTH, NULL, 0);
		emit(arg, "handshake", flows[i].name, o.b, o.n);
	}

	/*
	 * The real messages of another run as the records' own bytes, for the
	 * fuzzer to mutate: their proofs are for other nonces, so a forger
	 * rewrites them, or the ends refuse them.
	 */
	for (unsigned k = 0; k < 2; k++) {
		const uint8_t *cfg = k ? none : psk;

		real_handshake(cfg, hello, &hello_len, chall, &chall_len, auth, &auth_len);
		o.n = 0;
		put(&o, cfg, 4);
		record(&o, FZ_HS_SRC_HELLO, NULL, 0);
		record(&o, FZ_HS_OP(FZ_HS_DST_HELLO, FZ_HS_HOW_REPLACE), hello, hello_len);
		record(&o, FZ_HS_OP(FZ_HS_SRC_CHALLENGE, FZ_HS_HOW_REPLACE) | FZ_HS_FIX_PROOF,
		       chall, chall_len);
		record(&o, FZ_HS_SRC_AUTH, NULL, 0);
		record(&o, FZ_HS_OP(FZ_HS_DST_AUTH, FZ_HS_HOW_REPLACE) | FZ_HS_FIX_PROOF, auth,
		       auth_len);
		emit(arg, "handshake", k ? "replace-none" : "replace-psk", o.b, o.n);
	}

	/* A forger with the key: a CHALLENGE with other caps, an AUTH with other regions. */
	o.n = 0;
	put(&o, psk, 4);
	record(&o, FZ_HS_SRC_HELLO, NULL, 0);
	record(&o, FZ_HS_DST_HELLO, NULL, 0);
	fz_le(patch, 20, 2); /* CHALLENGE caps */
	fz_le(patch + 2, 0, 4);
	record(&o, FZ_HS_OP(FZ_HS_SRC_CHALLENGE, FZ_HS_HOW_PATCH) | FZ_HS_FIX_PROOF, patch,
	       sizeof(patch));
	record(&o, FZ_HS_SRC_AUTH, proposal, sizeof(proposal));
	fz_le(patch, 16 + 16 + 8, 2); /* the first region's length */
	fz_le(patch + 2, 2 << 20, 4);
	record(&o, FZ_HS_OP(FZ_HS_DST_AUTH, FZ_HS_HOW_PATCH) | FZ_HS_FIX_PROOF, patch,
	       sizeof(patch));
	emit(arg, "handshake", "forged", o.b, o.n);

	/* Out of turn, twice, and after a failure. */
	o.n = 0;
	put(&o, psk, 4);
	record(&o, FZ_HS_DST_AUTH, NULL, 0);
	record(&o, FZ_HS_SRC_AUTH, NULL, 0);
	record(&o, FZ_HS_SRC_HELLO, NULL, 0);
	record(&o, FZ_HS_SRC_HELLO, NULL, 0);
	record(&o, FZ_HS_DST_HELLO, NULL, 0);
	record(&o, FZ_HS_DST_HELLO, NULL, 0);
	record(&o, FZ_HS_SRC_CHALLENGE, NULL, 0);
	emit(arg, "handshake", "out-of-turn", o.b, o.n);

	/* The destination refuses: an ERROR, and a CHALLENGE cut short. */
	for (unsigned i = 0; i < ns; i++) {
		if (s[i].m.type != RDMIG__MSG_ERROR)
			continue;
		n = encode(&s[i].m, 0, buf);
		o.n = 0;
		put(&o, psk, 4);
		record(&o, FZ_HS_SRC_HELLO, NULL, 0);
		record(&o, FZ_HS_OP(FZ_HS_SRC_CHALLENGE, FZ_HS_HOW_REPLACE), buf, (size_t)n);
		emit(arg, "handshake", "refused", o.b, o.n);
	}
	o.n = 0;
	put(&o, psk, 4);
	record(&o, FZ_HS_SRC_HELLO, NULL, 0);
	record(&o, FZ_HS_DST_HELLO | FZ_HS_SHORT_CAP, NULL, 0);
	fz_le(patch, 64, 2);
	record(&o, FZ_HS_OP(FZ_HS_SRC_CHALLENGE, FZ_HS_HOW_RESIZE) | FZ_HS_FIX_LEN, patch, 2);
	emit(arg, "handshake", "short", o.b, o.n);

	/* Valid messages of the wrong type where a HELLO, a CHALLENGE, an AUTH belong. */
	for (unsigned i = 0; i < ns; i++) {
		if (s[i].m.type != RDMIG__MSG_PASS_ACK)
			continue;
		n = encode(&s[i].m, 0, buf);
		o.n = 0;
		put(&o, psk, 4);
		record(&o, FZ_HS_SRC_HELLO, NULL, 0);
		record(&o, FZ_HS_OP(FZ_HS_DST_HELLO, FZ_HS_HOW_REPLACE), buf, (size_t)n);
		record(&o, FZ_HS_OP(FZ_HS_SRC_CHALLENGE, FZ_HS_HOW_REPLACE), buf, (size_t)n);
		emit(arg, "handshake", "wrong-type", o.b, o.n);
	}

	/* The source offers other versions. */
	for (uint8_t v = 4; v < 16; v += 3) {
		char name[32];

		o.n = 0;
		put(&o, psk, 4);
		o.b[1] = v;
		record(&o, FZ_HS_SRC_HELLO, NULL, 0);
		record(&o, FZ_HS_DST_HELLO, NULL, 0);
		record(&o, FZ_HS_SRC_CHALLENGE, NULL, 0);
		snprintf(name, sizeof(name), "offer-%u", v);
		emit(arg, "handshake", name, o.b, o.n);
	}
}

void rdmig_fuzz_seeds(fz_emit_fn emit, void *arg)
{
	static struct sample s[NMSGS];
	unsigned ns = samples(s);

	codec_seeds(emit, arg, s, ns);
	handshake_seeds(emit, arg, s, ns);
}

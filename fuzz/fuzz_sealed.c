/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target: rdmig__ep_open, the way every message after the handshake
 * arrives (common/conn.c): the seal's MAC and sequence number are checked,
 * then the decoder runs on what the MAC vouched for. The target holds the
 * key, so it can seal the fuzzer's bytes itself and reach the decoder
 * behind the MAC; unsealed bytes exercise the rejection.
 *
 * Every open is checked against a verdict the target works out on its own
 * (common/seal.h): too short or a bad tag is -EBADMSG, a sequence number
 * other than the next is -EPROTO, else what the decoder says; the
 * sequence number advances exactly when tag and number were good. What
 * opens must encode and seal back to the very same bytes.
 *
 * Input: u8 channel, then records { u8 mode, u16 len, len bytes }, each one
 * message (FZ_SEALED_*: how the target completes it).
 */
#include "fuzz.h"

/*
 * The endpoint receives with key A and sends with key B on `chan`; the
 * peer's seal is the reverse, so it can seal what the endpoint opens.
 */
struct sealed_run {
	struct rdmig__ep ep, plain;
	struct rdmig__seal peer;
	uint32_t chan;
};

static void check_open(struct sealed_run *r, struct rdmig__ep *ep, const uint8_t *buf, size_t len)
{
	static struct rdmig__msg m, d;
	static uint8_t out[RDMIG__MSG_MAX];
	bool sealed = rdmig__seal_on(&ep->seal), vouched = false;
	uint64_t seq = ep->seal.rx_seq;
	uint8_t tag[RDMIG__TAG_LEN];
	char err[256];
	int want, got, n;

	if (!sealed) {
		want = rdmig__msg_decode(buf, len, &d, NULL, 0);
	} else if (len < RDMIG__TRAILER_LEN) {
		want = -EBADMSG;
	} else {
		FZ_CHECK(!fz_seal_tag(fz_key_a, r->chan, buf, len, tag), "no tag");
		if (!fz_same(tag, buf + len - RDMIG__TAG_LEN, sizeof(tag))) {
			want = -EBADMSG;
		} else if (fz_get_le(buf + len - RDMIG__TRAILER_LEN, 8) != seq) {
			want = -EPROTO;
		} else {
			vouched = true;
			want = rdmig__msg_decode_ext(buf, len, RDMIG__TRAILER_LEN, &d, NULL, 0);
		}
	}
	err[0] = '\0';
	got = rdmig__ep_open(ep, buf, len, &m, err, sizeof(err));
	FZ_CHECK(got == want, "open gave %d (%s), expected %d", got, err, want);
	FZ_CHECK(ep->seal.rx_seq == seq + vouched, "sequence number %llu after %llu",
		 (unsigned long long)ep->seal.rx_seq, (unsigned long long)seq);
	if (got) {
		FZ_CHECK(err[0] && fz_terminated(err, sizeof(err)),
			 "open failed without a message");
		return;
	}
	n = rdmig__msg_encode_ext(&m, sealed ? RDMIG__TRAILER_LEN : 0, out, sizeof(out), NULL, 0);
	/* A HELLO from another version opens but is never re-sent as it came (fuzz_decode). */
	if (m.type == RDMIG__MSG_HELLO && (n < 0 || (size_t)n != len || !fz_same(out, buf, 16)))
		return;
	FZ_CHECK((size_t)n == len, "%s of %zu bytes re-encoded in %d", rdmig__msg_type_name(m.type),
		 len, n);
	if (sealed) {
		r->peer.tx_seq = seq;
		FZ_CHECK(!rdmig__seal_tx(&r->peer, out, (size_t)n), "sealing failed");
	}
	FZ_CHECK(fz_same(out, buf, len), "%s re-encoded and sealed differently",
		 rdmig__msg_type_name(m.type));
}

/* The sequence number a sealed record gets: the next one, or a wrong one. */
static uint64_t seq_for(const struct sealed_run *r, uint8_t mode)
{
	uint64_t next = r->ep.seal.rx_seq;

	switch (mode & FZ_SEALED_SEQ_MASK) {
	case FZ_SEALED_SEQ_NEXT:
		return next;
	case FZ_SEALED_SEQ_SKIP:
		return next + 1;
	case FZ_SEALED_SEQ_REPLAY:
		return next - 1;
	default:
		return next + (1ull << 32);
	}
}

int rdmig_fuzz_sealed(const uint8_t *data, size_t size)
{
	static struct sealed_run r;
	struct fz_in in = { data, size };
	const uint8_t *p;
	uint8_t mode;
	size_t n;

	memset(&r, 0, sizeof(r));
	/* 0 is the control QP, i + 1 data QP i; one past the last as well. */
	r.chan = fz_u8(&in) % (RDMIG__MAX_QPS + 2);
	FZ_CHECK(!rdmig__seal_init(&r.ep.seal, fz_key_b, fz_key_a, r.chan), "seal_init");
	FZ_CHECK(!rdmig__seal_init(&r.peer, fz_key_a, fz_key_b, r.chan), "seal_init");
	while (in.left) {
		size_t len;
		uint8_t *buf;

		n = fz_record(&in, &mode, &p);
		n = RDMIG__MIN(n, (size_t)RDMIG__MSG_MAX);
		len = n + (mode & FZ_SEALED_SEAL ? RDMIG__TRAILER_LEN : 0);
		/* Exactly len bytes, so that ASan sees a read past the message. */
		buf = malloc(len ? len : 1);
		FZ_CHECK(buf != NULL, "no memory");
		memcpy(buf, p, n);
		if ((mode & FZ_SEALED_FIX_LEN) && n >= 12)
			fz_le(buf + 8, len, 4);
		if (mode & FZ_SEALED_SEAL) {
			fz_le(buf + n, seq_for(&r, mode), 8);
			FZ_CHECK(!fz_seal_tag(mode & FZ_SEALED_WRONG_KEY ? fz_key_b : fz_key_a,
					      r.chan + !!(mode & FZ_SEALED_WRONG_CHAN), buf, len,
					      buf + len - RDMIG__TAG_LEN),
				 "no tag");
		}
		check_open(&r, mode & FZ_SEALED_PLAIN ? &r.plain : &r.ep, buf, len);
		free(buf);
	}
	rdmig__seal_fini(&r.ep.seal);
	rdmig__seal_fini(&r.peer);
	FZ_CHECK(!rdmig__seal_on(&r.ep.seal) && fz_zero(&r.ep.seal, sizeof(r.ep.seal)),
		 "seal_fini left state");
	return 0;
}

#ifndef RDMIG_FUZZ_NO_MAIN
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	return rdmig_fuzz_sealed(data, size);
}
#endif

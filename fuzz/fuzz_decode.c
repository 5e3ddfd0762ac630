/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target: the decoders of common/proto.c on raw bytes, as a peer or
 * a connection request would deliver them: rdmig__msg_peek_len,
 * rdmig__msg_decode, and rdmig__msg_decode_ext with the seal's trailer.
 *
 * Beyond "no crash": peek_len is checked against its definition, decode
 * must not depend on what the struct held before (two decodes into
 * differently filled structs encode the same), and whatever decodes must
 * encode back to the very same bytes (a frozen HELLO to its first 48
 * payload bytes under our version): a codec asymmetry either way is a
 * field one side reads and the other does not write, or writes
 * differently.
 */
#include "fuzz.h"

static void check_peek(const uint8_t *data, size_t size)
{
	int got = rdmig__msg_peek_len(data, size), want;

	if (size < RDMIG__HDR_LEN || fz_get_le(data, 4) != RDMIG__PROTO_MAGIC) {
		want = -EBADMSG;
	} else {
		uint64_t len = fz_get_le(data + 8, 4);

		want = len > INT32_MAX ? INT32_MAX : (int)len;
	}
	FZ_CHECK(got == want, "peek_len gave %d, expected %d", got, want);
}

/* A decoded HELLO re-encodes to the frozen part of what arrived, under our version. */
static void check_hello(const uint8_t *data, size_t size, size_t trailer, const uint8_t *out, int n)
{
	FZ_CHECK((size_t)n == RDMIG__HDR_LEN + RDMIG__HELLO_LEN + trailer,
		 "HELLO re-encoded in %d bytes", n);
	FZ_CHECK(size >= (size_t)n, "a HELLO of %zu bytes decoded", size);
	FZ_CHECK(fz_same(out, data, 4) && fz_same(out + 6, data + 6, 2) &&
			 fz_same(out + 12, data + 12, 4),
		 "HELLO header re-encoded differently");
	FZ_CHECK(fz_get_le(out + 4, 2) == RDMIG__PROTO_VERSION &&
			 fz_get_le(out + 8, 4) == (size_t)n,
		 "HELLO re-encoded with a foreign version or length");
	FZ_CHECK(fz_same(out + RDMIG__HDR_LEN, data + RDMIG__HDR_LEN, RDMIG__HELLO_LEN),
		 "HELLO payload re-encoded differently");
}

static void round_trip(const uint8_t *data, size_t size, size_t trailer)
{
	/* Static: a struct rdmig__msg is about 8 KiB, the buffers 16 KiB. */
	static struct rdmig__msg m1, m2;
	static uint8_t out1[RDMIG__MSG_MAX], out2[RDMIG__MSG_MAX];
	char err[256], tiny[8];
	int r1, r2, r3, n1, n2;

	memset(&m1, 0, sizeof(m1));
	memset(&m2, 0xa5, sizeof(m2));
	err[0] = tiny[0] = '\0';
	r1 = rdmig__msg_decode_ext(data, size, trailer, &m1, err, sizeof(err));
	r2 = rdmig__msg_decode_ext(data, size, trailer, &m2, tiny, sizeof(tiny));
	FZ_CHECK(r1 == r2, "decode gave %d, then %d", r1, r2);
	if (!trailer) {
		static struct rdmig__msg m3;

		r3 = rdmig__msg_decode(data, size, &m3, NULL, 0);
		FZ_CHECK(r3 == r1, "decode %d, decode_ext with no trailer %d", r3, r1);
	}
	if (r1) {
		FZ_CHECK(r1 == -EBADMSG || r1 == -EPROTO, "decode returned %d", r1);
		FZ_CHECK(err[0] && fz_terminated(err, sizeof(err)) &&
				 fz_terminated(tiny, sizeof(tiny)),
			 "decode failed (%d) without a message", r1);
		return;
	}
	FZ_CHECK(m1.type == m2.type, "decoded types %u and %u", m1.type, m2.type);
	n1 = rdmig__msg_encode_ext(&m1, trailer, out1, sizeof(out1), err, sizeof(err));
	n2 = rdmig__msg_encode_ext(&m2, trailer, out2, sizeof(out2), NULL, 0);
	FZ_CHECK(n1 == n2, "the same bytes decoded into two messages: encoded in %d and %d bytes",
		 n1, n2);
	if (m1.type == RDMIG__MSG_HELLO && m1.hello.legacy) {
		FZ_CHECK(n1 == -EINVAL, "a legacy HELLO encoded (%d)", n1);
		return;
	}
	FZ_CHECK(n1 > 0, "a decoded %s does not encode: %s", rdmig__msg_type_name(m1.type), err);
	FZ_CHECK(fz_same(out1, out2, (size_t)n1 - trailer),
		 "decode depends on what the struct held before (%s)",
		 rdmig__msg_type_name(m1.type));
	if (m1.type == RDMIG__MSG_HELLO) {
		check_hello(data, size, trailer, out1, n1);
		return;
	}
	FZ_CHECK((size_t)n1 == size, "%s of %zu bytes re-encoded in %d",
		 rdmig__msg_type_name(m1.type), size, n1);
	FZ_CHECK(fz_same(out1, data, size - trailer), "%s re-encoded differently",
		 rdmig__msg_type_name(m1.type));
}

int rdmig_fuzz_decode(const uint8_t *data, size_t size)
{
	check_peek(data, size);
	if (size >= 8)
		FZ_CHECK(rdmig__msg_type_name((unsigned)fz_get_le(data + 6, 2)) != NULL, "no name");
	round_trip(data, size, 0);
	round_trip(data, size, RDMIG__TRAILER_LEN);
	return 0;
}

#ifndef RDMIG_FUZZ_NO_MAIN
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	return rdmig_fuzz_decode(data, size);
}
#endif

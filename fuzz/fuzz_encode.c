/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target: the encoder (common/proto.c) on an arbitrary struct
 * rdmig__msg. proto.c promises that nothing we send would be refused by
 * our own decoder: so whatever encodes must decode, re-encode to the same
 * bytes, fit exactly the length it claimed (into a buffer of exactly that
 * size, which ASan watches) and report -ENOSPC one byte short.
 *
 * Input: the bytes of a struct rdmig__msg (zeros after the input's end).
 * The type is taken modulo 16 so that most inputs name a real type; its
 * bit 15 asks for the seal's trailer.
 */
#include "fuzz.h"

int rdmig_fuzz_encode(const uint8_t *data, size_t size)
{
	static struct rdmig__msg m, d;
	static uint8_t out[RDMIG__MSG_MAX], again[RDMIG__MSG_MAX];
	size_t trailer, off = offsetof(struct rdmig__msg, hello.legacy);
	char err[256];
	uint8_t *exact;
	uint16_t raw;
	int n, ret;

	memset(&m, 0, sizeof(m));
	memcpy(&m, data, RDMIG__MIN(size, sizeof(m)));
	/* A bool holds 0 or 1: any other byte there would be our UB, not the codec's. */
	((uint8_t *)&m)[off] &= 1;
	raw = m.type;
	trailer = raw & 0x8000 ? RDMIG__TRAILER_LEN : 0;
	m.type = raw % 16;

	err[0] = '\0';
	n = rdmig__msg_encode_ext(&m, trailer, out, sizeof(out), err, sizeof(err));
	if (n < 0) {
		FZ_CHECK(n == -EINVAL || n == -ENOSPC, "encode returned %d", n);
		FZ_CHECK(err[0] && fz_terminated(err, sizeof(err)),
			 "encode failed without a message");
		return 0;
	}
	FZ_CHECK((size_t)n >= RDMIG__HDR_LEN + trailer && n <= RDMIG__MSG_MAX,
		 "encode claimed %d bytes", n);
	FZ_CHECK(fz_get_le(out + 8, 4) == (size_t)n, "the header's length is not the length");

	exact = malloc((size_t)n);
	FZ_CHECK(exact != NULL, "no memory");
	ret = rdmig__msg_encode_ext(&m, trailer, exact, (size_t)n, NULL, 0);
	FZ_CHECK(ret == n && fz_same(exact, out, (size_t)n - trailer),
		 "encode into an exact buffer gave %d", ret);
	ret = rdmig__msg_encode_ext(&m, trailer, exact, (size_t)n - 1, NULL, 0);
	FZ_CHECK(ret == -ENOSPC, "encode into %d bytes, one short, gave %d", n - 1, ret);
	free(exact);

	memset(&d, 0, sizeof(d));
	ret = rdmig__msg_decode_ext(out, (size_t)n, trailer, &d, err, sizeof(err));
	FZ_CHECK(ret == 0, "we would refuse the %s we sent: %s", rdmig__msg_type_name(m.type), err);
	FZ_CHECK(d.type == m.type, "sent %u, decoded %u", m.type, d.type);
	ret = rdmig__msg_encode_ext(&d, trailer, again, sizeof(again), err, sizeof(err));
	FZ_CHECK(ret == n && fz_same(again, out, (size_t)n - trailer),
		 "%s: encode, decode, encode gave other bytes", rdmig__msg_type_name(m.type));
	return 0;
}

#ifndef RDMIG_FUZZ_NO_MAIN
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	return rdmig_fuzz_encode(data, size);
}
#endif

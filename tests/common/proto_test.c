/* SPDX-License-Identifier: MIT */
/*
 * Tests of the wire codec (common/proto.c), protocol 4: every message type
 * survives encode + decode unchanged; the byte layouts proto.h documents
 * are pinned byte for byte; decode rejects each malformed field (found by
 * patching encoded bytes at the little-endian offsets proto.h documents),
 * every truncation, oversized and padded messages; the frozen HELLO is read
 * whatever version its header says (a legacy offer of versions 2 and 3, a
 * later version's longer one); encode refuses invalid messages and short
 * buffers; the _ext variants leave and skip a trailer for the seal. Error
 * texts must name the field at fault.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "common/proto.h"

#define assert_contains(s, sub)                                            \
	do {                                                               \
		const char *s_ = (s);                                      \
		if (!strstr(s_, (sub)))                                    \
			fail_msg("'%s' does not contain '%s'", s_, (sub)); \
	} while (0)

/* Header offsets. */
#define OFF_MAGIC   0
#define OFF_VERSION 4
#define OFF_TYPE    6
#define OFF_LEN	    8
#define OFF_FLAGS   12
/* Payload offsets, per type. */
#define CONNECT_KIND	16
#define CONNECT_INDEX	20
#define CONNECT_TOKEN	24
#define CONNECT_TAG	32
#define HELLO_VER_MIN	16
#define HELLO_VER_MAX	18
#define HELLO_CAPS	20
#define HELLO_AUTH	24
#define HELLO_RESERVED	28
#define HELLO_NONCE	32
#define HELLO_END	64 /* the frozen 48 bytes end here */
#define CHALL_VERSION	16
#define CHALL_RESERVED	18
#define CHALL_CAPS	20
#define CHALL_AUTH	24
#define CHALL_RESERVED2 28
#define CHALL_NONCE	32
#define CHALL_PROOF	64
#define CHALL_END	96
#define AUTH_PAGE	16
#define AUTH_NQPS	20
#define AUTH_NREGIONS	24
#define AUTH_FLAGS	28
#define AUTH_REG(i)	(32 + 16 * (size_t)(i))
#define AUTH_PROOF(n)	AUTH_REG(n) /* the proof follows the n regions */
#define AUTH_LEN(n)	(AUTH_PROOF(n) + RDMIG__KEY_LEN)
#define ACK_VERSION	16
#define ACK_RESERVED	18
#define ACK_PAGE	20
#define ACK_NQPS	24
#define ACK_NREGIONS	28
#define ACK_TOKEN	32
#define ACK_REG(i)	(40 + 32 * (size_t)(i))
#define ACK_REG_FLAGS	28 /* within a region entry */
#define PE_PASS		16
#define PE_QP		24
#define PE_RESERVED	28
#define PE_WRITES	32
#define PE_BYTES	40
#define PA_PASS		16
#define PA_BYTES	24
#define CPL_PASSES	16
#define ERR_CODE	16
#define ERR_LEN		20
#define ERR_TEXT	24
/* NOTICE and HASHES share their first 16 payload bytes. */
#define BLK_PASS	16
#define BLK_REGION	24
#define BLK_NPAGES	28
#define BLK_FIRST	32
#define NOTICE_PAGE(i)	(32 + 8 * (size_t)(i))
#define NOTICE_LEN(n)	NOTICE_PAGE(n)
#define HASHES_LZERO(w) (40 + 8 * (size_t)(w))
#define HASHES_NHASHES	72
#define HASHES_RESERVED 76
#define HASHES_HASH(i)	(80 + 16 * (size_t)(i))

#define ERROR_TEXT "destination refused: region 3 gpa 0x100000 ~ [layout mismatch]"

/*
 * The opaque byte strings of the samples: a run of consecutive values per
 * field, each run starting elsewhere, so that bytes of one field moved into
 * another show (and the layout tables below can spell them out).
 */
#define TAG_BYTE(i)	    (0xc0 + (i))
#define HELLO_NONCE_BYTE(i) (0x20 + (i))
#define CHALL_NONCE_BYTE(i) (0x40 + (i))
#define CHALL_PROOF_BYTE(i) (0x80 + (i))
#define AUTH_PROOF_BYTE(i)  (0xa0 + (i))

/* Messages are large (HELLO_ACK holds 256 regions): keep them off the stack. */
static struct rdmig__msg msg_in, msg_out;
static uint8_t buf[RDMIG__MSG_MAX + 256];
static uint8_t tmp[RDMIG__MSG_MAX + 256];
static char err[512];

static void put_le(uint8_t *p, size_t off, uint64_t v, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		p[off + i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get_le(const uint8_t *p, size_t off, unsigned n)
{
	uint64_t v = 0;

	for (unsigned i = 0; i < n; i++)
		v |= (uint64_t)p[off + i] << (8 * i);
	return v;
}

/* One valid sample of every message shape. */
enum sample {
	S_CONNECT_CTRL,
	S_CONNECT_DATA,
	S_HELLO,
	S_HELLO_NOAUTH,
	S_CHALLENGE,
	S_AUTH_1,
	S_AUTH_3,
	S_AUTH_MAX,
	S_ACK_1,
	S_ACK_3,
	S_ACK_MAX,
	S_PASS_END,
	S_PASS_ACK,
	S_COMPLETE,
	S_COMPLETE_ACK,
	S_ERROR,
	S_ERROR_EMPTY,
	S_PROGRESS,
	S_NOTICE,
	S_NOTICE_MAX,
	S_HASHES,
	S_HASHES_EMPTY,
	S_HASHES_MAX,
	S_COUNT,
};

static const size_t sample_len[S_COUNT] = {
	[S_CONNECT_CTRL] = 48,
	[S_CONNECT_DATA] = 48,
	[S_HELLO] = 64,
	[S_HELLO_NOAUTH] = 64,
	[S_CHALLENGE] = 96,
	[S_AUTH_1] = 16 + 16 + 16 + 32,
	[S_AUTH_3] = 16 + 16 + 3 * 16 + 32,
	[S_AUTH_MAX] = 16 + 16 + RDMIG__MAX_REGIONS * 16 + 32,
	[S_ACK_1] = 40 + 32,
	[S_ACK_3] = 40 + 3 * 32,
	[S_ACK_MAX] = 40 + RDMIG__MAX_REGIONS * 32,
	[S_PASS_END] = 48,
	[S_PASS_ACK] = 32,
	[S_COMPLETE] = 24,
	[S_COMPLETE_ACK] = 24,
	[S_ERROR] = 24 + sizeof(ERROR_TEXT) - 1,
	[S_ERROR_EMPTY] = 24,
	[S_PROGRESS] = 32,
	[S_NOTICE] = NOTICE_LEN(7),
	[S_NOTICE_MAX] = NOTICE_LEN(RDMIG__NOTICE_PAGES),
	[S_HASHES] = 80 + 5 * 16,
	[S_HASHES_EMPTY] = 80,
	[S_HASHES_MAX] = 80 + RDMIG__NOTICE_PAGES * 16,
};

static bool is_hello(enum sample s)
{
	return s == S_HELLO || s == S_HELLO_NOAUTH;
}

/*
 * Region i: gpa (i + 1) << 40, length (i + 2) pages; at the destination
 * address 0x7f0000000000 + i << 32. High bits everywhere, so a field cut to
 * 32 bits or swapped with its neighbour shows.
 */
static uint64_t reg_gpa(unsigned i)
{
	return (uint64_t)(i + 1) << 40;
}

static uint64_t reg_len(unsigned i, uint32_t ps)
{
	return (uint64_t)(i + 2) * ps;
}

static uint64_t reg_addr(unsigned i)
{
	return 0x7f0000000000ull + ((uint64_t)i << 32);
}

/*
 * Hash i of a HASHES: high bits in both halves, and lo != hi, so a swap or
 * a cut to 32 bits shows.
 */
static uint64_t hash_lo(unsigned i)
{
	return 0xc0ffee0000000000ull + i;
}

static uint64_t hash_hi(unsigned i)
{
	return 0x8000000000000000ull | ((uint64_t)i << 32) | 0xdeadbeefu;
}

/*
 * The source's offer: a range reaching past ours (decode leaves
 * negotiation to the handshake) whose two bytes differ, and an unknown
 * capability bit in the top byte next to a known one.
 */
static void make_hello(struct rdmig__msg *m)
{
	memset(m, 0, sizeof(*m));
	m->type = RDMIG__MSG_HELLO;
	m->hello.ver_min = RDMIG__PROTO_VERSION;
	m->hello.ver_max = 0x0306;
	m->hello.caps = 0x80000000u | RDMIG__CAP_NOTICES;
	m->hello.auth = RDMIG__AUTH_PSK;
	for (unsigned i = 0; i < RDMIG__NONCE_LEN; i++)
		m->hello.nonce[i] = HELLO_NONCE_BYTE(i);
}

static void make_challenge(struct rdmig__msg *m)
{
	memset(m, 0, sizeof(*m));
	m->type = RDMIG__MSG_CHALLENGE;
	m->challenge.version = RDMIG__PROTO_VERSION;
	m->challenge.caps = RDMIG__CAP_NOTICES;
	m->challenge.auth = RDMIG__AUTH_PSK;
	for (unsigned i = 0; i < RDMIG__NONCE_LEN; i++)
		m->challenge.nonce[i] = CHALL_NONCE_BYTE(i);
	for (unsigned i = 0; i < RDMIG__KEY_LEN; i++)
		m->challenge.proof[i] = CHALL_PROOF_BYTE(i);
}

static void make_auth(struct rdmig__msg *m, unsigned n, uint32_t ps)
{
	memset(m, 0, sizeof(*m));
	m->type = RDMIG__MSG_AUTH;
	m->auth.page_size = ps;
	m->auth.nqps = 3;
	m->auth.nregions = n;
	m->auth.flags = RDMIG__AUTH_NOTICES;
	for (unsigned i = 0; i < n; i++) {
		m->auth.regions[i].gpa = reg_gpa(i);
		m->auth.regions[i].len = reg_len(i, ps);
	}
	for (unsigned i = 0; i < RDMIG__KEY_LEN; i++)
		m->auth.proof[i] = AUTH_PROOF_BYTE(i);
}

static void make_ack(struct rdmig__msg *m, unsigned n, uint32_t ps)
{
	memset(m, 0, sizeof(*m));
	m->type = RDMIG__MSG_HELLO_ACK;
	m->hello_ack.version = RDMIG__PROTO_VERSION;
	m->hello_ack.page_size = ps;
	m->hello_ack.nqps = RDMIG__MAX_QPS;
	m->hello_ack.nregions = n;
	m->hello_ack.token = 0xfedcba9876543210ull;
	for (unsigned i = 0; i < n; i++) {
		m->hello_ack.regions[i].gpa = reg_gpa(i);
		m->hello_ack.regions[i].len = reg_len(i, ps);
		m->hello_ack.regions[i].addr = reg_addr(i);
		m->hello_ack.regions[i].rkey = 0x80000000u | (i * 0x01010101u);
		/* every other region known zero, starting with region 0 */
		m->hello_ack.regions[i].flags = i % 2 ? 0 : RDMIG__TARGET_ZERO;
	}
}

static void make_sample(enum sample s, struct rdmig__msg *m)
{
	memset(m, 0, sizeof(*m));
	switch (s) {
	case S_CONNECT_CTRL:
		m->type = RDMIG__MSG_CONNECT;
		m->connect.kind = RDMIG__CONN_CTRL;
		break;
	case S_CONNECT_DATA:
		m->type = RDMIG__MSG_CONNECT;
		m->connect.kind = RDMIG__CONN_DATA;
		m->connect.index = RDMIG__MAX_QPS - 1;
		m->connect.token = 0x8123456789abcdefull;
		for (unsigned i = 0; i < RDMIG__TAG_LEN; i++)
			m->connect.tag[i] = TAG_BYTE(i);
		break;
	case S_HELLO:
		make_hello(m);
		break;
	case S_HELLO_NOAUTH:
		/* the unauthenticated offer of exactly our version, no capability */
		make_hello(m);
		m->hello.ver_max = RDMIG__PROTO_VERSION;
		m->hello.caps = 0;
		m->hello.auth = RDMIG__AUTH_NONE;
		break;
	case S_CHALLENGE:
		make_challenge(m);
		break;
	case S_AUTH_1:
		make_auth(m, 1, 4096);
		break;
	case S_AUTH_3:
		make_auth(m, 3, 2u << 20);
		break;
	case S_AUTH_MAX:
		make_auth(m, RDMIG__MAX_REGIONS, 4096);
		break;
	case S_ACK_1:
		make_ack(m, 1, 4096);
		break;
	case S_ACK_3:
		make_ack(m, 3, 2u << 20);
		break;
	case S_ACK_MAX:
		make_ack(m, RDMIG__MAX_REGIONS, 4096);
		break;
	case S_PASS_END:
		m->type = RDMIG__MSG_PASS_END;
		m->pass_end.pass = 0x8000000000000001ull;
		m->pass_end.qp = RDMIG__MAX_QPS - 1;
		m->pass_end.writes = 0x00000001deadbeefull;
		m->pass_end.bytes = 0x0000ffffdeadbeefull;
		break;
	case S_PASS_ACK:
		m->type = RDMIG__MSG_PASS_ACK;
		m->pass_ack.pass = 0x8000000000000002ull;
		m->pass_ack.bytes = 0xfffffffffffff000ull;
		break;
	case S_PROGRESS:
		m->type = RDMIG__MSG_PROGRESS;
		m->progress.pass = 0x8000000000000004ull;
		m->progress.elapsed_ms = 0x00000003deadbeefull;
		break;
	case S_NOTICE:
		/* written 0, 63, 2^32, 2^63 - 1; zeroed 1, 0x1234, 2^63 - 2 */
		m->type = RDMIG__MSG_NOTICE;
		m->notice.pass = 0x8000000000000005ull;
		m->notice.region = RDMIG__MAX_REGIONS - 1;
		m->notice.npages = 7;
		m->notice.page[0] = 0;
		m->notice.page[1] = 1 | RDMIG__NOTICE_ZERO;
		m->notice.page[2] = 63;
		m->notice.page[3] = 0x1234 | RDMIG__NOTICE_ZERO;
		m->notice.page[4] = 0x100000000ull;
		m->notice.page[5] = 0x7ffffffffffffffeull | RDMIG__NOTICE_ZERO;
		m->notice.page[6] = 0x7fffffffffffffffull;
		break;
	case S_NOTICE_MAX:
		/* 256 pages, 3 apart, every third zeroed */
		m->type = RDMIG__MSG_NOTICE;
		m->notice.pass = 1;
		m->notice.region = 3;
		m->notice.npages = RDMIG__NOTICE_PAGES;
		for (unsigned i = 0; i < RDMIG__NOTICE_PAGES; i++)
			m->notice.page[i] = (0x0000123456789a00ull + 3 * i) |
					    (i % 3 == 2 ? RDMIG__NOTICE_ZERO : 0);
		break;
	case S_HASHES:
		/* 10 pages, 1 and 4 landed zero: room for 8 hashes, 5 sent */
		m->type = RDMIG__MSG_HASHES;
		m->hashes.pass = 0x8000000000000006ull;
		m->hashes.region = 7;
		m->hashes.npages = 10;
		m->hashes.first = 0x7ffffffffffffff0ull;
		m->hashes.landed_zero[0] = 0x12;
		m->hashes.nhashes = 5;
		for (unsigned i = 0; i < 5; i++) {
			m->hashes.hash[i].lo = hash_lo(i);
			m->hashes.hash[i].hi = hash_hi(i);
		}
		break;
	case S_HASHES_EMPTY:
		/* the one written page landed zero */
		m->type = RDMIG__MSG_HASHES;
		m->hashes.pass = 1;
		m->hashes.npages = 1;
		m->hashes.landed_zero[0] = 1;
		break;
	case S_HASHES_MAX:
		m->type = RDMIG__MSG_HASHES;
		m->hashes.pass = 0x8000000000000007ull;
		m->hashes.region = RDMIG__MAX_REGIONS - 1;
		m->hashes.npages = RDMIG__NOTICE_PAGES;
		m->hashes.first = 0x0000123456789a00ull;
		m->hashes.nhashes = RDMIG__NOTICE_PAGES;
		for (unsigned i = 0; i < RDMIG__NOTICE_PAGES; i++) {
			m->hashes.hash[i].lo = hash_lo(i);
			m->hashes.hash[i].hi = hash_hi(i);
		}
		break;
	case S_COMPLETE:
		m->type = RDMIG__MSG_COMPLETE;
		m->complete.passes = 0x8000000000000003ull;
		break;
	case S_COMPLETE_ACK:
		m->type = RDMIG__MSG_COMPLETE_ACK;
		m->complete.passes = 0x8000000000000004ull;
		break;
	case S_ERROR:
		m->type = RDMIG__MSG_ERROR;
		m->error.code = 4095;
		m->error.len = sizeof(ERROR_TEXT) - 1;
		memcpy(m->error.text, ERROR_TEXT, sizeof(ERROR_TEXT));
		break;
	case S_ERROR_EMPTY:
		m->type = RDMIG__MSG_ERROR;
		m->error.code = 1;
		break;
	case S_COUNT:
		break;
	}
}

/* Encodes sample s into b and returns its length (asserting it is the expected one). */
static size_t encode_sample(enum sample s, uint8_t *b)
{
	int len;

	make_sample(s, &msg_in);
	memset(b, 0, RDMIG__MSG_MAX + 256);
	len = rdmig__msg_encode(&msg_in, b, RDMIG__MSG_MAX + 256, err, sizeof(err));
	if (len < 0)
		fail_msg("encoding sample %d failed: %d %s", s, len, err);
	assert_int_equal(len, sample_len[s]);
	return (size_t)len;
}

static void assert_msg_equal(const struct rdmig__msg *a, const struct rdmig__msg *b)
{
	assert_int_equal(a->type, b->type);
	switch (a->type) {
	case RDMIG__MSG_CONNECT:
		assert_int_equal(a->connect.kind, b->connect.kind);
		assert_int_equal(a->connect.index, b->connect.index);
		assert_int_equal(a->connect.token, b->connect.token);
		assert_memory_equal(a->connect.tag, b->connect.tag, RDMIG__TAG_LEN);
		break;
	case RDMIG__MSG_HELLO:
		assert_int_equal(a->hello.ver_min, b->hello.ver_min);
		assert_int_equal(a->hello.ver_max, b->hello.ver_max);
		assert_int_equal(a->hello.caps, b->hello.caps);
		assert_int_equal(a->hello.auth, b->hello.auth);
		assert_memory_equal(a->hello.nonce, b->hello.nonce, RDMIG__NONCE_LEN);
		assert_int_equal(a->hello.legacy, b->hello.legacy);
		break;
	case RDMIG__MSG_CHALLENGE:
		assert_int_equal(a->challenge.version, b->challenge.version);
		assert_int_equal(a->challenge.caps, b->challenge.caps);
		assert_int_equal(a->challenge.auth, b->challenge.auth);
		assert_memory_equal(a->challenge.nonce, b->challenge.nonce, RDMIG__NONCE_LEN);
		assert_memory_equal(a->challenge.proof, b->challenge.proof, RDMIG__KEY_LEN);
		break;
	case RDMIG__MSG_AUTH:
		assert_int_equal(a->auth.page_size, b->auth.page_size);
		assert_int_equal(a->auth.nqps, b->auth.nqps);
		assert_int_equal(a->auth.nregions, b->auth.nregions);
		assert_int_equal(a->auth.flags, b->auth.flags);
		for (unsigned i = 0; i < a->auth.nregions; i++) {
			assert_int_equal(a->auth.regions[i].gpa, b->auth.regions[i].gpa);
			assert_int_equal(a->auth.regions[i].len, b->auth.regions[i].len);
		}
		assert_memory_equal(a->auth.proof, b->auth.proof, RDMIG__KEY_LEN);
		break;
	case RDMIG__MSG_HELLO_ACK:
		assert_int_equal(a->hello_ack.version, b->hello_ack.version);
		assert_int_equal(a->hello_ack.page_size, b->hello_ack.page_size);
		assert_int_equal(a->hello_ack.nqps, b->hello_ack.nqps);
		assert_int_equal(a->hello_ack.nregions, b->hello_ack.nregions);
		assert_int_equal(a->hello_ack.token, b->hello_ack.token);
		for (unsigned i = 0; i < a->hello_ack.nregions; i++) {
			const struct rdmig__wire_target *x = &a->hello_ack.regions[i];
			const struct rdmig__wire_target *y = &b->hello_ack.regions[i];

			assert_int_equal(x->gpa, y->gpa);
			assert_int_equal(x->len, y->len);
			assert_int_equal(x->addr, y->addr);
			assert_int_equal(x->rkey, y->rkey);
			assert_int_equal(x->flags, y->flags);
		}
		break;
	case RDMIG__MSG_NOTICE:
		assert_int_equal(a->notice.pass, b->notice.pass);
		assert_int_equal(a->notice.region, b->notice.region);
		assert_int_equal(a->notice.npages, b->notice.npages);
		for (unsigned i = 0; i < a->notice.npages; i++)
			assert_int_equal(a->notice.page[i], b->notice.page[i]);
		break;
	case RDMIG__MSG_HASHES:
		assert_int_equal(a->hashes.pass, b->hashes.pass);
		assert_int_equal(a->hashes.region, b->hashes.region);
		assert_int_equal(a->hashes.npages, b->hashes.npages);
		assert_int_equal(a->hashes.first, b->hashes.first);
		for (unsigned w = 0; w < RDMIG__NOTICE_WORDS; w++)
			assert_int_equal(a->hashes.landed_zero[w], b->hashes.landed_zero[w]);
		assert_int_equal(a->hashes.nhashes, b->hashes.nhashes);
		for (unsigned i = 0; i < a->hashes.nhashes; i++) {
			assert_int_equal(a->hashes.hash[i].lo, b->hashes.hash[i].lo);
			assert_int_equal(a->hashes.hash[i].hi, b->hashes.hash[i].hi);
		}
		break;
	case RDMIG__MSG_PASS_END:
		assert_int_equal(a->pass_end.pass, b->pass_end.pass);
		assert_int_equal(a->pass_end.qp, b->pass_end.qp);
		assert_int_equal(a->pass_end.writes, b->pass_end.writes);
		assert_int_equal(a->pass_end.bytes, b->pass_end.bytes);
		break;
	case RDMIG__MSG_PASS_ACK:
		assert_int_equal(a->pass_ack.pass, b->pass_ack.pass);
		assert_int_equal(a->pass_ack.bytes, b->pass_ack.bytes);
		break;
	case RDMIG__MSG_PROGRESS:
		assert_int_equal(a->progress.pass, b->progress.pass);
		assert_int_equal(a->progress.elapsed_ms, b->progress.elapsed_ms);
		break;
	case RDMIG__MSG_COMPLETE:
	case RDMIG__MSG_COMPLETE_ACK:
		assert_int_equal(a->complete.passes, b->complete.passes);
		break;
	case RDMIG__MSG_ERROR:
		assert_int_equal(a->error.code, b->error.code);
		assert_int_equal(a->error.len, b->error.len);
		assert_memory_equal(a->error.text, b->error.text, a->error.len);
		/* decode promises a NUL-terminated text */
		assert_int_equal(b->error.text[b->error.len], '\0');
		break;
	default:
		fail_msg("unexpected type %u", a->type);
	}
}

/*
 * Encodes sample s, checks the header bytes, decodes into a message full of
 * garbage (so a field decode forgets to set shows) and compares.
 */
static void round_trip(enum sample s)
{
	size_t len = encode_sample(s, buf);
	int ret;

	assert_int_equal(get_le(buf, OFF_MAGIC, 4), RDMIG__PROTO_MAGIC);
	assert_memory_equal(buf, "RDMG", 4);
	assert_int_equal(get_le(buf, OFF_VERSION, 2), RDMIG__PROTO_VERSION);
	assert_int_equal(get_le(buf, OFF_TYPE, 2), msg_in.type);
	assert_int_equal(get_le(buf, OFF_LEN, 4), len);
	assert_int_equal(get_le(buf, OFF_FLAGS, 4), 0);

	memset(&msg_out, 0xa5, sizeof(msg_out));
	err[0] = '\0';
	ret = rdmig__msg_decode(buf, len, &msg_out, err, sizeof(err));
	if (ret)
		fail_msg("decoding sample %d failed: %d %s", s, ret, err);
	assert_msg_equal(&msg_in, &msg_out);
}

/* --- round trips ---------------------------------------------------------- */

static void proto_connect_ctrl_round_trips(void **state)
{
	(void)state;
	round_trip(S_CONNECT_CTRL);
}

static void proto_connect_data_round_trips(void **state)
{
	(void)state;
	round_trip(S_CONNECT_DATA);
}

static void proto_hello_round_trips(void **state)
{
	(void)state;
	round_trip(S_HELLO);
	round_trip(S_HELLO_NOAUTH);
}

static void proto_challenge_round_trips(void **state)
{
	(void)state;
	round_trip(S_CHALLENGE);
}

static void proto_auth_one_region_round_trips(void **state)
{
	(void)state;
	round_trip(S_AUTH_1);
	round_trip(S_AUTH_3);
}

static void proto_auth_max_regions_round_trips(void **state)
{
	(void)state;
	round_trip(S_AUTH_MAX);
}

static void proto_hello_ack_one_region_round_trips(void **state)
{
	(void)state;
	round_trip(S_ACK_1);
	round_trip(S_ACK_3);
}

static void proto_hello_ack_max_regions_round_trips(void **state)
{
	(void)state;
	round_trip(S_ACK_MAX);
}

static void proto_pass_end_round_trips(void **state)
{
	(void)state;
	round_trip(S_PASS_END);
}

static void proto_pass_ack_round_trips(void **state)
{
	(void)state;
	round_trip(S_PASS_ACK);
}

static void proto_progress_round_trips(void **state)
{
	(void)state;
	round_trip(S_PROGRESS);
}

static void proto_notice_round_trips(void **state)
{
	(void)state;
	round_trip(S_NOTICE);
	round_trip(S_NOTICE_MAX);
}

static void proto_hashes_round_trips(void **state)
{
	(void)state;
	round_trip(S_HASHES);
	round_trip(S_HASHES_EMPTY);
	round_trip(S_HASHES_MAX);
}

/* Encodes msg_in (len bytes expected), decodes into garbage, compares. */
static void round_trip_msg(size_t want, int line)
{
	int ret = rdmig__msg_encode(&msg_in, buf, sizeof(buf), err, sizeof(err));

	if (ret != (int)want)
		fail_msg("line %d: encode returned %d, expected %zu (%s)", line, ret, want, err);
	memset(&msg_out, 0xa5, sizeof(msg_out));
	ret = rdmig__msg_decode(buf, want, &msg_out, err, sizeof(err));
	if (ret)
		fail_msg("line %d: decode failed: %d %s", line, ret, err);
	assert_msg_equal(&msg_in, &msg_out);
}

/*
 * AUTH flags and proof, HELLO_ACK region flags, the handshake's opaque
 * strings (nonces, proofs, tag): every value allowed survives.
 */
static void proto_flags_and_opaque_bytes_round_trip(void **state)
{
	(void)state;
	make_auth(&msg_in, 1, 4096);
	msg_in.auth.flags = 0;
	memset(msg_in.auth.proof, 0, RDMIG__KEY_LEN);
	round_trip_msg(AUTH_LEN(1), __LINE__);
	memset(msg_in.auth.proof, 0xff, RDMIG__KEY_LEN);
	msg_in.auth.flags = RDMIG__AUTH_NOTICES;
	round_trip_msg(AUTH_LEN(1), __LINE__);

	make_ack(&msg_in, 3, 4096);
	for (unsigned i = 0; i < 3; i++)
		msg_in.hello_ack.regions[i].flags = i == 1 ? RDMIG__TARGET_ZERO : 0;
	round_trip_msg(40 + 3 * 32, __LINE__);

	for (unsigned v = 0; v < 2; v++) {
		uint8_t fill = v ? 0xff : 0;

		make_hello(&msg_in);
		memset(msg_in.hello.nonce, fill, RDMIG__NONCE_LEN);
		round_trip_msg(HELLO_END, __LINE__);
		make_challenge(&msg_in);
		memset(msg_in.challenge.nonce, fill, RDMIG__NONCE_LEN);
		memset(msg_in.challenge.proof, fill, RDMIG__KEY_LEN);
		round_trip_msg(CHALL_END, __LINE__);
		make_sample(S_CONNECT_DATA, &msg_in);
		memset(msg_in.connect.tag, fill, RDMIG__TAG_LEN);
		round_trip_msg(48, __LINE__);
	}
}

/* Capabilities: every bit, known or not, travels as sent (HELLO and CHALLENGE). */
static void proto_unknown_capabilities_round_trip(void **state)
{
	static const uint32_t caps[] = { 0, RDMIG__CAP_NOTICES, 0xfffffffeu, 0xffffffffu };

	(void)state;
	for (unsigned i = 0; i < RDMIG__ARRAY_SIZE(caps); i++) {
		make_hello(&msg_in);
		msg_in.hello.caps = caps[i];
		round_trip_msg(HELLO_END, __LINE__);
		make_challenge(&msg_in);
		msg_in.challenge.caps = caps[i];
		round_trip_msg(CHALL_END, __LINE__);
	}
}

static void proto_complete_round_trips(void **state)
{
	(void)state;
	round_trip(S_COMPLETE);
}

static void proto_complete_ack_round_trips(void **state)
{
	(void)state;
	round_trip(S_COMPLETE_ACK);
}

static void proto_error_round_trips(void **state)
{
	(void)state;
	round_trip(S_ERROR);
	round_trip(S_ERROR_EMPTY);
}

/* Every printable ASCII byte, 0x20..0x7e, is allowed in ERROR text. */
static void proto_error_all_printable_text_round_trips(void **state)
{
	(void)state;
	memset(&msg_in, 0, sizeof(msg_in));
	msg_in.type = RDMIG__MSG_ERROR;
	msg_in.error.code = 22;
	for (unsigned c = 0x20; c <= 0x7e; c++)
		msg_in.error.text[msg_in.error.len++] = (char)c;
	assert_int_equal(rdmig__msg_encode(&msg_in, buf, sizeof(buf), err, sizeof(err)), 24 + 95);
	memset(&msg_out, 0xa5, sizeof(msg_out));
	assert_int_equal(rdmig__msg_decode(buf, 24 + 95, &msg_out, err, sizeof(err)), 0);
	assert_msg_equal(&msg_in, &msg_out);
}

/* The longest ERROR text, RDMIG__ERRMSG_MAX bytes, is accepted both ways. */
static void proto_error_max_text_round_trips(void **state)
{
	(void)state;
	memset(&msg_in, 0, sizeof(msg_in));
	msg_in.type = RDMIG__MSG_ERROR;
	msg_in.error.code = 5;
	msg_in.error.len = RDMIG__ERRMSG_MAX;
	memset(msg_in.error.text, 'x', RDMIG__ERRMSG_MAX);
	assert_int_equal(rdmig__msg_encode(&msg_in, buf, sizeof(buf), err, sizeof(err)),
			 24 + RDMIG__ERRMSG_MAX);
	memset(&msg_out, 0xa5, sizeof(msg_out));
	assert_int_equal(rdmig__msg_decode(buf, 24 + RDMIG__ERRMSG_MAX, &msg_out, err, sizeof(err)),
			 0);
	assert_msg_equal(&msg_in, &msg_out);
}

/* 1 GiB pages, the largest allowed, with 1 GiB aligned regions. */
static void proto_auth_gigabyte_pages_round_trips(void **state)
{
	(void)state;
	make_auth(&msg_in, 2, 1u << 30);
	assert_int_equal(rdmig__msg_encode(&msg_in, buf, sizeof(buf), err, sizeof(err)),
			 AUTH_LEN(2));
	assert_int_equal(rdmig__msg_decode(buf, AUTH_LEN(2), &msg_out, err, sizeof(err)), 0);
	assert_msg_equal(&msg_in, &msg_out);
}

/* --- byte layouts ------------------------------------------------------------ */

/*
 * The byte layout is the protocol: pin every handshake message and two
 * others byte for byte, so a change of field order or width cannot pass
 * as a round trip.
 */
static void proto_connect_data_encodes_documented_layout(void **state)
{
	static const uint8_t want[48] = {
		'R',  'D',  'M',  'G',	RDMIG__PROTO_VERSION,
		0,    1,    0, /* magic, version, type */
		48,   0,    0,	  0,	0,
		0,    0,    0,	     /* length, flags */
		2,    0,    0,	  0, /* kind */
		63,   0,    0,	  0, /* index */
		0xef, 0xcd, 0xab, 0x89, 0x67,
		0x45, 0x23, 0x81, /* token */
		0xc0, 0xc1, 0xc2, 0xc3, 0xc4,
		0xc5, 0xc6, 0xc7, 0xc8, 0xc9,
		0xca, 0xcb, 0xcc, 0xcd, 0xce,
		0xcf, /* tag */
	};

	(void)state;
	encode_sample(S_CONNECT_DATA, buf);
	assert_memory_equal(buf, want, sizeof(want));
	assert_int_equal(CONNECT_TAG + RDMIG__TAG_LEN, RDMIG__CONNECT_LEN);
}

/* A control connection's CONNECT: kind 1, and zeros where a data QP has its fields. */
static void proto_connect_ctrl_encodes_documented_layout(void **state)
{
	static const uint8_t want[48] = {
		'R', 'D', 'M', 'G', RDMIG__PROTO_VERSION, 0, 1, 0, 48, 0, 0, 0, 0, 0, 0, 0, 1,
	};

	(void)state;
	encode_sample(S_CONNECT_CTRL, buf);
	assert_memory_equal(buf, want, sizeof(want));
}

/* HELLO: the frozen 48 bytes that every version reads. */
static void proto_hello_encodes_documented_layout(void **state)
{
	static const uint8_t want[64] = {
		'R',  'D',  'M',  'G',	RDMIG__PROTO_VERSION,
		0,    2,    0, /* magic, version, type */
		64,   0,    0,	  0,	0,
		0,    0,    0,		/* length, flags */
		4,    0,    6,	  3,	/* ver_min, ver_max */
		1,    0,    0,	  0x80, /* caps */
		1,    0,    0,	  0,	/* auth: PSK */
		0,    0,    0,	  0,	/* reserved */
		0x20, 0x21, 0x22, 0x23, 0x24,
		0x25, 0x26, 0x27, 0x28, 0x29,
		0x2a, 0x2b, 0x2c, 0x2d, 0x2e,
		0x2f, 0x30, 0x31, 0x32, 0x33,
		0x34, 0x35, 0x36, 0x37, 0x38,
		0x39, 0x3a, 0x3b, 0x3c, 0x3d,
		0x3e, 0x3f, /* nonce */
	};

	(void)state;
	encode_sample(S_HELLO, buf);
	assert_memory_equal(buf, want, sizeof(want));
	assert_int_equal(HELLO_END - RDMIG__HDR_LEN, RDMIG__HELLO_LEN);
}

static void proto_challenge_encodes_documented_layout(void **state)
{
	static const uint8_t want[96] = {
		'R',  'D',  'M',  'G',	RDMIG__PROTO_VERSION,
		0,    12,   0, /* magic, version, type */
		96,   0,    0,	  0,	0,
		0,    0,    0,	     /* length, flags */
		4,    0,    0,	  0, /* version, reserved */
		1,    0,    0,	  0, /* caps */
		1,    0,    0,	  0, /* auth: PSK */
		0,    0,    0,	  0, /* reserved */
		0x40, 0x41, 0x42, 0x43, 0x44,
		0x45, 0x46, 0x47, 0x48, 0x49,
		0x4a, 0x4b, 0x4c, 0x4d, 0x4e,
		0x4f, 0x50, 0x51, 0x52, 0x53,
		0x54, 0x55, 0x56, 0x57, 0x58,
		0x59, 0x5a, 0x5b, 0x5c, 0x5d,
		0x5e, 0x5f, /* nonce */
		0x80, 0x81, 0x82, 0x83, 0x84,
		0x85, 0x86, 0x87, 0x88, 0x89,
		0x8a, 0x8b, 0x8c, 0x8d, 0x8e,
		0x8f, 0x90, 0x91, 0x92, 0x93,
		0x94, 0x95, 0x96, 0x97, 0x98,
		0x99, 0x9a, 0x9b, 0x9c, 0x9d,
		0x9e, 0x9f, /* proof */
	};

	(void)state;
	encode_sample(S_CHALLENGE, buf);
	assert_memory_equal(buf, want, sizeof(want));
}

/* AUTH: the fixed part, the regions, and the proof last (it covers what precedes it). */
static void proto_auth_encodes_documented_layout(void **state)
{
	static const uint8_t want[80] = {
		'R',  'D',  'M',  'G',	RDMIG__PROTO_VERSION,
		0,    13,   0, /* magic, version, type */
		80,   0,    0,	  0,	0,
		0,    0,    0,	     /* length, flags */
		0,    0x10, 0,	  0, /* page_size */
		3,    0,    0,	  0, /* nqps */
		1,    0,    0,	  0, /* nregions */
		1,    0,    0,	  0, /* flags: NOTICES */
		0,    0,    0,	  0,	0,
		1,    0,    0, /* region 0: gpa */
		0,    0x20, 0,	  0,	0,
		0,    0,    0, /* len */
		0xa0, 0xa1, 0xa2, 0xa3, 0xa4,
		0xa5, 0xa6, 0xa7, 0xa8, 0xa9,
		0xaa, 0xab, 0xac, 0xad, 0xae,
		0xaf, 0xb0, 0xb1, 0xb2, 0xb3,
		0xb4, 0xb5, 0xb6, 0xb7, 0xb8,
		0xb9, 0xba, 0xbb, 0xbc, 0xbd,
		0xbe, 0xbf, /* proof */
	};

	(void)state;
	encode_sample(S_AUTH_1, buf);
	assert_memory_equal(buf, want, sizeof(want));
	/* with the most regions, the proof still comes last */
	encode_sample(S_AUTH_MAX, buf);
	assert_int_equal(get_le(buf, AUTH_REG(RDMIG__MAX_REGIONS - 1), 8),
			 reg_gpa(RDMIG__MAX_REGIONS - 1));
	for (unsigned i = 0; i < RDMIG__KEY_LEN; i++)
		assert_int_equal(buf[AUTH_PROOF(RDMIG__MAX_REGIONS) + i], AUTH_PROOF_BYTE(i));
}

static void proto_hello_ack_encodes_documented_layout(void **state)
{
	static const uint8_t want[72] = {
		'R',  'D',  'M',  'G',	RDMIG__PROTO_VERSION,
		0,    3,    0, /* magic, version, type */
		72,   0,    0,	  0,	0,
		0,    0,    0,	     /* length, flags */
		4,    0,    0,	  0, /* version, reserved */
		0,    0x10, 0,	  0, /* page_size */
		64,   0,    0,	  0, /* nqps */
		1,    0,    0,	  0, /* nregions */
		0x10, 0x32, 0x54, 0x76, 0x98,
		0xba, 0xdc, 0xfe, /* token */
		0,    0,    0,	  0,	0,
		1,    0,    0, /* region 0: gpa */
		0,    0x20, 0,	  0,	0,
		0,    0,    0, /* len */
		0,    0,    0,	  0,	0,
		0x7f, 0,    0,		/* addr */
		0,    0,    0,	  0x80, /* rkey */
		1,    0,    0,	  0,	/* flags: known zero */
	};

	(void)state;
	encode_sample(S_ACK_1, buf);
	assert_memory_equal(buf, want, sizeof(want));
}

static void proto_pass_end_encodes_documented_layout(void **state)
{
	static const uint8_t want[48] = {
		'R',  'D',  'M',  'G',	RDMIG__PROTO_VERSION,
		0,    4,    0,	  48,	0,
		0,    0,    0,	  0,	0,
		0,    1,    0,	  0,	0,
		0,    0,    0,	  0x80, /* pass */
		63,   0,    0,	  0,	0,
		0,    0,    0, /* qp, reserved */
		0xef, 0xbe, 0xad, 0xde, 1,
		0,    0,    0, /* writes */
		0xef, 0xbe, 0xad, 0xde, 0xff,
		0xff, 0,    0, /* bytes */
	};

	(void)state;
	encode_sample(S_PASS_END, buf);
	assert_memory_equal(buf, want, sizeof(want));
}

static void proto_notice_encodes_documented_layout(void **state)
{
	static const uint8_t want[NOTICE_LEN(7)] = {
		'R',
		'D',
		'M',
		'G',
		RDMIG__PROTO_VERSION,
		0,
		10,
		0,
		NOTICE_LEN(7),
		0,
		0,
		0,
		0,
		0,
		0,
		0,
		5,
		0,
		0,
		0,
		0,
		0,
		0,
		0x80, /* pass */
		0xff,
		0,
		0,
		0,
		7,
		0,
		0,
		0, /* region, npages */
		0,
		0,
		0,
		0,
		0,
		0,
		0,
		0, /* page[0] */
		1,
		0,
		0,
		0,
		0,
		0,
		0,
		0x80, /* page[1], zeroed */
		63,
		0,
		0,
		0,
		0,
		0,
		0,
		0, /* page[2] */
		0x34,
		0x12,
		0,
		0,
		0,
		0,
		0,
		0x80, /* page[3], zeroed */
		0,
		0,
		0,
		0,
		1,
		0,
		0,
		0, /* page[4] */
		0xfe,
		0xff,
		0xff,
		0xff,
		0xff,
		0xff,
		0xff,
		0xff, /* page[5], zeroed */
		0xff,
		0xff,
		0xff,
		0xff,
		0xff,
		0xff,
		0xff,
		0x7f, /* page[6] */
	};

	(void)state;
	encode_sample(S_NOTICE, buf);
	assert_memory_equal(buf, want, sizeof(want));
	encode_sample(S_NOTICE_MAX, buf);
	assert_int_equal(get_le(buf, NOTICE_PAGE(255), 8), 0x0000123456789a00ull + 3 * 255);
}

static void proto_hashes_encodes_documented_layout(void **state)
{
	static const uint8_t want[HASHES_HASH(1)] = {
		'R',  'D',  'M',  'G',	RDMIG__PROTO_VERSION,
		0,    11,   0,	  160,	0,
		0,    0,    0,	  0,	0,
		0,    6,    0,	  0,	0,
		0,    0,    0,	  0x80, /* pass */
		7,    0,    0,	  0,	10,
		0,    0,    0, /* region, npages */
		0xf0, 0xff, 0xff, 0xff, 0xff,
		0xff, 0xff, 0x7f, /* first */
		0x12, 0,    0,	  0,	0,
		0,    0,    0, /* landed_zero[0] */
		0,    0,    0,	  0,	0,
		0,    0,    0, /* landed_zero[1] */
		0,    0,    0,	  0,	0,
		0,    0,    0, /* landed_zero[2] */
		0,    0,    0,	  0,	0,
		0,    0,    0, /* landed_zero[3] */
		5,    0,    0,	  0,	0,
		0,    0,    0, /* nhashes, reserved */
		0,    0,    0,	  0,	0,
		0xee, 0xff, 0xc0, /* hash[0].lo */
		0xef, 0xbe, 0xad, 0xde, 0,
		0,    0,    0x80, /* hash[0].hi */
	};

	(void)state;
	encode_sample(S_HASHES, buf);
	assert_memory_equal(buf, want, sizeof(want));
	for (unsigned i = 1; i < 5; i++) {
		assert_int_equal(get_le(buf, HASHES_HASH(i), 8), hash_lo(i));
		assert_int_equal(get_le(buf, HASHES_HASH(i) + 8, 8), hash_hi(i));
	}
	assert_int_equal(HASHES_HASH(5), sample_len[S_HASHES]);

	encode_sample(S_HASHES_MAX, buf);
	assert_int_equal(get_le(buf, HASHES_NHASHES, 4), RDMIG__NOTICE_PAGES);
	assert_int_equal(get_le(buf, HASHES_HASH(255), 8), hash_lo(255));
	assert_int_equal(get_le(buf, HASHES_HASH(255) + 8, 8), hash_hi(255));
}

/* The region arrays sit at the offsets the patch tests below rely on. */
static void proto_regions_encode_at_documented_offsets(void **state)
{
	(void)state;
	encode_sample(S_AUTH_3, buf);
	assert_int_equal(get_le(buf, AUTH_PAGE, 4), 2u << 20);
	assert_int_equal(get_le(buf, AUTH_NQPS, 4), 3);
	assert_int_equal(get_le(buf, AUTH_NREGIONS, 4), 3);
	assert_int_equal(get_le(buf, AUTH_FLAGS, 4), RDMIG__AUTH_NOTICES);
	assert_int_equal(get_le(buf, AUTH_REG(2), 8), reg_gpa(2));
	assert_int_equal(get_le(buf, AUTH_REG(2) + 8, 8), reg_len(2, 2u << 20));
	assert_int_equal(buf[AUTH_PROOF(3)], AUTH_PROOF_BYTE(0));
	assert_int_equal(buf[AUTH_LEN(3) - 1], AUTH_PROOF_BYTE(RDMIG__KEY_LEN - 1));
	assert_int_equal(AUTH_LEN(3), sample_len[S_AUTH_3]);

	encode_sample(S_ACK_3, buf);
	assert_int_equal(get_le(buf, ACK_VERSION, 2), RDMIG__PROTO_VERSION);
	assert_int_equal(get_le(buf, ACK_RESERVED, 2), 0);
	assert_int_equal(get_le(buf, ACK_NQPS, 4), RDMIG__MAX_QPS);
	assert_int_equal(get_le(buf, ACK_TOKEN, 8), 0xfedcba9876543210ull);
	assert_int_equal(get_le(buf, ACK_REG(2), 8), reg_gpa(2));
	assert_int_equal(get_le(buf, ACK_REG(2) + 8, 8), reg_len(2, 2u << 20));
	assert_int_equal(get_le(buf, ACK_REG(2) + 16, 8), reg_addr(2));
	assert_int_equal(get_le(buf, ACK_REG(2) + 24, 4), 0x80000000u | 0x02020202u);
	assert_int_equal(get_le(buf, ACK_REG(2) + ACK_REG_FLAGS, 4), RDMIG__TARGET_ZERO);
	assert_int_equal(get_le(buf, ACK_REG(1) + ACK_REG_FLAGS, 4), 0);
}

/* --- decode: field validation by patching ----------------------------------- */

/*
 * Decodes len bytes of b and checks the result is `code` with a message
 * containing `needle` (NULL: any message).
 */
static void check_decode(const uint8_t *b, size_t len, int code, const char *needle, int line)
{
	int ret;

	memset(err, 0, sizeof(err));
	ret = rdmig__msg_decode(b, len, &msg_out, err, sizeof(err));
	if (ret != code)
		fail_msg("line %d: decode returned %d, expected %d (%s)", line, ret, code, err);
	if (code && !err[0])
		fail_msg("line %d: decode failed without a message", line);
	if (needle && !strstr(err, needle))
		fail_msg("line %d: '%s' does not contain '%s'", line, err, needle);
}

/*
 * Encodes sample s, checks it decodes, patches n bytes at off with v, and
 * checks the decode result.
 */
static void check_patch(enum sample s, size_t off, uint64_t v, unsigned n, int code,
			const char *needle, int line)
{
	size_t len = encode_sample(s, buf);

	check_decode(buf, len, 0, NULL, line);
	put_le(buf, off, v, n);
	check_decode(buf, len, code, needle, line);
}

#define PATCH_FAILS(s, off, v, n, needle)  check_patch(s, off, v, n, -EBADMSG, needle, __LINE__)
#define PATCH_EPROTO(s, off, v, n, needle) check_patch(s, off, v, n, -EPROTO, needle, __LINE__)
#define PATCH_OK(s, off, v, n)		   check_patch(s, off, v, n, 0, NULL, __LINE__)

static void proto_decode_bad_magic_ebadmsg(void **state)
{
	(void)state;
	PATCH_FAILS(S_PASS_ACK, OFF_MAGIC, 0x474d4453, 4, "magic");
	PATCH_FAILS(S_PASS_ACK, OFF_MAGIC, 0x52444d47, 4, "magic"); /* big-endian "RDMG" */
	PATCH_FAILS(S_HELLO, OFF_MAGIC, 0, 4, "magic");
	PATCH_FAILS(S_AUTH_1, OFF_MAGIC + 3, 0x48, 1, "magic");
}

/*
 * Every message but HELLO is this version's own: a header saying another
 * version (an older peer's, a newer one's, nonsense) is refused as such,
 * before any of the payload is read.
 */
static void proto_decode_unknown_version_eproto(void **state)
{
	static const enum sample others[] = {
		S_CONNECT_CTRL, S_CONNECT_DATA, S_CHALLENGE, S_AUTH_1,	 S_ACK_1,  S_PASS_END,
		S_PASS_ACK,	S_COMPLETE,	S_ERROR,     S_PROGRESS, S_NOTICE, S_HASHES,
	};

	(void)state;
	for (unsigned i = 0; i < RDMIG__ARRAY_SIZE(others); i++) {
		PATCH_EPROTO(others[i], OFF_VERSION, 3, 2, "unsupported protocol version 3");
		PATCH_EPROTO(others[i], OFF_VERSION, 5, 2, "unsupported protocol version 5");
	}
	PATCH_EPROTO(S_PASS_ACK, OFF_VERSION, 0, 2, "version 0");
	PATCH_EPROTO(S_PASS_ACK, OFF_VERSION, 2, 2, "(we speak 4)");
	PATCH_EPROTO(S_CHALLENGE, OFF_VERSION, 0xffff, 2, "version 65535");
	PATCH_EPROTO(S_CONNECT_CTRL, OFF_VERSION, 0x0100 | RDMIG__PROTO_VERSION, 2, "version 260");
	/* even a payload that would be refused: the version is looked at first */
	encode_sample(S_AUTH_1, buf);
	put_le(buf, AUTH_PAGE, 4097, 4);
	put_le(buf, OFF_VERSION, 3, 2);
	check_decode(buf, sample_len[S_AUTH_1], -EPROTO, "version 3", __LINE__);
}

static void proto_decode_unknown_type_ebadmsg(void **state)
{
	(void)state;
	PATCH_FAILS(S_COMPLETE, OFF_TYPE, 0, 2, "type");
	PATCH_FAILS(S_COMPLETE, OFF_TYPE, RDMIG__MSG_TYPE_MAX + 1, 2, "type 19");
	PATCH_FAILS(S_COMPLETE, OFF_TYPE, 0xffff, 2, "type");
	PATCH_FAILS(S_COMPLETE, OFF_TYPE, 0x0100 | RDMIG__MSG_COMPLETE, 2, "type");
}

static void proto_decode_nonzero_flags_ebadmsg(void **state)
{
	(void)state;
	PATCH_FAILS(S_PASS_ACK, OFF_FLAGS, 1, 4, "flags");
	PATCH_FAILS(S_PASS_ACK, OFF_FLAGS, 0x80000000u, 4, "flags");
	PATCH_FAILS(S_ERROR, OFF_FLAGS + 3, 1, 1, "flags");
	/* HELLO's header is frozen too: its flags are 0 in every version */
	PATCH_FAILS(S_HELLO, OFF_FLAGS, 1, 4, "flags");
	PATCH_FAILS(S_CHALLENGE, OFF_FLAGS + 1, 1, 1, "flags");
}

static void proto_decode_length_mismatch_ebadmsg(void **state)
{
	(void)state;
	PATCH_FAILS(S_PASS_END, OFF_LEN, 48 + 1, 4, "48");
	PATCH_FAILS(S_PASS_END, OFF_LEN, 48 - 1, 4, "48");
	PATCH_FAILS(S_PASS_END, OFF_LEN, 0, 4, "48");
	PATCH_FAILS(S_AUTH_MAX, OFF_LEN, 0xffffffffu, 4, NULL);
	PATCH_FAILS(S_HELLO, OFF_LEN, HELLO_END + 1, 4, "header says 65 bytes, 64 arrived");
	PATCH_FAILS(S_CHALLENGE, OFF_LEN, CHALL_END - 1, 4, "header says 95 bytes, 96 arrived");
}

static void proto_decode_nonzero_reserved_ebadmsg(void **state)
{
	(void)state;
	PATCH_FAILS(S_ACK_1, ACK_RESERVED, 1, 2, "HELLO_ACK: reserved");
	PATCH_FAILS(S_ACK_1, ACK_RESERVED + 1, 0x80, 1, "HELLO_ACK: reserved");
	PATCH_FAILS(S_HELLO, HELLO_RESERVED, 1, 4, "HELLO: reserved");
	PATCH_FAILS(S_HELLO_NOAUTH, HELLO_RESERVED + 3, 0x80, 1, "HELLO: reserved");
	PATCH_FAILS(S_CHALLENGE, CHALL_RESERVED, 1, 2, "CHALLENGE: reserved");
	PATCH_FAILS(S_CHALLENGE, CHALL_RESERVED + 1, 0x80, 1, "CHALLENGE: reserved");
	PATCH_FAILS(S_CHALLENGE, CHALL_RESERVED2, 1, 4, "CHALLENGE: reserved");
	PATCH_FAILS(S_CHALLENGE, CHALL_RESERVED2 + 3, 0x80, 1, "CHALLENGE: reserved");
	PATCH_FAILS(S_HASHES, HASHES_RESERVED, 1, 4, "HASHES: reserved");
	PATCH_FAILS(S_HASHES_EMPTY, HASHES_RESERVED + 3, 0x80, 1, "HASHES: reserved");
	PATCH_FAILS(S_PASS_END, PE_RESERVED, 1, 4, "reserved");
	PATCH_FAILS(S_PASS_END, PE_RESERVED + 3, 0x80, 1, "reserved");
}

static void proto_decode_bad_page_size_ebadmsg(void **state)
{
	static const uint32_t bad[] = {
		0, 1, 2048, 4095, 4097, 6144, 12288, 1u << 31, 0xffffffffu,
	};

	(void)state;
	for (unsigned i = 0; i < RDMIG__ARRAY_SIZE(bad); i++) {
		PATCH_FAILS(S_AUTH_1, AUTH_PAGE, bad[i], 4, "page size");
		PATCH_FAILS(S_ACK_1, ACK_PAGE, bad[i], 4, "page size");
	}
}

/*
 * A page size that is not a power of two, with regions that are multiples
 * of it, so that only the power-of-two check can refuse it.
 */
static void proto_decode_page_size_not_power_of_two_ebadmsg(void **state)
{
	static const uint32_t bad[] = { 12288, 20480, 3u << 20, (1u << 30) - 4096 };

	(void)state;
	for (unsigned i = 0; i < RDMIG__ARRAY_SIZE(bad); i++) {
		uint64_t ps = bad[i];

		encode_sample(S_AUTH_1, buf);
		put_le(buf, AUTH_PAGE, ps, 4);
		put_le(buf, AUTH_REG(0), 1000 * ps, 8);
		put_le(buf, AUTH_REG(0) + 8, 3 * ps, 8);
		check_decode(buf, sample_len[S_AUTH_1], -EBADMSG, "power of two", __LINE__);

		encode_sample(S_ACK_1, buf);
		put_le(buf, ACK_PAGE, ps, 4);
		put_le(buf, ACK_REG(0), 1000 * ps, 8);
		put_le(buf, ACK_REG(0) + 8, 3 * ps, 8);
		put_le(buf, ACK_REG(0) + 16, 2000 * ps, 8);
		check_decode(buf, sample_len[S_ACK_1], -EBADMSG, "power of two", __LINE__);
	}
}

/* Powers of two outside [4096, 1 GiB], with regions aligned to them. */
static void proto_decode_page_size_out_of_range_ebadmsg(void **state)
{
	(void)state;
	/* 2048: every 4096-aligned region is 2048-aligned too */
	PATCH_FAILS(S_AUTH_1, AUTH_PAGE, 2048, 4, "page size");
	PATCH_FAILS(S_ACK_1, ACK_PAGE, 1024, 4, "page size");
	/* 2 GiB, with regions of 2 GiB */
	encode_sample(S_AUTH_1, buf);
	put_le(buf, AUTH_PAGE, 1u << 31, 4);
	put_le(buf, AUTH_REG(0), 1ull << 40, 8);
	put_le(buf, AUTH_REG(0) + 8, 1ull << 31, 8);
	check_decode(buf, sample_len[S_AUTH_1], -EBADMSG, "page size", __LINE__);
}

/* A smaller page size that still divides every region is fine. */
static void proto_decode_smaller_page_size_accepted(void **state)
{
	(void)state;
	PATCH_OK(S_AUTH_3, AUTH_PAGE, 4096, 4);
	PATCH_OK(S_ACK_3, ACK_PAGE, 8192, 4);
}

static void proto_decode_bad_nqps_ebadmsg(void **state)
{
	(void)state;
	PATCH_FAILS(S_AUTH_1, AUTH_NQPS, 0, 4, "AUTH: 0 data QPs");
	PATCH_FAILS(S_AUTH_1, AUTH_NQPS, RDMIG__MAX_QPS + 1, 4,
		    "AUTH: 65 data QPs, not in [1, 64]");
	PATCH_FAILS(S_AUTH_1, AUTH_NQPS, 0x80000001u, 4, "QPs");
	PATCH_FAILS(S_ACK_1, ACK_NQPS, 0, 4, "HELLO_ACK: 0 data QPs");
	PATCH_FAILS(S_ACK_1, ACK_NQPS, RDMIG__MAX_QPS + 1, 4, "QPs");
	PATCH_OK(S_AUTH_1, AUTH_NQPS, RDMIG__MAX_QPS, 4);
	PATCH_OK(S_AUTH_1, AUTH_NQPS, 1, 4);
	PATCH_OK(S_ACK_1, ACK_NQPS, 1, 4);
}

/* nregions 0: an AUTH of its fixed part and proof, a HELLO_ACK of its fixed part. */
static void proto_decode_zero_regions_ebadmsg(void **state)
{
	(void)state;
	encode_sample(S_AUTH_1, buf);
	put_le(buf, AUTH_NREGIONS, 0, 4);
	memmove(buf + AUTH_PROOF(0), buf + AUTH_PROOF(1), RDMIG__KEY_LEN);
	put_le(buf, OFF_LEN, AUTH_LEN(0), 4);
	check_decode(buf, AUTH_LEN(0), -EBADMSG, "AUTH: 0 regions", __LINE__);

	encode_sample(S_ACK_1, buf);
	put_le(buf, ACK_NREGIONS, 0, 4);
	put_le(buf, OFF_LEN, ACK_REG(0), 4);
	check_decode(buf, ACK_REG(0), -EBADMSG, "regions", __LINE__);
}

/*
 * nregions RDMIG__MAX_REGIONS + 1, with that many well-formed regions
 * present (and AUTH's proof after them), so only the count is wrong.
 */
static void proto_decode_too_many_regions_ebadmsg(void **state)
{
	const unsigned n = RDMIG__MAX_REGIONS + 1;
	size_t len;

	(void)state;
	encode_sample(S_AUTH_MAX, buf);
	put_le(buf, AUTH_REG(n - 1), reg_gpa(n - 1), 8);
	put_le(buf, AUTH_REG(n - 1) + 8, reg_len(n - 1, 4096), 8);
	memset(buf + AUTH_PROOF(n), 0x77, RDMIG__KEY_LEN);
	put_le(buf, AUTH_NREGIONS, n, 4);
	put_le(buf, OFF_LEN, AUTH_LEN(n), 4);
	check_decode(buf, AUTH_LEN(n), -EBADMSG, "AUTH: 257 regions, not in [1, 256]", __LINE__);

	len = encode_sample(S_ACK_MAX, buf);
	put_le(buf, len, reg_gpa(n - 1), 8);
	put_le(buf, len + 8, reg_len(n - 1, 4096), 8);
	put_le(buf, len + 16, reg_addr(n - 1), 8);
	put_le(buf, ACK_NREGIONS, n, 4);
	put_le(buf, OFF_LEN, len + 32, 4);
	check_decode(buf, len + 32, -EBADMSG, "regions", __LINE__);

	/* A huge count must not be multiplied into a small payload size. */
	PATCH_FAILS(S_AUTH_1, AUTH_NREGIONS, 0x10000001u, 4, "regions");
	PATCH_FAILS(S_ACK_1, ACK_NREGIONS, 0x08000001u, 4, "regions");
}

/*
 * AUTH holds exactly nregions regions and then the 32-byte proof: a count
 * one off, or the proof left out, is refused by the payload's length.
 */
static void proto_decode_auth_count_mismatch_ebadmsg(void **state)
{
	(void)state;
	PATCH_FAILS(S_AUTH_3, AUTH_NREGIONS, 2, 4, "AUTH: payload of 96 bytes, expected 80");
	PATCH_FAILS(S_AUTH_3, AUTH_NREGIONS, 4, 4, "AUTH: payload of 96 bytes, expected 112");
	PATCH_FAILS(S_AUTH_MAX, AUTH_NREGIONS, RDMIG__MAX_REGIONS - 1, 4, "payload");
	/* the regions without the proof */
	encode_sample(S_AUTH_3, buf);
	put_le(buf, OFF_LEN, AUTH_PROOF(3), 4);
	check_decode(buf, AUTH_PROOF(3), -EBADMSG, "AUTH: payload of 64 bytes, expected 96",
		     __LINE__);
	/* shorter than the fixed part and a proof: nothing is read */
	encode_sample(S_AUTH_1, buf);
	put_le(buf, OFF_LEN, AUTH_PROOF(1), 4);
	check_decode(buf, AUTH_PROOF(1), -EBADMSG, "AUTH: payload of 32 bytes, expected 48",
		     __LINE__);
}

static void proto_decode_zero_region_length_ebadmsg(void **state)
{
	(void)state;
	PATCH_FAILS(S_AUTH_1, AUTH_REG(0) + 8, 0, 8, "length is 0");
	PATCH_FAILS(S_AUTH_MAX, AUTH_REG(200) + 8, 0, 8, "region 200");
	PATCH_FAILS(S_ACK_3, ACK_REG(1) + 8, 0, 8, "length is 0");
}

static void proto_decode_misaligned_region_ebadmsg(void **state)
{
	(void)state;
	/* AUTH: gpa, len */
	PATCH_FAILS(S_AUTH_1, AUTH_REG(0), reg_gpa(0) + 0x800, 8, "aligned");
	PATCH_FAILS(S_AUTH_1, AUTH_REG(0) + 8, 4096 + 1, 8, "aligned");
	PATCH_FAILS(S_AUTH_3, AUTH_REG(1), reg_gpa(1) + 4096, 8, "aligned"); /* 2M pages */
	PATCH_FAILS(S_AUTH_3, AUTH_REG(2) + 8, (1u << 20), 8, "aligned");
	/* HELLO_ACK: gpa, len, addr */
	PATCH_FAILS(S_ACK_1, ACK_REG(0), reg_gpa(0) + 512, 8, "aligned");
	PATCH_FAILS(S_ACK_1, ACK_REG(0) + 8, 3 * 4096 - 8, 8, "aligned");
	PATCH_FAILS(S_ACK_1, ACK_REG(0) + 16, reg_addr(0) + 8, 8, "addr");
	PATCH_FAILS(S_ACK_3, ACK_REG(2) + 16, reg_addr(2) + 4096, 8, "aligned");
}

static void proto_decode_region_wraparound_ebadmsg(void **state)
{
	(void)state;
	encode_sample(S_AUTH_1, buf);
	put_le(buf, AUTH_REG(0), 0xffffffffffffe000ull, 8);
	put_le(buf, AUTH_REG(0) + 8, 0x4000, 8);
	check_decode(buf, sample_len[S_AUTH_1], -EBADMSG, "wraps", __LINE__);

	encode_sample(S_ACK_1, buf);
	put_le(buf, ACK_REG(0), 0xffffffffffffe000ull, 8);
	put_le(buf, ACK_REG(0) + 8, 0x4000, 8);
	check_decode(buf, sample_len[S_ACK_1], -EBADMSG, "wraps", __LINE__);

	/* gpa fine, destination address wraps */
	encode_sample(S_ACK_1, buf);
	put_le(buf, ACK_REG(0) + 16, 0xfffffffffffff000ull, 8);
	check_decode(buf, sample_len[S_ACK_1], -EBADMSG, "wraps", __LINE__);
}

static void proto_decode_overlapping_regions_ebadmsg(void **state)
{
	const uint32_t ps = 2u << 20;

	(void)state;
	/* region 1 starts inside region 0 */
	PATCH_FAILS(S_AUTH_3, AUTH_REG(1), reg_gpa(0) + ps, 8, "overlap");
	/* region 2 (not a neighbour in the array) starts where region 0 does */
	PATCH_FAILS(S_AUTH_3, AUTH_REG(2), reg_gpa(0), 8, "overlap");
	/* region 1 ends one page inside region 0 */
	PATCH_FAILS(S_AUTH_3, AUTH_REG(1), reg_gpa(0) - reg_len(1, ps) + ps, 8, "guest-physical");
	/* region 0 swallows region 2 */
	PATCH_FAILS(S_AUTH_3, AUTH_REG(0) + 8, reg_gpa(2) + ps - reg_gpa(0), 8, "overlap");
	/* the first and the last of 256 */
	PATCH_FAILS(S_AUTH_MAX, AUTH_REG(RDMIG__MAX_REGIONS - 1), reg_gpa(0) + 4096, 8,
		    "regions 0 and 255 overlap");

	PATCH_FAILS(S_ACK_3, ACK_REG(1), reg_gpa(0) + ps, 8, "guest-physical");
	PATCH_FAILS(S_ACK_MAX, ACK_REG(7), reg_gpa(200), 8, "guest-physical");
}

/* HELLO_ACK: distinct gpas but the same destination memory twice. */
static void proto_decode_overlapping_destination_addr_ebadmsg(void **state)
{
	const uint32_t ps = 2u << 20;

	(void)state;
	PATCH_FAILS(S_ACK_3, ACK_REG(1) + 16, reg_addr(0) + ps, 8, "destination address");
	PATCH_FAILS(S_ACK_3, ACK_REG(2) + 16, reg_addr(0), 8, "destination address");
	PATCH_FAILS(S_ACK_MAX, ACK_REG(RDMIG__MAX_REGIONS - 1) + 16, reg_addr(3), 8,
		    "destination address");
}

/* Regions that touch but do not overlap are fine, in either space. */
static void proto_decode_adjacent_regions_accepted(void **state)
{
	const uint32_t ps = 2u << 20;

	(void)state;
	/* region 1 ends exactly where region 0 starts */
	PATCH_OK(S_AUTH_3, AUTH_REG(1), reg_gpa(0) - reg_len(1, ps), 8);
	/* region 1 starts exactly where region 0 ends */
	PATCH_OK(S_AUTH_3, AUTH_REG(1), reg_gpa(0) + reg_len(0, ps), 8);
	PATCH_OK(S_ACK_3, ACK_REG(1), reg_gpa(0) + reg_len(0, ps), 8);
	PATCH_OK(S_ACK_3, ACK_REG(1) + 16, reg_addr(0) + reg_len(0, ps), 8);
	PATCH_OK(S_ACK_3, ACK_REG(0) + 16, reg_addr(1) - reg_len(0, ps), 8);
	/* the same gpa in HELLO_ACK of one region as the addr of another is fine */
	PATCH_OK(S_ACK_3, ACK_REG(1) + 16, reg_gpa(0), 8);
}

static void proto_decode_zero_token_ebadmsg(void **state)
{
	(void)state;
	PATCH_FAILS(S_ACK_1, ACK_TOKEN, 0, 8, "token");
	PATCH_FAILS(S_CONNECT_DATA, CONNECT_TOKEN, 0, 8, "token");
}

static void proto_decode_connect_bad_fields_ebadmsg(void **state)
{
	(void)state;
	PATCH_FAILS(S_CONNECT_CTRL, CONNECT_KIND, 0, 4, "kind");
	PATCH_FAILS(S_CONNECT_CTRL, CONNECT_KIND, 3, 4, "kind");
	/* a control connection carries neither an index nor a token */
	PATCH_FAILS(S_CONNECT_CTRL, CONNECT_INDEX, 1, 4, "control");
	PATCH_FAILS(S_CONNECT_CTRL, CONNECT_TOKEN + 7, 1, 1, "control");
	PATCH_FAILS(S_CONNECT_DATA, CONNECT_INDEX, RDMIG__MAX_QPS, 4, "index");
	PATCH_OK(S_CONNECT_DATA, CONNECT_INDEX, 0, 4);
}

/* CONNECT is 16 bytes and the tag: the 16-byte CONNECT of protocol 3 is refused. */
static void proto_decode_connect_without_tag_ebadmsg(void **state)
{
	(void)state;
	encode_sample(S_CONNECT_DATA, buf);
	put_le(buf, OFF_LEN, CONNECT_TAG, 4);
	check_decode(buf, CONNECT_TAG, -EBADMSG, "CONNECT: payload of 16 bytes, expected 32",
		     __LINE__);
	/* the tag is the keys' business, not decode's: any bytes are a tag */
	PATCH_OK(S_CONNECT_DATA, CONNECT_TAG, 0, 8);
	PATCH_OK(S_CONNECT_DATA, CONNECT_TAG + 8, ~0ull, 8);
	assert_int_equal(msg_out.connect.tag[15], 0xff);
	assert_int_equal(msg_out.connect.tag[0], TAG_BYTE(0));
}

static void proto_decode_unsupported_ack_version_eproto(void **state)
{
	(void)state;
	/* exactly the version the CHALLENGE settled: this library speaks only 4 */
	PATCH_EPROTO(S_ACK_1, ACK_VERSION, RDMIG__PROTO_VERSION + 1, 2,
		     "HELLO_ACK: unsupported version 5");
	PATCH_EPROTO(S_ACK_1, ACK_VERSION, RDMIG__PROTO_VERSION - 1, 2,
		     "HELLO_ACK: unsupported version 3");
	PATCH_EPROTO(S_ACK_1, ACK_VERSION, 1, 2, "version 1");
	PATCH_EPROTO(S_ACK_1, ACK_VERSION, 0, 2, "version 0");
	PATCH_EPROTO(S_ACK_3, ACK_VERSION + 1, 1, 1, "version 260");
}

static void proto_decode_zero_pass_ebadmsg(void **state)
{
	(void)state;
	PATCH_FAILS(S_PASS_END, PE_PASS, 0, 8, "pass 0");
	PATCH_FAILS(S_PASS_ACK, PA_PASS, 0, 8, "pass 0");
	PATCH_OK(S_PASS_ACK, PA_PASS, 1, 8);
	PATCH_FAILS(S_PROGRESS, PA_PASS, 0, 8, "pass 0");
	PATCH_OK(S_PROGRESS, PA_PASS, 1, 8);
	PATCH_FAILS(S_NOTICE, BLK_PASS, 0, 8, "NOTICE: pass 0");
	PATCH_OK(S_NOTICE, BLK_PASS, 1, 8);
	PATCH_FAILS(S_HASHES, BLK_PASS, 0, 8, "HASHES: pass 0");
	PATCH_FAILS(S_HASHES_EMPTY, BLK_PASS, 0, 8, "HASHES: pass 0");
	PATCH_OK(S_HASHES, BLK_PASS, 1, 8);
}

static void proto_decode_pass_end_bad_qp_ebadmsg(void **state)
{
	(void)state;
	PATCH_FAILS(S_PASS_END, PE_QP, RDMIG__MAX_QPS, 4, "QP");
	PATCH_FAILS(S_PASS_END, PE_QP, 0xffffffffu, 4, "QP");
	PATCH_OK(S_PASS_END, PE_QP, 0, 4);
}

/* Every WRITE carries at least one byte. */
static void proto_decode_pass_end_more_writes_than_bytes_ebadmsg(void **state)
{
	(void)state;
	PATCH_FAILS(S_PASS_END, PE_WRITES, 0x0000ffffdeadbeefull + 1, 8, "writes");
	PATCH_FAILS(S_PASS_END, PE_BYTES, 0, 8, "writes");
	PATCH_OK(S_PASS_END, PE_WRITES, 0x0000ffffdeadbeefull, 8);
	/* an empty pass (nothing dirty on this QP) is legitimate */
	encode_sample(S_PASS_END, buf);
	put_le(buf, PE_WRITES, 0, 8);
	put_le(buf, PE_BYTES, 0, 8);
	check_decode(buf, 48, 0, NULL, __LINE__);
}

/* --- HELLO: the offer, frozen -------------------------------------------------- */

static void proto_decode_bad_hello_version_range_ebadmsg(void **state)
{
	(void)state;
	PATCH_FAILS(S_HELLO, HELLO_VER_MIN, 0, 2, "HELLO: bad version range [0, 774]");
	PATCH_FAILS(S_HELLO_NOAUTH, HELLO_VER_MIN, 5, 2, "HELLO: bad version range [5, 4]");
	PATCH_FAILS(S_HELLO_NOAUTH, HELLO_VER_MAX, 0, 2, "bad version range [4, 0]");
	/* a range reaching past ours, or below, is the peer's to offer: negotiation is not decode's */
	PATCH_OK(S_HELLO_NOAUTH, HELLO_VER_MAX, 0xffff, 2);
	PATCH_OK(S_HELLO, HELLO_VER_MIN, 1, 2);
	PATCH_OK(S_HELLO, HELLO_VER_MIN, 9, 2); /* [9, 774]: nothing we speak */
	PATCH_OK(S_HELLO, HELLO_VER_MAX, 4, 2);
}

static void proto_decode_hello_unknown_auth_mode_ebadmsg(void **state)
{
	(void)state;
	PATCH_FAILS(S_HELLO, HELLO_AUTH, 2, 4, "HELLO: unknown auth mode 2");
	PATCH_FAILS(S_HELLO_NOAUTH, HELLO_AUTH, 0xffffffffu, 4,
		    "HELLO: unknown auth mode 4294967295");
	PATCH_FAILS(S_HELLO, HELLO_AUTH + 3, 0x80, 1, "HELLO: unknown auth mode");
	PATCH_OK(S_HELLO, HELLO_AUTH, RDMIG__AUTH_NONE, 4);
	PATCH_OK(S_HELLO_NOAUTH, HELLO_AUTH, RDMIG__AUTH_PSK, 4);
	assert_int_equal(msg_out.hello.auth, RDMIG__AUTH_PSK);
}

/* Capabilities a side does not know are ignored (by the handshake), never refused. */
static void proto_decode_hello_unknown_capabilities_accepted(void **state)
{
	(void)state;
	PATCH_OK(S_HELLO, HELLO_CAPS, 0xffffffffu, 4);
	assert_int_equal(msg_out.hello.caps, 0xffffffffu); /* as sent: not decode's to mask */
	PATCH_OK(S_HELLO_NOAUTH, HELLO_CAPS, 0x40000000u, 4);
	assert_int_equal(msg_out.hello.caps, 0x40000000u);
	PATCH_OK(S_CHALLENGE, CHALL_CAPS, 0xfffffffeu, 4);
	assert_int_equal(msg_out.challenge.caps, 0xfffffffeu);
}

/* Nonces and proofs are opaque: any bytes, zeros included, are the peer's to choose. */
static void proto_decode_opaque_bytes_accepted(void **state)
{
	(void)state;
	PATCH_OK(S_HELLO, HELLO_NONCE, 0, 8);
	PATCH_OK(S_HELLO, HELLO_END - 8, ~0ull, 8);
	PATCH_OK(S_CHALLENGE, CHALL_NONCE, 0, 8);
	PATCH_OK(S_CHALLENGE, CHALL_PROOF + 24, ~0ull, 8);
	encode_sample(S_AUTH_3, buf);
	memset(buf + AUTH_PROOF(3), 0, RDMIG__KEY_LEN);
	check_decode(buf, sample_len[S_AUTH_3], 0, NULL, __LINE__);
	memset(buf + AUTH_PROOF(3), 0xff, RDMIG__KEY_LEN);
	check_decode(buf, sample_len[S_AUTH_3], 0, NULL, __LINE__);
	for (unsigned i = 0; i < RDMIG__KEY_LEN; i++)
		assert_int_equal(msg_out.auth.proof[i], 0xff);
}

/*
 * Builds the HELLO protocol 2 or 3 sent (header version `version`): ver_min,
 * ver_max, then page size, QPs, regions, flags, a reserved word, the
 * 192-byte secret and one region. Returns its length.
 */
static size_t legacy_hello_build(uint16_t version, uint16_t ver_min, uint16_t ver_max)
{
	const size_t len = 16 + 24 + RDMIG__SCAN_SECRET_SIZE + 16;

	memset(buf, 0, sizeof(buf));
	put_le(buf, OFF_MAGIC, RDMIG__PROTO_MAGIC, 4);
	put_le(buf, OFF_VERSION, version, 2);
	put_le(buf, OFF_TYPE, RDMIG__MSG_HELLO, 2);
	put_le(buf, OFF_LEN, len, 4);
	put_le(buf, 16, ver_min, 2);
	put_le(buf, 18, ver_max, 2);
	/*
	 * Where protocol 4 has caps, auth and the reserved word: page size
	 * 4096, 3 QPs (auth mode 3, were it read) and 1 region (reserved).
	 */
	put_le(buf, 20, 4096, 4);
	put_le(buf, 24, 3, 4);
	put_le(buf, 28, 1, 4);
	put_le(buf, 32, 1, 4); /* the NOTICES flag */
	memset(buf + 40, 0x5c, RDMIG__SCAN_SECRET_SIZE);
	put_le(buf, 40 + RDMIG__SCAN_SECRET_SIZE, reg_gpa(0), 8);
	put_le(buf, 48 + RDMIG__SCAN_SECRET_SIZE, reg_len(0, 4096), 8);
	return len;
}

/*
 * A HELLO whose header says version 2 or 3 is an older peer's offer: only
 * its range is read (their first 4 payload bytes too), so the refusal can
 * name it. Nothing else of it is looked at.
 */
static void proto_decode_legacy_hello_reads_only_the_range(void **state)
{
	static const uint16_t range[][3] = { { 3, 2, 3 }, { 3, 3, 3 }, { 2, 2, 2 }, { 2, 2, 3 } };

	(void)state;
	for (unsigned i = 0; i < RDMIG__ARRAY_SIZE(range); i++) {
		size_t len = legacy_hello_build(range[i][0], range[i][1], range[i][2]);

		memset(&msg_out, 0xa5, sizeof(msg_out));
		check_decode(buf, len, 0, NULL, __LINE__);
		assert_int_equal(msg_out.type, RDMIG__MSG_HELLO);
		assert_true(msg_out.hello.legacy);
		assert_int_equal(msg_out.hello.ver_min, range[i][1]);
		assert_int_equal(msg_out.hello.ver_max, range[i][2]);
		/* what a protocol 4 HELLO has there was not read: cleared, not garbage */
		assert_int_equal(msg_out.hello.caps, 0);
		assert_int_equal(msg_out.hello.auth, 0);
		for (unsigned j = 0; j < RDMIG__NONCE_LEN; j++)
			assert_int_equal(msg_out.hello.nonce[j], 0);
	}

	/* the range alone is enough; less is not */
	legacy_hello_build(3, 2, 3);
	put_le(buf, OFF_LEN, 20, 4);
	check_decode(buf, 20, 0, NULL, __LINE__);
	assert_true(msg_out.hello.legacy);
	put_le(buf, OFF_LEN, 19, 4);
	check_decode(buf, 19, -EBADMSG, "HELLO: payload of 3 bytes, expected 4", __LINE__);
	put_le(buf, OFF_LEN, 16, 4);
	check_decode(buf, 16, -EBADMSG, "HELLO: payload of 0 bytes, expected 4", __LINE__);

	/* the range is checked as any HELLO's */
	check_decode(buf, legacy_hello_build(3, 0, 3), -EBADMSG, "bad version range [0, 3]",
		     __LINE__);
	check_decode(buf, legacy_hello_build(2, 3, 2), -EBADMSG, "bad version range [3, 2]",
		     __LINE__);
	/* the header's length still has to be the truth */
	legacy_hello_build(3, 2, 3);
	put_le(buf, OFF_LEN, 100, 4);
	check_decode(buf, 16 + 24 + RDMIG__SCAN_SECRET_SIZE + 16, -EBADMSG, "header says 100",
		     __LINE__);
}

/* A legacy offer is something we read, never something we send. */
static void proto_encode_legacy_hello_einval(void **state)
{
	(void)state;
	/* as decoded */
	check_decode(buf, legacy_hello_build(3, 2, 3), 0, NULL, __LINE__);
	memset(buf, 0x5a, 64);
	assert_int_equal(rdmig__msg_encode(&msg_out, buf, sizeof(buf), err, sizeof(err)), -EINVAL);
	assert_contains(err, "legacy");
	for (unsigned i = 0; i < 64; i++)
		assert_int_equal(buf[i], 0x5a);
	/* as made: even with a valid range and mode */
	make_hello(&msg_in);
	msg_in.hello.legacy = true;
	assert_int_equal(rdmig__msg_encode_ext(&msg_in, RDMIG__TRAILER_LEN, buf, sizeof(buf), err,
					       sizeof(err)),
			 -EINVAL);
	assert_contains(err, "HELLO: a legacy offer is never sent");
}

/*
 * A later version's HELLO (header version 9, 20 bytes it appended): the
 * frozen 48 bytes are read as ours, what follows is ignored.
 */
static void proto_decode_later_hello_reads_the_frozen_part(void **state)
{
	static const uint16_t versions[] = { RDMIG__PROTO_VERSION + 1, 9, 0x8000, 0xffff };

	(void)state;
	for (unsigned v = 0; v < RDMIG__ARRAY_SIZE(versions); v++) {
		const size_t len = HELLO_END + 20;

		encode_sample(S_HELLO, buf);
		put_le(buf, OFF_VERSION, versions[v], 2);
		put_le(buf, OFF_LEN, len, 4);
		/* appended fields that would be refused if anything read them */
		memset(buf + HELLO_END, 0xff, 20);
		memset(&msg_out, 0xa5, sizeof(msg_out));
		check_decode(buf, len, 0, NULL, __LINE__);
		assert_false(msg_out.hello.legacy);
		assert_msg_equal(&msg_in, &msg_out);

		/* and without them */
		put_le(buf, OFF_LEN, HELLO_END, 4);
		check_decode(buf, HELLO_END, 0, NULL, __LINE__);
		assert_msg_equal(&msg_in, &msg_out);
	}

	/* the frozen part is checked whatever the version */
	encode_sample(S_HELLO, buf);
	put_le(buf, OFF_VERSION, 9, 2);
	put_le(buf, OFF_LEN, HELLO_END + 20, 4);
	put_le(buf, HELLO_RESERVED, 1, 4);
	check_decode(buf, HELLO_END + 20, -EBADMSG, "HELLO: reserved", __LINE__);
	put_le(buf, HELLO_RESERVED, 0, 4);
	put_le(buf, HELLO_AUTH, 2, 4);
	check_decode(buf, HELLO_END + 20, -EBADMSG, "HELLO: unknown auth mode 2", __LINE__);
	put_le(buf, HELLO_AUTH, 1, 4);
	put_le(buf, HELLO_VER_MIN, 0, 2);
	check_decode(buf, HELLO_END + 20, -EBADMSG, "bad version range", __LINE__);
	/* as is everything else of the header */
	put_le(buf, HELLO_VER_MIN, 4, 2);
	check_decode(buf, HELLO_END + 20, 0, NULL, __LINE__);
	check_decode(buf, HELLO_END + 21, -EBADMSG, "header says 84 bytes, 85 arrived", __LINE__);
}

/* Of any version from 4 on, a HELLO carries at least the frozen 48 bytes. */
static void proto_decode_short_hello_ebadmsg(void **state)
{
	static const size_t cuts[] = { 47, 44, 32, 16, 4, 0 };
	static const uint16_t versions[] = { RDMIG__PROTO_VERSION, 9 };
	char want[64];

	(void)state;
	for (unsigned v = 0; v < RDMIG__ARRAY_SIZE(versions); v++)
		for (unsigned c = 0; c < RDMIG__ARRAY_SIZE(cuts); c++) {
			encode_sample(S_HELLO, buf);
			put_le(buf, OFF_VERSION, versions[v], 2);
			put_le(buf, OFF_LEN, RDMIG__HDR_LEN + cuts[c], 4);
			snprintf(want, sizeof(want), "HELLO: payload of %zu bytes, expected 48",
				 cuts[c]);
			check_decode(buf, RDMIG__HDR_LEN + cuts[c], -EBADMSG, want, __LINE__);
		}
}

/* --- CHALLENGE and AUTH ---------------------------------------------------------- */

static void proto_decode_challenge_bad_fields_ebadmsg(void **state)
{
	(void)state;
	PATCH_FAILS(S_CHALLENGE, CHALL_VERSION, 0, 2, "CHALLENGE: version 0");
	PATCH_FAILS(S_CHALLENGE, CHALL_AUTH, 2, 4, "CHALLENGE: unknown auth mode 2");
	PATCH_FAILS(S_CHALLENGE, CHALL_AUTH + 3, 0x80, 1, "CHALLENGE: unknown auth mode");
	PATCH_OK(S_CHALLENGE, CHALL_AUTH, RDMIG__AUTH_NONE, 4);
	/* whether the choice is one the source offered is the handshake's to check */
	PATCH_OK(S_CHALLENGE, CHALL_VERSION, 9, 2);
	assert_int_equal(msg_out.challenge.version, 9);
	PATCH_OK(S_CHALLENGE, CHALL_VERSION, 3, 2);
}

/* CHALLENGE has one size: its fields and both 32-byte strings. */
static void proto_decode_challenge_wrong_size_ebadmsg(void **state)
{
	(void)state;
	encode_sample(S_CHALLENGE, buf);
	put_le(buf, OFF_LEN, CHALL_PROOF, 4);
	check_decode(buf, CHALL_PROOF, -EBADMSG, "CHALLENGE: payload of 48 bytes, expected 80",
		     __LINE__);
	put_le(buf, OFF_LEN, CHALL_END + 8, 4);
	check_decode(buf, CHALL_END + 8, -EBADMSG, "CHALLENGE: payload of 88 bytes, expected 80",
		     __LINE__);
}

static void proto_decode_auth_unknown_flags_ebadmsg(void **state)
{
	(void)state;
	PATCH_FAILS(S_AUTH_1, AUTH_FLAGS, 4, 4, "AUTH: unknown flags 0x4");
	PATCH_FAILS(S_AUTH_1, AUTH_FLAGS, 7, 4, "AUTH: unknown flags 0x4");
	PATCH_FAILS(S_AUTH_MAX, AUTH_FLAGS + 3, 0x80, 1, "AUTH: unknown flags 0x80000000");
	PATCH_OK(S_AUTH_1, AUTH_FLAGS, 0, 4);
	PATCH_OK(S_AUTH_3, AUTH_FLAGS, RDMIG__AUTH_NOTICES, 4);
	PATCH_OK(S_AUTH_3, AUTH_FLAGS, RDMIG__AUTH_VERIFY, 4);
	PATCH_OK(S_AUTH_3, AUTH_FLAGS, RDMIG__AUTH_NOTICES | RDMIG__AUTH_VERIFY, 4);
}

static void proto_decode_ack_unknown_region_flags_ebadmsg(void **state)
{
	(void)state;
	PATCH_FAILS(S_ACK_1, ACK_REG(0) + ACK_REG_FLAGS, 2, 4,
		    "HELLO_ACK: region 0 has unknown flags 0x2");
	PATCH_FAILS(S_ACK_3, ACK_REG(2) + ACK_REG_FLAGS, 0xffffffffu, 4,
		    "HELLO_ACK: region 2 has unknown flags 0xfffffffe");
	PATCH_FAILS(S_ACK_MAX, ACK_REG(RDMIG__MAX_REGIONS - 1) + ACK_REG_FLAGS + 3, 0x80, 1,
		    "region 255 has unknown flags 0x80000000");
	PATCH_OK(S_ACK_3, ACK_REG(1) + ACK_REG_FLAGS, RDMIG__TARGET_ZERO, 4);
	PATCH_OK(S_ACK_3, ACK_REG(0) + ACK_REG_FLAGS, 0, 4);
}

/* --- NOTICE and HASHES ------------------------------------------------------- */

static void proto_decode_block_bad_region_ebadmsg(void **state)
{
	(void)state;
	PATCH_FAILS(S_NOTICE, BLK_REGION, RDMIG__MAX_REGIONS, 4, "NOTICE: region 256 >= 256");
	PATCH_FAILS(S_NOTICE, BLK_REGION, 0xffffffffu, 4, "NOTICE: region");
	PATCH_OK(S_NOTICE, BLK_REGION, 0, 4);
	PATCH_FAILS(S_HASHES, BLK_REGION, RDMIG__MAX_REGIONS, 4, "HASHES: region 256 >= 256");
	PATCH_FAILS(S_HASHES_EMPTY, BLK_REGION + 3, 0x80, 1, "HASHES: region");
	PATCH_OK(S_HASHES, BLK_REGION, RDMIG__MAX_REGIONS - 1, 4);
}

static void proto_decode_block_bad_npages_ebadmsg(void **state)
{
	(void)state;
	PATCH_FAILS(S_NOTICE, BLK_NPAGES, 0, 4, "NOTICE: 0 pages, not in [1, 256]");
	PATCH_FAILS(S_NOTICE, BLK_NPAGES, RDMIG__NOTICE_PAGES + 1, 4, "NOTICE: 257 pages");
	PATCH_FAILS(S_NOTICE, BLK_NPAGES, 0x80000100u, 4, "NOTICE: 2147483904 pages");
	PATCH_FAILS(S_HASHES, BLK_NPAGES, 0, 4, "HASHES: 0 pages, not in [1, 256]");
	PATCH_FAILS(S_HASHES_MAX, BLK_NPAGES, RDMIG__NOTICE_PAGES + 1, 4, "HASHES: 257 pages");
	PATCH_FAILS(S_HASHES_EMPTY, BLK_NPAGES, 0xffffffffu, 4, "HASHES: 4294967295 pages");
	PATCH_OK(S_HASHES_EMPTY, BLK_NPAGES, RDMIG__NOTICE_PAGES, 4);
}

/* Sets bit `bit` in the bitmap of 4 words at off. */
static void set_page(size_t off, unsigned bit)
{
	size_t at = off + 8 * (bit / 64);

	put_le(buf, at, get_le(buf, at, 8) | 1ull << (bit % 64), 8);
}

/* A HASHES repeats its NOTICE's first page: an index, never a zero-fill flag. */
static void proto_decode_hashes_first_not_a_page_ebadmsg(void **state)
{
	(void)state;
	PATCH_FAILS(S_HASHES, BLK_FIRST, 0x8000000000000000ull, 8,
		    "HASHES: first page 0x8000000000000000 is not a page index");
	PATCH_FAILS(S_HASHES_EMPTY, BLK_FIRST, ~0ull, 8, "not a page index");
	PATCH_OK(S_HASHES, BLK_FIRST, 0x7fffffffffffffffull, 8);
	PATCH_OK(S_HASHES_EMPTY, BLK_FIRST, 0, 8);
}

/* Clears buf and writes the header and first 16 payload bytes of a NOTICE or HASHES. */
static void block_start(unsigned type, size_t len, uint64_t pass, uint32_t npages)
{
	memset(buf, 0, sizeof(buf));
	put_le(buf, OFF_MAGIC, RDMIG__PROTO_MAGIC, 4);
	put_le(buf, OFF_VERSION, RDMIG__PROTO_VERSION, 2);
	put_le(buf, OFF_TYPE, type, 2);
	put_le(buf, OFF_LEN, len, 4);
	put_le(buf, BLK_PASS, pass, 8);
	put_le(buf, BLK_REGION, 1, 4);
	put_le(buf, BLK_NPAGES, npages, 4);
}

/* Encodes a NOTICE of n pages: page i is `base + 2i`, odd ones zeroed. */
static size_t notice_build(uint32_t n, uint64_t base)
{
	size_t len = NOTICE_LEN(n);

	block_start(RDMIG__MSG_NOTICE, len, 2, n);
	for (uint32_t i = 0; i < n; i++)
		put_le(buf, NOTICE_PAGE(i), (base + 2 * i) | (i % 2 ? RDMIG__NOTICE_ZERO : 0), 8);
	return len;
}

/*
 * A NOTICE's pages strictly increase, whatever their zero-fill flags: no
 * page twice (hashed and zeroed at once), and the destination checks only
 * the last against its region.
 */
static void proto_decode_notice_pages_not_increasing_ebadmsg(void **state)
{
	static const uint32_t counts[] = { 2, 3, 64, 65, 255, 256 };

	(void)state;
	/* the sample: 0, 1z, 63, 0x1234z, 2^32, (2^63 - 2)z, 2^63 - 1 */
	PATCH_FAILS(S_NOTICE, NOTICE_PAGE(2), 0, 8,
		    "NOTICE: page 0x0 (entry 2) does not follow page 0x1");
	PATCH_FAILS(S_NOTICE, NOTICE_PAGE(1), RDMIG__NOTICE_ZERO, 8,
		    "NOTICE: page 0x0 (entry 1) does not follow page 0x0");
	PATCH_FAILS(S_NOTICE, NOTICE_PAGE(6), 0x7ffffffffffffffeull, 8,
		    "(entry 6) does not follow");
	PATCH_FAILS(S_NOTICE, NOTICE_PAGE(4), 0x1233, 8, "page 0x1233 (entry 4)");
	/* the flag is not part of the page: these still increase */
	PATCH_OK(S_NOTICE, NOTICE_PAGE(6), ~0ull, 8);
	PATCH_OK(S_NOTICE, NOTICE_PAGE(3), 0x1234, 8);
	PATCH_OK(S_NOTICE, NOTICE_PAGE(0), RDMIG__NOTICE_ZERO, 8);
	PATCH_FAILS(S_NOTICE_MAX, NOTICE_PAGE(255), 0x0000123456789a00ull, 8, "(entry 255)");

	for (unsigned k = 0; k < RDMIG__ARRAY_SIZE(counts); k++) {
		uint32_t n = counts[k];
		size_t len = notice_build(n, 0x7ffffffffffffe00ull);
		char want[96];

		check_decode(buf, len, 0, NULL, __LINE__);
		assert_int_equal(msg_out.notice.npages, n);
		assert_int_equal(msg_out.notice.page[n - 1] & ~RDMIG__NOTICE_ZERO,
				 0x7ffffffffffffe00ull + 2 * (n - 1));
		/* the last page repeated, or the two last swapped */
		put_le(buf, NOTICE_PAGE(n - 1), get_le(buf, NOTICE_PAGE(n - 2), 8), 8);
		snprintf(want, sizeof(want), "(entry %u) does not follow", n - 1);
		check_decode(buf, len, -EBADMSG, want, __LINE__);
		notice_build(n, 0);
		put_le(buf, NOTICE_PAGE(n - 2), 2 * (n - 1), 8);
		put_le(buf, NOTICE_PAGE(n - 1), 2 * (n - 2), 8);
		check_decode(buf, len, -EBADMSG, want, __LINE__);
	}
}

/* The payload holds exactly npages pages; a count over 256 is refused before any size math. */
static void proto_decode_notice_count_mismatch_ebadmsg(void **state)
{
	size_t len;

	(void)state;
	PATCH_FAILS(S_NOTICE, BLK_NPAGES, 6, 4, "NOTICE: payload of 72 bytes, expected 64");
	PATCH_FAILS(S_NOTICE, BLK_NPAGES, 8, 4, "NOTICE: payload of 72 bytes, expected 80");
	PATCH_FAILS(S_NOTICE_MAX, BLK_NPAGES, RDMIG__NOTICE_PAGES - 1, 4, "payload");
	PATCH_FAILS(S_NOTICE, BLK_NPAGES, 0x20000007u, 4, "NOTICE: 536870919 pages, not in");
	/* over 256, with the pages present */
	len = notice_build(RDMIG__NOTICE_PAGES + 1, 0);
	check_decode(buf, len, -EBADMSG, "NOTICE: 257 pages, not in [1, 256]", __LINE__);
	/* none at all: the header and a count of 0 */
	len = notice_build(0, 0);
	check_decode(buf, len, -EBADMSG, "NOTICE: 0 pages", __LINE__);
	len = notice_build(1, 5);
	check_decode(buf, len, 0, NULL, __LINE__);
	assert_int_equal(msg_out.notice.page[0], 5);
}

static void proto_decode_hashes_landed_zero_beyond_npages_ebadmsg(void **state)
{
	(void)state;
	/* the sample's landed-zero pages 1 and 4 */
	PATCH_FAILS(S_HASHES, BLK_NPAGES, 4, 4, "HASHES: landed-zero page 4 is beyond its 4 pages");
	PATCH_FAILS(S_HASHES, HASHES_LZERO(0), 0x412, 8, "landed-zero page 10 is beyond its 10");
	PATCH_FAILS(S_HASHES, HASHES_LZERO(3) + 7, 0x80, 1, "landed-zero page 255 is beyond");
	PATCH_FAILS(S_HASHES_EMPTY, HASHES_LZERO(0), 0x2, 8, "landed-zero page 1 is beyond its 1");
	PATCH_OK(S_HASHES, HASHES_LZERO(0), 0x212, 8); /* page 9, the last */
	/* 256 pages: every bit is in range */
	PATCH_OK(S_HASHES_MAX, BLK_NPAGES, RDMIG__NOTICE_PAGES, 4);
}

/*
 * HASHES of npages pages, z of them landed zero, with n hashes present and
 * claimed: the message as a valid peer would send it, whatever the counts.
 */
static size_t hashes_build(uint32_t npages, unsigned z, uint32_t n)
{
	size_t len = HASHES_HASH(n);

	block_start(RDMIG__MSG_HASHES, len, 3, npages);
	put_le(buf, BLK_FIRST, 0x100, 8);
	for (unsigned i = 0; i < z; i++)
		set_page(HASHES_LZERO(0), npages - 1 - i); /* the last z pages */
	put_le(buf, HASHES_NHASHES, n, 4);
	for (unsigned i = 0; i < n; i++) {
		put_le(buf, HASHES_HASH(i), hash_lo(i), 8);
		put_le(buf, HASHES_HASH(i) + 8, hash_hi(i), 8);
	}
	return len;
}

/* A hash for each written page that did not land zero, at most. */
static void proto_decode_hashes_more_than_pages_ebadmsg(void **state)
{
	size_t len;

	(void)state;
	/* 6 pages, 2 landed zero */
	len = hashes_build(6, 2, 5);
	check_decode(buf, len, -EBADMSG, "HASHES: 5 hashes for 4 pages", __LINE__);
	len = hashes_build(6, 2, 4);
	check_decode(buf, len, 0, NULL, __LINE__);
	assert_int_equal(msg_out.hashes.nhashes, 4);
	/* fewer than that: some written pages may be reported otherwise, not decode's business */
	len = hashes_build(6, 2, 1);
	check_decode(buf, len, 0, NULL, __LINE__);
	/* all landed zero: no hash */
	len = hashes_build(1, 1, 1);
	check_decode(buf, len, -EBADMSG, "HASHES: 1 hashes for 0 pages", __LINE__);
	len = hashes_build(RDMIG__NOTICE_PAGES, RDMIG__NOTICE_PAGES, 1);
	check_decode(buf, len, -EBADMSG, "1 hashes for 0 pages", __LINE__);
	len = hashes_build(RDMIG__NOTICE_PAGES, RDMIG__NOTICE_PAGES, 0);
	check_decode(buf, len, 0, NULL, __LINE__);
	/* 256 pages, one landed zero */
	len = hashes_build(RDMIG__NOTICE_PAGES, 1, RDMIG__NOTICE_PAGES);
	check_decode(buf, len, -EBADMSG, "256 hashes for 255 pages", __LINE__);
	len = hashes_build(RDMIG__NOTICE_PAGES, 1, RDMIG__NOTICE_PAGES - 1);
	check_decode(buf, len, 0, NULL, __LINE__);
	/* the samples, with fewer pages */
	PATCH_FAILS(S_HASHES, BLK_NPAGES, 6, 4, "HASHES: 5 hashes for 4 pages");
	PATCH_OK(S_HASHES, BLK_NPAGES, 7, 4);
	PATCH_OK(S_HASHES_EMPTY, HASHES_LZERO(0), 0, 8); /* 0 hashes for 1 page */
}

/* The payload holds exactly nhashes hashes; a count over 256 is refused before any size math. */
static void proto_decode_hashes_count_mismatch_ebadmsg(void **state)
{
	size_t len;

	(void)state;
	PATCH_FAILS(S_HASHES, HASHES_NHASHES, 6, 4, "HASHES: payload of 144 bytes, expected 160");
	PATCH_FAILS(S_HASHES, HASHES_NHASHES, 4, 4, "HASHES: payload of 144 bytes, expected 128");
	PATCH_FAILS(S_HASHES, HASHES_NHASHES, 0, 4, "expected 64");
	PATCH_FAILS(S_HASHES_EMPTY, HASHES_NHASHES, 1, 4,
		    "HASHES: payload of 64 bytes, expected 80");
	PATCH_FAILS(S_HASHES_MAX, HASHES_NHASHES, RDMIG__NOTICE_PAGES - 1, 4, "payload");
	/* over 256, with the hashes present */
	len = encode_sample(S_HASHES_MAX, buf);
	put_le(buf, len, hash_lo(256), 8);
	put_le(buf, len + 8, hash_hi(256), 8);
	put_le(buf, HASHES_NHASHES, RDMIG__NOTICE_PAGES + 1, 4);
	put_le(buf, OFF_LEN, len + 16, 4);
	check_decode(buf, len + 16, -EBADMSG, "HASHES: 257 hashes > 256", __LINE__);
	/* a huge count must not be multiplied into a small payload size */
	PATCH_FAILS(S_HASHES, HASHES_NHASHES, 0x10000005u, 4, "HASHES: 268435461 hashes > 256");
	PATCH_FAILS(S_HASHES_EMPTY, HASHES_NHASHES, 0xffffffffu, 4, "hashes > 256");
}

static void proto_decode_error_code_out_of_range_ebadmsg(void **state)
{
	(void)state;
	PATCH_FAILS(S_ERROR, ERR_CODE, 0, 4, "code");
	PATCH_FAILS(S_ERROR, ERR_CODE, 4096, 4, "code");
	PATCH_FAILS(S_ERROR, ERR_CODE, 0xffffffffu, 4, "code"); /* -1 */
	PATCH_FAILS(S_ERROR, ERR_CODE, 0x80000000u, 4, "code");
	PATCH_FAILS(S_ERROR, ERR_CODE, 0x00010001u, 4, "code");
	PATCH_OK(S_ERROR, ERR_CODE, 1, 4);
	PATCH_OK(S_ERROR, ERR_CODE, 4095, 4);
}

static void proto_decode_error_unprintable_text_ebadmsg(void **state)
{
	static const uint8_t bad[] = { 0x00, 0x01, '\n', '\r', 0x1b, 0x1f, 0x7f, 0x80, 0xc3, 0xff };
	const size_t last = ERR_TEXT + sizeof(ERROR_TEXT) - 2;

	(void)state;
	for (unsigned i = 0; i < sizeof(bad); i++) {
		PATCH_FAILS(S_ERROR, ERR_TEXT, bad[i], 1, "printable");
		PATCH_FAILS(S_ERROR, last, bad[i], 1, "printable");
	}
	PATCH_OK(S_ERROR, ERR_TEXT, 0x20, 1);
	PATCH_OK(S_ERROR, last, 0x7e, 1);
}

static void proto_decode_error_text_too_long_ebadmsg(void **state)
{
	const uint32_t n = RDMIG__ERRMSG_MAX + 1;

	(void)state;
	memset(buf, 'a', sizeof(buf));
	put_le(buf, OFF_MAGIC, RDMIG__PROTO_MAGIC, 4);
	put_le(buf, OFF_VERSION, RDMIG__PROTO_VERSION, 2);
	put_le(buf, OFF_TYPE, RDMIG__MSG_ERROR, 2);
	put_le(buf, OFF_LEN, ERR_TEXT + n, 4);
	put_le(buf, OFF_FLAGS, 0, 4);
	put_le(buf, ERR_CODE, 5, 4);
	put_le(buf, ERR_LEN, n, 4);
	check_decode(buf, ERR_TEXT + n, -EBADMSG, "1025", __LINE__);

	/* one byte less is the longest valid text */
	put_le(buf, OFF_LEN, ERR_TEXT + n - 1, 4);
	put_le(buf, ERR_LEN, n - 1, 4);
	check_decode(buf, ERR_TEXT + n - 1, 0, NULL, __LINE__);
	assert_int_equal(strlen(msg_out.error.text), n - 1);

	/* a text length field far beyond the message */
	PATCH_FAILS(S_ERROR, ERR_LEN, 0xffffffffu, 4, NULL);
}

/* --- decode: truncated, oversized and padded messages --------------------------- */

/* Decoding len bytes of b must fail with -EBADMSG; `how` and n say which case failed. */
static void check_ebadmsg(const uint8_t *b, size_t len, int s, const char *how, size_t n)
{
	int ret = rdmig__msg_decode(b, len, &msg_out, err, sizeof(err));

	if (ret != -EBADMSG)
		fail_msg("sample %d, %s %zu: %d, not -EBADMSG", s, how, n, ret);
}

/*
 * Every prefix of every message fails: once as it would arrive cut short
 * (the header still claims the full length), once with the header's length
 * patched to match the cut, so only the payload check can catch it.
 */
static void proto_decode_truncated_at_every_offset_ebadmsg(void **state)
{
	(void)state;
	for (int s = 0; s < S_COUNT; s++) {
		size_t len = encode_sample((enum sample)s, buf);

		check_decode(buf, len, 0, NULL, __LINE__);
		for (size_t cut = 0; cut < len; cut++) {
			check_ebadmsg(buf, cut, s, "cut at", cut);
			memcpy(tmp, buf, len);
			if (cut >= OFF_LEN + 4)
				put_le(tmp, OFF_LEN, cut, 4);
			check_ebadmsg(tmp, cut, s, "length patched, cut at", cut);
		}
	}
}

static void proto_decode_oversized_ebadmsg(void **state)
{
	const size_t big = RDMIG__MSG_MAX + 1;

	(void)state;
	/* An ERROR whose header and buffer agree on RDMIG__MSG_MAX + 1 bytes. */
	memset(buf, 'a', sizeof(buf));
	put_le(buf, OFF_MAGIC, RDMIG__PROTO_MAGIC, 4);
	put_le(buf, OFF_VERSION, RDMIG__PROTO_VERSION, 2);
	put_le(buf, OFF_TYPE, RDMIG__MSG_ERROR, 2);
	put_le(buf, OFF_LEN, big, 4);
	put_le(buf, OFF_FLAGS, 0, 4);
	put_le(buf, ERR_CODE, 5, 4);
	put_le(buf, ERR_LEN, big - ERR_TEXT, 4);
	check_decode(buf, big, -EBADMSG, "16384", __LINE__);

	/* A valid message in a receive larger than any message. */
	encode_sample(S_PASS_ACK, buf);
	put_le(buf, OFF_LEN, big, 4);
	check_decode(buf, big, -EBADMSG, "16384", __LINE__);
	/* HELLO too, though it may be longer than its 48 bytes */
	encode_sample(S_HELLO, buf);
	put_le(buf, OFF_VERSION, 9, 2);
	put_le(buf, OFF_LEN, big, 4);
	check_decode(buf, big, -EBADMSG, "16384", __LINE__);

	/* A header claiming more than RDMIG__MSG_MAX over a short buffer. */
	PATCH_FAILS(S_PASS_ACK, OFF_LEN, big, 4, NULL);
	PATCH_FAILS(S_PASS_ACK, OFF_LEN, 0x7fffffffu, 4, NULL);
}

/*
 * Bytes after the message: with the header's length as sent and as patched
 * to cover them. HELLO is the exception once its header covers them: it is
 * frozen, and a reader ignores what follows its 48 bytes, whatever the
 * version (the transcript covers them all the same).
 */
static void proto_decode_trailing_bytes_ebadmsg(void **state)
{
	static const size_t extra[] = { 1, 4, 8, 16, 32 };

	(void)state;
	for (int s = 0; s < S_COUNT; s++) {
		for (unsigned e = 0; e < RDMIG__ARRAY_SIZE(extra); e++) {
			size_t len = encode_sample((enum sample)s, buf);

			check_ebadmsg(buf, len + extra[e], s, "extra bytes", extra[e]);
			put_le(buf, OFF_LEN, len + extra[e], 4);
			if (is_hello((enum sample)s)) {
				check_decode(buf, len + extra[e], 0, NULL, __LINE__);
				assert_msg_equal(&msg_in, &msg_out);
				continue;
			}
			check_ebadmsg(buf, len + extra[e], s, "length patched, extra bytes",
				      extra[e]);
		}
	}
}

/* A NULL or zero-length error buffer is allowed: decode still fails properly. */
static void proto_decode_without_error_buffer_still_fails(void **state)
{
	size_t len;

	(void)state;
	len = encode_sample(S_PASS_ACK, buf);
	put_le(buf, PA_PASS, 0, 8);
	assert_int_equal(rdmig__msg_decode(buf, len, &msg_out, NULL, 0), -EBADMSG);
	err[0] = 'x';
	assert_int_equal(rdmig__msg_decode(buf, len, &msg_out, err, 0), -EBADMSG);
	assert_int_equal(err[0], 'x');
	len = encode_sample(S_PASS_ACK, buf);
	put_le(buf, OFF_VERSION, 3, 2);
	assert_int_equal(rdmig__msg_decode(buf, len, &msg_out, NULL, 0), -EPROTO);
}

/* --- trailers: the room a sealed message leaves for its MAC ------------------------ */

/*
 * encode_ext leaves `trailer` bytes after the payload and counts them in the
 * header's length; everything before them is the plain encoding's.
 * decode_ext takes the same bytes back, ignoring the trailer's, for every
 * sample and every trailer the seal could use.
 */
static void proto_ext_trailer_round_trips(void **state)
{
	static const size_t trailers[] = { 1, 8, RDMIG__TRAILER_LEN, 100 };

	(void)state;
	for (int s = 0; s < S_COUNT; s++)
		for (unsigned t = 0; t < RDMIG__ARRAY_SIZE(trailers); t++) {
			size_t len = encode_sample((enum sample)s, tmp), tr = trailers[t];
			int ret;

			memset(buf, 0x5a, len + tr + 16);
			ret = rdmig__msg_encode_ext(&msg_in, tr, buf, sizeof(buf), err,
						    sizeof(err));
			if (ret != (int)(len + tr))
				fail_msg("sample %d, trailer %zu: %d (%s)", s, tr, ret, err);
			assert_int_equal(get_le(buf, OFF_LEN, 4), len + tr);
			/* the header's length differs, nothing else */
			assert_memory_equal(buf, tmp, OFF_LEN);
			assert_memory_equal(buf + OFF_FLAGS, tmp + OFF_FLAGS, len - OFF_FLAGS);
			for (size_t i = len + tr; i < len + tr + 16; i++)
				assert_int_equal(buf[i], 0x5a); /* nothing past it */

			/* whatever the trailer holds is not the decoder's */
			memset(buf + len, s % 2 ? 0xff : 0, tr);
			memset(&msg_out, 0xa5, sizeof(msg_out));
			ret = rdmig__msg_decode_ext(buf, len + tr, tr, &msg_out, err, sizeof(err));
			if (ret)
				fail_msg("sample %d, trailer %zu: decode %d (%s)", s, tr, ret, err);
			assert_msg_equal(&msg_in, &msg_out);
			/* a trailer is no message's: the plain decoder refuses it */
			if (!is_hello((enum sample)s))
				check_ebadmsg(buf, len + tr, s, "trailer, plain decode", tr);
		}
}

/* A trailer of 0 is the plain codec. */
static void proto_ext_zero_trailer_is_plain(void **state)
{
	(void)state;
	for (int s = 0; s < S_COUNT; s++) {
		size_t len = encode_sample((enum sample)s, tmp);

		assert_int_equal(
			rdmig__msg_encode_ext(&msg_in, 0, buf, sizeof(buf), err, sizeof(err)),
			(int)len);
		assert_memory_equal(buf, tmp, len);
		assert_int_equal(rdmig__msg_decode_ext(buf, len, 0, &msg_out, err, sizeof(err)), 0);
		assert_msg_equal(&msg_in, &msg_out);
	}
}

/* The trailer is not the payload's: cutting into the payload fails as any truncation does. */
static void proto_ext_decode_refuses_what_plain_decode_refuses(void **state)
{
	const size_t tr = RDMIG__TRAILER_LEN;
	size_t len;

	(void)state;
	/* the payload one byte short, the trailer whole */
	len = encode_sample(S_PASS_ACK, tmp);
	assert_int_equal(rdmig__msg_encode_ext(&msg_in, tr, buf, sizeof(buf), err, sizeof(err)),
			 (int)(len + tr));
	put_le(buf, OFF_LEN, len + tr - 1, 4);
	assert_int_equal(rdmig__msg_decode_ext(buf, len + tr - 1, tr, &msg_out, err, sizeof(err)),
			 -EBADMSG);
	assert_contains(err, "PASS_ACK: payload of 15 bytes, expected 16");
	/* the header's length must count the trailer */
	put_le(buf, OFF_LEN, len, 4);
	assert_int_equal(rdmig__msg_decode_ext(buf, len + tr, tr, &msg_out, err, sizeof(err)),
			 -EBADMSG);
	assert_contains(err, "header says 32 bytes, 56 arrived");
	/* fewer bytes than a header and the trailer */
	put_le(buf, OFF_LEN, RDMIG__HDR_LEN + tr - 1, 4);
	assert_int_equal(
		rdmig__msg_decode_ext(buf, RDMIG__HDR_LEN + tr - 1, tr, &msg_out, err, sizeof(err)),
		-EBADMSG);
	assert_contains(err, "shorter than a header");
	/* a field check still applies */
	len = encode_sample(S_AUTH_1, tmp);
	msg_in.auth.nqps = 0;
	assert_int_equal(rdmig__msg_encode_ext(&msg_in, tr, buf, sizeof(buf), err, sizeof(err)),
			 -EINVAL);
	memcpy(buf, tmp, len);
	put_le(buf, AUTH_NQPS, 0, 4);
	put_le(buf, OFF_LEN, len + tr, 4);
	assert_int_equal(rdmig__msg_decode_ext(buf, len + tr, tr, &msg_out, err, sizeof(err)),
			 -EBADMSG);
	assert_contains(err, "AUTH: 0 data QPs");
	/* and the version check */
	put_le(buf, AUTH_NQPS, 3, 4);
	put_le(buf, OFF_VERSION, 5, 2);
	assert_int_equal(rdmig__msg_decode_ext(buf, len + tr, tr, &msg_out, err, sizeof(err)),
			 -EPROTO);
}

/* The trailer counts against the buffer and against RDMIG__MSG_MAX. */
static void proto_ext_trailer_needs_room_enospc(void **state)
{
	const size_t tr = RDMIG__TRAILER_LEN;

	(void)state;
	for (int s = 0; s < S_COUNT; s++) {
		size_t len = sample_len[s];

		make_sample((enum sample)s, &msg_in);
		memset(buf, 0x5a, len + tr + 16);
		assert_int_equal(
			rdmig__msg_encode_ext(&msg_in, tr, buf, len + tr - 1, err, sizeof(err)),
			-ENOSPC);
		for (size_t i = 0; i < len + tr + 16; i++)
			assert_int_equal(buf[i], 0x5a);
		assert_int_equal(
			rdmig__msg_encode_ext(&msg_in, tr, buf, len + tr, err, sizeof(err)),
			(int)(len + tr));
	}
	/* the largest message fits exactly: one trailer byte more does not */
	make_sample(S_PASS_ACK, &msg_in);
	assert_int_equal(rdmig__msg_encode_ext(&msg_in, RDMIG__MSG_MAX - 32, buf, sizeof(buf), err,
					       sizeof(err)),
			 RDMIG__MSG_MAX);
	assert_int_equal(rdmig__msg_encode_ext(&msg_in, RDMIG__MSG_MAX - 31, buf, sizeof(buf), err,
					       sizeof(err)),
			 -ENOSPC);
	assert_contains(err, "PASS_ACK of 16385 bytes does not fit in 16384");
	/* a sealed HASHES for a full NOTICE is the data QPs' largest */
	make_sample(S_HASHES_MAX, &msg_in);
	assert_int_equal(rdmig__msg_encode_ext(&msg_in, tr, buf, sizeof(buf), err, sizeof(err)),
			 RDMIG__DATA_MSG_MAX);
}

/* --- peek_len --------------------------------------------------------------- */

static void proto_peek_len_short_input_ebadmsg(void **state)
{
	(void)state;
	encode_sample(S_CONNECT_DATA, buf);
	for (size_t n = 0; n < RDMIG__HDR_LEN; n++)
		assert_int_equal(rdmig__msg_peek_len(buf, n), -EBADMSG);
	assert_int_equal(rdmig__msg_peek_len(buf, RDMIG__HDR_LEN), 48);
}

static void proto_peek_len_garbage_ebadmsg(void **state)
{
	(void)state;
	memset(buf, 0, 64);
	assert_int_equal(rdmig__msg_peek_len(buf, 56), -EBADMSG);
	memset(buf, 0xff, 64);
	assert_int_equal(rdmig__msg_peek_len(buf, 56), -EBADMSG);
	encode_sample(S_CONNECT_CTRL, buf);
	buf[3] ^= 0x20; /* "RDMg" */
	assert_int_equal(rdmig__msg_peek_len(buf, 48), -EBADMSG);
}

/* rdma_cm pads private data with zeros: peek finds the real length. */
static void proto_peek_len_valid_returns_header_length(void **state)
{
	size_t len;

	(void)state;
	memset(tmp, 0, 56);
	encode_sample(S_CONNECT_DATA, buf);
	memcpy(tmp, buf, 48);
	assert_int_equal(rdmig__msg_peek_len(tmp, 56), 48);
	assert_int_equal(rdmig__msg_decode(tmp, 48, &msg_out, err, sizeof(err)), 0);

	/* any version's HELLO: peek reads only the frozen header */
	len = encode_sample(S_HELLO, buf);
	put_le(buf, OFF_VERSION, 9, 2);
	assert_int_equal(rdmig__msg_peek_len(buf, RDMIG__HDR_LEN), (int)len);
	len = encode_sample(S_AUTH_MAX, buf);
	assert_int_equal(rdmig__msg_peek_len(buf, len), (int)len);
	len = encode_sample(S_ACK_MAX, buf);
	assert_int_equal(rdmig__msg_peek_len(buf, RDMIG__HDR_LEN), (int)len);
}

/* A length beyond INT_MAX must not come back as a negative (error-looking) value. */
static void proto_peek_len_huge_length_stays_positive(void **state)
{
	(void)state;
	encode_sample(S_PASS_ACK, buf);
	put_le(buf, OFF_LEN, 0xffffffffu, 4);
	assert_true(rdmig__msg_peek_len(buf, 32) > RDMIG__MSG_MAX);
	put_le(buf, OFF_LEN, 0x80000000u, 4);
	assert_true(rdmig__msg_peek_len(buf, 32) > RDMIG__MSG_MAX);
}

/* --- encode refusals ------------------------------------------------------- */

static void check_encode_einval(const struct rdmig__msg *m, const char *needle, int line)
{
	int ret;

	memset(buf, 0x5a, 64);
	memset(err, 0, sizeof(err));
	ret = rdmig__msg_encode(m, buf, sizeof(buf), err, sizeof(err));
	if (ret != -EINVAL)
		fail_msg("line %d: encode returned %d, expected -EINVAL (%s)", line, ret, err);
	if (!strstr(err, needle))
		fail_msg("line %d: '%s' does not contain '%s'", line, err, needle);
	for (unsigned i = 0; i < 64; i++)
		if (buf[i] != 0x5a)
			fail_msg("line %d: encode wrote byte %u of a refused message", line, i);
}

#define ENCODE_EINVAL(needle) check_encode_einval(&msg_in, needle, __LINE__)

static void proto_encode_invalid_message_einval(void **state)
{
	(void)state;
	make_sample(S_CONNECT_CTRL, &msg_in);
	msg_in.connect.kind = 0;
	ENCODE_EINVAL("kind");
	make_sample(S_CONNECT_DATA, &msg_in);
	msg_in.connect.token = 0;
	ENCODE_EINVAL("token");

	make_sample(S_CONNECT_DATA, &msg_in);
	msg_in.connect.index = RDMIG__MAX_QPS;
	ENCODE_EINVAL("index");

	make_sample(S_HELLO, &msg_in);
	msg_in.hello.ver_min = 0;
	ENCODE_EINVAL("HELLO: bad version range [0, 774]");
	make_sample(S_HELLO_NOAUTH, &msg_in);
	msg_in.hello.ver_min = 5;
	ENCODE_EINVAL("HELLO: bad version range [5, 4]");
	make_sample(S_HELLO, &msg_in);
	msg_in.hello.auth = 2;
	ENCODE_EINVAL("HELLO: unknown auth mode 2");
	make_sample(S_HELLO, &msg_in);
	msg_in.hello.legacy = true;
	ENCODE_EINVAL("legacy");

	make_sample(S_CHALLENGE, &msg_in);
	msg_in.challenge.version = 0;
	ENCODE_EINVAL("CHALLENGE: version 0");
	make_sample(S_CHALLENGE, &msg_in);
	msg_in.challenge.auth = 7;
	ENCODE_EINVAL("CHALLENGE: unknown auth mode 7");

	make_sample(S_AUTH_1, &msg_in);
	msg_in.auth.nregions = 0;
	ENCODE_EINVAL("AUTH: 0 regions");
	make_sample(S_AUTH_1, &msg_in);
	msg_in.auth.nregions = RDMIG__MAX_REGIONS + 1;
	ENCODE_EINVAL("AUTH: 257 regions");
	make_sample(S_AUTH_1, &msg_in);
	msg_in.auth.page_size = 4097;
	ENCODE_EINVAL("page size");
	make_sample(S_AUTH_1, &msg_in);
	msg_in.auth.nqps = 0;
	ENCODE_EINVAL("QPs");
	make_sample(S_AUTH_1, &msg_in);
	msg_in.auth.nqps = RDMIG__MAX_QPS + 1;
	ENCODE_EINVAL("AUTH: 65 data QPs");
	make_sample(S_AUTH_3, &msg_in);
	msg_in.auth.regions[2].gpa = msg_in.auth.regions[0].gpa;
	ENCODE_EINVAL("overlap");
	make_sample(S_AUTH_1, &msg_in);
	msg_in.auth.regions[0].len = 0;
	ENCODE_EINVAL("length is 0");
	make_sample(S_AUTH_1, &msg_in);
	msg_in.auth.flags = 0x10;
	ENCODE_EINVAL("AUTH: unknown flags 0x10");

	/* decode's -EPROTO is encode's -EINVAL: it is our own message that is wrong */
	make_sample(S_ACK_1, &msg_in);
	msg_in.hello_ack.version = RDMIG__PROTO_VERSION + 1;
	ENCODE_EINVAL("HELLO_ACK: unsupported version 5");
	make_sample(S_ACK_1, &msg_in);
	msg_in.hello_ack.version = RDMIG__PROTO_VERSION - 1;
	ENCODE_EINVAL("HELLO_ACK: unsupported version 3");
	make_sample(S_ACK_1, &msg_in);
	msg_in.hello_ack.token = 0;
	ENCODE_EINVAL("token");
	make_sample(S_ACK_3, &msg_in);
	msg_in.hello_ack.regions[1].addr = msg_in.hello_ack.regions[0].addr;
	ENCODE_EINVAL("destination address");
	make_sample(S_ACK_1, &msg_in);
	msg_in.hello_ack.regions[0].addr += 1;
	ENCODE_EINVAL("aligned");

	make_sample(S_PASS_END, &msg_in);
	msg_in.pass_end.pass = 0;
	ENCODE_EINVAL("pass 0");
	make_sample(S_PASS_END, &msg_in);
	msg_in.pass_end.writes = msg_in.pass_end.bytes + 1;
	ENCODE_EINVAL("writes");
	make_sample(S_PASS_ACK, &msg_in);
	msg_in.pass_ack.pass = 0;
	ENCODE_EINVAL("pass 0");

	make_sample(S_ACK_3, &msg_in);
	msg_in.hello_ack.regions[2].flags = RDMIG__TARGET_ZERO | 4;
	ENCODE_EINVAL("HELLO_ACK: region 2 has unknown flags 0x4");

	make_sample(S_NOTICE, &msg_in);
	msg_in.notice.pass = 0;
	ENCODE_EINVAL("NOTICE: pass 0");
	make_sample(S_NOTICE, &msg_in);
	msg_in.notice.region = RDMIG__MAX_REGIONS;
	ENCODE_EINVAL("NOTICE: region 256");
	make_sample(S_NOTICE, &msg_in);
	msg_in.notice.npages = 0;
	ENCODE_EINVAL("NOTICE: 0 pages");
	make_sample(S_NOTICE, &msg_in);
	msg_in.notice.npages = RDMIG__NOTICE_PAGES + 1;
	ENCODE_EINVAL("NOTICE: 257 pages");
	make_sample(S_NOTICE, &msg_in);
	msg_in.notice.page[2] = 0;
	ENCODE_EINVAL("NOTICE: page 0x0 (entry 2) does not follow page 0x1");
	make_sample(S_NOTICE, &msg_in);
	msg_in.notice.page[1] = 0 | RDMIG__NOTICE_ZERO;
	ENCODE_EINVAL("NOTICE: page 0x0 (entry 1) does not follow page 0x0");

	make_sample(S_HASHES, &msg_in);
	msg_in.hashes.pass = 0;
	ENCODE_EINVAL("HASHES: pass 0");
	make_sample(S_HASHES, &msg_in);
	msg_in.hashes.landed_zero[2] = 1;
	ENCODE_EINVAL("HASHES: landed-zero page 128 is beyond its 10 pages");
	make_sample(S_HASHES, &msg_in);
	msg_in.hashes.first = RDMIG__NOTICE_ZERO | 5;
	ENCODE_EINVAL("HASHES: first page 0x8000000000000005 is not a page index");
	make_sample(S_HASHES, &msg_in);
	msg_in.hashes.nhashes = 9;
	ENCODE_EINVAL("HASHES: 9 hashes for 8 pages");
	/* a count far beyond the array is refused, not encoded */
	make_sample(S_HASHES_MAX, &msg_in);
	msg_in.hashes.nhashes = 0x10000000u;
	ENCODE_EINVAL("HASHES: 268435456 hashes for 256 pages");

	make_sample(S_ERROR, &msg_in);
	msg_in.error.code = 0;
	ENCODE_EINVAL("code");
	make_sample(S_ERROR, &msg_in);
	msg_in.error.code = -EIO;
	ENCODE_EINVAL("code");
	make_sample(S_ERROR, &msg_in);
	msg_in.error.len = RDMIG__ERRMSG_MAX + 1;
	ENCODE_EINVAL("1025");
	make_sample(S_ERROR, &msg_in);
	msg_in.error.text[3] = '\n';
	ENCODE_EINVAL("printable");

	memset(&msg_in, 0, sizeof(msg_in));
	ENCODE_EINVAL("type");
	msg_in.type = RDMIG__MSG_TYPE_MAX + 1;
	ENCODE_EINVAL("type");
}

/* Every sample needs exactly its length: one byte less is -ENOSPC and nothing is written. */
static void proto_encode_small_buffer_enospc(void **state)
{
	(void)state;
	for (int s = 0; s < S_COUNT; s++) {
		size_t len = sample_len[s];
		int ret;

		make_sample((enum sample)s, &msg_in);
		memset(buf, 0x5a, len + 16);
		err[0] = '\0';
		ret = rdmig__msg_encode(&msg_in, buf, len - 1, err, sizeof(err));
		if (ret != -ENOSPC)
			fail_msg("sample %d in %zu bytes: %d, expected -ENOSPC", s, len - 1, ret);
		assert_true(err[0] != '\0');
		for (size_t i = 0; i < len + 16; i++)
			assert_int_equal(buf[i], 0x5a);
		assert_int_equal(rdmig__msg_encode(&msg_in, buf, 0, err, sizeof(err)), -ENOSPC);
		assert_int_equal(rdmig__msg_encode(&msg_in, buf, len, err, sizeof(err)), (int)len);
		/* and not one byte past its length */
		for (size_t i = len; i < len + 16; i++)
			assert_int_equal(buf[i], 0x5a);
	}
}

/* The CONNECT message, its tag included, must fit rdma_cm's private data. */
static void proto_connect_fits_private_data(void **state)
{
	(void)state;
	make_sample(S_CONNECT_DATA, &msg_in);
	assert_int_equal(rdmig__msg_encode(&msg_in, buf, RDMIG__CONNECT_LEN, err, sizeof(err)),
			 RDMIG__CONNECT_LEN);
	assert_int_equal(RDMIG__CONNECT_LEN, 48);
	assert_true(RDMIG__CONNECT_LEN <= 56);
}

static void proto_type_name_names_every_type(void **state)
{
	static const char *const want[] = {
		"unknown",    "CONNECT",     "HELLO",	     "HELLO_ACK", "PASS_END",
		"PASS_ACK",   "COMPLETE",    "COMPLETE_ACK", "ERROR",	  "PROGRESS",
		"NOTICE",     "HASHES",	     "CHALLENGE",    "AUTH",	  "STATE_DESC",
		"STATE_ZERO", "STATE_READY", "STATE_END",    "STATE_ACK", "unknown",
	};

	(void)state;
	for (unsigned t = 0; t < RDMIG__ARRAY_SIZE(want); t++)
		assert_string_equal(rdmig__msg_type_name(t), want[t]);
	assert_string_equal(rdmig__msg_type_name(0xffffffffu), "unknown");
}

/* --- device state (STATE_*) ------------------------------------------------ */

static uint8_t sbuf[RDMIG__MSG_MAX];
static struct rdmig__msg smsg, sgot;
static char serr[256];

static void make_desc(struct rdmig__msg *m, unsigned n)
{
	memset(m, 0, sizeof(*m));
	m->type = RDMIG__MSG_STATE_DESC;
	m->state_desc.nblobs = n;
	for (unsigned i = 0; i < n; i++)
		m->state_desc.blob[i] = (struct rdmig__wire_blob){
			.id = 0x100 + i,
			.len = 3 * 4096 + i,
			.zero_pages = i % 3,
			.nruns = i % 3 ? 1 : 0,
			.hash = { 0x1111000000000000ull + i, 0x2222000000000000ull + i },
		};
}

static void make_zero(struct rdmig__msg *m, unsigned n)
{
	memset(m, 0, sizeof(*m));
	m->type = RDMIG__MSG_STATE_ZERO;
	m->state_zero.blob = 5;
	m->state_zero.nruns = n;
	for (unsigned i = 0; i < n; i++)
		m->state_zero.run[i] = (struct rdmig__wire_run){ 10 * i + 1, 2 + i % 7 };
}

/* Encodes smsg, decodes into sgot: returns the length. */
static int state_round_trip(void)
{
	int len = rdmig__msg_encode(&smsg, sbuf, sizeof(sbuf), serr, sizeof(serr));

	if (len < 0)
		fail_msg("encode: %d %s", len, serr);
	memset(&sgot, 0xa5, sizeof(sgot));
	if (rdmig__msg_decode(sbuf, (size_t)len, &sgot, serr, sizeof(serr)))
		fail_msg("decode: %s", serr);
	assert_int_equal(sgot.type, smsg.type);
	return len;
}

static void proto_state_desc_round_trips_documented_layout(void **state)
{
	int len;

	(void)state;
	make_desc(&smsg, RDMIG_STATE_BLOBS_MAX);
	len = state_round_trip();
	assert_int_equal(len, 16 + 8 + 48 * RDMIG_STATE_BLOBS_MAX);
	assert_int_equal(sgot.state_desc.nblobs, RDMIG_STATE_BLOBS_MAX);
	for (unsigned i = 0; i < RDMIG_STATE_BLOBS_MAX; i++) {
		const struct rdmig__wire_blob *a = &smsg.state_desc.blob[i],
					      *b = &sgot.state_desc.blob[i];

		assert_int_equal(a->id, b->id);
		assert_int_equal(a->len, b->len);
		assert_int_equal(a->zero_pages, b->zero_pages);
		assert_int_equal(a->nruns, b->nruns);
		assert_int_equal(a->hash.lo, b->hash.lo);
		assert_int_equal(a->hash.hi, b->hash.hi);
	}
	/* u32 nblobs, u32 0, then { id, len, zero_pages, nruns, 0, hash lo, hi } */
	assert_int_equal(get_le(sbuf, 16, 4), RDMIG_STATE_BLOBS_MAX);
	assert_int_equal(get_le(sbuf, 20, 4), 0);
	assert_int_equal(get_le(sbuf, 24 + 48 * 2, 8), 0x102);
	assert_int_equal(get_le(sbuf, 24 + 48 * 2 + 8, 8), 3 * 4096 + 2);
	assert_int_equal(get_le(sbuf, 24 + 48 * 2 + 16, 8), 2);
	assert_int_equal(get_le(sbuf, 24 + 48 * 2 + 24, 4), 1);
	assert_int_equal(get_le(sbuf, 24 + 48 * 2 + 28, 4), 0);
	assert_int_equal(get_le(sbuf, 24 + 48 * 2 + 32, 8), 0x1111000000000002ull);
	assert_int_equal(get_le(sbuf, 24 + 48 * 2 + 40, 8), 0x2222000000000002ull);
}

static void proto_state_zero_ready_end_ack_round_trip(void **state)
{
	(void)state;
	make_zero(&smsg, RDMIG__STATE_MSG_RUNS);
	assert_int_equal(state_round_trip(), 16 + 8 + 16 * RDMIG__STATE_MSG_RUNS);
	assert_int_equal(sgot.state_zero.blob, 5);
	assert_memory_equal(sgot.state_zero.run, smsg.state_zero.run,
			    sizeof(smsg.state_zero.run[0]) * RDMIG__STATE_MSG_RUNS);
	assert_int_equal(get_le(sbuf, 24 + 16 * 3, 8), 31);
	assert_int_equal(get_le(sbuf, 24 + 16 * 3 + 8, 8), 5);
	/* As big as a sealed HASHES at most: fits every receive buffer. */
	assert_true(16 + 8 + 16 * RDMIG__STATE_MSG_RUNS + RDMIG__TRAILER_LEN <= RDMIG__MSG_MAX);

	memset(&smsg, 0, sizeof(smsg));
	smsg.type = RDMIG__MSG_STATE_READY;
	smsg.state_ready.nblobs = 3;
	smsg.state_ready.buf[1].addr = 0x7f0000001000ull;
	smsg.state_ready.buf[1].rkey = 0xabcd;
	assert_int_equal(state_round_trip(), 16 + 8 + 16 * 3);
	assert_int_equal(sgot.state_ready.nblobs, 3);
	assert_int_equal(sgot.state_ready.buf[1].addr, 0x7f0000001000ull);
	assert_int_equal(sgot.state_ready.buf[1].rkey, 0xabcd);
	assert_int_equal(get_le(sbuf, 24 + 16 + 8, 4), 0xabcd);

	memset(&smsg, 0, sizeof(smsg));
	smsg.type = RDMIG__MSG_STATE_END;
	smsg.state_end.nblobs = 2;
	smsg.state_end.writes = 7;
	smsg.state_end.bytes = 1ull << 33;
	assert_int_equal(state_round_trip(), 16 + 24);
	assert_int_equal(sgot.state_end.writes, 7);
	assert_int_equal(sgot.state_end.bytes, 1ull << 33);

	memset(&smsg, 0, sizeof(smsg));
	smsg.type = RDMIG__MSG_STATE_ACK;
	smsg.state_ack.nblobs = 64;
	smsg.state_ack.bytes = 12345;
	assert_int_equal(state_round_trip(), 16 + 16);
	assert_int_equal(sgot.state_ack.nblobs, 64);
	assert_int_equal(sgot.state_ack.bytes, 12345);
}

/* Encode refuses smsg (-EINVAL; decode runs the same checks), naming why. */
static void state_refused(const char *needle, int line)
{
	serr[0] = '\0';
	if (rdmig__msg_encode(&smsg, sbuf, sizeof(sbuf), serr, sizeof(serr)) != -EINVAL)
		fail_msg("line %d: encode took it", line);
	if (!strstr(serr, needle))
		fail_msg("line %d: '%s' does not contain '%s'", line, serr, needle);
}

/* Decodes sbuf[0..len) expecting -EBADMSG naming `needle`. */
static void state_decode_fails(size_t len, const char *needle, int line)
{
	serr[0] = '\0';
	if (rdmig__msg_decode(sbuf, len, &sgot, serr, sizeof(serr)) != -EBADMSG)
		fail_msg("line %d: decode took it", line);
	if (!strstr(serr, needle))
		fail_msg("line %d: '%s' does not contain '%s'", line, serr, needle);
}

static void proto_state_desc_bad_ebadmsg(void **state)
{
	int len;

	(void)state;
	make_desc(&smsg, 4);
	smsg.state_desc.blob[3].id = 0x101;
	state_refused("blobs 1 and 3 have the same id 0x101", __LINE__);
	make_desc(&smsg, 4);
	smsg.state_desc.blob[2].len = RDMIG_STATE_BLOB_MAX + 1;
	state_refused("blob 2 (id 0x102) of 4294967297 bytes is over the limit", __LINE__);
	make_desc(&smsg, 5);
	for (unsigned i = 0; i < 5; i++)
		smsg.state_desc.blob[i] =
			(struct rdmig__wire_blob){ .id = i, .len = RDMIG_STATE_BLOB_MAX };
	state_refused("over the limit of 17179869184", __LINE__);
	make_desc(&smsg, 1);
	smsg.state_desc.blob[0].zero_pages = 4; /* 3 pages and a byte hold 3 */
	smsg.state_desc.blob[0].nruns = 1;
	state_refused("cannot have 4 zero pages", __LINE__);
	make_desc(&smsg, 1);
	smsg.state_desc.blob[0].zero_pages = 1; /* zero pages in no run */
	state_refused("in 0 runs", __LINE__);
	make_desc(&smsg, 0);
	state_refused("0 blobs", __LINE__);

	/* On the wire: a duplicate id, a reserved field, more blobs than listed. */
	make_desc(&smsg, 4);
	len = rdmig__msg_encode(&smsg, sbuf, sizeof(sbuf), serr, sizeof(serr));
	assert_true(len > 0);
	put_le(sbuf, 24 + 48 * 3, 0x100, 8);
	state_decode_fails((size_t)len, "blobs 0 and 3 have the same id 0x100", __LINE__);
	put_le(sbuf, 24 + 48 * 3, 0x103, 8);
	put_le(sbuf, 24 + 48 * 3 + 28, 1, 4);
	state_decode_fails((size_t)len, "blob 3: reserved", __LINE__);
	put_le(sbuf, 24 + 48 * 3 + 28, 0, 4);
	put_le(sbuf, 16, 5, 4);
	state_decode_fails((size_t)len, "expected", __LINE__);
	put_le(sbuf, 16, RDMIG_STATE_BLOBS_MAX + 1, 4);
	state_decode_fails((size_t)len, "65 blobs", __LINE__);
	/* Cut short anywhere: refused. */
	put_le(sbuf, 16, 4, 4);
	for (int cut = 16; cut < len; cut++) {
		put_le(sbuf, OFF_LEN, (uint64_t)cut, 4);
		if (rdmig__msg_decode(sbuf, (size_t)cut, &sgot, serr, sizeof(serr)) != -EBADMSG)
			fail_msg("a STATE_DESC cut at %d bytes decoded", cut);
	}
}

static void proto_state_zero_bad_ebadmsg(void **state)
{
	(void)state;
	make_zero(&smsg, 3);
	smsg.state_zero.run[2].first = 12; /* run 1 is pages 11..13 */
	state_refused("run 2 (page 0xc) starts before run 1 ends (page 0xe)", __LINE__);
	make_zero(&smsg, 3);
	smsg.state_zero.run[1].count = 0;
	state_refused("run 1 (pages 0xb+0x0) is empty", __LINE__);
	make_zero(&smsg, 1);
	smsg.state_zero.run[0].first = RDMIG_STATE_BLOB_MAX / 4096;
	state_refused("past any blob", __LINE__);
	make_zero(&smsg, 1);
	smsg.state_zero.run[0].count = UINT64_MAX;
	state_refused("past any blob", __LINE__);
	make_zero(&smsg, 1);
	smsg.state_zero.blob = RDMIG_STATE_BLOBS_MAX;
	state_refused("blob 64 >= 64", __LINE__);
	make_zero(&smsg, 0);
	state_refused("0 runs", __LINE__);

	memset(&smsg, 0, sizeof(smsg));
	smsg.type = RDMIG__MSG_STATE_END;
	smsg.state_end.nblobs = 1;
	smsg.state_end.writes = 2;
	smsg.state_end.bytes = 1;
	state_refused("2 writes for 1 bytes", __LINE__);
	smsg.state_end.nblobs = 0;
	state_refused("0 blobs", __LINE__);
	memset(&smsg, 0, sizeof(smsg));
	smsg.type = RDMIG__MSG_STATE_READY;
	state_refused("0 blobs", __LINE__);
	smsg.type = RDMIG__MSG_STATE_ACK;
	state_refused("0 blobs", __LINE__);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(proto_connect_ctrl_round_trips),
		cmocka_unit_test(proto_connect_data_round_trips),
		cmocka_unit_test(proto_hello_round_trips),
		cmocka_unit_test(proto_challenge_round_trips),
		cmocka_unit_test(proto_auth_one_region_round_trips),
		cmocka_unit_test(proto_auth_max_regions_round_trips),
		cmocka_unit_test(proto_hello_ack_one_region_round_trips),
		cmocka_unit_test(proto_hello_ack_max_regions_round_trips),
		cmocka_unit_test(proto_pass_end_round_trips),
		cmocka_unit_test(proto_pass_ack_round_trips),
		cmocka_unit_test(proto_progress_round_trips),
		cmocka_unit_test(proto_notice_round_trips),
		cmocka_unit_test(proto_hashes_round_trips),
		cmocka_unit_test(proto_flags_and_opaque_bytes_round_trip),
		cmocka_unit_test(proto_unknown_capabilities_round_trip),
		cmocka_unit_test(proto_complete_round_trips),
		cmocka_unit_test(proto_complete_ack_round_trips),
		cmocka_unit_test(proto_error_round_trips),
		cmocka_unit_test(proto_error_all_printable_text_round_trips),
		cmocka_unit_test(proto_error_max_text_round_trips),
		cmocka_unit_test(proto_auth_gigabyte_pages_round_trips),
		cmocka_unit_test(proto_connect_data_encodes_documented_layout),
		cmocka_unit_test(proto_connect_ctrl_encodes_documented_layout),
		cmocka_unit_test(proto_hello_encodes_documented_layout),
		cmocka_unit_test(proto_challenge_encodes_documented_layout),
		cmocka_unit_test(proto_auth_encodes_documented_layout),
		cmocka_unit_test(proto_hello_ack_encodes_documented_layout),
		cmocka_unit_test(proto_pass_end_encodes_documented_layout),
		cmocka_unit_test(proto_notice_encodes_documented_layout),
		cmocka_unit_test(proto_hashes_encodes_documented_layout),
		cmocka_unit_test(proto_regions_encode_at_documented_offsets),
		cmocka_unit_test(proto_decode_bad_magic_ebadmsg),
		cmocka_unit_test(proto_decode_unknown_version_eproto),
		cmocka_unit_test(proto_decode_unknown_type_ebadmsg),
		cmocka_unit_test(proto_decode_nonzero_flags_ebadmsg),
		cmocka_unit_test(proto_decode_length_mismatch_ebadmsg),
		cmocka_unit_test(proto_decode_nonzero_reserved_ebadmsg),
		cmocka_unit_test(proto_decode_bad_page_size_ebadmsg),
		cmocka_unit_test(proto_decode_page_size_not_power_of_two_ebadmsg),
		cmocka_unit_test(proto_decode_page_size_out_of_range_ebadmsg),
		cmocka_unit_test(proto_decode_smaller_page_size_accepted),
		cmocka_unit_test(proto_decode_bad_nqps_ebadmsg),
		cmocka_unit_test(proto_decode_zero_regions_ebadmsg),
		cmocka_unit_test(proto_decode_too_many_regions_ebadmsg),
		cmocka_unit_test(proto_decode_auth_count_mismatch_ebadmsg),
		cmocka_unit_test(proto_decode_zero_region_length_ebadmsg),
		cmocka_unit_test(proto_decode_misaligned_region_ebadmsg),
		cmocka_unit_test(proto_decode_region_wraparound_ebadmsg),
		cmocka_unit_test(proto_decode_overlapping_regions_ebadmsg),
		cmocka_unit_test(proto_decode_overlapping_destination_addr_ebadmsg),
		cmocka_unit_test(proto_decode_adjacent_regions_accepted),
		cmocka_unit_test(proto_decode_zero_token_ebadmsg),
		cmocka_unit_test(proto_decode_connect_bad_fields_ebadmsg),
		cmocka_unit_test(proto_decode_connect_without_tag_ebadmsg),
		cmocka_unit_test(proto_decode_unsupported_ack_version_eproto),
		cmocka_unit_test(proto_decode_zero_pass_ebadmsg),
		cmocka_unit_test(proto_decode_pass_end_bad_qp_ebadmsg),
		cmocka_unit_test(proto_decode_pass_end_more_writes_than_bytes_ebadmsg),
		cmocka_unit_test(proto_decode_bad_hello_version_range_ebadmsg),
		cmocka_unit_test(proto_decode_hello_unknown_auth_mode_ebadmsg),
		cmocka_unit_test(proto_decode_hello_unknown_capabilities_accepted),
		cmocka_unit_test(proto_decode_opaque_bytes_accepted),
		cmocka_unit_test(proto_decode_legacy_hello_reads_only_the_range),
		cmocka_unit_test(proto_encode_legacy_hello_einval),
		cmocka_unit_test(proto_decode_later_hello_reads_the_frozen_part),
		cmocka_unit_test(proto_decode_short_hello_ebadmsg),
		cmocka_unit_test(proto_decode_challenge_bad_fields_ebadmsg),
		cmocka_unit_test(proto_decode_challenge_wrong_size_ebadmsg),
		cmocka_unit_test(proto_decode_auth_unknown_flags_ebadmsg),
		cmocka_unit_test(proto_decode_ack_unknown_region_flags_ebadmsg),
		cmocka_unit_test(proto_decode_block_bad_region_ebadmsg),
		cmocka_unit_test(proto_decode_block_bad_npages_ebadmsg),
		cmocka_unit_test(proto_decode_hashes_first_not_a_page_ebadmsg),
		cmocka_unit_test(proto_decode_notice_pages_not_increasing_ebadmsg),
		cmocka_unit_test(proto_decode_notice_count_mismatch_ebadmsg),
		cmocka_unit_test(proto_decode_hashes_landed_zero_beyond_npages_ebadmsg),
		cmocka_unit_test(proto_decode_hashes_more_than_pages_ebadmsg),
		cmocka_unit_test(proto_decode_hashes_count_mismatch_ebadmsg),
		cmocka_unit_test(proto_decode_error_code_out_of_range_ebadmsg),
		cmocka_unit_test(proto_decode_error_unprintable_text_ebadmsg),
		cmocka_unit_test(proto_decode_error_text_too_long_ebadmsg),
		cmocka_unit_test(proto_decode_truncated_at_every_offset_ebadmsg),
		cmocka_unit_test(proto_decode_oversized_ebadmsg),
		cmocka_unit_test(proto_decode_trailing_bytes_ebadmsg),
		cmocka_unit_test(proto_decode_without_error_buffer_still_fails),
		cmocka_unit_test(proto_ext_trailer_round_trips),
		cmocka_unit_test(proto_ext_zero_trailer_is_plain),
		cmocka_unit_test(proto_ext_decode_refuses_what_plain_decode_refuses),
		cmocka_unit_test(proto_ext_trailer_needs_room_enospc),
		cmocka_unit_test(proto_peek_len_short_input_ebadmsg),
		cmocka_unit_test(proto_peek_len_garbage_ebadmsg),
		cmocka_unit_test(proto_peek_len_valid_returns_header_length),
		cmocka_unit_test(proto_peek_len_huge_length_stays_positive),
		cmocka_unit_test(proto_encode_invalid_message_einval),
		cmocka_unit_test(proto_encode_small_buffer_enospc),
		cmocka_unit_test(proto_connect_fits_private_data),
		cmocka_unit_test(proto_type_name_names_every_type),
		cmocka_unit_test(proto_state_desc_round_trips_documented_layout),
		cmocka_unit_test(proto_state_zero_ready_end_ack_round_trip),
		cmocka_unit_test(proto_state_desc_bad_ebadmsg),
		cmocka_unit_test(proto_state_zero_bad_ebadmsg),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

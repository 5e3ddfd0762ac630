/* SPDX-License-Identifier: MIT */
/*
 * Encoder and decoder of the wire protocol (see proto.h). Both run the same
 * validate() so that nothing we send would be refused by our own decoder,
 * and nothing a peer sends reaches session code unchecked.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "proto.h"

#define CONNECT_LEN   32
#define CHALL_LEN     (16 + RDMIG__NONCE_LEN + RDMIG__KEY_LEN)
#define AUTH_FIXED    16
#define AUTH_REGION   16
#define ACK_FIXED     24
#define ACK_REGION    32
#define NOTICE_FIXED  16
#define NOTICE_PAGE   8
#define HASHES_FIXED  (32 + 8 * RDMIG__NOTICE_WORDS)
#define HASHES_HASH   16
#define STATE_FIXED   8
#define STATE_BLOB    48
#define STATE_RUN     16
#define STATE_BUF     16
#define STATE_END_LEN 24
#define STATE_ACK_LEN 16
/* The smallest page size: no blob has more zero pages than this many fit. */
#define STATE_MIN_PAGE 4096

const char *rdmig__msg_type_name(unsigned type)
{
	static const char *const names[] = {
		[RDMIG__MSG_CONNECT] = "CONNECT",
		[RDMIG__MSG_HELLO] = "HELLO",
		[RDMIG__MSG_HELLO_ACK] = "HELLO_ACK",
		[RDMIG__MSG_PASS_END] = "PASS_END",
		[RDMIG__MSG_PASS_ACK] = "PASS_ACK",
		[RDMIG__MSG_COMPLETE] = "COMPLETE",
		[RDMIG__MSG_COMPLETE_ACK] = "COMPLETE_ACK",
		[RDMIG__MSG_ERROR] = "ERROR",
		[RDMIG__MSG_PROGRESS] = "PROGRESS",
		[RDMIG__MSG_NOTICE] = "NOTICE",
		[RDMIG__MSG_HASHES] = "HASHES",
		[RDMIG__MSG_CHALLENGE] = "CHALLENGE",
		[RDMIG__MSG_AUTH] = "AUTH",
		[RDMIG__MSG_STATE_DESC] = "STATE_DESC",
		[RDMIG__MSG_STATE_ZERO] = "STATE_ZERO",
		[RDMIG__MSG_STATE_READY] = "STATE_READY",
		[RDMIG__MSG_STATE_END] = "STATE_END",
		[RDMIG__MSG_STATE_ACK] = "STATE_ACK",
	};

	return type && type <= RDMIG__MSG_TYPE_MAX ? names[type] : "unknown";
}

/* --- little-endian cursor ------------------------------------------------ */

struct cur {
	uint8_t *p;
	size_t left;
};

static void put(struct cur *c, uint64_t v, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		c->p[i] = (uint8_t)(v >> (8 * i));
	c->p += n;
	c->left -= n;
}

struct rcur {
	const uint8_t *p;
	size_t left;
};

static uint64_t get(struct rcur *c, unsigned n)
{
	uint64_t v = 0;

	for (unsigned i = 0; i < n; i++)
		v |= (uint64_t)c->p[i] << (8 * i);
	c->p += n;
	c->left -= n;
	return v;
}

/* --- validation shared by encode and decode -------------------------------- */

static int check_page_size(uint32_t ps, char *err, size_t errlen)
{
	if (ps < RDMIG_PAGE_SIZE_MIN || ps > RDMIG_PAGE_SIZE_MAX || (ps & (ps - 1)))
		return rdmig__errf(err, errlen, -EBADMSG,
				   "page size %u is not a power of two in [4096, 1G]", ps);
	return 0;
}

static int check_range(const char *what, unsigned i, uint64_t start, uint64_t len, uint32_t ps,
		       char *err, size_t errlen)
{
	if (len == 0)
		return rdmig__errf(err, errlen, -EBADMSG, "region %u: %s length is 0", i, what);
	if (start % ps || len % ps)
		return rdmig__errf(err, errlen, -EBADMSG,
				   "region %u: %s 0x%llx+0x%llx is not aligned to the page size %u",
				   i, what, (unsigned long long)start, (unsigned long long)len, ps);
	if (start + len < start)
		return rdmig__errf(err, errlen, -EBADMSG,
				   "region %u: %s 0x%llx+0x%llx wraps around", i, what,
				   (unsigned long long)start, (unsigned long long)len);
	return 0;
}

/* Regions are few (at most RDMIG__MAX_REGIONS): a quadratic check is fine. */
static int check_overlap(unsigned n, uint64_t (*start)(const void *, unsigned),
			 uint64_t (*len)(const void *, unsigned), const void *arr, const char *what,
			 char *err, size_t errlen)
{
	for (unsigned i = 0; i < n; i++)
		for (unsigned j = i + 1; j < n; j++) {
			uint64_t a = start(arr, i), b = start(arr, j);

			if (a < b + len(arr, j) && b < a + len(arr, i))
				return rdmig__errf(err, errlen, -EBADMSG,
						   "regions %u and %u overlap in %s space", i, j,
						   what);
		}
	return 0;
}

static uint64_t auth_gpa(const void *a, unsigned i)
{
	return ((const struct rdmig__wire_region *)a)[i].gpa;
}

static uint64_t auth_len(const void *a, unsigned i)
{
	return ((const struct rdmig__wire_region *)a)[i].len;
}

static uint64_t ack_gpa(const void *a, unsigned i)
{
	return ((const struct rdmig__wire_target *)a)[i].gpa;
}

static uint64_t ack_len(const void *a, unsigned i)
{
	return ((const struct rdmig__wire_target *)a)[i].len;
}

static uint64_t ack_addr(const void *a, unsigned i)
{
	return ((const struct rdmig__wire_target *)a)[i].addr;
}

/* The first bit of an entry bitmap at or beyond npages, or -1 if none is set. */
static int bit_beyond(const uint64_t *bm, uint32_t npages)
{
	for (unsigned w = 0; w < RDMIG__NOTICE_WORDS; w++) {
		uint64_t beyond = npages >= 64 * (w + 1) ? 0
				  : npages <= 64 * w	 ? ~0ull
							 : ~0ull << (npages % 64);

		if (bm[w] & beyond)
			return (int)(64 * w) + __builtin_ctzll(bm[w] & beyond);
	}
	return -1;
}

static unsigned bitmap_weight(const uint64_t *bm)
{
	unsigned n = 0;

	for (unsigned w = 0; w < RDMIG__NOTICE_WORDS; w++)
		n += (unsigned)__builtin_popcountll(bm[w]);
	return n;
}

/* The fields a NOTICE and its HASHES share: a pass, a region, 1..256 pages. */
static int check_list(const char *name, uint64_t pass, uint32_t region, uint32_t npages, char *err,
		      size_t errlen)
{
	if (!pass)
		return rdmig__errf(err, errlen, -EBADMSG, "%s: pass 0", name);
	if (region >= RDMIG__MAX_REGIONS)
		return rdmig__errf(err, errlen, -EBADMSG, "%s: region %u >= %u", name, region,
				   RDMIG__MAX_REGIONS);
	if (!npages || npages > RDMIG__NOTICE_PAGES)
		return rdmig__errf(err, errlen, -EBADMSG, "%s: %u pages, not in [1, %u]", name,
				   npages, RDMIG__NOTICE_PAGES);
	return 0;
}

static int validate_notice(const struct rdmig__msg *m, char *err, size_t errlen)
{
	int ret;

	if ((ret = check_list("NOTICE", m->notice.pass, m->notice.region, m->notice.npages, err,
			      errlen)))
		return ret;
	/* Increasing: no page twice, and the last is the largest. */
	for (uint32_t i = 1; i < m->notice.npages; i++) {
		uint64_t prev = m->notice.page[i - 1] & ~RDMIG__NOTICE_ZERO;
		uint64_t page = m->notice.page[i] & ~RDMIG__NOTICE_ZERO;

		if (page <= prev)
			return rdmig__errf(
				err, errlen, -EBADMSG,
				"NOTICE: page 0x%llx (entry %u) does not follow page 0x%llx",
				(unsigned long long)page, i, (unsigned long long)prev);
	}
	return 0;
}

static int validate_hashes(const struct rdmig__msg *m, char *err, size_t errlen)
{
	unsigned zero;
	int ret, bit;

	if ((ret = check_list("HASHES", m->hashes.pass, m->hashes.region, m->hashes.npages, err,
			      errlen)))
		return ret;
	if (m->hashes.first & RDMIG__NOTICE_ZERO)
		return rdmig__errf(err, errlen, -EBADMSG,
				   "HASHES: first page 0x%llx is not a page index",
				   (unsigned long long)m->hashes.first);
	if ((bit = bit_beyond(m->hashes.landed_zero, m->hashes.npages)) >= 0)
		return rdmig__errf(err, errlen, -EBADMSG,
				   "HASHES: landed-zero page %d is beyond its %u pages", bit,
				   m->hashes.npages);
	/* no underflow: every landed_zero bit is below npages */
	zero = bitmap_weight(m->hashes.landed_zero);
	if (m->hashes.nhashes > m->hashes.npages - zero)
		return rdmig__errf(err, errlen, -EBADMSG,
				   "HASHES: %u hashes for %u pages (%u of %u landed zero)",
				   m->hashes.nhashes, m->hashes.npages - zero, zero,
				   m->hashes.npages);
	return 0;
}

static int check_nblobs(const char *name, uint32_t n, char *err, size_t errlen)
{
	if (!n || n > RDMIG_STATE_BLOBS_MAX)
		return rdmig__errf(err, errlen, -EBADMSG, "%s: %u blobs, not in [1, %u]", name, n,
				   RDMIG_STATE_BLOBS_MAX);
	return 0;
}

/*
 * The limits of rdmig.h, every id once, and zero-page counts a blob can
 * hold (the session's page size is the caller's to check).
 */
static int validate_state_desc(const struct rdmig__msg *m, char *err, size_t errlen)
{
	uint64_t total = 0, runs = 0;
	int ret;

	if ((ret = check_nblobs("STATE_DESC", m->state_desc.nblobs, err, errlen)))
		return ret;
	for (uint32_t i = 0; i < m->state_desc.nblobs; i++) {
		const struct rdmig__wire_blob *b = &m->state_desc.blob[i];

		if (b->len > RDMIG_STATE_BLOB_MAX)
			return rdmig__errf(
				err, errlen, -EBADMSG,
				"STATE_DESC: blob %u (id 0x%llx) of %llu bytes is over the "
				"limit of %llu",
				i, (unsigned long long)b->id, (unsigned long long)b->len,
				(unsigned long long)RDMIG_STATE_BLOB_MAX);
		if (b->zero_pages > b->len / STATE_MIN_PAGE || b->nruns > b->zero_pages ||
		    (b->zero_pages && !b->nruns))
			return rdmig__errf(
				err, errlen, -EBADMSG,
				"STATE_DESC: blob %u (id 0x%llx, %llu bytes) cannot have %llu "
				"zero pages in %u runs",
				i, (unsigned long long)b->id, (unsigned long long)b->len,
				(unsigned long long)b->zero_pages, b->nruns);
		total += b->len; /* no overflow: 64 blobs of at most 4 GiB */
		runs += b->nruns;
		for (uint32_t j = 0; j < i; j++)
			if (m->state_desc.blob[j].id == b->id)
				return rdmig__errf(
					err, errlen, -EBADMSG,
					"STATE_DESC: blobs %u and %u have the same id 0x%llx", j, i,
					(unsigned long long)b->id);
	}
	if (total > RDMIG_STATE_TOTAL_MAX)
		return rdmig__errf(err, errlen, -EBADMSG,
				   "STATE_DESC: %llu bytes of blobs, over the limit of %llu",
				   (unsigned long long)total,
				   (unsigned long long)RDMIG_STATE_TOTAL_MAX);
	if (runs > RDMIG_STATE_ZERO_RUNS_MAX)
		return rdmig__errf(err, errlen, -EBADMSG,
				   "STATE_DESC: %llu runs of zero pages > %u",
				   (unsigned long long)runs, RDMIG_STATE_ZERO_RUNS_MAX);
	return 0;
}

static int validate_state_zero(const struct rdmig__msg *m, char *err, size_t errlen)
{
	const uint64_t max_pages = RDMIG_STATE_BLOB_MAX / STATE_MIN_PAGE;
	uint64_t end = 0;

	if (m->state_zero.blob >= RDMIG_STATE_BLOBS_MAX)
		return rdmig__errf(err, errlen, -EBADMSG, "STATE_ZERO: blob %u >= %u",
				   m->state_zero.blob, RDMIG_STATE_BLOBS_MAX);
	if (!m->state_zero.nruns || m->state_zero.nruns > RDMIG__STATE_MSG_RUNS)
		return rdmig__errf(err, errlen, -EBADMSG, "STATE_ZERO: %u runs, not in [1, %u]",
				   m->state_zero.nruns, RDMIG__STATE_MSG_RUNS);
	/* Increasing and disjoint: no page twice, the last ends furthest. */
	for (uint32_t i = 0; i < m->state_zero.nruns; i++) {
		const struct rdmig__wire_run *r = &m->state_zero.run[i];

		if (!r->count || r->first > max_pages || r->count > max_pages - r->first)
			return rdmig__errf(
				err, errlen, -EBADMSG,
				"STATE_ZERO: run %u (pages 0x%llx+0x%llx) is empty or past "
				"any blob",
				i, (unsigned long long)r->first, (unsigned long long)r->count);
		if (i && r->first < end)
			return rdmig__errf(
				err, errlen, -EBADMSG,
				"STATE_ZERO: run %u (page 0x%llx) starts before run %u ends "
				"(page 0x%llx)",
				i, (unsigned long long)r->first, i - 1, (unsigned long long)end);
		end = r->first + r->count;
	}
	return 0;
}

static int validate(const struct rdmig__msg *m, char *err, size_t errlen)
{
	int ret;

	switch (m->type) {
	case RDMIG__MSG_CONNECT:
		if (m->connect.kind == RDMIG__CONN_CTRL) {
			if (m->connect.index || m->connect.token)
				return rdmig__errf(
					err, errlen, -EBADMSG,
					"CONNECT: control connection with index %u token %llx",
					m->connect.index, (unsigned long long)m->connect.token);
		} else if (m->connect.kind == RDMIG__CONN_DATA) {
			if (m->connect.index >= RDMIG__MAX_QPS)
				return rdmig__errf(err, errlen, -EBADMSG,
						   "CONNECT: data QP index %u >= %u",
						   m->connect.index, RDMIG__MAX_QPS);
			if (!m->connect.token)
				return rdmig__errf(err, errlen, -EBADMSG,
						   "CONNECT: data QP without token");
		} else {
			return rdmig__errf(err, errlen, -EBADMSG, "CONNECT: unknown kind %u",
					   m->connect.kind);
		}
		return 0;
	case RDMIG__MSG_HELLO:
		if (!m->hello.ver_min || m->hello.ver_min > m->hello.ver_max)
			return rdmig__errf(err, errlen, -EBADMSG,
					   "HELLO: bad version range [%u, %u]", m->hello.ver_min,
					   m->hello.ver_max);
		if (!m->hello.legacy && m->hello.auth > RDMIG__AUTH_PSK)
			return rdmig__errf(err, errlen, -EBADMSG, "HELLO: unknown auth mode %u",
					   m->hello.auth);
		return 0; /* unknown capability bits are ignored, not refused */
	case RDMIG__MSG_CHALLENGE:
		if (!m->challenge.version)
			return rdmig__errf(err, errlen, -EBADMSG, "CHALLENGE: version 0");
		if (m->challenge.auth > RDMIG__AUTH_PSK)
			return rdmig__errf(err, errlen, -EBADMSG, "CHALLENGE: unknown auth mode %u",
					   m->challenge.auth);
		return 0;
	case RDMIG__MSG_AUTH:
		if ((ret = check_page_size(m->auth.page_size, err, errlen)))
			return ret;
		if (!m->auth.nqps || m->auth.nqps > RDMIG__MAX_QPS)
			return rdmig__errf(err, errlen, -EBADMSG,
					   "AUTH: %u data QPs, not in [1, %u]", m->auth.nqps,
					   RDMIG__MAX_QPS);
		if (m->auth.flags & ~RDMIG__AUTH_FLAGS)
			return rdmig__errf(err, errlen, -EBADMSG, "AUTH: unknown flags 0x%x",
					   m->auth.flags & ~RDMIG__AUTH_FLAGS);
		if (!m->auth.nregions || m->auth.nregions > RDMIG__MAX_REGIONS)
			return rdmig__errf(err, errlen, -EBADMSG,
					   "AUTH: %u regions, not in [1, %u]", m->auth.nregions,
					   RDMIG__MAX_REGIONS);
		for (unsigned i = 0; i < m->auth.nregions; i++) {
			const struct rdmig__wire_region *r = &m->auth.regions[i];

			if ((ret = check_range("gpa", i, r->gpa, r->len, m->auth.page_size, err,
					       errlen)))
				return ret;
		}
		return check_overlap(m->auth.nregions, auth_gpa, auth_len, m->auth.regions,
				     "guest-physical", err, errlen);
	case RDMIG__MSG_HELLO_ACK:
		if (m->hello_ack.version != RDMIG__PROTO_VERSION)
			return rdmig__errf(err, errlen, -EPROTO,
					   "HELLO_ACK: unsupported version %u",
					   m->hello_ack.version);
		if ((ret = check_page_size(m->hello_ack.page_size, err, errlen)))
			return ret;
		if (!m->hello_ack.nqps || m->hello_ack.nqps > RDMIG__MAX_QPS)
			return rdmig__errf(err, errlen, -EBADMSG,
					   "HELLO_ACK: %u data QPs, not in [1, %u]",
					   m->hello_ack.nqps, RDMIG__MAX_QPS);
		if (!m->hello_ack.nregions || m->hello_ack.nregions > RDMIG__MAX_REGIONS)
			return rdmig__errf(err, errlen, -EBADMSG,
					   "HELLO_ACK: %u regions, not in [1, %u]",
					   m->hello_ack.nregions, RDMIG__MAX_REGIONS);
		if (!m->hello_ack.token)
			return rdmig__errf(err, errlen, -EBADMSG, "HELLO_ACK: token is 0");
		for (unsigned i = 0; i < m->hello_ack.nregions; i++) {
			const struct rdmig__wire_target *r = &m->hello_ack.regions[i];

			if ((ret = check_range("gpa", i, r->gpa, r->len, m->hello_ack.page_size,
					       err, errlen)) ||
			    (ret = check_range("addr", i, r->addr, r->len, m->hello_ack.page_size,
					       err, errlen)))
				return ret;
			if (r->flags & ~RDMIG__TARGET_ZERO)
				return rdmig__errf(err, errlen, -EBADMSG,
						   "HELLO_ACK: region %u has unknown flags 0x%x", i,
						   r->flags & ~RDMIG__TARGET_ZERO);
		}
		if ((ret = check_overlap(m->hello_ack.nregions, ack_gpa, ack_len,
					 m->hello_ack.regions, "guest-physical", err, errlen)))
			return ret;
		return check_overlap(m->hello_ack.nregions, ack_addr, ack_len, m->hello_ack.regions,
				     "destination address", err, errlen);
	case RDMIG__MSG_PASS_END:
		if (!m->pass_end.pass)
			return rdmig__errf(err, errlen, -EBADMSG, "PASS_END: pass 0");
		if (m->pass_end.qp >= RDMIG__MAX_QPS)
			return rdmig__errf(err, errlen, -EBADMSG, "PASS_END: QP index %u >= %u",
					   m->pass_end.qp, RDMIG__MAX_QPS);
		if (m->pass_end.writes > m->pass_end.bytes)
			return rdmig__errf(err, errlen, -EBADMSG,
					   "PASS_END: %llu writes for %llu bytes",
					   (unsigned long long)m->pass_end.writes,
					   (unsigned long long)m->pass_end.bytes);
		return 0;
	case RDMIG__MSG_PASS_ACK:
		if (!m->pass_ack.pass)
			return rdmig__errf(err, errlen, -EBADMSG, "PASS_ACK: pass 0");
		return 0;
	case RDMIG__MSG_PROGRESS:
		if (!m->progress.pass)
			return rdmig__errf(err, errlen, -EBADMSG, "PROGRESS: pass 0");
		return 0;
	case RDMIG__MSG_NOTICE:
		return validate_notice(m, err, errlen);
	case RDMIG__MSG_HASHES:
		return validate_hashes(m, err, errlen);
	case RDMIG__MSG_STATE_DESC:
		return validate_state_desc(m, err, errlen);
	case RDMIG__MSG_STATE_ZERO:
		return validate_state_zero(m, err, errlen);
	case RDMIG__MSG_STATE_READY:
		return check_nblobs("STATE_READY", m->state_ready.nblobs, err, errlen);
	case RDMIG__MSG_STATE_END:
		if ((ret = check_nblobs("STATE_END", m->state_end.nblobs, err, errlen)))
			return ret;
		if (m->state_end.writes > m->state_end.bytes)
			return rdmig__errf(err, errlen, -EBADMSG,
					   "STATE_END: %llu writes for %llu bytes",
					   (unsigned long long)m->state_end.writes,
					   (unsigned long long)m->state_end.bytes);
		return 0;
	case RDMIG__MSG_STATE_ACK:
		return check_nblobs("STATE_ACK", m->state_ack.nblobs, err, errlen);
	case RDMIG__MSG_COMPLETE:
	case RDMIG__MSG_COMPLETE_ACK:
		return 0;
	case RDMIG__MSG_ERROR:
		if (m->error.code <= 0 || m->error.code >= 4096)
			return rdmig__errf(err, errlen, -EBADMSG, "ERROR: code %d is not an errno",
					   m->error.code);
		if (m->error.len > RDMIG__ERRMSG_MAX)
			return rdmig__errf(err, errlen, -EBADMSG, "ERROR: text of %u bytes > %u",
					   m->error.len, RDMIG__ERRMSG_MAX);
		for (uint32_t i = 0; i < m->error.len; i++)
			if (m->error.text[i] < 0x20 || m->error.text[i] > 0x7e)
				return rdmig__errf(err, errlen, -EBADMSG,
						   "ERROR: text byte %u is not printable ASCII", i);
		return 0;
	default:
		return rdmig__errf(err, errlen, -EBADMSG, "unknown message type %u", m->type);
	}
}

/* Payload length of a message of this type (validated: its counts are in range). */
static size_t payload_len(const struct rdmig__msg *m)
{
	switch (m->type) {
	case RDMIG__MSG_CONNECT:
		return CONNECT_LEN;
	case RDMIG__MSG_HELLO:
		return RDMIG__HELLO_LEN;
	case RDMIG__MSG_CHALLENGE:
		return CHALL_LEN;
	case RDMIG__MSG_AUTH:
		return AUTH_FIXED + (size_t)m->auth.nregions * AUTH_REGION + RDMIG__KEY_LEN;
	case RDMIG__MSG_HELLO_ACK:
		return ACK_FIXED + (size_t)m->hello_ack.nregions * ACK_REGION;
	case RDMIG__MSG_PASS_END:
		return 32;
	case RDMIG__MSG_PASS_ACK:
	case RDMIG__MSG_PROGRESS:
		return 16;
	case RDMIG__MSG_COMPLETE:
		return 8;
	case RDMIG__MSG_COMPLETE_ACK:
		return 8;
	case RDMIG__MSG_NOTICE:
		return NOTICE_FIXED + (size_t)m->notice.npages * NOTICE_PAGE;
	case RDMIG__MSG_HASHES:
		return HASHES_FIXED + (size_t)m->hashes.nhashes * HASHES_HASH;
	case RDMIG__MSG_ERROR:
		return 8 + (size_t)m->error.len;
	case RDMIG__MSG_STATE_DESC:
		return STATE_FIXED + (size_t)m->state_desc.nblobs * STATE_BLOB;
	case RDMIG__MSG_STATE_ZERO:
		return STATE_FIXED + (size_t)m->state_zero.nruns * STATE_RUN;
	case RDMIG__MSG_STATE_READY:
		return STATE_FIXED + (size_t)m->state_ready.nblobs * STATE_BUF;
	case RDMIG__MSG_STATE_END:
		return STATE_END_LEN;
	case RDMIG__MSG_STATE_ACK:
		return STATE_ACK_LEN;
	default:
		return 0;
	}
}

static void put_bytes(struct cur *c, const void *p, size_t n)
{
	memcpy(c->p, p, n);
	c->p += n;
	c->left -= n;
}

int rdmig__msg_encode(const struct rdmig__msg *m, void *buf, size_t cap, char *err, size_t errlen)
{
	return rdmig__msg_encode_ext(m, 0, buf, cap, err, errlen);
}

int rdmig__msg_encode_ext(const struct rdmig__msg *m, size_t trailer, void *buf, size_t cap,
			  char *err, size_t errlen)
{
	struct cur c = { buf, cap };
	size_t len;
	int ret;

	if (m->type == RDMIG__MSG_HELLO && m->hello.legacy)
		return rdmig__errf(err, errlen, -EINVAL, "HELLO: a legacy offer is never sent");
	ret = validate(m, err, errlen);
	if (ret)
		return ret == -EBADMSG || ret == -EPROTO ? -EINVAL : ret;
	len = RDMIG__HDR_LEN + payload_len(m) + trailer;
	if (len > cap || len > RDMIG__MSG_MAX)
		return rdmig__errf(err, errlen, -ENOSPC, "%s of %zu bytes does not fit in %zu",
				   rdmig__msg_type_name(m->type), len,
				   RDMIG__MIN(cap, (size_t)RDMIG__MSG_MAX));

	put(&c, RDMIG__PROTO_MAGIC, 4);
	put(&c, RDMIG__PROTO_VERSION, 2);
	put(&c, m->type, 2);
	put(&c, len, 4);
	put(&c, 0, 4);
	switch (m->type) {
	case RDMIG__MSG_CONNECT:
		put(&c, m->connect.kind, 4);
		put(&c, m->connect.index, 4);
		put(&c, m->connect.token, 8);
		put_bytes(&c, m->connect.tag, RDMIG__TAG_LEN);
		break;
	case RDMIG__MSG_HELLO:
		put(&c, m->hello.ver_min, 2);
		put(&c, m->hello.ver_max, 2);
		put(&c, m->hello.caps, 4);
		put(&c, m->hello.auth, 4);
		put(&c, 0, 4);
		put_bytes(&c, m->hello.nonce, RDMIG__NONCE_LEN);
		break;
	case RDMIG__MSG_CHALLENGE:
		put(&c, m->challenge.version, 2);
		put(&c, 0, 2);
		put(&c, m->challenge.caps, 4);
		put(&c, m->challenge.auth, 4);
		put(&c, 0, 4);
		put_bytes(&c, m->challenge.nonce, RDMIG__NONCE_LEN);
		put_bytes(&c, m->challenge.proof, RDMIG__KEY_LEN);
		break;
	case RDMIG__MSG_AUTH:
		put(&c, m->auth.page_size, 4);
		put(&c, m->auth.nqps, 4);
		put(&c, m->auth.nregions, 4);
		put(&c, m->auth.flags, 4);
		for (unsigned i = 0; i < m->auth.nregions; i++) {
			put(&c, m->auth.regions[i].gpa, 8);
			put(&c, m->auth.regions[i].len, 8);
		}
		put_bytes(&c, m->auth.proof, RDMIG__KEY_LEN);
		break;
	case RDMIG__MSG_HELLO_ACK:
		put(&c, m->hello_ack.version, 2);
		put(&c, 0, 2);
		put(&c, m->hello_ack.page_size, 4);
		put(&c, m->hello_ack.nqps, 4);
		put(&c, m->hello_ack.nregions, 4);
		put(&c, m->hello_ack.token, 8);
		for (unsigned i = 0; i < m->hello_ack.nregions; i++) {
			const struct rdmig__wire_target *r = &m->hello_ack.regions[i];

			put(&c, r->gpa, 8);
			put(&c, r->len, 8);
			put(&c, r->addr, 8);
			put(&c, r->rkey, 4);
			put(&c, r->flags, 4);
		}
		break;
	case RDMIG__MSG_PASS_END:
		put(&c, m->pass_end.pass, 8);
		put(&c, m->pass_end.qp, 4);
		put(&c, 0, 4);
		put(&c, m->pass_end.writes, 8);
		put(&c, m->pass_end.bytes, 8);
		break;
	case RDMIG__MSG_PASS_ACK:
		put(&c, m->pass_ack.pass, 8);
		put(&c, m->pass_ack.bytes, 8);
		break;
	case RDMIG__MSG_PROGRESS:
		put(&c, m->progress.pass, 8);
		put(&c, m->progress.elapsed_ms, 8);
		break;
	case RDMIG__MSG_NOTICE:
		put(&c, m->notice.pass, 8);
		put(&c, m->notice.region, 4);
		put(&c, m->notice.npages, 4);
		for (unsigned i = 0; i < m->notice.npages; i++)
			put(&c, m->notice.page[i], 8);
		break;
	case RDMIG__MSG_HASHES:
		put(&c, m->hashes.pass, 8);
		put(&c, m->hashes.region, 4);
		put(&c, m->hashes.npages, 4);
		put(&c, m->hashes.first, 8);
		for (unsigned w = 0; w < RDMIG__NOTICE_WORDS; w++)
			put(&c, m->hashes.landed_zero[w], 8);
		put(&c, m->hashes.nhashes, 4);
		put(&c, 0, 4);
		for (unsigned i = 0; i < m->hashes.nhashes; i++) {
			put(&c, m->hashes.hash[i].lo, 8);
			put(&c, m->hashes.hash[i].hi, 8);
		}
		break;
	case RDMIG__MSG_COMPLETE:
		put(&c, m->complete.passes, 8);
		break;
	case RDMIG__MSG_COMPLETE_ACK:
		put(&c, m->complete.passes, 8);
		break;
	case RDMIG__MSG_ERROR:
		put(&c, (uint32_t)m->error.code, 4);
		put(&c, m->error.len, 4);
		memcpy(c.p, m->error.text, m->error.len);
		break;
	case RDMIG__MSG_STATE_DESC:
		put(&c, m->state_desc.nblobs, 4);
		put(&c, 0, 4);
		for (uint32_t i = 0; i < m->state_desc.nblobs; i++) {
			const struct rdmig__wire_blob *b = &m->state_desc.blob[i];

			put(&c, b->id, 8);
			put(&c, b->len, 8);
			put(&c, b->zero_pages, 8);
			put(&c, b->nruns, 4);
			put(&c, 0, 4);
			put(&c, b->hash.lo, 8);
			put(&c, b->hash.hi, 8);
		}
		break;
	case RDMIG__MSG_STATE_ZERO:
		put(&c, m->state_zero.blob, 4);
		put(&c, m->state_zero.nruns, 4);
		for (uint32_t i = 0; i < m->state_zero.nruns; i++) {
			put(&c, m->state_zero.run[i].first, 8);
			put(&c, m->state_zero.run[i].count, 8);
		}
		break;
	case RDMIG__MSG_STATE_READY:
		put(&c, m->state_ready.nblobs, 4);
		put(&c, 0, 4);
		for (uint32_t i = 0; i < m->state_ready.nblobs; i++) {
			put(&c, m->state_ready.buf[i].addr, 8);
			put(&c, m->state_ready.buf[i].rkey, 4);
			put(&c, 0, 4);
		}
		break;
	case RDMIG__MSG_STATE_END:
		put(&c, m->state_end.nblobs, 4);
		put(&c, 0, 4);
		put(&c, m->state_end.writes, 8);
		put(&c, m->state_end.bytes, 8);
		break;
	case RDMIG__MSG_STATE_ACK:
		put(&c, m->state_ack.nblobs, 4);
		put(&c, 0, 4);
		put(&c, m->state_ack.bytes, 8);
		break;
	}
	return (int)len;
}

int rdmig__msg_peek_len(const void *buf, size_t len)
{
	struct rcur c = { buf, len };
	uint32_t magic, mlen;

	if (len < RDMIG__HDR_LEN)
		return -EBADMSG;
	magic = (uint32_t)get(&c, 4);
	if (magic != RDMIG__PROTO_MAGIC)
		return -EBADMSG;
	c.p += 4; /* version, type */
	mlen = (uint32_t)get(&c, 4);
	return mlen > INT32_MAX ? INT32_MAX : (int)mlen;
}

/* Checks that the payload holds exactly `want` bytes (both counted from its start). */
static int expect(const char *type, size_t have, size_t want, char *err, size_t errlen)
{
	if (have != want)
		return rdmig__errf(err, errlen, -EBADMSG, "%s: payload of %zu bytes, expected %zu",
				   type, have, want);
	return 0;
}

static void get_bytes(struct rcur *c, void *p, size_t n)
{
	memcpy(p, c->p, n);
	c->p += n;
	c->left -= n;
}

/* HELLO, whatever the version in its header (proto.h: frozen). */
static int decode_hello(struct rcur *c, uint16_t version, struct rdmig__msg *m, char *err,
			size_t errlen)
{
	memset(&m->hello, 0, sizeof(m->hello));
	m->hello.legacy = version < RDMIG__PROTO_MIN;
	if (c->left < (m->hello.legacy ? 4 : RDMIG__HELLO_LEN))
		return expect("HELLO", c->left, m->hello.legacy ? 4 : RDMIG__HELLO_LEN, err,
			      errlen);
	m->hello.ver_min = (uint16_t)get(c, 2);
	m->hello.ver_max = (uint16_t)get(c, 2);
	if (m->hello.legacy)
		return 0;
	m->hello.caps = (uint32_t)get(c, 4);
	m->hello.auth = (uint32_t)get(c, 4);
	if (get(c, 4))
		return rdmig__errf(err, errlen, -EBADMSG, "HELLO: reserved field is not 0");
	get_bytes(c, m->hello.nonce, RDMIG__NONCE_LEN);
	return 0; /* a later version's appended fields are not ours to read */
}

int rdmig__msg_decode(const void *buf, size_t len, struct rdmig__msg *m, char *err, size_t errlen)
{
	return rdmig__msg_decode_ext(buf, len, 0, m, err, errlen);
}

int rdmig__msg_decode_ext(const void *buf, size_t len, size_t trailer, struct rdmig__msg *m,
			  char *err, size_t errlen)
{
	struct rcur c = { buf, len };
	uint32_t magic, mlen, flags, n;
	uint16_t version;
	const char *name;
	int ret;

	if (len < RDMIG__HDR_LEN + trailer)
		return rdmig__errf(err, errlen, -EBADMSG,
				   "message of %zu bytes is shorter than a header", len);
	if (len > RDMIG__MSG_MAX)
		return rdmig__errf(err, errlen, -EBADMSG, "message of %zu bytes exceeds %u", len,
				   RDMIG__MSG_MAX);
	magic = (uint32_t)get(&c, 4);
	version = (uint16_t)get(&c, 2);
	m->type = (uint16_t)get(&c, 2);
	mlen = (uint32_t)get(&c, 4);
	flags = (uint32_t)get(&c, 4);
	if (magic != RDMIG__PROTO_MAGIC)
		return rdmig__errf(err, errlen, -EBADMSG, "bad magic 0x%08x", magic);
	if (mlen != len)
		return rdmig__errf(err, errlen, -EBADMSG, "header says %u bytes, %zu arrived", mlen,
				   len);
	if (flags)
		return rdmig__errf(err, errlen, -EBADMSG, "header flags 0x%x are not 0", flags);
	c.left -= trailer;
	if (m->type == RDMIG__MSG_HELLO) {
		if ((ret = decode_hello(&c, version, m, err, errlen)))
			return ret;
		return validate(m, err, errlen);
	}
	if (version != RDMIG__PROTO_VERSION)
		return rdmig__errf(err, errlen, -EPROTO,
				   "unsupported protocol version %u (we speak %u)", version,
				   RDMIG__PROTO_VERSION);
	name = rdmig__msg_type_name(m->type);

	switch (m->type) {
	case RDMIG__MSG_CONNECT:
		if ((ret = expect(name, c.left, CONNECT_LEN, err, errlen)))
			return ret;
		m->connect.kind = (uint32_t)get(&c, 4);
		m->connect.index = (uint32_t)get(&c, 4);
		m->connect.token = get(&c, 8);
		get_bytes(&c, m->connect.tag, RDMIG__TAG_LEN);
		break;
	case RDMIG__MSG_CHALLENGE:
		if ((ret = expect(name, c.left, CHALL_LEN, err, errlen)))
			return ret;
		m->challenge.version = (uint16_t)get(&c, 2);
		if (get(&c, 2))
			return rdmig__errf(err, errlen, -EBADMSG,
					   "CHALLENGE: reserved field is not 0");
		m->challenge.caps = (uint32_t)get(&c, 4);
		m->challenge.auth = (uint32_t)get(&c, 4);
		if (get(&c, 4))
			return rdmig__errf(err, errlen, -EBADMSG,
					   "CHALLENGE: reserved field is not 0");
		get_bytes(&c, m->challenge.nonce, RDMIG__NONCE_LEN);
		get_bytes(&c, m->challenge.proof, RDMIG__KEY_LEN);
		break;
	case RDMIG__MSG_AUTH:
		if (c.left < AUTH_FIXED + RDMIG__KEY_LEN)
			return expect(name, c.left, AUTH_FIXED + RDMIG__KEY_LEN, err, errlen);
		m->auth.page_size = (uint32_t)get(&c, 4);
		m->auth.nqps = (uint32_t)get(&c, 4);
		n = m->auth.nregions = (uint32_t)get(&c, 4);
		m->auth.flags = (uint32_t)get(&c, 4);
		if (n > RDMIG__MAX_REGIONS)
			return rdmig__errf(err, errlen, -EBADMSG,
					   "AUTH: %u regions, not in [1, %u]", n,
					   RDMIG__MAX_REGIONS);
		if ((ret = expect(name, AUTH_FIXED + c.left,
				  AUTH_FIXED + (size_t)n * AUTH_REGION + RDMIG__KEY_LEN, err,
				  errlen)))
			return ret;
		for (unsigned i = 0; i < n; i++) {
			m->auth.regions[i].gpa = get(&c, 8);
			m->auth.regions[i].len = get(&c, 8);
		}
		get_bytes(&c, m->auth.proof, RDMIG__KEY_LEN);
		break;
	case RDMIG__MSG_HELLO_ACK:
		if (c.left < ACK_FIXED)
			return expect(name, c.left, ACK_FIXED, err, errlen);
		m->hello_ack.version = (uint16_t)get(&c, 2);
		if (get(&c, 2))
			return rdmig__errf(err, errlen, -EBADMSG,
					   "HELLO_ACK: reserved field is not 0");
		m->hello_ack.page_size = (uint32_t)get(&c, 4);
		m->hello_ack.nqps = (uint32_t)get(&c, 4);
		n = m->hello_ack.nregions = (uint32_t)get(&c, 4);
		m->hello_ack.token = get(&c, 8);
		if (n > RDMIG__MAX_REGIONS)
			return rdmig__errf(err, errlen, -EBADMSG,
					   "HELLO_ACK: %u regions, not in [1, %u]", n,
					   RDMIG__MAX_REGIONS);
		if ((ret = expect(name, ACK_FIXED + c.left, ACK_FIXED + (size_t)n * ACK_REGION, err,
				  errlen)))
			return ret;
		for (unsigned i = 0; i < n; i++) {
			struct rdmig__wire_target *r = &m->hello_ack.regions[i];

			r->gpa = get(&c, 8);
			r->len = get(&c, 8);
			r->addr = get(&c, 8);
			r->rkey = (uint32_t)get(&c, 4);
			r->flags = (uint32_t)get(&c, 4);
		}
		break;
	case RDMIG__MSG_PASS_END:
		if ((ret = expect(name, c.left, 32, err, errlen)))
			return ret;
		m->pass_end.pass = get(&c, 8);
		m->pass_end.qp = (uint32_t)get(&c, 4);
		if (get(&c, 4))
			return rdmig__errf(err, errlen, -EBADMSG,
					   "PASS_END: reserved field is not 0");
		m->pass_end.writes = get(&c, 8);
		m->pass_end.bytes = get(&c, 8);
		break;
	case RDMIG__MSG_PASS_ACK:
		if ((ret = expect(name, c.left, 16, err, errlen)))
			return ret;
		m->pass_ack.pass = get(&c, 8);
		m->pass_ack.bytes = get(&c, 8);
		break;
	case RDMIG__MSG_PROGRESS:
		if ((ret = expect(name, c.left, 16, err, errlen)))
			return ret;
		m->progress.pass = get(&c, 8);
		m->progress.elapsed_ms = get(&c, 8);
		break;
	case RDMIG__MSG_NOTICE:
		if (c.left < NOTICE_FIXED)
			return expect(name, c.left, NOTICE_FIXED, err, errlen);
		m->notice.pass = get(&c, 8);
		m->notice.region = (uint32_t)get(&c, 4);
		n = m->notice.npages = (uint32_t)get(&c, 4);
		if (!n || n > RDMIG__NOTICE_PAGES)
			return rdmig__errf(err, errlen, -EBADMSG,
					   "NOTICE: %u pages, not in [1, %u]", n,
					   RDMIG__NOTICE_PAGES);
		if ((ret = expect(name, NOTICE_FIXED + c.left,
				  NOTICE_FIXED + (size_t)n * NOTICE_PAGE, err, errlen)))
			return ret;
		for (unsigned i = 0; i < n; i++)
			m->notice.page[i] = get(&c, 8);
		break;
	case RDMIG__MSG_HASHES:
		if (c.left < HASHES_FIXED)
			return expect(name, c.left, HASHES_FIXED, err, errlen);
		m->hashes.pass = get(&c, 8);
		m->hashes.region = (uint32_t)get(&c, 4);
		m->hashes.npages = (uint32_t)get(&c, 4);
		m->hashes.first = get(&c, 8);
		for (unsigned w = 0; w < RDMIG__NOTICE_WORDS; w++)
			m->hashes.landed_zero[w] = get(&c, 8);
		n = m->hashes.nhashes = (uint32_t)get(&c, 4);
		if (get(&c, 4))
			return rdmig__errf(err, errlen, -EBADMSG,
					   "HASHES: reserved field is not 0");
		if (n > RDMIG__NOTICE_PAGES)
			return rdmig__errf(err, errlen, -EBADMSG, "HASHES: %u hashes > %u", n,
					   RDMIG__NOTICE_PAGES);
		if ((ret = expect(name, HASHES_FIXED + c.left,
				  HASHES_FIXED + (size_t)n * HASHES_HASH, err, errlen)))
			return ret;
		for (unsigned i = 0; i < n; i++) {
			m->hashes.hash[i].lo = get(&c, 8);
			m->hashes.hash[i].hi = get(&c, 8);
		}
		break;
	case RDMIG__MSG_COMPLETE:
	case RDMIG__MSG_COMPLETE_ACK:
		if ((ret = expect(name, c.left, 8, err, errlen)))
			return ret;
		m->complete.passes = get(&c, 8);
		break;
	case RDMIG__MSG_ERROR:
		if (c.left < 8)
			return expect(name, c.left, 8, err, errlen);
		m->error.code = (int32_t)(uint32_t)get(&c, 4);
		m->error.len = (uint32_t)get(&c, 4);
		if (m->error.len > RDMIG__ERRMSG_MAX)
			return rdmig__errf(err, errlen, -EBADMSG, "ERROR: text of %u bytes > %u",
					   m->error.len, RDMIG__ERRMSG_MAX);
		if ((ret = expect(name, 8 + c.left, 8 + (size_t)m->error.len, err, errlen)))
			return ret;
		memcpy(m->error.text, c.p, m->error.len);
		m->error.text[m->error.len] = '\0';
		break;
	case RDMIG__MSG_STATE_DESC:
		if (c.left < STATE_FIXED)
			return expect(name, c.left, STATE_FIXED, err, errlen);
		n = m->state_desc.nblobs = (uint32_t)get(&c, 4);
		if (get(&c, 4))
			return rdmig__errf(err, errlen, -EBADMSG,
					   "STATE_DESC: reserved field is not 0");
		if ((ret = check_nblobs(name, n, err, errlen)) ||
		    (ret = expect(name, STATE_FIXED + c.left, STATE_FIXED + (size_t)n * STATE_BLOB,
				  err, errlen)))
			return ret;
		for (uint32_t i = 0; i < n; i++) {
			struct rdmig__wire_blob *b = &m->state_desc.blob[i];

			b->id = get(&c, 8);
			b->len = get(&c, 8);
			b->zero_pages = get(&c, 8);
			b->nruns = (uint32_t)get(&c, 4);
			if (get(&c, 4))
				return rdmig__errf(err, errlen, -EBADMSG,
						   "STATE_DESC: blob %u: reserved field is not 0",
						   i);
			b->hash.lo = get(&c, 8);
			b->hash.hi = get(&c, 8);
		}
		break;
	case RDMIG__MSG_STATE_ZERO:
		if (c.left < STATE_FIXED)
			return expect(name, c.left, STATE_FIXED, err, errlen);
		m->state_zero.blob = (uint32_t)get(&c, 4);
		n = m->state_zero.nruns = (uint32_t)get(&c, 4);
		if (!n || n > RDMIG__STATE_MSG_RUNS)
			return rdmig__errf(err, errlen, -EBADMSG,
					   "STATE_ZERO: %u runs, not in [1, %u]", n,
					   RDMIG__STATE_MSG_RUNS);
		if ((ret = expect(name, STATE_FIXED + c.left, STATE_FIXED + (size_t)n * STATE_RUN,
				  err, errlen)))
			return ret;
		for (uint32_t i = 0; i < n; i++) {
			m->state_zero.run[i].first = get(&c, 8);
			m->state_zero.run[i].count = get(&c, 8);
		}
		break;
	case RDMIG__MSG_STATE_READY:
		if (c.left < STATE_FIXED)
			return expect(name, c.left, STATE_FIXED, err, errlen);
		n = m->state_ready.nblobs = (uint32_t)get(&c, 4);
		if (get(&c, 4))
			return rdmig__errf(err, errlen, -EBADMSG,
					   "STATE_READY: reserved field is not 0");
		if ((ret = check_nblobs(name, n, err, errlen)) ||
		    (ret = expect(name, STATE_FIXED + c.left, STATE_FIXED + (size_t)n * STATE_BUF,
				  err, errlen)))
			return ret;
		for (uint32_t i = 0; i < n; i++) {
			m->state_ready.buf[i].addr = get(&c, 8);
			m->state_ready.buf[i].rkey = (uint32_t)get(&c, 4);
			if (get(&c, 4))
				return rdmig__errf(
					err, errlen, -EBADMSG,
					"STATE_READY: buffer %u: reserved field is not 0", i);
		}
		break;
	case RDMIG__MSG_STATE_END:
		if ((ret = expect(name, c.left, STATE_END_LEN, err, errlen)))
			return ret;
		m->state_end.nblobs = (uint32_t)get(&c, 4);
		if (get(&c, 4))
			return rdmig__errf(err, errlen, -EBADMSG,
					   "STATE_END: reserved field is not 0");
		m->state_end.writes = get(&c, 8);
		m->state_end.bytes = get(&c, 8);
		break;
	case RDMIG__MSG_STATE_ACK:
		if ((ret = expect(name, c.left, STATE_ACK_LEN, err, errlen)))
			return ret;
		m->state_ack.nblobs = (uint32_t)get(&c, 4);
		if (get(&c, 4))
			return rdmig__errf(err, errlen, -EBADMSG,
					   "STATE_ACK: reserved field is not 0");
		m->state_ack.bytes = get(&c, 8);
		break;
	default:
		return rdmig__errf(err, errlen, -EBADMSG, "unknown message type %u", m->type);
	}
	return validate(m, err, errlen);
}

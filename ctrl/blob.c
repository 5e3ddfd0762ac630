/* SPDX-License-Identifier: MIT */
/* Device state at both ends; see blob.h. */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "../common/util.h"
#include "blob.h"

/* --- source ---------------------------------------------------------------- */

static int check_blobs(const struct rdmig_blob *blobs, unsigned n)
{
	uint64_t total = 0;

	if (!blobs)
		return rdmig__err(-EINVAL, "blobs is NULL");
	if (!n || n > RDMIG_STATE_BLOBS_MAX)
		return rdmig__err(-EINVAL, "%u blobs: send 1 to %u (RDMIG_STATE_BLOBS_MAX)", n,
				  RDMIG_STATE_BLOBS_MAX);
	for (unsigned i = 0; i < n; i++) {
		const struct rdmig_blob *b = &blobs[i];

		if (b->len > RDMIG_STATE_BLOB_MAX)
			return rdmig__err(-EINVAL,
					  "blob %u (id 0x%" PRIx64 ") of %" PRIu64
					  " bytes is over the limit of %llu (RDMIG_STATE_BLOB_MAX)",
					  i, b->id, b->len, RDMIG_STATE_BLOB_MAX);
		if (!b->data && b->len)
			return rdmig__err(-EINVAL,
					  "blob %u (id 0x%" PRIx64 "): data is NULL for %" PRIu64
					  " bytes",
					  i, b->id, b->len);
		if (b->flags || b->reserved)
			return rdmig__err(-EINVAL,
					  "blob %u (id 0x%" PRIx64 "): flags 0x%x, reserved 0x%x: "
					  "both must be 0",
					  i, b->id, b->flags, b->reserved);
		for (unsigned j = 0; j < i; j++)
			if (blobs[j].id == b->id)
				return rdmig__err(-EINVAL,
						  "blobs %u and %u have the same id 0x%" PRIx64
						  ": each blob needs an id of its own",
						  j, i, b->id);
		total += b->len;
	}
	if (total > RDMIG_STATE_TOTAL_MAX)
		return rdmig__err(-EINVAL,
				  "%u blobs of %" PRIu64 " bytes in all, over the limit of %llu "
				  "(RDMIG_STATE_TOTAL_MAX)",
				  n, total, RDMIG_STATE_TOTAL_MAX);
	return 0;
}

/* Appends a run of zero pages to the blob being scanned (merging with the last). */
static int add_run(struct rdmig__state_tx *tx, struct rdmig__state_tx_blob *b, uint64_t page)
{
	struct rdmig__wire_run *last = b->nruns ? &tx->runs[tx->nruns - 1] : NULL;

	if (last && last->first + last->count == page) {
		last->count++;
		return 0;
	}
	if (tx->nruns == RDMIG_STATE_ZERO_RUNS_MAX)
		return 1; /* the rest goes on the wire */
	if (tx->nruns == tx->cap) {
		uint64_t cap = tx->cap ? tx->cap * 2 : 64;
		struct rdmig__wire_run *r = realloc(tx->runs, cap * sizeof(*r));

		if (!r)
			return rdmig__err(-ENOMEM, "no memory for %" PRIu64 " runs of zero pages",
					  cap);
		tx->runs = r;
		tx->cap = cap;
	}
	tx->runs[tx->nruns++] = (struct rdmig__wire_run){ page, 1 };
	b->nruns++;
	return 0;
}

/* Where the bytes to write of blob b begin and end (its zero runs known). */
static void find_span(const struct rdmig__state_tx *tx, struct rdmig__state_tx_blob *b)
{
	const uint64_t ps = tx->page_size;
	const struct rdmig__wire_run *r = &tx->runs[b->run0];

	b->span_lo = 0;
	b->span_hi = b->len;
	if (!b->nruns)
		return;
	if (r[0].first == 0)
		b->span_lo = r[0].count * ps;
	if ((r[b->nruns - 1].first + r[b->nruns - 1].count) * ps == b->len)
		b->span_hi = r[b->nruns - 1].first * ps;
	if (b->span_hi < b->span_lo) /* all of it zero */
		b->span_hi = b->span_lo;
}

int rdmig__state_tx_prepare(struct rdmig__state_tx *tx, const struct rdmig_blob *blobs, unsigned n,
			    uint32_t page_size, const struct rdmig__scanner *sc,
			    const struct rdmig__scan_key *key, int (*tick)(void *arg), void *arg)
{
	static const uint8_t none[1];
	uint64_t t0 = rdmig__now_ns(), since = 0;
	bool full = false;
	int ret;

	memset(tx, 0, sizeof(*tx));
	if ((ret = check_blobs(blobs, n)))
		return ret;
	tx->page_size = page_size;
	tx->n = n;
	for (unsigned i = 0; i < n; i++) {
		struct rdmig__state_tx_blob *b = &tx->b[i];
		uint64_t pages = blobs[i].len / page_size;

		b->id = blobs[i].id;
		b->len = blobs[i].len;
		b->data = blobs[i].len ? blobs[i].data : none;
		b->run0 = tx->nruns;
		for (uint64_t p = 0; p < pages && !full; p++) {
			if ((since += page_size) >= RDMIG__STATE_TICK) {
				since = 0;
				if (tick && (ret = tick(arg)) < 0)
					return ret;
			}
			if (!sc->ops.is_zero(b->data + p * page_size, page_size))
				continue;
			if ((ret = add_run(tx, b, p)) < 0)
				return ret;
			full = ret == 1;
			b->zero_pages += !full;
		}
		/* The whole blob, zero pages included: they land as zero there. */
		sc->ops.hash(key, b->data, b->len, &b->hash);
		if (tick && (ret = tick(arg)) < 0)
			return ret;
		find_span(tx, b);
		tx->bytes += b->len;
		tx->zero_pages += b->zero_pages;
		tx->wire_bytes += b->len - b->zero_pages * page_size;
	}
	tx->scan_ns = rdmig__now_ns() - t0;
	return 0;
}

void rdmig__state_tx_desc(const struct rdmig__state_tx *tx, struct rdmig__msg *m)
{
	memset(m, 0, offsetof(struct rdmig__msg, state_desc.blob));
	m->type = RDMIG__MSG_STATE_DESC;
	m->state_desc.nblobs = tx->n;
	for (unsigned i = 0; i < tx->n; i++)
		m->state_desc.blob[i] =
			(struct rdmig__wire_blob){ .id = tx->b[i].id,
						   .len = tx->b[i].len,
						   .zero_pages = tx->b[i].zero_pages,
						   .nruns = tx->b[i].nruns,
						   .hash = tx->b[i].hash };
}

bool rdmig__state_tx_next_zero(struct rdmig__state_tx *tx, struct rdmig__msg *m)
{
	const struct rdmig__state_tx_blob *b;
	uint32_t k;

	while (tx->zblob < tx->n && tx->zrun == tx->b[tx->zblob].nruns) {
		tx->zblob++;
		tx->zrun = 0;
	}
	if (tx->zblob == tx->n)
		return false;
	b = &tx->b[tx->zblob];
	k = (uint32_t)RDMIG__MIN((uint64_t)RDMIG__STATE_MSG_RUNS, b->nruns - tx->zrun);
	memset(m, 0, offsetof(struct rdmig__msg, state_zero.run));
	m->type = RDMIG__MSG_STATE_ZERO;
	m->state_zero.blob = tx->zblob;
	m->state_zero.nruns = k;
	memcpy(m->state_zero.run, &tx->runs[b->run0 + tx->zrun], k * sizeof(tx->runs[0]));
	tx->zrun += k;
	return true;
}

int rdmig__state_tx_register(struct rdmig__state_tx *tx, const struct rdmig__xp_ops *xp,
			     struct rdmig__xp_pd *pd)
{
	for (unsigned i = 0; i < tx->n; i++) {
		struct rdmig__state_tx_blob *b = &tx->b[i];
		int ret;

		if (b->span_hi == b->span_lo)
			continue; /* nothing of it goes */
		/* Local read only: nothing may write the VMM's blob. */
		ret = xp->mr_reg(pd, (void *)(uintptr_t)(b->data + b->span_lo),
				 b->span_hi - b->span_lo, 0, &b->mr);
		if (ret)
			return rdmig__err(ret,
					  "cannot register blob %u (id 0x%" PRIx64 ", %" PRIu64
					  " bytes) for reading: %s",
					  i, b->id, b->span_hi - b->span_lo, strerror(-ret));
	}
	return 0;
}

int rdmig__state_tx_targets(struct rdmig__state_tx *tx, const struct rdmig__msg *m)
{
	if (m->type != RDMIG__MSG_STATE_READY)
		return rdmig__err(-EPROTO, "expected STATE_READY from the destination, got %s",
				  rdmig__msg_type_name(m->type));
	if (m->state_ready.nblobs != tx->n)
		return rdmig__err(-EPROTO, "STATE_READY holds %u buffers for our %u blobs",
				  m->state_ready.nblobs, tx->n);
	for (unsigned i = 0; i < tx->n; i++) {
		struct rdmig__state_tx_blob *b = &tx->b[i];

		b->raddr = m->state_ready.buf[i].addr;
		b->rkey = m->state_ready.buf[i].rkey;
		if (b->raddr + b->len < b->raddr)
			return rdmig__err(-EPROTO,
					  "STATE_READY: the buffer of blob %u at 0x%" PRIx64
					  " wraps around",
					  i, b->raddr);
	}
	return 0;
}

bool rdmig__state_tx_next_write(struct rdmig__state_tx *tx, uint64_t max, unsigned *blob,
				uint64_t *off, uint64_t *len)
{
	const uint64_t ps = tx->page_size;

	while (tx->wblob < tx->n) {
		const struct rdmig__state_tx_blob *b = &tx->b[tx->wblob];
		uint64_t limit = b->len;

		if (tx->woff >= b->len) {
			tx->wblob++;
			tx->woff = tx->wrun = 0;
			continue;
		}
		if (tx->wrun < b->nruns) {
			const struct rdmig__wire_run *r = &tx->runs[b->run0 + tx->wrun];

			if (tx->woff >= r->first * ps) { /* a zero run: left off the wire */
				tx->woff = (r->first + r->count) * ps;
				tx->wrun++;
				continue;
			}
			limit = r->first * ps;
		}
		*blob = tx->wblob;
		*off = tx->woff;
		*len = RDMIG__MIN(limit - tx->woff, max);
		tx->woff += *len;
		return true;
	}
	return false;
}

void rdmig__state_tx_release(struct rdmig__state_tx *tx, const struct rdmig__xp_ops *xp)
{
	for (unsigned i = 0; i < tx->n; i++) {
		if (tx->b[i].mr)
			xp->mr_dereg(tx->b[i].mr);
		tx->b[i].mr = NULL;
	}
	free(tx->runs);
	tx->runs = NULL;
	tx->nruns = tx->cap = 0;
}

/* --- destination ----------------------------------------------------------- */

int rdmig__state_rx_desc(struct rdmig__state_rx *rx, const struct rdmig__msg *m, uint32_t page_size,
			 char *err, size_t errlen)
{
	if (rx->step != RDMIG__STATE_NONE)
		return rdmig__errf(err, errlen, -EPROTO,
				   "STATE_DESC, but the device state was described already");
	for (uint32_t i = 0; i < m->state_desc.nblobs; i++) {
		const struct rdmig__wire_blob *w = &m->state_desc.blob[i];

		if (w->zero_pages > w->len / page_size)
			return rdmig__errf(err, errlen, -EPROTO,
					   "STATE_DESC: blob %u (id 0x%" PRIx64 ", %" PRIu64
					   " bytes) cannot hold %" PRIu64 " zero pages of %u bytes",
					   i, w->id, w->len, w->zero_pages, page_size);
	}
	rx->step = RDMIG__STATE_RUNS;
	rx->n = m->state_desc.nblobs;
	for (uint32_t i = 0; i < rx->n; i++) {
		const struct rdmig__wire_blob *w = &m->state_desc.blob[i];
		struct rdmig__state_rx_blob *b = &rx->b[i];

		memset(b, 0, sizeof(*b));
		b->id = w->id;
		b->len = w->len;
		b->zero_pages = w->zero_pages;
		b->nruns = w->nruns;
		b->hash = w->hash;
		rx->bytes += w->len;
		rx->zero += w->zero_pages;
		rx->wire += w->len - w->zero_pages * page_size;
		if (!w->len)
			continue;
		if (rx->alloc) {
			b->buf = rx->alloc(rx->alloc_arg, w->id, w->len);
			if (!b->buf)
				return rdmig__errf(
					err, errlen, -ENOMEM,
					"the VMM gave no buffer for blob %u (id 0x%" PRIx64
					", %" PRIu64 " bytes)",
					i, w->id, w->len);
			continue;
		}
		/* Fresh anonymous memory reads zero: its zero pages need nothing. */
		b->map_len = (w->len + page_size - 1) / page_size * page_size;
		b->buf = mmap(NULL, b->map_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
			      -1, 0);
		if (b->buf == MAP_FAILED) {
			b->buf = NULL;
			b->map_len = 0;
			return rdmig__errf(err, errlen, -ENOMEM,
					   "no memory for blob %u (id 0x%" PRIx64 ", %" PRIu64
					   " bytes): %s",
					   i, w->id, w->len, strerror(errno));
		}
	}
	rx->zblob = 0;
	while (rx->zblob < rx->n && !rx->b[rx->zblob].nruns)
		rx->zblob++;
	return 0;
}

int rdmig__state_rx_zero(struct rdmig__state_rx *rx, const struct rdmig__msg *m, uint32_t page_size,
			 char *err, size_t errlen)
{
	struct rdmig__state_rx_blob *b;
	uint32_t bi = m->state_zero.blob;

	if (rx->step != RDMIG__STATE_RUNS || rx->zblob == rx->n)
		return rdmig__errf(err, errlen, -EPROTO,
				   "STATE_ZERO for blob %u when no run is due", bi);
	if (bi != rx->zblob)
		return rdmig__errf(err, errlen, -EPROTO,
				   "STATE_ZERO for blob %u while the runs of blob %u are due", bi,
				   rx->zblob);
	b = &rx->b[bi];
	if (m->state_zero.nruns > b->nruns - b->runs_seen)
		return rdmig__errf(err, errlen, -EPROTO,
				   "STATE_ZERO: %u more runs for blob %u (id 0x%" PRIx64
				   "), which has %u left",
				   m->state_zero.nruns, bi, b->id, b->nruns - b->runs_seen);
	for (uint32_t i = 0; i < m->state_zero.nruns; i++) {
		const struct rdmig__wire_run *r = &m->state_zero.run[i];

		/* Within the blob's whole pages, after the runs before it, within its count. */
		if ((b->runs_seen && r->first < b->end_page) ||
		    r->first + r->count > b->len / page_size ||
		    r->count > b->zero_pages - b->zero_seen)
			return rdmig__errf(err, errlen, -EPROTO,
					   "STATE_ZERO: blob %u (id 0x%" PRIx64 ", %" PRIu64
					   " bytes): run of pages %" PRIu64 "+%" PRIu64
					   " does not follow page %" PRIu64 " within its %" PRIu64
					   " zero pages",
					   bi, b->id, b->len, r->first, r->count, b->end_page,
					   b->zero_pages);
		if (!b->map_len)
			memset(b->buf + r->first * page_size, 0, r->count * page_size);
		b->runs_seen++;
		b->zero_seen += r->count;
		b->end_page = r->first + r->count;
	}
	if (b->runs_seen < b->nruns)
		return 0;
	if (b->zero_seen != b->zero_pages)
		return rdmig__errf(err, errlen, -EPROTO,
				   "STATE_ZERO: blob %u (id 0x%" PRIx64 ") has %" PRIu64
				   " zero pages in its runs, %" PRIu64 " in STATE_DESC",
				   bi, b->id, b->zero_seen, b->zero_pages);
	while (++rx->zblob < rx->n && !rx->b[rx->zblob].nruns)
		;
	return 0;
}

int rdmig__state_rx_expose(struct rdmig__state_rx *rx, const struct rdmig__xp_ops *xp,
			   struct rdmig__xp_pd *pd, struct rdmig__msg *ready, char *err,
			   size_t errlen)
{
	memset(ready, 0, offsetof(struct rdmig__msg, state_ready.buf));
	ready->type = RDMIG__MSG_STATE_READY;
	ready->state_ready.nblobs = rx->n;
	for (unsigned i = 0; i < rx->n; i++) {
		struct rdmig__state_rx_blob *b = &rx->b[i];
		int ret;

		ready->state_ready.buf[i].addr = 0;
		ready->state_ready.buf[i].rkey = 0;
		if (!b->len)
			continue;
		ret = xp->mr_reg(pd, b->buf, b->len,
				 IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE, &b->mr);
		if (ret)
			return rdmig__errf(err, errlen, ret,
					   "cannot register the buffer of blob %u (id 0x%" PRIx64
					   ", %" PRIu64 " bytes): %s",
					   i, b->id, b->len, strerror(-ret));
		ready->state_ready.buf[i].addr = (uintptr_t)b->buf;
		ready->state_ready.buf[i].rkey = b->mr->rkey;
	}
	rx->step = RDMIG__STATE_EXPOSED;
	return 0;
}

void rdmig__state_rx_withdraw(struct rdmig__state_rx *rx, const struct rdmig__xp_ops *xp)
{
	for (unsigned i = 0; i < rx->n; i++) {
		if (rx->b[i].mr)
			xp->mr_dereg(rx->b[i].mr);
		rx->b[i].mr = NULL;
	}
}

int rdmig__state_rx_end(struct rdmig__state_rx *rx, const struct rdmig__xp_ops *xp,
			const struct rdmig__msg *m, const struct rdmig__scanner *sc,
			const struct rdmig__scan_key *key, struct rdmig__msg *ack, char *err,
			size_t errlen)
{
	static const uint8_t none[1];

	/* Every WRITE before this message is placed: no more may come. */
	rdmig__state_rx_withdraw(rx, xp);
	if (rx->step != RDMIG__STATE_EXPOSED)
		return rdmig__errf(err, errlen, -EPROTO, "STATE_END before the buffers were given");
	if (m->state_end.nblobs != rx->n || m->state_end.bytes != rx->wire)
		return rdmig__errf(err, errlen, -EPROTO,
				   "STATE_END for %u blobs, %" PRIu64 " bytes written; %u blobs "
				   "with %" PRIu64 " bytes to write were described",
				   m->state_end.nblobs, m->state_end.bytes, rx->n, rx->wire);
	for (unsigned i = 0; i < rx->n; i++) {
		const struct rdmig__state_rx_blob *b = &rx->b[i];
		struct rdmig__hash h;

		sc->ops.hash(key, b->len ? b->buf : none, b->len, &h);
		if (h.lo != b->hash.lo || h.hi != b->hash.hi)
			return rdmig__errf(err, errlen, -EIO,
					   "device state blob %u (id 0x%" PRIx64 ", %" PRIu64
					   " bytes) landed other than the source sent it: its hash "
					   "of what landed is not the source's",
					   i, b->id, b->len);
	}
	for (unsigned i = 0; i < rx->n; i++)
		rx->pub[i] = (struct rdmig_blob){ .id = rx->b[i].id,
						  .data = rx->b[i].buf,
						  .len = rx->b[i].len };
	rx->wrote = m->state_end.bytes;
	rx->step = RDMIG__STATE_DONE;
	memset(ack, 0, sizeof(*ack));
	ack->type = RDMIG__MSG_STATE_ACK;
	ack->state_ack.nblobs = rx->n;
	ack->state_ack.bytes = m->state_end.bytes;
	return 0;
}

void rdmig__state_rx_reset(struct rdmig__state_rx *rx)
{
	rdmig_state_alloc_fn alloc = rx->alloc;
	void *arg = rx->alloc_arg;

	for (unsigned i = 0; i < rx->n; i++)
		if (rx->b[i].map_len)
			munmap(rx->b[i].buf, rx->b[i].map_len);
	memset(rx, 0, sizeof(*rx));
	rx->alloc = alloc;
	rx->alloc_arg = arg;
}

/* SPDX-License-Identifier: MIT */
/* Registrations of source memory in segments, and discards: see discard.h. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../dataplane/ranges.h"
#include "discard.h"

/* /proc/self/pagemap (Documentation/admin-guide/mm/pagemap.rst). */
#define PM_EXCLUSIVE (1ull << 56)
#define PM_FILE	     (1ull << 61) /* file page or shared anonymous */
#define PM_SWAP	     (1ull << 62)
#define PM_PRESENT   (1ull << 63)
#define PM_BATCH     512 /* entries read at once */

static uint64_t words_of(uint64_t npages)
{
	return (npages + 63) / 64;
}

void rdmig__disc_init(struct rdmig__disc *d, uint32_t page_size)
{
	pthread_mutex_init(&d->lock, NULL);
	d->page_size = page_size;
	d->seg_bytes = RDMIG__MR_SEGMENT_BYTES;
	d->pagemap_fd = -1;
	atomic_init(&d->ended, false);
}

void rdmig__disc_fini(struct rdmig__disc *d)
{
	for (unsigned i = 0; i < d->nregions; i++) {
		struct rdmig__disc_region *r = &d->r[i];

		free(r->fresh);
		free(r->taken);
		free(r->unsettled);
		free(r->merged);
		free(r->cand);
		free(r->own);
		free(r->reseg);
		free(r->mrs);
		free(r->lkeys);
	}
	if (d->pagemap_fd >= 0)
		close(d->pagemap_fd);
	pthread_mutex_destroy(&d->lock);
}

void rdmig__disc_add_region(struct rdmig__disc *d, uint64_t gpa, uint8_t *hva, uint64_t npages)
{
	pthread_mutex_lock(&d->lock);
	d->r[d->nregions] = (struct rdmig__disc_region){ .gpa = gpa, .hva = hva, .npages = npages };
	d->nregions++;
	pthread_mutex_unlock(&d->lock);
}

/*
 * Does this pagemap entry say the page holds a frame of its own, one that
 * stays put until it is discarded? A private page the process wrote
 * (present, anonymous, mapped only here) or one swapped out (its next
 * frame comes from the swap-in, before a pin can see it). Not the shared
 * zero page (present, nothing else set) nor a hole: a write moves those.
 * Shared and file memory counts as not: its holes are filled by the pin
 * itself (no zero page is mapped there), so it never needs settling.
 */
static bool own_frame(uint64_t e)
{
	return (e & PM_SWAP) || ((e & PM_PRESENT) && (e & PM_EXCLUSIVE) && !(e & PM_FILE));
}

/*
 * Sets in `own` the pages of `cand` (NULL: all) that hold a frame of their
 * own now. False when pagemap cannot say (then `own` is left as it is).
 */
/* scan_own() over pages [from, end) only. */
static bool scan_own_in(struct rdmig__disc *d, const struct rdmig__disc_region *r,
			const uint64_t *cand, uint64_t *own, uint64_t from, uint64_t end)
{
	uint64_t hps = (uint64_t)sysconf(_SC_PAGESIZE), pos = from, buf[PM_BATCH];
	struct rdmig__range run = { from, end - from };
	bool more = true;

	if (d->pagemap_fd < 0 || !hps || d->page_size % hps)
		return false;
	if (cand)
		more = rdmig__bitmap_next_run(cand, &pos, end, &run);
	while (more) {
		uint64_t base = ((uintptr_t)r->hva + run.first * d->page_size) / hps;
		uint64_t n = run.count * (d->page_size / hps);

		for (uint64_t k = 0; k < n; k += PM_BATCH) {
			uint64_t m = RDMIG__MIN(n - k, (uint64_t)PM_BATCH);
			ssize_t got = pread(d->pagemap_fd, buf, m * 8, (off_t)((base + k) * 8));

			if (got != (ssize_t)(m * 8))
				return false;
			for (uint64_t j = 0; j < m; j++) {
				uint64_t p = run.first + (k + j) * hps / d->page_size;

				if (own_frame(buf[j]))
					own[p / 64] |= 1ull << (p % 64);
			}
		}
		more = cand && rdmig__bitmap_next_run(cand, &pos, end, &run);
	}
	return true;
}

static bool scan_own(struct rdmig__disc *d, const struct rdmig__disc_region *r,
		     const uint64_t *cand, uint64_t *own)
{
	return scan_own_in(d, r, cand, own, 0, r->npages);
}

/* Registers segment s of region r (no message: the callers say what failed). */
static int seg_reg(struct rdmig__disc *d, const struct rdmig__xp_ops *xp, struct rdmig__xp_pd *pd,
		   const struct rdmig__disc_region *r, uint64_t s, struct rdmig__xp_mr **mrp)
{
	uint64_t first = s * d->seg_pages;
	uint64_t count = RDMIG__MIN(r->npages - first, d->seg_pages);

	return xp->mr_reg(pd, r->hva + first * d->page_size, count * d->page_size, 0, mrp);
}

static int reg_err(int ret, unsigned i, uint64_t gpa, uint64_t off, uint64_t len, const char *what)
{
	return rdmig__err(ret,
			  "%s region %u (gpa 0x%" PRIx64 ", %" PRIu64
			  " bytes from offset 0x%" PRIx64 "): %s%s",
			  what, i, gpa, len, off, strerror(-ret),
			  ret == -ENOMEM || ret == -EPERM ? " (is RLIMIT_MEMLOCK large enough?)"
							  : "");
}

#define REG_THREADS 8u /* registration helpers, at most */

struct reg_job {
	struct rdmig__disc *d;
	const struct rdmig__xp_ops *xp;
	struct rdmig__xp_pd *pd;
};

/* Registers segment `job` of all regions' segments counted in a row. */
static int reg_one(void *arg, unsigned job)
{
	struct reg_job *j = arg;
	struct rdmig__disc *d = j->d;
	struct rdmig__disc_region *r = d->r;
	uint64_t s = job;
	unsigned i = 0;
	int ret;

	while (s >= r->nsegs) {
		s -= r->nsegs;
		r = &d->r[++i];
	}
	/* A TiB takes minutes to pin: a cancel must not wait for it. */
	if (d->cancel && atomic_load(d->cancel))
		return rdmig__err(-ECANCELED, "cancelled while registering guest memory");
	if ((ret = seg_reg(d, j->xp, j->pd, r, s, &r->mrs[s])))
		return reg_err(ret, i, r->gpa, s * d->seg_pages * d->page_size,
			       RDMIG__MIN(r->npages - s * d->seg_pages, d->seg_pages) *
				       d->page_size,
			       "registering");
	r->lkeys[s] = r->mrs[s]->lkey;
	return 0;
}

int rdmig__disc_register(struct rdmig__disc *d, const struct rdmig__xp_ops *xp,
			 struct rdmig__xp_pd *pd, uint32_t chunk_pages)
{
	uint64_t per = d->seg_bytes / d->page_size / chunk_pages;
	uint64_t njobs = 0;
	struct reg_job job;

	/* Whole chunks, so that no WRITE (inside one chunk) spans two MRs. */
	d->seg_pages = (uint64_t)chunk_pages * RDMIG__MAX(per, 1ull);
	/* What was discarded until now is behind us: the pins below take the
	 * frames mapped now. A discard from here on is kept for the first pass. */
	pthread_mutex_lock(&d->lock);
	for (unsigned i = 0; i < d->nregions; i++) {
		struct rdmig__disc_region *r = &d->r[i];

		if (r->fresh)
			memset(r->fresh, 0, words_of(r->npages) * 8);
		r->nfresh = 0;
	}
	pthread_mutex_unlock(&d->lock);
	if (d->pagemap_fd < 0) {
		d->pagemap_fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
		if (d->pagemap_fd < 0)
			rdmig__log(RDMIG__LOG_WARN,
				   "cannot open /proc/self/pagemap (%s): segments with discarded "
				   "pages are registered again whenever a pass sends one",
				   strerror(errno));
	}

	for (unsigned i = 0; i < d->nregions; i++) {
		struct rdmig__disc_region *r = &d->r[i];
		uint64_t words = words_of(r->npages);

		r->nsegs = (r->npages + d->seg_pages - 1) / d->seg_pages;
		r->mrs = calloc(r->nsegs, sizeof(*r->mrs));
		r->lkeys = calloc(r->nsegs, sizeof(*r->lkeys));
		if (!r->unsettled)
			r->unsettled = calloc(words, 8);
		if (!r->mrs || !r->lkeys || !r->unsettled)
			return rdmig__err(-ENOMEM, "no memory for region %u's registrations", i);
		/*
		 * A page that is a hole now is pinned as the zero page, and the
		 * guest's first write moves it: unsettled from the start, as a
		 * discarded one (the pin happens after this look, so a page
		 * that has its frame now keeps it).
		 */
		memset(r->unsettled, 0, words * 8);
		r->nunsettled = 0;
		if (scan_own(d, r, NULL, r->unsettled)) {
			for (uint64_t w = 0; w < words; w++)
				r->unsettled[w] = ~r->unsettled[w];
			if (r->npages % 64)
				r->unsettled[words - 1] &= (1ull << (r->npages % 64)) - 1;
			r->nunsettled = rdmig__bitmap_count(r->unsettled, r->npages);
		} else {
			memset(r->unsettled, 0, words * 8);
		}
		njobs += r->nsegs;
	}
	/*
	 * The segments on several threads: pinning is the kernel's work, page
	 * by page, and ibv_reg_mr() may be called concurrently on one PD. A
	 * guest of one segment (up to 1 GiB) needs no thread.
	 */
	if (njobs > UINT32_MAX)
		return rdmig__err(-EINVAL, "%" PRIu64 " segments to register", njobs);
	job = (struct reg_job){ .d = d, .xp = xp, .pd = pd };
	return rdmig__parallel((unsigned)njobs, RDMIG__MIN(rdmig__ncpus_allowed(), REG_THREADS),
			       reg_one, &job);
}

void rdmig__disc_deregister(struct rdmig__disc *d, const struct rdmig__xp_ops *xp)
{
	for (unsigned i = 0; i < d->nregions; i++) {
		struct rdmig__disc_region *r = &d->r[i];

		for (uint64_t s = 0; r->mrs && s < r->nsegs; s++)
			if (r->mrs[s])
				xp->mr_dereg(r->mrs[s]);
		free(r->mrs);
		free(r->lkeys);
		r->mrs = NULL;
		r->lkeys = NULL;
		r->nsegs = 0;
	}
}

int rdmig__disc_record(struct rdmig__disc *d, unsigned region, uint64_t offset, uint64_t len)
{
	struct rdmig__disc_region *r;
	uint64_t ps = d->page_size, rlen, first, last;
	int ret = 0;

	pthread_mutex_lock(&d->lock);
	if (atomic_load(&d->ended)) {
		ret = rdmig__err(-EPIPE, "the session has ended: nothing to discard");
		goto out;
	}
	if (region >= d->nregions) {
		ret = rdmig__err(-EINVAL, "region %u does not exist (%u regions)", region,
				 d->nregions);
		goto out;
	}
	r = &d->r[region];
	rlen = r->npages * ps;
	if (!len || offset % ps || len % ps) {
		ret = rdmig__err(-EINVAL,
				 "discard of region %u at offset 0x%" PRIx64 ", length 0x%" PRIx64
				 ": both must be multiples of the page size (%" PRIu64
				 ") and the length not 0",
				 region, offset, len, ps);
		goto out;
	}
	if (offset >= rlen || len > rlen - offset) {
		ret = rdmig__err(-EINVAL,
				 "discard of region %u at offset 0x%" PRIx64 ", length 0x%" PRIx64
				 " ends past the region (0x%" PRIx64 " bytes)",
				 region, offset, len, rlen);
		goto out;
	}
	if (!r->fresh) {
		/* Two bitmaps, swapped at each pass: nobody waits for a copy. */
		r->fresh = calloc(words_of(r->npages), 8);
		r->taken = calloc(words_of(r->npages), 8);
		if (!r->fresh || !r->taken) {
			free(r->fresh);
			free(r->taken);
			r->fresh = r->taken = NULL;
			ret = rdmig__err(-ENOMEM, "no memory to record discards in region %u",
					 region);
			goto out;
		}
	}
	first = offset / ps;
	last = first + len / ps; /* exclusive */
	for (uint64_t w = first / 64; w <= (last - 1) / 64; w++) {
		uint64_t lo = w == first / 64 ? first % 64 : 0;
		uint64_t hi = w == (last - 1) / 64 ? (last - 1) % 64 : 63;
		uint64_t mask = (hi == 63 ? ~0ull : (1ull << (hi + 1)) - 1) & ~((1ull << lo) - 1);

		r->nfresh += (uint64_t)__builtin_popcountll(mask & ~r->fresh[w]);
		r->fresh[w] |= mask;
	}
out:
	pthread_mutex_unlock(&d->lock);
	return ret;
}

int rdmig__disc_take(struct rdmig__disc *d, const struct rdmig_dirty *dirty,
		     struct rdmig_dirty *scratch, const struct rdmig_dirty **out)
{
	pthread_mutex_lock(&d->lock);
	for (unsigned i = 0; i < d->nregions; i++) {
		struct rdmig__disc_region *r = &d->r[i];
		uint64_t *t;

		if (!r->nfresh)
			continue;
		t = r->taken; /* zero: cleared when the last pass was done with it */
		r->taken = r->fresh;
		r->ntaken = r->nfresh;
		r->fresh = t;
		r->nfresh = 0;
	}
	pthread_mutex_unlock(&d->lock);

	*out = dirty;
	if (!dirty)
		return 0; /* every page is dirty anyway */
	for (unsigned i = 0; i < d->nregions; i++) {
		struct rdmig__disc_region *r = &d->r[i];
		uint64_t words = words_of(r->npages);

		scratch[i] = dirty[i];
		if (!r->ntaken)
			continue;
		/* The VMM's log is const: the pass reads a copy with the
		 * discarded pages added. */
		if (!r->merged && !(r->merged = malloc(words * 8))) {
			rdmig__disc_untake(d);
			return rdmig__err(-ENOMEM, "no memory to add region %u's discards", i);
		}
		for (uint64_t w = 0; w < words; w++)
			r->merged[w] = dirty[i].bitmap[w] | r->taken[w];
		/* Past the region's end the VMM's bits mean nothing: none
		 * travels on in the copy (rdmig.h). */
		if (r->npages % 64)
			r->merged[words - 1] &= (1ull << (r->npages % 64)) - 1;
		scratch[i].bitmap = r->merged;
		scratch[i].words = words;
	}
	*out = scratch;
	return 0;
}

void rdmig__disc_untake(struct rdmig__disc *d)
{
	pthread_mutex_lock(&d->lock);
	for (unsigned i = 0; i < d->nregions; i++) {
		struct rdmig__disc_region *r = &d->r[i];
		uint64_t words = words_of(r->npages);

		if (!r->ntaken)
			continue;
		for (uint64_t w = 0; w < words; w++)
			r->fresh[w] |= r->taken[w];
		r->nfresh = rdmig__bitmap_count(r->fresh, r->npages);
		memset(r->taken, 0, words * 8);
		r->ntaken = 0;
	}
	pthread_mutex_unlock(&d->lock);
}

/*
 * Words [w0, w1) of region i, for rdmig__disc_apply(): the pages to look
 * at are those just discarded, and unsettled ones this pass sends. A page
 * that got its own frame was written, so it is dirty in the first pass
 * whose dirty log was synced after the write; that pass looks at it here,
 * before its pin, whatever it found earlier. Marks the segments to
 * register again; `known`: pagemap answered for every page so far.
 */
static void apply_words(struct rdmig__disc *d, unsigned i, const struct rdmig_dirty *dirty,
			uint64_t w0, uint64_t w1, bool *known)
{
	struct rdmig__disc_region *r = &d->r[i];
	bool any = false;

	for (uint64_t w = w0; w < w1; w++) {
		uint64_t dw = dirty ? dirty[i].bitmap[w] : ~0ull;

		/* A clean word has nothing taken (taken pages are dirty). */
		if (!dw)
			continue;
		r->cand[w] = (r->ntaken ? r->taken[w] : 0) | (r->unsettled[w] & dw);
		any |= r->cand[w] != 0;
	}
	if (!any)
		return;
	if (*known)
		*known =
			scan_own_in(d, r, r->cand, r->own, w0 * 64, RDMIG__MIN(w1 * 64, r->npages));
	for (uint64_t w = w0; w < w1; w++) {
		uint64_t v = (r->ntaken ? r->taken[w] : 0) | (*known ? r->own[w] : r->cand[w]);

		/* Each page's segment: a segment may hold fewer than 64 pages. */
		while (v) {
			uint64_t s = (w * 64 + (uint64_t)__builtin_ctzll(v)) / d->seg_pages;
			uint64_t next = (s + 1) * d->seg_pages;

			r->reseg[s] = 1;
			v = next >= (w + 1) * 64 ? 0 : v & (~0ull << (next - w * 64));
		}
	}
}

/*
 * Words [w0, w1) of region i after the registrations: what had its own
 * frame before the pin is settled (its segment was registered again), and
 * the scratch is zero again.
 */
static void settle_words(struct rdmig__disc *d, unsigned i, uint64_t w0, uint64_t w1, bool known,
			 bool ok)
{
	struct rdmig__disc_region *r = &d->r[i];

	for (uint64_t w = w0; w < w1; w++) {
		uint64_t was, now;

		if (!r->cand[w])
			continue;
		if (ok) {
			was = r->unsettled[w];
			now = (was | (r->ntaken ? r->taken[w] : 0)) & ~(known ? r->own[w] : 0);
			r->unsettled[w] = now;
			r->nunsettled += (uint64_t)__builtin_popcountll(now);
			r->nunsettled -= was ? (uint64_t)__builtin_popcountll(was) : 0;
		}
		r->cand[w] = 0;
		r->own[w] = 0;
	}
}

int rdmig__disc_apply(struct rdmig__disc *d, const struct rdmig__xp_ops *xp,
		      struct rdmig__xp_pd *pd, const struct rdmig_dirty *dirty,
		      struct rdmig__dp_region *dpr, uint32_t chunk_pages, const uint64_t *work,
		      uint64_t nwork)
{
	bool known[RDMIG__MAX_REGIONS], did[RDMIG__MAX_REGIONS], busy = false;
	uint64_t k = 0, w0, w1, ps = d->page_size;
	unsigned ri = 0;
	int ret = 0;

	for (unsigned i = 0; i < d->nregions; i++) {
		struct rdmig__disc_region *r = &d->r[i];

		known[i] = true;
		did[i] = r->ntaken || r->nunsettled;
		if (!did[i])
			continue;
		busy = true;
		if (!r->cand) {
			r->cand = calloc(words_of(r->npages), 8);
			r->own = calloc(words_of(r->npages), 8);
			r->reseg = calloc(r->nsegs, 1);
			if (!r->cand || !r->own || !r->reseg) {
				free(r->cand);
				free(r->own);
				free(r->reseg);
				r->cand = r->own = NULL;
				r->reseg = NULL;
				ret = rdmig__err(-ENOMEM, "no memory to apply region %u's discards",
						 i);
				break;
			}
		}
	}
	if (ret) {
		rdmig__disc_untake(d);
		return ret;
	}
	if (busy) {
		/* Only the words of chunks with work: a page elsewhere is not
		 * sent by this pass, and nothing was taken there. */
		while (rdmig__dp_next_span(dpr, d->nregions, chunk_pages, work, nwork, &k, &ri, &w0,
					   &w1))
			if (did[ri])
				apply_words(d, ri, dirty, w0, w1, &known[ri]);
		for (unsigned i = 0; i < d->nregions && !ret; i++) {
			struct rdmig__disc_region *r = &d->r[i];

			for (uint64_t s = 0; r->reseg && s < r->nsegs && !ret; s++) {
				uint64_t first = s * d->seg_pages,
					 end = RDMIG__MIN(first + d->seg_pages, r->npages);
				struct rdmig__xp_mr *mr;
				uint64_t t0;

				if (!r->reseg[s])
					continue;
				r->reseg[s] = 0;
				/* The new MR first: if it fails, the old one still reads
				 * right for every page but the discarded ones, which stay
				 * recorded. */
				t0 = rdmig__now_ns();
				if ((ret = seg_reg(d, xp, pd, r, s, &mr))) {
					ret = reg_err(ret, i, r->gpa, first * ps,
						      (end - first) * ps,
						      "registering discarded memory again in");
					break;
				}
				xp->mr_dereg(r->mrs[s]);
				r->mrs[s] = mr;
				r->lkeys[s] = mr->lkey;
				d->refreshes++;
				d->refresh_bytes += (end - first) * ps;
				d->refresh_ns += rdmig__now_ns() - t0;
			}
		}
		/* Settled: what had its own frame before the pin, every such
		 * page in a segment registered again above. On failure nothing
		 * settles (a segment may be left unregistered again). */
		k = 0;
		ri = 0;
		while (rdmig__dp_next_span(dpr, d->nregions, chunk_pages, work, nwork, &k, &ri, &w0,
					   &w1))
			if (did[ri])
				settle_words(d, ri, w0, w1, known[ri], !ret);
		for (unsigned i = 0; ret && i < d->nregions; i++)
			if (d->r[i].reseg)
				memset(d->r[i].reseg, 0, d->r[i].nsegs);
	}
	if (ret) {
		/* Nothing is sent: the discards wait for the next pass. */
		rdmig__disc_untake(d);
		return ret;
	}
	for (unsigned i = 0; i < d->nregions; i++) {
		struct rdmig__disc_region *r = &d->r[i];
		uint64_t pos = 0;
		struct rdmig__range run;

		if (!r->ntaken)
			continue;
		/* Whatever the destination holds of them is no longer known:
		 * neither a zero nor a hash of theirs may let a page be skipped. */
		while (dpr[i].pkind && rdmig__bitmap_next_run(r->taken, &pos, r->npages, &run))
			memset(dpr[i].pkind + run.first, RDMIG__PK_UNKNOWN, run.count);
		memset(r->taken, 0, words_of(r->npages) * 8);
		r->ntaken = 0;
	}
	return 0;
}

int rdmig__disc_close(struct rdmig__disc *d, unsigned *region, uint64_t *page)
{
	int found = 0;

	/* Under the lock, so that a discard either comes before (and is
	 * found) or after (and is refused): none slips past completion. */
	pthread_mutex_lock(&d->lock);
	for (unsigned i = 0; i < d->nregions && !found; i++) {
		uint64_t pos = 0;
		struct rdmig__range run;

		if (d->r[i].nfresh &&
		    rdmig__bitmap_next_run(d->r[i].fresh, &pos, d->r[i].npages, &run)) {
			*region = i;
			*page = run.first;
			found = 1;
		}
	}
	if (!found)
		atomic_store(&d->ended, true);
	pthread_mutex_unlock(&d->lock);
	return found;
}

/* SPDX-License-Identifier: MIT */
/* The bandwidth model; see model.h. */
#include <stdbool.h>
#include <string.h>

#include "../common/util.h"
#include "model.h"

void rdmig__model_init(struct rdmig__model *m, uint32_t page_size)
{
	memset(m, 0, sizeof(*m));
	m->page_size = page_size;
}

void rdmig__model_add(struct rdmig__model *m, const struct rdmig__model_pass *p)
{
	if (m->n == RDMIG__MODEL_WINDOW) {
		memmove(&m->win[0], &m->win[1], sizeof(m->win[0]) * (RDMIG__MODEL_WINDOW - 1));
		m->n--;
	}
	m->win[m->n++] = *p;
	m->passes++;
	m->all_wire_bytes += p->wire_bytes;
	m->all_wire_ns += p->wire_bytes ? p->wire_ns : 0;
	m->all_scan_bytes += p->scanned * m->page_size;
	m->all_scan_ns += p->scan_ns;
}

/* a * b / c without overflow for the magnitudes here (c > 0). */
static uint64_t muldiv(uint64_t a, uint64_t b, uint64_t c)
{
	return (uint64_t)((unsigned __int128)a * b / c);
}

/*
 * Of n passes with times t and a fit's predictions for them, the one that
 * stands out: missed by more than RDMIG__MODEL_OUTLIER of its prediction
 * and by half as much again as any other pass (one stalled pass among n
 * alike is missed n - 1 times as much as each of the others, as the fit
 * leans towards it). -1 when none does, or with fewer than 3 passes. A
 * pass the machine stalled would otherwise be taken in full into the next
 * estimates; passes that merely spread (noise, or a fit that suits none of
 * them well) are all kept. What this cannot see: a stalled pass that the
 * fit follows alone (the only pass of its WRITE size, or one holding most
 * of the bytes), which it misses by little. Such a pass is kept.
 */
static int outlier(const double *t, const double *pred, unsigned n)
{
	double worst = 0, next = 0;
	int at = -1;

	if (n < 3)
		return -1;
	for (unsigned i = 0; i < n; i++) {
		double r = t[i] > pred[i] ? t[i] - pred[i] : pred[i] - t[i];

		r = pred[i] > 0 ? r / pred[i] : 0;
		if (r > worst) {
			next = worst;
			worst = r;
			at = (int)i;
		} else if (r > next) {
			next = r;
		}
	}
	return worst > RDMIG__MODEL_OUTLIER && worst >= 1.5 * next ? at : -1;
}

/*
 * Least squares of t = b * x + w * y over the n passes but `skip` (x:
 * seconds per byte, y: seconds per WRITE). When the passes cannot tell the
 * two apart (one pass, or the same bytes per WRITE in all) or the fit is
 * not physical, all the time is put on the bytes (y = 0).
 */
static void lsq_wire(const double *b, const double *w, const double *t, unsigned n, int skip,
		     double *x, double *y)
{
	double sbb = 0, sbw = 0, sww = 0, stb = 0, stw = 0, st = 0, sb = 0, det;

	for (unsigned i = 0; i < n; i++) {
		if ((int)i == skip)
			continue;
		sbb += b[i] * b[i];
		sbw += b[i] * w[i];
		sww += w[i] * w[i];
		stb += t[i] * b[i];
		stw += t[i] * w[i];
		st += t[i];
		sb += b[i];
	}
	det = sbb * sww - sbw * sbw;
	if (det > 1e-6 * sbb * sww) {
		*x = (stb * sww - stw * sbw) / det;
		*y = (stw * sbb - stb * sbw) / det;
		if (*x > 0 && *y >= 0)
			return;
	}
	*x = st / sb;
	*y = 0;
}

/*
 * Fits the wire's t = bytes * x + writes * y to the window's passes that
 * wrote something, then again without an outlier if there is one. If none
 * in the window did, x is from the whole history (a quiet window says
 * nothing of the wire) and y is 0. Returns false when no pass ever wrote.
 */
static bool fit_wire(const struct rdmig__model *m, double *x, double *y)
{
	double b[RDMIG__MODEL_WINDOW], w[RDMIG__MODEL_WINDOW], t[RDMIG__MODEL_WINDOW];
	double pred[RDMIG__MODEL_WINDOW];
	unsigned n = 0;
	int skip;

	for (unsigned i = 0; i < m->n; i++) {
		const struct rdmig__model_pass *p = &m->win[i];

		if (!p->wire_bytes || !p->wire_ns)
			continue;
		b[n] = (double)p->wire_bytes;
		w[n] = (double)p->writes;
		t[n++] = p->wire_ns / 1e9;
	}
	if (!n) {
		if (!m->all_wire_bytes || !m->all_wire_ns)
			return false;
		*x = (double)m->all_wire_ns / 1e9 / (double)m->all_wire_bytes;
		*y = 0;
		return true;
	}
	lsq_wire(b, w, t, n, -1, x, y);
	for (unsigned i = 0; i < n; i++)
		pred[i] = b[i] * *x + w[i] * *y;
	if ((skip = outlier(t, pred, n)) >= 0)
		lsq_wire(b, w, t, n, skip, x, y);
	return true;
}

/*
 * The scan rate per worker, bytes per second, from the window's passes
 * that scanned (all their bytes over all their time), then again without
 * an outlier if there is one; from the whole history if none in the window
 * scanned; 0 if no pass ever did.
 */
static double fit_scan(const struct rdmig__model *m)
{
	double b[RDMIG__MODEL_WINDOW], t[RDMIG__MODEL_WINDOW], pred[RDMIG__MODEL_WINDOW];
	double sb = 0, st = 0;
	unsigned n = 0;
	int skip;

	for (unsigned i = 0; i < m->n; i++) {
		const struct rdmig__model_pass *p = &m->win[i];

		if (!p->scanned || !p->scan_ns)
			continue;
		b[n] = (double)p->scanned * m->page_size;
		t[n] = (double)p->scan_ns;
		sb += b[n];
		st += t[n++];
	}
	if (!n)
		return m->all_scan_ns ? (double)m->all_scan_bytes * 1e9 / (double)m->all_scan_ns
				      : 0;
	for (unsigned i = 0; i < n; i++)
		pred[i] = b[i] * st / sb;
	if ((skip = outlier(t, pred, n)) >= 0) {
		sb -= b[skip];
		st -= t[skip];
	}
	return sb * 1e9 / st;
}

/*
 * The share of the dirty set's pages (not ballooned) a pass would write.
 * A sample of the dirty set as it is now says what the next pass would do,
 * but about 4096 pages know a share of 10% only to about 5%, while the
 * window's passes counted every page they had. So when the sample agrees
 * with the window, within two standard errors of their difference, the two
 * are pooled, each weighted by what it knows; when it does not, the guest
 * has changed its ways (it was paused, say) and the sample alone counts.
 * A sample of n of the N dirty pages knows as much as n / (1 - n/N) pages
 * drawn at random (the finite-population correction): all of them, when
 * it took every page. (The source takes every k-th dirty page: as good as
 * drawn at random unless the guest's writes follow that stride.) Without
 * a sample, the window's share; every page when the window has none
 * either (nothing known).
 */
static double written_share(uint64_t w_written, uint64_t w_base,
			    const struct rdmig__model_sample *s, uint64_t base)
{
	double ps, pw, p, d, n;

	if (!s || !s->pages)
		return w_base ? (double)w_written / (double)w_base : 1;
	ps = (double)s->written / (double)s->pages;
	if (!w_base || s->pages >= base)
		return ps;
	pw = (double)w_written / (double)w_base;
	n = (double)s->pages / (1 - (double)s->pages / (double)base);
	p = (n * ps + (double)w_base * pw) / (n + (double)w_base);
	d = ps - pw;
	return d * d <= 4 * p * (1 - p) * (1 / n + 1 / (double)w_base) ? p : ps;
}

/*
 * The WRITEs of `written` pages. From the dirty set's runs when counted:
 * each page written with the share p, a run of L dirty pages makes
 * p + (L - 1) p (1 - p) runs of written pages on average. Otherwise as the
 * latest pass that wrote coalesced its pages.
 */
static uint64_t predict_writes(const struct rdmig__model_sample *s, uint64_t written, uint64_t base,
			       const struct rdmig__model_pass *last)
{
	double p, runs;

	if (!written)
		return 0;
	if (s && s->runs) { /* a run has pages: run_pages > 0 */
		p = base ? (double)written / (double)base : 1.0;
		p = p > 1.0 ? 1.0 : p;
		/* The runs over all dirty pages, scaled to this estimate's. */
		runs = (double)s->runs * (double)base / (double)s->run_pages;
		runs = runs * p + ((double)base - runs) * p * (1.0 - p);
		return RDMIG__MAX((uint64_t)(runs + 0.5), 1ull);
	}
	if (last)
		return RDMIG__MAX(muldiv(written, last->writes, last->written), 1ull);
	return written;
}

/*
 * What a pass takes beyond its slower stage, as a share of that stage: the
 * median over the window's passes, so that one pass the machine stalled is
 * not charged to the next. Mostly the pipeline's bubbles (the wire idle
 * while the first pages are scanned, waits for answers at the end), which
 * grow with the pass; the handshakes at its end are a fraction of a
 * millisecond. A window of empty passes (no stage at all) gives their mean
 * overhead in *fixed instead.
 */
static void fit_overhead(const struct rdmig__model *m, uint64_t *fixed, double *share)
{
	double s[RDMIG__MODEL_WINDOW];
	unsigned n = 0;

	*fixed = 0;
	*share = 0;
	for (unsigned i = 0; i < m->n; i++) {
		const struct rdmig__model_pass *p = &m->win[i];
		uint64_t scan = p->workers ? p->scan_ns / p->workers : p->scan_ns;
		uint64_t slower = RDMIG__MAX(scan, p->wire_ns);
		uint64_t over = p->duration_ns > slower ? p->duration_ns - slower : 0;

		if (!slower) {
			*fixed += over;
			continue;
		}
		s[n] = (double)over / (double)slower;
		/* Kept sorted: insert s[n] in place. */
		for (unsigned j = n++; j > 0 && s[j - 1] > s[j]; j--) {
			double t = s[j - 1];

			s[j - 1] = s[j];
			s[j] = t;
		}
	}
	if (n) {
		*share = n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
		*fixed = 0;
	} else {
		*fixed /= m->n;
	}
}

/* Did a recent pass write WRITEs of about this size? */
static bool similar_writes(const struct rdmig__model *m, uint64_t bytes, uint64_t writes)
{
	double size = (double)bytes / (double)writes;

	for (unsigned i = 0; i < m->n; i++) {
		const struct rdmig__model_pass *p = &m->win[i];
		double ps;

		if (!p->writes || !p->wire_bytes)
			continue;
		ps = (double)p->wire_bytes / (double)p->writes;
		if (ps <= size * RDMIG__MODEL_SIMILAR_WRITES &&
		    size <= ps * RDMIG__MODEL_SIMILAR_WRITES)
			return true;
	}
	return false;
}

int rdmig__model_estimate(const struct rdmig__model *m, uint64_t dirty, uint64_t ballooned,
			  uint32_t workers, const struct rdmig__model_sample *sample,
			  struct rdmig_estimate *e)
{
	const struct rdmig__model_pass *last = NULL;
	uint64_t w_dirty = 0, w_ball = 0, w_scanned = 0, w_written = 0;
	uint64_t base, w_base, scanned, written, writes;
	double x = 0, y = 0, share, over;
	uint64_t fixed, slower;
	size_t size = e->size;

	memset(e, 0, sizeof(*e));
	e->size = size;
	if (!m->passes)
		return rdmig__err(-ENODATA, "no pass has run yet: nothing to estimate from");
	for (unsigned i = 0; i < m->n; i++) {
		const struct rdmig__model_pass *p = &m->win[i];

		w_dirty += p->dirty;
		w_ball += p->ballooned;
		w_scanned += p->scanned;
		w_written += p->written;
		if (p->written)
			last = p;
	}
	fit_overhead(m, &fixed, &over);

	/* Shares of the non-ballooned dirty pages that were scanned and written. */
	if (ballooned == UINT64_MAX)
		ballooned = w_dirty ? muldiv(dirty, w_ball, w_dirty) : 0;
	base = dirty > ballooned ? dirty - ballooned : 0;
	w_base = w_dirty - w_ball;
	scanned = w_base ? muldiv(base, w_scanned, w_base) : 0;
	share = written_share(w_written, w_base, sample, base);
	share = RDMIG__MIN(share, 1.0);
	written = (uint64_t)((double)base * share + 0.5);
	e->write_share_ppm = (uint32_t)(share * 1e6 + 0.5);

	writes = predict_writes(sample, written, base, last);

	if (fit_wire(m, &x, &y))
		e->wire_rate = (uint64_t)(1.0 / x + 0.5);
	if (m->max_bandwidth && e->wire_rate > m->max_bandwidth)
		e->wire_rate = m->max_bandwidth;
	e->scan_rate = (uint64_t)(fit_scan(m) + 0.5) * RDMIG__MAX(workers, 1u);

	e->dirty_pages = dirty;
	e->wire_bytes = written * m->page_size;
	e->passes = m->n;
	e->writes = writes;
	e->write_cost_ns = (uint64_t)(y * 1e9 + 0.5);
	if (writes && !similar_writes(m, e->wire_bytes, writes))
		e->flags |= RDMIG_ESTIMATE_EXTRAPOLATED;
	if (e->wire_bytes && !e->wire_rate)
		return rdmig__err(-ENODATA,
				  "no byte has been written yet: the wire rate is unknown");
	e->wire_ns =
		e->wire_bytes
			? (uint64_t)(((double)e->wire_bytes * x + (double)writes * y) * 1e9 + 0.5)
			: 0;
	/* Under a cap the wire takes the bytes at most at the cap's rate. */
	if (m->max_bandwidth)
		e->wire_ns =
			RDMIG__MAX(e->wire_ns, muldiv(e->wire_bytes, 1000000000, m->max_bandwidth));
	e->scan_ns = scanned && e->scan_rate
			     ? muldiv(scanned * m->page_size, 1000000000, e->scan_rate)
			     : 0;
	if (m->hash_rate)
		e->scan_ns = RDMIG__MAX(e->scan_ns, muldiv(written * m->page_size, 1000000000,
							   m->hash_rate * RDMIG__MAX(workers, 1u)));
	slower = RDMIG__MAX(e->scan_ns, e->wire_ns);
	e->overhead_ns = fixed + (uint64_t)((double)slower * over + 0.5);
	e->final_pass_ns = slower + e->overhead_ns;
	return 0;
}

void rdmig__model_downtime(const struct rdmig__model_after *a, uint32_t workers,
			   struct rdmig_estimate *e)
{
	uint64_t b = a->state_bytes, per_worker = e->scan_rate / RDMIG__MAX(workers, 1u);

	e->state_bytes = b;
	e->state_ns = 0;
	if (b) {
		if (e->wire_rate)
			e->state_ns += muldiv(b, 1000000000, e->wire_rate);
		else
			e->flags |= RDMIG_ESTIMATE_EXTRAPOLATED;
		if (per_worker)
			e->state_ns += 2 * muldiv(b, 1000000000, per_worker);
		if (a->reg_bytes)
			e->state_ns += 2 * muldiv(b, a->reg_ns, a->reg_bytes);
		e->state_ns += 2 * a->rtt_ns;
	}
	e->complete_ns = a->rtt_ns;
	e->downtime_ns = e->final_pass_ns + e->state_ns + e->complete_ns;
}

double rdmig__model_hash_share_needed(const struct rdmig__skip_in *in)
{
	double off = 1 / in->wire_rate, slow = in->wire_rate;

	if (in->wire_rate <= 0)
		return 0;
	if (in->zero_rate > 0)
		off = RDMIG__MAX(off, 1 / in->zero_rate);
	/* The source hashes every page it compares, skipped or not. */
	if (in->hash_rate > 0 && 1 / in->hash_rate >= off)
		return 2;
	if (in->dst_hash_rate > 0)
		slow = RDMIG__MIN(slow, in->dst_hash_rate);
	/* (1 - s) / slow < off */
	return RDMIG__MAX(0.0, 1 - off * slow);
}

bool rdmig__model_hash_pays(const struct rdmig__skip_in *in)
{
	double bytes = 1, on = 0, off = 0; /* per byte: both times scale alike */

	if (in->share < 0 || in->wire_rate <= 0)
		return true;
	if (in->hash_rate > 0)
		on = bytes / in->hash_rate;
	if (in->dst_hash_rate > 0)
		on = RDMIG__MAX(on, bytes * (1 - in->share) / in->dst_hash_rate);
	on = RDMIG__MAX(on, bytes * (1 - in->share) / in->wire_rate);
	if (in->zero_rate > 0)
		off = bytes / in->zero_rate;
	off = RDMIG__MAX(off, bytes / in->wire_rate);
	return on < off;
}

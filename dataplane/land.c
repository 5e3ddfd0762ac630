/* SPDX-License-Identifier: MIT */
/* What lands at the destination: zero-fill orders and hashes (land.h). */
#include <errno.h>
#include <string.h>

#include "../common/util.h"
#include "land.h"

void rdmig__land_notice(const struct rdmig__scanner *sc, const struct rdmig__scan_key *key,
			uint8_t *hva, uint32_t page_size, const struct rdmig__msg *notice,
			struct rdmig__msg *ans)
{
	const uint32_t ps = page_size;
	uint32_t n = 0;

	memset(ans, 0, offsetof(struct rdmig__msg, hashes.hash));
	ans->type = RDMIG__MSG_HASHES;
	ans->hashes.pass = notice->notice.pass;
	ans->hashes.region = notice->notice.region;
	ans->hashes.first = notice->notice.page[0] & ~RDMIG__NOTICE_ZERO;
	ans->hashes.npages = notice->notice.npages;
	for (uint32_t i = 0; i < notice->notice.npages; i++) {
		uint64_t e = notice->notice.page[i];
		uint8_t *page = hva + (e & ~RDMIG__NOTICE_ZERO) * ps;

		if (e & RDMIG__NOTICE_ZERO)
			memset(page, 0, ps);
		else if (rdmig__scan_page(sc, key, page, ps, &ans->hashes.hash[n]) ==
			 RDMIG__PAGE_ZERO)
			ans->hashes.landed_zero[i / 64] |= 1ull << (i % 64);
		else
			n++;
	}
	ans->hashes.nhashes = n;
}

/* Takes jobs of batch `gen` (n jobs) until none is left. */
static void land_take(struct rdmig__land *l, uint32_t gen, struct rdmig__land_job *jobs, unsigned n)
{
	uint64_t v = atomic_load_explicit(&l->next, memory_order_acquire);

	for (;;) {
		uint32_t i = (uint32_t)v;

		if ((uint32_t)(v >> 32) != gen || i >= n)
			return;
		if (!atomic_compare_exchange_weak_explicit(
			    &l->next, &v, v + 1, memory_order_acq_rel, memory_order_acquire))
			continue;
		rdmig__land_notice(l->sc, l->key, jobs[i].hva, l->page_size, &jobs[i].notice,
				   &jobs[i].ans);
		if (atomic_fetch_add_explicit(&l->finished, 1, memory_order_acq_rel) + 1 == n) {
			pthread_mutex_lock(&l->lock);
			pthread_cond_signal(&l->done);
			pthread_mutex_unlock(&l->lock);
		}
		v = atomic_load_explicit(&l->next, memory_order_acquire);
	}
}

static void *land_main(void *arg)
{
	struct rdmig__land *l = arg;
	uint32_t seen = 0;

	pthread_mutex_lock(&l->lock);
	for (;;) {
		while (!l->stop && l->generation == seen)
			pthread_cond_wait(&l->start, &l->lock);
		if (l->stop)
			break;
		seen = l->generation;
		struct rdmig__land_job *jobs = l->jobs;
		unsigned n = l->njobs;

		pthread_mutex_unlock(&l->lock);
		land_take(l, seen, jobs, n);
		pthread_mutex_lock(&l->lock);
	}
	pthread_mutex_unlock(&l->lock);
	return NULL;
}

int rdmig__land_start(struct rdmig__land *l, const struct rdmig__scanner *sc,
		      const struct rdmig__scan_key *key, uint32_t page_size, unsigned helpers)
{
	int ret;

	memset(l, 0, sizeof(*l));
	l->sc = sc;
	l->key = key;
	l->page_size = page_size;
	pthread_mutex_init(&l->lock, NULL);
	pthread_cond_init(&l->start, NULL);
	pthread_cond_init(&l->done, NULL);
	l->inited = true;
	for (unsigned i = 0; i < RDMIG__MIN(helpers, RDMIG__LAND_THREADS_MAX); i++) {
		if ((ret = pthread_create(&l->threads[i], NULL, land_main, l))) {
			rdmig__land_stop(l);
			return rdmig__err(-ret, "cannot start a hashing thread: %s", strerror(ret));
		}
		l->nthreads++;
	}
	return 0;
}

void rdmig__land_run(struct rdmig__land *l, struct rdmig__land_job *jobs, unsigned n)
{
	uint32_t gen;

	pthread_mutex_lock(&l->lock);
	gen = ++l->generation;
	l->jobs = jobs;
	l->njobs = n;
	atomic_store_explicit(&l->finished, 0, memory_order_relaxed);
	atomic_store_explicit(&l->next, (uint64_t)gen << 32, memory_order_release);
	/* One job: no one to share it with, no wake-ups to pay for. */
	if (n > 1 && l->nthreads)
		pthread_cond_broadcast(&l->start);
	pthread_mutex_unlock(&l->lock);
	land_take(l, gen, jobs, n);
	/* Every job done (a helper may still be waking: it finds none left). */
	if (atomic_load_explicit(&l->finished, memory_order_acquire) == n)
		return;
	pthread_mutex_lock(&l->lock);
	while (atomic_load_explicit(&l->finished, memory_order_acquire) != n)
		pthread_cond_wait(&l->done, &l->lock);
	pthread_mutex_unlock(&l->lock);
}

void rdmig__land_stop(struct rdmig__land *l)
{
	if (!l->inited)
		return;
	pthread_mutex_lock(&l->lock);
	l->stop = true;
	pthread_cond_broadcast(&l->start);
	pthread_mutex_unlock(&l->lock);
	for (unsigned i = 0; i < l->nthreads; i++)
		pthread_join(l->threads[i], NULL);
	pthread_cond_destroy(&l->start);
	pthread_cond_destroy(&l->done);
	pthread_mutex_destroy(&l->lock);
	memset(l, 0, sizeof(*l));
}

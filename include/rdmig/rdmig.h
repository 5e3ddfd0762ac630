/* SPDX-License-Identifier: MIT */
/*
 * rdmig: live migration of guest memory over RDMA.
 *
 * The public API. A VMM creates a source handle on the host the guest runs on
 * and a destination handle on the host it moves to, declares the guest's
 * memory regions on both, connects them, runs pre-copy passes driven by its
 * own dirty bitmaps, pauses the guest, runs a final pass and completes.
 *
 * Conventions, for every function below:
 * - An int result >= 0 is success (0 or a count); a negative errno is failure.
 *   A call that fails changes nothing, except where it says the session failed.
 * - After a failure, rdmig_last_error() on the same thread returns a message
 *   that says what failed and why, with the values involved. The next rdmig
 *   call on the thread clears it (see rdmig_last_error()): read it first.
 * - Handles are not thread-safe: one thread at a time per handle, except for
 *   the calls the table below allows (rdmig_src_discard(), the cancels,
 *   rdmig_src_progress()).
 *   Different handles may be used from different threads at once.
 * - Memory passed in (regions, bitmaps) stays owned by the caller. Guest
 *   memory must stay mapped until the handle is destroyed.
 * - As with any RDMA library, a process forked after rdmig was used must not
 *   use rdmig (the device contexts belong to the parent); exec first.
 * - Tunables come from struct rdmig_opts; an RDMIG_* environment variable of
 *   the same name overrides the field (README.md lists them). A malformed
 *   variable makes create fail with -EINVAL and a message naming it.
 */
/*
 * Threads. "Owner" is whichever one thread is using the handle for the
 * calls that are not thread-safe; it may change between calls.
 *
 *   call                          may run on          concurrently with
 *   ----------------------------  ------------------  -------------------------------
 *   rdmig_opts_init, last_error   any thread          anything (last_error: per thread)
 *   rdmig_set_log                 any thread, also    anything but itself and a log
 *                                 before any handle   callback (it waits for running ones)
 *   rdmig_src_mismatch /          the owner           cancel only
 *     rdmig_dst_mismatch
 *   rdmig_src_create / dst_create any thread          anything (a new handle)
 *   rdmig_src_add_region,         the owner           cancel, progress and discard
 *     connect, pass, estimate,
 *     stats, complete
 *   rdmig_dst_add_region,         the owner           cancel only
 *     listen, run
 *   rdmig_src_send_state,         the owner           cancel, progress and discard
 *     expect_state
 *   rdmig_dst_set_state_alloc,    the owner           cancel only
 *     rdmig_dst_state
 *   (the state_alloc callback)    rdmig_dst_run's     is called from inside run only
 *                                 thread
 *   rdmig_src_pass_budget,        the owner           cancel, progress and discard
 *     rdmig_src_pass_resume
 *   rdmig_src_pass_list,          the owner           cancel, progress and discard
 *     pass_list_budget,
 *     estimate_list
 *   rdmig_src_progress            any thread          every call on the handle except
 *                                                     destroy (and itself); never waits
 *   rdmig_src_cancel /            any thread, also a  every call on the handle except
 *     rdmig_dst_cancel            signal handler      destroy (and itself)
 *   rdmig_src_discard             any thread          every call on the handle except
 *                                                     destroy (and itself)
 *   rdmig_src_destroy /           the owner           nothing: no call may be running
 *     rdmig_dst_destroy                               or start on the handle
 *
 * Workers (source), connect's helpers, the thread inside rdmig_dst_run()
 * and the destination's hashing threads are rdmig's or the caller's own.
 * The helpers are rdmig's short-lived threads that do independent steps of
 * a connect at once, and are joined before the call returns:
 * rdmig_src_connect() makes the data connections and registers guest
 * memory's MR segments on up to 8 each (and loads libcrypto on one while
 * rdma_cm starts), and rdmig_dst_run() faults the guest's memory in on up
 * to 8 before it registers it (verbs only). The hashing threads (one per
 * data QP beyond the first, no more than the CPUs, alive from the source's
 * authentication to the end of rdmig_dst_run()) only hash what landed,
 * while rdmig_dst_run()'s thread waits for them. rdmig calls nothing of the
 * VMM's from any of them, except the log callback (rdmig_set_log()), which
 * any of them, and any thread inside any rdmig call, may call, several at
 * once, and the destination's
 * state_alloc callback (rdmig_dst_set_state_alloc()), which
 * rdmig_dst_run() calls on its caller's thread. Workers run only on
 * opts.worker_cpus (RDMIG_WORKER_CPUS) when it is given.
 */

#ifndef RDMIG_RDMIG_H
#define RDMIG_RDMIG_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define RDMIG_VERSION_MAJOR 0
#define RDMIG_VERSION_MINOR 1
#define RDMIG_VERSION_PATCH 0

struct rdmig_src;
struct rdmig_dst;

/* Values of rdmig_opts.pin. */
enum rdmig_pin {
	RDMIG_PIN_DEFAULT = 0, /* pin (RDMIG_PIN=1 unless set) */
	RDMIG_PIN_ON = 1,      /* pin workers to the CPUs nearest the RDMA device */
	RDMIG_PIN_OFF = 2,     /* leave placement to the scheduler */
};

/* Values of rdmig_opts.skip_zero and rdmig_opts.skip_unchanged. */
enum rdmig_switch {
	RDMIG_SWITCH_DEFAULT = 0, /* on */
	RDMIG_SWITCH_ON = 1,
	RDMIG_SWITCH_OFF = 2,
};

/*
 * Values of rdmig_opts.simd: the instruction set of the page scanner (zero
 * check and hash of every dirty page). AUTO takes the best one this CPU
 * supports; forcing one it lacks is an error (-ENOTSUP, with a message
 * naming RDMIG_SIMD). Every choice gives the same results: the knob is for
 * benchmarking and for CPUs where the widest unit is slower (AVX-512
 * frequency drops). RDMIG_SIMD=auto|avx512|avx2|scalar overrides the field.
 */
enum rdmig_simd {
	RDMIG_SIMD_AUTO = 0,   /* AVX-512 (F, BW, VL), else AVX2, else portable */
	RDMIG_SIMD_AVX512 = 1, /* AVX-512 F, BW and VL */
	RDMIG_SIMD_AVX2 = 2,   /* AVX2 */
	RDMIG_SIMD_SCALAR = 3, /* portable code, any CPU */
};

/*
 * Options for rdmig_src_create() and rdmig_dst_create(). Initialise with
 * rdmig_opts_init(), then set what you need; a field left 0 takes its
 * default. `size` lets the struct grow without breaking older callers.
 */
struct rdmig_opts {
	size_t size;		    /* sizeof(struct rdmig_opts); set by rdmig_opts_init() */
	uint32_t page_size;	    /* RDMIG_PAGE_SIZE: guest page size, power of two (4096) */
	uint32_t workers;	    /* RDMIG_WORKERS: source worker threads, one data QP each
				     * (CPUs near the device, at most 4) */
	uint32_t chunk_pages;	    /* RDMIG_CHUNK_PAGES: pages a worker takes at a time
				     * (1 MiB worth: 256 of 4 KiB) */
	uint32_t queue_depth;	    /* RDMIG_QUEUE_DEPTH: work requests in flight per QP (128) */
	uint32_t signal_interval;   /* RDMIG_SIGNAL_INTERVAL: one WRITE in N is signalled (16) */
	uint32_t qp_timeout;	    /* RDMIG_QP_TIMEOUT: RC local ACK timeout exponent,
				     * 4.096 us * 2^n (18, ~1 s: soft-RoCE needs >= 18) */
	uint64_t inflight_bytes;    /* RDMIG_INFLIGHT_BYTES: bytes in flight per QP
				     * (4 MiB, at least 2 pages) */
	uint32_t timeout_ms;	    /* RDMIG_TIMEOUT_MS: a step that makes no progress for this
				     * long fails the session (20000) */
	uint32_t idle_timeout_ms;   /* RDMIG_IDLE_TIMEOUT_MS: destination: the source may stay
				     * silent this long; a running pass reports progress
				     * every second (120000, at least 3000) */
	uint32_t accept_timeout_ms; /* RDMIG_ACCEPT_TIMEOUT_MS: destination: how long
				     * rdmig_dst_run() waits for a source; 0 = forever */
	uint32_t max_qps;	    /* RDMIG_MAX_QPS: destination: data QPs it accepts (64) */
	uint32_t pin;		    /* RDMIG_PIN: enum rdmig_pin */
	uint32_t simd;		    /* RDMIG_SIMD: enum rdmig_simd */
	/*
	 * Source: leave pages off the wire when the destination is known to
	 * hold their content. RDMIG_SKIP_ZERO: a zero page the destination
	 * holds as zero is skipped, one it may not is zeroed there by a
	 * zero-fill order (never 4 KiB of zeros on the wire). RDMIG_SKIP_UNCHANGED:
	 * a page whose hash equals the one the destination computed over what
	 * landed is skipped. Both enum rdmig_switch, default on; with both off
	 * every dirty page is written (the benchmark baseline). Whether a
	 * pre-copy pass hashes what it writes (so that a later pass can skip
	 * it when rewritten unchanged) is the skip policy's, RDMIG_SKIP_POLICY:
	 * auto (the default: when the bandwidth model says a pass that hashes
	 * is faster, from the measured wire rate, the scan and hash rates and
	 * the recent share of unchanged pages; always while that share is
	 * unknown), always, or never (a fixed sample of one page in 64 only,
	 * hashed at both ends, keeping the share current). A pass hashes at
	 * the source only a page whose destination hash it holds (to compare
	 * with); the destination hashes what it writes. A page written
	 * unhashed is written again by the next pass that finds it dirty.
	 */
	uint32_t skip_zero;
	uint32_t skip_unchanged;
	/*
	 * Authentication (both ends must agree). With a pre-shared key the
	 * two ends prove to each other that they hold it before anything is
	 * exposed (see "Authentication" below). The key: `psk` points at
	 * psk_len bytes (RDMIG_PSK_MIN to RDMIG_PSK_MAX, random; copied at
	 * create, the caller may wipe its copy then), or RDMIG_PSK_FILE names
	 * a regular file holding them, readable by its owner only (it
	 * overrides psk). The key is never taken from an environment
	 * variable itself. Without a key create succeeds but connect and
	 * listen refuse, unless `auth` (RDMIG_AUTH=psk|none) is
	 * RDMIG_AUTH_NONE: an unauthenticated session, logged as a warning
	 * once per process.
	 */
	const void *psk;
	size_t psk_len;
	uint32_t auth;		  /* RDMIG_AUTH: enum rdmig_auth */
	uint32_t auth_timeout_ms; /* RDMIG_AUTH_TIMEOUT_MS: destination: how long a connecting
				   * peer has to authenticate (2000) */
	/*
	 * Choosing the path (see "Choosing the path" below). Strings are
	 * parsed and copied at create; NULL (and a clear bit in `set`) leaves
	 * the choice to the routing table and rdma_cm.
	 */
	const char *local_addr;	 /* RDMIG_LOCAL_ADDR: numeric IPv4/IPv6 address to leave from */
	const char *device;	 /* RDMIG_DEVICE: "mlx5_0" or "mlx5_0:1" (device[:port]) */
	const char *worker_cpus; /* RDMIG_WORKER_CPUS: CPUs the workers may use, "2-5,8" */
	uint32_t gid_index;	 /* RDMIG_GID_INDEX: with RDMIG_OPTS_GID_INDEX in `set` */
	uint32_t tos;		 /* RDMIG_TOS: 0..255, with RDMIG_OPTS_TOS in `set` */
	uint32_t set;		 /* RDMIG_OPTS_*: which of gid_index and tos hold a value
				  * (0 is a valid value of both) */
	uint32_t reserved2;	 /* 0 */
	/*
	 * RDMIG_MAX_BANDWIDTH: source: a cap on the wire, in bytes per second
	 * of RDMA WRITEs (the unit of rdmig_estimate.wire_rate; K, M, G are
	 * binary: 1G is 2^30 bytes/s, about 8.6 Gb/s), shared by all workers:
	 * a token bucket whose burst is 2 ms at the cap, plus one WRITE. 0:
	 * no cap (the default); otherwise at least 1M. The control messages
	 * (NOTICEs, PASS_END: a few hundred bytes per 256 pages) are not
	 * counted. rdmig_src_estimate() predicts the wire at the cap.
	 */
	uint64_t max_bandwidth;
};

/* Bits of rdmig_opts.set. */
#define RDMIG_OPTS_GID_INDEX (1u << 0)
#define RDMIG_OPTS_TOS	     (1u << 1)

/*
 * Choosing the path. By default rdmig goes where the routing table and
 * rdma_cm send it: the device and port behind the route to the peer, the
 * GID of the local address on that route, the device's default traffic
 * class, and, for the workers, the CPUs near the device. A VMM on a host
 * with several ports, a lossless RoCE priority, or pinned vCPUs says what
 * it wants instead; every value is checked, and one that cannot be had is
 * an error naming it (never a silent fallback):
 *
 * - local_addr / RDMIG_LOCAL_ADDR: the source leaves from this address
 *   (rdma_resolve_addr's source), which picks the device and port whose
 *   netdev holds it. At the destination it is the address to listen on
 *   when rdmig_dst_listen() is given host NULL.
 * - device / RDMIG_DEVICE ("name" or "name:port"): the device (and port)
 *   the connection must go through. rdma_cm picks the device from the
 *   addresses, so this is a check: connect (after resolving the route)
 *   and listen (after binding) fail with -ENODEV when no such device
 *   exists (the message lists those that do), and with -EINVAL, naming
 *   both, when the route goes through another device or port: set
 *   local_addr to an address of the one you want.
 * - gid_index / RDMIG_GID_INDEX: the local GID (RoCE: the address and
 *   RoCE version) to use. rdma_cm has no option for it; it takes the GID
 *   of the local address, of its default RoCE type (v2). So when no local
 *   address is given and the device is, the GID's address becomes the
 *   local address; then the entry must exist on the route's port (-EINVAL
 *   naming the index and the size of the port's GID table, or that the
 *   entry is empty), hold the local address, and be the entry the
 *   connected QP actually uses (-EINVAL naming the index rdma_cm chose,
 *   e.g. the same address's RoCE v2 entry for a RoCE v1 index).
 * - tos / RDMIG_TOS (0..255): the IP TOS / traffic class of every
 *   connection (rdma_set_option RDMA_OPTION_ID_TOS before the route is
 *   resolved; at the destination on the listening id). On RoCE it is the
 *   packets' DSCP and ECN byte, which the switches map to a (lossless)
 *   priority; the device maps it to a service level. The destination's
 *   QPs answer with the traffic class of the source's request.
 * - worker_cpus / RDMIG_WORKER_CPUS: the CPUs the source's workers may run
 *   on, a list like "2-5,8", e.g. the host's cores minus those of pinned
 *   vCPUs. It must share a CPU with the process's affinity (else create
 *   fails, -EINVAL, naming both). Workers are pinned (RDMIG_PIN on) to
 *   CPUs near the device within the list, or anywhere in it when none of
 *   it is near; with RDMIG_PIN off each worker may float over the list.
 *   The default worker count is then at most the list's usable CPUs.
 *
 * The loopback transport (tests) checks every value but has no device:
 * device, GID index and TOS are accepted and ignored there.
 */

/*
 * Authentication. Both ends hold the same pre-shared key: random bytes
 * (head -c 32 /dev/urandom), never a passphrase, since any host that
 * connects gets a proof it can test guesses of the key against offline.
 * On connect each sends a fresh 32-byte nonce, and each proves it holds
 * the key with an HMAC-SHA256, under a key of its own role derived by
 * HKDF, over the handshake so far: the destination over both nonces, the
 * source's version range and capabilities, its own choice of version and
 * capabilities, both auth modes and the connection's addresses and QP
 * numbers; the source over all of that, the destination's proof, and its
 * own proposal (page size, QPs, the region layout). Until the source's
 * proof checks out the
 * destination registers no memory, sends no rkey and no layout, accepts no
 * data QP, and tells the peer nothing but "authentication failed" (or that
 * the auth modes or versions do not match). Afterwards every message on
 * every QP carries a sequence number and a MAC (keys derived per
 * direction), and each data QP proves with a MAC over its own QP number
 * that it belongs to the session. The skip engine's hash key is derived
 * too: it never crosses the wire.
 *
 * What this does not protect: the guest memory itself. RDMA WRITEs travel
 * in clear and are not authenticated by rdmig (RoCEv2's ICRC is a
 * checksum, not a MAC): a host on the path between the two ends can read
 * pages and, with the rkeys it sees, forge writes while the session runs.
 * Run migrations over a private fabric or partition (an IB partition key,
 * a VLAN the guests cannot reach), or under IPsec for RoCEv2.
 *
 * Versions. Each end offers a range of protocol versions and a set of
 * capability bits; the highest common version wins, the capabilities are
 * the intersection, unknown bits are ignored, and no common version fails
 * both ends naming both ranges. This library speaks version 4, the first
 * authenticated one; it never settles on an older one. The first message
 * (HELLO: versions, capabilities, auth mode, nonce) is frozen: every later
 * version sends it unchanged, so any version can read any other's offer. A
 * later version may append fields to it and may change everything after
 * it.
 *
 * A destination with a key never fails rdmig_dst_run() because of a peer
 * that did not prove it: such attempts are refused, counted in
 * rdmig_dst_stats.rejected and logged, while it goes on waiting for the
 * real source (RDMIG_ACCEPT_TIMEOUT_MS; the timeout's message names the
 * count and the last reason, e.g. a source without a key). At most 4
 * connections authenticate at once, each for at most
 * RDMIG_AUTH_TIMEOUT_MS; none costs guest memory. A destination without a
 * key (RDMIG_AUTH_NONE) takes anyone for the source: a source with a key
 * then fails it, both ends naming the mismatch.
 */

/* Values of rdmig_opts.auth. */
enum rdmig_auth {
	RDMIG_AUTH_DEFAULT = 0, /* a pre-shared key is required */
	RDMIG_AUTH_PSK = 1,	/* the same, said explicitly */
	RDMIG_AUTH_NONE = 2,	/* no key: anyone who reaches the port is the peer */
};

#define RDMIG_PSK_MIN 32   /* bytes of key at least */
#define RDMIG_PSK_MAX 1024 /* and at most */

/* Sets `size` and every field to its default (0). Never fails. */
void rdmig_opts_init(struct rdmig_opts *opts);

/*
 * The message for the latest rdmig call on this thread, if it failed: "" if
 * it succeeded (or no call was made). Like dlerror(), not errno: every rdmig
 * call clears it when it starts, except rdmig_last_error() itself,
 * rdmig_opts_init(), rdmig_set_log(), rdmig_src_progress() and the
 * cancels (which set it only for a NULL handle), so read it right after the call that failed, before
 * any other (a destroy may change it too). The pointer is this thread's
 * own buffer, valid for the thread's life; at most RDMIG_ERROR_MAX bytes
 * with the NUL.
 */
const char *rdmig_last_error(void);

/* --- Limits -------------------------------------------------------------- */

#define RDMIG_MAX_REGIONS   256	 /* regions per handle (add_region: -ENOSPC beyond) */
#define RDMIG_MAX_WORKERS   64	 /* RDMIG_WORKERS at most */
#define RDMIG_MAX_QPS	    64	 /* RDMIG_MAX_QPS at most: data QPs per session */
#define RDMIG_PAGE_SIZE_MIN 4096 /* RDMIG_PAGE_SIZE: a power of two in this range */
#define RDMIG_PAGE_SIZE_MAX (1u << 30)
#define RDMIG_ERROR_MAX	    512 /* bytes of rdmig_last_error(), NUL included */

/* --- Logging ------------------------------------------------------------- */

/* Levels of rdmig's log lines; RDMIG_LOG_LEVEL=error|warn|info|debug. */
enum rdmig_log_level {
	RDMIG_LOG_ERROR = 0,
	RDMIG_LOG_WARN = 1, /* the default level */
	RDMIG_LOG_INFO = 2,
	RDMIG_LOG_DEBUG = 3, /* also every failure's rdmig_last_error() message */
};

/*
 * A log callback: `msg` is one line, without a newline, "function:line:
 * text", valid during the call only.
 */
typedef void (*rdmig_log_fn)(void *arg, enum rdmig_log_level level, const char *msg);

/*
 * Sends rdmig's log lines to fn(arg, level, msg) instead of stderr ("rdmig
 * LEVEL msg"); NULL restores stderr. Process-wide, for every handle; may be
 * called at any time from any thread, before any handle exists too. Lines
 * above RDMIG_LOG_LEVEL (default warn) are never made, callback or not.
 *
 * Who calls fn: whichever thread logs, that is the thread inside any rdmig
 * call (the VMM's), the source's workers (rdmig's threads, during connect,
 * passes, complete and destroy), connect's helpers (rdmig's, see "Threads"
 * at the top) and the thread inside rdmig_dst_run() (the VMM's), and so fn
 * may run on several threads at once: it must be
 * thread-safe, should return quickly (workers wait for it), and must not
 * call any rdmig function (it may run while rdmig holds a lock of its
 * own). A bad RDMIG_LOG_LEVEL is logged through it too, at
 * RDMIG_LOG_ERROR, the first time a line could be made.
 *
 * Blocks only while a callback is running: when it returns, no thread is
 * inside the previous callback any more and none will call it again, so
 * its arg may be freed. Never fails; leaves errno and rdmig_last_error()
 * as they are.
 */
void rdmig_set_log(rdmig_log_fn fn, void *arg);

/* Statistics of one pass, filled by rdmig_src_pass(). */
struct rdmig_pass_stats {
	size_t size;		/* set by the caller: sizeof(struct rdmig_pass_stats) */
	uint64_t pass;		/* 1 for the first pass */
	uint64_t dirty_pages;	/* pages marked dirty in the bitmaps, or discarded, and pages
				 * whose last copy mismatched, taken up again as if dirty */
	uint64_t written_pages; /* pages written to the destination */
	uint64_t wire_bytes;	/* bytes put on the wire by RDMA WRITEs */
	uint64_t writes;	/* RDMA WRITE work requests posted */
	uint64_t duration_ns;	/* wall time of the call */
	uint32_t workers;	/* workers that took part */
	uint32_t reserved;
	uint64_t scanned_pages;	    /* dirty pages read and classified */
	uint64_t skipped_zero;	    /* zero pages the destination holds as zero */
	uint64_t skipped_unchanged; /* pages whose content the destination proved it holds */
	uint64_t skipped_ballooned; /* dirty pages in the skip set: never read, never sent */
	uint64_t zero_filled_pages; /* zero pages the destination zeroed on order */
	uint64_t scan_ns;	    /* worker time spent scanning, summed over workers */
	uint64_t wire_ns;	    /* time the slowest worker's WRITEs were in flight */
	/*
	 * Verification (see rdmig_src_pass() and rdmig_src_complete()). Pages
	 * whose copy landed other than the source scanned them, counted per
	 * write (a page that mismatches in both rounds of a final pass counts
	 * twice); pages sent again because their last copy mismatched (in the
	 * next pass, or in a final pass's second round; counted in
	 * written_pages or zero_filled_pages too); and, after the pass, pages
	 * whose last copy is still known to differ: before a final pass the
	 * next pass takes them up, after one complete refuses while any is.
	 * In rdmig_src_stats() the first two are summed, the third is now's.
	 */
	uint64_t mismatched_pages;
	uint64_t resent_pages;
	uint64_t mismatch_pending;
};

/*
 * One region's dirty log for a pass, in KVM's layout: bit i of the bitmap
 * (64-bit little-endian words, bit i in word i / 64 at position i % 64) says
 * page i of the region is dirty. `words` is the bitmap's length in 64-bit
 * words and must cover the region; bits past the region's end are ignored.
 *
 * `skip` (may be NULL), in the same layout and with the same length rule
 * (`skip_words`), marks pages whose content is don't-care (ballooned, free
 * page hints): a dirty page in it is never read nor sent, and the
 * destination's copy of it becomes unknown. A page that leaves the skip set
 * must be dirty in a later pass to be sent again. Bits past the region's
 * end are ignored here too, whatever they hold from pass to pass.
 *
 * With RDMIG_PASS_ALL, `dirty` may instead hold one entry per region whose
 * `bitmap` is NULL (and `words` unused): every page is dirty, and `skip`
 * is honoured as above. That is the first pass of a guest with balloon or
 * free page information, without an all-ones bitmap of the VMM's.
 */
struct rdmig_dirty {
	const uint64_t *bitmap;
	size_t words;
	const uint64_t *skip;
	size_t skip_words;
};

/* Flags for rdmig_src_pass(). */
/*
 * Every page is dirty. `dirty` may be NULL (no skip set), or hold one entry
 * per region with `bitmap` NULL and a skip set (see struct rdmig_dirty).
 */
#define RDMIG_PASS_ALL (1u << 0)
/*
 * The final pass: the guest is paused, and this pass is to leave the
 * destination's image exact. Every page it writes is hashed at both ends
 * and compared, whatever opts.skip_zero and opts.skip_unchanged say; a page
 * that landed other than the source holds is sent again within the pass,
 * and if it mismatches again rdmig_src_complete() fails with -EIO naming
 * it. Costs a hash of every written page at each end (whatever the skip
 * policy says: see opts.skip_unchanged) and, with skipping off, the
 * NOTICE round trips. Not for a running guest: its writes meanwhile
 * show as mismatches.
 */
#define RDMIG_PASS_FINAL (1u << 1)

/* Flags for rdmig_dst_add_region(). */
#define RDMIG_REGION_ZERO_FILLED (1u << 0) /* the memory is known to be all zero now */

/* --- Source ------------------------------------------------------------ */

/*
 * Creates a source handle. opts may be NULL for all defaults. Does not block.
 * Returns 0 and *srcp, or -EINVAL (bad option or environment variable),
 * -ENOTSUP (RDMIG_SIMD forces an instruction set this CPU lacks), -ENOMEM.
 */
int rdmig_src_create(const struct rdmig_opts *opts, struct rdmig_src **srcp);

/*
 * Declares a guest memory region: guest-physical address `gpa`, mapped at
 * `hva` in this process, `len` bytes. All three must be multiples of the page
 * size, len > 0, and the region must not overlap another in guest-physical
 * or host-virtual space. Only before rdmig_src_connect(). rdmig only reads
 * source memory. Returns the region's index (0, 1, ...: the index of its
 * dirty log in rdmig_src_pass()), or -EINVAL, -EISCONN, -ENOSPC (too many),
 * -EPIPE (the session has ended).
 */
int rdmig_src_add_region(struct rdmig_src *src, uint64_t gpa, void *hva, uint64_t len);

/*
 * Connects to a destination listening on host:port, authenticates (see
 * Authentication), negotiates version, capabilities, page size, data QPs
 * and the region layout, and starts the workers.
 * Guest memory is registered (pinned) first, before anything is sent, its
 * segments on several threads; the data connections are made in parallel
 * (each step of each bounded as below), and with RDMIG_LOG_LEVEL=info a
 * line says where the call's time went.
 * Blocks, for at most about timeout_ms per step (plus a second per GiB of
 * guest for the destination to register it; not counted: resolving a host
 * name, and registering the guest here, which a cancel interrupts between
 * segments of 1 GiB). Returns 0, or -EISCONN
 * (connected already), -EPIPE (the session has ended), -EINVAL (no regions,
 * or RDMIG_CHUNK_PAGES makes WRITEs larger than the device allows),
 * -ECONNREFUSED / -ETIMEDOUT / -EHOSTUNREACH (no destination), -EACCES (no
 * key and no RDMIG_AUTH_NONE; or authentication failed or the auth modes
 * differ), -EPROTO (no common version, or the destination refused: see
 * rdmig_last_error(), e.g. a region layout mismatch), -ECANCELED
 * (rdmig_src_cancel), -ENODEV (also: RDMIG_DEVICE names no device here),
 * -EINVAL (also: the route or QP is not the device, port or GID index
 * asked for, see "Choosing the path"), -ENOMEM, or another errno from the
 * RDMA stack.
 * On failure nothing is left connected and the call may be retried.
 */
int rdmig_src_connect(struct rdmig_src *src, const char *host, const char *port);

/* Which part of the two ends' layouts differs (struct rdmig_layout_mismatch). */
enum rdmig_layout_field {
	RDMIG_LAYOUT_NONE = 0,	    /* no mismatch recorded */
	RDMIG_LAYOUT_PAGE_SIZE = 1, /* values: the page sizes */
	RDMIG_LAYOUT_COUNT = 2,	    /* values: the numbers of regions */
	/*
	 * The source's region `region` starts at a gpa where no destination
	 * region does. Values: its gpa, and the gpa of the destination's
	 * region `dst_region` that overlaps it (UINT64_MAX and UINT32_MAX
	 * where none does).
	 */
	RDMIG_LAYOUT_GPA = 3,
	RDMIG_LAYOUT_LENGTH = 4, /* the same gpa, other lengths (bytes) */
};

/*
 * Why the two ends' layouts did not match, field by field, so that a VMM
 * need not parse rdmig_last_error(). Regions are matched by gpa, checked
 * in the source's region order, after the page size; the first
 * difference is reported, the count last.
 */
struct rdmig_layout_mismatch {
	size_t size;	     /* set by the caller: sizeof(struct rdmig_layout_mismatch) */
	uint32_t field;	     /* enum rdmig_layout_field */
	uint32_t region;     /* the source's region index (GPA, LENGTH), else UINT32_MAX */
	uint32_t dst_region; /* the destination's (LENGTH, GPA if any), else UINT32_MAX */
	uint32_t reserved;
	uint64_t source;      /* the source's value */
	uint64_t destination; /* the destination's value */
};

/*
 * After rdmig_src_connect() failed with -EPROTO because the destination
 * refused our layout or page size: fills *mm and returns 0. Returns
 * -ENODATA (mm->field RDMIG_LAYOUT_NONE) when the latest connect did not
 * fail so (or the destination, of an older rdmig, did not say how), or
 * -EINVAL (NULL, mm->size not set). Does not block; the record lasts until
 * the next connect.
 */
int rdmig_src_mismatch(struct rdmig_src *src, struct rdmig_layout_mismatch *mm);

/*
 * Runs one pass: brings every dirty page up to date at the destination and
 * returns when all of it is placed there (the destination has confirmed).
 * A page goes on the wire unless the destination is proven to hold its
 * content (see opts.skip_zero and opts.skip_unchanged); a dirty page in
 * the region's skip set is neither read nor sent. `dirty` holds one entry
 * per region, in region index order (`ndirty` must equal the number of
 * regions), unless flags has RDMIG_PASS_ALL (then `dirty` is NULL, or
 * holds skip sets only: see struct rdmig_dirty). The guest may keep running
 * during a pass; a page it changes meanwhile must be dirty again in a later
 * pass. Pass RDMIG_PASS_FINAL for the pass after pausing the guest.
 *
 * Verification: the destination hashes what landed of every page written
 * and the source compares that with the hash it took when it scanned the
 * page, in every final pass for every page it writes, and in a pre-copy
 * pass with skip_unchanged on for every page the source hashed anyway:
 * one whose destination hash it held from an earlier pass, compared to
 * skip it (see opts.skip_unchanged: the skip policy). A page where they
 * differ (the guest wrote it between the scan and the NIC's read, or the
 * copy broke on the way) is taken up again by the next pass as if dirty,
 * and verified then; in a final pass, at once, in a second round of the same pass (see
 * stats->mismatched_pages, resent_pages, mismatch_pending). `stats` may be
 * NULL. While it runs, the destination is told about once a second that
 * the pass goes on. Pages discarded since the last pass
 * (rdmig_src_discard()) are sent too, counted as dirty, after their
 * memory is registered again. Blocks. Returns 0, or -ENOTCONN, -EINVAL
 * (bad bitmap or flags: nothing was sent), -ENOMEM or another errno from
 * registering discarded memory again (nothing was sent; the discards stay
 * recorded for the next pass; -ENOMEM/-EPERM may mean RLIMIT_MEMLOCK),
 * -EPIPE (the session ended earlier), or -ETIMEDOUT / -ECONNRESET /
 * -EIO / -EPROTO / -ENODEV / -EBADMSG (a message failed its MAC or
 * sequence check) / -ECONNABORTED (the destination aborted) (the session
 * failed now: connections are closed and guest memory deregistered before
 * the call returns; every later call but destroy returns -EPIPE), or
 * -ECANCELED (rdmig_src_cancel), or -EBUSY (a pass is paused: see
 * rdmig_src_pass_budget(); nothing changes).
 */
int rdmig_src_pass(struct rdmig_src *src, const struct rdmig_dirty *dirty, unsigned ndirty,
		   unsigned flags, struct rdmig_pass_stats *stats);

/*
 * Tells rdmig that guest memory was discarded: bytes [offset, offset + len)
 * of region `region` (offsets from the region's start; both multiples of
 * the page size, len > 0, within the region) were given back with
 * MADV_DONTNEED, MADV_REMOVE, MADV_FREE, fallocate(PUNCH_HOLE) or the like
 * (a balloon inflating, free page reporting). Call it after the discard
 * took effect (after madvise() returned), for every discard from connect
 * on; discards before connect need no call (connect registers what is
 * mapped then).
 *
 * Why: the source registers guest memory once, and the NIC reads the
 * frames pinned then, not what the process maps now. After a discard the
 * next touch maps another frame while the registration still points at
 * the old one, so without this call a later pass would send the page's old
 * content, whatever the guest wrote since.
 *
 * Any thread may call it at any time, also while a pass runs on another
 * thread (a balloon thread need not wait for the migration loop): it only
 * records the range, under a lock that a pass holds for a few pointer
 * swaps, and never waits for a pass. The next pass to start (not one
 * already running: a page it sends may still carry the old frame) takes
 * what was recorded, before any worker reads memory: it registers the
 * affected part of the region again (regions are registered in MRs of at
 * most 1 GiB, or of one chunk where RDMIG_CHUNK_PAGES makes a chunk
 * larger: no WRITE spans two MRs; each one that holds a discarded page is
 * registered anew, then the old one is dropped, one MR at a time, so what counts against
 * RLIMIT_MEMLOCK grows by at most one MR, 1 GiB, meanwhile; over rxe in a
 * TCG VM it took 70 to 450 ms per GiB, from run to run), treats the pages
 * as dirty and
 * what the destination holds of them as unknown (neither a zero nor a
 * hash match lets them be skipped). So the pass after the last discard
 * makes them exact; rdmig_src_complete() refuses (-EINVAL, naming the
 * page) while a discard waits for a pass, and from the moment it accepts,
 * discards are refused with -EPIPE. The discarded frames are released when
 * that pass drops the old MR, not before.
 *
 * Registering memory pins every page of it, holes included, and what a
 * read-only pin puts into a hole depends on the kernel. Linux 6.1 gives
 * it a fresh zeroed frame (seen over rxe): so a discarded page that is
 * still a hole when its MR is registered again takes memory again, until
 * the session ends, and a balloon gives nothing back meanwhile. A kernel
 * that pins the shared zero page instead leaves the page a hole, and the
 * guest's first write moves it to a new frame the MR does not see. rdmig
 * handles both: a page that was a hole at a pin (at connect, or after a
 * discard) is watched, and at each pass start /proc/self/pagemap is read
 * for those of them that are dirty; one that holds a frame of its own has
 * its MR registered once more, then it is settled. Without pagemap, such
 * an MR is registered again in every pass that sends one of its pages.
 *
 * On-demand paging (IBV_ACCESS_ON_DEMAND, e.g. mlx5) would let the NIC
 * follow the process's mappings and make this unnecessary; rdmig does not
 * use it: registration works on every device, soft-RoCE (rxe) on Linux 6.1
 * has no ODP at all, and ODP moves page faults into the data path.
 *
 * At the destination, guest memory is registered for remote write while
 * rdmig_dst_run() serves a source, and a WRITE into discarded memory lands
 * in the old frame, invisible to the guest (a hole punched in a memfd
 * detaches it the same way). The destination VMM must not discard guest
 * memory meanwhile, and during post-copy it must inhibit the guest's
 * discards (balloon, free page reporting) until every page has arrived.
 *
 * Returns 0, or -EINVAL (src NULL, no such region, offset or length not
 * page-aligned, zero, or past the region's end: nothing is recorded, the
 * session goes on), -EPIPE (the session has failed or completed), -ENOMEM.
 */
int rdmig_src_discard(struct rdmig_src *src, unsigned region, uint64_t offset, uint64_t len);

/*
 * A prediction of the final pass (DESIGN.md, the bandwidth model), filled by
 * rdmig_src_estimate(). A pass is modelled as its slower stage, the scan of
 * the dirty pages or the wire carrying what must go, plus an overhead, the
 * share of the slower stage that recent passes took beyond theirs.
 * The rates come from recent passes (one far off the others', which the
 * machine stalled, left out). The share of pages written comes from a
 * sample of 4096 to 8191 of the dirty pages (every k-th; of pages larger
 * than 4 KiB, as many as 16 MiB holds, at least one) when bitmaps are
 * given and skipping is on (scanned and decided as a pass would, now;
 * pooled with recent passes' counts when it agrees with them), else from
 * recent passes; the WRITEs from the runs of the dirty bitmaps, else as the
 * latest pass coalesced its pages. Bytes that are skipped never count as
 * wire bytes.
 */
struct rdmig_estimate {
	size_t size;		  /* set by the caller: sizeof(struct rdmig_estimate) */
	uint64_t final_pass_ns;	  /* predicted duration of a pass over the dirty set */
	uint64_t dirty_pages;	  /* the dirty set asked about */
	uint64_t wire_bytes;	  /* predicted bytes on the wire */
	uint64_t scan_ns;	  /* predicted scan stage */
	uint64_t wire_ns;	  /* predicted wire stage */
	uint64_t overhead_ns;	  /* beyond the slower stage, from recent passes */
	uint64_t scan_rate;	  /* bytes per second, all workers */
	uint64_t wire_rate;	  /* bytes per second of busy wire */
	uint32_t write_share_ppm; /* of dirty pages not ballooned, the share written */
	uint32_t passes;	  /* recent passes the figures come from */
	uint64_t writes;	  /* predicted RDMA WRITEs (runs of written pages) */
	uint64_t write_cost_ns;	  /* fitted wire time of a WRITE beyond its bytes */
	uint32_t flags;		  /* RDMIG_ESTIMATE_* */
	uint32_t reserved;	  /* 0 (the padding, made explicit) */
	/*
	 * The whole downtime, from pausing the guest to the end of
	 * rdmig_src_complete(): the final pass above, then the device state
	 * announced with rdmig_src_expect_state() (0 when none was), then
	 * complete's round trip. state_ns counts the state's bytes at
	 * wire_rate, its scan (zero check and hash at the source, hash at the
	 * destination) at one worker's share of scan_rate, its registration
	 * at both ends at the rate measured when guest memory was registered
	 * at connect, and its two round trips; complete_ns one round trip (as
	 * measured by the handshake). Deregistering guest memory is outside
	 * the downtime at both ends (rdmig_src_complete(), rdmig_dst_run()).
	 */
	uint64_t state_bytes; /* as announced */
	uint64_t state_ns;
	uint64_t complete_ns;
	uint64_t downtime_ns; /* final_pass_ns + state_ns + complete_ns */
};

/*
 * No recent pass wrote WRITEs of about the size this pass would (within a
 * factor of 4), so what a WRITE costs beyond its bytes is not known and
 * final_pass_ns is likely optimistic. Typical after the first pass alone:
 * it coalesced everything into large WRITEs, while a running guest's dirty
 * pages are scattered. Run one more pre-copy pass before trusting it.
 */
#define RDMIG_ESTIMATE_EXTRAPOLATED (1u << 0)

/*
 * "If the guest stopped now, how long would the final pass take?" The dirty
 * set is given as bitmaps (`dirty`/`ndirty` as for rdmig_src_pass(), skip
 * bitmaps honoured: ballooned pages cost nothing), or, with dirty NULL, as a
 * count of dirty pages. Does not block and does no I/O; besides counting
 * the bitmaps' bits and runs it reads up to 16 MiB of guest memory for the
 * sample (about 2 ms). Call it between passes. Returns 0, -ENOTCONN,
 * -EINVAL (bad bitmaps), -ENODATA (no pass has run, or nothing was ever
 * written so the wire rate is unknown), -EBUSY (a budgeted pass is
 * paused), -EPIPE (the session ended) or -ECANCELED.
 */
int rdmig_src_estimate(struct rdmig_src *src, const struct rdmig_dirty *dirty, unsigned ndirty,
		       uint64_t dirty_pages, struct rdmig_estimate *est);

/*
 * Statistics summed over every pass so far (`pass` is the number of passes,
 * duration_ns their total time, workers the current count). `stats->size`
 * must be set. Returns 0, or -EINVAL.
 */
int rdmig_src_stats(struct rdmig_src *src, struct rdmig_pass_stats *stats);

/*
 * Ends the migration after the final pass: the destination revokes remote
 * access to guest memory (moves the QPs that could write it to error) and
 * confirms; it deregisters later, outside the downtime, and so does the
 * source: complete's time does not grow with the guest, and the source's
 * guest memory stays registered (pinned, for local access only) until
 * rdmig_src_destroy(). Refused with -EINVAL,
 * naming the page, while some page was never sent by any pass, and with
 * -EIO, naming the page and its gpa, while some page's last copy is known
 * to differ from the source's (it mismatched and was not sent again since,
 * or mismatched twice in a final pass); either way the session stays
 * usable: run another (final) pass, which takes such pages up by itself,
 * then complete, or destroy the handle to abandon the migration. Blocks.
 * Returns 0, or -ENOTCONN, -EINVAL, -EIO, or an error as for
 * rdmig_src_pass(). When the session fails here, the destination may have
 * completed already (its confirmation was lost): the guest is unharmed at
 * the source, and which side runs it is for the VMMs to settle.
 *
 * What 0 proves. Every page outside the skip set was sent by some pass
 * (or is zero where the destination's region was declared zero-filled),
 * and no page's copy is known to differ: for every page a pass verified
 * (every page a final pass wrote; in a pre-copy pass with skip_unchanged
 * on, every page written that the source hashed: see rdmig_src_pass()),
 * the destination's keyed XXH3-128 over the bytes that landed equals the
 * source's over the bytes it scanned (zero matching zero); every
 * zero-fill order was carried out; every page left off the wire was one
 * the destination had proven it holds (DESIGN.md invariant 2). So, if the
 * last pass had RDMIG_PASS_FINAL, ran with the guest paused, and its
 * dirty set held every page written since the page's previous pass, the
 * destination's image outside the skip set is byte for byte the source's
 * at pause time, short of a hash collision (the key is random per
 * migration and unknown to the guest). It does not vouch for a page the
 * VMM's dirty log missed, nor for one last written by a pre-copy pass
 * that did not verify it (skip_unchanged off; or the page had no
 * destination hash to compare with, or the skip policy had hashing off:
 * not verified then, and not dirty since): that copy rests on the
 * transport's own checks. The hash the destination took of such a page
 * is kept for a later pass that finds the page dirty: equal to the
 * page's then, the page is skipped (proven); unequal, it goes again.
 */
int rdmig_src_complete(struct rdmig_src *src);

/*
 * Stops the migration, from any thread or a signal handler (it is an atomic
 * store and a write(2) to an eventfd: async-signal-safe for a valid src),
 * while another thread may be inside rdmig_src_connect, pass, estimate or
 * complete. That call returns -ECANCELED within 100 ms plus the time the
 * device takes to flush the work requests in flight (the workers stop
 * posting at once; their queues drain or flush before the call returns).
 * The destination is told (a sealed ERROR it reports as -ECONNABORTED, not
 * a timeout), the connections are closed and guest memory is
 * deregistered before the call returns. A handle cancelled while idle
 * fails its next call with -ECANCELED, without touching the network
 * until then. Every later call that would use the session (add_region,
 * connect, pass, estimate, complete) returns -ECANCELED; stats still
 * report, and discard returns -EPIPE once the session is torn down. The
 * guest keeps running here, untouched. Returns 0, or -EINVAL for NULL (then,
 * and only then, it sets rdmig_last_error(); it never clears it).
 */
int rdmig_src_cancel(struct rdmig_src *src);

/*
 * Destroys the handle. A session not completed is abandoned: the destination
 * sees the disconnect and fails. Deregisters (unpins) guest memory, which
 * takes time in proportion to it. NULL is allowed.
 */
void rdmig_src_destroy(struct rdmig_src *src);

/* --- Source: progress and passes in slices ------------------------------ */

/* Values of rdmig_progress.state. */
enum rdmig_progress_state {
	RDMIG_PROGRESS_IDLE = 0,    /* no pass is under way: the figures are the last pass's */
	RDMIG_PROGRESS_RUNNING = 1, /* a pass runs (in rdmig_src_pass or a slice of one) */
	RDMIG_PROGRESS_PAUSED = 2,  /* a pass stopped on its budget: rdmig_src_pass_resume */
};

/*
 * Where the source stands, filled by rdmig_src_progress(). The counters
 * are those of the pass under way (all its slices and rounds so far), or
 * of the last pass when none is: once a pass has ended they equal its
 * statistics (for a pass in slices, the slices' summed), field for field.
 * Each worker publishes its counters after every block of up to 256 pages
 * it handled, so a running pass's figures lag by at most that per worker.
 * A round's chunks are those with a dirty (or mismatched) page: a pass
 * looks at the others' bits only, never at their pages; an RDMIG_PASS_ALL
 * pass without skip sets, and a final pass's second round, count every
 * chunk of every region (the clean ones of the latter done at once).
 */
struct rdmig_progress {
	size_t size;		    /* set by the caller: sizeof(struct rdmig_progress) */
	uint64_t pass;		    /* the pass under way, else the last one (0: none yet) */
	uint32_t state;		    /* enum rdmig_progress_state */
	uint32_t workers;	    /* workers of the session (0: not connected) */
	uint64_t dirty_pages;	    /* dirty pages handled: as rdmig_pass_stats.dirty_pages */
	uint64_t written_pages;	    /* as rdmig_pass_stats.written_pages */
	uint64_t wire_bytes;	    /* bytes of RDMA WRITEs posted: as rdmig_pass_stats */
	uint64_t writes;	    /* RDMA WRITEs posted */
	uint64_t skipped_pages;	    /* skipped: zero, unchanged and ballooned together */
	uint64_t zero_filled_pages; /* as rdmig_pass_stats.zero_filled_pages */
	uint64_t chunks_done;	    /* chunks of the current round done ... */
	uint64_t chunks;	    /* ... of this many (see below) */
	uint64_t total_wire_bytes;  /* over the session: passes ended, and this one */
};

/*
 * Reads where the source stands, from any thread, at any time, also while
 * another thread is inside any call on the handle but destroy: cheap
 * enough to call every millisecond (no lock, no system call, nothing that
 * waits: a few relaxed loads per worker; perf/rdmig-perf reports the cost
 * of one call). It never disturbs the pass (the workers never wait for
 * it). `progress->size` must be set. Works in every state, also after the
 * session failed or completed (the figures stay those of the last pass).
 * Does not set rdmig_last_error() unless it fails. Returns 0, or -EINVAL
 * (src or progress NULL, size not set).
 */
int rdmig_src_progress(struct rdmig_src *src, struct rdmig_progress *progress);

/*
 * A bound on one call of rdmig_src_pass_budget() or rdmig_src_pass_resume():
 * a time, in nanoseconds from the call's start, and/or bytes of RDMA
 * WRITEs; the call ends at whichever is spent first. 0 in a field: no
 * bound of that kind; both 0 is refused. `size` lets it grow.
 */
struct rdmig_budget {
	size_t size;	     /* set by the caller: sizeof(struct rdmig_budget) */
	uint64_t time_ns;    /* 0: no time bound */
	uint64_t wire_bytes; /* 0: no byte bound */
};

/* rdmig_src_pass_budget() and rdmig_src_pass_resume(): the budget was spent first. */
#define RDMIG_PASS_PAUSED 1

/*
 * rdmig_src_pass(), in slices: runs the pass until it ends (returns 0, as
 * rdmig_src_pass() would) or until the budget is spent (returns
 * RDMIG_PASS_PAUSED), so that a VMM main loop can do other work in
 * between. A paused pass goes on with rdmig_src_pass_resume(), from where
 * it stopped, with the same dirty logs, flags and pass number.
 *
 * The budget is looked at between chunks (RDMIG_CHUNK_PAGES, 1 MiB): once
 * it is spent no worker takes another chunk, and the call returns when
 * every chunk taken is done: every WRITE posted has completed and every
 * NOTICE is answered, so what the destination holds is known, nothing is
 * half sent. So a call may overrun its time by about one chunk per worker
 * (under opts.max_bandwidth, a chunk's time at the cap) and the answers'
 * round trip, and its bytes by up to a chunk per worker. Every call does
 * at least one chunk, so a pass always gets somewhere. The destination
 * sees nothing of the pause (it is told the pass ends only when it does).
 *
 * While paused: the dirty and skip bitmaps are no longer read: rdmig keeps
 * a copy of them (a bit per page each, allocated at the first pause and
 * kept until destroy), so the VMM may reuse its own (sync the next dirty
 * log into them) as soon as the call returns; pages dirtied meanwhile go
 * in the next pass. rdmig_src_pass(), _pass_budget(), _estimate() and
 * _complete() return -EBUSY (nothing changes); rdmig_src_progress(),
 * _stats() (passes ended only), _discard() (for the next pass, as with a
 * running one), _cancel() and destroy work. The source talks to the
 * destination only inside calls: the VMM must resume within the
 * destination's RDMIG_IDLE_TIMEOUT_MS (120 s by default) of the pause, or
 * the destination gives up (-ETIMEDOUT there, and this side's next call
 * fails). A pause tells the destination the pass goes on, so that window
 * starts at the pause.
 *
 * A final pass (RDMIG_PASS_FINAL) may be sliced too: its first round
 * pauses like any pass; its second round (the pages that mismatched in
 * the first, usually none) runs to the end in the call that ends the
 * first round, unbudgeted.
 *
 * `stats` (may be NULL) gets this call's share of the pass: over all its
 * slices the counters, scan_ns, wire_ns and duration_ns (the time inside
 * the calls, not the VMM's in between) add up to what rdmig_src_stats()
 * and the model take for the whole pass; `pass` is the pass's number and
 * mismatch_pending, as ever, is now's. Blocks for about the budget.
 * Returns 0, RDMIG_PASS_PAUSED, or an error as rdmig_src_pass() (the
 * session failed as there), or -EINVAL (budget NULL, size not set, or both
 * bounds 0: nothing was done, the session goes on), -EBUSY (a pass is
 * paused: resume it).
 */
int rdmig_src_pass_budget(struct rdmig_src *src, const struct rdmig_dirty *dirty, unsigned ndirty,
			  unsigned flags, const struct rdmig_budget *budget,
			  struct rdmig_pass_stats *stats);

/*
 * Goes on with the pass that rdmig_src_pass_budget() paused, within a new
 * budget (NULL: to its end). Returns as rdmig_src_pass_budget(), or
 * -EINVAL (no pass is paused, or a bad budget: the session goes on).
 */
int rdmig_src_pass_resume(struct rdmig_src *src, const struct rdmig_budget *budget,
			  struct rdmig_pass_stats *stats);

/*
 * One region's dirty log for a pass as a list, as KVM's dirty ring gives
 * it (struct kvm_dirty_gfn: the slot is the region, `offset` the page):
 * `pages` holds `count` page indices from the region's start (page i is
 * bytes [i * page size, (i + 1) * page size) of the region), in any order.
 * A page may be listed more than once (rings of several vCPUs harvested
 * together): it counts once. Every index must be below the region's page
 * count, else the call fails with -EINVAL naming the region, the entry and
 * the page, and nothing is sent. `pages` may be NULL when `count` is 0 (no
 * page of the region is dirty). `skip` and `skip_words` as in struct
 * rdmig_dirty (a bitmap; NULL: none): a listed page in it is neither read
 * nor sent. rdmig reads the lists only during the call that takes them.
 *
 * A pass over lists costs what is listed (the list's length, a sort when
 * it is not in order, and the listed chunks' pages), not the guest's
 * size: an empty list's pass is a round trip. Exceptions, each a read of
 * a bit per page of the guest: a pass after one that left pages
 * mismatched (mismatch_pending > 0, they are taken up too), a pass with
 * discards since the last one, and skip sets. rdmig keeps a bitmap per
 * region for the lists' pages (a bit per page, allocated at the first
 * such call and kept until destroy; only the words of listed pages are
 * ever written).
 */
struct rdmig_dirty_list {
	const uint64_t *pages;
	size_t count;
	const uint64_t *skip;
	size_t skip_words;
};

/*
 * rdmig_src_pass(), rdmig_src_pass_budget() and rdmig_src_estimate() over
 * dirty lists instead of bitmaps: `dirty` holds one entry per region, in
 * region index order, `ndirty` the number of regions. Everything else is
 * as there: RDMIG_PASS_FINAL (mismatched pages sent again within the
 * pass), verification, discards, the skip sets and what a page that
 * leaves one must be, slices (a paused pass goes on with
 * rdmig_src_pass_resume(); the lists may be reused as soon as the call
 * returns, paused or not), progress, statistics and the same errors, and
 * -EINVAL for a bad list (see struct rdmig_dirty_list; nothing was sent)
 * or RDMIG_PASS_ALL (take rdmig_src_pass() for it). The estimate counts
 * the listed pages, each once, and samples them as rdmig_src_estimate()
 * samples a bitmap's. Block as their bitmap forms do; the owner only.
 */
int rdmig_src_pass_list(struct rdmig_src *src, const struct rdmig_dirty_list *dirty,
			unsigned ndirty, unsigned flags, struct rdmig_pass_stats *stats);
int rdmig_src_pass_list_budget(struct rdmig_src *src, const struct rdmig_dirty_list *dirty,
			       unsigned ndirty, unsigned flags, const struct rdmig_budget *budget,
			       struct rdmig_pass_stats *stats);
int rdmig_src_estimate_list(struct rdmig_src *src, const struct rdmig_dirty_list *dirty,
			    unsigned ndirty, struct rdmig_estimate *est);

/* --- Destination ------------------------------------------------------- */

/* Destination statistics, filled by rdmig_dst_run(). */
struct rdmig_dst_stats {
	size_t size;	      /* set by the caller: sizeof(struct rdmig_dst_stats) */
	uint64_t passes;      /* passes the source ran */
	uint64_t wire_bytes;  /* bytes the source reported written */
	uint64_t duration_ns; /* of the run: waiting for a source included */
	/*
	 * Connection attempts refused while this run waited for or served
	 * its source: strangers that failed or timed out authentication,
	 * peers without a key, without a common version, beyond the pending
	 * limit, a second source. Each is also logged (warn) with its reason.
	 */
	uint64_t rejected;
	/*
	 * Device state received (rdmig_src_send_state(); rdmig_dst_state()
	 * lists the blobs): blobs, their bytes, the bytes the source wrote
	 * and the page-sized zero pieces it left off the wire (zeroed here).
	 */
	uint64_t state_blobs;
	uint64_t state_bytes;
	uint64_t state_wire_bytes;
	uint64_t state_zero_pages;
	/*
	 * A completed run: from the source's COMPLETE received to the
	 * COMPLETE_ACK posted, the destination's share of complete's time
	 * (remote access revoked, nothing deregistered: constant, whatever the
	 * guest's size). 0 otherwise.
	 */
	uint64_t complete_ns;
};

/* As rdmig_src_create(), for the destination side. */
int rdmig_dst_create(const struct rdmig_opts *opts, struct rdmig_dst **dstp);

/*
 * Declares a region of guest memory to receive into, as
 * rdmig_src_add_region(); `flags` may hold RDMIG_REGION_ZERO_FILLED. The
 * region is exposed to remote writes only while a session runs. Only
 * before rdmig_dst_listen(). Returns the region's index or a negative errno.
 */
int rdmig_dst_add_region(struct rdmig_dst *dst, uint64_t gpa, void *hva, uint64_t len,
			 unsigned flags);

/*
 * Binds host:port and listens. port "0" picks a free port. Does not block.
 * Returns the bound port number (> 0), or -EINVAL (no regions; or the
 * address is not on the device, port or GID index asked for, or is a
 * wildcard while one is: see "Choosing the path"), -EACCES (no key and no
 * RDMIG_AUTH_NONE), -EALREADY, -EADDRINUSE, -EADDRNOTAVAIL, -ENODEV
 * (also: RDMIG_DEVICE names no device here). host NULL listens on
 * RDMIG_LOCAL_ADDR, or on RDMIG_GID_INDEX's address, when given.
 */
int rdmig_dst_listen(struct rdmig_dst *dst, const char *host, const char *port);

/*
 * Accepts one source and serves its migration until it completes (returns 0:
 * every pass's data is placed and no remote write can reach guest memory any
 * more) or
 * fails (returns a negative errno: -ECONNRESET the source disconnected,
 * -ETIMEDOUT it went silent or no source authenticated in time, -EBADMSG /
 * -EPROTO it sent a bad message (or one that failed its MAC or sequence
 * check), -EINVAL its layout or page size does not match ours,
 * -ECONNABORTED it gave up or cancelled, -EACCES there is no key here and
 * the source has one, -EIO a device-state blob landed other than it was
 * sent, -ENOMEM the state_alloc callback refused a buffer, -ECANCELED
 * rdmig_dst_cancel, -ENOTCONN not
 * listening, or an errno from the RDMA stack). Peers that never proved
 * the key do not end it (see Authentication). A failure while setting up a data connection ends the
 * session. It may be called again to accept another source. `stats` may be
 * NULL. Blocks.
 *
 * Remote access ends at once at COMPLETE and at every failure: the QPs that
 * could write guest memory are moved to error before the source is
 * answered (they are the only ones in guest memory's protection domain;
 * the control connection never could write it). Deregistering guest memory
 * takes time in proportion to its size (the kernel unpins every page), so
 * it waits where the VMM does not: after a failure it is done before this
 * returns; after a completed run the memory stays registered, unreachable
 * by any QP, and so pinned (madvise(MADV_DONTNEED) on it frees nothing)
 * until the next rdmig_dst_run() or rdmig_dst_destroy(), which deregister
 * it. Resume the guest first, then destroy the handle.
 */
int rdmig_dst_run(struct rdmig_dst *dst, struct rdmig_dst_stats *stats);

/*
 * After rdmig_dst_run() failed with -EINVAL because the source's layout or
 * page size differs from ours: fills *mm (struct rdmig_layout_mismatch,
 * the same report the source gets) and returns 0; else as
 * rdmig_src_mismatch(). Does not block; the record lasts until the next
 * run.
 */
int rdmig_dst_mismatch(struct rdmig_dst *dst, struct rdmig_layout_mismatch *mm);

/*
 * Stops rdmig_dst_run() from any thread or a signal handler (as
 * rdmig_src_cancel: async-signal-safe for a valid dst). The run returns
 * -ECANCELED within 100 ms plus the time to flush work requests in
 * flight: remote access to guest memory is withdrawn first, the source is
 * told (it sees -ECONNABORTED), every connection is closed and guest
 * memory is deregistered. Cancelling a handle that is not running makes
 * its next rdmig_dst_run() return -ECANCELED at once; so does every later
 * one. Returns 0, or -EINVAL for NULL.
 */
int rdmig_dst_cancel(struct rdmig_dst *dst);

/*
 * Destroys the handle and stops listening; deregisters (unpins) the guest
 * memory a completed run left registered, which takes time in proportion
 * to it. NULL is allowed.
 */
void rdmig_dst_destroy(struct rdmig_dst *dst);

/* --- Device state ------------------------------------------------------ */

/*
 * Device state: opaque blobs the VMM sends after the final pass, on the
 * same authenticated session, before rdmig_src_complete() (with post-copy,
 * to come, before the guest resumes at the destination). Each blob has an
 * id of the VMM's choosing (one per device, say) and a length; the
 * destination learns both and receives the bytes into memory it provides
 * (rdmig_dst_set_state_alloc()) or that rdmig allocates
 * (rdmig_dst_state()).
 *
 * How it travels: the source checks the blobs (limits below, no id twice),
 * finds their page-sized all-zero pieces (page i of a blob is bytes
 * [i * page_size, (i + 1) * page_size); a shorter tail always goes) and
 * takes a keyed XXH3-128 of each whole blob, with the session's derived
 * key, which is never sent. It sends descriptors first (ids, lengths,
 * hashes, the runs of zero pages), sealed on the control QP; the
 * destination checks them, obtains its buffers, zeroes their zero pages
 * and answers with a remote key per buffer, registered for remote write
 * for this step only. The source writes the other pages with RDMA WRITEs
 * on the control QP (at most 4 in flight, each at most
 * RDMIG_CHUNK_PAGES pages), then an end marker behind them on the same
 * QP, so its arrival proves them placed; the destination withdraws remote
 * access at once, hashes every blob as it landed and confirms, or fails
 * the session naming the blob whose hash differs. propolis, for one,
 * sends overlay pages that are all zero as a marker: they cost nothing on
 * the wire.
 */

/* Limits of one rdmig_src_send_state(). */
#define RDMIG_STATE_BLOBS_MAX 64	    /* blobs */
#define RDMIG_STATE_BLOB_MAX  (4ull << 30)  /* bytes of one blob (4 GiB) */
#define RDMIG_STATE_TOTAL_MAX (16ull << 30) /* bytes of all of them (16 GiB) */
/*
 * Runs of zero pages left off the wire, over all blobs: beyond this many,
 * the remaining zero pages are written like any other (a blob of
 * scattered zero pages costs wire bytes, never a failure).
 */
#define RDMIG_STATE_ZERO_RUNS_MAX 65536

/*
 * One blob. The layout is fixed (it is an array element): flags and
 * reserved must be 0. At the source, `data` is read (len bytes, any
 * alignment; NULL only with len 0); at the destination (rdmig_dst_state())
 * it points at the received bytes.
 */
struct rdmig_blob {
	uint64_t id;
	const void *data;
	uint64_t len;
	uint32_t flags;
	uint32_t reserved;
};

/* Statistics of rdmig_src_send_state(). */
struct rdmig_state_stats {
	size_t size;	      /* set by the caller: sizeof(struct rdmig_state_stats) */
	uint64_t blobs;	      /* blobs sent */
	uint64_t bytes;	      /* their bytes */
	uint64_t wire_bytes;  /* bytes put on the wire by RDMA WRITEs */
	uint64_t writes;      /* RDMA WRITE work requests */
	uint64_t zero_pages;  /* page-sized zero pieces left off the wire */
	uint64_t scan_ns;     /* finding zero pages and hashing, at the source */
	uint64_t wire_ns;     /* from the first WRITE to the last completion */
	uint64_t duration_ns; /* wall time of the call */
};

/*
 * Sends the device state: `n` blobs (1 to RDMIG_STATE_BLOBS_MAX, distinct
 * ids, each at most RDMIG_STATE_BLOB_MAX bytes, all together at most
 * RDMIG_STATE_TOTAL_MAX), after at least one pass (normally the final
 * one, the guest paused) and before rdmig_src_complete(); once per
 * session. The blobs must not change until it returns (a change shows as
 * a hash mismatch). Each blob is registered for local read for the call
 * only (what counts against RLIMIT_MEMLOCK grows by the blobs' bytes
 * meanwhile); nothing stays registered when it returns, whatever the
 * outcome. Blocks: for the scan (a read of every blob, about a memory
 * read's time), the registration, two round trips and the wire, each
 * step bounded by RDMIG_TIMEOUT_MS (plus a second per GiB for the
 * destination to register its buffers); a destination serving a pass
 * hears PROGRESS meanwhile. `stats` may be NULL.
 *
 * Returns 0 once the destination confirmed every blob landed as sent
 * (its hash of what landed equals ours). Bad input changes nothing and
 * leaves the session usable: -EINVAL (n of 0 or more than
 * RDMIG_STATE_BLOBS_MAX, an id twice (named), a blob over the limits
 * (named), data NULL with len > 0, flags or reserved not 0, stats->size
 * not set, or no pass has run yet), -EBUSY (a budgeted pass is paused:
 * resume it to its end first), -EALREADY (state was sent already in
 * this session), -ENOTCONN, -EPIPE (the session ended earlier), -ENOMEM or another errno from registering
 * a blob (-ENOMEM/-EPERM may mean RLIMIT_MEMLOCK). Once descriptors are
 * on the wire, a failure fails the session as for rdmig_src_pass()
 * (-ETIMEDOUT, -ECONNRESET, -EPROTO, -EBADMSG, -ECONNABORTED, ...), and in
 * particular -EIO: the destination found a blob whose bytes landed other
 * than the source's (rdmig_last_error() names its index, id and length);
 * or -ECANCELED (rdmig_src_cancel()).
 */
int rdmig_src_send_state(struct rdmig_src *src, const struct rdmig_blob *blobs, unsigned n,
			 struct rdmig_state_stats *stats);

/*
 * Tells rdmig_src_estimate() how many bytes of device state the VMM will
 * send after the final pass (0: none), so that its downtime_ns counts
 * them. They are taken as all non-zero (an upper bound: zero pages do not
 * go). Does not block. Returns 0, or -EINVAL (src NULL).
 */
int rdmig_src_expect_state(struct rdmig_src *src, uint64_t bytes);

/*
 * Where the destination puts a blob: returns a buffer of at least `len`
 * bytes (any alignment) for blob `id`, or NULL to refuse (the session
 * fails with -ENOMEM, naming the blob). Called from rdmig_dst_run() on its
 * caller's thread when the descriptors arrive, once per blob, not for
 * blobs of length 0; it must not call rdmig on this handle. rdmig zeroes
 * the buffer's zero pages, registers it for remote write for the transfer
 * only, and then leaves it alone: the buffer is the VMM's, before, during
 * and after, whether the run succeeds or fails, and must stay mapped until
 * rdmig_dst_run() returns. Its content is the blob's only when the run
 * returns 0.
 */
typedef void *(*rdmig_state_alloc_fn)(void *arg, uint64_t id, uint64_t len);

/*
 * Sets (fn NULL: removes) the callback that gives the destination's state
 * buffers; without one rdmig allocates them itself (anonymous memory,
 * page-aligned), as the handle's, valid until the next rdmig_dst_run() or
 * rdmig_dst_destroy(). Only while rdmig_dst_run() does not run. Returns 0
 * or -EINVAL (dst NULL).
 */
int rdmig_dst_set_state_alloc(struct rdmig_dst *dst, rdmig_state_alloc_fn fn, void *arg);

/*
 * After rdmig_dst_run() returned 0: the device state received, in the
 * order the source sent it. Sets *blobs to an array owned by the handle
 * (each blob's id, length and data: the callback's buffer, or rdmig's)
 * valid until the next rdmig_dst_run() or rdmig_dst_destroy(), and returns
 * the count (0 if the source sent none; 0 after a failed run, whose
 * buffers rdmig freed). Does not block. Returns -EINVAL for NULL arguments.
 */
int rdmig_dst_state(struct rdmig_dst *dst, const struct rdmig_blob **blobs);

#ifdef __cplusplus
}
#endif

#endif /* RDMIG_RDMIG_H */

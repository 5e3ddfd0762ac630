/* SPDX-License-Identifier: MIT */
/*
 * The handshake's logic as pure functions over message bytes (no I/O, no
 * transport): version and capability negotiation, the auth mode check,
 * nonces, key derivation and both proofs (common/proto.h describes the
 * messages, common/seal.h the keys). src.c and dst.c move the bytes; the
 * fuzz targets drive these functions directly.
 *
 * The source calls hs_src_hello, then hs_src_challenge with what came back,
 * then hs_src_auth. The destination calls hs_dst_hello, then hs_dst_auth.
 * Each returns the length of the message to send (or 0), or a negative
 * errno with `err` holding the text for the peer's ERROR and for the log:
 * before the source has proven the key that text never holds more than
 * the negotiation's own inputs (ranges, auth modes) or "authentication
 * failed".
 */
#ifndef RDMIG_CTRL_HANDSHAKE_H
#define RDMIG_CTRL_HANDSHAKE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../common/proto.h"
#include "../common/seal.h"
#include "../dataplane/xport.h"

#define RDMIG__HS_HELLO_MAX 1024 /* a later version's longer HELLO: up to this, kept whole */
#define RDMIG__HS_BINDING   40	 /* source GID, source QPN, destination GID, destination QPN */

enum rdmig__hs_step {
	RDMIG__HS_START = 0,
	RDMIG__HS_SRC_HELLO_SENT,
	RDMIG__HS_SRC_CHALLENGE_OK,
	RDMIG__HS_DST_CHALLENGE_SENT,
	RDMIG__HS_DONE,	  /* keys valid: seal the channel */
	RDMIG__HS_FAILED, /* nothing more to do but close */
};

struct rdmig__hs {
	enum rdmig__hs_step step;
	/* Set by the caller before the first call. */
	const uint8_t *psk; /* NULL with psk_len 0: an unauthenticated session */
	size_t psk_len;
	uint16_t ver_min, ver_max; /* what this side speaks (or, in tests, offers) */
	uint32_t caps;		   /* RDMIG__CAP_* this side offers */
	uint8_t binding[RDMIG__HS_BINDING];

	bool proven; /* destination: the source's proof checked out */

	/* What the handshake settled. */
	uint16_t version;
	uint32_t peer_caps, caps_agreed;
	uint16_t peer_min, peer_max;
	struct rdmig__keys keys;

	/* The transcript. */
	uint8_t nonce_src[RDMIG__NONCE_LEN], nonce_dst[RDMIG__NONCE_LEN];
	uint8_t hello[RDMIG__HS_HELLO_MAX];
	size_t hello_len;
	uint8_t chall[RDMIG__HDR_LEN + 16 + RDMIG__NONCE_LEN + RDMIG__KEY_LEN];
	size_t chall_len;
};

/* The binding of a connection, source first (am_source: ci is the source's view). */
void rdmig__hs_bind(struct rdmig__hs *hs, const struct rdmig__xp_conn_info *ci, bool am_source);
/* Wipes the keys and the transcript. */
void rdmig__hs_wipe(struct rdmig__hs *hs);

/* Source: its HELLO into out. */
int rdmig__hs_src_hello(struct rdmig__hs *hs, uint8_t *out, size_t cap, char *err, size_t errlen);
/*
 * Source: the destination's answer to HELLO. 0 when it is a CHALLENGE
 * whose choice we accept and whose proof checks out; -EACCES (bad proof,
 * auth mismatch), -EPROTO (no common version, a choice we did not offer),
 * -EBADMSG (malformed), or -ECONNREFUSED for an ERROR (its text in err).
 */
int rdmig__hs_src_challenge(struct rdmig__hs *hs, const uint8_t *in, size_t len, char *err,
			    size_t errlen);
/*
 * Source: AUTH with the proposal in m (type, page size, QPs, layout, flags
 * set; the proof is computed here) into out. The handshake is then done.
 */
int rdmig__hs_src_auth(struct rdmig__hs *hs, struct rdmig__msg *m, uint8_t *out, size_t cap,
		       char *err, size_t errlen);

/*
 * Destination: the source's HELLO. Returns the CHALLENGE's length in out,
 * or a negative errno: -EPROTO (no common version), -EACCES (auth modes
 * differ), -EBADMSG. `mismatch_fatal` is set when the failure must end the
 * destination's run as well (it has no key and the source has one: both
 * sides fail naming it), not just this attempt.
 */
int rdmig__hs_dst_hello(struct rdmig__hs *hs, const uint8_t *in, size_t len, uint8_t *out,
			size_t cap, bool *mismatch_fatal, char *err, size_t errlen);
/*
 * Destination: the source's AUTH. 0 with the proposal in *m when its proof
 * checks out (the handshake is done), else -EACCES "authentication
 * failed", -EBADMSG (a proven AUTH that does not decode) or -EPROTO (called
 * out of turn, or a proven message that is not an AUTH).
 */
int rdmig__hs_dst_auth(struct rdmig__hs *hs, const uint8_t *in, size_t len, struct rdmig__msg *m,
		       char *err, size_t errlen);

/* The tag a data connection's CONNECT carries (common/proto.h). */
int rdmig__hs_data_tag(const struct rdmig__keys *k, uint32_t index, uint64_t token, uint32_t qpn,
		       uint8_t *tag);

/*
 * A layout refusal (rdmig_src_mismatch()) crosses the wire inside the
 * destination's ERROR text, as a tag at its end:
 *   " [layout F R D S V]"  F field, R region, D dst_region (decimal),
 *                          S source value, V destination value (0x hex)
 * An ERROR stays what every version reads (code and text); a source
 * that does not know the tag shows it as text. Formats the tag into buf
 * (a string, "" if it does not fit).
 */
void rdmig__layout_tag(const struct rdmig_layout_mismatch *mm, char *buf, size_t len);
/*
 * Finds the tag at the end of `text`: true with *mm filled (size left as
 * it is) and the tag cut off text, false if there is none.
 */
bool rdmig__layout_untag(char *text, struct rdmig_layout_mismatch *mm);
/* Copies *from into the caller's *to: -EINVAL for NULL or a size not set,
 * -ENODATA when from->field is RDMIG_LAYOUT_NONE (then to->field is too). */
int rdmig__layout_copy(const struct rdmig_layout_mismatch *from, struct rdmig_layout_mismatch *to);

#endif /* RDMIG_CTRL_HANDSHAKE_H */

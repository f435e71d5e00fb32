/* libapns internal: the HTTP/2 client session without I/O, over nghttp2. Layer 2: never includes uv.h.
 *
 * Plaintext in with apns__h2_feed(), plaintext out with apns__h2_take_output(); the TLS layer sits below, the libuv
 * layer (conn.c) drives both. Streams point at apns__req blocks owned by the caller, which must stay valid until
 * that stream's end callback (and not longer: the session never reads a request after its callback, so the owner
 * may free or resubmit it from inside the callback). Every submitted stream ends exactly once through on_response
 * or on_stream_error, also when the session is freed (apns__h2_fail_all).
 *
 * Re-entrancy: from inside any callback the owner may call apns__h2_submit, _cancel, _fail_all, _ping, _shutdown
 * and the getters; apns__h2_free is deferred until the outermost apns__h2 call returns (callbacks for other streams
 * may still run before then, the rest end with APNS_ECLOSED). apns__h2_feed and apns__h2_take_output return
 * APNS_EBUSY when called from inside a callback that nghttp2 runs (they cannot nest).
 *
 * Cost per request: no scan over streams anywhere (nghttp2's stream user data and an id table are O(1)); our
 * stream records are recycled, so steady state allocates nothing of ours per request beyond nghttp2's own. */
#ifndef APNS_LIB_H2_H
#define APNS_LIB_H2_H

#include "blocks.h"
#include "request.h"

#include <apns/common.h>
#include <stdint.h>

typedef struct apns__h2 apns__h2;

/* Response bodies larger than this end the stream with APNS_ERESPONSETOOLARGE. Push answers are tiny; the list of
 * an app's broadcast channels (up to 10 000 base64 ids) is about 300 KB. */
#define APNS__H2_MAX_BODY (1024 * 1024)

typedef struct apns__h2_callbacks {
  /* A response arrived (any status), delivered as soon as its END_STREAM is in (if our upload is still going, it
   * is reset with CANCEL). res is valid during the call only; res->attempts is 1. reason/reason_text/timestamp_ms
   * come from a JSON body of a non-2xx answer; 2xx bodies are left raw. Trailers and 1xx headers are not reported. */
  void (*on_response)(void *ctx, apns__req *req, const apns_response *res);
  /* The stream ended without a response. err and delivery:
   *   APNS_ECLOSED/NOT_PROCESSED  RST_STREAM(REFUSED_STREAM), a stream above GOAWAY's last-stream-id, or HEADERS
   *                               nghttp2 could not send;
   *   APNS_EHTTP2/UNKNOWN         reset with PROTOCOL_ERROR, FLOW_CONTROL_ERROR, STREAM_CLOSED, FRAME_SIZE_ERROR or
   *                               COMPRESSION_ERROR (a malformed exchange, by either side);
   *   APNS_ECLOSED/UNKNOWN        any other reset (CANCEL, INTERNAL_ERROR, ENHANCE_YOUR_CALM, NO_ERROR, ...);
   *   APNS_ERESPONSETOOLARGE/UNKNOWN  body over APNS__H2_MAX_BODY or headers over 32 KiB (we reset it, CANCEL);
   *   APNS_ENOMEM/UNKNOWN         the response could not be stored (we reset it);
   *   or the err and delivery given to apns__h2_cancel / apns__h2_fail_all. */
  void (*on_stream_error)(void *ctx, apns__req *req, int err, apns_delivery delivery);
  /* The server sent GOAWAY. reason is the "reason" of its JSON debug data, or NULL. Streams above last_stream_id
   * are ended (NOT_PROCESSED) right after this callback. */
  void (*on_goaway)(void *ctx, uint32_t error_code, int32_t last_stream_id, const char *reason);
  /* SETTINGS_MAX_CONCURRENT_STREAMS changed (the server's first SETTINGS included). */
  void (*on_max_streams)(void *ctx, uint32_t max_streams);
  /* A PING we sent was acknowledged. */
  void (*on_ping_ack)(void *ctx);
} apns__h2_callbacks;

/* A client session. authority is the :authority for every request ("api.push.apple.com"). The local SETTINGS
 * (ENABLE_PUSH 0, a large window) are queued at once. */
int apns__h2_new(apns__h2 **out, const char *authority, const apns__h2_callbacks *cb, void *ctx);
/* Ends every open stream with APNS_ECLOSED/UNKNOWN first if any remain (see apns__h2_fail_all), then frees. */
void apns__h2_free(apns__h2 *h2);

/* Plaintext from the server. Callbacks run from inside this call. Returns 0, APNS_EHTTP2 when the bytes break the
 * protocol (the session is then dead: a GOAWAY is queued for output, no stream will complete; end them with
 * apns__h2_fail_all), APNS_ENOMEM (nghttp2 failed: dead, nothing more is sent) or APNS_EBUSY (see above). A dead
 * session returns its error again. After a GOAWAY from the server, a protocol error shows only once nghttp2's own
 * GOAWAY(error) has been taken as output. */
int apns__h2_feed(apns__h2 *h2, const uint8_t *data, size_t len);
/* Serializes everything pending (SETTINGS, HEADERS, DATA, RST_STREAM, PING, ...) into one buffer that the caller
 * now owns (apns__free it); NULL and 0 when nothing is pending. Returns 0, APNS_ENOMEM or APNS_EBUSY. When the
 * buffer cannot grow, what fits is returned (0) and the rest comes with the next call: no byte is lost. */
int apns__h2_take_output(apns__h2 *h2, uint8_t **buf, size_t *len);

/* Opens a stream for req. extra_headers (e.g. authorization for token auth) are sent after req's own; they are
 * copied (NO_COPY flags are ignored) and not validated; authorization is never indexed. Returns the stream id (> 0),
 * APNS_EBLOCKED when in_flight >= the server's limit, APNS_ECLOSED after GOAWAY, apns__h2_shutdown,
 * apns__h2_fail_all, when the session is dead or stream ids are spent, APNS_EINVAL or APNS_ENOMEM. No callback runs
 * inside. */
int32_t apns__h2_submit(apns__h2 *h2, apns__req *req, const nghttp2_nv *extra_headers, size_t num_extra);
/* Resets the stream (RST_STREAM CANCEL; HEADERS not yet written are dropped unsent) and ends it at once through
 * on_stream_error with err and delivery; its slot is free at once. Returns 0, or APNS_EINVAL when stream_id is not
 * an open stream of ours (already ended, say). */
int apns__h2_cancel(apns__h2 *h2, int32_t stream_id, int err, apns_delivery delivery);
/* Where the owner's output stands: the bytes it has queued for the socket before what the next
 * apns__h2_take_output serializes. Each stream remembers where its HEADERS begin: the mark plus their offset in
 * that output (a lower bound of their place in the owner's stream when TLS or anything else only adds bytes).
 * Default 0. */
void apns__h2_set_out_mark(apns__h2 *h2, uint64_t mark);
/* Ends every open stream the server cannot have through on_stream_error with err and delivery, newest first: those
 * whose HEADERS nghttp2 has not yet serialized (they will never be sent), and those whose HEADERS begin at or
 * beyond `written`, the owner's bytes that reached the socket (the owner drops the rest unsent); UINT64_MAX counts
 * serialization only. The other streams stay open. */
void apns__h2_cancel_unsent(apns__h2 *h2, int err, apns_delivery delivery, uint64_t written);
/* Ends every open stream through on_stream_error with err and delivery (connection lost, close), resetting each.
 * Afterwards apns__h2_submit returns APNS_ECLOSED. */
void apns__h2_fail_all(apns__h2 *h2, int err, apns_delivery delivery);
/* Queues a PING. */
int apns__h2_ping(apns__h2 *h2);
/* Queues GOAWAY(NO_ERROR); no more submits; open streams may still complete. */
int apns__h2_shutdown(apns__h2 *h2);

/* nghttp2's allocator hooks routed to apns__malloc & co. with no cache, for apns-mock's sessions (the client's each
 * have a block cache, blocks.h). */
nghttp2_mem *apns__nghttp2_mem(void);

uint32_t apns__h2_max_streams(const apns__h2 *h2); /* the server's current limit (1 before its SETTINGS, 2^32-1
                                                      when its SETTINGS name none) */
uint32_t apns__h2_in_flight(const apns__h2 *h2);   /* open streams */
int apns__h2_want_io(const apns__h2 *h2);          /* 0 when the session is finished with (nghttp2 want_read/write) */
int apns__h2_goaway_received(const apns__h2 *h2);

/* Client stream ids end at 2^31 - 1, after which nghttp2 refuses new streams. A session stops taking streams this
 * many ids before that (apns__h2_submit returns APNS_ECLOSED), so its owner can drain it and move on in time. */
#define APNS__H2_ID_MARGIN 2048
/* Non-zero once the next stream id is within APNS__H2_ID_MARGIN of the end. */
int apns__h2_ids_low(const apns__h2 *h2);
/* Test hook: makes the next stream id `id` (odd, not below the current one), so a test reaches the end of the id
 * space without 2^30 requests. Returns 0 or APNS_EINVAL. */
int apns__h2_test_set_next_stream_id(apns__h2 *h2, int32_t id);
/* The counts of the session's block cache (blocks.h), for tests and the bench. */
void apns__h2_blocks_stats(const apns__h2 *h2, apns__blocks_stats *out);

#endif

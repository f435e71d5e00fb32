/* libapns internal: what the pool needs from a connection beyond the public apns_conn API. */
#ifndef APNS_LIB_CONN_H
#define APNS_LIB_CONN_H

#include "request.h"

#include <apns/conn.h>

/* Sends a request built by the caller, who keeps owning it. The caller sets req->link.deadline (absolute, uv_now
 * milliseconds) and req->link.done, which is called exactly once when this attempt ends (never inside this call).
 * Returns 0, APNS_EBLOCKED, APNS_ECLOSED or APNS_ENOMEM; on error the request is untouched. */
int apns__conn_submit(apns_conn *conn, apns__req *req);

/* Called when the connection may take more streams than before (its limit rose) or will take none any more
 * (GOAWAY received, or stream ids nearly spent: the state is APNS_CONN_DRAINING then): the pool then dispatches
 * its queue or opens a replacement. Never called inside apns__conn_submit or apns_conn_post. */
typedef void (*apns__conn_capacity_cb)(apns_conn *conn);
void apns__conn_set_capacity_cb(apns_conn *conn, apns__conn_capacity_cb cb);

/* Whether the connection is draining gracefully (the server's GOAWAY said NO_ERROR, or its stream ids are spent),
 * and how many of its requests were answered 2xx: the pool tells a server rotating its connections from one
 * turning them away. */
int apns__conn_goaway_graceful(const apns_conn *conn);
uint64_t apns__conn_ok_responses(const apns_conn *conn);

/* The requests of this connection the server accepted (those at or below the last-stream-id of its GOAWAY) when
 * its latest GOAWAY said NO_ERROR; -1 when it sent none, or one with an error. The pool learns from it how many
 * requests a server takes on one connection. */
int64_t apns__conn_goaway_accepted(const apns_conn *conn);

/* The owner takes the connection out of service, as a graceful GOAWAY would: it takes no new request (state
 * APNS_CONN_DRAINING, why is its last error), its open ones end normally, and the capacity callback runs from this
 * turn's flush, never inside this call. Once drained it waits for the ack of a last PING (at most the ping timeout)
 * unless the server's GOAWAY came, so that a GOAWAY sent after the last answer is still seen; then on_lost runs as
 * for any drained connection. A no-op unless the connection is ready. */
void apns__conn_retire(apns_conn *conn, const char *why);

/* Opens with a shared TLS config (a pool's connections share one) instead of building one from opts->tls. */
struct apns__tls_config;
int apns__conn_open_shared(uv_loop_t *loop, apns_conn **out, const apns_conn_options *opts,
                           struct apns__tls_config *tls_cfg);

/* Builds a client TLS config from the public options (files are read here). */
int apns__tls_config_from_options(const apns_tls_options *o, struct apns__tls_config **out, char *errbuf,
                                  size_t errlen);

/* Test hook: every connection that becomes ready from now on starts its stream ids at `id` (odd; 0: normal), to
 * reach the end of the id space quickly. Process-wide; for tests only. */
void apns__conn_test_first_stream_id(int32_t id);
/* Test hook: every connection that resolves its host from now on tries these addresses (ports included, at most
 * 8) instead of what DNS gave, in this order; n = 0 turns it off. Process-wide; for tests only. */
struct sockaddr_storage;
void apns__conn_test_addresses(const struct sockaddr_storage *addrs, size_t n);
/* Tests: the steps the heap of c's early deadlines (those earlier than a request posted before them) has taken so far
 * (links followed and swaps), to check that deadlines in any order cost O(log n) each, and in order none. */
uint64_t apns__conn_test_deadline_steps(const apns_conn *c);
/* Bytes c's HTTP/2 session keeps in its cache of freed blocks (blocks.h): held, not in use, and bounded by the
 * session's recent working set; for tests that watch memory in use. 0 without a session. */
size_t apns__conn_cached_bytes(const apns_conn *c);

#endif

/* apns-mock: one server connection without I/O (no uv.h): TLS (optional) + HTTP/2 (nghttp2 server session) + the
 * APNs behaviour. Bytes from the client go in with apns__mock_conn_feed(); everything to send comes out of
 * apns__mock_conn_flush() as one block, so the caller writes once per loop turn. Time is the caller's: a
 * millisecond clock passed in, and apns__mock_conn_next_due() says when held responses fall due, so one timer per
 * connection suffices. Tests drive it with an nghttp2 client in memory. */
#ifndef APNS_MOCK_SERVER_H
#define APNS_MOCK_SERVER_H

#include "mock.h"

#include <stddef.h>
#include <stdint.h>

struct apns__tls_config;
struct apns__jwt_verifier;
typedef struct apns__mock_conn apns__mock_conn;

#define APNS__MOCK_NEVER UINT64_MAX

/* opts, jwt and stats must outlive the connection (stats is shared by a server's connections). tls NULL:
 * plaintext HTTP/2 (h2c with prior knowledge). jwt: the token keys (opts->token_keys is not looked at here); NULL
 * for no token auth. seed feeds the generator of apns-ids. The first SETTINGS go out once TLS is up (token auth
 * depends on the client certificate). Returns 0, APNS_ENOMEM, APNS_ETLS. */
int apns__mock_conn_new(apns__mock_conn **out, const apns_mock_options *opts, struct apns__tls_config *tls,
                        const struct apns__jwt_verifier *jwt, apns_mock_stats *stats, uint64_t seed);
void apns__mock_conn_free(apns__mock_conn *conn); /* NULL is fine */

/* Bytes from the client; now_ms is the caller's clock. Returns 0, or a fatal error (APNS_ETLS, APNS_ECERTVERIFY,
 * APNS_EALPN, APNS_EHTTP2, APNS_ENOMEM): flush once more (a TLS alert or GOAWAY may wait) and close. */
int apns__mock_conn_feed(apns__mock_conn *conn, const uint8_t *data, size_t len, uint64_t now_ms);

/* Sends the held responses due at now_ms, then hands over everything waiting to go out: *buf is apns__malloc'd
 * (the caller frees it), NULL and 0 when there is nothing. Returns 0 or a fatal error. */
int apns__mock_conn_flush(apns__mock_conn *conn, uint64_t now_ms, uint8_t **buf, size_t *len);

/* When the first held response (or the next trickled byte) falls due, on the caller's clock; APNS__MOCK_NEVER when
 * none (or paused). */
uint64_t apns__mock_conn_next_due(const apns__mock_conn *conn);

void apns__mock_conn_set_paused(apns__mock_conn *conn, int paused);

/* Serve the broadcast and channel management paths from this store (the server's, shared by its connections;
 * it must outlive the connection). Without one they are 404 BadPath. serve: APNS__MOCK_SERVE_ALL, or one of the
 * halves of a split mock (the other half's paths are then 404 BadPath). */
enum { APNS__MOCK_SERVE_ALL = 0, APNS__MOCK_SERVE_PUSH = 1, APNS__MOCK_SERVE_MANAGE = 2 };
struct apns__mock_channels;
void apns__mock_conn_set_channels(apns__mock_conn *conn, struct apns__mock_channels *channels, int serve);

/* Non-zero when the connection is over (after the last flush's bytes are written): GOAWAY done, drop_after
 * reached and answered, the peer's close_notify, or a fatal error. */
int apns__mock_conn_want_close(const apns__mock_conn *conn);
/* Non-zero when the close is a drop (drop_after), not an orderly end. */
int apns__mock_conn_dropped(const apns__mock_conn *conn);

/* The last fatal error's message, "" when none. */
const char *apns__mock_conn_error(const apns__mock_conn *conn);

/* A lowercase UUID v4 from a splitmix64 state, into out[37] (NUL-terminated). */
void apns__mock_uuid(uint64_t *state, char out[37]);
/* Non-zero when s (len bytes) is a UUID in 8-4-4-4-12 hex form (either case, as APNs accepts). */
int apns__mock_uuid_valid(const char *s, size_t len);

#endif

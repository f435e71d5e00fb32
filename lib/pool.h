/* libapns internal: what the client needs from a pool beyond the public apns_pool API. */
#ifndef APNS_LIB_POOL_H
#define APNS_LIB_POOL_H

#include <apns/pool.h>

/* Provider tokens for token auth, one per connection (Apple binds a connection to the first token's key and team
 * and throttles a connection whose token changes within 20 minutes).
 *   token: makes the authorization value ("bearer <JWT>") for a token issued at now_s (UNIX seconds); *value is
 *          apns__malloc'd and owned by the pool afterwards (zeroed when freed). Returns 0 or a negative code.
 *   clock: the wall clock in UNIX seconds (injectable for tests); NULL means time(). It only gives the iat: ages
 *          are measured on the monotonic clock (uv_now), so a wall clock stepped back holds no refresh off.
 * A connection takes its first token before its first request and a fresh one once its token is refresh_s old. A
 * 403 ExpiredProviderToken to a try sent under the connection's current token makes one new token if the current
 * one is at least 20 minutes old (the request is retried once under it; younger, the request ends with its 403:
 * a new token would draw 429 TooManyProviderTokenUpdates); a 403 to a try sent under an older token is retried
 * once under the current one and makes none. So one expiry makes one token per connection, however many requests
 * were in flight. Call before the loop runs, right after apns_pool_open. */
typedef int (*apns__pool_token_cb)(void *ctx, int64_t now_s, char **value);
typedef int64_t (*apns__pool_clock_cb)(void *ctx);
void apns__pool_set_token_source(apns_pool *pool, apns__pool_token_cb token, apns__pool_clock_cb clock, void *ctx,
                                 int64_t refresh_s);

/* The object a pool works for (the client), reached from the pool's callbacks: opts.data stays the user's, so
 * that apns_pool_data() inside the user's on_event gives what the user set. Set right after apns_pool_open, before
 * the loop runs; NULL until then. */
void apns__pool_set_owner(apns_pool *pool, void *owner);
void *apns__pool_owner(const apns_pool *pool);

/* Tests: the monotonic clock token ages are measured on, in milliseconds; NULL means uv_now(loop). */
typedef uint64_t (*apns__pool_mono_cb)(void *ctx);
void apns__pool_set_mono_clock(apns_pool *pool, apns__pool_mono_cb now_ms, void *ctx);

/* Tests: the steps the queue's deadline heap has taken so far (links followed and swaps), to check that an
 * operation costs O(log n) rather than O(n). */
uint64_t apns__pool_queue_steps(const apns_pool *pool);

/* Tests: the bytes the pool's connections keep in their sessions' caches of freed blocks (apns__conn_cached_bytes),
 * which a check of memory in use leaves out: they have their own bound. */
size_t apns__pool_cached_bytes(const apns_pool *pool);

#define APNS__TOKEN_REFRESH_S (50 * 60)
#define APNS__TOKEN_MIN_AGE_S (20 * 60)

#endif

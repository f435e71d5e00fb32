/* libapns internal: what the client needs from a pool beyond the public apns_pool API. */
#ifndef APNS_LIB_POOL_H
#define APNS_LIB_POOL_H

#include <apns/pool.h>

/* Provider tokens for token auth, one per connection (Apple binds a connection to the first token's key and team
 * and throttles a connection whose token changes within 20 minutes).
 *   token: makes the authorization value ("bearer <JWT>") for a token issued at now_s (UNIX seconds); *value is
 *          apns__malloc'd and owned by the pool afterwards (zeroed when freed). Returns 0 or a negative code.
 *   clock: the wall clock in UNIX seconds (injectable for tests); NULL means time().
 * A connection takes its first token before its first request, a fresh one once its token is refresh_s old, and
 * never a new one younger than 20 minutes unless the server answered 403 ExpiredProviderToken (the request is then
 * retried once with a new token). Call before the loop runs, right after apns_pool_open. */
typedef int (*apns__pool_token_cb)(void *ctx, int64_t now_s, char **value);
typedef int64_t (*apns__pool_clock_cb)(void *ctx);
void apns__pool_set_token_source(apns_pool *pool, apns__pool_token_cb token, apns__pool_clock_cb clock, void *ctx,
                                 int64_t refresh_s);

#define APNS__TOKEN_REFRESH_S (50 * 60)
#define APNS__TOKEN_MIN_AGE_S (20 * 60)

#endif

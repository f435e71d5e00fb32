/* apns-push: stand-ins for the client while lib/client.c is not yet part of the library (it waits for the HTTP/2
 * layer). tools/apns-push/meson.build adds this file only then; --dry-run and every check work without it, and a
 * real send says plainly that this build cannot connect. Remove once the client is always built. */
#include "push.h"

#include <string.h>

int apns_client_open(uv_loop_t *loop, apns_client **out, const apns_client_options *opts, char *errbuf,
                     size_t errlen) {
  (void)loop;
  (void)opts;
  *out = NULL;
  if (errbuf && errlen) snprintf(errbuf, errlen, "this build of libapns has no network client yet: only --dry-run works");
  return APNS_EINVAL;
}

int apns_client_send(apns_client *client, const char *device_token, apns_notification *notification,
                     const apns_send_options *opts, apns_response_cb cb, void *data) {
  (void)client, (void)device_token, (void)notification, (void)opts, (void)cb, (void)data;
  return APNS_EINVAL;
}

int apns_client_close(apns_client *client, uint64_t drain_timeout_ms, apns_client_cb cb) {
  (void)client, (void)drain_timeout_ms, (void)cb;
  return APNS_EINVAL;
}

void apns_client_get_stats(const apns_client *client, apns_pool_stats *out) {
  (void)client;
  memset(out, 0, sizeof *out);
}

void *apns_client_data(const apns_client *client) {
  (void)client;
  return NULL;
}

void *apns_pool_data(const apns_pool *pool) {
  (void)pool;
  return NULL;
}

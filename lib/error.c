/* Error codes and APNs reasons: names, messages, lookups. Layer 1: no I/O, and no libuv: the codes of libuv's that
 * pass through our int get their words from libuv in uverror.c, which wraps this table into apns_strerror and
 * apns_err_name. */
#include "error.h"

#include "errbuf.h"

#include <apns/common.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

const char *apns_version_string(void) {
  return APNS_VERSION_STRING;
}

int apns__error_is_libuv(int err) {
  return err < 0 && err > -8192;
}

const char *apns__error_message(int err) {
  if (err == 0) return "success";
  switch (err) {
#define APNS__ERR_MSG(name, msg)                                                                                     \
  case APNS_##name:                                                                                                  \
    return msg;
    APNS_ERRNO_MAP(APNS__ERR_MSG)
#undef APNS__ERR_MSG
  default:
    return NULL;
  }
}

const char *apns__error_name(int err) {
  if (err == 0) return "OK";
  switch (err) {
#define APNS__ERR_NAME(name, msg)                                                                                    \
  case APNS_##name:                                                                                                  \
    return "APNS_" #name;
    APNS_ERRNO_MAP(APNS__ERR_NAME)
#undef APNS__ERR_NAME
  default:
    return NULL;
  }
}

static const struct {
  const char *text;
  unsigned char len;
  short status;
} apns__reasons[APNS__REASON_COUNT] = {[APNS_REASON_NONE] = {"", 0, 0},
                                       [APNS_REASON_UNKNOWN] = {"Unknown", 7, 0},
#define APNS__REASON_ROW(name, st) [APNS_REASON_##name] = {#name, sizeof(#name) - 1, st},
                                       APNS_REASON_MAP(APNS__REASON_ROW)
#undef APNS__REASON_ROW
};

const char *apns_reason_string(apns_reason reason) {
  if ((int)reason < 0 || reason >= APNS__REASON_COUNT) return NULL;
  return apns__reasons[reason].text;
}

apns_reason apns_reason_from_string(const char *text, size_t len) {
  if (text == NULL || len == 0) return APNS_REASON_NONE;
  /* About forty entries, looked up once per rejected notification: a length check first makes the scan cheap. */
  for (int r = APNS_REASON_UNKNOWN + 1; r < APNS__REASON_COUNT; r++) {
    if (apns__reasons[r].len == len && memcmp(apns__reasons[r].text, text, len) == 0) return (apns_reason)r;
  }
  return APNS_REASON_UNKNOWN;
}

int apns_reason_status(apns_reason reason) {
  if ((int)reason < 0 || reason >= APNS__REASON_COUNT) return 0;
  return apns__reasons[reason].status;
}

int apns_reason_is_token_dead(apns_reason reason) {
  switch (reason) {
  case APNS_REASON_Unregistered:
  case APNS_REASON_ExpiredToken:
  case APNS_REASON_BadDeviceToken:
  case APNS_REASON_DeviceTokenNotForTopic:
    return 1;
  default:
    return 0;
  }
}

int apns_reason_is_retryable(apns_reason reason) {
  switch (reason) {
  case APNS_REASON_InternalServerError:
  case APNS_REASON_ServiceUnavailable:
  case APNS_REASON_Shutdown:
  case APNS_REASON_TooManyRequests:
  case APNS_REASON_IdleTimeout:
  case APNS_REASON_ExpiredProviderToken:
  case APNS_REASON_TooManyProviderTokenUpdates:
    return 1;
  default:
    return 0;
  }
}

void apns__errbuf(char *buf, size_t len, const char *fmt, ...) {
  if (buf == NULL || len == 0) return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, len, fmt, ap);
  va_end(ap);
}

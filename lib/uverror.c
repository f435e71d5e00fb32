/* apns_strerror and apns_err_name. The libuv layer: our codes from error.c's table, and libuv's codes, which pass
 * through our int unchanged, from libuv's own tables (the one reason this file includes uv.h; it does no I/O). */
#include "error.h"

#include <apns/common.h>
#include <uv.h>

const char *apns_strerror(int err) {
  const char *msg = apns__error_message(err);
  if (msg != NULL) return msg;
  if (apns__error_is_libuv(err)) return uv_strerror(err);
  return "unknown error";
}

const char *apns_err_name(int err) {
  const char *name = apns__error_name(err);
  if (name != NULL) return name;
  if (apns__error_is_libuv(err)) return uv_err_name(err);
  return "UNKNOWN";
}

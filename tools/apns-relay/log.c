/* apns-relay: logs as JSON lines on stderr, one write each, so that lines of several relays sharing a collector
 * never interleave inside a line, and text from a server cannot forge one (bulk_json_string escapes it). */
#include "relay.h"

#include "bulk.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

void relay_log(const char *level, const char *extra, const char *fmt, ...) {
  char msg[1024], line[4096];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  struct timeval tv;
  gettimeofday(&tv, NULL);
  size_t n = (size_t)snprintf(line, sizeof line, "{\"ts\":%lld.%03d,\"level\":\"%s\",\"msg\":", (long long)tv.tv_sec,
                              (int)(tv.tv_usec / 1000), level);
  if (n < sizeof line) n += bulk_json_string(line + n, sizeof line - n, msg, strlen(msg));
  if (n < sizeof line) n += (size_t)snprintf(line + n, sizeof line - n, "%s}\n", extra ? extra : "");
  if (n >= sizeof line) { /* too long: cut, still one line */
    n = sizeof line - 1;
    line[n - 1] = '\n';
  }
  ssize_t w = write(2, line, n);
  (void)w;
}

/* A redis-server of the test's own: started from Debian's binary with a config written into the test's temporary
 * directory, listening only on a unix socket there (no port to race for), with or without AOF; ready once it says
 * so on stdout (no polling). Commands through hiredis's synchronous client. */
#ifndef APNS_TEST_REDIS_FIXTURE_H
#define APNS_TEST_REDIS_FIXTURE_H

#include <hiredis/hiredis.h>
#include <sys/types.h>

typedef struct rfx {
  char dir[400];
  char sock[460];
  char url[480]; /* unix://<sock>, for apns-relay --redis */
  int aof;
  pid_t pid;
  redisContext *c; /* the test's own connection (made again after a restart) */
} rfx;

/* Starts redis-server (asserts it came up). aof: appendonly yes, appendfsync always. */
void rfx_start(rfx *r, int aof);
/* SIGKILL (hard 1) or SIGTERM, and reap it. The data directory stays. */
void rfx_stop(rfx *r, int hard);
/* Starts it again on the same socket and directory (with AOF, with the data it had). */
void rfx_restart(rfx *r);
/* One command (asserts a reply); free with freeReplyObject. */
redisReply *rfx_cmd(rfx *r, const char *fmt, ...);
/* The integer of a command that answers one (asserts the type). */
long long rfx_int(rfx *r, const char *fmt, ...);

#endif

/* A redis-server of the test's own: started from Debian's binary with a config written into the test's temporary
 * directory, listening on a unix socket there (no port to race for), with or without AOF, and on request on a
 * 127.0.0.1 port the kernel chose too; ready once it says so on stdout (no polling). Commands through hiredis's
 * synchronous client. A cluster of three such servers (rcl_start): slots assigned by CLUSTER ADDSLOTSRANGE and
 * the nodes joined by CLUSTER MEET, which is faster than redis-cli --cluster create and the same every run. */
#ifndef APNS_TEST_REDIS_FIXTURE_H
#define APNS_TEST_REDIS_FIXTURE_H

#include <hiredis/hiredis.h>
#include <sys/types.h>

typedef struct rfx {
  char dir[400];
  char sock[460];
  char url[480]; /* unix://<sock>, for apns-relay --redis */
  int aof;
  int port, cluster_port; /* 0: unix socket only */
  int cluster;
  char id[64]; /* CLUSTER MYID, in a cluster */
  pid_t pid;
  redisContext *c; /* the test's own connection (made again after a restart) */
} rfx;

/* Starts redis-server (asserts it came up). aof: appendonly yes, appendfsync always. */
void rfx_start(rfx *r, int aof);
/* The same, also listening on 127.0.0.1:r->port (and ::1 when there is one), a port the kernel chose. */
void rfx_start_tcp(rfx *r, int aof);
/* SIGKILL (hard 1) or SIGTERM, and reap it. The data directory stays. */
void rfx_stop(rfx *r, int hard);
/* Starts it again on the same socket and directory (with AOF, with the data it had). */
void rfx_restart(rfx *r);
/* One command (asserts a reply); free with freeReplyObject. */
redisReply *rfx_cmd(rfx *r, const char *fmt, ...);
/* The integer of a command that answers one (asserts the type). */
long long rfx_int(rfx *r, const char *fmt, ...);

/* A free 127.0.0.1 port, as the kernel chooses one for a bind to port 0 (closed again: a tiny window in which
 * another process could take it). n ports at once, all different. */
void rfx_free_ports(int *ports, int n);

#define RCL_NODES 3

/* Three nodes, --cluster-enabled yes, no replicas: node i serves slots [i * 16384 / 3, (i + 1) * 16384 / 3).
 * Returns once every node says cluster_state:ok and knows the other two. */
typedef struct rcl {
  rfx node[RCL_NODES];
  unsigned char owner[16384]; /* the node of each slot, as this fixture assigned and moved them */
} rcl;

void rcl_start(rcl *c);
void rcl_stop(rcl *c);
/* The node that serves a slot now. */
int rcl_owner(const rcl *c, unsigned slot);
/* The slot of a key, from CLUSTER KEYSLOT. */
unsigned rcl_slot(rcl *c, const char *key);
/* Moves a slot from its owner to node dst, keys and all, as redis-cli --cluster reshard does: IMPORTING,
 * MIGRATING, MIGRATE of its keys, then SETSLOT NODE on every node. */
void rcl_move_slot(rcl *c, unsigned slot, int dst);
/* The same in two halves: the keys are moved (the old owner answers -ASK for them from then on), then the slot is
 * given to the new owner (-MOVED). */
void rcl_move_slot_begin(rcl *c, unsigned slot, int dst);
void rcl_move_slot_end(rcl *c, unsigned slot, int dst);

#endif

/* apns-relay: one sender of a fleet that shares Redis streams through a consumer group.
 *
 * One libuv loop runs the APNs client, two Redis connections per stream (a reader that blocks in XREADGROUP, and
 * a writer for results, acknowledgements and claims, so that results never wait behind a blocked read; in a
 * cluster both go to the node that owns the stream's slot) and the metrics endpoint. An entry is held from its
 * read until its result is recorded: the XACK and the result (and, for a dead token or a dead letter, an entry in
 * those streams) happen in one Lua script, which records the result only when the XACK found the entry still
 * pending. So an entry acknowledged never gets a second result, a script resent after a lost reply is harmless,
 * and of two relays that both sent an entry (one took it over from the other) only the first to finish records
 * it. Nothing is acknowledged without its result.
 *
 * Back-pressure: reads ask for at most --max-held minus what is held; the client's queue is bounded, and entries
 * it cannot take yet wait in a FIFO until its low-water signal. A backlog of any size costs at most --max-held
 * entries of memory. */
#include "relay.h"

#include "bulk.h"

#include <mbedtls/sha256.h>
#include <mbedtls/version.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define ID_MAX 48           /* "<ms>-<seq>": two 64-bit numbers */
#define ACK_BATCH 128       /* results per script call */
#define ACK_IN_FLIGHT 4     /* script calls in flight at once */
#define READS_IN_FLIGHT 2   /* XREADGROUPs pipelined on a reader: Redis answers the next while the relay sends */
#define CLAIM_PERIOD_MS 250 /* claims are tried at most this often (and at least every claim-idle / 4) */
#define RELAY_LINE_MAX (64 * 1024)

typedef struct relay relay;
typedef struct shard shard;

typedef struct entry {
  struct entry *next;      /* in a FIFO: to_send, to_ack, or an ack batch */
  struct entry *hash_next; /* in the held table */
  relay *r;
  shard *s; /* the stream it came from */
  char id[ID_MAX];
  uint64_t id_ms, id_seq; /* the id's two numbers, when id_plain */
  int id_plain;           /* the id is <ms>-<seq>, as Redis makes them */
  uint64_t ordinal;
  uint64_t t0_ns;
  unsigned deliveries;
  int dead_token, dead_letter;
  char *text; /* the notification field, while not yet handed to the client, and for a dead letter */
  size_t text_len;
  char *token;  /* token_buf, or its own allocation for a longer one */
  char *result; /* the result line (no newline) once there is one: in room, or its own allocation */
  size_t result_len;
  char *room; /* RESULT_ROOM bytes after the text */
  char token_buf[72];
  /* One allocation per entry: this, the text, then the room for a result line (they are a few hundred bytes;
   * four allocations per entry were a tenth of the relay's time, in malloc and free). */
  char space[];
} entry;

#define RESULT_ROOM 384

typedef struct fifo {
  entry *head, *tail;
  size_t n;
} fifo;

typedef struct ack_batch {
  shard *s;
  entry *list; /* in the order of the script's arguments */
  size_t n;
} ack_batch;

/* One stream and what goes with it: its results, dead-letter and dead-tokens streams (in a cluster, all four in
 * one slot), a reader and a writer connection to the node that owns the slot, its group and claim state. */
struct shard {
  relay *r;
  const char *stream, *results, *dead_letter, *dead_tokens;
  unsigned char id_tag[6]; /* SHA-256 of the stream's name: the middle of a derived apns-id */
  char results_buf[320], dead_letter_buf[320], dead_tokens_buf[320];
  char reader_name[340], writer_name[340];
  rconn reader, writer;
  int group_ready; /* XGROUP CREATE answered (created, or BUSYGROUP) */
  int group_asked;
  unsigned reading; /* XREADGROUPs in flight: READS_IN_FLIGHT at most, one while reading history */
  int backlog;      /* the last read brought all it asked for: the stream has more, reads may be pipelined */
  unsigned asked[READS_IN_FLIGHT], asked_first; /* their COUNTs, in the order of their replies */
  int read_failed; /* the last read was refused: the next waits for the claim timer's tick */
  int claiming;    /* a claim in flight */
  int history;     /* reading this consumer's own pending entries (id 0) before new ones (>) */
  char history_id[ID_MAX];
  char claim_cursor[ID_MAX];
  unsigned acks_in_flight;
  int acks_paused; /* a slot being moved refused the results: sent again at the claim timer's tick, not at once */
  int moving_said; /* the log said the slot is being moved (once per move) */
  fifo to_ack;
};

struct relay {
  uv_loop_t loop;
  relay_opts o;
  redis_url url;
  shard *shards;
  unsigned n_shards;
  size_t asked; /* entries the reads in flight may bring */
  apns_client *client;
  relay_metrics *metrics;
  uv_signal_t sigterm, sigint;
  uv_timer_t claim_timer, drain_timer, kick;
  int handles_open;
  char *scratch;
  size_t scratch_cap;
  /* state */
  int draining, stopped_apns, shut, exit_code;
  fifo to_send;
  size_t held;
  entry **table;
  size_t table_cap;
  /* counters */
  uint64_t n_read, n_sent, n_accepted, n_rejected, n_failed, n_bad, n_claimed, n_dead_letter, n_dead_tokens;
  uint64_t n_acked, n_not_ours, n_abandoned;
};

/* ---- entries ---- */

static uint64_t hash_id(const char *id) {
  uint64_t h = 1469598103934665603ull;
  for (; *id; id++) h = (h ^ (unsigned char)*id) * 1099511628211ull;
  return h;
}

/* Ids are unique within a stream only: two streams may both have 1700000000000-0. */
static entry **slot_of(relay *r, const shard *s, const char *id) {
  entry **p = &r->table[(hash_id(id) + (uint64_t)(s - r->shards) * 0x9e3779b97f4a7c15ull) & (r->table_cap - 1)];
  while (*p && ((*p)->s != s || strcmp((*p)->id, id) != 0)) p = &(*p)->hash_next;
  return p;
}

static void fifo_push(fifo *f, entry *e) {
  e->next = NULL;
  if (f->tail)
    f->tail->next = e;
  else
    f->head = e;
  f->tail = e;
  f->n++;
}

static entry *fifo_pop(fifo *f) {
  entry *e = f->head;
  if (e) {
    f->head = e->next;
    if (!f->head) f->tail = NULL;
    f->n--;
  }
  return e;
}

static void entry_free(relay *r, entry *e) {
  entry **p = slot_of(r, e->s, e->id);
  if (*p == e) *p = e->hash_next;
  r->held--;
  if (e->token != e->token_buf) free(e->token);
  if (e->result != e->room) free(e->result);
  free(e);
}

static void maybe_read(relay *r);
static void flush_acks(shard *s);
static void maybe_shut(relay *r);

/* The result line of an entry, kept until it is recorded. */
static void set_result(entry *e, const bulk_result *br) {
  size_t n = bulk_result_format_entry(br, e->id, e->room, RESULT_ROOM);
  char *p = e->room;
  if (n >= RESULT_ROOM) {
    if ((p = malloc(n + 1)) == NULL) { /* cannot keep a result: the entry stays pending for a later delivery */
      e->result = NULL;
      return;
    }
    bulk_result_format_entry(br, e->id, p, n + 1);
  }
  if (n && p[n - 1] == '\n') p[--n] = '\0';
  e->result = p;
  e->result_len = n;
}

static void finish(relay *r, entry *e) {
  if (e->result == NULL) {
    r->n_abandoned++;
    entry_free(r, e);
    maybe_read(r);
    maybe_shut(r);
    return;
  }
  fifo_push(&e->s->to_ack, e);
  flush_acks(e->s);
}

static void bad_entry(relay *r, entry *e, const char *token, int err, const char *why) {
  bulk_result br;
  memset(&br, 0, sizeof br);
  br.line = e->ordinal;
  br.token = token;
  br.error = apns_err_name(err);
  br.message = why;
  br.latency_ms = -1;
  r->n_bad++;
  set_result(e, &br);
  e->text = NULL;
  finish(r, e);
}

static void sha256(const void *a, size_t alen, const void *b, size_t blen, unsigned char h[32]) {
  mbedtls_sha256_context c;
  mbedtls_sha256_init(&c);
#if MBEDTLS_VERSION_NUMBER >= 0x03000000 /* the _ret names are gone in mbedTLS 3 */
  mbedtls_sha256_starts(&c, 0);
  mbedtls_sha256_update(&c, a, alen);
  mbedtls_sha256_update(&c, b, blen);
  mbedtls_sha256_finish(&c, h);
#else
  mbedtls_sha256_starts_ret(&c, 0);
  mbedtls_sha256_update_ret(&c, a, alen);
  mbedtls_sha256_update_ret(&c, b, blen);
  mbedtls_sha256_finish_ret(&c, h);
#endif
  mbedtls_sha256_free(&c);
}

static void uuid_text(unsigned char u[16], char out[37]) {
  u[6] = (unsigned char)((u[6] & 0x0f) | 0x80); /* version 8 (RFC 9562: custom) */
  u[8] = (unsigned char)((u[8] & 0x3f) | 0x80); /* variant 10 */
  static const char hex[] = "0123456789abcdef";
  size_t k = 0;
  for (int i = 0; i < 16; i++) {
    if (i == 4 || i == 6 || i == 8 || i == 10) out[k++] = '-';
    out[k++] = hex[u[i] >> 4];
    out[k++] = hex[u[i] & 15];
  }
  out[36] = '\0';
}

/* The apns-id of an entry that has none: the same entry always gets the same one, so a notification sent twice
 * (its relay died after sending, before recording) is recognisable, and the entry can be read back from it. A
 * version 8 UUID: the entry id's milliseconds in the first 48 bits, 42 bits of SHA-256(stream) (computed once per
 * stream), and its sequence number in the last 32 bits: 1700000000000-5 of a stream is
 * 018bcfe5-6800-8xxx-xxxx-xxxx00000005. Two entries never share one. An id that does not fit (a sequence number
 * of 2^32 or more, or an id that is not <ms>-<seq>) gets SHA-256(stream, NUL, id) instead. Hashing every entry's
 * id was a twelfth of the relay's instructions. */
static void derive_apns_id(const shard *s, const entry *e, char out[37]) {
  unsigned char u[16];
  if (e->id_plain && e->id_seq <= 0xffffffffu && e->id_ms < (1ull << 48)) {
    for (int i = 0; i < 6; i++) u[i] = (unsigned char)(e->id_ms >> (40 - 8 * i));
    memcpy(u + 6, s->id_tag, 6);
    for (int i = 0; i < 4; i++) u[12 + i] = (unsigned char)(e->id_seq >> (24 - 8 * i));
  } else {
    unsigned char h[32];
    sha256(s->stream, strlen(s->stream) + 1, e->id, strlen(e->id), h);
    memcpy(u, h, 16);
  }
  uuid_text(u, out);
}

static void on_response(int err, const apns_response *res, void *data) {
  entry *e = data;
  relay *r = e->r;
  if (err == APNS_ECANCELED || err == APNS_ESTOPPED) {
    /* Not a final result: the relay is going away, or APNs refused this certificate for every send. The entry
     * stays pending in the group, for another delivery. */
    r->n_abandoned++;
    entry_free(r, e);
    maybe_shut(r);
    return;
  }
  bulk_result br;
  memset(&br, 0, sizeof br);
  br.line = e->ordinal;
  br.token = e->token;
  br.apns_id = res->apns_id;
  br.status = res->status;
  br.reason = res->reason_text;
  br.timestamp_ms = res->timestamp_ms;
  br.attempts = res->attempts;
  br.latency_ms = (double)(uv_hrtime() - e->t0_ns) / 1e6;
  if (err) {
    br.error = apns_err_name(err);
    br.message = apns_strerror(err);
    r->n_failed++;
  } else if (res->status == 200) {
    r->n_accepted++;
  } else {
    r->n_rejected++;
    if (apns_reason_is_token_dead(res->reason)) e->dead_token = 1;
  }
  set_result(e, &br);
  finish(r, e);
}

static int payload_err(int rv) {
  return rv == APNS_EBADJSON || rv == APNS_EBADUTF8 || rv == APNS_EPAYLOADEMPTY || rv == APNS_EPAYLOADTOOLARGE;
}

/* Hands an entry to the client. Returns 0 when it is taken (or ended with a result of its own), 1 when the
 * client's queue is full (the entry stays as it is). */
static int post(relay *r, entry *e) {
  char why[320];
  bulk_line bl;
  int rv = bulk_line_parse(e->text, e->text_len, &bl, r->scratch, r->scratch_cap, why, sizeof why);
  if (rv < 0) {
    bad_entry(r, e, NULL, rv, why);
    return 0;
  }
  if (bl.payload == NULL) {
    bad_entry(r, e, bl.token, APNS_EPAYLOADEMPTY, "no \"payload\" in the notification");
    return 0;
  }
  apns_send_options so;
  char apns_id[37];
  apns_send_options_init(&so);
  so.topic = bl.topic;
  so.collapse_id = bl.collapse_id;
  so.push_type = bl.push_type;
  so.priority = bl.priority;
  so.has_expiration = bl.has_expiration;
  so.expiration = bl.expiration;
  if (bl.apns_id) {
    so.apns_id = bl.apns_id;
  } else {
    derive_apns_id(e->s, e, apns_id);
    so.apns_id = apns_id;
  }
  if (e->token == NULL) {
    size_t tl = strlen(bl.token);
    e->token = tl < sizeof e->token_buf ? e->token_buf : malloc(tl + 1);
    if (e->token == NULL) {
      bad_entry(r, e, bl.token, APNS_ENOMEM, "out of memory");
      return 0;
    }
    memcpy(e->token, bl.token, tl + 1);
  }
  e->t0_ns = uv_hrtime();
  rv = apns_client_send_json(r->client, bl.token, bl.payload, bl.payload_len, &so, on_response, e);
  if (rv == APNS_EQUEUEFULL) return 1;
  if (rv == APNS_ESTOPPED || rv == APNS_ECLOSED) {
    r->n_abandoned++;
    entry_free(r, e);
    return 0;
  }
  if (rv < 0) {
    snprintf(why, sizeof why, "%s%s", payload_err(rv) ? "payload: " : "", apns_strerror(rv));
    bad_entry(r, e, bl.token, rv, why);
    return 0;
  }
  r->n_sent++;
  if (!e->dead_letter) e->text = NULL; /* the text is kept only for a dead letter */
  return 0;
}

static void pump(relay *r) {
  while (r->to_send.head && r->client && !r->stopped_apns) {
    entry *e = fifo_pop(&r->to_send);
    if (post(r, e) == 1) { /* back at the front: the low-water signal calls again */
      e->next = r->to_send.head;
      r->to_send.head = e;
      if (!r->to_send.tail) r->to_send.tail = e;
      r->to_send.n++;
      return;
    }
  }
  /* Without a client (stopped), what waits will not be sent here: leave it pending. */
  while (r->to_send.head && (r->stopped_apns || !r->client)) {
    r->n_abandoned++;
    entry_free(r, fifo_pop(&r->to_send));
  }
}

static void on_low_water(apns_client *c) {
  relay *r = apns_client_data(c);
  uv_timer_start(&r->kick, r->kick.timer_cb, 0, 0); /* not from inside the pool's dispatch */
}

/* A new entry (read or claimed). fields is the entry's field-value array. */
static void take_entry(shard *s, const char *id, size_t idlen, redisReply *fields, unsigned deliveries) {
  relay *r = s->r;
  if (idlen >= ID_MAX) return;
  char idbuf[ID_MAX];
  memcpy(idbuf, id, idlen);
  idbuf[idlen] = '\0';
  entry **slot = slot_of(r, s, idbuf);
  if (*slot) return; /* already held here (a claim of our own entry): one result for it, not two */
  const redisReply *text = NULL;
  if (fields && fields->type == REDIS_REPLY_ARRAY)
    for (size_t i = 0; i + 1 < fields->elements; i += 2)
      if (fields->element[i]->type == REDIS_REPLY_STRING && strcmp(fields->element[i]->str, "notification") == 0 &&
          fields->element[i + 1]->type == REDIS_REPLY_STRING)
        text = fields->element[i + 1];
  size_t text_space = text && text->len <= RELAY_LINE_MAX ? text->len + 1 : 0;
  entry *e = malloc(sizeof *e + text_space + RESULT_ROOM);
  if (e == NULL) return; /* stays pending: another delivery will come */
  memset(e, 0, sizeof *e);
  if (text_space) {
    e->text = e->space;
    memcpy(e->text, text->str, text->len);
    e->text[text->len] = '\0';
    e->text_len = text->len;
  }
  e->room = e->space + text_space;
  memcpy(e->id, idbuf, idlen + 1);
  {
    char *end;
    const char *dash = strchr(idbuf, '-');
    e->id_plain = dash && dash > idbuf && idbuf[0] != '-' && idbuf[0] != '+' && dash[1] >= '0' && dash[1] <= '9';
    if (e->id_plain) {
      e->id_ms = strtoull(idbuf, &end, 10);
      e->id_plain = end == dash;
      e->id_seq = strtoull(dash + 1, &end, 10);
      e->id_plain = e->id_plain && *end == '\0';
    }
  }
  e->r = r;
  e->s = s;
  e->ordinal = ++r->n_read;
  e->deliveries = deliveries;
  e->t0_ns = uv_hrtime();
  *slot = e;
  r->held++;
  if (deliveries > r->o.max_deliveries) {
    char why[160];
    snprintf(why, sizeof why, "delivered %u times (more than --max-deliveries %u) without a result: not sent again",
             deliveries, r->o.max_deliveries);
    e->dead_letter = 1;
    r->n_dead_letter++;
    bulk_result br;
    memset(&br, 0, sizeof br);
    br.line = e->ordinal;
    br.error = "RELAY_EMAXDELIVERIES";
    br.message = why;
    br.latency_ms = -1;
    set_result(e, &br);
    finish(r, e);
    return;
  }
  if (text == NULL) {
    bad_entry(r, e, NULL, APNS_EINVAL, "the entry has no \"notification\" field");
    return;
  }
  if (e->text == NULL) {
    bad_entry(r, e, NULL, APNS_EINVAL, "the notification is longer than 64 KiB");
    return;
  }
  fifo_push(&r->to_send, e);
}

/* ---- recording results: the script ---- */

/* KEYS: stream, results, dead-tokens, dead-letter. ARGV: group, consumer, then per entry: id, result, dead token
 * ("" or the token), dead letter ("" or "1"), notification, deliveries. Returns one 1 (recorded and acked) or 0
 * (not pending any more: acknowledged already, by this relay before a lost reply or by one that took it over)
 * per entry.
 *
 * The XACK is the check: it answers 1 only for an entry still pending in the group, and the script is atomic
 * (replicated and written to the AOF as one MULTI), so acknowledging first and then adding the result is the same,
 * to anyone else, as the other order. An entry gets a result exactly when it is acknowledged, whichever relay gets
 * there first. Inside Redis what costs is each redis.call, more than the command it runs: this is two per entry
 * (an XPENDING check per entry made it three, and Redis's time per entry went from 4.2 us to 2.6 us without it). */
static const char ack_script[] =
    "local out = {}\n"
    "for i = 3, #ARGV, 6 do\n"
    "  local id = ARGV[i]\n"
    "  if redis.call('XACK', KEYS[1], ARGV[1], id) == 1 then\n"
    "    redis.call('XADD', KEYS[2], '*', 'result', ARGV[i+1])\n"
    "    if ARGV[i+2] ~= '' then\n"
    "      redis.call('XADD', KEYS[3], '*', 'token', ARGV[i+2], 'entry', id, 'result', ARGV[i+1])\n"
    "    end\n"
    "    if ARGV[i+3] ~= '' then\n"
    "      redis.call('XADD', KEYS[4], '*', 'entry', id, 'notification', ARGV[i+4], 'deliveries', ARGV[i+5],\n"
    "                 'result', ARGV[i+1])\n"
    "    end\n"
    "    out[#out+1] = 1\n"
    "  else\n"
    "    out[#out+1] = 0\n"
    "  end\n"
    "end\n"
    "return out\n";

/* A cluster's answer that the slot is elsewhere. -MOVED: the slot has a new owner for good; both connections of
 * the shard go there (what was refused is sent again once they are up). -ASK, -TRYAGAIN (a slot being moved) and
 * -CLUSTERDOWN: tried again at the claim timer's next tick, on the same node, until the move is done and -MOVED
 * names the new owner. Returns 1 for these, 0 for any other error. */
static int cluster_redirect(shard *s, const char *err) {
  if (strncmp(err, "MOVED ", 6) == 0) {
    char host[256];
    int port;
    if (redis_parse_redirect(err, host, sizeof host, &port) != 0) return 0;
    rconn_redirect(&s->writer, host, port);
    rconn_redirect(&s->reader, host, port);
    s->moving_said = 0;
    return 1;
  }
  if (strncmp(err, "ASK ", 4) != 0 && strncmp(err, "TRYAGAIN", 8) != 0 && strncmp(err, "CLUSTERDOWN", 11) != 0)
    return 0;
  if (!s->moving_said) {
    s->moving_said = 1;
    relay_log("info", NULL, "%s: its slot is being moved (%.60s): tried again at each claim tick until it is done",
              s->stream, err);
  }
  return 1;
}

static void requeue_batch(ack_batch *b) {
  entry *e = b->list;
  while (e) {
    entry *next = e->next;
    fifo_push(&b->s->to_ack, e);
    e = next;
  }
  free(b);
}

static void on_ack_reply(redisAsyncContext *ac, void *rep, void *privdata) {
  (void)ac;
  redisReply *reply = rep;
  ack_batch *b = privdata;
  shard *s = b->s;
  relay *r = s->r;
  s->acks_in_flight--;
  if (reply == NULL || reply->type != REDIS_REPLY_ARRAY || reply->elements != b->n) {
    /* Redis went away, or refused: the results are written again later (the script checks first, so a call
     * that ran before the reply was lost records nothing the second time). */
    if (reply && reply->type == REDIS_REPLY_ERROR) {
      if (!cluster_redirect(s, reply->str))
        relay_log("error", NULL, "recording results in %s: %s", s->results, reply->str);
      else if (strncmp(reply->str, "MOVED ", 6) != 0)
        s->acks_paused = 1; /* each result finished would send them again into the same refusal */
    }
    requeue_batch(b);
    maybe_shut(r);
    return;
  }
  entry *e = b->list;
  for (size_t i = 0; e; i++) {
    entry *next = e->next;
    if (reply->element[i]->integer == 1) {
      r->n_acked++;
      if (e->dead_token) r->n_dead_tokens++;
    } else {
      r->n_not_ours++;
    }
    entry_free(r, e);
    e = next;
  }
  free(b);
  flush_acks(s);
  maybe_read(r);
  pump(r);
  maybe_shut(r);
}

static void flush_acks(shard *s) {
  while (s->to_ack.head && s->writer.up && !s->acks_paused && s->acks_in_flight < ACK_IN_FLIGHT) {
    relay *r = s->r;
    size_t n = s->to_ack.n < ACK_BATCH ? s->to_ack.n : ACK_BATCH;
    size_t argc = 3 + 4 + 2 + 6 * n;
    const char **argv = malloc(argc * sizeof *argv);
    size_t *lens = malloc(argc * sizeof *lens);
    char(*nums)[24] = malloc(n * sizeof *nums);
    ack_batch *b = malloc(sizeof *b);
    if (!argv || !lens || !nums || !b) {
      free(argv), free(lens), free(nums), free(b);
      return;
    }
    size_t k = 0;
#define ARG(s, l) (argv[k] = (s), lens[k] = (l), k++)
#define ARGZ(s) ARG((s), strlen(s))
    ARGZ("EVAL");
    ARG(ack_script, sizeof ack_script - 1);
    ARGZ("4");
    ARGZ(s->stream);
    ARGZ(s->results);
    ARGZ(s->dead_tokens);
    ARGZ(s->dead_letter);
    ARGZ(r->o.group);
    ARGZ(r->o.consumer);
    b->s = s;
    b->n = n;
    b->list = NULL;
    entry **tail = &b->list;
    for (size_t i = 0; i < n; i++) {
      entry *e = fifo_pop(&s->to_ack);
      *tail = e;
      tail = &e->next;
      e->next = NULL;
      snprintf(nums[i], sizeof nums[i], "%u", e->deliveries);
      ARGZ(e->id);
      ARG(e->result, e->result_len);
      ARGZ(e->dead_token && e->token ? e->token : "");
      ARGZ(e->dead_letter ? "1" : "");
      ARG(e->dead_letter && e->text ? e->text : "", e->dead_letter && e->text ? e->text_len : 0);
      ARGZ(nums[i]);
    }
#undef ARG
#undef ARGZ
    int rv = rconn_command(&s->writer, on_ack_reply, b, (int)k, argv, lens);
    free(argv);
    free(lens);
    free(nums);
    if (rv != 0) { /* not up after all: back in the queue */
      requeue_batch(b);
      return;
    }
    s->acks_in_flight++;
  }
}

/* ---- reading ---- */

static void on_read_reply(redisAsyncContext *ac, void *rep, void *privdata);

static void ask_group(shard *s);

static void maybe_read_shard(shard *s) {
  relay *r = s->r;
  if (s->read_failed) return;
  /* A second read only while there is a backlog: blocked reads on a drained stream would hold the whole window
   * in reserve and leave no room to take over a dead relay's entries. */
  if (s->reading >= (s->history || !s->backlog ? 1u : READS_IN_FLIGHT) || r->draining || r->shut || !s->reader.up ||
      !s->group_ready || r->stopped_apns)
    return;
  if (r->held + r->asked >= r->o.max_held) return;
  size_t room = r->o.max_held - r->held - r->asked;
  /* Each stream gets its share of the window: one busy stream does not starve the others. */
  size_t share = r->o.max_held / r->n_shards ? r->o.max_held / r->n_shards : 1;
  if (room > share) room = share;
  unsigned count = room < r->o.batch ? (unsigned)room : r->o.batch;
  char cnt[16], blk[24];
  snprintf(cnt, sizeof cnt, "%u", count);
  snprintf(blk, sizeof blk, "%llu", (unsigned long long)r->o.block_ms);
  const char *id = s->history ? s->history_id : ">";
  const char *argv[] = {"XREADGROUP", "GROUP", r->o.group, r->o.consumer, "COUNT", cnt,
                        "BLOCK",      blk,     "STREAMS",  s->stream,     id};
  size_t lens[11];
  for (int i = 0; i < 11; i++) lens[i] = strlen(argv[i]);
  if (rconn_command(&s->reader, on_read_reply, s, 11, argv, lens) == 0) {
    s->asked[(s->asked_first + s->reading++) % READS_IN_FLIGHT] = count;
    r->asked += count;
  }
}

static void maybe_read(relay *r) {
  for (unsigned i = 0; i < r->n_shards; i++) maybe_read_shard(&r->shards[i]);
}

static void on_read_reply(redisAsyncContext *ac, void *rep, void *privdata) {
  (void)ac;
  redisReply *reply = rep;
  shard *s = privdata;
  relay *r = s->r;
  s->reading--;
  unsigned asked = s->asked[s->asked_first];
  r->asked -= asked;
  s->asked_first = (s->asked_first + 1) % READS_IN_FLIGHT;
  if (reply == NULL) return; /* the connection went away: read again once it is back */
  if (reply->type == REDIS_REPLY_ERROR) {
    if (cluster_redirect(s, reply->str)) {
      s->read_failed = strncmp(reply->str, "MOVED ", 6) != 0; /* moved: read again once connected there */
      return;
    }
    relay_log("error", NULL, "XREADGROUP %s: %s", s->stream, reply->str);
    s->read_failed = 1;
    /* Read again at the next tick, not at once: an error is likely to repeat (Redis still loading its data). */
    if (strncmp(reply->str, "NOGROUP", 7) == 0) { /* the stream or group was deleted (or Redis lost its data) */
      s->group_ready = 0;
      ask_group(s);
    }
    return;
  }
  size_t got = 0;
  if (reply->type == REDIS_REPLY_ARRAY && reply->elements >= 1) {
    redisReply *st = reply->element[0];
    if (st->type == REDIS_REPLY_ARRAY && st->elements == 2 && st->element[1]->type == REDIS_REPLY_ARRAY) {
      redisReply *list = st->element[1];
      for (size_t i = 0; i < list->elements; i++) {
        redisReply *en = list->element[i];
        if (en->type != REDIS_REPLY_ARRAY || en->elements != 2 || en->element[0]->type != REDIS_REPLY_STRING)
          continue;
        got++;
        if (s->history && en->element[0]->len < ID_MAX)
          snprintf(s->history_id, sizeof s->history_id, "%s", en->element[0]->str);
        take_entry(s, en->element[0]->str, en->element[0]->len, en->element[1], 1);
      }
    }
  }
  if (s->history && got == 0) s->history = 0;
  s->backlog = got >= asked;
  pump(r);
  maybe_read(r);
  maybe_shut(r);
}

static void on_group_reply(redisAsyncContext *ac, void *rep, void *privdata) {
  (void)ac;
  redisReply *reply = rep;
  shard *s = privdata;
  s->group_asked = 0;
  if (reply == NULL) return;
  if (reply->type == REDIS_REPLY_ERROR && strncmp(reply->str, "BUSYGROUP", 9) != 0) {
    if (!cluster_redirect(s, reply->str))
      relay_log("error", NULL, "XGROUP CREATE %s %s: %s", s->stream, s->r->o.group, reply->str);
    return;
  }
  if (reply->type != REDIS_REPLY_ERROR) relay_log("info", NULL, "created group %s on %s", s->r->o.group, s->stream);
  s->group_ready = 1;
  maybe_read_shard(s);
}

/* The group reads the stream from its start: entries added before any relay ran are sent too. */
static void ask_group(shard *s) {
  if (s->group_ready || s->group_asked) return;
  const char *argv[] = {"XGROUP", "CREATE", s->stream, s->r->o.group, "0", "MKSTREAM"};
  size_t lens[6];
  for (int i = 0; i < 6; i++) lens[i] = strlen(argv[i]);
  if (rconn_command(&s->writer, on_group_reply, s, 6, argv, lens) == 0) s->group_asked = 1;
}

/* ---- taking over ---- */

/* KEYS: stream. ARGV: group, consumer, min idle ms, start, count. Returns {next start, {{id, fields,
 * deliveries}, ...}}: XAUTOCLAIM does not say how often an entry was delivered, XPENDING does (after the claim,
 * so the count includes this delivery). */
static const char claim_script[] =
    "local r = redis.call('XAUTOCLAIM', KEYS[1], ARGV[1], ARGV[2], ARGV[3], ARGV[4], 'COUNT', ARGV[5])\n"
    "local out = {}\n"
    "for _, e in ipairs(r[2]) do\n"
    "  if e[2] then\n"
    "    local p = redis.call('XPENDING', KEYS[1], ARGV[1], e[1], e[1], 1)\n"
    "    local n = 0\n"
    "    if #p == 1 then n = p[1][4] end\n"
    "    out[#out+1] = {e[1], e[2], n}\n"
    "  end\n"
    "end\n"
    "return {r[1], out}\n";

static void on_claim_reply(redisAsyncContext *ac, void *rep, void *privdata) {
  (void)ac;
  redisReply *reply = rep;
  shard *s = privdata;
  relay *r = s->r;
  s->claiming = 0;
  if (reply == NULL) return;
  if (reply->type == REDIS_REPLY_ERROR) {
    if (cluster_redirect(s, reply->str)) return;
    relay_log("error", NULL, "claiming idle entries of %s: %s", s->stream, reply->str);
    if (strstr(reply->str, "NOGROUP")) {
      s->group_ready = 0;
      ask_group(s);
    }
    return;
  }
  if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 2) return;
  if (reply->element[0]->type == REDIS_REPLY_STRING && reply->element[0]->len < ID_MAX)
    snprintf(s->claim_cursor, sizeof s->claim_cursor, "%s", reply->element[0]->str);
  redisReply *list = reply->element[1];
  size_t n = 0;
  for (size_t i = 0; list->type == REDIS_REPLY_ARRAY && i < list->elements; i++) {
    redisReply *en = list->element[i];
    if (en->type != REDIS_REPLY_ARRAY || en->elements != 3 || en->element[0]->type != REDIS_REPLY_STRING) continue;
    size_t before = r->held;
    take_entry(s, en->element[0]->str, en->element[0]->len, en->element[1], (unsigned)en->element[2]->integer);
    n += r->held > before; /* an entry held here already is not taken twice, nor counted */
  }
  if (n) {
    r->n_claimed += n;
    char extra[64];
    snprintf(extra, sizeof extra, ",\"claimed\":%zu", n);
    relay_log("info", extra, "took over %zu entries of %s idle longer than %llu ms", n, s->stream,
              (unsigned long long)r->o.claim_idle_ms);
  }
  pump(r);
  /* More may be idle: go on at once while the cursor says so and there is room. */
  /* Restarting the timer keeps its period: a one-shot here once left entries that became idle later unclaimed
   * for good (the takeover test stalled with the victim's last entries pending). */
  if (strcmp(s->claim_cursor, "0-0") != 0 && n)
    uv_timer_start(&r->claim_timer, r->claim_timer.timer_cb, 0, uv_timer_get_repeat(&r->claim_timer));
}

static void claim_shard(shard *s) {
  relay *r = s->r;
  if (!s->group_ready) ask_group(s);
  s->acks_paused = 0;
  flush_acks(s);
  s->read_failed = 0;
  maybe_read_shard(s);
  if (s->claiming || r->draining || !s->writer.up || !s->group_ready || r->held + r->asked >= r->o.max_held) return;
  size_t room = r->o.max_held - r->held - r->asked;
  unsigned count = room < r->o.batch ? (unsigned)room : r->o.batch;
  char idle[24], cnt[16];
  snprintf(idle, sizeof idle, "%llu", (unsigned long long)r->o.claim_idle_ms);
  snprintf(cnt, sizeof cnt, "%u", count);
  const char *argv[] = {"EVAL", claim_script, "1", s->stream, r->o.group, r->o.consumer, idle, s->claim_cursor, cnt};
  size_t lens[9];
  for (int i = 0; i < 9; i++) lens[i] = strlen(argv[i]);
  if (rconn_command(&s->writer, on_claim_reply, s, 9, argv, lens) == 0) s->claiming = 1;
}

static void on_claim_timer(uv_timer_t *t) {
  relay *r = t->data;
  /* Also the safety net: a read or a write of results refused for a while (Redis LOADING after a restart, a
   * cluster slot being moved) is tried again here. */
  for (unsigned i = 0; i < r->n_shards; i++) claim_shard(&r->shards[i]);
}

/* ---- connections ---- */

static void begin_drain(relay *r, const char *why);

/* In a cluster, one script (EVAL with its KEYS) must touch one slot: the stream and its results, dead-letter and
 * dead-tokens streams must share a hash tag. Checked on each writer connection, before the group is asked for. */
static void on_info_reply(redisAsyncContext *ac, void *rep, void *privdata) {
  (void)ac;
  redisReply *reply = rep;
  shard *s = privdata;
  relay *r = s->r;
  if (reply == NULL || r->shut) return;
  if (reply->type == REDIS_REPLY_STRING && strstr(reply->str, "cluster_enabled:1")) {
    const char *keys[] = {s->stream, s->results, s->dead_letter, s->dead_tokens};
    unsigned slot = redis_key_slot(s->stream, strlen(s->stream));
    for (int i = 1; i < 4; i++)
      if (redis_key_slot(keys[i], strlen(keys[i])) != slot) {
        char why[1400];
        snprintf(why, sizeof why,
                 "Redis is a cluster, and %s (slot %u) and %s (slot %u) are in different slots: one script "
                 "records a result and acknowledges it, and in a cluster it must touch one slot; give the "
                 "stream a hash tag (--stream '{s0}:push') and let the relay name the others after it, or "
                 "give --results, --dead-letter and --dead-tokens the same tag",
                 s->stream, slot, keys[i], redis_key_slot(keys[i], strlen(keys[i])));
        relay_log("error", NULL, "%s", why);
        r->exit_code = RELAY_EXIT_USAGE;
        begin_drain(r, "configuration");
        return;
      }
  }
  ask_group(s);
}

static void on_reader_up(rconn *c) {
  shard *s = c->data; /* reads in flight on the connection lost were answered NULL: reading is 0 */
  s->read_failed = 0;
  maybe_read_shard(s);
}

static void on_writer_up(rconn *c) {
  shard *s = c->data;
  s->group_ready = 0;
  s->group_asked = 0;
  s->acks_paused = 0;
  const char *argv[] = {"INFO", "cluster"};
  size_t lens[] = {4, 7};
  if (rconn_command(&s->writer, on_info_reply, s, 2, argv, lens) != 0) ask_group(s);
  flush_acks(s);
}

static void on_rconn_closed(rconn *c) {
  shard *s = c->data;
  s->r->handles_open--;
}

static void on_kick(uv_timer_t *t) {
  relay *r = t->data;
  pump(r);
  for (unsigned i = 0; i < r->n_shards; i++) flush_acks(&r->shards[i]);
  maybe_read(r);
  maybe_shut(r);
}

static void on_event(apns_pool *pool, const apns_pool_event *ev) {
  relay *r = apns_client_data(apns_pool_data(pool));
  char extra[64];
  snprintf(extra, sizeof extra, ",\"connection\":%u", ev->conn_index);
  if (ev->type == APNS_POOL_EVENT_CONN_UP) {
    relay_log("info", extra, "APNs connection up");
  } else if (ev->type == APNS_POOL_EVENT_CONN_DOWN) {
    relay_log("warn", extra, "APNs connection down: %s (%s)",
              ev->reason && ev->reason[0] ? ev->reason : apns_strerror(ev->err), apns_err_name(ev->err));
  } else if (ev->type == APNS_POOL_EVENT_STOPPED) {
    relay_log("error", NULL, "APNs answered %s: nothing more can be sent with these credentials; stopping",
              ev->reason ? ev->reason : "a fatal error");
    r->stopped_apns = 1;
    r->exit_code = RELAY_EXIT_FAILED;
    r->draining = 1;
    uv_timer_start(&r->kick, on_kick, 0, 0);
  }
}

/* ---- the end ---- */

static void on_client_closed(apns_client *c) {
  relay *r = apns_client_data(c);
  r->handles_open--;
}

static void close_cb(uv_handle_t *h) {
  relay *r = h->data;
  r->handles_open--;
}

static void summary(relay *r) {
  char extra[600];
  snprintf(extra, sizeof extra,
           ",\"read\":%llu,\"sent\":%llu,\"accepted\":%llu,\"rejected\":%llu,\"failed\":%llu,\"bad\":%llu,"
           "\"claimed\":%llu,\"dead_lettered\":%llu,\"dead_tokens\":%llu,\"acked\":%llu,\"not_ours\":%llu,"
           "\"left_pending\":%llu",
           (unsigned long long)r->n_read, (unsigned long long)r->n_sent, (unsigned long long)r->n_accepted,
           (unsigned long long)r->n_rejected, (unsigned long long)r->n_failed, (unsigned long long)r->n_bad,
           (unsigned long long)r->n_claimed, (unsigned long long)r->n_dead_letter,
           (unsigned long long)r->n_dead_tokens, (unsigned long long)r->n_acked, (unsigned long long)r->n_not_ours,
           (unsigned long long)(r->n_abandoned + r->held));
  relay_log("info", extra, "stopped");
}

static void shut_down(relay *r) {
  if (r->shut) return;
  r->shut = 1;
  summary(r);
  /* What is still held (drain time up) stays pending in the group: another relay takes it over. */
  while (r->to_send.head) entry_free(r, fifo_pop(&r->to_send));
  for (unsigned i = 0; i < r->n_shards; i++)
    while (r->shards[i].to_ack.head) entry_free(r, fifo_pop(&r->shards[i].to_ack));
  uv_close((uv_handle_t *)&r->claim_timer, close_cb);
  uv_close((uv_handle_t *)&r->drain_timer, close_cb);
  uv_close((uv_handle_t *)&r->kick, close_cb);
  uv_close((uv_handle_t *)&r->sigterm, close_cb);
  uv_close((uv_handle_t *)&r->sigint, close_cb);
  if (r->metrics) relay_metrics_stop(r->metrics);
  r->metrics = NULL;
  if (r->client) apns_client_close(r->client, 0, on_client_closed);
  r->client = NULL;
  for (unsigned i = 0; i < r->n_shards; i++) {
    rconn_stop(&r->shards[i].reader);
    rconn_stop(&r->shards[i].writer);
  }
}

/* Draining: done once nothing is held and no read can still bring entries. */
static void maybe_shut(relay *r) {
  if (!r->draining || r->shut) return;
  if (r->held) return;
  for (unsigned i = 0; i < r->n_shards; i++)
    if (r->shards[i].reading || r->shards[i].claiming) return;
  shut_down(r);
}

static void on_drain_timer(uv_timer_t *t) {
  relay *r = t->data;
  if (r->shut) return;
  relay_log("warn", NULL, "drain time up: %zu entries left pending for another relay", r->held);
  if (r->exit_code == RELAY_EXIT_OK) r->exit_code = RELAY_EXIT_FAILED;
  /* Canceled sends end in on_response (ECANCELED: not recorded) before the client's close callback. */
  if (r->client) {
    apns_client_close(r->client, 0, on_client_closed);
    r->client = NULL;
  }
  shut_down(r);
}

static void begin_drain(relay *r, const char *why) {
  if (r->draining) return;
  char extra[64];
  snprintf(extra, sizeof extra, ",\"held\":%zu", r->held);
  relay_log("info", extra, "%s: reading no more; draining what was read (within %llu ms)", why,
            (unsigned long long)r->o.drain_ms);
  r->draining = 1;
  uv_timer_stop(&r->claim_timer);
  uv_timer_start(&r->drain_timer, on_drain_timer, r->o.drain_ms, 0);
  maybe_shut(r);
}

static void on_signal(uv_signal_t *h, int signum) {
  relay *r = h->data;
  if (r->draining) {
    on_drain_timer(&r->drain_timer);
    return;
  }
  begin_drain(r, signum == SIGTERM ? "SIGTERM" : "SIGINT");
}

/* ---- metrics ---- */

static size_t metrics_text(void *data, char *buf, size_t cap, int *healthy) {
  relay *r = data;
  apns_pool_stats st;
  memset(&st, 0, sizeof st);
  if (r->client) apns_client_get_stats(r->client, &st, sizeof st);
  int redis_up = 1;
  for (unsigned i = 0; i < r->n_shards; i++) redis_up &= r->shards[i].reader.up && r->shards[i].writer.up;
  *healthy = redis_up && st.connections_up > 0 && !r->stopped_apns;
  int n = snprintf(buf, cap,
                   "# HELP apns_relay_entries_read_total Stream entries read (new and claimed).\n"
                   "# TYPE apns_relay_entries_read_total counter\napns_relay_entries_read_total %llu\n"
                   "# HELP apns_relay_sent_total Notifications handed to APNs.\n"
                   "# TYPE apns_relay_sent_total counter\napns_relay_sent_total %llu\n"
                   "# HELP apns_relay_accepted_total Answered 200.\n"
                   "# TYPE apns_relay_accepted_total counter\napns_relay_accepted_total %llu\n"
                   "# HELP apns_relay_rejected_total Answered another status.\n"
                   "# TYPE apns_relay_rejected_total counter\napns_relay_rejected_total %llu\n"
                   "# HELP apns_relay_failed_total No answer before the deadline, retries included.\n"
                   "# TYPE apns_relay_failed_total counter\napns_relay_failed_total %llu\n"
                   "# HELP apns_relay_bad_total Entries that were not valid notifications.\n"
                   "# TYPE apns_relay_bad_total counter\napns_relay_bad_total %llu\n"
                   "# HELP apns_relay_claimed_total Entries taken over from other consumers.\n"
                   "# TYPE apns_relay_claimed_total counter\napns_relay_claimed_total %llu\n"
                   "# HELP apns_relay_dead_lettered_total Entries sent to the dead-letter stream.\n"
                   "# TYPE apns_relay_dead_lettered_total counter\napns_relay_dead_lettered_total %llu\n"
                   "# HELP apns_relay_dead_tokens_total Tokens written to the dead-tokens stream.\n"
                   "# TYPE apns_relay_dead_tokens_total counter\napns_relay_dead_tokens_total %llu\n"
                   "# HELP apns_relay_acked_total Results recorded and entries acknowledged.\n"
                   "# TYPE apns_relay_acked_total counter\napns_relay_acked_total %llu\n"
                   "# HELP apns_relay_in_flight Entries read and not yet acknowledged.\n"
                   "# TYPE apns_relay_in_flight gauge\napns_relay_in_flight %zu\n"
                   "# HELP apns_relay_apns_connections_up APNs connections ready.\n"
                   "# TYPE apns_relay_apns_connections_up gauge\napns_relay_apns_connections_up %u\n"
                   "# HELP apns_relay_redis_up 1 when both Redis connections are up.\n"
                   "# TYPE apns_relay_redis_up gauge\napns_relay_redis_up %d\n",
                   (unsigned long long)r->n_read, (unsigned long long)r->n_sent, (unsigned long long)r->n_accepted,
                   (unsigned long long)r->n_rejected, (unsigned long long)r->n_failed, (unsigned long long)r->n_bad,
                   (unsigned long long)r->n_claimed, (unsigned long long)r->n_dead_letter,
                   (unsigned long long)r->n_dead_tokens, (unsigned long long)r->n_acked, r->held, st.connections_up,
                   redis_up);
  return n < 0 ? 0 : (size_t)n >= cap ? cap - 1 : (size_t)n;
}

/* ---- setup ---- */

static int open_client(relay *r) {
  char errbuf[512] = "";
  apns_client_options co;
  apns_tls_options co_tls;
  apns_args_client(&r->o.apns, &co, &co_tls);
  co.max_queued = r->o.max_held;
  co.low_water = r->o.max_held / 2;
  co.on_low_water = on_low_water;
  co.on_event = on_event;
  co.data = r;
  char err[APNS_ARGS_ERR_MAX];
  apns_proxy_options *proxy = NULL;
  if (apns_args_proxy(&r->o.apns, &proxy, err, sizeof err) != 0) {
    fprintf(stderr, "apns-relay: %s\n", err);
    return -1;
  }
  co.proxy = proxy;
  int rv = apns_client_open(&r->loop, &r->client, &co, errbuf, sizeof errbuf);
  apns_proxy_options_free(proxy); /* copied by the open */
  if (rv < 0) {
    fprintf(stderr, "apns-relay: %s (%s)\n", errbuf[0] ? errbuf : apns_strerror(rv), apns_err_name(rv));
    return -1;
  }
  return 0;
}

/* One shard a --stream: its result, dead-letter and dead-token streams named after it (so that a hash tag keeps
 * them in its slot), the tag its derived apns-ids carry, and its connections' names for the logs. */
static int shards_new(relay *r) {
  r->n_shards = r->o.n_streams;
  r->shards = calloc(r->n_shards, sizeof *r->shards);
  if (!r->shards) return -1;
  for (unsigned i = 0; i < r->n_shards; i++) {
    shard *s = &r->shards[i];
    s->r = r;
    s->stream = r->o.streams[i];
    snprintf(s->results_buf, sizeof s->results_buf, "%s:results", s->stream);
    snprintf(s->dead_letter_buf, sizeof s->dead_letter_buf, "%s:dead-letter", s->stream);
    snprintf(s->dead_tokens_buf, sizeof s->dead_tokens_buf, "%s:dead-tokens", s->stream);
    s->results = r->o.results ? r->o.results : s->results_buf;
    s->dead_letter = r->o.dead_letter ? r->o.dead_letter : s->dead_letter_buf;
    s->dead_tokens = r->o.dead_tokens ? r->o.dead_tokens : s->dead_tokens_buf;
    unsigned char h[32];
    sha256(s->stream, strlen(s->stream), "", 0, h);
    memcpy(s->id_tag, h, sizeof s->id_tag);
    snprintf(s->history_id, sizeof s->history_id, "0");
    snprintf(s->claim_cursor, sizeof s->claim_cursor, "0-0");
    s->history = 1;
    /* One stream: the names the logs always had. */
    snprintf(s->reader_name, sizeof s->reader_name, r->n_shards == 1 ? "reader" : "reader %s", s->stream);
    snprintf(s->writer_name, sizeof s->writer_name, r->n_shards == 1 ? "writer" : "writer %s", s->stream);
  }
  return 0;
}

/* The "starting" line: the consumer and the streams, as JSON. */
static void log_starting(const relay *r) {
  char extra[1200];
  size_t n = (size_t)snprintf(extra, sizeof extra, ",\"consumer\":");
  n += bulk_json_string(extra + n, sizeof extra - n, r->o.consumer, strlen(r->o.consumer));
  if (n < sizeof extra) n += (size_t)snprintf(extra + n, sizeof extra - n, ",\"streams\":[");
  for (unsigned i = 0; i < r->n_shards && n < sizeof extra; i++) {
    if (i) extra[n++] = ',';
    if (n < sizeof extra)
      n += bulk_json_string(extra + n, sizeof extra - n, r->shards[i].stream, strlen(r->shards[i].stream));
  }
  if (n < sizeof extra) extra[n++] = ']';
  if (n < sizeof extra) extra[n] = '\0';
  relay_log("info", n < sizeof extra ? extra : NULL, "starting");
}

/* The relay's own handles (claim, drain and kick timers, SIGTERM and SIGINT) and each shard's two Redis
 * connections, set up; the claim timer runs at a quarter of the claim idle time, within bounds. */
static void handles_start(relay *r) {
  uv_timer_init(&r->loop, &r->claim_timer);
  uv_timer_init(&r->loop, &r->drain_timer);
  uv_timer_init(&r->loop, &r->kick);
  uv_signal_init(&r->loop, &r->sigterm);
  uv_signal_init(&r->loop, &r->sigint);
  r->claim_timer.data = r->drain_timer.data = r->kick.data = r->sigterm.data = r->sigint.data = r;
  r->handles_open = 5 + 1 + 2 * (int)r->n_shards;
  for (unsigned i = 0; i < r->n_shards; i++) {
    shard *s = &r->shards[i];
    rconn_init(&s->reader, &r->loop, &r->url, s->reader_name, s);
    rconn_init(&s->writer, &r->loop, &r->url, s->writer_name, s);
    s->reader.on_closed = s->writer.on_closed = on_rconn_closed;
  }
  uv_signal_start(&r->sigterm, on_signal, SIGTERM);
  uv_signal_start(&r->sigint, on_signal, SIGINT);
  r->kick.timer_cb = on_kick;
  uint64_t period = r->o.claim_idle_ms / 4;
  if (period > CLAIM_PERIOD_MS * 4) period = CLAIM_PERIOD_MS * 4;
  if (period < CLAIM_PERIOD_MS / 5) period = CLAIM_PERIOD_MS / 5;
  uv_timer_start(&r->claim_timer, on_claim_timer, period, period);
}

int main(int argc, char **argv) {
  static relay r;
  char why[300];
  signal(SIGPIPE, SIG_IGN);
  int rc = relay_parse_args(argc, argv, &r.o);
  if (rc == 1) return RELAY_EXIT_OK;
  if (rc != 0) return rc;
  if (redis_url_parse(r.o.redis_url, &r.url, why, sizeof why) != 0) {
    fprintf(stderr, "apns-relay: --redis %s\n", why);
    apns_args_free(&r.o.apns);
    return RELAY_EXIT_USAGE;
  }
  srand((unsigned)uv_hrtime() ^ (unsigned)getpid());
  r.scratch_cap = BULK_SCRATCH(RELAY_LINE_MAX);
  r.table_cap = 1;
  while (r.table_cap < r.o.max_held * 2) r.table_cap *= 2;
  r.scratch = malloc(r.scratch_cap);
  r.table = calloc(r.table_cap, sizeof *r.table);
  if (!r.scratch || !r.table || uv_loop_init(&r.loop) != 0) {
    fprintf(stderr, "apns-relay: out of memory\n");
    apns_args_free(&r.o.apns);
    return RELAY_EXIT_USAGE;
  }
  if (shards_new(&r) != 0) {
    fprintf(stderr, "apns-relay: out of memory\n");
    apns_args_free(&r.o.apns);
    return RELAY_EXIT_USAGE;
  }
  if (open_client(&r) != 0) {
    uv_run(&r.loop, UV_RUN_DEFAULT);
    uv_loop_close(&r.loop);
    free(r.scratch);
    free(r.table);
    free(r.shards);
    apns_args_free(&r.o.apns);
    return RELAY_EXIT_USAGE;
  }
  handles_start(&r);
  if (r.o.metrics) {
    r.metrics = relay_metrics_start(&r.loop, r.o.metrics, metrics_text, &r);
    if (r.metrics == NULL) {
      r.exit_code = RELAY_EXIT_USAGE;
      shut_down(&r);
      uv_run(&r.loop, UV_RUN_DEFAULT);
      uv_loop_close(&r.loop);
      return RELAY_EXIT_USAGE;
    }
    char extra[64];
    snprintf(extra, sizeof extra, ",\"metrics_port\":%d", relay_metrics_port(r.metrics));
    relay_log("info", extra, "metrics on http://%s/metrics", r.o.metrics);
  }
  for (unsigned i = 0; i < r.n_shards; i++) {
    shard *s = &r.shards[i];
    s->reader.on_up = on_reader_up;
    s->writer.on_up = on_writer_up;
  }
  log_starting(&r);
  for (unsigned i = 0; i < r.n_shards; i++) {
    rconn_start(&r.shards[i].writer);
    rconn_start(&r.shards[i].reader);
  }
  uv_run(&r.loop, UV_RUN_DEFAULT);
  if (uv_loop_close(&r.loop) != 0) relay_log("error", NULL, "internal: handles left open at exit");
  free(r.scratch);
  free(r.table);
  free(r.shards);
  apns_args_free(&r.o.apns);
  return r.exit_code;
}

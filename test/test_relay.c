/* apns-relay against a real redis-server (test/redis_fixture.c) and an in-process apns-mock: every entry gets
 * exactly one result and is acknowledged (100 000 entries); a relay killed with SIGKILL has its entries taken
 * over, with no more sent twice than it had in flight; Redis killed and restarted (AOF) loses nothing and records
 * nothing twice; bad entries, dead tokens, dead letters; SIGTERM drains; the metrics endpoint scraped by curl.
 *
 * The test waits on events only: the relay's exit, its stderr, and the results stream read with a blocking XREAD
 * through hiredis's async client on the test's own loop. */
#define _GNU_SOURCE /* strcasestr, memmem */
#include "fixture.h"
#include "redis_fixture.h"

#include <hiredis/adapters/libuv.h>
#include <hiredis/async.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#define TOPIC "com.example.app"

static const char *relay_bin(void) {
  const char *b = getenv("APNS_RELAY_BIN");
  return b && *b ? b : APNS_RELAY_BIN_DEFAULT;
}

/* ---- a child process (apns-relay or curl): fixture.h's fx_child ---- */

/* APNS_RELAY_TEST_VERBOSE: the relay's log on this test's stderr as it comes, for a test that hangs. */
static void echo_stderr(fx_child *k, int from_stderr, const char *p, size_t n) {
  (void)k;
  if (from_stderr) fwrite(p, 1, n, stderr);
}

static void spawn(fx_child *k, uv_loop_t *loop, const char *const *argv) {
  memset(k, 0, sizeof *k);
  if (getenv("APNS_RELAY_TEST_VERBOSE")) k->on_output = echo_stderr;
  fx_child_start(k, loop, argv);
}

/* ---- the world: mock, redis, certificates ---- */

typedef struct {
  uv_loop_t loop;
  apns__certgen_result certs;
  char dir[500];
  char ca[600], cert[600], key[600], host[64];
  apns_mock *mock;
  rfx redis;
  unsigned n;          /* tokens are 0 .. n-1 (%064x), or dead-prefixed */
  unsigned char *sent; /* per token: requests the mock answered */
  unsigned long dupes; /* requests for a token already seen */
  unsigned long requests;
  unsigned long pause_at; /* the mock holds its answers from this request on (0: never) */
  /* the results watcher */
  redisAsyncContext *ac;
  char last[64];
  int results; /* result entries seen */
  int watching, watch_gone;
  char **entries; /* the "entry" of each result */
  size_t entries_cap;
} world;

static void on_mock_request(void *data, apns_mock_request *req) {
  world *w = data;
  w->requests++;
  if (w->pause_at && w->requests == w->pause_at) apns_mock_set_paused(w->mock, 1);
  const char *tok = req->path + strlen("/3/device/");
  if (strlen(tok) == 64 && strncmp(tok, "dead", 4) != 0) {
    unsigned long long i = strtoull(tok + 48, NULL, 16);
    if (i < w->n) {
      if (w->sent[i]) w->dupes++;
      if (w->sent[i] < 255) w->sent[i]++;
    }
  }
}

static void world_start(world *w, unsigned n, int aof) {
  memset(w, 0, sizeof *w);
  ASSERT_EQ(uv_loop_init(&w->loop), 0);
  snprintf(w->dir, sizeof w->dir, "%s/certs", test_tmpdir());
  ASSERT_EQ(mkdir(w->dir, 0700), 0);
  fx_certs(&w->certs, 0);
  char err[256] = "";
  if (apns__certgen_write_dir(w->dir, &w->certs, err, sizeof err) != 0) test__fail(__FILE__, __LINE__, "%s", err);
  snprintf(w->ca, sizeof w->ca, "%s/ca.pem", w->dir);
  snprintf(w->cert, sizeof w->cert, "%s/client.pem", w->dir);
  snprintf(w->key, sizeof w->key, "%s/client-key.pem", w->dir);
  w->n = n;
  w->sent = calloc(n ? n : 1, 1);
  apns_mock_options o;
  fx_mock_options(&o, &w->certs, 1);
  o.unregistered_prefix = "dead";
  o.on_request = on_mock_request;
  o.data = w;
  w->mock = fx_mock_start(&w->loop, &o);
  snprintf(w->host, sizeof w->host, "127.0.0.1:%d", apns_mock_port(w->mock));
  rfx_start(&w->redis, aof);
  snprintf(w->last, sizeof w->last, "0");
}

static void world_stop(world *w) {
  if (w->ac) redisAsyncFree(w->ac);
  w->ac = NULL;
  fx_mock_stop_and_close_loop(&w->loop, w->mock);
  rfx_stop(&w->redis, 1);
  apns__certgen_free(&w->certs);
  for (int i = 0; i < w->results; i++) free(w->entries[i]);
  free(w->entries);
  free(w->sent);
}

/* Adds n entries (pipelined), notification i for token %064x of first + i; ids into ids[] when given. */
static void add_entries(world *w, unsigned first, unsigned n, char **ids) {
  for (unsigned i = 0; i < n; i++)
    redisAppendCommand(w->redis.c,
                       "XADD apns * notification {\"token\":\"%064x\",\"payload\":{\"aps\":{\"alert\":\"n%u\"}}}",
                       first + i, first + i);
  for (unsigned i = 0; i < n; i++) {
    void *rep;
    ASSERT_EQ(redisGetReply(w->redis.c, &rep), REDIS_OK);
    redisReply *r = rep;
    ASSERT_EQ(r->type, REDIS_REPLY_STRING);
    if (ids) ids[i] = strdup(r->str);
    freeReplyObject(r);
  }
}

static void relay_start(world *w, fx_child *k, const char *consumer, const char *const *extra) {
  const char *argv[64];
  size_t n = 0;
  const char *base[] = {relay_bin(), "--redis", w->redis.url, "--host",     w->host,  "--verify-name",
                        "localhost", "--ca",    w->ca,        "--cert",     w->cert,  "--key",
                        w->key,      "--topic", TOPIC,        "--consumer", consumer, NULL};
  for (size_t i = 0; base[i]; i++) argv[n++] = base[i];
  for (size_t i = 0; extra && extra[i]; i++) argv[n++] = extra[i];
  argv[n] = NULL;
  spawn(k, &w->loop, argv);
}

/* ---- the results stream, watched with XREAD BLOCK ---- */

static void watch_next(world *w);

static void on_results(redisAsyncContext *ac, void *rep, void *privdata) {
  (void)ac;
  world *w = privdata;
  redisReply *reply = rep;
  w->watching = 0;
  if (reply == NULL) return; /* Redis went away: the test watches again after the restart */
  if (reply->type == REDIS_REPLY_ARRAY && reply->elements == 1) {
    redisReply *list = reply->element[0]->element[1];
    for (size_t i = 0; i < list->elements; i++) {
      redisReply *en = list->element[i];
      snprintf(w->last, sizeof w->last, "%s", en->element[0]->str);
      redisReply *f = en->element[1];
      ASSERT_EQ(f->elements, 2);
      ASSERT_STREQ(f->element[0]->str, "result");
      const char *e = strstr(f->element[1]->str, "\"entry\":\"");
      ASSERT_NOT_NULL(e);
      e += 9;
      if ((size_t)w->results == w->entries_cap) {
        w->entries_cap = w->entries_cap ? w->entries_cap * 2 : 1024;
        w->entries = realloc(w->entries, w->entries_cap * sizeof *w->entries);
        ASSERT_NOT_NULL(w->entries);
      }
      w->entries[w->results++] = strndup(e, strcspn(e, "\""));
    }
  }
  watch_next(w);
}

static void on_watch_gone(const redisAsyncContext *ac, int status) {
  (void)status;
  world *w = ac->data;
  w->ac = NULL;
  w->watch_gone = 1;
}

static void watch_next(world *w) {
  if (w->ac == NULL || w->watching) return;
  ASSERT_EQ(redisAsyncCommand(w->ac, on_results, w, "XREAD COUNT 4096 BLOCK 0 STREAMS apns:results %s", w->last),
            REDIS_OK);
  w->watching = 1;
}

static void watch_start(world *w) {
  w->ac = redisAsyncConnectUnix(w->redis.sock);
  ASSERT_TRUE(w->ac != NULL && w->ac->err == 0);
  w->ac->data = w;
  ASSERT_EQ(redisLibuvAttach(w->ac, &w->loop), REDIS_OK);
  redisAsyncSetDisconnectCallback(w->ac, on_watch_gone);
  w->watch_gone = 0;
  watch_next(w);
}

static void run_until_results(world *w, int n) {
  while (w->results < n) {
    if (uv_run(&w->loop, UV_RUN_ONCE) == 0 && w->results < n)
      test__fail(__FILE__, __LINE__, "the loop ran dry at %d of %d results", w->results, n);
  }
}

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Every id has exactly one result, and the group has nothing pending. */
static void assert_one_result_each(world *w, char **ids, unsigned n) {
  ASSERT_EQ(w->results, (int)n);
  ASSERT_EQ(rfx_int(&w->redis, "XLEN apns:results"), (long long)n);
  qsort(ids, n, sizeof *ids, cmp_str);
  qsort(w->entries, n, sizeof *w->entries, cmp_str);
  for (unsigned i = 0; i < n; i++)
    if (strcmp(ids[i], w->entries[i]) != 0)
      test__fail(__FILE__, __LINE__, "result %u: entry %s, want %s", i, w->entries[i], ids[i]);
  redisReply *p = rfx_cmd(&w->redis, "XPENDING apns apns-relay");
  ASSERT_EQ(p->type, REDIS_REPLY_ARRAY);
  ASSERT_EQ(p->element[0]->integer, 0);
  freeReplyObject(p);
}

static void relay_wait(world *w, fx_child *k, int want_status) {
  fx_run_until(&w->loop, &k->done);
  if (k->term_signal || k->status != want_status)
    test__fail(__FILE__, __LINE__, "apns-relay: status %d signal %d:\n%s", (int)k->status, k->term_signal,
               fx_child_err(k));
}

static long long summary_field(const fx_child *k, const char *name) {
  const char *s = strstr(fx_child_err(k), "\"msg\":\"stopped\"");
  if (s == NULL) test__fail(__FILE__, __LINE__, "no summary in:\n%s", fx_child_err(k));
  char key[64];
  snprintf(key, sizeof key, "\"%s\":", name);
  const char *v = strstr(s, key);
  ASSERT_NOT_NULL(v);
  return atoll(v + strlen(key));
}

static void free_ids(char **ids, unsigned n) {
  for (unsigned i = 0; i < n; i++) free(ids[i]);
  free(ids);
}

/* ---- the tests ---- */

TEST(relay_usage_errors_exit_2) {
  world w;
  memset(&w, 0, sizeof w);
  ASSERT_EQ(uv_loop_init(&w.loop), 0);
  static const char *const cases[][4] = {
      {"--redis", "http://x", "--p8", NULL}, {"--batch", "0", NULL, NULL}, {"--bogus", NULL, NULL, NULL}};
  for (size_t i = 0; i < 3; i++) {
    const char *argv[8] = {relay_bin()};
    size_t n = 1;
    for (size_t j = 0; j < 4 && cases[i][j]; j++) argv[n++] = cases[i][j];
    if (i == 0) argv[n - 1] = "--cert", argv[n++] = "/nonexistent";
    argv[n] = NULL;
    fx_child k;
    spawn(&k, &w.loop, argv);
    fx_run_until(&w.loop, &k.done);
    ASSERT_EQ(k.status, 2);
    ASSERT_TRUE(strstr(fx_child_err(&k), "apns-relay: ") != NULL);
    fx_child_free(&k);
  }
  ASSERT_EQ(uv_loop_close(&w.loop), 0);
}

/* 100 000 entries, one relay: one result each, all acknowledged, each sent once. */
TEST(relay_100k_one_relay) {
  unsigned n = test_time_factor() > 1 ? 10000 : 100000;
  world w;
  world_start(&w, n, 0);
  char **ids = calloc(n, sizeof *ids);
  add_entries(&w, 0, n, ids);
  watch_start(&w);
  fx_child k;
  uint64_t t0 = uv_hrtime();
  relay_start(&w, &k, "r1", NULL);
  run_until_results(&w, (int)n);
  double secs = (double)(uv_hrtime() - t0) / 1e9;
  printf("%u entries through one relay in %.2f s (%.0f/s)\n", n, secs, n / secs);
  ASSERT_EQ(uv_process_kill(&k.proc, SIGTERM), 0);
  relay_wait(&w, &k, 0);
  assert_one_result_each(&w, ids, n);
  ASSERT_EQ(w.requests, n);
  ASSERT_EQ(w.dupes, 0);
  ASSERT_EQ(summary_field(&k, "acked"), n);
  ASSERT_EQ(summary_field(&k, "accepted"), n);
  fx_child_free(&k);
  free_ids(ids, n);
  world_stop(&w);
}

/* Two relays; one killed with SIGKILL mid-run. The other takes its pending entries over. */
TEST(relay_sigkill_takeover) {
  unsigned n = test_time_factor() > 1 ? 2000 : 40000;
  world w;
  world_start(&w, n, 0);
  char **ids = calloc(n, sizeof *ids);
  add_entries(&w, 0, n, ids);
  watch_start(&w);
  char idle[24], timeout[16];
  /* Longer than a send's deadline, yet short enough for the runner's time limit under valgrind. */
  int slow = test_time_factor() > 1;
  snprintf(idle, sizeof idle, "%d", slow ? 8000 : 1500);
  snprintf(timeout, sizeof timeout, "%d", slow ? 5 : 1);
  const char *const extra[] = {"--claim-idle-ms", idle, "--timeout", timeout, "--max-held", "500", NULL};
  fx_child a, b;
  /* The victim alone first; the mock answers its first quarter, then holds every answer, so that the victim
   * dies with entries in flight (sent, unanswered, unacknowledged) however fast or slow each side runs. */
  w.pause_at = n / 4 + 1;
  relay_start(&w, &a, "victim", extra);
  run_until_results(&w, (int)n / 4);
  while (w.requests < w.pause_at + 10) ASSERT_NE(uv_run(&w.loop, UV_RUN_ONCE), 0);
  relay_start(&w, &b, "survivor", extra);
  ASSERT_EQ(uv_process_kill(&a.proc, SIGKILL), 0);
  fx_run_until(&w.loop, &a.done);
  ASSERT_EQ(a.term_signal, SIGKILL);
  /* What the victim held: read, not acknowledged. */
  redisReply *p = rfx_cmd(&w.redis, "XPENDING apns apns-relay - + 100000 victim");
  ASSERT_EQ(p->type, REDIS_REPLY_ARRAY);
  size_t victim_pending = p->elements;
  freeReplyObject(p);
  apns_mock_set_paused(w.mock, 0);
  run_until_results(&w, (int)n);
  ASSERT_EQ(uv_process_kill(&b.proc, SIGTERM), 0);
  relay_wait(&w, &b, 0);
  assert_one_result_each(&w, ids, n);
  printf("victim held %zu entries at its death; %lu sent twice; survivor claimed %lld\n", victim_pending, w.dupes,
         summary_field(&b, "claimed"));
  ASSERT_GT(victim_pending, 0);
  ASSERT_GE(summary_field(&b, "claimed"), (long long)victim_pending);
  ASSERT_LE(w.dupes, victim_pending);
  for (unsigned i = 0; i < n; i++) ASSERT_GE(w.sent[i], 1);
  fx_child_free(&a);
  fx_child_free(&b);
  free_ids(ids, n);
  world_stop(&w);
}

/* Redis killed and restarted (AOF, fsync always) mid-run: nothing lost, nothing recorded twice. */
TEST(relay_redis_restart) {
  unsigned n = test_time_factor() > 1 ? 2000 : 40000;
  world w;
  world_start(&w, n, 1);
  char **ids = calloc(n, sizeof *ids);
  add_entries(&w, 0, n, ids);
  watch_start(&w);
  fx_child k;
  /* Entries whose read was answered as Redis died are pending without the relay knowing them: taken over. */
  char idle[24], timeout[16];
  int slow = test_time_factor() > 1;
  snprintf(idle, sizeof idle, "%d", slow ? 8000 : 2000);
  snprintf(timeout, sizeof timeout, "%d", slow ? 5 : 1);
  const char *const extra[] = {"--claim-idle-ms", idle, "--timeout", timeout, NULL};
  relay_start(&w, &k, "r1", extra);
  run_until_results(&w, (int)n / 3);
  rfx_stop(&w.redis, 1);
  fx_run_until(&w.loop, &w.watch_gone);
  rfx_restart(&w.redis);
  /* The results stream as it is after the restart: read again from the start. */
  for (int i = 0; i < w.results; i++) free(w.entries[i]);
  w.results = 0;
  snprintf(w.last, sizeof w.last, "0");
  watch_start(&w);
  run_until_results(&w, (int)n);
  ASSERT_EQ(uv_process_kill(&k.proc, SIGTERM), 0);
  relay_wait(&w, &k, 0);
  assert_one_result_each(&w, ids, n);
  ASSERT_TRUE(strstr(fx_child_err(&k), "connection to unix:") != NULL); /* it did see Redis go */
  ASSERT_EQ(summary_field(&k, "acked") + summary_field(&k, "not_ours"), (long long)n);
  fx_child_free(&k);
  free_ids(ids, n);
  world_stop(&w);
}

/* Bad entries get a result with the error and are acknowledged, never retried; a dead token goes to the
 * dead-tokens stream; an entry delivered too often goes to the dead-letter stream. */
TEST(relay_bad_entries_dead_tokens_dead_letter) {
  world w;
  world_start(&w, 4, 0);
  char *ids[8];
  int k_ids = 0;
  freeReplyObject(rfx_cmd(&w.redis, "XGROUP CREATE apns apns-relay 0 MKSTREAM"));
  /* Delivered three times to a consumer that never answers: dead letter with --max-deliveries 2. */
  redisReply *r = rfx_cmd(&w.redis, "XADD apns * notification {\"token\":\"%064x\",\"payload\":{\"aps\":{}}}", 3);
  ids[k_ids++] = strdup(r->str);
  freeReplyObject(r);
  for (int i = 0; i < 3; i++)
    freeReplyObject(rfx_cmd(&w.redis, "XREADGROUP GROUP apns-relay ghost COUNT 1 STREAMS apns %s", i ? "0" : ">"));
  static const char *const bad[] = {"{oops", "{\"token\":\"xyz\",\"payload\":{\"aps\":{}}}",
                                    "{\"token\":\""
                                    "00000000000000000000000000000000000000000000000000000000000000aa"
                                    "\"}"};
  for (int i = 0; i < 3; i++) {
    r = rfx_cmd(&w.redis, "XADD apns * notification %s", bad[i]);
    ids[k_ids++] = strdup(r->str);
    freeReplyObject(r);
  }
  r = rfx_cmd(&w.redis, "XADD apns * other field");
  ids[k_ids++] = strdup(r->str);
  freeReplyObject(r);
  r = rfx_cmd(&w.redis, "XADD apns * notification {\"token\":\"dead%060x\",\"payload\":{\"aps\":{\"alert\":\"x\"}}}",
              1);
  ids[k_ids++] = strdup(r->str);
  freeReplyObject(r);
  add_entries(&w, 0, 1, &ids[k_ids++]);
  watch_start(&w);
  fx_child k;
  char timeout[16];
  snprintf(timeout, sizeof timeout, "%d", 10 * test_time_factor());
  const char *const extra[] = {"--max-deliveries", "2", "--claim-idle-ms", "50", "--timeout", timeout, NULL};
  relay_start(&w, &k, "r1", extra);
  run_until_results(&w, k_ids);
  ASSERT_EQ(uv_process_kill(&k.proc, SIGTERM), 0);
  relay_wait(&w, &k, 0);
  assert_one_result_each(&w, ids, (unsigned)k_ids);
  ASSERT_EQ(summary_field(&k, "bad"), 4);
  ASSERT_EQ(summary_field(&k, "dead_lettered"), 1);
  ASSERT_EQ(summary_field(&k, "dead_tokens"), 1);
  ASSERT_EQ(w.requests, 2); /* the dead token and the good one; neither the bad nor the dead letter */
  r = rfx_cmd(&w.redis, "XRANGE apns:dead-tokens - +");
  ASSERT_EQ(r->elements, 1);
  ASSERT_STREQ(r->element[0]->element[1]->element[1]->str,
               "dead000000000000000000000000000000000000000000000000000000000001");
  freeReplyObject(r);
  r = rfx_cmd(&w.redis, "XRANGE apns:dead-letter - +");
  ASSERT_EQ(r->elements, 1);
  redisReply *f = r->element[0]->element[1];
  ASSERT_STREQ(f->element[1]->str, ids[0]);
  ASSERT_STREQ(f->element[5]->str, "4");
  ASSERT_TRUE(strstr(f->element[7]->str, "RELAY_EMAXDELIVERIES") != NULL);
  freeReplyObject(r);
  r = rfx_cmd(&w.redis, "XRANGE apns:results - +");
  int saw_json = 0, saw_token = 0, saw_field = 0;
  for (size_t i = 0; i < r->elements; i++) {
    const char *res = r->element[i]->element[1]->element[1]->str;
    saw_json += strstr(res, "\"error\":\"APNS_EBADJSON\"") != NULL;
    saw_token += strstr(res, "\"error\":\"APNS_EBADTOKEN\"") != NULL;
    saw_field += strstr(res, "no \\\"notification\\\" field") != NULL;
  }
  ASSERT_EQ(saw_json, 1);
  ASSERT_EQ(saw_token, 1);
  ASSERT_EQ(saw_field, 1);
  freeReplyObject(r);
  fx_child_free(&k);
  for (int i = 0; i < k_ids; i++) free(ids[i]);
  world_stop(&w);
}

typedef struct {
  world *w;
  fx_child *relay;
  char url[128];
} scrape_ctx;

/* SIGTERM with sends held by a paused server: nothing more is read, what was read is finished and recorded, the
 * relay exits 0. The metrics endpoint is scraped with curl while the sends are held. */
TEST(relay_sigterm_drain_and_metrics) {
  unsigned n = 3000;
  world w;
  world_start(&w, n, 0);
  char **ids = calloc(n, sizeof *ids);
  add_entries(&w, 0, n, ids);
  watch_start(&w);
  apns_mock_set_paused(w.mock, 1);
  fx_child k;
  const char *const extra[] = {"--metrics", "127.0.0.1:0", "--max-held", "500", "--batch", "100", NULL};
  relay_start(&w, &k, "r1", extra);
  /* The port it bound, from its log; then wait until it holds a full window of entries. */
  while (strstr(fx_child_err(&k), "\"metrics_port\":") == NULL) ASSERT_NE(uv_run(&w.loop, UV_RUN_ONCE), 0);
  int port = atoi(strstr(fx_child_err(&k), "\"metrics_port\":") + 15);
  ASSERT_GT(port, 0);
  while (w.requests < 100) ASSERT_NE(uv_run(&w.loop, UV_RUN_ONCE), 0);
  char url[128];
  snprintf(url, sizeof url, "http://127.0.0.1:%d/metrics", port);
  const char *const curl[] = {"curl", "-s", "--max-time", "20", url, NULL};
  fx_child c;
  spawn(&c, &w.loop, curl);
  fx_run_until(&w.loop, &c.done);
  ASSERT_EQ(c.status, 0);
  const char *m = fx_child_out(&c);
  ASSERT_TRUE(strstr(m, "# TYPE apns_relay_entries_read_total counter\n") != NULL);
  ASSERT_TRUE(strstr(m, "apns_relay_in_flight 500\n") != NULL); /* bounded by --max-held */
  ASSERT_TRUE(strstr(m, "apns_relay_redis_up 1\n") != NULL);
  ASSERT_TRUE(strstr(m, "apns_relay_apns_connections_up ") != NULL);
  ASSERT_TRUE(strstr(m, "apns_relay_entries_read_total 500\n") != NULL);
  fx_child_free(&c);
  ASSERT_EQ(uv_process_kill(&k.proc, SIGTERM), 0);
  while (strstr(fx_child_err(&k), "draining what was read") == NULL) ASSERT_NE(uv_run(&w.loop, UV_RUN_ONCE), 0);
  apns_mock_set_paused(w.mock, 0);
  relay_wait(&w, &k, 0);
  /* Exactly the 500 held were finished: results for them, nothing else read. */
  ASSERT_EQ(summary_field(&k, "read"), 500);
  ASSERT_EQ(summary_field(&k, "acked"), 500);
  ASSERT_EQ(summary_field(&k, "left_pending"), 0);
  ASSERT_EQ(rfx_int(&w.redis, "XLEN apns:results"), 500);
  redisReply *p = rfx_cmd(&w.redis, "XPENDING apns apns-relay");
  ASSERT_EQ(p->element[0]->integer, 0);
  freeReplyObject(p);
  fx_child_free(&k);
  free_ids(ids, n);
  world_stop(&w);
}

TEST_SUITE(relay){
    TEST_ENTRY(relay_usage_errors_exit_2),
    TEST_ENTRY(relay_100k_one_relay),
    TEST_ENTRY(relay_sigkill_takeover),
    TEST_ENTRY(relay_redis_restart),
    TEST_ENTRY(relay_bad_entries_dead_tokens_dead_letter),
    TEST_ENTRY(relay_sigterm_drain_and_metrics),
    TEST_SUITE_END,
};

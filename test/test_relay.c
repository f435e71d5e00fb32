/* apns-relay against a real redis-server (test/redis_fixture.c) and an in-process apns-mock: every entry gets
 * exactly one result and is acknowledged (100 000 entries); a relay killed with SIGKILL has its entries taken
 * over, with no more sent twice than it had in flight; Redis killed and restarted (AOF) loses nothing and records
 * nothing twice; bad entries, dead tokens, dead letters; SIGTERM drains; the metrics endpoint scraped by curl.
 *
 * The test waits on events only: the relay's exit, its stderr, and the results stream read with a blocking XREAD
 * through hiredis's async client on the test's own loop. */
#define _GNU_SOURCE /* strcasestr, memmem */
#include "fixture.h"
#include "proxy_fixture.h"
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

/* env: the child's whole environment; NULL: this process's. */
static void spawn_env(fx_child *k, uv_loop_t *loop, const char *const *argv, char **env) {
  memset(k, 0, sizeof *k);
  if (getenv("APNS_RELAY_TEST_VERBOSE")) k->on_output = echo_stderr;
  k->env = env;
  fx_child_start(k, loop, argv);
}

static void spawn(fx_child *k, uv_loop_t *loop, const char *const *argv) {
  spawn_env(k, loop, argv, NULL);
}

/* ---- the world: mock, redis, certificates ---- */

typedef struct {
  uv_loop_t loop;
  apns__certgen_result certs;
  char dir[500];
  char ca[600], cert[600], key[600], host[64];
  apns_mock *mock;
  rfx redis;
  const char *redis_url; /* for the relay: NULL is redis.url */
  char **relay_env;      /* the relay's environment: NULL is this process's */
  unsigned n;            /* tokens are 0 .. n-1 (%064x), or dead-prefixed */
  unsigned char *sent;   /* per token: requests the mock answered */
  unsigned long dupes;   /* requests for a token already seen */
  unsigned long requests;
  unsigned long pause_at; /* the mock holds its answers from this request on (0: never) */
  /* the results watcher */
  redisAsyncContext *ac;
  char last[64];
  int results; /* result entries seen */
  int watching, watch_gone;
  char **entries;                /* the "entry" of each result */
  size_t entries_cap, n_entries; /* n_entries: those of the watcher above (results also counts swatch's) */
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

/* The mock and the certificates; no Redis. */
static void world_start_mock(world *w, unsigned n) {
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
  snprintf(w->last, sizeof w->last, "0");
}

static void world_start(world *w, unsigned n, int aof) {
  world_start_mock(w, n);
  rfx_start(&w->redis, aof);
}

static void world_stop(world *w) {
  if (w->ac) redisAsyncFree(w->ac);
  w->ac = NULL;
  fx_mock_stop_and_close_loop(&w->loop, w->mock);
  rfx_stop(&w->redis, 1);
  apns__certgen_free(&w->certs);
  for (size_t i = 0; i < w->n_entries; i++) free(w->entries[i]);
  free(w->entries);
  free(w->sent);
}

/* Adds n entries to a stream (pipelined), notification i for token %064x of first + i; ids into ids[] when
 * given. explicit_ids: the entries are 1-1, 1-2, ... (the same in every stream), not chosen by Redis. */
static void add_entries_to(rfx *rs, const char *stream, unsigned first, unsigned n, char **ids, int explicit_ids) {
  for (unsigned i = 0; i < n; i++) {
    char id[32] = "*";
    if (explicit_ids) snprintf(id, sizeof id, "1-%u", i + 1);
    redisAppendCommand(rs->c,
                       "XADD %s %s notification {\"token\":\"%064x\",\"payload\":{\"aps\":{\"alert\":\"n%u\"}}}",
                       stream, id, first + i, first + i);
  }
  for (unsigned i = 0; i < n; i++) {
    void *rep;
    ASSERT_EQ(redisGetReply(rs->c, &rep), REDIS_OK);
    redisReply *r = rep;
    ASSERT_EQ(r->type, REDIS_REPLY_STRING);
    if (ids) ids[i] = strdup(r->str);
    freeReplyObject(r);
  }
}

static void add_entries(world *w, unsigned first, unsigned n, char **ids) {
  add_entries_to(&w->redis, "apns", first, n, ids, 0);
}

static void relay_start(world *w, fx_child *k, const char *consumer, const char *const *extra) {
  const char *argv[64];
  size_t n = 0;
  const char *url = w->redis_url ? w->redis_url : w->redis.url;
  const char *base[] = {relay_bin(), "--redis", url,   "--host",     w->host,  "--verify-name",
                        "localhost", "--ca",    w->ca, "--cert",     w->cert,  "--key",
                        w->key,      "--topic", TOPIC, "--consumer", consumer, NULL};
  for (size_t i = 0; base[i]; i++) argv[n++] = base[i];
  for (size_t i = 0; extra && extra[i]; i++) argv[n++] = extra[i];
  argv[n] = NULL;
  spawn_env(k, &w->loop, argv, w->relay_env);
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
      if (w->n_entries == w->entries_cap) {
        w->entries_cap = w->entries_cap ? w->entries_cap * 2 : 1024;
        w->entries = realloc(w->entries, w->entries_cap * sizeof *w->entries);
        ASSERT_NOT_NULL(w->entries);
      }
      w->entries[w->n_entries++] = strndup(e, strcspn(e, "\""));
      w->results++;
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

/* SIGTERM to a relay once all n entries of the stream are sent: it exits 0, each entry has one result and is
 * acknowledged, and the mock saw each token once. */
static void stop_all_sent_once(world *w, fx_child *k, char **ids, unsigned n) {
  ASSERT_EQ(uv_process_kill(&k->proc, SIGTERM), 0);
  relay_wait(w, k, 0);
  assert_one_result_each(w, ids, n);
  ASSERT_EQ(w->requests, n);
  ASSERT_EQ(w->dupes, 0);
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
    if (i == 0) argv[n - 1] = "--cert", argv[n++] = "/dev/null"; /* readable: the bad --redis is what stops it */
    argv[n] = NULL;
    fx_child k;
    spawn(&k, &w.loop, argv);
    fx_run_until(&w.loop, &k.done);
    ASSERT_EQ(k.status, 2);
    ASSERT_TRUE(strstr(fx_child_err(&k), i == 0 ? "apns-relay: --redis " : "apns-relay: ") != NULL);
    fx_child_free(&k);
  }
  ASSERT_EQ(uv_loop_close(&w.loop), 0);
}

/* The first line of a child's stderr after "apns-push: " or "apns-relay: ", into buf. */
static const char *first_message(fx_child *k, const char *prog, char *buf, size_t cap) {
  const char *e = fx_child_err(k);
  size_t n = strlen(prog);
  if (strncmp(e, prog, n) != 0 || strncmp(e + n, ": ", 2) != 0) return "(no message with the command's name)";
  e += n + 2;
  snprintf(buf, cap, "%.*s", (int)strcspn(e, "\n"), e);
  return buf;
}

/* The APNs-side flags are one module's (tools/common/apns_args.c): a mistake in them reads the same from
 * apns-relay as from apns-push, and ends both with status 2. */
TEST(relay_apns_flags_read_as_apns_push) {
  uv_loop_t loop;
  ASSERT_EQ(uv_loop_init(&loop), 0);
  static const char *const cases[][9] = {
      {"--connections", "0"},
      {"--timeout", "0"},
      {"--host", "[::1"},
      {"--host", "h:99999"},
      {"--production", "--development"},
      {"--verify-name", "a b"},
      {"--verify-name", "x", "--insecure", "--cert", "/dev/null"},
      {"--cert", "/dev/null", "--key-pass-env", "APNS_RELAY_TEST_NOT_SET"},
      {"--key", "/dev/null"},
      {"--key-id", "ABCDEFGHIJ"},
      {"--p8", "/dev/null", "--key-id", "ABCDEFGHIJ"},
      {"--cert", "/dev/null", "--p8", "/dev/null", "--key-id", "ABCDEFGHIJ", "--team-id", "ABCDEFGHIJ"},
      {"--connections", "3"},
      {"--cert", "/nonexistent/cert.pem"},
      {"--cert", "/dev/null", "--ca", "/nonexistent/ca.pem"},
      {"--topic", "bad topic"},
      {"--cert", "/dev/null", "--proxy", "https://127.0.0.1:1"},
  };
  const char *const want_first = "--connections: want a whole number from 1 to 1000, got \"0\"";
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char msg[2][1024];
    for (int cmd = 0; cmd < 2; cmd++) {
      const char *argv[16] = {cmd ? relay_bin() : APNS_PUSH_BIN_DEFAULT};
      size_t n = 1;
      for (size_t j = 0; j < 9 && cases[i][j]; j++) argv[n++] = cases[i][j];
      if (cmd == 0) { /* the rest of a valid apns-push command line: the APNs-side checks come after its own */
        argv[n++] = "--topic";
        argv[n++] = TOPIC;
        argv[n++] = "0000000000000000000000000000000000000000000000000000000000000000";
        argv[n++] = "{\"aps\":{\"alert\":\"x\"}}";
      }
      argv[n] = NULL;
      fx_child k;
      spawn(&k, &loop, argv);
      fx_run_until(&loop, &k.done);
      ASSERT_EQ(k.status, 2);
      first_message(&k, cmd ? "apns-relay" : "apns-push", msg[cmd], sizeof msg[cmd]);
      fx_child_free(&k);
    }
    if (strcmp(msg[0], msg[1]) != 0) fprintf(stderr, "case %zu: push \"%s\", relay \"%s\"\n", i, msg[0], msg[1]);
    ASSERT_STREQ(msg[0], msg[1]);
    if (i == 0) ASSERT_STREQ(msg[1], want_first);
  }
  ASSERT_EQ(uv_loop_close(&loop), 0);
}

/* With several streams, each one's results stream is named after it: --results (one name) is refused. */
TEST(relay_usage_several_streams_one_results) {
  uv_loop_t loop;
  ASSERT_EQ(uv_loop_init(&loop), 0);
  const char *argv[] = {relay_bin(), "--cert",    "/nonexistent", "--stream", "{s0}:push",
                        "--stream",  "{s1}:push", "--results",    "res",      NULL};
  fx_child k;
  spawn(&k, &loop, argv);
  fx_run_until(&loop, &k.done);
  ASSERT_EQ(k.status, 2);
  ASSERT_TRUE(strstr(fx_child_err(&k),
                     "apns-relay: --results, --dead-letter and --dead-tokens name the streams of one "
                     "--stream") != NULL);
  fx_child_free(&k);
  ASSERT_EQ(uv_loop_close(&loop), 0);
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
  stop_all_sent_once(&w, &k, ids, n);
  ASSERT_EQ(summary_field(&k, "acked"), n);
  ASSERT_EQ(summary_field(&k, "accepted"), n);
  fx_child_free(&k);
  free_ids(ids, n);
  world_stop(&w);
}

static unsigned occurrences(const char *hay, const char *needle) {
  unsigned n = 0;
  for (const char *p = hay; (p = strstr(p, needle)) != NULL; p++) n++;
  return n;
}

/* Through a real HTTP CONNECT proxy (tinyproxy, which may reach the mock's port only), named by --proxy and then
 * by the environment's https_proxy: every entry is sent once and acknowledged, and after each run the proxy's log
 * shows new tunnels to the mock. */
TEST(relay_through_http_proxy) {
  unsigned n = 600, half = n / 2;
  world w;
  world_start(&w, n, 0);
  fx_daemon *proxy = fx_tinyproxy_start(NULL, NULL, apns_mock_port(w.mock));
  char url[64], env_proxy[96], tunnel[80];
  snprintf(url, sizeof url, "http://127.0.0.1:%d", fx_daemon_port(proxy));
  snprintf(env_proxy, sizeof env_proxy, "https_proxy=%s", url);
  snprintf(tunnel, sizeof tunnel, "CONNECT 127.0.0.1:%d HTTP/1.1", apns_mock_port(w.mock));
  char **ids = calloc(n, sizeof *ids);
  add_entries(&w, 0, half, ids);
  watch_start(&w);
  fx_child k;
  const char *const extra[] = {"--proxy", url, NULL};
  relay_start(&w, &k, "r1", extra);
  run_until_results(&w, (int)half);
  stop_all_sent_once(&w, &k, ids, half);
  ASSERT_EQ(summary_field(&k, "accepted"), half);
  fx_child_free(&k);
  unsigned tunnels = occurrences(fx_daemon_output(proxy), tunnel);
  if (tunnels == 0)
    test__fail(__FILE__, __LINE__, "no \"%s\" in the proxy's log:\n%s", tunnel, fx_daemon_output(proxy));

  char *env[] = {env_proxy, NULL};
  w.relay_env = env;
  add_entries(&w, half, n - half, ids + half);
  relay_start(&w, &k, "r1", NULL);
  run_until_results(&w, (int)n);
  stop_all_sent_once(&w, &k, ids, n);
  ASSERT_EQ(summary_field(&k, "accepted"), n - half);
  if (occurrences(fx_daemon_output(proxy), tunnel) <= tunnels)
    test__fail(__FILE__, __LINE__, "https_proxy: no new tunnel in the proxy's log:\n%s", fx_daemon_output(proxy));
  fx_child_free(&k);
  fx_daemon_stop(proxy);
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
  for (size_t i = 0; i < w.n_entries; i++) free(w.entries[i]);
  w.results = 0;
  w.n_entries = 0;
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

/* ---- several results streams, each watched on the node that has it (following -MOVED, as the relay does) ---- */

typedef struct swatch {
  world *w;
  rcl *cl;   /* NULL: one plain Redis */
  rfx *node; /* where the stream is watched now */
  char key[128], last[64];
  redisAsyncContext *ac;
  int watching;
  int asking; /* -ASK sent it to a node importing the slot: each XREAD there goes after an ASKING */
  char **entries;
  size_t n, cap;
} swatch;

static void swatch_next(swatch *sw);
static void swatch_connect(swatch *sw);

static void on_swatch_gone(const redisAsyncContext *ac, int status) {
  (void)status;
  swatch *sw = ac->data;
  if (sw->ac == ac) sw->ac = NULL;
}

static void on_swatch(redisAsyncContext *ac, void *rep, void *privdata) {
  swatch *sw = privdata;
  redisReply *reply = rep;
  sw->watching = 0;
  if (reply == NULL || ac != sw->ac) return;
  if (reply->type == REDIS_REPLY_ERROR &&
      (strncmp(reply->str, "MOVED ", 6) == 0 || strncmp(reply->str, "ASK ", 4) == 0) && sw->cl) {
    sw->asking = reply->str[0] == 'A';
    int port = atoi(strrchr(reply->str, ':') + 1), to = -1;
    for (int i = 0; i < RCL_NODES; i++)
      if (sw->cl->node[i].port == port) to = i;
    ASSERT_GE(to, 0);
    redisAsyncDisconnect(ac);
    sw->ac = NULL;
    sw->node = &sw->cl->node[to];
    swatch_connect(sw);
    return;
  }
  if (reply->type == REDIS_REPLY_ERROR) test__fail(__FILE__, __LINE__, "XREAD %s: %s", sw->key, reply->str);
  if (reply->type == REDIS_REPLY_ARRAY && reply->elements == 1) {
    redisReply *list = reply->element[0]->element[1];
    for (size_t i = 0; i < list->elements; i++) {
      redisReply *en = list->element[i];
      snprintf(sw->last, sizeof sw->last, "%s", en->element[0]->str);
      redisReply *f = en->element[1];
      ASSERT_EQ(f->elements, 2);
      ASSERT_STREQ(f->element[0]->str, "result");
      const char *e = strstr(f->element[1]->str, "\"entry\":\"");
      ASSERT_NOT_NULL(e);
      e += 9;
      if (sw->n == sw->cap) {
        sw->cap = sw->cap ? sw->cap * 2 : 1024;
        sw->entries = realloc(sw->entries, sw->cap * sizeof *sw->entries);
        ASSERT_NOT_NULL(sw->entries);
      }
      sw->entries[sw->n++] = strndup(e, strcspn(e, "\""));
      sw->w->results++;
    }
  }
  swatch_next(sw);
}

static void swatch_next(swatch *sw) {
  if (sw->ac == NULL || sw->watching) return;
  if (sw->asking) ASSERT_EQ(redisAsyncCommand(sw->ac, NULL, NULL, "ASKING"), REDIS_OK);
  ASSERT_EQ(redisAsyncCommand(sw->ac, on_swatch, sw, "XREAD COUNT 4096 BLOCK 0 STREAMS %s %s", sw->key, sw->last),
            REDIS_OK);
  sw->watching = 1;
}

static void swatch_connect(swatch *sw) {
  sw->ac = redisAsyncConnectUnix(sw->node->sock);
  ASSERT_TRUE(sw->ac != NULL && sw->ac->err == 0);
  sw->ac->data = sw;
  ASSERT_EQ(redisLibuvAttach(sw->ac, &sw->w->loop), REDIS_OK);
  redisAsyncSetDisconnectCallback(sw->ac, on_swatch_gone);
  sw->watching = 0;
  swatch_next(sw);
}

static void swatch_start(swatch *sw, world *w, rcl *cl, rfx *node, const char *stream) {
  memset(sw, 0, sizeof *sw);
  sw->w = w;
  sw->cl = cl;
  sw->node = node;
  snprintf(sw->key, sizeof sw->key, "%s:results", stream);
  snprintf(sw->last, sizeof sw->last, "0");
  swatch_connect(sw);
}

static void swatch_free(swatch *sw) {
  if (sw->ac) redisAsyncFree(sw->ac);
  sw->ac = NULL;
  for (size_t i = 0; i < sw->n; i++) free(sw->entries[i]);
  free(sw->entries);
}

/* The stream on node rs has one result for each of ids (sorted here), and nothing pending in the group. */
static void assert_stream_done(rfx *rs, const char *stream, swatch *sw, char **ids, unsigned n) {
  ASSERT_EQ(sw->n, n);
  ASSERT_EQ(rfx_int(rs, "XLEN %s:results", stream), (long long)n);
  qsort(ids, n, sizeof *ids, cmp_str);
  qsort(sw->entries, n, sizeof *sw->entries, cmp_str);
  for (unsigned i = 0; i < n; i++)
    if (strcmp(ids[i], sw->entries[i]) != 0)
      test__fail(__FILE__, __LINE__, "%s result %u: entry %s, want %s", stream, i, sw->entries[i], ids[i]);
  redisReply *p = rfx_cmd(rs, "XPENDING %s apns-relay", stream);
  ASSERT_EQ(p->type, REDIS_REPLY_ARRAY);
  ASSERT_EQ(p->element[0]->integer, 0);
  freeReplyObject(p);
}

/* Three streams on one plain Redis, with the same entry ids in each: one relay, one result per entry in each
 * stream's own results stream, everything acknowledged, each notification sent once. */
TEST(relay_several_streams_one_redis) {
  unsigned n = test_time_factor() > 1 ? 500 : 3000;
  static const char *const names[] = {"a", "b", "c"};
  world w;
  world_start(&w, 3 * n, 0);
  char **ids[3];
  swatch sw[3];
  for (int i = 0; i < 3; i++) {
    ids[i] = calloc(n, sizeof *ids[i]);
    add_entries_to(&w.redis, names[i], (unsigned)i * n, n, ids[i], 1);
    swatch_start(&sw[i], &w, NULL, &w.redis, names[i]);
  }
  fx_child k;
  const char *const extra[] = {"--stream", "a", "--stream", "b", "--stream", "c", NULL};
  relay_start(&w, &k, "r1", extra);
  run_until_results(&w, (int)(3 * n));
  ASSERT_EQ(uv_process_kill(&k.proc, SIGTERM), 0);
  relay_wait(&w, &k, 0);
  for (int i = 0; i < 3; i++) assert_stream_done(&w.redis, names[i], &sw[i], ids[i], n);
  /* Derived apns-ids: entry 1-K of a stream is 00000000-0001-8sss-ssss-ssss<K in 8 hex digits>, the s the same
   * within a stream and not across streams. */
  char tag[3][16];
  for (int i = 0; i < 3; i++) {
    redisReply *rr = rfx_cmd(&w.redis, "XRANGE %s:results - +", names[i]);
    ASSERT_EQ(rr->elements, n);
    for (size_t j = 0; j < rr->elements; j++) {
      const char *res = rr->element[j]->element[1]->element[1]->str;
      const char *id = strstr(res, "\"apns_id\":\"");
      const char *en = strstr(res, "\"entry\":\"1-");
      ASSERT_NOT_NULL(id);
      ASSERT_NOT_NULL(en);
      id += 11;
      char want_tail[16];
      snprintf(want_tail, sizeof want_tail, "%08x\"", (unsigned)atoi(en + 11));
      if (strncmp(id, "00000000-0001-8", 15) != 0 || strncmp(id + 28, want_tail, 9) != 0)
        test__fail(__FILE__, __LINE__, "stream %s: %.80s", names[i], res);
      if (j == 0) snprintf(tag[i], sizeof tag[i], "%.13s", id + 15);
      ASSERT_EQ(strncmp(id + 15, tag[i], 13), 0);
    }
    freeReplyObject(rr);
  }
  ASSERT_NE(strcmp(tag[0], tag[1]), 0);
  ASSERT_NE(strcmp(tag[1], tag[2]), 0);
  ASSERT_EQ(w.requests, 3 * n);
  ASSERT_EQ(w.dupes, 0);
  ASSERT_EQ(summary_field(&k, "acked"), 3 * n);
  for (int i = 0; i < 3; i++) {
    swatch_free(&sw[i]);
    free_ids(ids[i], n);
  }
  fx_child_free(&k);
  world_stop(&w);
}

/* A Redis Cluster of three nodes, a stream on each (by hash tag), one relay given node 0 only: it follows -MOVED
 * to the other two; a slot moved while entries of its stream are in flight is followed too. Every entry has one
 * result in its shard's results stream and is acknowledged; nothing is sent twice. A stream without a hash tag
 * is refused with a message that says why. */
TEST(relay_cluster_three_shards) {
  unsigned n = test_time_factor() > 1 ? 500 : 3000;
  world w;
  world_start_mock(&w, 3 * n);
  rcl cl;
  rcl_start(&cl);
  char url[64];
  snprintf(url, sizeof url, "redis://127.0.0.1:%d", cl.node[0].port);
  w.redis_url = url;

  /* No hash tag: push and push:results are in different slots; the relay stops before it reads. */
  ASSERT_NE(rcl_slot(&cl, "push"), rcl_slot(&cl, "push:results"));
  fx_child bad;
  const char *const bad_extra[] = {"--stream", "push", NULL};
  relay_start(&w, &bad, "bad", bad_extra);
  relay_wait(&w, &bad, 2);
  ASSERT_TRUE(strstr(fx_child_err(&bad), "different slots") != NULL);
  ASSERT_TRUE(strstr(fx_child_err(&bad), "hash tag") != NULL);
  fx_child_free(&bad);

  /* A tag for each node. */
  char streams[3][32];
  unsigned slots[3];
  int found = 0;
  for (int k = 0; found < 3 && k < 1000; k++) {
    char name[32];
    snprintf(name, sizeof name, "{s%d}:push", k);
    unsigned slot = rcl_slot(&cl, name);
    int node = rcl_owner(&cl, slot);
    int have = 0;
    for (int i = 0; i < found; i++) have |= rcl_owner(&cl, slots[i]) == node;
    if (have) continue;
    snprintf(streams[found], sizeof streams[found], "%s", name);
    slots[found++] = slot;
  }
  ASSERT_EQ(found, 3);
  char **ids[3];
  swatch sw[3];
  for (int i = 0; i < 3; i++) {
    rfx *node = &cl.node[rcl_owner(&cl, slots[i])];
    ids[i] = calloc(n, sizeof *ids[i]);
    add_entries_to(node, streams[i], (unsigned)i * n, n, ids[i], 0);
    swatch_start(&sw[i], &w, &cl, node, streams[i]);
  }
  /* The mock holds its answers from the first third on: the relay has entries of every stream in flight when a
   * slot moves. */
  w.pause_at = n + 1;
  fx_child k;
  const char *const extra[] = {"--stream", streams[0], "--stream", streams[1], "--stream", streams[2], NULL};
  relay_start(&w, &k, "r1", extra);
  while (w.requests < w.pause_at + 30) ASSERT_NE(uv_run(&w.loop, UV_RUN_ONCE), 0);
  /* Move the slot of the stream with the most entries in flight to the next node. */
  int moved = 0;
  long long most = -1;
  for (int i = 0; i < 3; i++) {
    redisReply *p = rfx_cmd(&cl.node[rcl_owner(&cl, slots[i])], "XPENDING %s apns-relay", streams[i]);
    ASSERT_EQ(p->type, REDIS_REPLY_ARRAY);
    if (p->element[0]->integer > most) most = p->element[0]->integer, moved = i;
    freeReplyObject(p);
  }
  ASSERT_GT(most, 0);
  int src = rcl_owner(&cl, slots[moved]), dst = (src + 1) % RCL_NODES;
  /* The keys first: the relay meets -ASK (or -TRYAGAIN) and tries again later; then the slot (-MOVED). */
  rcl_move_slot_begin(&cl, slots[moved], dst);
  apns_mock_set_paused(w.mock, 0);
  char being_moved[96];
  snprintf(being_moved, sizeof being_moved, "%s: its slot is being moved (", streams[moved]);
  while (strstr(fx_child_err(&k), being_moved) == NULL) ASSERT_NE(uv_run(&w.loop, UV_RUN_ONCE), 0);
  rcl_move_slot_end(&cl, slots[moved], dst);
  run_until_results(&w, (int)(3 * n));
  ASSERT_EQ(uv_process_kill(&k.proc, SIGTERM), 0);
  relay_wait(&w, &k, 0);
  for (int i = 0; i < 3; i++) assert_stream_done(&cl.node[rcl_owner(&cl, slots[i])], streams[i], &sw[i], ids[i], n);
  ASSERT_EQ(w.requests, 3 * n);
  ASSERT_EQ(w.dupes, 0);
  ASSERT_EQ(summary_field(&k, "acked"), 3 * n);
  /* It went from the seed to the other nodes, and after the move from the old owner to the new one. */
  char want[160];
  for (int i = 0; i < 3; i++) {
    int owner0 = i == moved ? src : rcl_owner(&cl, slots[i]);
    if (owner0 == 0) continue;
    snprintf(want, sizeof want, "writer %s: moved from 127.0.0.1:%d to 127.0.0.1:%d", streams[i], cl.node[0].port,
             cl.node[owner0].port);
    if (strstr(fx_child_err(&k), want) == NULL)
      test__fail(__FILE__, __LINE__, "no \"%s\" in:\n%s", want, fx_child_err(&k));
  }
  snprintf(want, sizeof want, "%s: moved from 127.0.0.1:%d to 127.0.0.1:%d", streams[moved], cl.node[src].port,
           cl.node[dst].port);
  if (strstr(fx_child_err(&k), want) == NULL)
    test__fail(__FILE__, __LINE__, "no \"%s\" in:\n%s", want, fx_child_err(&k));
  for (int i = 0; i < 3; i++) {
    swatch_free(&sw[i]);
    free_ids(ids[i], n);
  }
  fx_child_free(&k);
  world_stop(&w);
  rcl_stop(&cl);
}

/* A host name is resolved off the loop (uv_getaddrinfo) and the relay connects to the address; the logs name
 * both. */
TEST(relay_redis_host_name) {
  unsigned n = 50;
  world w;
  world_start_mock(&w, n);
  rfx_start_tcp(&w.redis, 0);
  char url[64];
  snprintf(url, sizeof url, "redis://localhost:%d", w.redis.port);
  w.redis_url = url;
  char **ids = calloc(n, sizeof *ids);
  add_entries(&w, 0, n, ids);
  watch_start(&w);
  fx_child k;
  relay_start(&w, &k, "r1", NULL);
  run_until_results(&w, (int)n);
  ASSERT_EQ(uv_process_kill(&k.proc, SIGTERM), 0);
  relay_wait(&w, &k, 0);
  assert_one_result_each(&w, ids, n);
  char want[96];
  snprintf(want, sizeof want, "connected to localhost:%d (", w.redis.port);
  if (strstr(fx_child_err(&k), want) == NULL)
    test__fail(__FILE__, __LINE__, "no \"%s\" in:\n%s", want, fx_child_err(&k));
  fx_child_free(&k);
  free_ids(ids, n);
  world_stop(&w);
}

/* A name that does not resolve: said clearly, tried again with back-off, and the loop goes on meanwhile (the
 * health endpoint answers, unavailable); SIGTERM ends it. */
TEST(relay_redis_unknown_host) {
  world w;
  world_start_mock(&w, 1);
  w.redis_url = "redis://no-such-host.invalid:6379";
  fx_child k;
  const char *const extra[] = {"--metrics", "127.0.0.1:0", NULL};
  relay_start(&w, &k, "r1", extra);
  const char *said = "redis writer: cannot resolve no-such-host.invalid:6379: ";
  while (strstr(fx_child_err(&k), said) == NULL) {
    if (k.exited) test__fail(__FILE__, __LINE__, "apns-relay exited:\n%s", fx_child_err(&k));
    ASSERT_NE(uv_run(&w.loop, UV_RUN_ONCE), 0);
  }
  ASSERT_TRUE(strstr(fx_child_err(&k), "\"metrics_port\":") != NULL);
  int port = atoi(strstr(fx_child_err(&k), "\"metrics_port\":") + 15);
  char hurl[96];
  snprintf(hurl, sizeof hurl, "http://127.0.0.1:%d/health", port);
  const char *const curl[] = {"curl", "-s", "-w", " %{http_code}", "--max-time", "20", hurl, NULL};
  fx_child c;
  spawn(&c, &w.loop, curl);
  fx_run_until(&w.loop, &c.done);
  ASSERT_EQ(c.status, 0);
  ASSERT_STREQ(fx_child_out(&c), "unavailable\n 503");
  fx_child_free(&c);
  /* Tried again (the back-off starts at 100 ms): a third failure, after the reader's and the writer's first. */
  for (;;) {
    int times = 0;
    for (const char *p = fx_child_err(&k); (p = strstr(p, "cannot resolve no-such-host.invalid")) != NULL; p++)
      times++;
    if (times >= 3) break;
    ASSERT_NE(uv_run(&w.loop, UV_RUN_ONCE), 0);
  }
  ASSERT_EQ(uv_process_kill(&k.proc, SIGTERM), 0);
  relay_wait(&w, &k, 0);
  fx_child_free(&k);
  world_stop(&w);
}

TEST_SUITE(relay){
    TEST_ENTRY(relay_usage_errors_exit_2),
    TEST_ENTRY(relay_usage_several_streams_one_results),
    TEST_ENTRY(relay_apns_flags_read_as_apns_push),
    TEST_ENTRY(relay_100k_one_relay),
    TEST_ENTRY(relay_through_http_proxy),
    TEST_ENTRY(relay_sigkill_takeover),
    TEST_ENTRY(relay_redis_restart),
    TEST_ENTRY(relay_bad_entries_dead_tokens_dead_letter),
    TEST_ENTRY(relay_sigterm_drain_and_metrics),
    TEST_ENTRY(relay_several_streams_one_redis),
    TEST_ENTRY(relay_cluster_three_shards),
    TEST_ENTRY(relay_redis_host_name),
    TEST_ENTRY(relay_redis_unknown_host),
    TEST_SUITE_END,
};

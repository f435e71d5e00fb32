/* Memory runs out in apns-mock at every point of a small run in turn: the mock runs in this process, and for each
 * n up to its allocations in a run the n-th allocation and every later one fail (test_alloc_fail_after). The
 * client, an apns_pool that posts a few requests and closes, runs in a child process forked before the mock starts
 * (it shares no socket with the mock and has an allocator of its own, never limited), one run per command on a
 * pipe.
 *
 * Whatever fails: every request the client posted ends exactly once (answered, or failed when the connection was
 * closed or the deadline passed: fx_record aborts the child on a second end, and the child reports each); the mock
 * neither crashes (it is this process) nor leaks (once the run's connections are closed, the live count is back
 * where it was); and each next run, with memory back, is served from its start: the last, unlimited, gets 200 for
 * every request. */
#include "fixture.h"

#include <apns.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#define N 6
#define TOKEN "00fc13adff785122b4ad28809a3420982341241421348097878e577c991de8f0"

typedef struct {
  int port;
  uint32_t deadline_ms;
} run_cmd;

typedef struct {
  int accepted;
  int calls[N];
  int err[N];
  int status[N];
} run_report;

/* How a request may end when the mock closed its connection for want of memory: the deadline, the connection's
 * loss (libuv's codes pass through as its cause), a TLS handshake cut short. */
static int lost(int err) {
  return err == APNS_ETIMEDOUT || err == APNS_ECLOSED || err == APNS_ECANCELED || err == APNS_ETLS ||
         err == UV_ECONNRESET || err == UV_EPIPE || err == UV_EOF;
}

static void count_closed(apns_pool *p) {
  (*(int *)apns_pool_data(p))++;
}

/* The child: one pool run per command, its report on the other pipe, until the command pipe closes. */
static void client_child(int cmd_fd, int rep_fd, const apns__certgen_result *certs) {
  run_cmd cmd;
  test_alloc_reset();
  while (read(cmd_fd, &cmd, sizeof cmd) == (ssize_t)sizeof cmd) {
    uv_loop_t loop;
    apns_pool *pool = NULL;
    apns_pool_options o;
    static fx_rec recs[N];
    run_report rep;
    int done = 0, closed = 0;
    memset(recs, 0, sizeof recs);
    memset(&rep, 0, sizeof rep);
    if (uv_loop_init(&loop) != 0) _exit(3);
    apns_pool_options_init(&o);
    o.host = "127.0.0.1";
    o.port = (uint16_t)cmd.port;
    o.connections = 1;
    o.reconnect_min_delay_ms = 5;
    o.data = &closed;
    apns_tls_options o_tls;
    o.tls = fx_tls_client(&o_tls, certs);
    ASSERT_OK(apns_pool_open(&loop, &pool, &o, NULL, 0));
    for (int i = 0; i < N; i++) {
      apns_request r;
      fx_request(&r, TOKEN, cmd.deadline_ms);
      recs[i].counter = &done;
      ASSERT_OK(apns_pool_post(pool, &r, fx_record, &recs[i]));
      rep.accepted++;
    }
    fx_run_until_count(&loop, &done, rep.accepted);
    ASSERT_OK(apns_pool_close(pool, 0, count_closed));
    fx_run_until(&loop, &closed);
    uv_run(&loop, UV_RUN_DEFAULT);
    ASSERT_EQ(uv_loop_close(&loop), 0);
    for (int i = 0; i < N; i++) {
      rep.calls[i] = recs[i].calls;
      rep.err[i] = recs[i].err;
      rep.status[i] = recs[i].status;
    }
    if (write(rep_fd, &rep, sizeof rep) != (ssize_t)sizeof rep) _exit(4);
  }
  _exit(0);
}

typedef struct {
  uv_loop_t *loop;
  int rep_fd;
  run_report rep;
  int got;
} waiter;

static void on_report(uv_poll_t *p, int status, int events) {
  waiter *w = p->data;
  (void)events;
  ASSERT_EQ(status, 0);
  /* One report, written at once (far below PIPE_BUF): it is whole when the pipe is readable. */
  ssize_t k = read(w->rep_fd, &w->rep, sizeof w->rep);
  if (k != (ssize_t)sizeof w->rep)
    test__fail(__FILE__, __LINE__, "the client child died (read %zd): a request ended twice?", k);
  w->got = 1;
  uv_poll_stop(p);
}

static void on_tick(uv_timer_t *t) {
  (void)t; /* wakes the loop to look at the mock's counters */
}

static void poll_closed(uv_handle_t *h) {
  (void)h;
}

/* One run: the command to the child, the mock served on this loop until the report is back and the run's
 * connections are closed. Returns the mock's allocations in the run. */
static long one_run(uv_loop_t *loop, apns_mock *mock, int cmd_fd, int rep_fd, long budget, uint32_t deadline_ms,
                    run_report *rep) {
  waiter w;
  uv_poll_t poll;
  uv_timer_t tick;
  memset(&w, 0, sizeof w);
  w.loop = loop;
  w.rep_fd = rep_fd;
  ASSERT_EQ(uv_poll_init(loop, &poll, rep_fd), 0);
  poll.data = &w;
  ASSERT_EQ(uv_poll_start(&poll, UV_READABLE, on_report), 0);
  ASSERT_EQ(uv_timer_init(loop, &tick), 0);
  ASSERT_EQ(uv_timer_start(&tick, on_tick, 10, 10), 0);
  run_cmd cmd = {apns_mock_port(mock), deadline_ms};
  if (budget >= 0)
    test_alloc_fail_after(budget);
  else
    test_alloc_reset();
  ASSERT_EQ(write(cmd_fd, &cmd, sizeof cmd), (ssize_t)sizeof cmd);
  fx_run_until(loop, &w.got);
  /* The client has closed its pool: the mock sees each connection end, soon. */
  uint64_t t0 = uv_now(loop), limit = 10000 * (uint64_t)test_time_factor();
  for (;;) {
    apns_mock_stats st;
    apns_mock_get_stats(mock, &st);
    if (st.connections_open == 0) break;
    if (uv_now(loop) - t0 > limit)
      test__fail(__FILE__, __LINE__, "budget %ld: %" PRIu64 " connections still open in the mock", budget,
                 st.connections_open);
    uv_run(loop, UV_RUN_ONCE);
  }
  long allocs = test_alloc_count();
  test_alloc_reset();
  uv_close((uv_handle_t *)&poll, poll_closed);
  uv_close((uv_handle_t *)&tick, poll_closed);
  uv_run(loop, UV_RUN_NOWAIT);
  *rep = w.rep;
  return allocs;
}

TEST(mock_allocation_failures) {
  apns__certgen_result certs;
  apns_mock_options mo;
  int cmd[2], rep[2];
  fx_certs(&certs, 0);
  ASSERT_EQ(pipe(cmd), 0);
  ASSERT_EQ(pipe(rep), 0);
  fflush(stdout);
  fflush(stderr);
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    close(cmd[1]);
    close(rep[0]);
    client_child(cmd[0], rep[1], &certs);
  }
  close(cmd[0]);
  close(rep[1]);

  uv_loop_t loop;
  ASSERT_EQ(uv_loop_init(&loop), 0);
  fx_mock_options(&mo, &certs, 0);
  apns_mock *mock = fx_mock_start(&loop, &mo);
  run_report r;

  /* A first run without a limit: every request answered; it warms the mock's caches (stream slabs are kept) and
   * tells how far to sweep. */
  long allocs = one_run(&loop, mock, cmd[1], rep[0], -1, 20000, &r);
  for (int i = 0; i < N; i++) {
    ASSERT_EQ(r.calls[i], 1);
    ASSERT_OK(r.err[i]);
    ASSERT_EQ(r.status[i], 200);
  }
  long base = test_alloc_live();
  ASSERT_GT(allocs, 10);
  printf("a run makes %ld allocations in the mock\n", allocs);

  long step = test_time_factor() > 1 ? 10 : 1; /* valgrind: each failed run waits out its deadline */
  int runs = 0, answered = 0, failed = 0, whole = 0;
  uint32_t deadline = 300 * (uint32_t)test_time_factor();
  /* The last budget, the run's whole count and a margin, is always swept, whatever the step. */
  for (long n = 0; n <= allocs + 2; n = n < allocs + 2 && n + step > allocs + 2 ? allocs + 2 : n + step) {
    one_run(&loop, mock, cmd[1], rep[0], n, deadline, &r);
    if (test_alloc_live() != base)
      test__fail(__FILE__, __LINE__, "budget %ld: %ld allocations leaked in the mock", n, test_alloc_live() - base);
    int ok = 0;
    for (int i = 0; i < N; i++) {
      if (r.calls[i] != 1) test__fail(__FILE__, __LINE__, "budget %ld: request %d ended %d times", n, i, r.calls[i]);
      if (r.err[i] == 0)
        answered++, ok += r.status[i] == 200;
      else if (lost(r.err[i]))
        failed++;
      else
        test__fail(__FILE__, __LINE__, "budget %ld: request %d ended with %s", n, i, apns_err_name(r.err[i]));
    }
    whole += ok == N;
    runs++;
  }
  printf("%d runs: %d requests answered, %d failed with their connection or deadline, %d runs all 200\n", runs,
         answered, failed, whole);
  /* The sweep reached the failures and, at its end, runs served whole. Memory ran out at the first allocation of
   * the first run: had the mock stopped accepting then (it did, leaving the connection it could not allocate for
   * unaccepted), none would be. */
  ASSERT_GT(failed, 0);
  ASSERT_GT(whole, 0);

  /* Memory back: the mock serves a new connection from its start. */
  one_run(&loop, mock, cmd[1], rep[0], -1, 20000, &r);
  for (int i = 0; i < N; i++) {
    ASSERT_EQ(r.calls[i], 1);
    ASSERT_OK(r.err[i]);
    ASSERT_EQ(r.status[i], 200);
  }
  ASSERT_EQ(test_alloc_live(), base);

  close(cmd[1]); /* the child exits */
  int status;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  close(rep[0]);
  fx_mock_stop_and_close_loop(&loop, mock);
  apns__certgen_free(&certs);
}

TEST_SUITE(mock_alloc){
    TEST_ENTRY(mock_allocation_failures),
    TEST_SUITE_END,
};

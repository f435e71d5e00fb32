/* The ABI rule (README.md, "ABI") held to: caller-filled structs read by their declared size (an older program's
 * short struct gets defaults for the rest whatever lies past it, a newer program's long one is accepted only with
 * a zero tail), size 0 refused naming the initializer, library-filled structs written no further than the
 * caller's size, initializer macros and functions alike, and the soname the policy gives. */
#include "fixture.h"

#include "abi.h"

#include <elf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TOKEN "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

/* Past an older program's struct lies whatever its stack held: this, so that a field read by mistake shows. */
#define GARBAGE 0x5a

/* ---- the reader itself, sans I/O ---- */

typedef struct {
  size_t size;
  int a;
  int b;
  uint64_t c;
} toy;

TEST(abi_read_by_declared_size) {
  char err[256];
  toy dst;
  unsigned char buf[sizeof(toy) + 32];
  toy *src = (toy *)(void *)buf;
  const size_t min = APNS__ABI_MIN(toy, a);

  /* An older layout: only size and a; b and c past it take their default (zero), garbage or not. */
  memset(buf, GARBAGE, sizeof buf);
  src->size = offsetof(toy, b);
  src->a = 7;
  ASSERT_OK(apns__abi_read(&dst, sizeof dst, min, src, "toy", err, sizeof err));
  ASSERT_EQ(dst.a, 7);
  ASSERT_EQ(dst.b, 0);
  ASSERT_UEQ(dst.c, 0);
  ASSERT_UEQ(dst.size, sizeof(toy)); /* the copy is the library's own layout from then on */

  /* This layout exactly. */
  memset(buf, 0, sizeof buf);
  src->size = sizeof(toy);
  src->a = 1, src->b = 2, src->c = 3;
  ASSERT_OK(apns__abi_read(&dst, sizeof dst, min, src, "toy", err, sizeof err));
  ASSERT_EQ(dst.b, 2);
  ASSERT_UEQ(dst.c, 3);

  /* A newer layout that left its newer fields unset: accepted, the known part read. */
  src->size = sizeof buf;
  ASSERT_OK(apns__abi_read(&dst, sizeof dst, min, src, "toy", err, sizeof err));
  ASSERT_UEQ(dst.c, 3);
  /* ... with one set: refused, naming the first byte set. */
  buf[sizeof(toy) + 5] = 1;
  ASSERT_ERR(apns__abi_read(&dst, sizeof dst, min, src, "toy", err, sizeof err), APNS_EINVAL);
  char want[128];
  snprintf(want, sizeof want, "toy from a newer libapns (field at offset %zu set)", sizeof(toy) + 5);
  ASSERT_TRUE(strstr(err, want) != NULL);

  /* Never initialized, and smaller than any layout. */
  src->size = 0;
  ASSERT_ERR(apns__abi_read(&dst, sizeof dst, min, src, "toy", err, sizeof err), APNS_EINVAL);
  ASSERT_TRUE(strstr(err, "toy.size is 0: initialize it with toy_init() or TOY_INIT") != NULL);
  src->size = sizeof(size_t) + 1;
  ASSERT_ERR(apns__abi_read(&dst, sizeof dst, min, src, "toy", err, sizeof err), APNS_EINVAL);
  ASSERT_TRUE(strstr(err, "less than any layout") != NULL);
  /* errbuf may be NULL. */
  ASSERT_ERR(apns__abi_read(&dst, sizeof dst, min, src, "toy", NULL, 0), APNS_EINVAL);
}

TEST(abi_write_no_further_than_size) {
  toy src = {sizeof(toy), 1, 2, 3};
  unsigned char out[sizeof(toy) + 8];
  memset(out, 0xcc, sizeof out);
  apns__abi_write(out, offsetof(toy, b), &src, sizeof src);
  ASSERT_MEMEQ(out, &src, offsetof(toy, b));
  for (size_t i = offsetof(toy, b); i < sizeof out; i++) ASSERT_EQ(out[i], 0xcc);
  memset(out, 0xcc, sizeof out);
  apns__abi_write(out, sizeof out, &src, sizeof src); /* a newer caller's bigger struct: its tail untouched */
  ASSERT_MEMEQ(out, &src, sizeof src);
  for (size_t i = sizeof src; i < sizeof out; i++) ASSERT_EQ(out[i], 0xcc);
}

/* ---- initializers ---- */

/* The macro (in static storage, so padding is zero too) and the function give the same bytes: size set, the rest
 * zero. */
#define SAME_INIT(T, MACRO)                                                                                          \
  do {                                                                                                               \
    static const T by_macro = MACRO;                                                                                 \
    T by_function;                                                                                                   \
    unsigned char zero[sizeof(T)];                                                                                   \
    memset(&by_function, 0xee, sizeof by_function);                                                                  \
    T##_init(&by_function);                                                                                          \
    ASSERT_UEQ(by_macro.size, sizeof(T));                                                                            \
    ASSERT_MEMEQ(&by_function, &by_macro, sizeof(T));                                                                \
    memset(zero, 0, sizeof zero);                                                                                    \
    ASSERT_MEMEQ((const unsigned char *)&by_macro + sizeof(size_t), zero, sizeof(T) - sizeof(size_t));               \
    T##_init(NULL); /* a no-op */                                                                                    \
  } while (0)

TEST(abi_init_macros_and_functions_agree) {
  SAME_INIT(apns_request, APNS_REQUEST_INIT);
  SAME_INIT(apns_tls_options, APNS_TLS_OPTIONS_INIT);
  SAME_INIT(apns_proxy_options, APNS_PROXY_OPTIONS_INIT);
  SAME_INIT(apns_conn_options, APNS_CONN_OPTIONS_INIT);
  SAME_INIT(apns_pool_options, APNS_POOL_OPTIONS_INIT);
  SAME_INIT(apns_client_options, APNS_CLIENT_OPTIONS_INIT);
  SAME_INIT(apns_send_options, APNS_SEND_OPTIONS_INIT);
  SAME_INIT(apns_channels_options, APNS_CHANNELS_OPTIONS_INIT);
  SAME_INIT(apns_channel_request_options, APNS_CHANNEL_REQUEST_OPTIONS_INIT);
  SAME_INIT(apns_broadcast_options, APNS_BROADCAST_OPTIONS_INIT);
}

/* ---- the public structs, size 0 and newer layouts ---- */

static void assert_has(const char *text, const char *want) {
  if (strstr(text, want) == NULL) test__fail(__FILE__, __LINE__, "\"%s\" does not say \"%s\"", text, want);
}

TEST(abi_size_zero_refused_naming_the_initializer) {
  uv_loop_t loop;
  char err[256] = "";
  long live = test_alloc_live();
  ASSERT_EQ(uv_loop_init(&loop), 0);

  apns_conn *conn = NULL;
  apns_conn_options co;
  memset(&co, 0, sizeof co); /* the mistake: zeroed, not initialized */
  co.host = "127.0.0.1";
  ASSERT_ERR(apns_conn_open(&loop, &conn, &co, err, sizeof err), APNS_EINVAL);
  assert_has(err, "apns_conn_options.size is 0: initialize it with apns_conn_options_init() or "
                  "APNS_CONN_OPTIONS_INIT");
  ASSERT_NULL(conn);

  apns_pool *pool = NULL;
  apns_pool_options po;
  memset(&po, 0, sizeof po);
  po.host = "127.0.0.1";
  ASSERT_ERR(apns_pool_open(&loop, &pool, &po, err, sizeof err), APNS_EINVAL);
  assert_has(err, "apns_pool_options.size is 0: initialize it with apns_pool_options_init()");
  ASSERT_NULL(pool);

  /* The pointed-to structs too. */
  apns_tls_options tls;
  memset(&tls, 0, sizeof tls);
  apns_pool_options_init(&po);
  po.host = "127.0.0.1";
  po.tls = &tls;
  ASSERT_ERR(apns_pool_open(&loop, &pool, &po, err, sizeof err), APNS_EINVAL);
  assert_has(err, "apns_tls_options.size is 0: initialize it with apns_tls_options_init() or APNS_TLS_OPTIONS_INIT");
  apns_proxy_options proxy;
  memset(&proxy, 0, sizeof proxy);
  proxy.type = APNS_PROXY_HTTP;
  proxy.host = "127.0.0.1";
  apns_conn_options_init(&co);
  co.host = "127.0.0.1";
  co.proxy = &proxy;
  ASSERT_ERR(apns_conn_open(&loop, &conn, &co, err, sizeof err), APNS_EINVAL);
  assert_has(err, "apns_proxy_options.size is 0: initialize it with apns_proxy_options_init()");

  apns_client *client = NULL;
  apns_client_options cl;
  memset(&cl, 0, sizeof cl);
  ASSERT_ERR(apns_client_open(&loop, &client, &cl, err, sizeof err), APNS_EINVAL);
  assert_has(err, "apns_client_options.size is 0: initialize it with apns_client_options_init()");

  apns_channels *channels = NULL;
  apns_channels_options cho;
  memset(&cho, 0, sizeof cho);
  ASSERT_ERR(apns_channels_open(&loop, &channels, &cho, err, sizeof err), APNS_EINVAL);
  assert_has(err, "apns_channels_options.size is 0: initialize it with apns_channels_options_init()");
  /* The client options the channels share are read by the rule as well. */
  apns_channels_options_init(&cho);
  cho.client_options = &cl;
  ASSERT_ERR(apns_channels_open(&loop, &channels, &cho, err, sizeof err), APNS_EINVAL);
  assert_has(err, "apns_client_options.size is 0");

  /* Per-request options have no errbuf: the call refuses them, and a correct one passes the same check. */
  apns_send_request sr;
  apns_send_options so;
  memset(&so, 0, sizeof so);
  ASSERT_ERR(apns_build_send_request("com.example.app", TOKEN, &so, 0, &sr, sizeof sr), APNS_EINVAL);
  apns_send_options_init(&so);
  ASSERT_OK(apns_build_send_request("com.example.app", TOKEN, &so, 0, &sr, sizeof sr));
  apns_broadcast_request br;
  apns_broadcast_options bo;
  memset(&bo, 0, sizeof bo);
  ASSERT_ERR(apns_build_broadcast_request("com.example.app", "YWJj", &bo, &br, sizeof br), APNS_EINVAL);
  apns_broadcast_options_init(&bo);
  ASSERT_OK(apns_build_broadcast_request("com.example.app", "YWJj", &bo, &br, sizeof br));

  ASSERT_EQ(uv_loop_close(&loop), 0);
  ASSERT_EQ(test_alloc_live(), live);
}

/* A struct of a later libapns: this one's layout, then fields this library has never heard of. */
typedef struct {
  apns_pool_options known;
  uint64_t newer[4];
} newer_pool_options;

TEST(abi_newer_program_zero_tail_accepted_nonzero_refused) {
  uv_loop_t loop;
  char err[256] = "", want[128];
  long live = test_alloc_live();
  ASSERT_EQ(uv_loop_init(&loop), 0);

  newer_pool_options big;
  memset(&big, 0, sizeof big);
  apns_pool_options_init(&big.known);
  big.known.size = sizeof big;
  big.known.host = "127.0.0.1";
  big.known.port = 9; /* nothing listens: the pool keeps trying, which is all this needs */
  apns_pool *pool = NULL;
  ASSERT_OK(apns_pool_open(&loop, &pool, (const apns_pool_options *)&big, err, sizeof err));
  ASSERT_OK(apns_pool_close(pool, 0, NULL));
  uv_run(&loop, UV_RUN_DEFAULT);

  big.newer[1] = 42;
  pool = NULL;
  ASSERT_ERR(apns_pool_open(&loop, &pool, (const apns_pool_options *)&big, err, sizeof err), APNS_EINVAL);
  snprintf(want, sizeof want, "apns_pool_options from a newer libapns (field at offset %zu set)",
           offsetof(newer_pool_options, newer[1]));
  assert_has(err, want);
  ASSERT_NULL(pool);

  /* The same for the per-send options, read on the hot path. */
  struct {
    apns_send_options known;
    unsigned char newer[16];
  } so;
  memset(&so, 0, sizeof so);
  apns_send_options_init(&so.known);
  so.known.size = sizeof so;
  so.known.priority = 5;
  apns_send_request sr;
  ASSERT_OK(apns_build_send_request("com.example.app", TOKEN, &so.known, 0, &sr, sizeof sr));
  ASSERT_STREQ(sr.priority, "5");
  so.newer[15] = 1;
  ASSERT_ERR(apns_build_send_request("com.example.app", TOKEN, &so.known, 0, &sr, sizeof sr), APNS_EINVAL);

  ASSERT_EQ(uv_loop_close(&loop), 0);
  ASSERT_EQ(test_alloc_live(), live);
}

/* ---- an older program, against a real pool and the in-process mock ---- */

typedef struct {
  int calls, err, status;
} outcome;

static void on_done(int err, const apns_response *res, void *data) {
  outcome *o = data;
  o->calls++;
  o->err = err;
  o->status = res->status;
}

/* Runs the loop a turn at a time until pred holds, failing after a generous while. */
static void run_until(uv_loop_t *loop, int (*pred)(void *), void *arg) {
  uint64_t give_up = uv_now(loop) + 20000 * (uint64_t)test_time_factor();
  while (!pred(arg)) {
    if (uv_run(loop, UV_RUN_ONCE) == 0 && !pred(arg)) test__fail(__FILE__, __LINE__, "the loop ran dry");
    if (uv_now(loop) > give_up) test__fail(__FILE__, __LINE__, "gave up waiting");
  }
}

static int two_up(void *arg) {
  apns_pool_stats st;
  apns_pool_get_stats(arg, &st, sizeof st);
  return st.connections_up == 2;
}

static int answered(void *arg) {
  return ((outcome *)arg)->calls > 0;
}

TEST(abi_older_program_gets_defaults) {
  uv_loop_t loop;
  apns__certgen_result certs;
  apns_mock_options mo;
  char err[256] = "";
  long live = test_alloc_live();
  ASSERT_EQ(uv_loop_init(&loop), 0);
  fx_certs(&certs, 0);
  fx_mock_options(&mo, &certs, 1);
  mo.delay_ms = 100; /* each answer comes this late: a 1 ms timeout read from garbage would expire first */
  apns_mock *mock = fx_mock_start(&loop, &mo);

  /* An older header's pool options ended with authority. What follows in memory is garbage: read as fields, it
   * would ask for 0x5a5a5a5a connections (refused: more than 1000), a queue limit, callbacks at wild addresses. */
  apns_tls_options tls;
  unsigned char buf[sizeof(apns_pool_options)];
  apns_pool_options *po = (apns_pool_options *)(void *)buf;
  memset(buf, GARBAGE, sizeof buf);
  po->size = offsetof(apns_pool_options, authority) + sizeof po->authority;
  po->host = "127.0.0.1";
  po->port = (uint16_t)apns_mock_port(mock);
  po->tls = fx_tls_client(&tls, &certs);
  po->authority = NULL;
  apns_pool *pool = NULL;
  ASSERT_OK(apns_pool_open(&loop, &pool, po, err, sizeof err));
  /* The default of 2 connections: both come up, no more. */
  run_until(&loop, two_up, pool);
  apns_pool_stats st;
  apns_pool_get_stats(pool, &st, sizeof st);
  ASSERT_EQ(st.connections_up, 2);

  /* An older request without timeout_ms, garbage 1 ms where the field now is: the default 10 s applies, and the
   * answer 100 ms later arrives. */
  unsigned char rbuf[sizeof(apns_request)];
  apns_request *req = (apns_request *)(void *)rbuf;
  memset(rbuf, GARBAGE, sizeof rbuf);
  uint64_t one_ms = 1;
  memcpy(rbuf + offsetof(apns_request, timeout_ms), &one_ms, sizeof one_ms);
  apns_header h[] = {{"apns-topic", "com.example.app"}};
  req->size = offsetof(apns_request, body_len) + sizeof req->body_len;
  req->method = NULL;
  req->path = "/3/device/" TOKEN;
  req->headers = h;
  req->num_headers = 1;
  req->body = "{\"aps\":{\"alert\":\"hi\"}}";
  req->body_len = strlen(req->body);
  outcome out = {0};
  ASSERT_OK(apns_pool_post(pool, req, on_done, &out));
  run_until(&loop, answered, &out);
  ASSERT_OK(out.err);
  ASSERT_EQ(out.status, 200);

  /* The control: the same request with this header's size does read the 1 ms, and times out. */
  req->size = sizeof(apns_request);
  outcome late = {0};
  ASSERT_OK(apns_pool_post(pool, req, on_done, &late));
  run_until(&loop, answered, &late);
  ASSERT_ERR(late.err, APNS_ETIMEDOUT);

  ASSERT_OK(apns_pool_close(pool, 0, NULL));
  fx_mock_stop_and_close_loop(&loop, mock);
  apns__certgen_free(&certs);
  ASSERT_EQ(test_alloc_live(), live);
}

/* ---- structs the library fills ---- */

static int conn_ready(void *arg) {
  return apns_conn_get_state(arg) == APNS_CONN_READY;
}

TEST(abi_stats_written_no_further_than_size) {
  uv_loop_t loop;
  apns__certgen_result certs;
  apns_mock_options mo;
  apns_tls_options tls;
  char err[256] = "";
  long live = test_alloc_live();
  ASSERT_EQ(uv_loop_init(&loop), 0);
  fx_certs(&certs, 0);
  fx_mock_options(&mo, &certs, 1);
  apns_mock *mock = fx_mock_start(&loop, &mo);

  apns_pool_options po = APNS_POOL_OPTIONS_INIT;
  po.host = "127.0.0.1";
  po.port = (uint16_t)apns_mock_port(mock);
  po.tls = fx_tls_client(&tls, &certs);
  apns_pool *pool = NULL;
  ASSERT_OK(apns_pool_open(&loop, &pool, &po, err, sizeof err));
  apns_header h[] = {{"apns-topic", "com.example.app"}};
  apns_request req = APNS_REQUEST_INIT;
  req.path = "/3/device/" TOKEN;
  req.headers = h;
  req.num_headers = 1;
  req.body = "{}";
  req.body_len = 2;
  outcome out = {0};
  ASSERT_OK(apns_pool_post(pool, &req, on_done, &out));
  run_until(&loop, answered, &out);

  /* An older program's stats struct ended before retried: what lies past it is not touched. */
  const size_t older = offsetof(apns_pool_stats, retried);
  apns_pool_stats full;
  unsigned char buf[sizeof(apns_pool_stats) + 16];
  apns_pool_get_stats(pool, &full, sizeof full);
  ASSERT_UEQ(full.posted, 1);
  ASSERT_UEQ(full.accepted, 1);
  memset(buf, 0xcc, sizeof buf);
  apns_pool_get_stats(pool, (apns_pool_stats *)(void *)buf, older);
  ASSERT_MEMEQ(buf, &full, older);
  for (size_t i = older; i < sizeof buf; i++) ASSERT_EQ(buf[i], 0xcc);
  /* A newer program's bigger struct: this library's part written, the rest left as it was. */
  memset(buf, 0xcc, sizeof buf);
  apns_pool_get_stats(pool, (apns_pool_stats *)(void *)buf, sizeof buf);
  ASSERT_MEMEQ(buf, &full, sizeof full);
  for (size_t i = sizeof full; i < sizeof buf; i++) ASSERT_EQ(buf[i], 0xcc);
  /* A NULL pool or client: zeros, as far as the size goes. */
  memset(buf, 0xcc, sizeof buf);
  apns_pool_get_stats(NULL, (apns_pool_stats *)(void *)buf, older);
  for (size_t i = 0; i < sizeof buf; i++) ASSERT_EQ(buf[i], i < older ? 0 : 0xcc);
  memset(buf, 0xcc, sizeof buf);
  apns_client_get_stats(NULL, (apns_pool_stats *)(void *)buf, older);
  for (size_t i = 0; i < sizeof buf; i++) ASSERT_EQ(buf[i], i < older ? 0 : 0xcc);
  ASSERT_OK(apns_pool_close(pool, 0, NULL));

  /* A connection's stats. */
  apns_conn_options co = APNS_CONN_OPTIONS_INIT;
  co.host = "127.0.0.1";
  co.port = (uint16_t)apns_mock_port(mock);
  co.tls = &tls;
  apns_conn *conn = NULL;
  ASSERT_OK(apns_conn_open(&loop, &conn, &co, err, sizeof err));
  run_until(&loop, conn_ready, conn);
  const size_t cold = offsetof(apns_conn_stats, bytes_in);
  apns_conn_stats cfull;
  unsigned char cbuf[sizeof(apns_conn_stats) + 16];
  apns_conn_get_stats(conn, &cfull, sizeof cfull);
  ASSERT_EQ(cfull.state, APNS_CONN_READY);
  memset(cbuf, 0xcc, sizeof cbuf);
  apns_conn_get_stats(conn, (apns_conn_stats *)(void *)cbuf, cold);
  ASSERT_MEMEQ(cbuf, &cfull, cold); /* an idle connection: nothing moved in between */
  for (size_t i = cold; i < sizeof cbuf; i++) ASSERT_EQ(cbuf[i], 0xcc);
  ASSERT_OK(apns_conn_close(conn, NULL));

  fx_mock_stop_and_close_loop(&loop, mock);
  apns__certgen_free(&certs);
  ASSERT_EQ(test_alloc_live(), live);
}

TEST(abi_build_functions_check_the_size) {
  /* The headers point into these structs, built in place: a size smaller than this layout (the first) is refused
   * and nothing is written. */
  unsigned char buf[sizeof(apns_broadcast_request) + sizeof(apns_send_request) + sizeof(apns_channel_request)];
  memset(buf, 0xcc, sizeof buf);
  ASSERT_ERR(apns_build_send_request("com.example.app", TOKEN, NULL, 0, (apns_send_request *)(void *)buf,
                                     sizeof(apns_send_request) - 1),
             APNS_EINVAL);
  ASSERT_ERR(apns_build_broadcast_request("com.example.app", "YWJj", NULL, (apns_broadcast_request *)(void *)buf,
                                          sizeof(apns_broadcast_request) - 1),
             APNS_EINVAL);
  ASSERT_ERR(apns_build_channel_request(APNS_CHANNEL_LIST, "com.example.app", NULL, 0, NULL,
                                        (apns_channel_request *)(void *)buf, sizeof(apns_channel_request) - 1),
             APNS_EINVAL);
  for (size_t i = 0; i < sizeof buf; i++) ASSERT_EQ(buf[i], 0xcc);
  /* A newer program's bigger struct: filled, its tail untouched. */
  ASSERT_OK(apns_build_send_request("com.example.app", TOKEN, NULL, 0, (apns_send_request *)(void *)buf,
                                    sizeof(apns_send_request) + 8));
  ASSERT_STREQ(((apns_send_request *)(void *)buf)->path, "/3/device/" TOKEN);
  for (size_t i = sizeof(apns_send_request); i < sizeof buf; i++) ASSERT_EQ(buf[i], 0xcc);
}

/* ---- the soname ---- */

/* DT_SONAME of an ELF shared object, read from its dynamic section; "" when none. */
static void elf_soname(const char *path, char *out, size_t cap) {
  FILE *f = fopen(path, "rb");
  out[0] = '\0';
  ASSERT_NOT_NULL(f);
  ASSERT_EQ(fseek(f, 0, SEEK_END), 0);
  long len = ftell(f);
  ASSERT_GT(len, (long)sizeof(Elf64_Ehdr));
  unsigned char *img = malloc((size_t)len);
  ASSERT_NOT_NULL(img);
  rewind(f);
  ASSERT_EQ(fread(img, 1, (size_t)len, f), (size_t)len);
  fclose(f);
  Elf64_Ehdr eh;
  memcpy(&eh, img, sizeof eh);
  ASSERT_MEMEQ(eh.e_ident, ELFMAG, SELFMAG);
  ASSERT_EQ(eh.e_ident[EI_CLASS], ELFCLASS64);
  for (unsigned i = 0; i < eh.e_shnum; i++) {
    Elf64_Shdr sh, link;
    memcpy(&sh, img + eh.e_shoff + (size_t)i * eh.e_shentsize, sizeof sh);
    if (sh.sh_type != SHT_DYNAMIC) continue;
    memcpy(&link, img + eh.e_shoff + (size_t)sh.sh_link * eh.e_shentsize, sizeof link);
    for (size_t k = 0; k + sizeof(Elf64_Dyn) <= sh.sh_size; k += sizeof(Elf64_Dyn)) {
      Elf64_Dyn d;
      memcpy(&d, img + sh.sh_offset + k, sizeof d);
      if (d.d_tag == DT_SONAME) snprintf(out, cap, "%s", (const char *)img + link.sh_offset + d.d_un.d_val);
    }
  }
  free(img);
}

TEST(abi_soname_follows_the_policy) {
  char soname[128], want[128];
  /* 0.x: every minor release may break the ABI, so the soname carries it; from 1.0 the major alone. */
  if (APNS_VERSION_MAJOR == 0)
    snprintf(want, sizeof want, "libapns.so.0.%d", APNS_VERSION_MINOR);
  else
    snprintf(want, sizeof want, "libapns.so.%d", APNS_VERSION_MAJOR);
  elf_soname(APNS_SHARED_LIB, soname, sizeof soname);
  ASSERT_STREQ(soname, want);
}

TEST_SUITE(abi){TEST_ENTRY(abi_read_by_declared_size),
                TEST_ENTRY(abi_write_no_further_than_size),
                TEST_ENTRY(abi_init_macros_and_functions_agree),
                TEST_ENTRY(abi_size_zero_refused_naming_the_initializer),
                TEST_ENTRY(abi_newer_program_zero_tail_accepted_nonzero_refused),
                TEST_ENTRY(abi_older_program_gets_defaults),
                TEST_ENTRY(abi_stats_written_no_further_than_size),
                TEST_ENTRY(abi_build_functions_check_the_size),
                TEST_ENTRY(abi_soname_follows_the_policy),
                TEST_SUITE_END};

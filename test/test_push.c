/* The apns-push command, run as a child process: usage errors and exit codes, --dry-run output byte for byte,
 * bulk input (bad lines, blank lines, overlong lines, stdin as a pipe), and real sends against an in-process
 * apns-mock: accepted and rejected notifications, the headers the mock received against those --dry-run printed,
 * encrypted keys, token auth checked by the mock's JWT verifier, and a million-line run whose peak memory stays
 * bounded (back-pressure).
 *
 * The binary comes from APNS_PUSH_BIN (set by test/meson.build), else the build tree's path compiled in. No sleeps:
 * everything waits on the child's exit and on EOF of its pipes, on the test's own libuv loop. */
#include "alloc.h"
#include "bulk.h"
#include "fixture.h"
#include "jwt_verify.h"
#include "proxy_fixture.h"
#include "validate.h"

#include <apns.h>
#include <fcntl.h>
#include <jansson.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#define TOK "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define TOPIC "com.example.app"
#define RID "11111111-2222-4333-8444-555555555555"
#define CHAN "AAAAAAAAAAAAAAAAAAAAAA=="

static const char *push_bin(void) {
  const char *b = getenv("APNS_PUSH_BIN");
  return b && *b ? b : APNS_PUSH_BIN_DEFAULT;
}

/* ---- apns-push as a child process (fixture.h's fx_child) ---- */

/* The child's peak resident size so far, into the hwm_probe at c->data. Read while it runs: once it has exited
 * there is no memory to report, and getrusage's ru_maxrss for children also counts the forked copy of this
 * process before exec. */
typedef struct {
  long kb;
  int samples;
} hwm_probe;

static void sample_hwm(fx_child *c) {
  hwm_probe *h = c->data;
  char path[64], line[256];
  if (c->exited) return;
  snprintf(path, sizeof path, "/proc/%d/status", c->proc.pid);
  FILE *f = fopen(path, "r");
  if (f == NULL) return;
  while (fgets(line, sizeof line, f)) {
    long kb;
    if (sscanf(line, "VmHWM: %ld kB", &kb) == 1) {
      if (kb > h->kb) h->kb = kb;
      h->samples++;
    }
  }
  fclose(f);
}

static void sample_hwm_on_stderr(fx_child *c, int from_stderr, const char *p, size_t n) {
  (void)p, (void)n;
  if (from_stderr) sample_hwm(c); /* the summary comes just before exit */
}

/* push_bin() then args (NULL-terminated), into argv (64 entries). */
static const char *const *push_argv(const char **argv, const char *const *args) {
  size_t n = 0;
  argv[n++] = push_bin();
  for (; args[n - 1]; n++) {
    ASSERT_LT(n, 63);
    argv[n] = args[n - 1];
  }
  argv[n] = NULL;
  return argv;
}

/* Starts apns-push with args, stdin from stdin_file (NULL: /dev/null, or c->input when set), and env (NULL:
 * inherited). */
static void push_start(fx_child *c, uv_loop_t *loop, const char *const *args, const char *stdin_file, char **env) {
  const char *argv[64];
  c->stdin_file = stdin_file;
  c->env = env;
  fx_child_start(c, loop, push_argv(argv, args));
}

/* Runs the command to its end on a loop of its own (no server). Returns the exit status. */
static int run_push(fx_child *c, const char *const *args, const char *stdin_file) {
  const char *argv[64];
  c->stdin_file = stdin_file;
  return fx_child_run(c, push_argv(argv, args));
}

static int count_lines(const char *s) {
  int n = 0;
  for (; *s; s++) n += *s == '\n';
  return n;
}

#define ARGS(...) ((const char *const[]){__VA_ARGS__, NULL})

/* ---- usage and exit codes ---- */

TEST(push_help_and_version) {
  fx_child c;
  memset(&c, 0, sizeof c);
  ASSERT_EQ(run_push(&c, ARGS("--help"), NULL), 0);
  ASSERT_TRUE(strstr(fx_child_out(&c), "--bulk FILE|-") != NULL);
  ASSERT_TRUE(strstr(fx_child_out(&c), "--key-pass-env VAR") != NULL);
  ASSERT_TRUE(strstr(fx_child_out(&c), "--channel ID [PAYLOAD_JSON]") != NULL);
  ASSERT_TRUE(strstr(fx_child_out(&c), "channel create [--storage none|latest]") != NULL);
  ASSERT_STREQ(fx_child_err(&c), "");
  fx_child_free(&c);
  memset(&c, 0, sizeof c);
  ASSERT_EQ(run_push(&c, ARGS("--version"), NULL), 0);
  ASSERT_TRUE(strncmp(fx_child_out(&c), "apns-push " APNS_VERSION_STRING " ",
                      strlen("apns-push " APNS_VERSION_STRING " ")) == 0);
  fx_child_free(&c);
}

TEST(push_usage_errors_exit_2) {
#define missing "/nonexistent/dir/file.pem"
#define unwritable "/nonexistent/dir/results.jsonl"
  static const struct {
    const char *args[12];
    const char *text; /* in stderr */
  } cases[] = {
      {{"--bogus", TOK}, "unknown option --bogus"},
      {{"--topic", TOPIC, "--alert", "x"}, "no device token"},
      {{"--topic", TOPIC, TOK}, "no payload"},
      {{"--alert", "x", "--dry-run", TOK}, "--topic is required"},
      {{"--topic", "has space", "--alert", "x", TOK}, "--topic \"has space\""},
      {{"--topic", TOPIC, "--alert", "x", "xyz"}, "TOKEN \"xyz\": device token is not an even-length hex string"},
      {{"--topic", TOPIC, "--priority", "7", "--alert", "x", TOK}, "--priority: want 10, 5 or 1"},
      {{"--topic", TOPIC, "--push-type", "nope", "--alert", "x", TOK}, "--push-type \"nope\": unknown push type"},
      {{"--topic", TOPIC, "--push-type", "background", "--priority", "10", "--alert", "x", TOK},
       "--priority 10 does not go with --push-type background"},
      {{"--dry-run", "--topic", TOPIC, "--data", "k=not json", TOK},
       "--data k=not json: the value is not one JSON value"},
      {{"--topic", TOPIC, "--alert", "x", TOK, "{\"aps\":{}}"}, "not both"},
      {{"--dry-run", "--topic", TOPIC, TOK, "{\"aps\":"}, "PAYLOAD_JSON: payload is not valid JSON"},
      /* A name with CR/LF can match no certificate: a usage error, not a run that waits out its deadline. */
      {{"--dry-run", "--verify-name", "local\r\nhost", "--topic", TOPIC, "--alert", "x", TOK},
       "--verify-name \"local\\r\\nhost\": not a host name"},
      {{"--dry-run", "--verify-name", "", "--topic", TOPIC, "--alert", "x", TOK},
       "--verify-name \"\": not a host name"},
      /* Whitespace between two numbers is no separator: not "[12]". */
      {{"--dry-run", "--topic", TOPIC, TOK, "{\"aps\":{},\"a\":[1 2]}"}, "PAYLOAD_JSON: payload is not valid JSON"},
      {{"--topic", TOPIC, "--timeout", "0", "--alert", "x", TOK}, "--timeout: want seconds"},
      {{"--topic", TOPIC, "--connections", "0", "--alert", "x", TOK}, "--connections: want a whole number"},
      {{"--topic", TOPIC, "--host", "h:99999", "--alert", "x", TOK}, "--host port"},
      {{"--topic", TOPIC, "--production", "--development", "--alert", "x", TOK}, "choose one server"},
      {{"--topic", TOPIC, "--alert", "x", TOK}, "no authentication"},
      {{"--topic", TOPIC, "--cert", missing, "--alert", "x", TOK},
       "--cert /nonexistent/dir/file.pem: No such file or directory"},
      {{"--topic", TOPIC, "--p8", missing, "--alert", "x", TOK}, "--p8 /nonexistent/dir/file.pem needs --key-id"},
      {{"--topic", TOPIC, "--bulk", missing}, "--bulk /nonexistent/dir/file.pem: No such file or directory"},
      {{"--topic", TOPIC, "--bulk", "-", TOK}, "--bulk takes no TOKEN"},
      {{"--topic", TOPIC, "--key-pass-env", "APNS_PUSH_TEST_UNSET_VAR", "--alert", "x", TOK},
       "the environment variable APNS_PUSH_TEST_UNSET_VAR is not set"},
      {{"--topic", TOPIC, "--dry-run", "--results", unwritable, "--alert", "x", TOK},
       "--results /nonexistent/dir/results.jsonl: No such file or directory"},
      {{"--topic", TOPIC, "--dry-run", TOK, "{\"aps\":{},\"x\":\"unterminated}"}, "PAYLOAD_JSON: payload is not"},
      {{"--topic", TOPIC, "--timeout"}, "--timeout needs a value"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    fx_child c;
    memset(&c, 0, sizeof c);
    int rc = run_push(&c, cases[i].args, NULL);
    if (rc != 2 || strstr(fx_child_err(&c), cases[i].text) == NULL)
      test__fail(__FILE__, __LINE__, "case %zu: exit %d, want 2 and \"%s\" in stderr:\n%s", i, rc, cases[i].text,
                 fx_child_err(&c));
    ASSERT_STREQ(fx_child_out(&c), "");
    fx_child_free(&c);
  }
}

TEST(push_payload_too_large_exit_2) {
  /* 4096 bytes is the limit for alert and 5120 for voip: a 4500-byte payload is refused for one and not the
   * other, before anything connects. */
  char *json = malloc(5000);
  ASSERT_NOT_NULL(json);
  int n = snprintf(json, 5000, "{\"aps\":{\"alert\":\"");
  memset(json + n, 'x', 4500);
  strcpy(json + n + 4500, "\"}}");
  fx_child c;
  memset(&c, 0, sizeof c);
  ASSERT_EQ(run_push(&c, ARGS("--dry-run", "--topic", TOPIC, TOK, json), NULL), 2);
  ASSERT_TRUE(strstr(fx_child_err(&c), "payload: 4520 bytes, more than the 4096 allowed for push type alert") !=
              NULL);
  fx_child_free(&c);
  memset(&c, 0, sizeof c);
  ASSERT_EQ(run_push(&c, ARGS("--dry-run", "--topic", TOPIC, "--push-type", "voip", TOK, json), NULL), 0);
  ASSERT_EQ(count_lines(fx_child_out(&c)), 1);
  fx_child_free(&c);
  free(json);
}

/* ---- --dry-run, byte for byte ---- */

static void dry_run_case(const char *const *args, const char *want) {
  fx_child c;
  memset(&c, 0, sizeof c);
  int rc = run_push(&c, args, NULL);
  if (rc != 0) test__fail(__FILE__, __LINE__, "exit %d:\n%s", rc, fx_child_err(&c));
  ASSERT_STREQ(fx_child_out(&c), want);
  ASSERT_STREQ(fx_child_err(&c), "");
  fx_child_free(&c);
}

TEST(push_dry_run_built_payload) {
  dry_run_case(ARGS("--dry-run", "--topic", TOPIC, "--alert", "Hello", "--title", "Hi", "--badge", "0", "--sound",
                    "default", "--category", "C", "--thread-id", "t1", "--mutable-content", "--data", "id=42",
                    "--data", "who=\"Ann\"", TOK),
               "{\"path\":\"/3/device/" TOK "\",\"headers\":{\"apns-push-type\":\"alert\",\"apns-topic\":\"" TOPIC
               "\",\"apns-priority\":\"10\"},\"payload\":{\"aps\":{\"alert\":{\"title\":\"Hi\",\"body\":\"Hello\"},"
               "\"badge\":0,\"sound\":\"default\",\"thread-id\":\"t1\",\"category\":\"C\",\"mutable-content\":1},"
               "\"id\":42,\"who\":\"Ann\"}}\n");
  /* A plain alert, with every request header. */
  dry_run_case(ARGS("--dry-run", "--topic", TOPIC, "--alert", "Hi \"you\"", "--priority", "5", "--expiration",
                    "1700000000", "--collapse-id", "grp-1", "--apns-id", "ABCDEF01-2345-4678-89AB-CDEF01234567", TOK),
               "{\"path\":\"/3/device/" TOK "\",\"headers\":{\"apns-push-type\":\"alert\",\"apns-topic\":\"" TOPIC
               "\",\"apns-priority\":\"5\",\"apns-expiration\":\"1700000000\",\"apns-collapse-id\":\"grp-1\","
               "\"apns-id\":\"abcdef01-2345-4678-89ab-cdef01234567\"},\"payload\":{\"aps\":{\"alert\":\"Hi "
               "\\\"you\\\"\"}}}\n");
}

TEST(push_dry_run_json_argument) {
  /* Whitespace outside strings goes; the rest (key order, the number's spelling, escapes) stays as written. */
  dry_run_case(ARGS("--dry-run", "--topic", TOPIC, TOK,
                    "{ \"aps\" : { \"alert\" : \"a  b\" },\n  \"n\": 0.8 , \"s\":\"x\\\" y\", \"big\": 1e3 }"),
               "{\"path\":\"/3/device/" TOK "\",\"headers\":{\"apns-push-type\":\"alert\",\"apns-topic\":\"" TOPIC
               "\",\"apns-priority\":\"10\"},\"payload\":{\"aps\":{\"alert\":\"a  b\"},\"n\":0.8,\"s\":\"x\\\" "
               "y\",\"big\":1e3}}\n");
  /* content-available alone: background, priority 5 (as the client decides). */
  dry_run_case(ARGS("--dry-run", "--topic", TOPIC, TOK, "{\"aps\":{\"content-available\":1},\"sync\":true}"),
               "{\"path\":\"/3/device/" TOK
               "\",\"headers\":{\"apns-push-type\":\"background\",\"apns-topic\":\"" TOPIC
               "\",\"apns-priority\":\"5\"},\"payload\":{\"aps\":{\"content-available\":1},\"sync\":true}}\n");
}

TEST(push_dry_run_push_type_suffix) {
  const char *head = "{\"path\":\"/3/device/" TOK "\",\"headers\":{";
  char want[1024];
  snprintf(want, sizeof want,
           "%s\"apns-push-type\":\"voip\",\"apns-topic\":\"" TOPIC ".voip\",\"apns-priority\":\"10\"},\"payload\":"
           "{\"aps\":{}}}\n",
           head);
  dry_run_case(ARGS("--dry-run", "--topic", TOPIC, "--push-type", "voip", TOK, "{\"aps\":{}}"), want);
  /* A topic that already has the suffix keeps one. */
  dry_run_case(ARGS("--dry-run", "--topic", TOPIC ".voip", "--push-type", "voip", TOK, "{\"aps\":{}}"), want);
  snprintf(want, sizeof want,
           "%s\"apns-push-type\":\"liveactivity\",\"apns-topic\":\"" TOPIC ".push-type.liveactivity\","
           "\"apns-priority\":\"10\"},\"payload\":{\"aps\":{\"event\":\"update\",\"timestamp\":1}}}\n",
           head);
  dry_run_case(ARGS("--dry-run", "--topic", TOPIC, "--push-type", "liveactivity", TOK,
                    "{\"aps\":{\"event\":\"update\",\"timestamp\":1}}"),
               want);
}

#define DRY(tok, type, topic, prio, extra, payload)                                                                  \
  "{\"path\":\"/3/device/" tok "\",\"headers\":{\"apns-push-type\":\"" type "\",\"apns-topic\":\"" topic             \
  "\",\"apns-priority\":\"" prio "\"" extra "},\"payload\":" payload "}\n"

static const char bulk_input[] =
    "{\"token\":\"" TOK "\",\"payload\":{\"aps\": {\"alert\": \"one\"}}}\n" /* 1 */
    "\n"                                                                    /* 2 blank */
    "{\"token\":\"" TOK "\"}\n"                                             /* 3 default */
    "not json\n"                                                            /* 4 bad */
    "{\"token\":\"xyz\",\"payload\":{\"aps\":{}}}\n"                        /* 5 bad */
    "{\"token\":\"" TOK "\",\"payload\":{\"aps\":{\"alert\":\"v\"},\"f\":0.10},\"push_type\":\"voip\","
    "\"priority\":5,\"topic\":\"com.other\",\"expiration\":17,\"collapse_id\":\"k\","
    "\"apns_id\":\"11111111-2222-4333-8444-555555555555\"}\r\n"                                 /* 6 */
    "{\"token\":\"" TOK "\",\"payload\":{\"aps\":{\"alert\":\"x\"}},\"bogus\":1}\n"             /* 7 bad */
    "{\"token\":\"" TOK "\",\"payload\":[1]}\n"                                                 /* 8 bad */
    "{\"token\":\"" TOK "\",\"payload\":{\"aps\":{\"alert\":\"x\"}},\"priority\":\"high\"}\n"   /* 9 bad */
    "{\"token\":\"" TOK "\",\"payload\":{\"aps\":{\"content-available\":1}},\"priority\":10}\n" /* 10 bad */
    "  \t \n"                                                                                   /* 11 blank */
    "{\"token\":\"" TOK "\",\"payload\":{\"aps\":{\"alert\":\"last, no newline\"}}}";           /* 12 */

static const char bulk_want[] = DRY(TOK, "alert", TOPIC, "10", "", "{\"aps\":{\"alert\":\"one\"}}")
    DRY(TOK, "alert", TOPIC, "10", "", "{\"aps\":{\"alert\":\"dflt\"}}") DRY(
        TOK, "voip", "com.other.voip", "5",
        ",\"apns-expiration\":\"17\",\"apns-collapse-id\":\"k\",\"apns-id\":\"11111111-2222-4333-8444-555555555555\"",
        "{\"aps\":{\"alert\":\"v\"},\"f\":0.10}")
        DRY(TOK, "alert", TOPIC, "10", "", "{\"aps\":{\"alert\":\"last, no newline\"}}");

static void check_bulk_stderr(const char *err) {
  static const char *want[] = {
      "apns-push: line 4: not JSON: ",
      "apns-push: line 5: bad token: device token is not an even-length hex string\n",
      "apns-push: line 7: unknown field \"bogus\"",
      "apns-push: line 8: \"payload\" must be a JSON object\n",
      "apns-push: line 9: \"priority\" must be 10, 5 or 1\n",
      "apns-push: line 10: priority must be 1, 5 or 10\n",
  };
  for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
    if (strstr(err, want[i]) == NULL) test__fail(__FILE__, __LINE__, "no \"%s\" in stderr:\n%s", want[i], err);
  ASSERT_TRUE(strstr(err, "line 2:") == NULL && strstr(err, "line 11:") == NULL);
}

TEST(push_dry_run_bulk) {
  const char *path = fx_tmp_file("in.jsonl", bulk_input);
  fx_child c;
  memset(&c, 0, sizeof c);
  ASSERT_EQ(run_push(&c, ARGS("--dry-run", "--topic", TOPIC, "--alert", "dflt", "--bulk", path), NULL), 1);
  ASSERT_STREQ(fx_child_out(&c), bulk_want);
  check_bulk_stderr(fx_child_err(&c));
  ASSERT_TRUE(strstr(fx_child_err(&c), "apns-push: dry run: 4 requests, 6 bad lines\n") != NULL);
  fx_child_free(&c);

  /* Only good lines: exit 0. */
  path = fx_tmp_file("good.jsonl", "{\"token\":\"" TOK "\"}\n{\"token\":\"" TOK "\"}\n");
  memset(&c, 0, sizeof c);
  ASSERT_EQ(run_push(&c, ARGS("--dry-run", "--topic", TOPIC, "--badge", "1", "--bulk", path), NULL), 0);
  ASSERT_EQ(count_lines(fx_child_out(&c)), 2);
  fx_child_free(&c);
}

TEST(push_dry_run_bulk_stdin) {
  /* The same input through a pipe on stdin (the uv_pipe path), and redirected from the file (uv_fs_read on fd 0). */
  fx_child c;
  memset(&c, 0, sizeof c);
  c.input = bulk_input;
  ASSERT_EQ(run_push(&c, ARGS("--dry-run", "--topic", TOPIC, "--alert", "dflt", "--bulk", "-"), NULL), 1);
  ASSERT_STREQ(fx_child_out(&c), bulk_want);
  check_bulk_stderr(fx_child_err(&c));
  fx_child_free(&c);
  const char *path = fx_tmp_file("in.jsonl", bulk_input);
  memset(&c, 0, sizeof c);
  ASSERT_EQ(run_push(&c, ARGS("--dry-run", "--topic", TOPIC, "--alert", "dflt", "--bulk", "-"), path), 1);
  ASSERT_STREQ(fx_child_out(&c), bulk_want);
  fx_child_free(&c);
}

TEST(push_dry_run_bulk_long_line) {
  /* A 100 000-byte line is reported and skipped whole; the lines around it go through. */
  size_t big = 100000;
  char *text = malloc(big + 400);
  ASSERT_NOT_NULL(text);
  int n = snprintf(text, 200, "{\"token\":\"" TOK "\"}\n{\"token\":\"" TOK "\",\"payload\":{\"x\":\"");
  memset(text + n, 'y', big);
  strcpy(text + n + big, "\"}}\n{\"token\":\"" TOK "\"}\n");
  const char *path = fx_tmp_file("long.jsonl", text);
  free(text);
  fx_child c;
  memset(&c, 0, sizeof c);
  ASSERT_EQ(run_push(&c, ARGS("--dry-run", "--topic", TOPIC, "--alert", "a", "--bulk", path), NULL), 1);
  ASSERT_EQ(count_lines(fx_child_out(&c)), 2);
  ASSERT_TRUE(strstr(fx_child_err(&c), "apns-push: line 2: longer than 65536 bytes: skipped\n") != NULL);
  ASSERT_TRUE(strstr(fx_child_err(&c), "dry run: 2 requests, 1 bad lines") != NULL);
  fx_child_free(&c);
}

/* ---- keys and certificates (no server needed: they load before anything connects) ---- */

static const char *cert_dir(apns__certgen_result *certs) {
  static char dir[600];
  char err[256] = "";
  snprintf(dir, sizeof dir, "%s/certs", test_tmpdir());
  ASSERT_EQ(mkdir(dir, 0700), 0);
  fx_certs(certs, 0);
  if (apns__certgen_write_dir(dir, certs, err, sizeof err) != 0) test__fail(__FILE__, __LINE__, "%s", err);
  return dir;
}

static char *path_in(const char *dir, const char *name) {
  static char paths[8][700];
  static int next;
  char *p = paths[next++ % 8];
  snprintf(p, 700, "%s/%s", dir, name);
  return p;
}

TEST(push_bad_key_file_exit_2) {
  apns__certgen_result certs;
  const char *dir = cert_dir(&certs);
  const char *junk = fx_tmp_file("junk-key.pem", "-----BEGIN EC PRIVATE KEY-----\nnot base64 at all\n"
                                                 "-----END EC PRIVATE KEY-----\n");
  fx_child c;
  memset(&c, 0, sizeof c);
  ASSERT_EQ(run_push(&c,
                     ARGS("--host", "127.0.0.1:9", "--cert", path_in(dir, "client.pem"), "--key", junk, "--topic",
                          TOPIC, "--alert", "x", TOK),
                     NULL),
            2);
  if (strstr(fx_child_err(&c), junk) == NULL) test__fail(__FILE__, __LINE__, "no %s in:\n%s", junk, fx_child_err(&c));
  ASSERT_TRUE(strstr(fx_child_err(&c), "APNS_EBADKEY") != NULL);
  ASSERT_STREQ(fx_child_out(&c), "");
  fx_child_free(&c);

  /* A certificate file that is not one. */
  memset(&c, 0, sizeof c);
  ASSERT_EQ(run_push(&c,
                     ARGS("--host", "127.0.0.1:9", "--cert", junk, "--key", path_in(dir, "client-key.pem"), "--topic",
                          TOPIC, "--alert", "x", TOK),
                     NULL),
            2);
  ASSERT_TRUE(strstr(fx_child_err(&c), junk) != NULL);
  fx_child_free(&c);

  /* A .p8 that is not a key. */
  memset(&c, 0, sizeof c);
  ASSERT_EQ(run_push(&c,
                     ARGS("--host", "127.0.0.1:9", "--p8", junk, "--key-id", "ABC123DEFG", "--team-id", "DEF123GHIJ",
                          "--topic", TOPIC, "--alert", "x", TOK),
                     NULL),
            2);
  ASSERT_TRUE(strstr(fx_child_err(&c), junk) != NULL);
  fx_child_free(&c);
  apns__certgen_free(&certs);
}

/* ---- against apns-mock, in this process ---- */

typedef struct {
  uv_loop_t loop;
  apns__certgen_result certs;
  const char *dir;
  apns_mock *mock;
  char hostport[32];
  /* the hook's record of the last request */
  char last[8192];
  int requests;
  apns__jwt_verifier *verifier;
  int jwt_valid, jwt_bad;
} srv;

static void record_hook(void *data, apns_mock_request *req) {
  srv *s = data;
  s->requests++;
  /* The request as a --dry-run line would show it (headers in arrival order, minus authorization). */
  size_t n = (size_t)snprintf(s->last, sizeof s->last, "{\"path\":\"%s\",\"headers\":{", req->path);
  int first = 1, authorized = 0;
  for (size_t i = 0; i < req->num_headers; i++) {
    if (strcmp(req->headers[i].name, "authorization") == 0) {
      const char *v = req->headers[i].value;
      authorized = 1;
      int st = strncmp(v, "bearer ", 7) == 0 && s->verifier
                   ? apns__jwt_verify(s->verifier, v + 7, strlen(v + 7), NULL)
                   : APNS__JWT_MALFORMED;
      if (st == APNS__JWT_VALID) {
        s->jwt_valid++;
      } else {
        s->jwt_bad++;
        req->status = 403;
        req->reason = "InvalidProviderToken";
      }
      continue;
    }
    n += (size_t)snprintf(s->last + n, sizeof s->last - n, "%s\"%s\":\"%s\"", first ? "" : ",", req->headers[i].name,
                          req->headers[i].value);
    first = 0;
  }
  n += (size_t)snprintf(s->last + n, sizeof s->last - n, "},\"payload\":%.*s}\n", (int)req->body_len,
                        (const char *)req->body);
  if (s->verifier && !authorized) { /* token auth, but no authorization header */
    req->status = 403;
    req->reason = "MissingProviderToken";
  }
}

/* tweak, when set, changes the mock's options before it starts (faults, hostile answers). */
static void srv_start_with(srv *s, int client_auth, int hook, void (*tweak)(apns_mock_options *)) {
  memset(s, 0, sizeof *s);
  ASSERT_EQ(uv_loop_init(&s->loop), 0);
  s->dir = cert_dir(&s->certs);
  apns_mock_options o;
  fx_mock_options(&o, &s->certs, client_auth);
  o.bad_prefix = "bad";
  o.unregistered_prefix = "dead";
  if (hook) {
    o.on_request = record_hook;
    o.data = s;
  }
  if (tweak) tweak(&o);
  s->mock = fx_mock_start(&s->loop, &o);
  snprintf(s->hostport, sizeof s->hostport, "127.0.0.1:%d", apns_mock_port(s->mock));
}

static void srv_start(srv *s, int client_auth, int hook) {
  srv_start_with(s, client_auth, hook, NULL);
}

/* Runs apns-push against the mock until it exits. */
static int srv_push(srv *s, fx_child *c, const char *const *args, const char *stdin_file, char **env) {
  push_start(c, &s->loop, args, stdin_file, env);
  fx_run_until(&s->loop, &c->done);
  if (c->term_signal)
    test__fail(__FILE__, __LINE__, "apns-push died of signal %d:\n%s", c->term_signal, fx_child_err(c));
  return (int)c->status;
}

static void srv_stop(srv *s, apns_mock_stats *st) {
  if (st) apns_mock_get_stats(s->mock, st);
  fx_mock_stop_and_close_loop(&s->loop, s->mock);
  apns__jwt_verifier_free(s->verifier);
  apns__certgen_free(&s->certs);
}

#define CONN(s)                                                                                                      \
  "--host", (s)->hostport, "--verify-name", "localhost", "--ca", path_in((s)->dir, "ca.pem"), "--topic", TOPIC
#define CERT(s) "--cert", path_in((s)->dir, "client.pem"), "--key", path_in((s)->dir, "client-key.pem")

TEST(push_send_accepted_as_dry_run_says) {
  srv s;
  srv_start(&s, 1, 1);
  const char *const send[] = {CONN(&s),
                              CERT(&s),
                              "--alert",
                              "Hello",
                              "--badge",
                              "2",
                              "--collapse-id",
                              "c",
                              "--expiration",
                              "0",
                              "--apns-id",
                              "11111111-2222-4333-8444-555555555555",
                              TOK,
                              NULL};
  fx_child c;
  memset(&c, 0, sizeof c);
  int rc = srv_push(&s, &c, send, NULL, NULL);
  if (rc != 0) test__fail(__FILE__, __LINE__, "exit %d:\n%s", rc, fx_child_err(&c));
  ASSERT_EQ(s.requests, 1);
  /* One result line, 200, the apns-id we chose echoed. */
  const char *o = fx_child_out(&c);
  ASSERT_EQ(count_lines(o), 1);
  ASSERT_EQ(strncmp(o,
                    "{\"line\":1,\"token\":\"" TOK "\",\"apns_id\":\"11111111-2222-4333-8444-555555555555\","
                    "\"status\":200,\"reason\":null,\"timestamp\":null,\"attempts\":1,\"latency_ms\":",
                    strlen("{\"line\":1,\"token\":\"" TOK "\",\"apns_id\":\"11111111-2222-4333-8444-555555555555\","
                           "\"status\":200,\"reason\":null,\"timestamp\":null,\"attempts\":1,\"latency_ms\":")),
            0);
  ASSERT_TRUE(strstr(fx_child_err(&c), "1 notifications in ") != NULL);
  ASSERT_TRUE(strstr(fx_child_err(&c), "1 accepted, 0 rejected, 0 failed, 0 bad lines") != NULL);
  ASSERT_TRUE(strstr(fx_child_err(&c), "latency: p50 ") != NULL);
  fx_child_free(&c);

  /* What the mock received is what --dry-run prints for the same command. */
  const char *const dry[] = {"--dry-run",
                             CONN(&s),
                             "--alert",
                             "Hello",
                             "--badge",
                             "2",
                             "--collapse-id",
                             "c",
                             "--expiration",
                             "0",
                             "--apns-id",
                             "11111111-2222-4333-8444-555555555555",
                             TOK,
                             NULL};
  memset(&c, 0, sizeof c);
  ASSERT_EQ(srv_push(&s, &c, dry, NULL, NULL), 0);
  ASSERT_STREQ(fx_child_out(&c), s.last);
  fx_child_free(&c);
  ASSERT_EQ(s.requests, 1);
  srv_stop(&s, NULL);
}

TEST(push_bulk_rejected_and_dead_tokens) {
  srv s;
  srv_start(&s, 1, 0);
  /* 3 good, 2 BadDeviceToken, 2 Unregistered, 1 malformed, 1 blank line. */
  const char *path =
      fx_tmp_file("in.jsonl", "{\"token\":\"" TOK "\"}\n"
                              "{\"token\":\"bad0000000000000000000000000000000000000000000000000000000000001\"}\n"
                              "{\"token\":\"dead000000000000000000000000000000000000000000000000000000000001\"}\n"
                              "\n"
                              "{\"token\":\"" TOK "\",\"payload\":{\"aps\":{\"alert\":\"own\"}}}\n"
                              "{oops\n"
                              "{\"token\":\"dead000000000000000000000000000000000000000000000000000000000002\"}\n"
                              "{\"token\":\"bad0000000000000000000000000000000000000000000000000000000000002\"}\n"
                              "{\"token\":\"" TOK "\"}\n");
  const char *dead = path_in(test_tmpdir(), "dead.txt");
  const char *const args[] = {CONN(&s),      CERT(&s), "--alert",       "hi", "--bulk",     path,
                              "--list-dead", "1",      "--dead-tokens", dead, "--progress", NULL};
  fx_child c;
  memset(&c, 0, sizeof c);
  int rc = srv_push(&s, &c, args, NULL, NULL);
  if (rc != 1) test__fail(__FILE__, __LINE__, "exit %d, want 1:\n%s", rc, fx_child_err(&c));
  const char *o = fx_child_out(&c), *e = fx_child_err(&c);
  /* One result line for each of the 8 non-blank lines, whatever happened to it. */
  ASSERT_EQ(count_lines(o), 8);
  static const char *lines[] = {"{\"line\":1,", "{\"line\":2,", "{\"line\":3,", "{\"line\":5,",
                                "{\"line\":6,", "{\"line\":7,", "{\"line\":8,", "{\"line\":9,"};
  for (size_t i = 0; i < 8; i++) ASSERT_TRUE(strstr(o, lines[i]) != NULL);
  ASSERT_TRUE(strstr(o, "\"token\":\"bad0000000000000000000000000000000000000000000000000000000000001\",\"apns_id\":"
                        "\"") != NULL);
  ASSERT_TRUE(strstr(o, "\"status\":400,\"reason\":\"BadDeviceToken\",\"timestamp\":null,\"attempts\":1") != NULL);
  ASSERT_TRUE(strstr(o, "\"status\":410,\"reason\":\"Unregistered\",\"timestamp\":1") != NULL);
  ASSERT_TRUE(strstr(o, "{\"line\":6,\"token\":null,\"apns_id\":null,\"status\":0,\"reason\":null,\"timestamp\":null,"
                        "\"attempts\":0,\"latency_ms\":null,\"error\":\"APNS_EBADJSON\",\"message\":\"not JSON: ") !=
              NULL);
  /* The summary: counts by status and reason, and the tokens to delete. */
  ASSERT_TRUE(strstr(e, "apns-push: line 6: not JSON: ") != NULL);
  /* --progress: the last progress line has the total, on a line of its own before the summary. */
  ASSERT_TRUE(strstr(e, "\r8/8 done, ") != NULL);
  ASSERT_TRUE(strstr(e, "3 accepted, 4 rejected, 1 failed, ETA 0:00\napns-push: 8 notifications in ") != NULL);
  ASSERT_TRUE(strstr(e, "8 notifications in ") != NULL);
  ASSERT_TRUE(strstr(e, "3 accepted, 4 rejected, 0 failed, 1 bad lines") != NULL);
  ASSERT_TRUE(strstr(e, "  200                                               3\n") != NULL);
  ASSERT_TRUE(strstr(e, "  400 BadDeviceToken                                2\n") != NULL);
  ASSERT_TRUE(strstr(e, "  410 Unregistered                                  2\n") != NULL);
  ASSERT_TRUE(strstr(e, "  bad line                                          1\n") != NULL);
  ASSERT_TRUE(
      strstr(e, "tokens to delete (Unregistered, ExpiredToken, BadDeviceToken, DeviceTokenNotForTopic): 4\n") !=
      NULL);
  ASSERT_TRUE(strstr(e, "... and 3 more") != NULL);
  fx_child_free(&c);
  /* --dead-tokens has all four. */
  FILE *f = fopen(dead, "r");
  ASSERT_NOT_NULL(f);
  char text[1024];
  size_t n = fread(text, 1, sizeof text - 1, f);
  text[n] = '\0';
  fclose(f);
  ASSERT_EQ(count_lines(text), 4);
  ASSERT_TRUE(strstr(text, "dead000000000000000000000000000000000000000000000000000000000002\n") != NULL);
  ASSERT_TRUE(strstr(text, "bad0000000000000000000000000000000000000000000000000000000000001\n") != NULL);
  apns_mock_stats st;
  srv_stop(&s, &st);
  ASSERT_UEQ(st.requests, 7);
}

TEST(push_encrypted_key_passphrase) {
  srv s;
  srv_start(&s, 1, 0);
  char err[256] = "", *enc = NULL;
  ASSERT_OK(apns__certgen_encrypt_key(s.certs.client_key, "s3cret", &enc, err, sizeof err));
  const char *key = fx_tmp_file("enc-key.pem", enc);
  apns__zero(enc, strlen(enc));
  apns__free(enc);
  char *good_env[] = {"APNS_PUSH_TEST_PASS=s3cret", NULL};
  char *bad_env[] = {"APNS_PUSH_TEST_PASS=wrong", NULL};
  const char *const args[] = {CONN(&s),
                              "--cert",
                              path_in(s.dir, "client.pem"),
                              "--key",
                              key,
                              "--key-pass-env",
                              "APNS_PUSH_TEST_PASS",
                              "--alert",
                              "x",
                              TOK,
                              NULL};
  fx_child c;
  memset(&c, 0, sizeof c);
  int rc = srv_push(&s, &c, args, NULL, good_env);
  if (rc != 0) test__fail(__FILE__, __LINE__, "exit %d:\n%s", rc, fx_child_err(&c));
  ASSERT_TRUE(strstr(fx_child_out(&c), "\"status\":200") != NULL);
  fx_child_free(&c);
  memset(&c, 0, sizeof c);
  ASSERT_EQ(srv_push(&s, &c, args, NULL, bad_env), 2);
  if (strstr(fx_child_err(&c), key) == NULL) test__fail(__FILE__, __LINE__, "no %s in:\n%s", key, fx_child_err(&c));
  fx_child_free(&c);
  srv_stop(&s, NULL);
}

TEST(push_token_auth_verified_by_mock) {
  /* No client certificate; the mock's hook checks every bearer token with the JWT verifier, knowing the key. */
  srv s;
  char err[256] = "";
  srv_start(&s, 0, 1);
  const char *p8 = path_in(s.dir, "client-key.pem"); /* a P-256 key: what a .p8 holds */
  ASSERT_OK(apns__jwt_verifier_new(&s.verifier));
  ASSERT_OK(apns__jwt_verifier_add(s.verifier, "ABC123DEFG", p8, NULL, 0, err, sizeof err));
  const char *path =
      fx_tmp_file("in.jsonl", "{\"token\":\"" TOK "\"}\n{\"token\":\"" TOK "\"}\n{\"token\":\"" TOK "\"}\n");
  const char *const args[] = {CONN(&s),     "--p8",    p8,  "--key-id", "ABC123DEFG", "--team-id",
                              "DEF123GHIJ", "--alert", "x", "--bulk",   path,         NULL};
  fx_child c;
  memset(&c, 0, sizeof c);
  int rc = srv_push(&s, &c, args, NULL, NULL);
  if (rc != 0) test__fail(__FILE__, __LINE__, "exit %d:\n%s\n%s", rc, fx_child_out(&c), fx_child_err(&c));
  ASSERT_EQ(count_lines(fx_child_out(&c)), 3);
  ASSERT_EQ(s.jwt_valid, 3);
  ASSERT_EQ(s.jwt_bad, 0);
  fx_child_free(&c);
  /* The wrong key id: the mock refuses, every line is rejected, exit 1. */
  const char *const wrong[] = {CONN(&s),     "--p8",    p8,  "--key-id", "ZZZ123DEFG", "--team-id",
                               "DEF123GHIJ", "--alert", "x", TOK,        NULL};
  memset(&c, 0, sizeof c);
  ASSERT_EQ(srv_push(&s, &c, wrong, NULL, NULL), 1);
  ASSERT_TRUE(strstr(fx_child_out(&c), "\"status\":403,\"reason\":\"InvalidProviderToken\"") != NULL);
  ASSERT_EQ(s.jwt_bad, 1);
  fx_child_free(&c);
  srv_stop(&s, NULL);
}

/* The peak memory a million-line run may take, in KiB. The input streams through a 256 KiB buffer; the client
 * holds at most --max-queued (4000 for 2 connections) queued requests plus what the connections carry (2 x the mock's
 * 1000 streams), about 1 KiB each with their buffers; the rest is the program and its TLS sessions. Measured: about
 * 11 MiB; reading the whole 110 MB file or keeping a result per line would blow far past this. */
#define MILLION_MAXRSS_KB (40 * 1024)
/* Under AddressSanitizer the tool's memory is the sanitizer's (shadow, quarantine) and it runs several times
 * slower: a tenth of the lines, and a bound that only catches a runaway. Under valgrind (the in-process mock is
 * then 20 times slower) a tenth of the lines: still 25 times the queue bound. */
#if defined(__SANITIZE_ADDRESS__)
#define MILLION_LINES_NATIVE 100000u
#define MILLION_BOUND_KB (1024 * 1024)
#else
#define MILLION_LINES_NATIVE 1000000u
#define MILLION_BOUND_KB MILLION_MAXRSS_KB
#endif

static void on_hwm_timer(uv_timer_t *t) {
  sample_hwm(t->data);
}

TEST(push_bulk_million_bounded_memory) {
  const unsigned MILLION_LINES = test_time_factor() > 1 ? MILLION_LINES_NATIVE / 10 : MILLION_LINES_NATIVE;
  srv s;
  srv_start(&s, 1, 0);
  char path[600];
  snprintf(path, sizeof path, "%s/million.jsonl", test_tmpdir());
  FILE *f = fopen(path, "w");
  ASSERT_NOT_NULL(f);
  for (unsigned i = 0; i < MILLION_LINES; i++)
    fprintf(f, "{\"token\":\"%064x\",\"payload\":{\"aps\":{\"alert\":\"notification %u\"}}}\n", i, i);
  ASSERT_EQ(fclose(f), 0);
  struct stat sb;
  ASSERT_EQ(stat(path, &sb), 0);
  ASSERT_GT(sb.st_size, (off_t)MILLION_LINES * 100);
  const char *const args[] = {CONN(&s), CERT(&s), "--bulk", path, "--results", "/dev/null", "--no-progress", NULL};
  fx_child c;
  memset(&c, 0, sizeof c);
  uint64_t t0 = uv_hrtime();
  /* Sample the child's VmHWM every 50 ms while it runs (and at each stderr write, the summary included). */
  hwm_probe h = {0};
  c.data = &h;
  c.on_output = sample_hwm_on_stderr;
  uv_timer_t hwm;
  ASSERT_EQ(uv_timer_init(&s.loop, &hwm), 0);
  hwm.data = &c;
  push_start(&c, &s.loop, args, NULL, NULL);
  ASSERT_EQ(uv_timer_start(&hwm, on_hwm_timer, 0, 50), 0);
  fx_run_until(&s.loop, &c.done);
  uv_close((uv_handle_t *)&hwm, NULL);
  if (c.term_signal)
    test__fail(__FILE__, __LINE__, "apns-push died of signal %d:\n%s", c.term_signal, fx_child_err(&c));
  int rc = (int)c.status;
  double secs = (double)(uv_hrtime() - t0) / 1e9;
  if (rc != 0) test__fail(__FILE__, __LINE__, "exit %d:\n%s", rc, fx_child_err(&c));
  char want[128];
  snprintf(want, sizeof want, "%u notifications in ", MILLION_LINES);
  ASSERT_TRUE(strstr(fx_child_err(&c), want) != NULL);
  snprintf(want, sizeof want, "%u accepted, 0 rejected, 0 failed, 0 bad lines", MILLION_LINES);
  ASSERT_TRUE(strstr(fx_child_err(&c), want) != NULL);
  printf("%u notifications in %.1f s, apns-push peak RSS %ld KiB (%d samples; bound %d)\n", MILLION_LINES, secs, h.kb,
         h.samples, MILLION_BOUND_KB);
  ASSERT_GT(h.samples, 0);
  ASSERT_GT(h.kb, 0);
  ASSERT_LT(h.kb, MILLION_BOUND_KB);
  fx_child_free(&c);
  apns_mock_stats st;
  srv_stop(&s, &st);
  ASSERT_UEQ(st.requests, MILLION_LINES);
  ASSERT_UEQ(st.status[200], MILLION_LINES);
}

/* Ctrl-C reads no more lines but lets what was sent finish: one result line for each line taken, a summary that
 * says so, exit status 1. */
TEST(push_sigint_finishes_what_was_sent) {
  srv s;
  srv_start(&s, 1, 1);
  apns_mock_set_paused(s.mock, 1);
  char path[600];
  snprintf(path, sizeof path, "%s/many.jsonl", test_tmpdir());
  FILE *f = fopen(path, "w");
  ASSERT_NOT_NULL(f);
  for (unsigned i = 0; i < 50000; i++) fprintf(f, "{\"token\":\"%064x\",\"payload\":{\"aps\":{}}}\n", i);
  ASSERT_EQ(fclose(f), 0);
  const char *const args[] = {CONN(&s), CERT(&s), "--bulk", path, "--no-progress", NULL};
  fx_child c;
  memset(&c, 0, sizeof c);
  push_start(&c, &s.loop, args, NULL, NULL);
  while (s.requests < 100) ASSERT_NE(uv_run(&s.loop, UV_RUN_ONCE), 0);
  ASSERT_EQ(uv_process_kill(&c.proc, SIGINT), 0);
  /* Let the signal land before the answers flow, so that the run is cut short. */
  while (strstr(fx_child_err(&c), "interrupted:") == NULL) ASSERT_NE(uv_run(&s.loop, UV_RUN_ONCE), 0);
  apns_mock_set_paused(s.mock, 0);
  fx_run_until(&s.loop, &c.done);
  ASSERT_EQ(c.term_signal, 0);
  ASSERT_EQ(c.status, 1);
  ASSERT_TRUE(strstr(fx_child_err(&c), "interrupted after") != NULL);
  int results = count_lines(fx_child_out(&c));
  ASSERT_GE(results, 100);
  ASSERT_LT(results, 50000);
  apns_mock_stats st;
  srv_stop(&s, &st);
  ASSERT_EQ(st.status[200], (uint64_t)results); /* everything sent got its answer and its line */
  fx_child_free(&c);
}

/* A server that cannot be reached: apns-push gives up (here after --timeout, as the refusal may pass), instead of
 * letting batch after batch wait out its deadline. Every line taken still gets its result line. */
TEST(push_unreachable_server_gives_up) {
  srv s;
  srv_start(&s, 1, 0);
  /* A port the kernel gave and took back: nothing listens there. */
  uv_tcp_t t;
  struct sockaddr_in a;
  int len = sizeof a;
  uv_ip4_addr("127.0.0.1", 0, &a);
  ASSERT_EQ(uv_tcp_init(&s.loop, &t), 0);
  ASSERT_EQ(uv_tcp_bind(&t, (const struct sockaddr *)&a, 0), 0);
  ASSERT_EQ(uv_tcp_getsockname(&t, (struct sockaddr *)&a, &len), 0);
  uv_close((uv_handle_t *)&t, NULL);
  snprintf(s.hostport, sizeof s.hostport, "127.0.0.1:%d", ntohs(a.sin_port));
  char path[600];
  snprintf(path, sizeof path, "%s/many.jsonl", test_tmpdir());
  FILE *f = fopen(path, "w");
  ASSERT_NOT_NULL(f);
  for (unsigned i = 0; i < 200000; i++) fprintf(f, "{\"token\":\"%064x\",\"payload\":{\"aps\":{}}}\n", i);
  ASSERT_EQ(fclose(f), 0);
  const char *const args[] = {CONN(&s), CERT(&s), "--bulk", path, "--timeout", "1", "--no-progress", NULL};
  fx_child c;
  memset(&c, 0, sizeof c);
  uint64_t t0 = uv_hrtime();
  ASSERT_EQ(srv_push(&s, &c, args, NULL, NULL), 1);
  uint64_t ms = (uv_hrtime() - t0) / 1000000;
  ASSERT_GE(ms, 1000);                       /* not before --timeout: a refusal may pass */
  ASSERT_LT(ms, 10000 * test_time_factor()); /* and not batch after batch */
  ASSERT_TRUE(strstr(fx_child_err(&c), "cannot connect to the server") != NULL);
  ASSERT_TRUE(strstr(fx_child_err(&c), "the server could not be reached") != NULL);
  int results = count_lines(fx_child_out(&c));
  ASSERT_GT(results, 0);
  ASSERT_LT(results, 200000);
  ASSERT_TRUE(strstr(fx_child_out(&c), "\"status\":200") == NULL);
  srv_stop(&s, NULL);
  fx_child_free(&c);
}

/* ---- a server that resets the connection mid-run ---- */

static void drop_early(apns_mock_options *o) {
  o->drop_after = 1500;
  o->bad_prefix = "bad";
}

/* The mock closes each connection after 1500 requests while thousands more are being written: the client's next
 * writes meet a reset socket (the mock closes with unread bytes: the kernel answers them with RST). apns-push must
 * not die of SIGPIPE (the child starts with the default disposition: uv_spawn resets every signal in the child),
 * every line still gets its result line and the summary is written. One line in 100 has a token the mock refuses,
 * so the run ends with status 1 whatever the pool's resends of the dropped streams bring. */
TEST(push_reset_mid_write_no_sigpipe) {
  srv s;
  srv_start_with(&s, 1, 0, drop_early);
  char path[600];
  snprintf(path, sizeof path, "%s/reset.jsonl", test_tmpdir());
  FILE *f = fopen(path, "w");
  ASSERT_NOT_NULL(f);
  const unsigned lines = 8000;
  for (unsigned i = 0; i < lines; i++)
    fprintf(f, "{\"token\":\"%s%061x\",\"payload\":{\"aps\":{}}}\n", i % 100 ? "abc" : "bad", i);
  ASSERT_EQ(fclose(f), 0);
  const char *const args[] = {CONN(&s), CERT(&s), "--bulk", path, "--no-progress", NULL};
  fx_child c;
  memset(&c, 0, sizeof c);
  push_start(&c, &s.loop, args, NULL, NULL);
  fx_run_until(&s.loop, &c.done);
  if (c.term_signal)
    test__fail(__FILE__, __LINE__, "apns-push died of signal %d:\n%s", c.term_signal, fx_child_err(&c));
  if (c.status != 1) test__fail(__FILE__, __LINE__, "exit %d, want 1:\n%s", (int)c.status, fx_child_err(&c));
  ASSERT_EQ(count_lines(fx_child_out(&c)), (int)lines);
  char want[64];
  snprintf(want, sizeof want, "apns-push: %u notifications in ", lines);
  ASSERT_TRUE(strstr(fx_child_err(&c), want) != NULL);
  ASSERT_TRUE(strstr(fx_child_out(&c), "\"reason\":\"BadDeviceToken\"") != NULL);
  apns_mock_stats st;
  srv_stop(&s, &st);
  ASSERT_GT(st.drops, 0);
  fx_child_free(&c);
}

/* The reader of stdout goes away (| head -1): apns-push's next write fails with EPIPE. It stops cleanly (no
 * signal), says why on stderr, and exits 1; with a server, what was sent is canceled and the summary written. */
TEST(push_stdout_closed_stops_cleanly) {
  char path[600];
  snprintf(path, sizeof path, "%s/many.jsonl", test_tmpdir());
  FILE *f = fopen(path, "w");
  ASSERT_NOT_NULL(f);
  for (unsigned i = 0; i < 100000; i++) fprintf(f, "{\"token\":\"%064x\",\"payload\":{\"aps\":{}}}\n", i);
  ASSERT_EQ(fclose(f), 0);
  fx_child c;
  memset(&c, 0, sizeof c);
  c.hang_up_stdout = 1;
  int rc = run_push(&c, ARGS("--dry-run", "--topic", TOPIC, "--bulk", path), NULL);
  if (rc != 1) test__fail(__FILE__, __LINE__, "exit %d, want 1:\n%s", rc, fx_child_err(&c));
  ASSERT_TRUE(strstr(fx_child_err(&c), "apns-push: writing the results: Broken pipe: stopping") != NULL);
  fx_child_free(&c);

  srv s;
  srv_start(&s, 1, 0);
  const char *const args[] = {CONN(&s), CERT(&s), "--bulk", path, "--no-progress", NULL};
  memset(&c, 0, sizeof c);
  c.hang_up_stdout = 1;
  rc = srv_push(&s, &c, args, NULL, NULL);
  if (rc != 1 || strstr(fx_child_err(&c), "apns-push: writing the results: Broken pipe: stopping") == NULL ||
      strstr(fx_child_err(&c), "stopped: the output could not be written (Broken pipe)") == NULL ||
      strstr(fx_child_err(&c), " notifications in ") == NULL)
    test__fail(__FILE__, __LINE__, "exit %d (want 1) or stderr unlike a clean stop:\n%s", rc, fx_child_err(&c));
  apns_mock_stats st;
  srv_stop(&s, &st);
  ASSERT_LT(st.requests, 100000); /* it stopped reading */
  fx_child_free(&c);

  /* stderr's reader goes away while bad lines are being told there: the same clean stop, exit 1. */
  f = fopen(path, "w");
  ASSERT_NOT_NULL(f);
  for (unsigned i = 0; i < 100000; i++) fputs("not json\n", f);
  ASSERT_EQ(fclose(f), 0);
  memset(&c, 0, sizeof c);
  c.hang_up_stderr = 1;
  rc = run_push(&c, ARGS("--dry-run", "--topic", TOPIC, "--alert", "x", "--bulk", path), NULL);
  ASSERT_EQ(rc, 1);
  fx_child_free(&c);
}

/* ---- tools/common/bulk.c: the line scanner and the result writer, without a process ---- */

static uint64_t rng_state = 88172645463325252ull;
static uint64_t rnd(void) {
  rng_state ^= rng_state << 13;
  rng_state ^= rng_state >> 7;
  rng_state ^= rng_state << 17;
  return rng_state;
}

/* Random bytes biased toward what breaks JSON and terminals: controls, quotes, backslashes, bytes that are not
 * UTF-8, and well-formed multi-byte characters (U+2028, C1, 4-byte). */
static size_t hostile_bytes(char *dst, size_t max) {
  static const char *const pieces[] = {"\"",
                                       "\\",
                                       "\n",
                                       "\r",
                                       "\x1b[31m",
                                       "\x07",
                                       "\x7f",
                                       "\xff",
                                       "\xfe",
                                       "\xc3",
                                       "\xc3\xa9",
                                       "\xe2\x80\xa8",
                                       "\xc2\x9b",
                                       "\xed\xa0\x80",
                                       "\xf0\x9f\x98\x80",
                                       "\xf4\x90\x80\x80",
                                       "\xc0\xaf",
                                       "a",
                                       "Z",
                                       " ",
                                       "/",
                                       "\x01",
                                       "\xe2\x82"};
  size_t n = 0, want = rnd() % max;
  while (n < want) {
    const char *p = pieces[rnd() % (sizeof pieces / sizeof pieces[0])];
    size_t k = strlen(p);
    if (n + k > max) break;
    memcpy(dst + n, p, k);
    n += k;
  }
  dst[n] = '\0';
  return n;
}

static int json_text_ok(const char *s) {
  for (const unsigned char *p = (const unsigned char *)s; *p; p++)
    if (*p < 0x20 || *p == 0x7f) return 0;
  return apns__utf8_valid(s, strlen(s));
}

TEST(push_bulk_result_always_json) {
  char tok[64], id[64], reason[64], msg[64], line[2048];
  for (int it = 0; it < 20000; it++) {
    bulk_result r;
    memset(&r, 0, sizeof r);
    hostile_bytes(tok, 40);
    hostile_bytes(id, 40);
    hostile_bytes(reason, 60);
    hostile_bytes(msg, 60);
    r.line = rnd() % (1ull << 40);
    r.token = rnd() % 4 ? tok : NULL;
    r.apns_id = rnd() % 4 ? id : NULL;
    r.status = (int)(rnd() % 700) - 50;
    r.reason = rnd() % 3 ? reason : NULL;
    r.timestamp_ms = (int64_t)rnd();
    r.attempts = (unsigned)rnd();
    r.latency_ms = rnd() % 5 == 0 ? -1.0 : (double)(rnd() % 100000000) / 1000.0;
    if (rnd() % 2) r.error = "APNS_ECLOSED", r.message = rnd() % 2 ? msg : NULL;
    size_t n = bulk_result_format(&r, line, sizeof line);
    ASSERT_LT(n, sizeof line);
    ASSERT_EQ(line[n - 1], '\n');
    ASSERT_EQ(strlen(line), n);
    ASSERT_TRUE(json_text_ok(line) || strchr(line, '\n') == line + n - 1);
    for (size_t i = 0; i + 1 < n; i++) ASSERT_TRUE((unsigned char)line[i] >= 0x20 && line[i] != 0x7f);
    ASSERT_TRUE(apns__utf8_valid(line, n));
    json_error_t je;
    json_t *v = json_loadb(line, n, 0, &je);
    if (v == NULL) test__fail(__FILE__, __LINE__, "not JSON (%s): %s", je.text, line);
    ASSERT_TRUE(json_is_object(v));
    ASSERT_UEQ((uint64_t)json_integer_value(json_object_get(v, "line")), r.line);
    ASSERT_EQ(json_integer_value(json_object_get(v, "status")), r.status);
    /* A string that was clean (valid UTF-8, no controls) comes back as it was. */
    if (r.apns_id && json_text_ok(r.apns_id))
      ASSERT_STREQ(json_string_value(json_object_get(v, "apns_id")), r.apns_id);
    if (r.apns_id == NULL) ASSERT_TRUE(json_is_null(json_object_get(v, "apns_id")));
    if (r.reason && apns__utf8_valid(r.reason, strlen(r.reason)))
      ASSERT_STREQ(json_string_value(json_object_get(v, "reason")), r.reason);
    ASSERT_EQ(json_object_get(v, "error") != NULL, r.error != NULL);
    json_decref(v);
    /* Too small a buffer: the same length is returned, to retry with. */
    ASSERT_UEQ(bulk_result_format(&r, line, n), n);
  }
}

TEST(push_bulk_escape_text_for_terminals) {
  char in[256], out[64];
  for (int it = 0; it < 20000; it++) {
    size_t n = hostile_bytes(in, 200);
    size_t cap = 1 + rnd() % sizeof out;
    size_t k = bulk_escape_text(out, cap, in, n);
    ASSERT_LT(k, cap);
    ASSERT_EQ(strlen(out), k);
    for (size_t i = 0; i < k; i++) ASSERT_TRUE((unsigned char)out[i] >= 0x20 && out[i] != 0x7f);
    ASSERT_TRUE(apns__utf8_valid(out, k));
    /* Cut on a whole escape: never a dangling backslash sequence like "\u00". */
    const char *u = strrchr(out, '\\');
    if (u && u[1] == 'u') ASSERT_GE(strlen(u), 6);
    /* Escaping what was escaped changes nothing: a message that quotes an escaped name stays readable. */
    char again[64];
    ASSERT_UEQ(bulk_escape_text(again, sizeof again, out, k), k);
    ASSERT_STREQ(again, out);
  }
  ASSERT_UEQ(bulk_escape_text(out, sizeof out, "a\x1b[2J\r\n\xff\"", 9), strlen("a\\u001b[2J\\r\\n\\ufffd\""));
  ASSERT_STREQ(out, "a\\u001b[2J\\r\\n\\ufffd\"");
}

/* Lines for the differential test: good ones, then mutated byte by byte. */
static const char *const line_seeds[] = {
    "{\"token\":\"" TOK "\",\"payload\":{\"aps\":{\"alert\":\"hi\"}}}",
    "{ \"token\" : \"" TOK "\" , \"topic\":\"com.x\",\"priority\":5,\"expiration\":0,\"push_type\":\"voip\"}",
    "{\"tok\\u0065n\":\"" TOK "\",\"collapse_id\":\"a\\\"b\\\\c\\u00e9\\ud83d\\ude00\",\"apns_id\":\"x\"}",
    "{\"token\":\"" TOK "\",\"payload\":{\"aps\":{},\"a\":[1,2.5e3,-0,true,false,null,\"s\\n\"], \"b\" : {}}}",
    "{\"token\":\"" TOK "\",\"expiration\":17,\"payload\":{\"aps\":{\"content-available\":1}}}",
    "{\"token\":\"" TOK "\",\"payload\":{\"aps\":{\"content-available\":1,\"sound\":\"x\"},\"k\":{\"k\":1,\"j\":2}}}",
    "{\"channel\":\"dGVzdA==\",\"topic\":\"com.x\",\"payload\":{\"aps\":{\"event\":\"update\",\"content-state\":{}}}"
    "}",
    "{\"token\":\"" TOK "\",\"payload\":{\"aps\":1,\"x\":[{\"a\":1e5,\"b\":-12345678901234567}]}}",
    "[1,2]",
    "\"token\"",
};

static int is_member(const char *k) {
  static const char *const m[] = {"token",      "payload",     "topic",   "push_type", "priority",
                                  "expiration", "collapse_id", "apns_id", "channel"};
  for (size_t i = 0; i < sizeof m / sizeof m[0]; i++)
    if (strcmp(k, m[i]) == 0) return 1;
  return 0;
}

static const char *jstr(json_t *o, const char *k) {
  return json_string_value(json_object_get(o, k));
}

/* The scanner against jansson on the same bytes: jansson accepts (as an object, with only known members of the
 * right types) exactly the lines the scanner accepts, with the same values; and a line jansson parses is never
 * "not JSON" to the scanner. Checked over the seeds and 30 000 mutations of them. */
TEST(push_bulk_line_parse_matches_jansson) {
  char text[512], scratch[BULK_SCRATCH(512)], why[320];
  int accepted = 0, unsure = 0;
  for (int it = 0; it < 30000; it++) {
    size_t seed_no = (size_t)(rnd() % (sizeof line_seeds / sizeof line_seeds[0]));
    const char *seed = line_seeds[seed_no];
    size_t n = strlen(seed);
    memcpy(text, seed, n);
    int muts = it < 100 ? 0 : 1 + (int)(rnd() % 3);
    for (int m = 0; m < muts; m++) {
      static const char bytes[] = "{}[]\":,\\ u0123456789.eE-+tfnlx\xff\x01";
      size_t at = rnd() % (n + 1);
      int op = (int)(rnd() % 3);
      if (op == 0 && n < sizeof text - 1) { /* insert */
        memmove(text + at + 1, text + at, n - at);
        text[at] = bytes[rnd() % (sizeof bytes - 1)];
        n++;
      } else if (op == 1 && at < n) { /* delete */
        memmove(text + at, text + at + 1, n - at - 1);
        n--;
      } else if (at < n) { /* replace */
        text[at] = bytes[rnd() % (sizeof bytes - 1)];
      }
    }
    bulk_line bl;
    int rv = bulk_line_parse(text, n, &bl, scratch, sizeof scratch, why, sizeof why);
    ASSERT_TRUE(json_text_ok(why) || why[0] == '\0');
    if (muts == 0 && seed_no < 7 && rv != 0) test__fail(__FILE__, __LINE__, "seed %zu refused: %s", seed_no, why);
    json_error_t je;
    json_t *root = json_loadb(text, n, JSON_REJECT_DUPLICATES, &je);
    int not_json = rv == APNS_EBADJSON && strncmp(why, "not JSON: ", 10) == 0;
    if (root != NULL && not_json)
      test__fail(__FILE__, __LINE__, "jansson parses what the scanner calls not JSON (%s): %.*s", why, (int)n, text);
    if (rv == 0 && bl.payload) {
      /* The scan's verdict on the payload is the library's (apns_notification_new_raw), background included;
       * where it is unsure, the caller asks the library. */
      apns_notification *pn = NULL;
      int lib = apns_notification_new_raw(&pn, bl.payload, bl.payload_len);
      if (bl.payload_checked && lib != 0)
        test__fail(__FILE__, __LINE__, "payload checked, the library refuses it (%s): %.*s", apns_err_name(lib),
                   (int)bl.payload_len, bl.payload);
      if (lib == 0) ASSERT_EQ(bl.payload_background, apns_notification_is_background(pn));
      apns_notification_free(pn);
      if (lib != 0) {
        unsure++;
        json_decref(root);
        continue;
      }
    }
    if (rv == 0 && root == NULL)
      test__fail(__FILE__, __LINE__, "accepted, jansson refuses (%s): %.*s", je.text, (int)n, text);
    if (root != NULL && (rv == APNS_EPAYLOADEMPTY || (rv == APNS_EBADJSON && !not_json))) {
      /* Refused for its payload: the library refuses that payload too, with the same code. */
      char *dump = json_dumps(json_object_get(root, "payload"), JSON_COMPACT);
      apns_notification *pn = NULL;
      ASSERT_NOT_NULL(dump);
      ASSERT_EQ(apns_notification_new_raw(&pn, dump, strlen(dump)), rv);
      free(dump);
    }
    if (rv == 0) {
      accepted++;
      ASSERT_TRUE(json_is_object(root));
      const char *k;
      json_t *v;
      json_object_foreach(root, k, v) ASSERT_TRUE(is_member(k));
      ASSERT_STREQ(bl.token, jstr(root, "token"));
      ASSERT_STREQ(bl.channel, jstr(root, "channel"));
      ASSERT_TRUE((bl.token == NULL) != (bl.channel == NULL));
      if (bl.channel) ASSERT_OK(apns_validate_channel_id(bl.channel));
      if (bl.topic) ASSERT_STREQ(bl.topic, jstr(root, "topic"));
      if (bl.collapse_id) ASSERT_STREQ(bl.collapse_id, jstr(root, "collapse_id"));
      if (bl.apns_id) ASSERT_STREQ(bl.apns_id, jstr(root, "apns_id"));
      ASSERT_EQ(bl.topic == NULL, json_object_get(root, "topic") == NULL);
      ASSERT_EQ(bl.priority, (int)json_integer_value(json_object_get(root, "priority")));
      ASSERT_EQ(bl.has_expiration, json_object_get(root, "expiration") != NULL);
      if (bl.has_expiration) ASSERT_EQ(bl.expiration, json_integer_value(json_object_get(root, "expiration")));
      json_t *pl = json_object_get(root, "payload");
      ASSERT_EQ(bl.payload == NULL, pl == NULL);
      if (pl) {
        /* The bytes handed to the send are the payload, whitespace aside: the library's check decides the rest. */
        json_t *mine = json_loadb(bl.payload, bl.payload_len, 0, NULL);
        ASSERT_NOT_NULL(mine);
        ASSERT_TRUE(json_equal(mine, pl));
        for (size_t i = 0; i < bl.payload_len; i++) ASSERT_TRUE(bl.payload[i] != ' ' || memchr(bl.payload, '"', i));
        json_decref(mine);
      }
    } else if (root != NULL && json_is_object(root) && rv != APNS_EBADJSON && rv != APNS_EPAYLOADEMPTY) {
      /* Refused for its content: jansson sees why (a member unknown or of the wrong type, a bad token). */
      ASSERT_TRUE(rv == APNS_EINVAL || rv == APNS_EBADPRIORITY || rv == APNS_EBADTOKEN || rv == APNS_EBADCHANNELID);
    }
    json_decref(root);
  }
  ASSERT_GT(accepted, 100);
  printf("%d accepted, %d left to the library\n", accepted, unsure);
}

TEST(push_bulk_line_parse_cases) {
  char scratch[BULK_SCRATCH(600)], why[320];
  bulk_line bl;
  static const struct {
    const char *line;
    int rv;
    const char *why; /* a prefix */
  } cases[] = {
      {"{\"token\":\"" TOK "\",\"token\":\"" TOK "\"}", APNS_EBADJSON, "not JSON: duplicate object key"},
      {"{\"token\":\"" TOK "\",\"priority\":10.0}", APNS_EBADPRIORITY, "\"priority\" must be 10, 5 or 1"},
      {"{\"token\":\"" TOK "\",\"expiration\":-1}", APNS_EINVAL, "\"expiration\" must be UNIX seconds"},
      {"{\"token\":\"" TOK "\",\"expiration\":99999999999999999999}", APNS_EINVAL, "\"expiration\" must be"},
      {"{\"token\":\"\\ud800\"}", APNS_EBADJSON, "not JSON: invalid Unicode escape"},
      {"{\"token\":\"a\\u0000\"}", APNS_EBADJSON, "not JSON: \\u0000 is not allowed"},
      {"{\"token\":\"" TOK "\",\"x\\u001b[2J\":1}", APNS_EINVAL, "unknown field \"x\\u001b[2J\""},
      {"{\"token\":\"" TOK "\",\"push_type\":\"\\u001b]0;x\"}", APNS_EINVAL, "unknown push_type \"\\u001b]0;x\""},
      {"{\"token\":\"" TOK "\",\"payload\":{\"a\":[}]}", APNS_EBADJSON, "not JSON: invalid number"},
      {"{\"token\":\"" TOK "\",\"payload\":{}}", APNS_EPAYLOADEMPTY, "payload: payload is empty"},
      {"{\"token\":\"" TOK "\",\"payload\":{\"aps\":[]}}", APNS_EBADJSON, "payload: payload is not valid JSON"},
      {"{\"token\":\"" TOK "\",\"payload\":{\"a\":{\"b\":1,\"b\":2}}}", APNS_EBADJSON,
       "not JSON: duplicate object key"},
      {"{\"token\":\"" TOK "\",\"payload\":{\"a\":9223372036854775808}}", APNS_EBADJSON, "not JSON: integer too big"},
      {"{\"token\":\"" TOK "\",\"payload\":{\"a\":\"\x01\"}}", APNS_EBADJSON, "not JSON: control character"},
      {"{\"token\":\"" TOK "\"} x", APNS_EBADJSON, "not JSON: end of the line expected at column 78"},
      {"{\"token\":5}", APNS_EINVAL, "\"token\" must be a string"},
      {"{}", APNS_EBADTOKEN, "no \"token\" (or \"channel\")"},
      {"{\"channel\":\"ab!c\"}", APNS_EBADCHANNELID, "bad channel: "},
      {"{\"channel\":5}", APNS_EINVAL, "\"channel\" must be a string"},
      {"{\"token\":\"" TOK "\",\"channel\":\"" CHAN "\"}", APNS_EINVAL, "\"token\" and \"channel\": "},
      {"{\"channel\":\"" CHAN "\",\"channel\":\"" CHAN "\"}", APNS_EBADJSON, "not JSON: duplicate object key"},
      {"{\"token\":\"abc\"}", APNS_EBADTOKEN, "bad token: "},
      {"{\"token\":\"" TOK "\",\"payload\":\"x\"}", APNS_EINVAL, "\"payload\" must be a JSON object"},
      {"{\"token\":\"" TOK "\",\"p\xff\":1}", APNS_EBADJSON, "not JSON: invalid UTF-8"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    int rv = bulk_line_parse(cases[i].line, strlen(cases[i].line), &bl, scratch, sizeof scratch, why, sizeof why);
    if (rv != cases[i].rv || strncmp(why, cases[i].why, strlen(cases[i].why)) != 0)
      test__fail(__FILE__, __LINE__, "case %zu: %d \"%s\", want %d \"%s\"", i, rv, why, cases[i].rv, cases[i].why);
  }
  /* The payload's whitespace outside strings goes, the rest stays as written (the number's spelling too). */
  const char *l = "{ \"payload\" : { \"aps\" : { \"alert\" : \"a  b\" } , \"n\" : 1.50 } , \"token\":\"" TOK "\" }";
  ASSERT_OK(bulk_line_parse(l, strlen(l), &bl, scratch, sizeof scratch, why, sizeof why));
  ASSERT_EQ((int)bl.payload_len, (int)strlen("{\"aps\":{\"alert\":\"a  b\"},\"n\":1.50}"));
  ASSERT_EQ(memcmp(bl.payload, "{\"aps\":{\"alert\":\"a  b\"},\"n\":1.50}", bl.payload_len), 0);
  /* Without whitespace, the payload is the line's own bytes: no copy. */
  l = "{\"token\":\"" TOK "\",\"payload\":{\"aps\":{}}}";
  ASSERT_OK(bulk_line_parse(l, strlen(l), &bl, scratch, sizeof scratch, why, sizeof why));
  ASSERT_TRUE(bl.payload > l && bl.payload < l + strlen(l));
  ASSERT_TRUE(bl.payload_checked);
  ASSERT_TRUE(!(bl.payload_background));
  l = "{\"token\":\"" TOK "\",\"payload\":{\"aps\":{\"content-available\":1},\"a\":-9223372036854775808}}";
  ASSERT_OK(bulk_line_parse(l, strlen(l), &bl, scratch, sizeof scratch, why, sizeof why));
  ASSERT_TRUE(bl.payload_checked && bl.payload_background);
  /* An escaped key (is it a duplicate?) or a real that may overflow: left to the library's check. */
  l = "{\"token\":\"" TOK "\",\"payload\":{\"\\u0061\":1,\"a\":2}}";
  ASSERT_OK(bulk_line_parse(l, strlen(l), &bl, scratch, sizeof scratch, why, sizeof why));
  ASSERT_TRUE(!(bl.payload_checked));
  l = "{\"token\":\"" TOK "\",\"payload\":{\"a\":1e999}}";
  ASSERT_OK(bulk_line_parse(l, strlen(l), &bl, scratch, sizeof scratch, why, sizeof why));
  ASSERT_TRUE(!(bl.payload_checked));
}

/* ---- statuses APNs never gives ---- */

static void odd_status_hook(void *data, apns_mock_request *req) {
  (void)data;
  if (req->seq == 1) req->status = 301, req->reason = "Moved";
  if (req->seq == 2) req->status = 204, req->reason = NULL;
}

static void odd_status_opts(apns_mock_options *o) {
  o->on_request = odd_status_hook;
}

/* 3xx, and a 2xx other than 200, are neither accepted nor rejected by APNs: the summary tells them apart (they
 * were counted as rejections, like a 4xx) and the run ends with status 1. */
TEST(push_unexpected_status_told_apart) {
  srv s;
  srv_start_with(&s, 1, 0, odd_status_opts);
  const char *path =
      fx_tmp_file("in.jsonl", "{\"token\":\"" TOK "\"}\n{\"token\":\"" TOK "\"}\n{\"token\":\"" TOK "\"}\n");
  const char *const args[] = {CONN(&s), CERT(&s), "--alert", "x", "--bulk", path, "--connections", "1", NULL};
  fx_child c;
  memset(&c, 0, sizeof c);
  int rc = srv_push(&s, &c, args, NULL, NULL);
  if (rc != 1) test__fail(__FILE__, __LINE__, "exit %d, want 1:\n%s", rc, fx_child_err(&c));
  const char *e = fx_child_err(&c);
  ASSERT_TRUE(strstr(e, "3 notifications in ") != NULL);
  if (strstr(e, "1 accepted, 0 rejected, 0 failed, 0 bad lines\n") == NULL) test__fail(__FILE__, __LINE__, "%s", e);
  ASSERT_TRUE(strstr(e, "  2 answers with a status APNs does not give (1xx, 3xx, ...)") != NULL);
  ASSERT_TRUE(strstr(e, "  204 (unexpected status) ") != NULL);
  ASSERT_TRUE(strstr(e, "  301 Moved (unexpected status) ") != NULL);
  ASSERT_TRUE(strstr(fx_child_out(&c), "\"status\":301,\"reason\":\"Moved\"") != NULL);
  srv_stop(&s, NULL);
  fx_child_free(&c);
}

/* ---- a hostile server: bytes that are not UTF-8, control characters ---- */

/* Every line of text is one JSON object (jansson also refuses bytes that are not UTF-8); returns how many. */
static int assert_json_lines(const char *text) {
  int n = 0;
  for (const char *p = text; *p;) {
    const char *nl = strchr(p, '\n');
    ASSERT_NOT_NULL(nl);
    json_error_t je;
    json_t *v = json_loadb(p, (size_t)(nl - p), 0, &je);
    if (v == NULL || !json_is_object(v))
      test__fail(__FILE__, __LINE__, "not a JSON object (%s): %.*s", je.text, (int)(nl - p), p);
    json_decref(v);
    n++;
    p = nl + 1;
  }
  return n;
}

/* No byte a terminal acts on: C0 controls but newline, DEL, ESC, and no byte that is not UTF-8 (0xff). */
static void assert_no_controls(const char *what, const char *text) {
  for (const unsigned char *p = (const unsigned char *)text; *p; p++)
    if ((*p < 0x20 && *p != '\n') || *p == 0x7f || *p == 0xff)
      test__fail(__FILE__, __LINE__, "%s: byte 0x%02x at %zu:\n%s", what, *p,
                 (size_t)(p - (const unsigned char *)text), text);
}

#define HOSTILE_REASON "Bad\x1b[31mReason\x07\r\napns-push: 0 notifications in 0.00 s"
#define HOSTILE_GOAWAY                                                                                               \
  "Shut\x1b]0;owned\x07"                                                                                             \
  "down\r\napns-push: forged"

static void hostile_hook(void *data, apns_mock_request *req) {
  (void)data;
  /* An apns-id of 36 bytes that are not UTF-8, or that a terminal or JavaScript acts on (C0 controls cannot be
   * sent: nghttp2 refuses them in a header value; bytes 0x80-0xff it passes). */
  static const char id[] = "\xff\xfe[2J\"\\\xc3\x28\xe2\x80\xa8\xc2\x9b\xed\xa0\x80xxxxxxxxxxxxxxxxxxx";
  _Static_assert(sizeof id - 1 == 36, "an apns-id is 36 bytes");
  memcpy(req->apns_id, id, 36);
  if (req->seq == 1) {
    req->status = 400;
    req->reason = HOSTILE_REASON;
  }
}

static void hostile_opts(apns_mock_options *o) {
  o->on_request = hostile_hook;
  o->goaway_after = 2;
  o->goaway_reason = HOSTILE_GOAWAY;
}

TEST(push_hostile_server_text_escaped) {
  srv s;
  srv_start_with(&s, 1, 0, hostile_opts);
  const char *path =
      fx_tmp_file("in.jsonl", "{\"token\":\"" TOK "\"}\n{\"token\":\"" TOK "\"}\n{\"token\":\"" TOK "\"}\n");
  const char *const args[] = {CONN(&s), CERT(&s), "--alert", "x", "--bulk", path, "--connections", "1", NULL};
  fx_child c;
  memset(&c, 0, sizeof c);
  int rc = srv_push(&s, &c, args, NULL, NULL);
  if (rc != 1) test__fail(__FILE__, __LINE__, "exit %d, want 1:\n%s", rc, fx_child_err(&c));
  const char *o = fx_child_out(&c), *e = fx_child_err(&c);
  ASSERT_EQ(assert_json_lines(o), 3);
  assert_no_controls("stdout", o);
  assert_no_controls("stderr", e);
  /* Bad bytes as U+FFFD, controls as \u escapes, U+2028 and C1 escaped too; the reason decoded from JSON. */
  ASSERT_TRUE(strstr(o, "\"apns_id\":\"\\ufffd\\ufffd[2J\\\"\\\\\\ufffd(\\u2028\\u009b\\ufffd\\ufffd\\ufffd"
                        "xxxxxxxxxxxxxxxxxxx\"") != NULL);
  ASSERT_TRUE(strstr(o, "\"reason\":\"Bad\\u001b[31mReason\\u0007\\r\\napns-push: 0 notifications in 0.00 s\"") !=
              NULL);
  /* The summary names the reason, escaped: no forged line. */
  ASSERT_TRUE(strstr(e, "400 Bad\\u001b[31mReason\\u0007\\r\\napns-push: 0 notifications") != NULL);
  ASSERT_TRUE(strstr(e, "\napns-push: 0 notifications") == NULL);
  ASSERT_TRUE(strstr(e, "\napns-push: forged") == NULL);
  ASSERT_TRUE(strstr(e, "reason Shut\\u001b]0;owned\\u0007down\\r\\napns-push: forged)") != NULL);
  srv_stop(&s, NULL);
  fx_child_free(&c);
}

/* ---- broadcast push: channel commands and --channel, against the mock ---- */

/* The hook of the channel tests: the last request as --dry-run prints it (management requests with their method
 * and "body", broadcasts as sends, with "payload"), authorization checked as record_hook does. */
static void chan_hook(void *data, apns_mock_request *req) {
  srv *s = data;
  int mgmt = strncmp(req->path, "/1/", 3) == 0;
  s->requests++;
  size_t n = 0;
  if (mgmt)
    n = (size_t)snprintf(s->last, sizeof s->last, "{\"method\":\"%s\",\"path\":\"%s\",\"headers\":{", req->method,
                         req->path);
  else
    n = (size_t)snprintf(s->last, sizeof s->last, "{\"path\":\"%s\",\"headers\":{", req->path);
  int first = 1, authorized = 0;
  for (size_t i = 0; i < req->num_headers; i++) {
    if (strcmp(req->headers[i].name, "authorization") == 0) {
      const char *v = req->headers[i].value;
      authorized = 1;
      if (s->verifier && strncmp(v, "bearer ", 7) == 0 &&
          apns__jwt_verify(s->verifier, v + 7, strlen(v + 7), NULL) == APNS__JWT_VALID)
        s->jwt_valid++;
      else
        s->jwt_bad++;
      continue;
    }
    n += (size_t)snprintf(s->last + n, sizeof s->last - n, "%s\"%s\":\"%s\"", first ? "" : ",", req->headers[i].name,
                          req->headers[i].value);
    first = 0;
  }
  if (req->body_len)
    n += (size_t)snprintf(s->last + n, sizeof s->last - n, "},\"%s\":%.*s}\n", mgmt ? "body" : "payload",
                          (int)req->body_len, (const char *)req->body);
  else
    n += (size_t)snprintf(s->last + n, sizeof s->last - n, "}}\n");
  if (s->verifier && !authorized) {
    req->status = 403;
    req->reason = "MissingProviderToken";
  }
}

static void chan_tweak(apns_mock_options *o) {
  o->on_request = chan_hook;
}

static void chan_tweak_limit(apns_mock_options *o) {
  o->on_request = chan_hook;
  o->max_channels = 1;
}

static void chan_tweak_split(apns_mock_options *o) {
  o->on_request = chan_hook;
  o->split_management = 1;
}

static void chan_tweak_disabled(apns_mock_options *o) {
  o->on_request = chan_hook;
  o->broadcast_disabled = TOPIC;
}

/* A new mock in place of the running one, on the same loop and certificates (cert_dir runs once a test). */
static void srv_remock(srv *s, int client_auth, void (*tweak)(apns_mock_options *)) {
  apns_mock_stop(s->mock, NULL, NULL);
  uv_run(&s->loop, UV_RUN_DEFAULT);
  apns_mock_options o;
  fx_mock_options(&o, &s->certs, client_auth);
  o.data = s;
  tweak(&o);
  s->mock = fx_mock_start(&s->loop, &o);
  snprintf(s->hostport, sizeof s->hostport, "127.0.0.1:%d", apns_mock_port(s->mock));
}

/* The one JSON line a channel command or broadcast printed, parsed (the test fails on anything else). */
static json_t *one_json_line(fx_child *c) {
  const char *o = fx_child_out(c);
  if (count_lines(o) != 1) test__fail(__FILE__, __LINE__, "want one line, got:\n%s\nstderr:\n%s", o, fx_child_err(c));
  json_error_t je;
  json_t *j = json_loads(o, 0, &je);
  if (j == NULL) test__fail(__FILE__, __LINE__, "not JSON (%s): %s", je.text, o);
  return j;
}

/* Runs args against the mock and checks the exit status. */
static void srv_expect(srv *s, fx_child *c, const char *const *args, int want) {
  memset(c, 0, sizeof *c);
  int rc = srv_push(s, c, args, NULL, NULL);
  if (rc != want)
    test__fail(__FILE__, __LINE__, "exit %d, want %d:\n%s\n%s", rc, want, fx_child_out(c), fx_child_err(c));
}

TEST(push_channel_lifecycle_against_mock) {
  srv s;
  srv_start_with(&s, 1, 1, chan_tweak);
  fx_child c;
  char id[APNS_CHANNEL_ID_MAX + 1];

  /* create: 201 and the new id, our request id echoed; the mock got what --dry-run prints. */
  srv_expect(&s, &c, ARGS(CONN(&s), CERT(&s), "--request-id", RID, "channel", "create"), 0);
  json_t *j = one_json_line(&c);
  ASSERT_STREQ(jstr(j, "op"), "create");
  ASSERT_EQ(json_integer_value(json_object_get(j, "status")), 201);
  ASSERT_STREQ(jstr(j, "request_id"), RID);
  ASSERT_NOT_NULL(jstr(j, "channel_id"));
  ASSERT_OK(apns_validate_channel_id(jstr(j, "channel_id")));
  snprintf(id, sizeof id, "%s", jstr(j, "channel_id"));
  json_decref(j);
  fx_child_free(&c);
  srv_expect(&s, &c, ARGS("--dry-run", CONN(&s), "--request-id", RID, "channel", "create"), 0);
  ASSERT_STREQ(fx_child_out(&c), s.last);
  fx_child_free(&c);

  /* read: the configuration, exactly as Apple spells it. */
  srv_expect(&s, &c, ARGS(CONN(&s), CERT(&s), "--request-id", RID, "channel", "read", id), 0);
  char want[512];
  snprintf(want, sizeof want,
           "{\"op\":\"read\",\"status\":200,\"channel_id\":\"%s\",\"message-storage-policy\":0,"
           "\"push-type\":\"LiveActivity\",\"request_id\":\"" RID "\"}\n",
           id);
  ASSERT_STREQ(fx_child_out(&c), want);
  fx_child_free(&c);
  srv_expect(&s, &c, ARGS("--dry-run", CONN(&s), "--request-id", RID, "channel", "read", id), 0);
  ASSERT_STREQ(fx_child_out(&c), s.last);
  fx_child_free(&c);

  /* list: the one channel. */
  srv_expect(&s, &c, ARGS(CONN(&s), CERT(&s), "channel", "list"), 0);
  j = one_json_line(&c);
  ASSERT_EQ(json_integer_value(json_object_get(j, "status")), 200);
  json_t *list = json_object_get(j, "channels");
  ASSERT_EQ(json_array_size(list), 1);
  ASSERT_STREQ(json_string_value(json_array_get(list, 0)), id);
  ASSERT_NOT_NULL(jstr(j, "request_id")); /* the mock made one */
  json_decref(j);
  fx_child_free(&c);
  srv_expect(&s, &c, ARGS("--dry-run", CONN(&s), "channel", "list"), 0);
  ASSERT_STREQ(fx_child_out(&c), s.last);
  fx_child_free(&c);

  /* A Live Activity update broadcast to it: accepted, the answer's ids printed; the wire is the dry run. */
#define UPDATE(id)                                                                                                   \
  "--channel", id, "--request-id", RID, "--event", "update", "--content-state", "{\"home\":2,\"away\":1}",           \
      "--timestamp", "1700000000", "--stale-date", "1700000600"
  srv_expect(&s, &c, ARGS(CONN(&s), CERT(&s), UPDATE(id)), 0);
  j = one_json_line(&c);
  ASSERT_STREQ(jstr(j, "channel"), id);
  ASSERT_EQ(json_integer_value(json_object_get(j, "status")), 200);
  ASSERT_TRUE(json_is_null(json_object_get(j, "reason")));
  ASSERT_STREQ(jstr(j, "apns_request_id"), RID);
  ASSERT_NOT_NULL(jstr(j, "apns_unique_id"));
  ASSERT_EQ(json_integer_value(json_object_get(j, "attempts")), 1);
  json_decref(j);
  fx_child_free(&c);
  srv_expect(&s, &c, ARGS("--dry-run", CONN(&s), UPDATE(id)), 0);
  ASSERT_STREQ(fx_child_out(&c), s.last);
  ASSERT_TRUE(strstr(s.last, "\"payload\":{\"aps\":{\"timestamp\":1700000000,\"event\":\"update\","
                             "\"content-state\":{\"home\":2,\"away\":1},\"stale-date\":1700000600}}") != NULL);
  fx_child_free(&c);

  /* delete: 204; then the id is gone for a broadcast, a read and a second delete (exit 1 each). */
  srv_expect(&s, &c, ARGS(CONN(&s), CERT(&s), "channel", "delete", id), 0);
  j = one_json_line(&c);
  ASSERT_STREQ(jstr(j, "op"), "delete");
  ASSERT_EQ(json_integer_value(json_object_get(j, "status")), 204);
  ASSERT_STREQ(jstr(j, "channel_id"), id);
  json_decref(j);
  fx_child_free(&c);
  srv_expect(&s, &c, ARGS("--dry-run", CONN(&s), "channel", "delete", id), 0);
  ASSERT_STREQ(fx_child_out(&c), s.last);
  fx_child_free(&c);
  srv_expect(&s, &c, ARGS(CONN(&s), CERT(&s), UPDATE(id)), 1);
  j = one_json_line(&c);
  ASSERT_EQ(json_integer_value(json_object_get(j, "status")), 400);
  ASSERT_STREQ(jstr(j, "reason"), "ChannelNotRegistered");
  json_decref(j);
  ASSERT_TRUE(strstr(fx_child_err(&c), "broadcast refused: 400 ChannelNotRegistered") != NULL);
  fx_child_free(&c);
  static const char *const ops[] = {"read", "delete"};
  for (int k = 0; k < 2; k++) {
    srv_expect(&s, &c, ARGS(CONN(&s), CERT(&s), "channel", ops[k], id), 1);
    snprintf(want, sizeof want,
             "{\"op\":\"%s\",\"status\":400,\"channel_id\":\"%s\",\"reason\":\"ChannelNotRegistered\"", ops[k], id);
    if (strncmp(fx_child_out(&c), want, strlen(want)) != 0) test__fail(__FILE__, __LINE__, "%s", fx_child_out(&c));
    fx_child_free(&c);
  }
  /* --results takes the line to a file, as for sends. */
  const char *res = path_in(test_tmpdir(), "channels.out");
  srv_expect(&s, &c, ARGS(CONN(&s), CERT(&s), "--results", res, "channel", "list"), 0);
  ASSERT_STREQ(fx_child_out(&c), "");
  fx_child_free(&c);
  FILE *f = fopen(res, "r");
  ASSERT_NOT_NULL(f);
  char got[512] = "";
  ASSERT_NOT_NULL(fgets(got, sizeof got, f));
  fclose(f);
  ASSERT_TRUE(strncmp(got, "{\"op\":\"list\",\"status\":200,\"channels\":[],\"request_id\":", 53) == 0);
  srv_stop(&s, NULL);
#undef UPDATE
}

TEST(push_channel_error_reasons) {
  srv s;
  fx_child c;
  json_t *j;
  /* A no-storage channel takes only expiration 0: BadExpirationDate. A latest one takes a later time. */
  srv_start_with(&s, 1, 1, chan_tweak);
  char none_id[APNS_CHANNEL_ID_MAX + 1], latest_id[APNS_CHANNEL_ID_MAX + 1];
  srv_expect(&s, &c, ARGS(CONN(&s), CERT(&s), "channel", "create", "--storage", "none"), 0);
  j = one_json_line(&c);
  snprintf(none_id, sizeof none_id, "%s", jstr(j, "channel_id"));
  json_decref(j);
  fx_child_free(&c);
  srv_expect(&s, &c, ARGS(CONN(&s), CERT(&s), "channel", "create", "--storage", "latest"), 0);
  j = one_json_line(&c);
  snprintf(latest_id, sizeof latest_id, "%s", jstr(j, "channel_id"));
  json_decref(j);
  fx_child_free(&c);
  srv_expect(&s, &c, ARGS(CONN(&s), CERT(&s), "channel", "read", latest_id), 0);
  ASSERT_TRUE(strstr(fx_child_out(&c), "\"message-storage-policy\":1,") != NULL);
  fx_child_free(&c);
  srv_expect(&s, &c,
             ARGS(CONN(&s), CERT(&s), "--channel", none_id, "--expiration", "+600", "--event", "end",
                  "--content-state", "{}", "--dismissal-date", "+3600"),
             1);
  j = one_json_line(&c);
  ASSERT_EQ(json_integer_value(json_object_get(j, "status")), 400);
  ASSERT_STREQ(jstr(j, "reason"), "BadExpirationDate");
  json_decref(j);
  fx_child_free(&c);
  srv_expect(&s, &c,
             ARGS(CONN(&s), CERT(&s), "--channel", latest_id, "--expiration", "+600", "--event", "end",
                  "--content-state", "{}", "--dismissal-date", "+3600", "--priority", "5"),
             0);
  ASSERT_TRUE(strstr(s.last, "\"apns-priority\":\"5\"") != NULL);
  fx_child_free(&c);
  /* A channel id never made: ChannelNotRegistered. */
  srv_expect(&s, &c, ARGS(CONN(&s), CERT(&s), "--channel", CHAN, "{\"aps\":{\"event\":\"update\"}}"), 1);
  ASSERT_TRUE(strstr(fx_child_out(&c), "\"reason\":\"ChannelNotRegistered\"") != NULL);
  fx_child_free(&c);

  /* The 10 000 limit (1 here): CannotCreateChannelConfig; after a delete there is room again. */
  srv_remock(&s, 1, chan_tweak_limit);
  srv_expect(&s, &c, ARGS(CONN(&s), CERT(&s), "channel", "create"), 0);
  j = one_json_line(&c);
  char id[APNS_CHANNEL_ID_MAX + 1];
  snprintf(id, sizeof id, "%s", jstr(j, "channel_id"));
  json_decref(j);
  fx_child_free(&c);
  srv_expect(&s, &c, ARGS(CONN(&s), CERT(&s), "channel", "create"), 1);
  j = one_json_line(&c);
  ASSERT_EQ(json_integer_value(json_object_get(j, "status")), 400);
  ASSERT_STREQ(jstr(j, "reason"), "CannotCreateChannelConfig");
  ASSERT_TRUE(json_object_get(j, "channel_id") == NULL);
  json_decref(j);
  fx_child_free(&c);
  srv_expect(&s, &c, ARGS(CONN(&s), CERT(&s), "channel", "delete", id), 0);
  fx_child_free(&c);
  srv_expect(&s, &c, ARGS(CONN(&s), CERT(&s), "channel", "create"), 0);
  fx_child_free(&c);

  /* Broadcast not enabled for the app: FeatureNotEnabled, for management and broadcasts alike. */
  srv_remock(&s, 1, chan_tweak_disabled);
  srv_expect(&s, &c, ARGS(CONN(&s), CERT(&s), "channel", "list"), 1);
  ASSERT_TRUE(strstr(fx_child_out(&c), "\"status\":400,\"reason\":\"FeatureNotEnabled\"") != NULL);
  fx_child_free(&c);
  srv_expect(&s, &c, ARGS(CONN(&s), CERT(&s), "--channel", CHAN, "--event", "update", "--content-state", "{}"), 1);
  ASSERT_TRUE(strstr(fx_child_out(&c), "\"reason\":\"FeatureNotEnabled\"") != NULL);
  fx_child_free(&c);
  /* A bundle id the client certificate does not cover: 403 TopicMismatch, for both kinds of request. */
  srv_expect(&s, &c,
             ARGS("--host", s.hostport, "--verify-name", "localhost", "--ca", path_in(s.dir, "ca.pem"), "--topic",
                  "com.other.app", CERT(&s), "channel", "list"),
             1);
  ASSERT_TRUE(strstr(fx_child_out(&c), "{\"op\":\"list\",\"status\":403,\"reason\":\"TopicMismatch\"") != NULL);
  fx_child_free(&c);
  srv_expect(&s, &c,
             ARGS("--host", s.hostport, "--verify-name", "localhost", "--ca", path_in(s.dir, "ca.pem"), "--topic",
                  "com.other.app", CERT(&s), "--channel", CHAN, "--event", "update", "--content-state", "{}"),
             1);
  ASSERT_TRUE(strstr(fx_child_out(&c), "\"status\":403,\"reason\":\"TopicMismatch\"") != NULL);
  fx_child_free(&c);

  /* No server: an error and a message, no status, exit 1 (once --timeout has passed: a refused connection may be a
   * server restarting). */
  const char *dead_port = "127.0.0.1:1";
  srv_expect(&s, &c,
             ARGS("--host", dead_port, "--verify-name", "localhost", "--ca", path_in(s.dir, "ca.pem"), "--topic",
                  TOPIC, CERT(&s), "--timeout", "0.5", "channel", "list"),
             1);
  j = one_json_line(&c);
  ASSERT_TRUE(json_is_null(json_object_get(j, "status")));
  ASSERT_NOT_NULL(jstr(j, "error"));
  ASSERT_NOT_NULL(jstr(j, "message"));
  json_decref(j);
  fx_child_free(&c);
  srv_stop(&s, NULL);
}

TEST(push_channel_token_auth_and_management_host) {
  /* Token auth: the management requests and the broadcast carry provider tokens the mock verifies. Two mocks:
   * --management-host takes the channel commands to the second, --host the broadcasts to the first. */
  srv s;
  char err[256] = "";
  srv_start_with(&s, 0, 1, chan_tweak);
  const char *p8 = path_in(s.dir, "client-key.pem");
  ASSERT_OK(apns__jwt_verifier_new(&s.verifier));
  ASSERT_OK(apns__jwt_verifier_add(s.verifier, "ABC123DEFG", p8, NULL, 0, err, sizeof err));
  fx_child c;
  srv_expect(&s, &c,
             ARGS(CONN(&s), "--p8", p8, "--key-id", "ABC123DEFG", "--team-id", "DEF123GHIJ", "channel", "create"), 0);
  json_t *j = one_json_line(&c);
  char id[APNS_CHANNEL_ID_MAX + 1];
  snprintf(id, sizeof id, "%s", jstr(j, "channel_id"));
  json_decref(j);
  fx_child_free(&c);
  srv_expect(&s, &c,
             ARGS(CONN(&s), "--p8", p8, "--key-id", "ABC123DEFG", "--team-id", "DEF123GHIJ", "--channel", id,
                  "--event", "update", "--content-state", "{\"n\":1}"),
             0);
  fx_child_free(&c);
  ASSERT_EQ(s.jwt_valid, 2);
  ASSERT_EQ(s.jwt_bad, 0);
  ASSERT_EQ(s.requests, 2);

  /* Split as Apple does: management on a listener of its own. --management-host takes the channel commands
   * there; without it they go to --host, which answers 404 BadPath; broadcasts stay on --host. */
  apns__jwt_verifier_free(s.verifier);
  s.verifier = NULL;
  srv_remock(&s, 1, chan_tweak_split);
  char manage[32];
  snprintf(manage, sizeof manage, "127.0.0.1:%d", apns_mock_manage_port(s.mock));
  srv_expect(&s, &c, ARGS(CONN(&s), CERT(&s), "channel", "create"), 1);
  ASSERT_TRUE(strstr(fx_child_out(&c), "\"status\":404,\"reason\":\"BadPath\"") != NULL);
  fx_child_free(&c);
  srv_expect(&s, &c, ARGS(CONN(&s), CERT(&s), "--management-host", manage, "channel", "create"), 0);
  j = one_json_line(&c);
  snprintf(id, sizeof id, "%s", jstr(j, "channel_id"));
  json_decref(j);
  fx_child_free(&c);
  srv_expect(&s, &c, ARGS(CONN(&s), CERT(&s), "--channel", id, "--event", "update", "--content-state", "{}"), 0);
  fx_child_free(&c);
  srv_expect(&s, &c, ARGS(CONN(&s), CERT(&s), "--management-host", manage, "channel", "delete", id), 0);
  fx_child_free(&c);
  srv_stop(&s, NULL);
}

/* What a request built by the library looks like as a --dry-run line (strings here need no escaping). */
static void dry_line(char *out, size_t cap, const char *method, const char *path, const apns_header *h, size_t nh,
                     const char *key, const char *body, size_t len) {
  size_t n = 0;
  if (method)
    n += (size_t)snprintf(out + n, cap - n, "{\"method\":\"%s\",\"path\":\"%s\",\"headers\":{", method, path);
  else
    n += (size_t)snprintf(out + n, cap - n, "{\"path\":\"%s\",\"headers\":{", path);
  for (size_t i = 0; i < nh; i++)
    n += (size_t)snprintf(out + n, cap - n, "%s\"%s\":\"%s\"", i ? "," : "", h[i].name, h[i].value);
  if (body)
    snprintf(out + n, cap - n, "},\"%s\":%.*s}\n", key, (int)len, body);
  else
    snprintf(out + n, cap - n, "}}\n");
}

TEST(push_channel_dry_run_matches_builders) {
  fx_child c;
  char want[8192];
  apns_channel_request req;
  static const struct {
    const char *args[10];
    apns_channel_op op;
    const char *id;
    apns_channel_storage storage;
    const char *rid;
  } cases[] = {
      {{"channel", "create"}, APNS_CHANNEL_CREATE, NULL, APNS_CHANNEL_STORAGE_NONE, NULL},
      {{"channel", "create", "--storage", "latest", "--request-id", RID},
       APNS_CHANNEL_CREATE,
       NULL,
       APNS_CHANNEL_STORAGE_LATEST,
       RID},
      {{"channel", "read", CHAN}, APNS_CHANNEL_READ, CHAN, 0, NULL},
      {{"--request-id", "AAAAAAAA-2222-4333-8444-55555555555F", "channel", "delete", CHAN},
       APNS_CHANNEL_DELETE,
       CHAN,
       0,
       "AAAAAAAA-2222-4333-8444-55555555555F"},
      {{"channel", "list", "--request-id", RID}, APNS_CHANNEL_LIST, NULL, 0, RID},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    const char *args[16] = {"--dry-run", "--topic", TOPIC};
    size_t n = 3;
    for (size_t k = 0; cases[i].args[k]; k++) args[n++] = cases[i].args[k];
    args[n] = NULL;
    memset(&c, 0, sizeof c);
    ASSERT_EQ(run_push(&c, args, NULL), 0);
    ASSERT_OK(apns_build_channel_request(cases[i].op, TOPIC, cases[i].id, cases[i].storage, cases[i].rid, &req,
                                         sizeof req));
    dry_line(want, sizeof want, req.method, req.path, req.headers, req.num_headers, "body",
             req.body_len ? req.body : NULL, req.body_len);
    ASSERT_STREQ(fx_child_out(&c), want);
    ASSERT_STREQ(fx_child_err(&c), "");
    fx_child_free(&c);
  }
  /* The topic's liveactivity suffix is not part of the bundle id, as for broadcasts. */
  memset(&c, 0, sizeof c);
  ASSERT_EQ(run_push(&c, ARGS("--dry-run", "--topic", TOPIC ".push-type.liveactivity", "channel", "list"), NULL), 0);
  ASSERT_STREQ(fx_child_out(&c), "{\"method\":\"GET\",\"path\":\"/1/apps/" TOPIC "/all-channels\",\"headers\":{}}\n");
  fx_child_free(&c);
  /* The request id goes out lowercase, as the library sends it. */
  memset(&c, 0, sizeof c);
  ASSERT_EQ(run_push(&c,
                     ARGS("--dry-run", "--topic", TOPIC, "--request-id", "AAAAAAAA-2222-4333-8444-55555555555F",
                          "channel", "read", CHAN),
                     NULL),
            0);
  ASSERT_STREQ(fx_child_out(&c),
               "{\"method\":\"GET\",\"path\":\"/1/apps/" TOPIC "/channels\",\"headers\":{\"apns-channel-id\":"
               "\"" CHAN "\",\"apns-request-id\":\"aaaaaaaa-2222-4333-8444-55555555555f\"}}\n");
  fx_child_free(&c);

  /* A broadcast: path and headers from apns_build_broadcast_request, the payload from the builder. The topic's
   * liveactivity suffix is not part of the path. */
  apns_broadcast_options bo = APNS_BROADCAST_OPTIONS_INIT;
  bo.priority = 5;
  bo.expiration = 1700003600;
  bo.request_id = RID;
  apns_broadcast_request br;
  ASSERT_OK(apns_build_broadcast_request(TOPIC ".push-type.liveactivity", CHAN, &bo, &br, sizeof br));
  apns_notification *n;
  ASSERT_OK(apns_notification_new(&n));
  ASSERT_OK(apns_notification_set_relevance_score(n, 0.25));
  ASSERT_OK(apns_notification_set_timestamp(n, 1700000000));
  ASSERT_OK(apns_notification_set_event(n, "end"));
  ASSERT_OK(apns_notification_set_content_state(n, "{\"home\":3, \"away\":1}"));
  ASSERT_OK(apns_notification_set_dismissal_date(n, 1700003600));
  const char *json;
  size_t len;
  ASSERT_OK(apns_notification_serialize(n, APNS_PAYLOAD_MAX_BROADCAST, &json, &len));
  dry_line(want, sizeof want, NULL, br.path, br.headers, br.num_headers, "payload", json, len);
  memset(&c, 0, sizeof c);
  ASSERT_EQ(run_push(&c,
                     ARGS("--dry-run", "--topic", TOPIC ".push-type.liveactivity", "--push-type", "liveactivity",
                          "--channel", CHAN, "--priority", "5", "--expiration", "1700003600", "--request-id", RID,
                          "--relevance-score", "0.25", "--timestamp", "1700000000", "--event", "end",
                          "--content-state", "{\"home\":3, \"away\":1}", "--dismissal-date", "1700003600"),
                     NULL),
            0);
  ASSERT_STREQ(fx_child_out(&c), want);
  ASSERT_STREQ(fx_child_out(&c),
               "{\"path\":\"/4/broadcasts/apps/" TOPIC "\",\"headers\":{\"apns-channel-id\":\"" CHAN "\","
               "\"apns-push-type\":\"liveactivity\",\"apns-priority\":\"5\",\"apns-expiration\":\"1700003600\","
               "\"apns-request-id\":\"" RID "\"},\"payload\":{\"aps\":{\"relevance-score\":0.25,\"timestamp\":"
               "1700000000,\"event\":\"end\",\"content-state\":{\"home\":3,\"away\":1},\"dismissal-date\":"
               "1700003600}}}\n");
  fx_child_free(&c);
  apns_notification_free(n);

  /* Push-to-start is a device send: the Live Activity flags build the same payload as the builder. */
  ASSERT_OK(apns_notification_new(&n));
  ASSERT_OK(apns_notification_set_timestamp(n, 1700000000));
  ASSERT_OK(apns_notification_set_event(n, "start"));
  ASSERT_OK(apns_notification_set_content_state(n, "{\"home\":0,\"away\":0}"));
  ASSERT_OK(apns_notification_set_attributes_type(n, "MatchAttributes"));
  ASSERT_OK(apns_notification_set_attributes(n, "{\"match\":\"A-B\"}"));
  ASSERT_OK(apns_notification_set_input_push_channel(n, CHAN));
  ASSERT_OK(apns_notification_set_alert_title(n, "Kick-off"));
  ASSERT_OK(apns_notification_set_alert_body(n, "A v B"));
  ASSERT_OK(apns_notification_serialize(n, APNS_PAYLOAD_MAX_BROADCAST, &json, &len));
  apns_send_options so = APNS_SEND_OPTIONS_INIT;
  so.push_type = APNS_PUSH_TYPE_LIVEACTIVITY;
  apns_send_request sr;
  ASSERT_OK(apns_build_send_request(TOPIC, TOK, &so, 0, &sr, sizeof sr));
  dry_line(want, sizeof want, NULL, sr.path, sr.headers, sr.num_headers, "payload", json, len);
  memset(&c, 0, sizeof c);
  ASSERT_EQ(run_push(&c,
                     ARGS("--dry-run", "--topic", TOPIC, "--push-type", "liveactivity", "--title", "Kick-off",
                          "--alert", "A v B", "--event", "start", "--timestamp", "1700000000", "--content-state",
                          "{\"home\":0,\"away\":0}", "--attributes-type", "MatchAttributes", "--attributes",
                          "{\"match\":\"A-B\"}", "--input-push-channel", CHAN, TOK),
                     NULL),
            0);
  ASSERT_STREQ(fx_child_out(&c), want);
  ASSERT_TRUE(strstr(want, "\"apns-topic\":\"" TOPIC ".push-type.liveactivity\"") != NULL);
  fx_child_free(&c);
  apns_notification_free(n);
  /* --input-push-token instead of a channel. */
  memset(&c, 0, sizeof c);
  ASSERT_EQ(run_push(&c,
                     ARGS("--dry-run", "--topic", TOPIC, "--push-type", "liveactivity", "--event", "start",
                          "--timestamp", "1", "--content-state", "{}", "--attributes-type", "T", "--attributes", "{}",
                          "--input-push-token", TOK),
                     NULL),
            0);
  ASSERT_TRUE(strstr(fx_child_out(&c), "\"input-push-token\":1") != NULL);
  fx_child_free(&c);
}

TEST(push_channel_usage_errors_exit_2) {
  static const struct {
    const char *args[12];
    const char *text; /* in stderr */
  } cases[] = {
      {{"--dry-run", "--topic", TOPIC, "channel"}, "channel: want create, read ID, delete ID or list"},
      {{"--dry-run", "--topic", TOPIC, "channel", "make"}, "channel \"make\": unknown command"},
      {{"--dry-run", "--topic", TOPIC, "channel", "read"}, "channel read: want the channel ID"},
      {{"--dry-run", "--topic", TOPIC, "channel", "list", "x"}, "channel list: too many arguments (\"x\")"},
      {{"--dry-run", "--topic", TOPIC, "channel", "read", "ab!c"}, "channel read \"ab!c\": "},
      {{"--dry-run", "--topic", TOPIC, "channel", "delete", "a\x1b[2Jb"}, "channel delete \"a\\u001b[2Jb\": "},
      {{"--dry-run", "channel", "list"}, "--topic is required"},
      {{"--dry-run", "--topic", "com.example.app+x", "channel", "list"},
       "--topic \"com.example.app+x\": not a bundle id"},
      {{"--dry-run", "--topic", TOPIC, "--storage", "some", "channel", "create"}, "--storage: want none or latest"},
      {{"--dry-run", "--topic", TOPIC, "--storage", "none", "channel", "list"}, "--storage goes with channel create"},
      {{"--dry-run", "--topic", TOPIC, "--request-id", "nope", "channel", "list"},
       "--request-id \"nope\": not a UUID"},
      {{"--dry-run", "--topic", TOPIC, "--alert", "x", "channel", "list"}, "channel commands take no payload"},
      {{"--dry-run", "--topic", TOPIC, "--management-host", "h:0", "channel", "list"}, "--management-host port"},
      {{"--topic", TOPIC, "channel", "list"}, "no authentication"},
      {{"--dry-run", "--topic", TOPIC, "--channel", "not base64!", "--event", "update"}, "--channel \"not base64!\""},
      {{"--dry-run", "--topic", TOPIC, "--channel", CHAN}, "no payload"},
      {{"--dry-run", "--topic", TOPIC, "--channel", CHAN, TOK}, "--channel and a device token"},
      {{"--dry-run", "--topic", TOPIC, "--channel", CHAN, "--bulk", "-"}, "--channel and --bulk"},
      {{"--dry-run", "--topic", TOPIC, "--channel", CHAN, "--push-type", "alert", "--alert", "x"},
       "--push-type alert: a broadcast is always liveactivity"},
      {{"--dry-run", "--topic", TOPIC, "--channel", CHAN, "--collapse-id", "c", "--alert", "x"},
       "--collapse-id does not go with --channel"},
      {{"--dry-run", "--topic", TOPIC, "--channel", CHAN, "--management-host", "h", "--alert", "x"},
       "--management-host goes with the channel commands"},
      {{"--dry-run", "--topic", TOPIC, "--request-id", RID, "--alert", "x", TOK},
       "--request-id goes with --channel or the channel commands"},
      {{"--dry-run", "--topic", TOPIC, "--channel", CHAN, "--event", "begin"}, "--event: want start, update or end"},
      {{"--dry-run", "--topic", TOPIC, "--channel", CHAN, "--content-state", "[1]"}, "--content-state: "},
      {{"--dry-run", "--topic", TOPIC, "--channel", CHAN, "--attributes", "{"}, "--attributes: "},
      {{"--dry-run", "--topic", TOPIC, "--channel", CHAN, "--relevance-score", "2"}, "--relevance-score: want"},
      {{"--dry-run", "--topic", TOPIC, "--channel", CHAN, "--stale-date", "soon"}, "--stale-date: want"},
      {{"--dry-run", "--topic", TOPIC, "--channel", CHAN, "--input-push-channel", "?", "--event", "start"},
       "--input-push-channel \"?\""},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    fx_child c;
    memset(&c, 0, sizeof c);
    int rc = run_push(&c, cases[i].args, NULL);
    if (rc != 2 || strstr(fx_child_err(&c), cases[i].text) == NULL)
      test__fail(__FILE__, __LINE__, "case %zu: exit %d, stderr:\n%s\n(want \"%s\")", i, rc, fx_child_err(&c),
                 cases[i].text);
    ASSERT_STREQ(fx_child_out(&c), "");
    fx_child_free(&c);
  }
  /* A broadcast payload over 5120 bytes is refused before anything connects. */
  char big[6000];
  memset(big, 'a', sizeof big);
  memcpy(big, "{\"aps\":{\"event\":\"update\"},\"x\":\"", 31);
  memcpy(big + sizeof big - 3, "\"}", 3);
  fx_child c;
  memset(&c, 0, sizeof c);
  ASSERT_EQ(run_push(&c, ARGS("--dry-run", "--topic", TOPIC, "--channel", CHAN, big), NULL), 2);
  ASSERT_TRUE(strstr(fx_child_err(&c), "more than the 5120 a broadcast may carry") != NULL);
  fx_child_free(&c);
}

static void hostile_chan_hook(void *data, apns_mock_request *req) {
  (void)data;
  req->status = 400;
  req->reason = "Bad\x1b[31mReason\x07\r\napns-push: forged";
}

static void chan_tweak_hostile(apns_mock_options *o) {
  o->on_request = hostile_chan_hook;
}

TEST(push_channel_hostile_reason_escaped) {
  /* A server's reason reaches stdout as valid JSON and stderr without a control byte. */
  srv s;
  srv_start_with(&s, 1, 1, chan_tweak_hostile);
  fx_child c;
  srv_expect(&s, &c, ARGS(CONN(&s), CERT(&s), "channel", "list"), 1);
  json_t *j = one_json_line(&c);
  ASSERT_STREQ(jstr(j, "reason"), "Bad\x1b[31mReason\x07\r\napns-push: forged");
  json_decref(j);
  ASSERT_TRUE(strstr(fx_child_out(&c), "\"reason\":\"Bad\\u001b[31mReason\\u0007\\r\\napns-push: forged\"") != NULL);
  fx_child_free(&c);
  srv_expect(&s, &c, ARGS(CONN(&s), CERT(&s), "--channel", CHAN, "--event", "update", "--content-state", "{}"), 1);
  ASSERT_TRUE(strstr(fx_child_out(&c), "\"reason\":\"Bad\\u001b[31mReason\\u0007\\r\\napns-push: forged\"") != NULL);
  ASSERT_TRUE(strstr(fx_child_err(&c), "400 Bad\\u001b[31mReason\\u0007\\r\\napns-push: forged") != NULL);
  ASSERT_TRUE(strstr(fx_child_err(&c), "\napns-push: forged") == NULL);
  ASSERT_TRUE(strchr(fx_child_err(&c), '\x1b') == NULL);
  fx_child_free(&c);
  srv_stop(&s, NULL);
}

TEST(push_bulk_channel_lines) {
  srv s;
  srv_start_with(&s, 1, 1, chan_tweak);
  fx_child c;
  srv_expect(&s, &c, ARGS(CONN(&s), CERT(&s), "channel", "create"), 0);
  json_t *j = one_json_line(&c);
  char id[APNS_CHANNEL_ID_MAX + 1];
  snprintf(id, sizeof id, "%s", jstr(j, "channel_id"));
  json_decref(j);
  fx_child_free(&c);
  /* A device line, a broadcast, one to a channel never made, a bad id, a broadcast with a device-only field. */
  char text[2048];
  snprintf(
      text, sizeof text,
      "{\"token\":\"" TOK "\",\"payload\":{\"aps\":{\"alert\":\"hi\"}}}\n"
      "{\"channel\":\"%s\",\"priority\":5,\"payload\":{\"aps\":{\"event\":\"update\",\"content-state\":{\"a\":1},"
      "\"timestamp\":1}}}\n"
      "{\"channel\":\"" CHAN "\"}\n"
      "{\"channel\":\"ab!c\"}\n"
      "{\"channel\":\"%s\",\"collapse_id\":\"x\"}\n",
      id, id);
  const char *path = fx_tmp_file("channels.jsonl", text);
  srv_expect(&s, &c, ARGS(CONN(&s), CERT(&s), "--event", "update", "--content-state", "{\"a\":0}", "--bulk", path),
             1);
  const char *o = fx_child_out(&c);
  ASSERT_EQ(count_lines(o), 5);
  char want[512];
  ASSERT_TRUE(strstr(o, "{\"line\":1,\"token\":\"" TOK "\",") != NULL);
  snprintf(want, sizeof want,
           "{\"line\":2,\"channel\":\"%s\",\"status\":200,\"reason\":null,\"apns_request_id\":", id);
  ASSERT_TRUE(strstr(o, want) != NULL);
  ASSERT_TRUE(strstr(o, "{\"line\":3,\"channel\":\"" CHAN "\",\"status\":400,\"reason\":\"ChannelNotRegistered\"") !=
              NULL);
  ASSERT_TRUE(strstr(o, "{\"line\":4,\"token\":null,") != NULL); /* not parsed: the id is not taken */
  ASSERT_TRUE(strstr(o, "\"error\":\"APNS_EBADCHANNELID\",\"message\":\"bad channel: ") != NULL);
  snprintf(want, sizeof want, "{\"line\":5,\"channel\":\"%s\",\"status\":null,", id);
  ASSERT_TRUE(strstr(o, want) != NULL);
  ASSERT_TRUE(strstr(o, "\"message\":\"\\\"collapse_id\\\" does not go with \\\"channel\\\"\"") != NULL);
  ASSERT_TRUE(strstr(fx_child_err(&c), "2 accepted, 1 rejected, 0 failed, 2 bad lines") != NULL);
  fx_child_free(&c);
  /* Line 2 as the mock got it is what --channel --dry-run prints for the same broadcast. */
  char last[8192];
  snprintf(last, sizeof last, "%s", s.last);
  ASSERT_EQ(s.requests, 4); /* create, the device send, two broadcasts: the last one line 3 */
  snprintf(text, sizeof text, "{\"channel\":\"%s\",\"priority\":5,\"payload\":{\"aps\":{\"event\":\"update\"}}}\n",
           id);
  path = fx_tmp_file("one.jsonl", text);
  srv_expect(&s, &c, ARGS(CONN(&s), CERT(&s), "--bulk", path), 0);
  snprintf(last, sizeof last, "%s", s.last);
  fx_child_free(&c);
  srv_expect(&s, &c, ARGS("--dry-run", CONN(&s), "--bulk", path), 0);
  ASSERT_STREQ(fx_child_out(&c), last);
  fx_child_free(&c);
  srv_expect(&s, &c,
             ARGS("--dry-run", CONN(&s), "--channel", id, "--priority", "5", "{\"aps\":{\"event\":\"update\"}}"), 0);
  ASSERT_STREQ(fx_child_out(&c), last);
  fx_child_free(&c);
  srv_stop(&s, NULL);
}

/* --proxy and the environment's https_proxy, as curl reads them: through a real HTTP CONNECT proxy (tinyproxy) and
 * a real SOCKS5 one (danted) to the mock; TLS is still verified for the mock's name, and each proxy's log shows
 * the tunnel. A proxy URL apns-push cannot use is a usage error that names the flag. */
TEST(push_through_proxies) {
  srv s;
  srv_start(&s, 1, 0);
  fx_daemon *http = fx_tinyproxy_start(NULL, NULL, apns_mock_port(s.mock));
  char url[64];
  snprintf(url, sizeof url, "http://127.0.0.1:%d", fx_daemon_port(http));
  fx_child c;
  memset(&c, 0, sizeof c);
  int rc = srv_push(&s, &c, ARGS(CONN(&s), CERT(&s), "--proxy", url, "--alert", "via CONNECT", TOK), NULL, NULL);
  if (rc != 0) test__fail(__FILE__, __LINE__, "exit %d:\n%s", rc, fx_child_err(&c));
  ASSERT_TRUE(strstr(fx_child_out(&c), "\"status\":200") != NULL);
  fx_child_free(&c);
  ASSERT_TRUE(strstr(fx_daemon_output(http), "CONNECT") != NULL ||
              strstr(fx_daemon_output(http), "Established") != NULL);
  fx_daemon_stop(http);

  fx_daemon *socks = fx_danted_start(NULL, NULL);
  char env_proxy[96];
  snprintf(env_proxy, sizeof env_proxy, "https_proxy=socks5h://127.0.0.1:%d", fx_daemon_port(socks));
  char *env[] = {env_proxy, NULL};
  memset(&c, 0, sizeof c);
  rc = srv_push(&s, &c, ARGS(CONN(&s), CERT(&s), "--alert", "via SOCKS5", TOK), NULL, env);
  if (rc != 0) test__fail(__FILE__, __LINE__, "exit %d:\n%s", rc, fx_child_err(&c));
  ASSERT_TRUE(strstr(fx_child_out(&c), "\"status\":200") != NULL);
  fx_child_free(&c);
  fx_daemon_stop(socks);

  memset(&c, 0, sizeof c);
  rc = srv_push(&s, &c, ARGS(CONN(&s), CERT(&s), "--proxy", "https://127.0.0.1:1", "--alert", "x", TOK), NULL, NULL);
  if (rc != 2 && rc != 1) test__fail(__FILE__, __LINE__, "exit %d:\n%s", rc, fx_child_err(&c));
  if (strstr(fx_child_err(&c), "--proxy: ") == NULL) test__fail(__FILE__, __LINE__, "stderr:\n%s", fx_child_err(&c));
  fx_child_free(&c);
  apns_mock_stats st;
  srv_stop(&s, &st);
  ASSERT_EQ(st.requests, 2); /* one through each proxy, none for the refused URL */
}

TEST_SUITE(push){
    TEST_ENTRY(push_through_proxies),
    TEST_ENTRY(push_help_and_version),
    TEST_ENTRY(push_usage_errors_exit_2),
    TEST_ENTRY(push_payload_too_large_exit_2),
    TEST_ENTRY(push_dry_run_built_payload),
    TEST_ENTRY(push_dry_run_json_argument),
    TEST_ENTRY(push_dry_run_push_type_suffix),
    TEST_ENTRY(push_dry_run_bulk),
    TEST_ENTRY(push_dry_run_bulk_stdin),
    TEST_ENTRY(push_dry_run_bulk_long_line),
    TEST_ENTRY(push_bad_key_file_exit_2),
    TEST_ENTRY(push_send_accepted_as_dry_run_says),
    TEST_ENTRY(push_bulk_rejected_and_dead_tokens),
    TEST_ENTRY(push_encrypted_key_passphrase),
    TEST_ENTRY(push_token_auth_verified_by_mock),
    TEST_ENTRY(push_bulk_million_bounded_memory),
    TEST_ENTRY(push_sigint_finishes_what_was_sent),
    TEST_ENTRY(push_unreachable_server_gives_up),
    TEST_ENTRY(push_reset_mid_write_no_sigpipe),
    TEST_ENTRY(push_stdout_closed_stops_cleanly),
    TEST_ENTRY(push_hostile_server_text_escaped),
    TEST_ENTRY(push_unexpected_status_told_apart),
    TEST_ENTRY(push_bulk_result_always_json),
    TEST_ENTRY(push_bulk_escape_text_for_terminals),
    TEST_ENTRY(push_bulk_line_parse_matches_jansson),
    TEST_ENTRY(push_bulk_line_parse_cases),
    TEST_ENTRY(push_channel_lifecycle_against_mock),
    TEST_ENTRY(push_channel_error_reasons),
    TEST_ENTRY(push_channel_token_auth_and_management_host),
    TEST_ENTRY(push_channel_dry_run_matches_builders),
    TEST_ENTRY(push_channel_usage_errors_exit_2),
    TEST_ENTRY(push_channel_hostile_reason_escaped),
    TEST_ENTRY(push_bulk_channel_lines),
    TEST_SUITE_END,
};

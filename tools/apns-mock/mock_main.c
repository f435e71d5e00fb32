/* apns-mock: the command. Parses options, makes throwaway certificates when asked, runs the mock server (mock.h)
 * until SIGINT or SIGTERM, then prints its counters on one line of stderr, and a line per broadcast channel. */
#include "mock.h"

#include "alloc.h"
#include "certgen.h"
#include "mbedtls_compat.h"

#include <errno.h>
#include <getopt.h>
#include <mbedtls/pk.h>
#include <mbedtls/x509_crt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const char usage[] =
    "usage: apns-mock [options]\n"
    "An APNs look-alike HTTP/2 server for tests and benchmarks, with Apple's checks (see tools/apns-mock/mock.h).\n"
    "\n"
    "  --listen HOST:PORT        address to listen on (default 127.0.0.1:0; [::1]:PORT for IPv6). With port 0\n"
    "                            the bound port is printed alone on the first line of stdout\n"
    "  --cert FILE --key FILE    server certificate chain and key (PEM)\n"
    "  --ca FILE                 require client certificates signed by this CA\n"
    "  --self-signed DIR         make a throwaway CA, server and client certificates (ca.pem, server.pem,\n"
    "                            server-key.pem, client.pem, client-key.pem) and a provider-token key\n"
    "                            (token-key.p8, PKCS#8 as Apple's .p8) in DIR and use them: client certificates\n"
    "                            are required unless --no-client-auth, and the token key is registered under\n"
    "                            --token-key-id unless --no-token-auth. When DIR already holds them (an earlier\n"
    "                            run's, for --topic) they are used as they are, never replaced, so mocks can\n"
    "                            share DIR; an incomplete or unusable set is refused (exit 1, naming the file)\n"
    "  --topic TOPIC             client certificate's topic for --self-signed (default com.example.app)\n"
    "  --no-client-auth          with --self-signed: do not ask for client certificates\n"
    "  --token-key-id ID         key id of --self-signed's token-key.p8 (default ABC123DEFG)\n"
    "  --no-token-auth           with --self-signed: write token-key.p8 but ask for no tokens\n"
    "  --token-key KEYID=FILE    verify provider tokens whose kid is KEYID with FILE (a .p8 private key or a public\n"
    "                            key PEM); repeatable. Connections without a client certificate then need\n"
    "                            'authorization: bearer <JWT>' (ES256) and get 403 MissingProviderToken,\n"
    "                            InvalidProviderToken, ExpiredProviderToken (iat over an hour old),\n"
    "                            UnrelatedKeyIdInToken, or 429 TooManyProviderTokenUpdates (a new token within\n"
    "                            20 minutes of the last); they start at 1 stream, max-streams after their first 200\n"
    "  --no-tls                  plain-TCP HTTP/2 (h2c with prior knowledge)\n"
    "  --bad-prefix P            tokens starting with P get 400 BadDeviceToken\n"
    "  --unregistered-prefix P   tokens starting with P get 410 Unregistered\n"
    "  --delay-ms N              hold every response N ms\n"
    "  --max-streams N           SETTINGS_MAX_CONCURRENT_STREAMS (default 1000)\n"
    "  --streams A,B             A streams until a connection's first response, then B (not for token connections)\n"
    "  --goaway-after N          GOAWAY after N requests on a connection\n"
    "  --goaway-reason TEXT      its debug data's reason (default Shutdown)\n"
    "  --drop-after N            close a connection without GOAWAY after answering N requests\n"
    "  --pause                   start with responses held; SIGUSR1 releases them, SIGUSR2 holds them again\n"
    "  --max-channels N          live broadcast channels an app may have (default 10000, Apple's limit)\n"
    "  --broadcast-disabled B    channel and broadcast requests for bundle id B get 400 FeatureNotEnabled\n"
    "  --split-management PORT   serve channel management (/1/apps/...) on a second listener on PORT (0: any;\n"
    "                            its port is printed on the second line of stdout), as Apple's\n"
    "                            api-manage-broadcast hosts; pushes and broadcasts stay on --listen\n"
    "  --chaos SEED[,RATE][,FAULT=RATE...][,hold-ms=MS]\n"
    "                            seeded faults at random (tools/apns-mock/mock_chaos.h): for each request one\n"
    "                            fault or none, RATE per million requests for each (default 200 for the\n"
    "                            connection faults drop, drop-write, goaway-drop, goaway-low, silent, garbage,\n"
    "                            limit, window; 1000 for the stream faults refuse, 500, 503, 429, hold, trickle).\n"
    "                            A bare RATE sets them all; hold-ms is how long hold holds (default 2000). The\n"
    "                            seed is printed on stderr at start: the same SEED replays the same faults\n"
    "  --help                    this text\n";

enum {
  OPT_LISTEN = 256,
  OPT_CERT,
  OPT_KEY,
  OPT_CA,
  OPT_SELF_SIGNED,
  OPT_TOPIC,
  OPT_NO_CLIENT_AUTH,
  OPT_NO_TLS,
  OPT_BAD_PREFIX,
  OPT_UNREG_PREFIX,
  OPT_DELAY,
  OPT_MAX_STREAMS,
  OPT_STREAMS,
  OPT_GOAWAY_AFTER,
  OPT_GOAWAY_REASON,
  OPT_DROP_AFTER,
  OPT_PAUSE,
  OPT_TOKEN_KEY,
  OPT_TOKEN_KEY_ID,
  OPT_NO_TOKEN_AUTH,
  OPT_MAX_CHANNELS,
  OPT_BROADCAST_DISABLED,
  OPT_SPLIT_MANAGEMENT,
  OPT_CHAOS,
  OPT_HELP,
};

static const struct option longopts[] = {
    {"listen", required_argument, NULL, OPT_LISTEN},
    {"cert", required_argument, NULL, OPT_CERT},
    {"key", required_argument, NULL, OPT_KEY},
    {"ca", required_argument, NULL, OPT_CA},
    {"self-signed", required_argument, NULL, OPT_SELF_SIGNED},
    {"topic", required_argument, NULL, OPT_TOPIC},
    {"no-client-auth", no_argument, NULL, OPT_NO_CLIENT_AUTH},
    {"no-tls", no_argument, NULL, OPT_NO_TLS},
    {"bad-prefix", required_argument, NULL, OPT_BAD_PREFIX},
    {"unregistered-prefix", required_argument, NULL, OPT_UNREG_PREFIX},
    {"delay-ms", required_argument, NULL, OPT_DELAY},
    {"max-streams", required_argument, NULL, OPT_MAX_STREAMS},
    {"streams", required_argument, NULL, OPT_STREAMS},
    {"goaway-after", required_argument, NULL, OPT_GOAWAY_AFTER},
    {"goaway-reason", required_argument, NULL, OPT_GOAWAY_REASON},
    {"drop-after", required_argument, NULL, OPT_DROP_AFTER},
    {"pause", no_argument, NULL, OPT_PAUSE},
    {"token-key", required_argument, NULL, OPT_TOKEN_KEY},
    {"token-key-id", required_argument, NULL, OPT_TOKEN_KEY_ID},
    {"no-token-auth", no_argument, NULL, OPT_NO_TOKEN_AUTH},
    {"max-channels", required_argument, NULL, OPT_MAX_CHANNELS},
    {"broadcast-disabled", required_argument, NULL, OPT_BROADCAST_DISABLED},
    {"split-management", required_argument, NULL, OPT_SPLIT_MANAGEMENT},
    {"chaos", required_argument, NULL, OPT_CHAOS},
    {"help", no_argument, NULL, OPT_HELP},
    {NULL, 0, NULL, 0},
};

#define MAX_TOKEN_KEYS 16

typedef struct {
  uv_signal_t sig[4];
  apns_mock *mock;
  int stopped;
} app;

static int parse_u32(const char *s, uint32_t *out, const char *what) {
  char *end;
  errno = 0;
  unsigned long v = strtoul(s, &end, 10);
  if (errno != 0 || end == s || *end != '\0' || v > UINT32_MAX || s[0] == '-') {
    fprintf(stderr, "apns-mock: %s: not a number: %s\n", what, s);
    return -1;
  }
  *out = (uint32_t)v;
  return 0;
}

/* "127.0.0.1:2197", "[::1]:0", "localhost:0" is refused (no DNS here). host is rewritten in place. */
static int parse_listen(char *spec, apns_mock_options *o) {
  char *colon = strrchr(spec, ':');
  uint32_t port;
  if (colon == NULL || parse_u32(colon + 1, &port, "--listen port") != 0 || port > 65535) {
    fprintf(stderr, "apns-mock: --listen wants HOST:PORT, got %s\n", spec);
    return -1;
  }
  *colon = '\0';
  if (spec[0] == '[') {
    size_t n = strlen(spec);
    if (n < 2 || spec[n - 1] != ']') {
      fprintf(stderr, "apns-mock: --listen: bad IPv6 literal %s\n", spec);
      return -1;
    }
    spec[n - 1] = '\0';
    spec++;
  }
  o->host = spec;
  o->port = (int)port;
  return 0;
}

static void print_channel(void *data, const apns_mock_channel *ch) {
  (void)data;
  fprintf(stderr, "apns-mock: channel %s bundle=%s storage=%d broadcasts=%llu rejected=%llu%s\n", ch->id,
          ch->bundle_id, ch->storage, (unsigned long long)ch->broadcasts, (unsigned long long)ch->rejected,
          ch->deleted ? " deleted" : "");
}

static void on_stopped(apns_mock *m, void *data) {
  (void)data;
  apns_mock_stats st;
  char line[2048];
  apns_mock_get_stats(m, &st);
  apns_mock_format_stats(&st, line, sizeof line);
  fprintf(stderr, "apns-mock: %s\n", line);
  apns_mock_foreach_channel(m, print_channel, NULL);
  fflush(stderr);
}

static void sig_closed(uv_handle_t *h) {
  (void)h;
}

static void on_signal(uv_signal_t *s, int signum) {
  app *a = s->data;
  if (signum == SIGUSR1 || signum == SIGUSR2) {
    apns_mock_set_paused(a->mock, signum == SIGUSR2);
    return;
  }
  if (a->stopped) return;
  a->stopped = 1;
  for (int i = 0; i < 4; i++) uv_close((uv_handle_t *)&a->sig[i], sig_closed);
  apns_mock_stop(a->mock, on_stopped, a);
}

/* --self-signed DIR: what it writes, in the order of apns__certgen_result. */
static const char *const self_files[] = {"ca.pem",     "server.pem",     "server-key.pem",
                                         "client.pem", "client-key.pem", "token-key.p8"};
#define SELF_FILES (sizeof self_files / sizeof self_files[0])

static char **self_field(apns__certgen_result *r, size_t i) {
  char **fields[SELF_FILES] = {&r->ca_cert,     &r->server_cert, &r->server_key,
                               &r->client_cert, &r->client_key,  &r->token_key};
  return fields[i];
}

/* Reads a whole file as NUL-terminated text (apns__malloc'd), or NULL. */
static char *read_text(const char *path) {
  FILE *f = fopen(path, "rb");
  char *buf = NULL;
  size_t len = 0, cap = 0, n;
  if (f == NULL) return NULL;
  do {
    if (cap - len < 4096) {
      char *p = apns__realloc(buf, cap + 8192);
      if (p == NULL) break;
      buf = p;
      cap += 8192;
    }
    n = fread(buf + len, 1, cap - len - 1, f);
    len += n;
  } while (n > 0);
  int bad = ferror(f) || buf == NULL;
  fclose(f);
  if (bad) {
    apns__free(buf);
    return NULL;
  }
  buf[len] = '\0';
  return buf;
}

/* Why a certificate and its key from a DIR of ours cannot serve: "" when they can. */
/* mbedTLS 3 wants an RNG to parse and pair-check keys (blinding); 2.28 takes none. The support library's, which
 * --self-signed's certificates came from. */
static void check_pair(const char *cert_pem, const char *key_pem, mbedtls_x509_crt *ca, const char *cn,
                       const char *topic, char *why, size_t len) {
  mbedtls_x509_crt crt;
  mbedtls_pk_context key;
  uint32_t flags = 0;
  mbedtls_x509_crt_init(&crt);
  mbedtls_pk_init(&key);
  if (mbedtls_x509_crt_parse(&crt, (const unsigned char *)cert_pem, strlen(cert_pem) + 1) != 0)
    snprintf(why, len, "not a PEM certificate");
  else if (mbedtls_x509_crt_verify(&crt, ca, NULL, cn, &flags, NULL, NULL) != 0)
    snprintf(why, len, "does not verify against ca.pem (expired, another CA, or not for %s)", cn ? cn : "us");
  else if (apns__mbed_pk_parse_key(&key, (const unsigned char *)key_pem, strlen(key_pem) + 1, NULL, 0,
                                   apns__certgen_rng, NULL) != 0 ||
           apns__mbed_pk_check_pair(&crt.pk, &key, apns__certgen_rng, NULL) != 0)
    snprintf(why, len, "its key is missing, unreadable or another one's");
  else if (topic != NULL) {
    static const char uid_oid[] = "\x09\x92\x26\x89\x93\xF2\x2C\x64\x01\x01";
    const mbedtls_x509_name *n;
    for (n = &crt.subject; n != NULL; n = n->next)
      if (n->oid.len == sizeof uid_oid - 1 && memcmp(n->oid.p, uid_oid, n->oid.len) == 0) break;
    if (n == NULL || n->val.len != strlen(topic) || memcmp(n->val.p, topic, n->val.len) != 0)
      snprintf(why, len, "was made for another --topic than %s", topic);
  }
  mbedtls_pk_free(&key);
  mbedtls_x509_crt_free(&crt);
}

/* Takes what an earlier --self-signed left in dir when it is complete and still good, so that a second mock
 * serves with the first one's certificates and neither's clients break. Returns 0, or -1 with the reason
 * printed. */
static int self_signed_reuse(const char *dir, const char *topic, apns__certgen_result *res) {
  char path[4096], why[200] = "";
  size_t i;
  mbedtls_x509_crt ca;
  mbedtls_pk_context tk;
  for (i = 0; i < SELF_FILES; i++) {
    snprintf(path, sizeof path, "%s/%s", dir, self_files[i]);
    if ((*self_field(res, i) = read_text(path)) == NULL) break;
  }
  if (i == SELF_FILES) {
    mbedtls_x509_crt_init(&ca);
    mbedtls_pk_init(&tk);
    if (mbedtls_x509_crt_parse(&ca, (const unsigned char *)res->ca_cert, strlen(res->ca_cert) + 1) != 0) {
      i = 0;
      snprintf(why, sizeof why, "not a PEM certificate");
    }
    if (why[0] == '\0') {
      check_pair(res->server_cert, res->server_key, &ca, "localhost", NULL, why, sizeof why);
      if (why[0]) i = 1;
    }
    if (why[0] == '\0') {
      check_pair(res->client_cert, res->client_key, &ca, NULL, topic, why, sizeof why);
      if (why[0]) i = 3;
    }
    if (why[0] == '\0' &&
        apns__mbed_pk_parse_key(&tk, (const unsigned char *)res->token_key, strlen(res->token_key) + 1, NULL, 0,
                                apns__certgen_rng, NULL) != 0) {
      i = 5;
      snprintf(why, sizeof why, "not a private key");
    }
    mbedtls_pk_free(&tk);
    mbedtls_x509_crt_free(&ca);
    if (why[0] == '\0') return 0;
  } else {
    snprintf(why, sizeof why, "cannot be read: %s", strerror(errno));
  }
  fprintf(stderr,
          "apns-mock: --self-signed %s holds certificates of an earlier run, but %s %s; remove them (or pick "
          "another DIR) to make new ones\n",
          dir, self_files[i], why);
  apns__certgen_free(res);
  return -1;
}

static int self_signed(const char *dir, const char *topic, apns__certgen_result *res) {
  char err[256] = "", path[4096];
  size_t present = 0;
  apns__certgen_options co;
  memset(&co, 0, sizeof co);
  co.topic = topic;
  co.token_key = 1;
  if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
    fprintf(stderr, "apns-mock: mkdir %s: %s\n", dir, strerror(errno));
    return -1;
  }
  for (size_t i = 0; i < SELF_FILES; i++) {
    struct stat st;
    snprintf(path, sizeof path, "%s/%s", dir, self_files[i]);
    if (stat(path, &st) == 0) present++;
  }
  /* Never write over an earlier run's certificates: a mock still running with them would lose its clients. */
  if (present > 0) return self_signed_reuse(dir, topic, res);
  int rv = apns__certgen(&co, res, err, sizeof err);
  if (rv == 0) rv = apns__certgen_write_dir(dir, res, err, sizeof err);
  if (rv != 0) {
    fprintf(stderr, "apns-mock: --self-signed: %s (%s)\n", err, apns_strerror(rv));
    return -1;
  }
  return 0;
}

/* What the command line asks for: the server's options, and how --self-signed is to fill in their credentials. */
typedef struct {
  apns_mock_options o;
  const char *self_dir, *topic, *token_key_id;
  int no_client_auth, no_tls, no_token_auth;
  apns_mock_token_key keys[MAX_TOKEN_KEYS + 1]; /* one more for --self-signed's */
  size_t nkeys;
  char *listen_spec;
} cli;

/* --streams A,B. */
static int parse_streams(char *arg, apns_mock_options *o) {
  char *comma = strchr(arg, ',');
  if (comma == NULL) {
    fprintf(stderr, "apns-mock: --streams wants A,B\n");
    return 2;
  }
  *comma = '\0';
  if (parse_u32(arg, &o->max_streams, "--streams") != 0 ||
      parse_u32(comma + 1, &o->streams_after, "--streams") != 0 || o->max_streams == 0 || o->streams_after == 0)
    return 2;
  return 0;
}

/* --token-key KEYID=FILE. */
static int parse_token_key(char *arg, cli *c) {
  char *eq = strchr(arg, '=');
  if (eq == NULL || eq == arg || eq[1] == '\0') {
    fprintf(stderr, "apns-mock: --token-key wants KEYID=FILE, got %s\n", arg);
    return 2;
  }
  if (c->nkeys == MAX_TOKEN_KEYS) {
    fprintf(stderr, "apns-mock: at most %d --token-key\n", MAX_TOKEN_KEYS);
    return 2;
  }
  *eq = '\0';
  c->keys[c->nkeys++] = (apns_mock_token_key){.key_id = arg, .file = eq + 1};
  return 0;
}

/* The options that shape the server's answers (rather than its address and credentials): 0, 2 for a bad value, or
 * -1 when opt is none of them. */
static int parse_answer_option(int opt, char *arg, apns_mock_options *o) {
  switch (opt) {
  case OPT_BAD_PREFIX:
    o->bad_prefix = arg;
    return 0;
  case OPT_UNREG_PREFIX:
    o->unregistered_prefix = arg;
    return 0;
  case OPT_DELAY:
    return parse_u32(arg, &o->delay_ms, "--delay-ms") != 0 ? 2 : 0;
  case OPT_MAX_STREAMS:
    if (parse_u32(arg, &o->max_streams, "--max-streams") != 0 || o->max_streams == 0) return 2;
    o->streams_after = 0;
    return 0;
  case OPT_STREAMS:
    return parse_streams(arg, o);
  case OPT_GOAWAY_AFTER:
    return parse_u32(arg, &o->goaway_after, "--goaway-after") != 0 ? 2 : 0;
  case OPT_GOAWAY_REASON:
    o->goaway_reason = arg;
    return 0;
  case OPT_DROP_AFTER:
    return parse_u32(arg, &o->drop_after, "--drop-after") != 0 ? 2 : 0;
  case OPT_PAUSE:
    o->paused = 1;
    return 0;
  case OPT_MAX_CHANNELS:
    return parse_u32(arg, &o->max_channels, "--max-channels") != 0 || o->max_channels == 0 ? 2 : 0;
  case OPT_BROADCAST_DISABLED:
    o->broadcast_disabled = arg;
    return 0;
  case OPT_SPLIT_MANAGEMENT: {
    uint32_t p;
    if (parse_u32(arg, &p, "--split-management") != 0 || p > 65535) return 2;
    o->split_management = 1;
    o->manage_port = (int)p;
    return 0;
  }
  case OPT_CHAOS: {
    char cerr[160];
    if (apns_mock_chaos_parse(&o->chaos, arg, cerr, sizeof cerr) != 0) {
      fprintf(stderr, "apns-mock: %s\n", cerr);
      return 2;
    }
    return 0;
  }
  default:
    return -1;
  }
}

/* The address and credentials options, and those of --self-signed: 0, 2 for a bad value, or -1 when opt is none of
 * them. */
static int parse_server_option(int opt, char *arg, cli *c) {
  switch (opt) {
  case OPT_LISTEN:
    c->listen_spec = arg;
    return 0;
  case OPT_CERT:
    c->o.cert_file = arg;
    return 0;
  case OPT_KEY:
    c->o.key_file = arg;
    return 0;
  case OPT_CA:
    c->o.ca_file = arg;
    return 0;
  case OPT_NO_TLS:
    c->no_tls = 1;
    return 0;
  case OPT_TOKEN_KEY:
    return parse_token_key(arg, c);
  case OPT_SELF_SIGNED:
    c->self_dir = arg;
    return 0;
  case OPT_TOPIC:
    c->topic = arg;
    return 0;
  case OPT_NO_CLIENT_AUTH:
    c->no_client_auth = 1;
    return 0;
  case OPT_TOKEN_KEY_ID:
    c->token_key_id = arg;
    return 0;
  case OPT_NO_TOKEN_AUTH:
    c->no_token_auth = 1;
    return 0;
  default:
    return -1;
  }
}

/* Fills c from the command line: -1 to go on and serve, or the status to exit with (0 after --help, 2 for a usage
 * error, printed). */
static int parse_args(int argc, char **argv, cli *c) {
  int opt, rv;
  while ((opt = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
    if (opt == 'h' || opt == OPT_HELP) {
      fputs(usage, stdout);
      return 0;
    }
    if ((rv = parse_server_option(opt, optarg, c)) == -1) rv = parse_answer_option(opt, optarg, &c->o);
    if (rv == -1) fputs(usage, stderr);
    if (rv != 0) return 2;
  }
  if (optind < argc) {
    fprintf(stderr, "apns-mock: unexpected argument %s\n", argv[optind]);
    return 2;
  }
  if (c->listen_spec != NULL && parse_listen(c->listen_spec, &c->o) != 0) return 2;
  if (c->self_dir != NULL && (c->o.cert_file || c->o.key_file || c->o.ca_file || c->no_tls)) {
    fprintf(stderr, "apns-mock: --self-signed goes with neither --cert, --key, --ca nor --no-tls\n");
    return 2;
  }
  if (c->self_dir == NULL && !c->no_tls && c->o.cert_file == NULL) {
    fprintf(stderr, "apns-mock: give --cert and --key, --self-signed DIR, or --no-tls\n");
    return 2;
  }
  if (c->no_tls && (c->o.cert_file || c->o.key_file || c->o.ca_file)) {
    fprintf(stderr, "apns-mock: --no-tls goes with neither --cert, --key nor --ca\n");
    return 2;
  }
  return -1;
}

/* Runs the server with o until a signal stops it: the exit status. */
static int serve(const apns_mock_options *o, apns__certgen_result *certs) {
  /* A client that goes away mid-write must cost an EPIPE, not the process. */
  signal(SIGPIPE, SIG_IGN);
  uv_loop_t loop;
  uv_loop_init(&loop);
  app a;
  memset(&a, 0, sizeof a);
  char err[512] = "";
  int rv = apns_mock_start(&a.mock, &loop, o, err, sizeof err);
  apns__certgen_free(certs); /* the TLS config has its own copy of the keys */
  if (rv != 0) {
    fprintf(stderr, "apns-mock: %s%s%s\n", apns_strerror(rv), *err ? ": " : "", err);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    return 1;
  }
  static const int signums[4] = {SIGINT, SIGTERM, SIGUSR1, SIGUSR2};
  for (int i = 0; i < 4; i++) {
    uv_signal_init(&loop, &a.sig[i]);
    a.sig[i].data = &a;
    uv_signal_start(&a.sig[i], on_signal, signums[i]);
  }
  if (o->chaos.enabled) /* before the port line, so a reader that sees the port has the seed already */
    fprintf(stderr, "apns-mock: chaos seed %llu (replay: --chaos %llu)\n", (unsigned long long)o->chaos.seed,
            (unsigned long long)o->chaos.seed);
  printf("%d\n", apns_mock_port(a.mock));
  if (o->split_management) printf("%d\n", apns_mock_manage_port(a.mock));
  fflush(stdout);

  uv_run(&loop, UV_RUN_DEFAULT);
  rv = uv_loop_close(&loop);
  if (rv != 0) {
    fprintf(stderr, "apns-mock: loop not empty at exit: %s\n", uv_strerror(rv));
    return 1;
  }
  return 0;
}

int main(int argc, char **argv) {
  cli c;
  memset(&c, 0, sizeof c);
  apns_mock_options_init(&c.o);
  c.topic = "com.example.app";
  c.token_key_id = "ABC123DEFG";
  int rv = parse_args(argc, argv, &c);
  if (rv != -1) return rv;

  apns__certgen_result certs;
  memset(&certs, 0, sizeof certs);
  if (c.self_dir != NULL) {
    if (self_signed(c.self_dir, c.topic, &certs) != 0) return 1;
    c.o.cert_pem = certs.server_cert;
    c.o.key_pem = certs.server_key;
    if (!c.no_client_auth) c.o.ca_pem = certs.ca_cert;
    if (!c.no_token_auth) c.keys[c.nkeys++] = (apns_mock_token_key){.key_id = c.token_key_id, .pem = certs.token_key};
  }
  c.o.token_keys = c.keys;
  c.o.num_token_keys = c.nkeys;
  return serve(&c.o, &certs);
}

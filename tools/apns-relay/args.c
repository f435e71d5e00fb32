/* apns-relay: the command line. apns-push's argument handling is part of apns-push (its payload and bulk flags
 * belong to one run); the relay has a small table of its own with the same spelling for the APNs side. Every
 * check that needs no network is made here: a mistake ends the run with status 2 before anything connects. */
#include "relay.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char usage_text[] =
    "usage: apns-relay [redis] [apns] [auth]\n"
    "Sends the notifications of a Redis stream through APNs, as one consumer of a consumer group, and writes\n"
    "each entry's result to a results stream before acknowledging it.\n"
    "\n"
    "Redis:\n"
    "  --redis URL               redis://[user:pass@]host:port/db or unix:///path (default\n"
    "                            redis://127.0.0.1:6379/0)\n"
    "  --stream KEY              the stream of entries, field \"notification\" (default apns); give it once\n"
    "                            per stream to read several (one per Redis Cluster shard: {s0}:push ...)\n"
    "  --group NAME              the consumer group, created when missing (default apns-relay)\n"
    "  --consumer NAME           this relay's name in the group (default: host name-pid)\n"
    "  --results KEY             where result entries go, field \"result\" (default STREAM:results; with\n"
    "                            several streams always STREAM:results, and the same for the next two)\n"
    "  --dead-letter KEY         entries delivered more than --max-deliveries times (default STREAM:dead-letter)\n"
    "  --dead-tokens KEY         tokens Apple calls dead: Unregistered, ExpiredToken, BadDeviceToken,\n"
    "                            DeviceTokenNotForTopic (default STREAM:dead-tokens)\n"
    "  --batch N                 entries asked for per read (default 256)\n"
    "  --block-ms MS             how long a read waits for new entries (default 1000)\n"
    "  --claim-idle-ms MS        entries idle this long in another consumer are taken over (default 60000;\n"
    "                            keep it longer than --timeout)\n"
    "  --max-deliveries N        an entry delivered more often goes to --dead-letter (default 5)\n"
    "  --max-held N              entries read and not yet acknowledged, at most (default 2000 per connection)\n"
    "  --drain-ms MS             on SIGTERM, time to finish what was read (default 30000)\n"
    "  --metrics HOST:PORT       serve GET /metrics (Prometheus text) and GET /health\n"
    "APNs:\n"
    "  --production, --development, --host HOST[:PORT], --ca FILE, --verify-name NAME, --insecure,\n"
    "  --connections N (default 2), --timeout SECONDS (default 10), --topic TOPIC: as apns-push\n"
    "Auth (one of):\n"
    "  --cert FILE --key FILE [--key-pass-env VAR]   client certificate\n"
    "  --p8 FILE --key-id ID --team-id ID            token auth\n"
    "  --help, --version\n";

enum {
  OPT_REDIS = 256,
  OPT_STREAM,
  OPT_GROUP,
  OPT_CONSUMER,
  OPT_RESULTS,
  OPT_DEAD_LETTER,
  OPT_DEAD_TOKENS,
  OPT_BATCH,
  OPT_BLOCK_MS,
  OPT_CLAIM_IDLE_MS,
  OPT_MAX_DELIVERIES,
  OPT_MAX_HELD,
  OPT_DRAIN_MS,
  OPT_METRICS,
  OPT_PRODUCTION,
  OPT_DEVELOPMENT,
  OPT_HOST,
  OPT_CA,
  OPT_VERIFY_NAME,
  OPT_INSECURE,
  OPT_CONNECTIONS,
  OPT_TIMEOUT,
  OPT_CERT,
  OPT_KEY,
  OPT_KEY_PASS_ENV,
  OPT_P8,
  OPT_KEY_ID,
  OPT_TEAM_ID,
  OPT_TOPIC,
  OPT_HELP,
  OPT_VERSION,
};

static const struct option longopts[] = {
    {"redis", required_argument, NULL, OPT_REDIS},
    {"stream", required_argument, NULL, OPT_STREAM},
    {"group", required_argument, NULL, OPT_GROUP},
    {"consumer", required_argument, NULL, OPT_CONSUMER},
    {"results", required_argument, NULL, OPT_RESULTS},
    {"dead-letter", required_argument, NULL, OPT_DEAD_LETTER},
    {"dead-tokens", required_argument, NULL, OPT_DEAD_TOKENS},
    {"batch", required_argument, NULL, OPT_BATCH},
    {"block-ms", required_argument, NULL, OPT_BLOCK_MS},
    {"claim-idle-ms", required_argument, NULL, OPT_CLAIM_IDLE_MS},
    {"max-deliveries", required_argument, NULL, OPT_MAX_DELIVERIES},
    {"max-held", required_argument, NULL, OPT_MAX_HELD},
    {"drain-ms", required_argument, NULL, OPT_DRAIN_MS},
    {"metrics", required_argument, NULL, OPT_METRICS},
    {"production", no_argument, NULL, OPT_PRODUCTION},
    {"development", no_argument, NULL, OPT_DEVELOPMENT},
    {"host", required_argument, NULL, OPT_HOST},
    {"ca", required_argument, NULL, OPT_CA},
    {"verify-name", required_argument, NULL, OPT_VERIFY_NAME},
    {"insecure", no_argument, NULL, OPT_INSECURE},
    {"connections", required_argument, NULL, OPT_CONNECTIONS},
    {"timeout", required_argument, NULL, OPT_TIMEOUT},
    {"cert", required_argument, NULL, OPT_CERT},
    {"key", required_argument, NULL, OPT_KEY},
    {"key-pass-env", required_argument, NULL, OPT_KEY_PASS_ENV},
    {"p8", required_argument, NULL, OPT_P8},
    {"key-id", required_argument, NULL, OPT_KEY_ID},
    {"team-id", required_argument, NULL, OPT_TEAM_ID},
    {"topic", required_argument, NULL, OPT_TOPIC},
    {"help", no_argument, NULL, OPT_HELP},
    {"version", no_argument, NULL, OPT_VERSION},
    {NULL, 0, NULL, 0},
};

static int usage(const char *fmt, const char *a, const char *b) {
  fprintf(stderr, "apns-relay: ");
  fprintf(stderr, fmt, a, b);
  fprintf(stderr, "\n(apns-relay --help tells the flags)\n");
  return RELAY_EXIT_USAGE;
}

/* A decimal number in [lo, hi]. */
static int number(const char *flag, const char *s, uint64_t lo, uint64_t hi, uint64_t *out) {
  char *end;
  errno = 0;
  unsigned long long v = strtoull(s, &end, 10);
  if (*s == '\0' || *s == '-' || *end != '\0' || errno != 0 || v < lo || v > hi) {
    char range[64];
    snprintf(range, sizeof range, "%llu..%llu", (unsigned long long)lo, (unsigned long long)hi);
    fprintf(stderr, "apns-relay: %s %s: not a number in %s\n", flag, s, range);
    return -1;
  }
  *out = v;
  return 0;
}

static int host_port(const char *flag, const char *arg, const char **host, uint16_t *port, int need_port) {
  static char hostbuf[2][300];
  static int next;
  char *h = hostbuf[next++ % 2];
  const char *colon;
  if (arg[0] == '[') {
    const char *close = strchr(arg, ']');
    if (close == NULL || (close[1] != '\0' && close[1] != ':')) return usage("%s %s: bad [IPv6] address", flag, arg);
    snprintf(h, 300, "%.*s", (int)(close - arg - 1), arg + 1);
    colon = close[1] == ':' ? close + 1 : NULL;
  } else {
    colon = strrchr(arg, ':');
    snprintf(h, 300, "%.*s", colon ? (int)(colon - arg) : (int)strlen(arg), arg);
  }
  if (h[0] == '\0') return usage("%s %s: no host", flag, arg);
  uint64_t p = 443;
  if (colon && number(flag, colon + 1, need_port ? 0 : 1, 65535, &p) < 0) return RELAY_EXIT_USAGE;
  if (!colon && need_port) return usage("%s %s: HOST:PORT wanted", flag, arg);
  *host = h;
  *port = (uint16_t)p;
  return 0;
}

int relay_parse_args(int argc, char **argv, relay_opts *o) {
  uint64_t v;
  const char *pass_env = NULL, *metrics_host = NULL;
  uint16_t metrics_port = 0;
  memset(o, 0, sizeof *o);
  o->redis_url = "redis://127.0.0.1:6379/0";
  o->group = "apns-relay";
  o->batch = 256;
  o->block_ms = 1000;
  o->claim_idle_ms = 60000;
  o->drain_ms = 30000;
  o->max_deliveries = 5;
  o->connections = 2;
  o->timeout_ms = APNS_DEFAULT_TIMEOUT_MS;
  o->endpoint = APNS_ENDPOINT_PRODUCTION;
  int c;
  opterr = 0;
  optind = 1;
  while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
    const char *arg = optarg;
    switch (c) {
    case OPT_REDIS:
      o->redis_url = arg;
      break;
    case OPT_STREAM:
      if (o->n_streams == RELAY_MAX_STREAMS) return usage("--stream %s: at most %s streams", arg, "64");
      if (arg[0] == '\0') return usage("--stream: an empty name%s%s", "", "");
      for (unsigned i = 0; i < o->n_streams; i++)
        if (strcmp(o->streams[i], arg) == 0) return usage("--stream %s: given twice%s", arg, "");
      o->streams[o->n_streams++] = arg;
      break;
    case OPT_GROUP:
      o->group = arg;
      break;
    case OPT_CONSUMER:
      o->consumer = arg;
      break;
    case OPT_RESULTS:
      o->results = arg;
      break;
    case OPT_DEAD_LETTER:
      o->dead_letter = arg;
      break;
    case OPT_DEAD_TOKENS:
      o->dead_tokens = arg;
      break;
    case OPT_BATCH:
      if (number("--batch", arg, 1, 100000, &v) < 0) return RELAY_EXIT_USAGE;
      o->batch = (unsigned)v;
      break;
    case OPT_BLOCK_MS:
      if (number("--block-ms", arg, 1, 3600000, &v) < 0) return RELAY_EXIT_USAGE;
      o->block_ms = v;
      break;
    case OPT_CLAIM_IDLE_MS:
      if (number("--claim-idle-ms", arg, 1, 86400000, &v) < 0) return RELAY_EXIT_USAGE;
      o->claim_idle_ms = v;
      break;
    case OPT_MAX_DELIVERIES:
      if (number("--max-deliveries", arg, 1, 1000000, &v) < 0) return RELAY_EXIT_USAGE;
      o->max_deliveries = (unsigned)v;
      break;
    case OPT_MAX_HELD:
      if (number("--max-held", arg, 1, 10000000, &v) < 0) return RELAY_EXIT_USAGE;
      o->max_held = (size_t)v;
      break;
    case OPT_DRAIN_MS:
      if (number("--drain-ms", arg, 0, 86400000, &v) < 0) return RELAY_EXIT_USAGE;
      o->drain_ms = v;
      break;
    case OPT_METRICS:
      if (host_port("--metrics", arg, &metrics_host, &metrics_port, 1) != 0) return RELAY_EXIT_USAGE;
      o->metrics = arg;
      break;
    case OPT_PRODUCTION:
      o->endpoint = APNS_ENDPOINT_PRODUCTION;
      break;
    case OPT_DEVELOPMENT:
      o->endpoint = APNS_ENDPOINT_DEVELOPMENT;
      break;
    case OPT_HOST:
      if (host_port("--host", arg, &o->host, &o->port, 0) != 0) return RELAY_EXIT_USAGE;
      o->endpoint = APNS_ENDPOINT_CUSTOM;
      break;
    case OPT_CA:
      o->ca_file = arg;
      break;
    case OPT_VERIFY_NAME:
      o->verify_name = arg;
      break;
    case OPT_INSECURE:
      o->insecure = 1;
      break;
    case OPT_CONNECTIONS:
      if (number("--connections", arg, 1, 1000, &v) < 0) return RELAY_EXIT_USAGE;
      o->connections = (unsigned)v;
      break;
    case OPT_TIMEOUT:
      if (number("--timeout", arg, 1, 86400, &v) < 0) return RELAY_EXIT_USAGE;
      o->timeout_ms = v * 1000;
      break;
    case OPT_CERT:
      o->cert_file = arg;
      break;
    case OPT_KEY:
      o->key_file = arg;
      break;
    case OPT_KEY_PASS_ENV:
      pass_env = arg;
      break;
    case OPT_P8:
      o->p8_file = arg;
      break;
    case OPT_KEY_ID:
      o->key_id = arg;
      break;
    case OPT_TEAM_ID:
      o->team_id = arg;
      break;
    case OPT_TOPIC:
      o->topic = arg;
      break;
    case OPT_HELP:
      fputs(usage_text, stdout);
      return 1;
    case OPT_VERSION:
      printf("apns-relay %s\n", apns_version_string());
      return 1;
    default:
      if (optopt && optopt >= 256) return usage("%s: needs a value%s", argv[optind - 1], "");
      return usage("%s: unknown flag%s", argv[optind - 1], "");
    }
  }
  if (optind < argc) return usage("%s: unexpected argument%s", argv[optind], "");
  if (pass_env) {
    o->key_pass = getenv(pass_env);
    if (o->key_pass == NULL) return usage("--key-pass-env %s: not set in the environment%s", pass_env, "");
  }
  if (o->cert_file && !o->key_file) o->key_file = o->cert_file;
  if (!o->cert_file == !o->p8_file) return usage("one auth wanted: --cert FILE or --p8 FILE%s%s", "", "");
  if (o->p8_file && (!o->key_id || !o->team_id)) return usage("--p8 needs --key-id and --team-id%s%s", "", "");
  if (!o->consumer) {
    char host[256] = "relay";
    gethostname(host, sizeof host - 1);
    host[sizeof host - 1] = '\0';
    snprintf(o->consumer_buf, sizeof o->consumer_buf, "%s-%ld", host, (long)getpid());
    o->consumer = o->consumer_buf;
  }
  if (o->n_streams == 0) o->streams[o->n_streams++] = "apns";
  /* Several streams: each has its own results, dead-letter and dead-tokens streams, named after it, so that in a
   * cluster they share its hash tag (one script touches one slot). */
  if (o->n_streams > 1 && (o->results || o->dead_letter || o->dead_tokens))
    return usage("--results, --dead-letter and --dead-tokens name the streams of one --stream; with several, "
                 "each stream S has S:results, S:dead-letter and S:dead-tokens%s%s",
                 "", "");
  if (!o->max_held) o->max_held = 2000 * (size_t)o->connections;
  if (o->claim_idle_ms <= o->timeout_ms)
    fprintf(stderr,
            "apns-relay: warning: --claim-idle-ms %llu is not longer than --timeout: entries still being "
            "sent may be taken over and sent twice\n",
            (unsigned long long)o->claim_idle_ms);
  return 0;
}

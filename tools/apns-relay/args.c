/* apns-relay: the command line. The Redis flags are the relay's; the APNs side (server, auth, --connections,
 * --timeout, --topic, --proxy) is tools/common/apns_args's, as apns-push's is, so that the same mistake reads the
 * same from both. Every check that needs no network is made here: a mistake ends the run with status 2 before
 * anything connects. */
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
    "  --proxy URL               http://[USER:PASS@]HOST:PORT (CONNECT) or socks5h://[USER:PASS@]HOST:PORT;\n"
    "                            default: $https_proxy, $HTTPS_PROXY, $all_proxy, $ALL_PROXY unless $no_proxy\n"
    "                            names the host\n"
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
    APNS_ARGS_LONGOPTS,
    APNS_ARGS_LONGOPT_PROXY,
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

static void relay_defaults(relay_opts *o) {
  memset(o, 0, sizeof *o);
  apns_args_init(&o->apns);
  o->redis_url = "redis://127.0.0.1:6379/0";
  o->group = "apns-relay";
  o->batch = 256;
  o->block_ms = 1000;
  o->claim_idle_ms = 60000;
  o->drain_ms = 30000;
  o->max_deliveries = 5;
}

static int stream_option(const char *arg, relay_opts *o) {
  if (o->n_streams == RELAY_MAX_STREAMS) return usage("--stream %s: at most %s streams", arg, "64");
  if (arg[0] == '\0') return usage("--stream: an empty name%s%s", "", "");
  for (unsigned i = 0; i < o->n_streams; i++)
    if (strcmp(o->streams[i], arg) == 0) return usage("--stream %s: given twice%s", arg, "");
  o->streams[o->n_streams++] = arg;
  return 0;
}

/* A number flag of the relay's: where it goes and its range. */
static int number_option(int c, const char *arg, relay_opts *o) {
  static const struct {
    int code;
    const char *flag;
    uint64_t lo, hi;
  } flags[] = {
      {OPT_BATCH, "--batch", 1, 100000},
      {OPT_BLOCK_MS, "--block-ms", 1, 3600000},
      {OPT_CLAIM_IDLE_MS, "--claim-idle-ms", 1, 86400000},
      {OPT_MAX_DELIVERIES, "--max-deliveries", 1, 1000000},
      {OPT_MAX_HELD, "--max-held", 1, 10000000},
      {OPT_DRAIN_MS, "--drain-ms", 0, 86400000},
  };
  uint64_t v;
  for (size_t i = 0; i < sizeof flags / sizeof flags[0]; i++) {
    if (flags[i].code != c) continue;
    if (number(flags[i].flag, arg, flags[i].lo, flags[i].hi, &v) < 0) return RELAY_EXIT_USAGE;
    if (c == OPT_BATCH) o->batch = (unsigned)v;
    if (c == OPT_BLOCK_MS) o->block_ms = v;
    if (c == OPT_CLAIM_IDLE_MS) o->claim_idle_ms = v;
    if (c == OPT_MAX_DELIVERIES) o->max_deliveries = (unsigned)v;
    if (c == OPT_MAX_HELD) o->max_held = (size_t)v;
    if (c == OPT_DRAIN_MS) o->drain_ms = v;
    return 0;
  }
  return -1;
}

/* One flag of the relay's own. Returns 0, 1 after --help or --version, RELAY_EXIT_USAGE after saying why. */
static int relay_option(int c, const char *arg, char **argv, relay_opts *o) {
  const char *metrics_host;
  uint16_t metrics_port;
  const char **text = c == OPT_REDIS         ? &o->redis_url
                      : c == OPT_GROUP       ? &o->group
                      : c == OPT_CONSUMER    ? &o->consumer
                      : c == OPT_RESULTS     ? &o->results
                      : c == OPT_DEAD_LETTER ? &o->dead_letter
                      : c == OPT_DEAD_TOKENS ? &o->dead_tokens
                                             : NULL;
  if (text) {
    *text = arg;
    return 0;
  }
  int rv = number_option(c, arg, o);
  if (rv >= 0) return rv;
  switch (c) {
  case OPT_STREAM:
    return stream_option(arg, o);
  case OPT_METRICS:
    if (host_port("--metrics", arg, &metrics_host, &metrics_port, 1) != 0) return RELAY_EXIT_USAGE;
    o->metrics = arg;
    return 0;
  case OPT_HELP:
    fputs(usage_text, stdout);
    return 1;
  case OPT_VERSION:
    printf("apns-relay %s\n", apns_version_string());
    return 1;
  }
  if (optopt && optopt >= 256) return usage("%s: needs a value%s", argv[optind - 1], "");
  return usage("%s: unknown flag%s", argv[optind - 1], "");
}

/* After the flags: the relay's own combination, then the APNs side's (its files last). */
static int relay_checks(relay_opts *o) {
  char err[APNS_ARGS_ERR_MAX];
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
  int rv = apns_args_check(&o->apns, 1, err, sizeof err);
  if (rv == APNS_ARGS_USAGE) return usage("%s%s", err, "");
  if (rv != 0) {
    fprintf(stderr, "apns-relay: %s\n", err);
    return RELAY_EXIT_USAGE;
  }
  if (!o->max_held) o->max_held = 2000 * (size_t)o->apns.connections;
  if (o->claim_idle_ms <= o->apns.timeout_ms)
    fprintf(stderr,
            "apns-relay: warning: --claim-idle-ms %llu is not longer than --timeout: entries still being "
            "sent may be taken over and sent twice\n",
            (unsigned long long)o->claim_idle_ms);
  return 0;
}

static int parse_flags(int argc, char **argv, relay_opts *o) {
  char err[APNS_ARGS_ERR_MAX];
  int c;
  opterr = 0;
  optind = 1;
  while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
    int rv = apns_args_option(&o->apns, c, optarg, err, sizeof err);
    if (rv == APNS_ARGS_USAGE) return usage("%s%s", err, "");
    if (rv == APNS_ARGS_BAD) {
      fprintf(stderr, "apns-relay: %s\n", err);
      return RELAY_EXIT_USAGE;
    }
    if (rv == 0 && (rv = relay_option(c, optarg, argv, o)) != 0) return rv;
  }
  if (optind < argc) return usage("%s: unexpected argument%s", argv[optind], "");
  return 0;
}

int relay_parse_args(int argc, char **argv, relay_opts *o) {
  relay_defaults(o);
  int rv = parse_flags(argc, argv, o);
  if (rv == 0) rv = relay_checks(o);
  if (rv != 0) apns_args_free(&o->apns);
  return rv;
}

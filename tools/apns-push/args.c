/* apns-push: the command line. Every check that needs no network is made here, so that a usage or configuration
 * mistake ends the run with status 2 and a message naming the flag (or file) before anything is sent. */
#include "push.h"

#include "bulk.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char usage_text[] =
    "usage: apns-push [connection] [auth] [request options] [payload options] TOKEN [PAYLOAD_JSON]\n"
    "       apns-push [connection] [auth] [request options] [payload options] --bulk FILE|-\n"
    "Sends push notifications through APNs (or a server that speaks its protocol).\n"
    "\n"
    "Connection:\n"
    "  --production              api.push.apple.com (the default)\n"
    "  --development             api.sandbox.push.apple.com\n"
    "  --host HOST[:PORT]        another server (port 443 by default; [::1]:PORT for IPv6)\n"
    "  --ca FILE                 trust anchors, PEM (default: the system bundle)\n"
    "  --verify-name NAME        the name the server certificate must carry (when --host is an IP address)\n"
    "  --insecure                do not verify the server certificate: for test servers only\n"
    "  --connections N           connections to open (default 2)\n"
    "  --timeout SECONDS         deadline of each notification, retries included (default 10)\n"
    "Auth (one of):\n"
    "  --cert FILE --key FILE    client certificate and its key, PEM (--key defaults to --cert's file)\n"
    "  --key-pass-env VAR        the key's passphrase is in the environment variable VAR\n"
    "  --p8 FILE --key-id ID --team-id ID   token auth with a .p8 signing key\n"
    "Request (defaults for every line of --bulk; a line's own fields win):\n"
    "  --topic TOPIC             apns-topic, the app's bundle id (the push type's suffix is added)\n"
    "  --push-type TYPE          alert, background, voip, liveactivity, ... (default: alert, or background\n"
    "                            for a content-available-only payload)\n"
    "  --priority 10|5|1         apns-priority (default 10; 5 for background)\n"
    "  --expiration T            apns-expiration: UNIX seconds, +SECONDS from now, or 0 (try once)\n"
    "  --collapse-id ID          apns-collapse-id\n"
    "  --apns-id UUID            apns-id\n"
    "Payload (PAYLOAD_JSON, or built from these):\n"
    "  --alert TEXT  --title TEXT  --subtitle TEXT  --badge N  --sound NAME  --category NAME\n"
    "  --thread-id ID  --content-available  --mutable-content\n"
    "  --data KEY=JSON           a custom key beside aps (JSON value: --data 'id=42' --data 'who=\"Ann\"')\n"
    "Run:\n"
    "  --bulk FILE|-             JSON lines, one notification each: {\"token\":\"...\",\"payload\":{...}} with\n"
    "                            optional topic, push_type, priority, expiration, collapse_id, apns_id\n"
    "  --dry-run                 print each request as a JSON line; connect to nothing\n"
    "  --results FILE            write the result lines to FILE instead of stdout\n"
    "  --progress, --no-progress progress on stderr (default: when stderr is a terminal)\n"
    "  --list-dead N             tokens to delete listed in the summary (default 10)\n"
    "  --dead-tokens FILE        write every token to delete to FILE, one a line\n"
    "  --max-queued N            notifications queued at most before reading pauses (default: 2000 per\n"
    "                            connection)\n"
    "  --help, --version\n"
    "Exit status: 0 all accepted, 1 any rejected or failed (or a bad line), 2 usage or configuration error.\n";

enum {
  OPT_PRODUCTION = 256,
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
  OPT_PUSH_TYPE,
  OPT_PRIORITY,
  OPT_EXPIRATION,
  OPT_COLLAPSE_ID,
  OPT_APNS_ID,
  OPT_ALERT,
  OPT_TITLE,
  OPT_SUBTITLE,
  OPT_BADGE,
  OPT_SOUND,
  OPT_CONTENT_AVAILABLE,
  OPT_MUTABLE_CONTENT,
  OPT_CATEGORY,
  OPT_THREAD_ID,
  OPT_DATA,
  OPT_BULK,
  OPT_DRY_RUN,
  OPT_RESULTS,
  OPT_PROGRESS,
  OPT_NO_PROGRESS,
  OPT_LIST_DEAD,
  OPT_DEAD_TOKENS,
  OPT_MAX_QUEUED,
  OPT_HELP,
  OPT_VERSION,
};

static const struct option longopts[] = {
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
    {"push-type", required_argument, NULL, OPT_PUSH_TYPE},
    {"priority", required_argument, NULL, OPT_PRIORITY},
    {"expiration", required_argument, NULL, OPT_EXPIRATION},
    {"collapse-id", required_argument, NULL, OPT_COLLAPSE_ID},
    {"apns-id", required_argument, NULL, OPT_APNS_ID},
    {"alert", required_argument, NULL, OPT_ALERT},
    {"title", required_argument, NULL, OPT_TITLE},
    {"subtitle", required_argument, NULL, OPT_SUBTITLE},
    {"badge", required_argument, NULL, OPT_BADGE},
    {"sound", required_argument, NULL, OPT_SOUND},
    {"content-available", no_argument, NULL, OPT_CONTENT_AVAILABLE},
    {"mutable-content", no_argument, NULL, OPT_MUTABLE_CONTENT},
    {"category", required_argument, NULL, OPT_CATEGORY},
    {"thread-id", required_argument, NULL, OPT_THREAD_ID},
    {"data", required_argument, NULL, OPT_DATA},
    {"bulk", required_argument, NULL, OPT_BULK},
    {"dry-run", no_argument, NULL, OPT_DRY_RUN},
    {"results", required_argument, NULL, OPT_RESULTS},
    {"progress", no_argument, NULL, OPT_PROGRESS},
    {"no-progress", no_argument, NULL, OPT_NO_PROGRESS},
    {"list-dead", required_argument, NULL, OPT_LIST_DEAD},
    {"dead-tokens", required_argument, NULL, OPT_DEAD_TOKENS},
    {"max-queued", required_argument, NULL, OPT_MAX_QUEUED},
    {"help", no_argument, NULL, OPT_HELP},
    {"version", no_argument, NULL, OPT_VERSION},
    {NULL, 0, NULL, 0},
};

void push_err(const char *fmt, ...) {
  char text[2048], safe[4096];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(text, sizeof text, fmt, ap);
  va_end(ap);
  if (n < 0) return;
  /* Flags, file names and file contents are outside bytes too: no control character reaches the terminal. */
  bulk_escape_text(safe, sizeof safe, text, (size_t)n < sizeof text ? (size_t)n : sizeof text - 1);
  fprintf(stderr, "apns-push: %s\n", safe);
}

/* A host name to verify the certificate against: printable ASCII without spaces, as DNS names and IP literals
 * are. CR, LF or any other control byte would never match a certificate and once made the run wait out its whole
 * deadline. */
static int valid_verify_name(const char *s) {
  size_t n = strlen(s);
  if (n == 0 || n > 253) return 0;
  for (size_t i = 0; i < n; i++)
    if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7f) return 0;
  return 1;
}

static int parse_uint(const char *flag, const char *s, unsigned long long min, unsigned long long max,
                      unsigned long long *out) {
  char *end;
  errno = 0;
  unsigned long long v = strtoull(s, &end, 10);
  if (s[0] < '0' || s[0] > '9' || errno != 0 || *end != '\0' || v < min || v > max) {
    push_err("%s: want a whole number from %llu to %llu, got \"%s\"", flag, min, max, s);
    return -1;
  }
  *out = v;
  return 0;
}

/* "HOST", "HOST:PORT", "[V6]:PORT", "[V6]"; a bare IPv6 address (two colons or more) is a host without port. */
static int parse_host(char *spec, push_opts *o) {
  char *host = spec, *port = NULL;
  if (spec[0] == '[') {
    char *close = strchr(spec, ']');
    if (close == NULL || (close[1] != '\0' && close[1] != ':')) {
      push_err("--host: bad IPv6 literal \"%s\" (want [ADDRESS]:PORT)", spec);
      return -1;
    }
    *close = '\0';
    host = spec + 1;
    if (close[1] == ':') port = close + 2;
  } else {
    char *colon = strchr(spec, ':');
    if (colon && strchr(colon + 1, ':') == NULL) {
      *colon = '\0';
      port = colon + 1;
    }
  }
  if (host[0] == '\0') {
    push_err("--host: no host name in \"%s\"", spec);
    return -1;
  }
  o->host = host;
  o->port = 443;
  if (port) {
    unsigned long long p;
    if (parse_uint("--host port", port, 1, 65535, &p) != 0) return -1;
    o->port = (uint16_t)p;
  }
  return 0;
}

/* Seconds with an optional fraction, to milliseconds. */
static int parse_seconds(const char *flag, const char *s, uint64_t *ms) {
  char *end;
  errno = 0;
  double v = strtod(s, &end);
  if (errno != 0 || end == s || *end != '\0' || !(v > 0) || v > 86400) {
    push_err("%s: want seconds, more than 0 and at most 86400, got \"%s\"", flag, s);
    return -1;
  }
  *ms = (uint64_t)(v * 1000 + 0.5);
  if (*ms == 0) *ms = 1;
  return 0;
}

static int check_readable(const char *flag, const char *path) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    push_err("%s %s: %s", flag, path, strerror(errno));
    return -1;
  }
  close(fd);
  return 0;
}

static int code_err(const char *flag, const char *value, int rv) {
  push_err("%s \"%s\": %s", flag, value, apns_strerror(rv));
  return PUSH_EXIT_USAGE;
}

void push_opts_free(push_opts *o) {
  free(o->data);
  o->data = NULL;
  o->num_data = 0;
}

int push_parse_args(int argc, char **argv, push_opts *o) {
  int c, endpoints = 0;
  unsigned long long v;
  const char *endpoint_flag = NULL;
  memset(o, 0, sizeof *o);
  o->endpoint = APNS_ENDPOINT_PRODUCTION;
  o->connections = 2;
  o->timeout_ms = 10000;
  o->badge = -1;
  o->progress = -1;
  o->list_dead = 10;
  o->max_queued = 0; /* set after the flags: it depends on --connections */
  opterr = 0;
  optind = 1;
  while ((c = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
    switch (c) {
    case OPT_PRODUCTION:
    case OPT_DEVELOPMENT:
    case OPT_HOST: {
      const char *flag = c == OPT_PRODUCTION ? "--production" : c == OPT_DEVELOPMENT ? "--development" : "--host";
      if (endpoints++ && strcmp(flag, endpoint_flag) != 0) {
        push_err("%s and %s: choose one server", endpoint_flag, flag);
        goto usage;
      }
      endpoint_flag = flag;
      o->endpoint = c == OPT_PRODUCTION    ? APNS_ENDPOINT_PRODUCTION
                    : c == OPT_DEVELOPMENT ? APNS_ENDPOINT_DEVELOPMENT
                                           : APNS_ENDPOINT_CUSTOM;
      if (c == OPT_HOST && parse_host(optarg, o) != 0) goto usage;
      break;
    }
    case OPT_CA:
      o->ca_file = optarg;
      break;
    case OPT_VERIFY_NAME:
      if (!valid_verify_name(optarg)) {
        push_err("--verify-name \"%s\": not a host name (1 to 253 printable ASCII characters, no spaces)", optarg);
        goto usage;
      }
      o->verify_name = optarg;
      break;
    case OPT_INSECURE:
      o->insecure = 1;
      break;
    case OPT_CONNECTIONS:
      if (parse_uint("--connections", optarg, 1, 1000, &v) != 0) goto usage;
      o->connections = (unsigned)v;
      break;
    case OPT_TIMEOUT:
      if (parse_seconds("--timeout", optarg, &o->timeout_ms) != 0) goto usage;
      break;
    case OPT_CERT:
      o->cert_file = optarg;
      break;
    case OPT_KEY:
      o->key_file = optarg;
      break;
    case OPT_KEY_PASS_ENV:
      o->key_pass_env = optarg;
      o->key_pass = getenv(optarg);
      if (o->key_pass == NULL) {
        push_err("--key-pass-env %s: the environment variable %s is not set", optarg, optarg);
        goto usage;
      }
      break;
    case OPT_P8:
      o->p8_file = optarg;
      break;
    case OPT_KEY_ID:
      o->key_id = optarg;
      break;
    case OPT_TEAM_ID:
      o->team_id = optarg;
      break;
    case OPT_TOPIC: {
      int rv = apns_validate_topic(optarg);
      if (rv < 0) return code_err("--topic", optarg, rv);
      o->send.topic = optarg;
      break;
    }
    case OPT_PUSH_TYPE:
      if (apns_push_type_from_string(optarg, &o->send.push_type) < 0) {
        push_err("--push-type \"%s\": unknown push type (alert, background, location, voip, complication, "
                 "fileprovider, mdm, liveactivity, pushtotalk, widgets, controls)",
                 optarg);
        goto usage;
      }
      break;
    case OPT_PRIORITY:
      if (strcmp(optarg, "10") != 0 && strcmp(optarg, "5") != 0 && strcmp(optarg, "1") != 0) {
        push_err("--priority: want 10, 5 or 1, got \"%s\"", optarg);
        goto usage;
      }
      v = strtoull(optarg, NULL, 10);
      o->send.priority = (int)v;
      break;
    case OPT_EXPIRATION: {
      int rel = optarg[0] == '+';
      if (parse_uint("--expiration", optarg + rel, 0, INT64_MAX / 2, &v) != 0) goto usage;
      o->send.has_expiration = 1;
      o->send.expiration = rel ? (int64_t)time(NULL) + (int64_t)v : (int64_t)v;
      break;
    }
    case OPT_COLLAPSE_ID: {
      int rv = apns_validate_collapse_id(optarg);
      if (rv < 0) return code_err("--collapse-id", optarg, rv);
      o->send.collapse_id = optarg;
      break;
    }
    case OPT_APNS_ID: {
      int rv = apns_validate_apns_id(optarg, NULL);
      if (rv < 0) return code_err("--apns-id", optarg, rv);
      o->send.apns_id = optarg;
      break;
    }
    case OPT_ALERT:
      o->alert = optarg;
      break;
    case OPT_TITLE:
      o->title = optarg;
      break;
    case OPT_SUBTITLE:
      o->subtitle = optarg;
      break;
    case OPT_BADGE:
      if (parse_uint("--badge", optarg, 0, INT32_MAX, &v) != 0) goto usage;
      o->badge = (int)v;
      break;
    case OPT_SOUND:
      o->sound = optarg;
      break;
    case OPT_CONTENT_AVAILABLE:
      o->content_available = 1;
      break;
    case OPT_MUTABLE_CONTENT:
      o->mutable_content = 1;
      break;
    case OPT_CATEGORY:
      o->category = optarg;
      break;
    case OPT_THREAD_ID:
      o->thread_id = optarg;
      break;
    case OPT_DATA: {
      char *eq = strchr(optarg, '=');
      if (eq == NULL || eq == optarg) {
        push_err("--data \"%s\": want KEY=JSON", optarg);
        goto usage;
      }
      push_data_kv *d = realloc(o->data, (o->num_data + 1) * sizeof *d);
      if (d == NULL) {
        push_err("out of memory");
        goto usage;
      }
      *eq = '\0';
      o->data = d;
      d[o->num_data].key = optarg;
      d[o->num_data].json = eq + 1;
      o->num_data++;
      break;
    }
    case OPT_BULK:
      o->bulk = optarg;
      break;
    case OPT_DRY_RUN:
      o->dry_run = 1;
      break;
    case OPT_RESULTS:
      o->results = optarg;
      break;
    case OPT_PROGRESS:
      o->progress = 1;
      break;
    case OPT_NO_PROGRESS:
      o->progress = 0;
      break;
    case OPT_LIST_DEAD:
      if (parse_uint("--list-dead", optarg, 0, 1000000, &v) != 0) goto usage;
      o->list_dead = (unsigned)v;
      break;
    case OPT_DEAD_TOKENS:
      o->dead_file = optarg;
      break;
    case OPT_MAX_QUEUED:
      if (parse_uint("--max-queued", optarg, 1, 10000000, &v) != 0) goto usage;
      o->max_queued = (size_t)v;
      break;
    case 'h':
    case OPT_HELP:
      fputs(usage_text, stdout);
      return 1;
    case OPT_VERSION:
      printf("apns-push %s (libapns %s)\n", APNS_VERSION_STRING, apns_version_string());
      return 1;
    case ':':
      push_err("%s needs a value", argv[optind - 1]);
      goto usage;
    default:
      if (optopt > 0 && optopt < 256) {
        push_err("unknown option -%c", optopt);
      } else {
        push_err("unknown option %s", argv[optind - 1]);
      }
      goto usage;
    }
  }

  /* Positional arguments. */
  int npos = argc - optind;
  if (o->bulk) {
    if (npos > 0) {
      push_err("--bulk takes no TOKEN or PAYLOAD_JSON (got \"%s\"): put them in the file", argv[optind]);
      goto usage;
    }
    if (strcmp(o->bulk, "-") != 0 && check_readable("--bulk", o->bulk) != 0) return PUSH_EXIT_USAGE;
  } else {
    if (npos == 0) {
      push_err("no device token: give TOKEN, or --bulk FILE");
      goto usage;
    }
    if (npos > 2) {
      push_err("too many arguments: \"%s\" (want TOKEN [PAYLOAD_JSON])", argv[optind + 2]);
      goto usage;
    }
    o->token = argv[optind];
    int rv = apns_validate_device_token(o->token);
    if (rv < 0) return code_err("TOKEN", o->token, rv);
    if (npos == 2) o->payload_json = argv[optind + 1];
  }

  int flags_payload = o->alert || o->title || o->subtitle || o->sound || o->category || o->thread_id ||
                      o->badge >= 0 || o->content_available || o->mutable_content || o->num_data > 0;
  if (o->payload_json && flags_payload) {
    push_err("give the payload as PAYLOAD_JSON or with --alert, --badge, ... flags, not both");
    goto usage;
  }
  if (!o->bulk && !o->payload_json && !flags_payload) {
    push_err("no payload: give PAYLOAD_JSON, or --alert TEXT (or --badge, --sound, --content-available, --data)");
    goto usage;
  }
  if ((o->title || o->subtitle) && o->alert == NULL && o->title == NULL) {
    push_err("--subtitle needs --title or --alert");
    goto usage;
  }
  if (!o->bulk && o->send.topic == NULL) {
    push_err("--topic is required (the app's bundle id, e.g. --topic com.example.app)");
    goto usage;
  }
  if (o->send.push_type != APNS_PUSH_TYPE_DEFAULT && o->send.priority &&
      apns_validate_priority(o->send.priority, o->send.push_type) < 0) {
    push_err("--priority %d does not go with --push-type %s (Apple requires 5 or 1 for background)", o->send.priority,
             apns_push_type_string(o->send.push_type));
    goto usage;
  }

  /* Connection and auth. */
  if (o->verify_name && o->insecure) {
    push_err("--verify-name and --insecure: choose one (--insecure verifies no name)");
    goto usage;
  }
  if (o->key_file && !o->cert_file) {
    push_err("--key %s needs --cert (the client certificate)", o->key_file);
    goto usage;
  }
  if ((o->key_id || o->team_id) && !o->p8_file) {
    push_err("%s needs --p8 (the .p8 signing key)", o->key_id ? "--key-id" : "--team-id");
    goto usage;
  }
  if (o->p8_file && (!o->key_id || !o->team_id)) {
    push_err("--p8 %s needs %s (from the key's page in the Apple developer account)", o->p8_file,
             !o->key_id ? "--key-id ID" : "--team-id ID");
    goto usage;
  }
  if (o->cert_file && o->p8_file) {
    push_err("--cert and --p8: choose one authentication");
    goto usage;
  }
  if (!o->dry_run && !o->cert_file && !o->p8_file) {
    push_err("no authentication: give --cert FILE --key FILE, or --p8 FILE --key-id ID --team-id ID");
    goto usage;
  }
  if (o->key_pass_env && !o->cert_file) {
    push_err("--key-pass-env goes with --cert and --key");
    goto usage;
  }
  if (o->cert_file && !o->key_file) o->key_file = o->cert_file;
  /* The queue refills the connections' free streams: at half of it (the low-water mark, where reading resumes)
   * there must still be as many queued as every connection can take at once (APNs allows 1000 streams a
   * connection), or the pool would wait on the input. Not much more: a deeper queue costs memory and cache (every
   * queued notification is a request block of its own) and measured slower. */
  if (o->max_queued == 0) o->max_queued = (size_t)o->connections * 2000u;
  static const struct {
    const char *flag;
    size_t off;
  } files[] = {
      {"--ca", offsetof(push_opts, ca_file)},
      {"--cert", offsetof(push_opts, cert_file)},
      {"--key", offsetof(push_opts, key_file)},
      {"--p8", offsetof(push_opts, p8_file)},
  };
  for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
    const char *path = *(const char *const *)((const char *)o + files[i].off);
    if (path && check_readable(files[i].flag, path) != 0) return PUSH_EXIT_USAGE;
  }
  return 0;

usage:
  fputs("usage: apns-push [options] TOKEN [PAYLOAD_JSON] | --bulk FILE|-   (apns-push --help for more)\n", stderr);
  return PUSH_EXIT_USAGE;
}

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
    "       apns-push [connection] [auth] [request options] [payload options] --channel ID [PAYLOAD_JSON]\n"
    "       apns-push [connection] [auth] --topic BUNDLE channel create [--storage none|latest] | read ID |\n"
    "                 delete ID | list\n"
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
    "  --proxy URL               http://[USER:PASS@]HOST:PORT (CONNECT) or socks5h://[USER:PASS@]HOST:PORT;\n"
    "                            default: $https_proxy, $HTTPS_PROXY, $all_proxy, $ALL_PROXY unless $no_proxy\n"
    "                            names the host\n"
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
    "                            optional topic, push_type, priority, expiration, collapse_id, apns_id;\n"
    "                            {\"channel\":\"ID\",...} in place of a token broadcasts to the channel\n"
    "  --dry-run                 print each request as a JSON line; connect to nothing\n"
    "  --results FILE            write the result lines to FILE instead of stdout\n"
    "  --progress, --no-progress progress on stderr (default: when stderr is a terminal)\n"
    "  --list-dead N             tokens to delete listed in the summary (default 10)\n"
    "  --dead-tokens FILE        write every token to delete to FILE, one a line\n"
    "  --max-queued N            notifications queued at most before reading pauses (default: 2000 per\n"
    "                            connection)\n"
    "Broadcast push (iOS 18 channels) and Live Activities:\n"
    "  --channel ID              broadcast to the channel instead of sending to a device token (push type\n"
    "                            liveactivity; --priority, and --expiration default 0)\n"
    "  channel create|read ID|delete ID|list   manage the app's channels (one JSON line out)\n"
    "  --storage none|latest     message storage policy of channel create (default none)\n"
    "  --management-host HOST[:PORT]  the channel management server (default: --host, else Apple's\n"
    "                            api-manage-broadcast(.sandbox).push.apple.com of the environment)\n"
    "  --request-id UUID         apns-request-id of a broadcast or channel command\n"
    "  --event start|update|end  --content-state JSON  --stale-date T  --dismissal-date T  --timestamp T\n"
    "  --attributes-type NAME  --attributes JSON  --input-push-token  --input-push-channel ID\n"
    "  --relevance-score X       Live Activity payload keys (T: UNIX seconds; X from 0 to 1)\n"
    "  --help, --version\n"
    "Exit status: 0 all accepted, 1 any rejected or failed (or a bad line), 2 usage or configuration error.\n";

/* apns-push's own flags; the APNs side (server, auth, --connections, --timeout, --topic, --proxy) is apns_args's. */
enum {
  OPT_PUSH_TYPE = 256,
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
  /* broadcast push and Live Activities (broadcast_option) */
  OPT_CHANNEL,
  OPT_STORAGE,
  OPT_MANAGEMENT_HOST,
  OPT_REQUEST_ID,
  OPT_EVENT,
  OPT_CONTENT_STATE,
  OPT_STALE_DATE,
  OPT_DISMISSAL_DATE,
  OPT_TIMESTAMP,
  OPT_ATTRIBUTES_TYPE,
  OPT_ATTRIBUTES,
  OPT_INPUT_PUSH_TOKEN,
  OPT_INPUT_PUSH_CHANNEL,
  OPT_RELEVANCE_SCORE,
};

static const struct option longopts[] = {
    APNS_ARGS_LONGOPTS,
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
    APNS_ARGS_LONGOPT_PROXY,
    {"channel", required_argument, NULL, OPT_CHANNEL},
    {"storage", required_argument, NULL, OPT_STORAGE},
    {"management-host", required_argument, NULL, OPT_MANAGEMENT_HOST},
    {"request-id", required_argument, NULL, OPT_REQUEST_ID},
    {"event", required_argument, NULL, OPT_EVENT},
    {"content-state", required_argument, NULL, OPT_CONTENT_STATE},
    {"stale-date", required_argument, NULL, OPT_STALE_DATE},
    {"dismissal-date", required_argument, NULL, OPT_DISMISSAL_DATE},
    {"timestamp", required_argument, NULL, OPT_TIMESTAMP},
    {"attributes-type", required_argument, NULL, OPT_ATTRIBUTES_TYPE},
    {"attributes", required_argument, NULL, OPT_ATTRIBUTES},
    {"input-push-token", no_argument, NULL, OPT_INPUT_PUSH_TOKEN},
    {"input-push-channel", required_argument, NULL, OPT_INPUT_PUSH_CHANNEL},
    {"relevance-score", required_argument, NULL, OPT_RELEVANCE_SCORE},
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

/* The number and HOST[:PORT] parsers of apns_args, their message through push_err. */
static int parse_uint(const char *flag, const char *s, unsigned long long min, unsigned long long max,
                      unsigned long long *out) {
  char err[APNS_ARGS_ERR_MAX];
  if (apns_args_uint(flag, s, min, max, out, err, sizeof err) == 0) return 0;
  push_err("%s", err);
  return -1;
}

static int parse_host_as(const char *flag, char *spec, const char **out_host, uint16_t *out_port) {
  char err[APNS_ARGS_ERR_MAX];
  if (apns_args_host_port(flag, spec, out_host, out_port, err, sizeof err) == 0) return 0;
  push_err("%s", err);
  return -1;
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
  apns_args_free(&o->apns);
}

/* ---- broadcast push and Live Activities ---- */

/* "UNIX seconds" or "+SECONDS" from now, as --expiration. */
static int parse_time(const char *flag, const char *s, int64_t *out) {
  unsigned long long v;
  int rel = s[0] == '+';
  if (parse_uint(flag, s + rel, 0, INT64_MAX / 2, &v) != 0) return -1;
  *out = rel ? (int64_t)time(NULL) + (int64_t)v : (int64_t)v;
  return 0;
}

/* The flags of broadcast push and Live Activities. Returns 0, -1 after printing why, or 1 when c is not one. */
static int broadcast_option(int c, char *arg, push_opts *o) {
  int rv;
  switch (c) {
  case OPT_CHANNEL:
    if ((rv = apns_validate_channel_id(arg)) < 0) {
      push_err("--channel \"%s\": %s", arg, apns_strerror(rv));
      return -1;
    }
    o->channel = arg;
    return 0;
  case OPT_STORAGE:
    if (strcmp(arg, "none") != 0 && strcmp(arg, "latest") != 0) {
      push_err("--storage: want none or latest, got \"%s\"", arg);
      return -1;
    }
    o->storage = strcmp(arg, "latest") == 0 ? APNS_CHANNEL_STORAGE_LATEST : APNS_CHANNEL_STORAGE_NONE;
    o->storage_given = 1;
    return 0;
  case OPT_MANAGEMENT_HOST:
    return parse_host_as("--management-host", arg, &o->manage_host, &o->manage_port);
  case OPT_REQUEST_ID:
    if ((rv = apns_validate_apns_id(arg, NULL)) < 0) {
      push_err("--request-id \"%s\": not a UUID (8-4-4-4-12 hex digits)", arg);
      return -1;
    }
    o->request_id = arg;
    return 0;
  case OPT_EVENT:
    if (strcmp(arg, "start") != 0 && strcmp(arg, "update") != 0 && strcmp(arg, "end") != 0) {
      push_err("--event: want start, update or end, got \"%s\"", arg);
      return -1;
    }
    o->event = arg;
    return 0;
  case OPT_CONTENT_STATE:
    o->content_state = arg;
    return 0;
  case OPT_STALE_DATE:
    return parse_time("--stale-date", arg, &o->stale_date);
  case OPT_DISMISSAL_DATE:
    return parse_time("--dismissal-date", arg, &o->dismissal_date);
  case OPT_TIMESTAMP:
    return parse_time("--timestamp", arg, &o->timestamp);
  case OPT_ATTRIBUTES_TYPE:
    o->attributes_type = arg;
    return 0;
  case OPT_ATTRIBUTES:
    o->attributes = arg;
    return 0;
  case OPT_INPUT_PUSH_TOKEN:
    o->input_push_token = 1;
    return 0;
  case OPT_INPUT_PUSH_CHANNEL:
    if ((rv = apns_validate_channel_id(arg)) < 0) {
      push_err("--input-push-channel \"%s\": %s", arg, apns_strerror(rv));
      return -1;
    }
    o->input_push_channel = arg;
    return 0;
  case OPT_RELEVANCE_SCORE: {
    char *end;
    errno = 0;
    double v = strtod(arg, &end);
    if (errno != 0 || end == arg || *end != '\0' || !(v >= 0 && v <= 1)) {
      push_err("--relevance-score: want a number from 0 to 1, got \"%s\"", arg);
      return -1;
    }
    o->relevance_score = v;
    o->has_relevance = 1;
    return 0;
  }
  default:
    return 1;
  }
}

/* `channel create|read ID|delete ID|list` in the positional arguments (pos[0] is "channel"). */
static int channel_command(int npos, char **pos, push_opts *o) {
  static const struct {
    const char *name;
    apns_channel_op op;
    int want_id;
  } cmds[] = {{"create", APNS_CHANNEL_CREATE, 0},
              {"read", APNS_CHANNEL_READ, 1},
              {"delete", APNS_CHANNEL_DELETE, 1},
              {"list", APNS_CHANNEL_LIST, 0}};
  if (npos < 2) {
    push_err("channel: want create, read ID, delete ID or list");
    return -1;
  }
  for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
    if (strcmp(pos[1], cmds[i].name) != 0) continue;
    if (npos != 2 + cmds[i].want_id) {
      if (npos < 2 + cmds[i].want_id)
        push_err("channel %s: want the channel ID", cmds[i].name);
      else
        push_err("channel %s: too many arguments (\"%s\")", cmds[i].name, pos[2 + cmds[i].want_id]);
      return -1;
    }
    o->channel_op = cmds[i].op;
    if (cmds[i].want_id) {
      int rv = apns_validate_channel_id(pos[2]);
      if (rv < 0) {
        push_err("channel %s \"%s\": %s", cmds[i].name, pos[2], apns_strerror(rv));
        return -1;
      }
      o->channel_op_id = pos[2];
    }
    if (o->storage_given && o->channel_op != APNS_CHANNEL_CREATE) {
      push_err("--storage goes with channel create");
      return -1;
    }
    if (o->send.topic == NULL) {
      push_err("--topic is required (the app's bundle id: channels belong to it)");
      return -1;
    }
    if (o->bulk || o->channel) {
      push_err("channel %s takes no %s", cmds[i].name, o->bulk ? "--bulk" : "--channel");
      return -1;
    }
    return 0;
  }
  push_err("channel \"%s\": unknown command (want create, read, delete or list)", pos[1]);
  return -1;
}

/* The checks of a broadcast (--channel) and of the flags that only go with broadcast or channel commands. */
static int broadcast_checks(int npos, char **pos, push_opts *o) {
  if (o->channel_op == 0 && o->channel == NULL) {
    if (o->storage_given || o->manage_host) {
      push_err("%s goes with the channel commands", o->storage_given ? "--storage" : "--management-host");
      return -1;
    }
    if (o->request_id) {
      push_err("--request-id goes with --channel or the channel commands (a device send has --apns-id)");
      return -1;
    }
    return 0;
  }
  if (o->channel_op != 0) return 0;
  if (o->bulk) {
    push_err("--channel and --bulk: a broadcast is one request");
    return -1;
  }
  if (npos > 1) {
    push_err("--channel takes no TOKEN: give at most PAYLOAD_JSON (got \"%s\", \"%s\")", pos[0], pos[1]);
    return -1;
  }
  if (npos == 1 && apns_validate_device_token(pos[0]) == 0) {
    push_err("--channel and a device token \"%s\": choose one", pos[0]);
    return -1;
  }
  if (o->send.push_type != APNS_PUSH_TYPE_DEFAULT && o->send.push_type != APNS_PUSH_TYPE_LIVEACTIVITY) {
    push_err("--push-type %s: a broadcast is always liveactivity", apns_push_type_string(o->send.push_type));
    return -1;
  }
  if (o->send.collapse_id || o->send.apns_id) {
    push_err("%s does not go with --channel (a broadcast has --request-id)",
             o->send.collapse_id ? "--collapse-id" : "--apns-id");
    return -1;
  }
  if (o->manage_host || o->storage_given) {
    push_err("%s goes with the channel commands", o->manage_host ? "--management-host" : "--storage");
    return -1;
  }
  return 0;
}

/* What push_parse_args's parts return besides 0: NOT_MINE (the flag is another part's), EXIT_ZERO (--help or
 * --version printed), SAID_HINT (a usage mistake, said: the usage line follows) or PUSH_EXIT_USAGE (a bad value,
 * said). */
#define NOT_MINE 3
#define EXIT_ZERO 1
#define SAID_HINT (-1)

/* The APNs-side flags, through apns_args. */
static int apns_option(int c, char *arg, push_opts *o) {
  char err[APNS_ARGS_ERR_MAX];
  int rv = apns_args_option(&o->apns, c, arg, err, sizeof err);
  if (rv == 1) return 0;
  if (rv == 0) return NOT_MINE;
  push_err("%s", err);
  return rv == APNS_ARGS_USAGE ? SAID_HINT : PUSH_EXIT_USAGE;
}

/* The request defaults: apns-push-type, -priority, -expiration, -collapse-id, apns-id. */
static int request_option(int c, char *arg, push_opts *o) {
  unsigned long long v;
  int rv;
  switch (c) {
  case OPT_PUSH_TYPE:
    if (apns_push_type_from_string(arg, &o->send.push_type) < 0) {
      push_err("--push-type \"%s\": unknown push type (alert, background, location, voip, complication, "
               "fileprovider, mdm, liveactivity, pushtotalk, widgets, controls)",
               arg);
      return SAID_HINT;
    }
    return 0;
  case OPT_PRIORITY:
    if (strcmp(arg, "10") != 0 && strcmp(arg, "5") != 0 && strcmp(arg, "1") != 0) {
      push_err("--priority: want 10, 5 or 1, got \"%s\"", arg);
      return SAID_HINT;
    }
    o->send.priority = (int)strtoull(arg, NULL, 10);
    return 0;
  case OPT_EXPIRATION: {
    int rel = arg[0] == '+';
    if (parse_uint("--expiration", arg + rel, 0, INT64_MAX / 2, &v) != 0) return SAID_HINT;
    o->send.has_expiration = 1;
    o->send.expiration = rel ? (int64_t)time(NULL) + (int64_t)v : (int64_t)v;
    return 0;
  }
  case OPT_COLLAPSE_ID:
    if ((rv = apns_validate_collapse_id(arg)) < 0) return code_err("--collapse-id", arg, rv);
    o->send.collapse_id = arg;
    return 0;
  case OPT_APNS_ID:
    if ((rv = apns_validate_apns_id(arg, NULL)) < 0) return code_err("--apns-id", arg, rv);
    o->send.apns_id = arg;
    return 0;
  }
  return NOT_MINE;
}

static int data_option(char *arg, push_opts *o) {
  char *eq = strchr(arg, '=');
  if (eq == NULL || eq == arg) {
    push_err("--data \"%s\": want KEY=JSON", arg);
    return SAID_HINT;
  }
  push_data_kv *d = realloc(o->data, (o->num_data + 1) * sizeof *d);
  if (d == NULL) {
    push_err("out of memory");
    return SAID_HINT;
  }
  *eq = '\0';
  o->data = d;
  d[o->num_data].key = arg;
  d[o->num_data].json = eq + 1;
  o->num_data++;
  return 0;
}

/* The flags that build the payload. */
static int payload_option(int c, char *arg, push_opts *o) {
  unsigned long long v;
  const char **text = c == OPT_ALERT       ? &o->alert
                      : c == OPT_TITLE     ? &o->title
                      : c == OPT_SUBTITLE  ? &o->subtitle
                      : c == OPT_SOUND     ? &o->sound
                      : c == OPT_CATEGORY  ? &o->category
                      : c == OPT_THREAD_ID ? &o->thread_id
                                           : NULL;
  if (text) {
    *text = arg;
    return 0;
  }
  switch (c) {
  case OPT_BADGE:
    if (parse_uint("--badge", arg, 0, INT32_MAX, &v) != 0) return SAID_HINT;
    o->badge = (int)v;
    return 0;
  case OPT_CONTENT_AVAILABLE:
    o->content_available = 1;
    return 0;
  case OPT_MUTABLE_CONTENT:
    o->mutable_content = 1;
    return 0;
  case OPT_DATA:
    return data_option(arg, o);
  }
  return NOT_MINE;
}

/* How the run goes: --bulk, --dry-run, --results, progress, the dead tokens, --max-queued, --help, --version. */
static int run_option(int c, char *arg, push_opts *o) {
  unsigned long long v;
  switch (c) {
  case OPT_BULK:
    o->bulk = arg;
    return 0;
  case OPT_DRY_RUN:
    o->dry_run = 1;
    return 0;
  case OPT_RESULTS:
    o->results = arg;
    return 0;
  case OPT_PROGRESS:
  case OPT_NO_PROGRESS:
    o->progress = c == OPT_PROGRESS;
    return 0;
  case OPT_LIST_DEAD:
    if (parse_uint("--list-dead", arg, 0, 1000000, &v) != 0) return SAID_HINT;
    o->list_dead = (unsigned)v;
    return 0;
  case OPT_DEAD_TOKENS:
    o->dead_file = arg;
    return 0;
  case OPT_MAX_QUEUED:
    if (parse_uint("--max-queued", arg, 1, 10000000, &v) != 0) return SAID_HINT;
    o->max_queued = (size_t)v;
    return 0;
  case 'h':
  case OPT_HELP:
    fputs(usage_text, stdout);
    return EXIT_ZERO;
  case OPT_VERSION:
    printf("apns-push %s (libapns %s)\n", APNS_VERSION_STRING, apns_version_string());
    return EXIT_ZERO;
  }
  return NOT_MINE;
}

static int parse_flags(int argc, char **argv, push_opts *o) {
  int c;
  opterr = 0;
  optind = 1;
  while ((c = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
    int rv = apns_option(c, optarg, o);
    if (rv == NOT_MINE) rv = request_option(c, optarg, o);
    if (rv == NOT_MINE) rv = payload_option(c, optarg, o);
    if (rv == NOT_MINE) rv = run_option(c, optarg, o);
    if (rv == NOT_MINE && c >= OPT_CHANNEL) {
      int b = broadcast_option(c, optarg, o);
      rv = b == 0 ? 0 : b < 0 ? SAID_HINT : NOT_MINE;
    }
    if (rv == NOT_MINE) {
      if (c == ':')
        push_err("%s needs a value", argv[optind - 1]);
      else if (optopt > 0 && optopt < 256)
        push_err("unknown option -%c", optopt);
      else
        push_err("unknown option %s", argv[optind - 1]);
      rv = SAID_HINT;
    }
    if (rv != 0) return rv;
  }
  /* The request's topic is --topic, as the client's (apns_args_client) is. */
  o->send.topic = o->apns.topic;
  return 0;
}

/* The positional arguments: TOKEN [PAYLOAD_JSON], a channel command, or none with --bulk. */
static int positional(int npos, char **pos, push_opts *o) {
  if (npos > 0 && strcmp(pos[0], "channel") == 0 && channel_command(npos, pos, o) != 0) return SAID_HINT;
  if (broadcast_checks(npos, pos, o) != 0) return SAID_HINT;
  if (o->channel_op) return 0; /* a channel command: no payload; the connection and auth checks follow */
  if (o->channel) {
    if (npos == 1) o->payload_json = pos[0];
    return 0;
  }
  if (o->bulk) {
    if (npos > 0) {
      push_err("--bulk takes no TOKEN or PAYLOAD_JSON (got \"%s\"): put them in the file", pos[0]);
      return SAID_HINT;
    }
    if (strcmp(o->bulk, "-") != 0 && check_readable("--bulk", o->bulk) != 0) return PUSH_EXIT_USAGE;
    return 0;
  }
  if (npos == 0) {
    push_err("no device token: give TOKEN, or --bulk FILE");
    return SAID_HINT;
  }
  if (npos > 2) {
    push_err("too many arguments: \"%s\" (want TOKEN [PAYLOAD_JSON])", pos[2]);
    return SAID_HINT;
  }
  o->token = pos[0];
  int rv = apns_validate_device_token(o->token);
  if (rv < 0) return code_err("TOKEN", o->token, rv);
  if (npos == 2) o->payload_json = pos[1];
  return 0;
}

static int payload_checks(push_opts *o) {
  int flags_payload = push_flags_payload(o);
  if (o->channel_op && (o->payload_json || flags_payload)) {
    push_err("channel commands take no payload");
    return SAID_HINT;
  }
  if (!o->channel_op && o->payload_json && flags_payload) {
    push_err("give the payload as PAYLOAD_JSON or with --alert, --badge, ... flags, not both");
    return SAID_HINT;
  }
  if (!o->channel_op && !o->bulk && !o->payload_json && !flags_payload) {
    push_err("no payload: give PAYLOAD_JSON, or --alert TEXT (or --badge, --sound, --content-available, --data)");
    return SAID_HINT;
  }
  if ((o->title || o->subtitle) && o->alert == NULL && o->title == NULL) {
    push_err("--subtitle needs --title or --alert");
    return SAID_HINT;
  }
  if (!o->bulk && o->send.topic == NULL) {
    push_err("--topic is required (the app's bundle id, e.g. --topic com.example.app)");
    return SAID_HINT;
  }
  if (o->send.push_type != APNS_PUSH_TYPE_DEFAULT && o->send.priority &&
      apns_validate_priority(o->send.priority, o->send.push_type) < 0) {
    push_err("--priority %d does not go with --push-type %s (Apple requires 5 or 1 for background)", o->send.priority,
             apns_push_type_string(o->send.push_type));
    return SAID_HINT;
  }
  return 0;
}

/* The connection and auth, through apns_args. */
static int connection_checks(push_opts *o) {
  char err[APNS_ARGS_ERR_MAX];
  const apns_args *a = &o->apns;
  int rv = apns_args_check(&o->apns, !o->dry_run, err, sizeof err);
  if (rv != 0) {
    push_err("%s", err);
    return rv == APNS_ARGS_USAGE ? SAID_HINT : PUSH_EXIT_USAGE;
  }
  /* The queue refills the connections' free streams: at half of it (the low-water mark, where reading resumes)
   * there must still be as many queued as every connection can take at once (APNs allows 1000 streams a
   * connection), or the pool would wait on the input. Not much more: a deeper queue costs memory and cache (every
   * queued notification is a request block of its own) and measured slower. */
  if (o->max_queued == 0) o->max_queued = (size_t)a->connections * 2000u;
  return 0;
}

int push_parse_args(int argc, char **argv, push_opts *o) {
  memset(o, 0, sizeof *o);
  apns_args_init(&o->apns);
  apns_send_options_init(&o->send);
  o->badge = -1;
  o->progress = -1;
  o->list_dead = 10;
  o->max_queued = 0; /* set after the flags: it depends on --connections */
  o->stale_date = o->dismissal_date = o->timestamp = -1;
  int rv = parse_flags(argc, argv, o);
  if (rv == 0) rv = positional(argc - optind, argv + optind, o);
  if (rv == 0) rv = payload_checks(o);
  if (rv == 0) rv = connection_checks(o);
  if (rv == 0) return 0;
  if (rv == SAID_HINT)
    fputs("usage: apns-push [options] TOKEN [PAYLOAD_JSON] | --bulk FILE|-   (apns-push --help for more)\n", stderr);
  push_opts_free(o); /* the caller frees only what a successful parse gave */
  return rv == EXIT_ZERO ? EXIT_ZERO : PUSH_EXIT_USAGE;
}

int push_proxy(const push_opts *o, apns_proxy_options **out) {
  char err[APNS_ARGS_ERR_MAX];
  if (apns_args_proxy(&o->apns, out, err, sizeof err) == 0) return 0;
  push_err("%s", err);
  return -1;
}

/* The APNs side of a sending command's command line, shared by apns-push and apns-relay: the server (--production,
 * --development, --host, --ca, --verify-name, --insecure), --connections, --timeout, --proxy, --topic and the
 * authentication (--cert, --key, --key-pass-env; --p8, --key-id, --team-id). Each command keeps its own getopt
 * table, with APNS_ARGS_LONGOPTS in it, and hands every code getopt_long returns to apns_args_option first; after
 * the loop apns_args_check judges the combination. The messages are the same words for every command: the caller
 * prints them after its own name. Public API only (<apns.h>, <apns/client.h>). */
#ifndef APNS_TOOLS_APNS_ARGS_H
#define APNS_TOOLS_APNS_ARGS_H

#include <apns.h>
#include <apns/client.h>
#include <apns/proxy.h>
#include <getopt.h>
#include <stddef.h>
#include <stdint.h>

/* Room for a message of apns_args_*: what the callers' err buffers hold. */
#define APNS_ARGS_ERR_MAX 2048

/* The getopt_long codes of the flags; above any a command uses for its own (256 ...) and above every char. */
enum {
  APNS_ARGS_PRODUCTION = 0x1000,
  APNS_ARGS_DEVELOPMENT,
  APNS_ARGS_HOST,
  APNS_ARGS_CA,
  APNS_ARGS_VERIFY_NAME,
  APNS_ARGS_INSECURE,
  APNS_ARGS_CONNECTIONS,
  APNS_ARGS_TIMEOUT,
  APNS_ARGS_CERT,
  APNS_ARGS_KEY,
  APNS_ARGS_KEY_PASS_ENV,
  APNS_ARGS_P8,
  APNS_ARGS_KEY_ID,
  APNS_ARGS_TEAM_ID,
  APNS_ARGS_TOPIC,
  APNS_ARGS_PROXY,
};

/* The entries of a struct option table for every flag but --proxy (a command that takes --proxy adds
 * APNS_ARGS_LONGOPT_PROXY: one that does not resolve a proxy must not accept the flag). */
#define APNS_ARGS_LONGOPTS                                                                                           \
  {"production", no_argument, NULL, APNS_ARGS_PRODUCTION},                                                           \
      {"development", no_argument, NULL, APNS_ARGS_DEVELOPMENT}, {"host", required_argument, NULL, APNS_ARGS_HOST},  \
      {"ca", required_argument, NULL, APNS_ARGS_CA},                                                                 \
      {"verify-name", required_argument, NULL, APNS_ARGS_VERIFY_NAME},                                               \
      {"insecure", no_argument, NULL, APNS_ARGS_INSECURE},                                                           \
      {"connections", required_argument, NULL, APNS_ARGS_CONNECTIONS},                                               \
      {"timeout", required_argument, NULL, APNS_ARGS_TIMEOUT}, {"cert", required_argument, NULL, APNS_ARGS_CERT},    \
      {"key", required_argument, NULL, APNS_ARGS_KEY},                                                               \
      {"key-pass-env", required_argument, NULL, APNS_ARGS_KEY_PASS_ENV},                                             \
      {"p8", required_argument, NULL, APNS_ARGS_P8}, {"key-id", required_argument, NULL, APNS_ARGS_KEY_ID},          \
      {"team-id", required_argument, NULL, APNS_ARGS_TEAM_ID}, {                                                     \
    "topic", required_argument, NULL, APNS_ARGS_TOPIC                                                                \
  }
#define APNS_ARGS_LONGOPT_PROXY                                                                                      \
  { "proxy", required_argument, NULL, APNS_ARGS_PROXY }

/* The settings. The strings point into argv (--host's port is cut off in place, as apns_args_option says) except
 * key_pass, which this struct owns. */
typedef struct apns_args {
  apns_endpoint endpoint; /* default APNS_ENDPOINT_PRODUCTION */
  const char *host;       /* --host without its port; NULL unless endpoint is APNS_ENDPOINT_CUSTOM */
  uint16_t port;          /* --host's port (default 443) */
  const char *ca_file;    /* NULL: the system bundle */
  const char *verify_name;
  int insecure;
  unsigned connections;             /* default 2 */
  uint64_t timeout_ms;              /* default APNS_DEFAULT_TIMEOUT_MS (10 s) */
  const char *proxy;                /* --proxy URL; NULL: the environment's */
  const char *cert_file, *key_file; /* key_file defaults to cert_file (set by apns_args_check) */
  const char *key_pass_env;
  char *key_pass; /* a copy of $key_pass_env's value; zeroed and freed by apns_args_free */
  const char *p8_file, *key_id, *team_id;
  const char *topic;         /* validated with apns_validate_topic; NULL when not given */
  const char *endpoint_flag; /* the first of --production, --development, --host given */
} apns_args;

/* The defaults above; nothing allocated. */
void apns_args_init(apns_args *a);

/* What apns_args_option and apns_args_check return besides 0 and 1. Either way err says why, naming the flag;
 * APNS_ARGS_USAGE is a mistake in the command line (a command prints its usage hint after it), APNS_ARGS_BAD a
 * value or file that cannot serve (no hint). */
#define APNS_ARGS_USAGE (-1)
#define APNS_ARGS_BAD (-2)

/* One code of getopt_long (arg: its optarg, which --host's port is cut off from with a NUL). Returns 1 when the
 * flag was one of these and is taken, 0 when it is not one of these (nothing changed), or APNS_ARGS_USAGE /
 * APNS_ARGS_BAD with err (errlen bytes, APNS_ARGS_ERR_MAX will do) filled. A later value of a flag wins, except
 * that two different servers are refused. */
int apns_args_option(apns_args *a, int code, char *arg, char *err, size_t errlen);

/* After the flags: the combination (one authentication, each with its companions; --verify-name or --insecure),
 * --key's default, and every file flag's file readable. need_auth 0 lets no authentication at all pass (a dry
 * run). Returns 0, APNS_ARGS_USAGE or APNS_ARGS_BAD with err filled. */
int apns_args_check(apns_args *a, int need_auth, char *err, size_t errlen);

/* Fills the server, TLS, authentication, connections, timeout and topic of co and *tls (this sets both up
 * with their _init first) and points co->tls at tls. The strings stay a's: keep a until apns_client_open
 * has returned (it copies them). */
void apns_args_client(const apns_args *a, apns_client_options *co, apns_tls_options *tls);

/* The proxy to reach a's server through: --proxy, else the environment's (https_proxy, all_proxy, no_proxy as
 * curl reads them). *out is NULL for none, else free it with apns_proxy_options_free after apns_client_open.
 * Returns 0, or -1 with err filled ("--proxy: ..." when the flag was wrong). */
int apns_args_proxy(const apns_args *a, apns_proxy_options **out, char *err, size_t errlen);

/* The parsers behind the flags, for a command's own flags of the same kinds (the same words in the messages).
 * apns_args_uint: a decimal number from min to max. apns_args_host_port: "HOST", "HOST:PORT", "[V6]:PORT" or
 * "[V6]" (a bare IPv6 address, two colons or more, is a host without port; the port defaults to 443), the port
 * cut off spec in place and *host pointing into spec. Both return 0, or APNS_ARGS_USAGE with err filled. */
int apns_args_uint(const char *flag, const char *s, unsigned long long min, unsigned long long max,
                   unsigned long long *out, char *err, size_t errlen);
int apns_args_host_port(const char *flag, char *spec, const char **host, uint16_t *port, char *err, size_t errlen);

/* Zeroes the passphrase's copy, frees what a holds and sets a back to its defaults. */
void apns_args_free(apns_args *a);

#endif

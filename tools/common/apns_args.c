/* The APNs-side flags of apns-push and apns-relay (apns_args.h): their parsing, the checks of their combination
 * and the client options they make. The words of every message were apns-push's first; a command prints them
 * after its name, so the same mistake reads the same from each. Public API only. */
#include "apns_args.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int say(int rv, char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static int say(int rv, char *err, size_t errlen, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err, errlen, fmt, ap);
  va_end(ap);
  return rv;
}

void apns_args_init(apns_args *a) {
  memset(a, 0, sizeof *a);
  a->endpoint = APNS_ENDPOINT_PRODUCTION;
  a->port = 443;
  a->connections = 2;
  a->timeout_ms = APNS_DEFAULT_TIMEOUT_MS;
}

/* Through a volatile pointer: a plain memset of memory about to be freed may be left out by the compiler. */
static void zero_free(char *s) {
  if (s == NULL) return;
  for (volatile char *p = s; *p; p++) *p = '\0';
  free(s);
}

void apns_args_free(apns_args *a) {
  zero_free(a->key_pass);
  apns_args_init(a);
}

int apns_args_uint(const char *flag, const char *s, unsigned long long min, unsigned long long max,
                   unsigned long long *out, char *err, size_t errlen) {
  char *end;
  errno = 0;
  unsigned long long v = strtoull(s, &end, 10);
  if (s[0] < '0' || s[0] > '9' || errno != 0 || *end != '\0' || v < min || v > max)
    return say(APNS_ARGS_USAGE, err, errlen, "%s: want a whole number from %llu to %llu, got \"%s\"", flag, min, max,
               s);
  *out = v;
  return 0;
}

int apns_args_host_port(const char *flag, char *spec, const char **out_host, uint16_t *out_port, char *err,
                        size_t errlen) {
  char *host = spec, *port = NULL;
  if (spec[0] == '[') {
    char *close = strchr(spec, ']');
    if (close == NULL || (close[1] != '\0' && close[1] != ':'))
      return say(APNS_ARGS_USAGE, err, errlen, "%s: bad IPv6 literal \"%s\" (want [ADDRESS]:PORT)", flag, spec);
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
  if (host[0] == '\0') return say(APNS_ARGS_USAGE, err, errlen, "%s: no host name in \"%s\"", flag, spec);
  unsigned long long p = 443;
  char what[64];
  snprintf(what, sizeof what, "%s port", flag);
  if (port && apns_args_uint(what, port, 1, 65535, &p, err, errlen) != 0) return APNS_ARGS_USAGE;
  *out_host = host;
  *out_port = (uint16_t)p;
  return 0;
}

/* Seconds with an optional fraction, to milliseconds. */
static int parse_seconds(const char *flag, const char *s, uint64_t *ms, char *err, size_t errlen) {
  char *end;
  errno = 0;
  double v = strtod(s, &end);
  if (errno != 0 || end == s || *end != '\0' || !(v > 0) || v > 86400)
    return say(APNS_ARGS_USAGE, err, errlen, "%s: want seconds, more than 0 and at most 86400, got \"%s\"", flag, s);
  *ms = (uint64_t)(v * 1000 + 0.5);
  if (*ms == 0) *ms = 1;
  return 0;
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

static int server_option(apns_args *a, int code, char *arg, char *err, size_t errlen) {
  const char *flag = code == APNS_ARGS_PRODUCTION    ? "--production"
                     : code == APNS_ARGS_DEVELOPMENT ? "--development"
                                                     : "--host";
  if (a->endpoint_flag && strcmp(flag, a->endpoint_flag) != 0)
    return say(APNS_ARGS_USAGE, err, errlen, "%s and %s: choose one server", a->endpoint_flag, flag);
  a->endpoint_flag = flag;
  a->endpoint = code == APNS_ARGS_PRODUCTION    ? APNS_ENDPOINT_PRODUCTION
                : code == APNS_ARGS_DEVELOPMENT ? APNS_ENDPOINT_DEVELOPMENT
                                                : APNS_ENDPOINT_CUSTOM;
  if (code == APNS_ARGS_HOST && apns_args_host_port("--host", arg, &a->host, &a->port, err, errlen) != 0)
    return APNS_ARGS_USAGE;
  return 1;
}

static int key_pass_option(apns_args *a, const char *var, char *err, size_t errlen) {
  const char *value = getenv(var);
  if (value == NULL)
    return say(APNS_ARGS_USAGE, err, errlen, "--key-pass-env %s: the environment variable %s is not set", var, var);
  char *copy = strdup(value);
  if (copy == NULL) return say(APNS_ARGS_BAD, err, errlen, "--key-pass-env %s: out of memory", var);
  zero_free(a->key_pass); /* --key-pass-env given twice: the later wins */
  a->key_pass_env = var;
  a->key_pass = copy;
  return 1;
}

int apns_args_option(apns_args *a, int code, char *arg, char *err, size_t errlen) {
  unsigned long long v;
  int rv;
  switch (code) {
  case APNS_ARGS_PRODUCTION:
  case APNS_ARGS_DEVELOPMENT:
  case APNS_ARGS_HOST:
    return server_option(a, code, arg, err, errlen);
  case APNS_ARGS_VERIFY_NAME:
    if (!valid_verify_name(arg))
      return say(APNS_ARGS_USAGE, err, errlen,
                 "--verify-name \"%s\": not a host name (1 to 253 printable ASCII characters, no spaces)", arg);
    a->verify_name = arg;
    return 1;
  case APNS_ARGS_CONNECTIONS:
    if (apns_args_uint("--connections", arg, 1, 1000, &v, err, errlen) != 0) return APNS_ARGS_USAGE;
    a->connections = (unsigned)v;
    return 1;
  case APNS_ARGS_TIMEOUT:
    return parse_seconds("--timeout", arg, &a->timeout_ms, err, errlen) == 0 ? 1 : APNS_ARGS_USAGE;
  case APNS_ARGS_KEY_PASS_ENV:
    return key_pass_option(a, arg, err, errlen);
  case APNS_ARGS_TOPIC:
    if ((rv = apns_validate_topic(arg)) < 0)
      return say(APNS_ARGS_BAD, err, errlen, "--topic \"%s\": %s", arg, apns_strerror(rv));
    a->topic = arg;
    return 1;
  }
  /* The flags that only name a value. */
  const char **slot = code == APNS_ARGS_CA        ? &a->ca_file
                      : code == APNS_ARGS_CERT    ? &a->cert_file
                      : code == APNS_ARGS_KEY     ? &a->key_file
                      : code == APNS_ARGS_P8      ? &a->p8_file
                      : code == APNS_ARGS_KEY_ID  ? &a->key_id
                      : code == APNS_ARGS_TEAM_ID ? &a->team_id
                      : code == APNS_ARGS_PROXY   ? &a->proxy
                                                  : NULL;
  if (slot) {
    *slot = arg;
    return 1;
  }
  if (code == APNS_ARGS_INSECURE) {
    a->insecure = 1;
    return 1;
  }
  return 0;
}

/* Which flag goes without its companion, in the order a reader fixes them. */
static int auth_check(const apns_args *a, int need_auth, char *err, size_t errlen) {
  if (a->key_file && !a->cert_file)
    return say(APNS_ARGS_USAGE, err, errlen, "--key %s needs --cert (the client certificate)", a->key_file);
  if ((a->key_id || a->team_id) && !a->p8_file)
    return say(APNS_ARGS_USAGE, err, errlen, "%s needs --p8 (the .p8 signing key)",
               a->key_id ? "--key-id" : "--team-id");
  if (a->p8_file && (!a->key_id || !a->team_id))
    return say(APNS_ARGS_USAGE, err, errlen, "--p8 %s needs %s (from the key's page in the Apple developer account)",
               a->p8_file, !a->key_id ? "--key-id ID" : "--team-id ID");
  if (a->cert_file && a->p8_file)
    return say(APNS_ARGS_USAGE, err, errlen, "--cert and --p8: choose one authentication");
  if (need_auth && !a->cert_file && !a->p8_file)
    return say(APNS_ARGS_USAGE, err, errlen,
               "no authentication: give --cert FILE --key FILE, or --p8 FILE --key-id ID --team-id ID");
  if (a->key_pass_env && !a->cert_file)
    return say(APNS_ARGS_USAGE, err, errlen, "--key-pass-env goes with --cert and --key");
  return 0;
}

int apns_args_check(apns_args *a, int need_auth, char *err, size_t errlen) {
  if (a->verify_name && a->insecure)
    return say(APNS_ARGS_USAGE, err, errlen,
               "--verify-name and --insecure: choose one (--insecure verifies no name)");
  int rv = auth_check(a, need_auth, err, errlen);
  if (rv != 0) return rv;
  if (a->cert_file && !a->key_file) a->key_file = a->cert_file;
  const struct {
    const char *flag, *path;
  } files[] = {{"--ca", a->ca_file}, {"--cert", a->cert_file}, {"--key", a->key_file}, {"--p8", a->p8_file}};
  for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
    if (files[i].path == NULL) continue;
    int fd = open(files[i].path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return say(APNS_ARGS_BAD, err, errlen, "%s %s: %s", files[i].flag, files[i].path, strerror(errno));
    close(fd);
  }
  return 0;
}

void apns_args_client(const apns_args *a, apns_client_options *co, apns_tls_options *tls) {
  apns_client_options_init(co);
  apns_tls_options_init(tls);
  co->tls = tls;
  co->endpoint = a->endpoint;
  co->host = a->host;
  co->port = a->endpoint == APNS_ENDPOINT_CUSTOM ? a->port : 0;
  tls->ca_file = a->ca_file;
  tls->cert_file = a->cert_file;
  tls->key_file = a->key_file;
  tls->key_passphrase = a->key_pass;
  tls->verify_name = a->verify_name;
  tls->insecure_skip_verify = a->insecure;
  co->token_key_file = a->p8_file;
  co->key_id = a->key_id;
  co->team_id = a->team_id;
  co->topic = a->topic;
  co->connections = a->connections;
  co->timeout_ms = a->timeout_ms;
}

int apns_args_proxy(const apns_args *a, apns_proxy_options **out, char *err, size_t errlen) {
  char why[512] = "";
  const char *target = a->endpoint == APNS_ENDPOINT_CUSTOM        ? a->host
                       : a->endpoint == APNS_ENDPOINT_DEVELOPMENT ? APNS_HOST_DEVELOPMENT
                                                                  : APNS_HOST_PRODUCTION;
  *out = NULL;
  int rv = a->proxy ? apns_proxy_parse_url(a->proxy, out, why, sizeof why)
                    : apns_proxy_from_env(target, out, why, sizeof why);
  if (rv < 0)
    return say(-1, err, errlen, "%s%s (%s)", a->proxy ? "--proxy: " : "", why[0] ? why : apns_strerror(rv),
               apns_err_name(rv));
  return 0;
}

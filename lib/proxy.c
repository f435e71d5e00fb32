/* The proxy handshake (HTTP CONNECT and SOCKS5), proxy URLs and the proxy environment variables. Layer 2:
 * sans-I/O, no libuv. The connection shuttles bytes; this file decides what they mean.
 *
 * Both handshakes read strictly and within fixed bounds: a proxy is a network peer like any other, and a broken or
 * hostile one must end the attempt with a message that names it, not make us buffer without limit or take its
 * HTML error page for a TLS record. Nothing here ever writes a credential into a message. */
#include "proxy.h"

#include "abi.h"
#include "alloc.h"
#include "errbuf.h"

#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- configuration --------------------------------------------------------------------------------------------- */

static int has_ctl(const char *s) {
  for (; *s; s++)
    if ((unsigned char)*s < 0x20 || *s == 0x7f) return 1;
  return 0;
}

static void free_secret(char *s) {
  if (s == NULL) return;
  apns__zero(s, strlen(s));
  apns__free(s);
}

void apns__proxy_cfg_free(apns__proxy_cfg *cfg) {
  if (cfg == NULL) return;
  apns__free(cfg->host);
  free_secret(cfg->user);
  free_secret(cfg->password);
  apns__free(cfg);
}

int apns__proxy_cfg_new(apns__proxy_cfg **out, const apns_proxy_options *opts, char *errbuf, size_t errlen) {
  apns_proxy_options copy, *o = &copy;
  *out = NULL;
  if (opts == NULL) return 0;
  int rv = APNS__ABI_READ(apns_proxy_options, type, &copy, opts, errbuf, errlen);
  if (rv < 0) return rv;
  if (o->type == APNS_PROXY_NONE) return 0;
  if (o->type != APNS_PROXY_HTTP && o->type != APNS_PROXY_SOCKS5) {
    apns__errbuf(errbuf, errlen, "proxy: unknown type %d", (int)o->type);
    return APNS_EINVAL;
  }
  if (o->host == NULL || o->host[0] == '\0' || strlen(o->host) > 253 || has_ctl(o->host) || strchr(o->host, ' ')) {
    apns__errbuf(errbuf, errlen, "proxy: a host is required (at most 253 bytes, no spaces or control characters)");
    return APNS_EINVAL;
  }
  const char *pw = o->password ? o->password : "";
  if (o->user == NULL && o->password != NULL) {
    apns__errbuf(errbuf, errlen, "proxy: a password was given without a user");
    return APNS_EINVAL;
  }
  if (o->user) {
    if (o->user[0] == '\0') {
      apns__errbuf(errbuf, errlen, "proxy: the user is empty");
      return APNS_EINVAL;
    }
    if (o->type == APNS_PROXY_HTTP && (strchr(o->user, ':') || has_ctl(o->user) || has_ctl(pw))) {
      /* RFC 7617: the user-id of Basic cannot hold ':', and neither part control characters. */
      apns__errbuf(errbuf, errlen,
                   "proxy: an HTTP proxy user may not contain ':', nor user or password a control "
                   "character");
      return APNS_EINVAL;
    }
    if (o->type == APNS_PROXY_SOCKS5 && (strlen(o->user) > 255 || strlen(pw) > 255)) {
      apns__errbuf(errbuf, errlen, "proxy: SOCKS5 user and password are at most 255 bytes each (RFC 1929)");
      return APNS_EINVAL;
    }
  }
  apns__proxy_cfg *c = apns__calloc(1, sizeof *c);
  if (c == NULL) goto nomem;
  c->type = o->type;
  c->port = o->port ? o->port : APNS_PROXY_DEFAULT_PORT;
  c->host = apns__strdup(o->host);
  if (c->host == NULL) goto nomem;
  if (o->user) {
    c->user = apns__strdup(o->user);
    c->password = apns__strdup(pw);
    if (c->user == NULL || c->password == NULL) goto nomem;
  }
  *out = c;
  return 0;
nomem:
  apns__proxy_cfg_free(c);
  apns__errbuf(errbuf, errlen, "out of memory");
  return APNS_ENOMEM;
}

const char *apns_proxy_type_name(apns_proxy_type type) {
  switch (type) {
  case APNS_PROXY_HTTP:
    return "http";
  case APNS_PROXY_SOCKS5:
    return "socks5";
  default:
    return "none";
  }
}

/* ---- the handshake --------------------------------------------------------------------------------------------- */

typedef enum {
  ST_HTTP_REPLY, /* reading the CONNECT reply's status line and headers */
  ST_S5_METHOD,  /* awaiting VER METHOD */
  ST_S5_AUTH,    /* awaiting the RFC 1929 VER STATUS */
  ST_S5_REPLY,   /* awaiting VER REP RSV ATYP BND.ADDR BND.PORT */
  ST_DONE,       /* tunnel open */
  ST_FAILED
} proxy_state;

struct apns__proxy {
  proxy_state state;
  apns_proxy_type type;
  int have_creds;
  int status;       /* HTTP status or SOCKS5 REP; -1 before */
  int err;          /* the error reported, once failed */
  char where[300];  /* "HTTP proxy 127.0.0.1:3128", for messages */
  char target[300]; /* "api.push.apple.com:443" */
  char *user, *password;
  char *host;
  uint16_t port;

  uint8_t *out; /* pending output */
  size_t out_len;

  /* HTTP: the current line and counts; SOCKS5: the reply being gathered. */
  size_t total; /* bytes of reply consumed so far (HTTP bound) */
  size_t line_len;
  int cr;         /* the previous byte was CR */
  int in_headers; /* the status line of the current reply was read */
  char reason[96];
  size_t need; /* SOCKS5: bytes the current message has in all */
  size_t have;
  char errmsg[512];
  char line[APNS__PROXY_MAX_REPLY];
};

static int fail(apns__proxy *p, int err, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(apns__proxy *p, int err, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(p->errmsg, sizeof p->errmsg, fmt, ap);
  va_end(ap);
  p->state = ST_FAILED;
  p->err = err;
  return err;
}

static void host_port(char *buf, size_t len, const char *host, uint16_t port) {
  if (strchr(host, ':'))
    snprintf(buf, len, "[%s]:%u", host, port);
  else
    snprintf(buf, len, "%s:%u", host, port);
}

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* Standard base64 with padding (RFC 4648 section 4), as Basic uses it. out holds 4 * ((n + 2) / 3) + 1 bytes. */
static size_t base64_std(char *out, const uint8_t *in, size_t n) {
  size_t o = 0, i = 0;
  for (; i + 2 < n; i += 3) {
    uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
    out[o++] = b64[v >> 18];
    out[o++] = b64[(v >> 12) & 63];
    out[o++] = b64[(v >> 6) & 63];
    out[o++] = b64[v & 63];
  }
  if (i < n) {
    uint32_t v = (uint32_t)in[i] << 16 | (i + 1 < n ? (uint32_t)in[i + 1] << 8 : 0);
    out[o++] = b64[v >> 18];
    out[o++] = b64[(v >> 12) & 63];
    out[o++] = i + 1 < n ? b64[(v >> 6) & 63] : '=';
    out[o++] = '=';
  }
  out[o] = '\0';
  return o;
}

/* Appends len bytes to the pending output (a step may follow another before the first output was taken). */
static int set_output(apns__proxy *p, const uint8_t *buf, size_t len) {
  uint8_t *n = apns__malloc(p->out_len + len);
  if (n == NULL) return fail(p, APNS_ENOMEM, "%s: out of memory", p->where);
  if (p->out_len) memcpy(n, p->out, p->out_len);
  memcpy(n + p->out_len, buf, len);
  if (p->out) {
    apns__zero(p->out, p->out_len);
    apns__free(p->out);
  }
  p->out = n;
  p->out_len += len;
  return 0;
}

static int http_request(apns__proxy *p) {
  size_t ulen = p->user ? strlen(p->user) : 0, plen = p->password ? strlen(p->password) : 0;
  size_t cap = 2 * strlen(p->target) + 64 + (p->user ? 4 * ((ulen + plen + 3) / 3) + 40 : 0);
  char *req = apns__malloc(cap);
  int rv;
  if (req == NULL) return fail(p, APNS_ENOMEM, "%s: out of memory", p->where);
  int n = snprintf(req, cap, "CONNECT %s HTTP/1.1\r\nHost: %s\r\n", p->target, p->target);
  if (p->user) {
    uint8_t *cred = apns__malloc(ulen + plen + 1);
    if (cred == NULL) {
      apns__free(req);
      return fail(p, APNS_ENOMEM, "%s: out of memory", p->where);
    }
    memcpy(cred, p->user, ulen);
    cred[ulen] = ':';
    memcpy(cred + ulen + 1, p->password, plen);
    n += snprintf(req + n, cap - (size_t)n, "Proxy-Authorization: Basic ");
    n += (int)base64_std(req + n, cred, ulen + plen + 1);
    apns__zero(cred, ulen + plen + 1);
    apns__free(cred);
    n += snprintf(req + n, cap - (size_t)n, "\r\n");
  }
  n += snprintf(req + n, cap - (size_t)n, "\r\n");
  rv = set_output(p, (const uint8_t *)req, (size_t)n);
  apns__zero(req, cap);
  apns__free(req);
  return rv;
}

static int s5_greeting(apns__proxy *p) {
  /* With credentials, no-auth is offered too (as curl does): a proxy that needs none may say so. */
  const uint8_t with_auth[] = {5, 2, 0, 2}, without[] = {5, 1, 0};
  p->state = ST_S5_METHOD;
  p->need = 2;
  p->have = 0;
  return p->have_creds ? set_output(p, with_auth, sizeof with_auth) : set_output(p, without, sizeof without);
}

static int s5_auth(apns__proxy *p) {
  uint8_t buf[3 + 2 * 255];
  size_t ul = strlen(p->user), pl = strlen(p->password), n = 0;
  buf[n++] = 1;
  buf[n++] = (uint8_t)ul;
  memcpy(buf + n, p->user, ul);
  n += ul;
  buf[n++] = (uint8_t)pl;
  memcpy(buf + n, p->password, pl);
  n += pl;
  p->state = ST_S5_AUTH;
  p->need = 2;
  p->have = 0;
  int rv = set_output(p, buf, n);
  apns__zero(buf, sizeof buf);
  return rv;
}

static int s5_connect(apns__proxy *p) {
  uint8_t buf[4 + 1 + 255 + 2];
  size_t n = 0;
  buf[n++] = 5;
  buf[n++] = 1; /* CONNECT */
  buf[n++] = 0;
  /* An IP literal goes as an address; a name as a name (ATYP 3), so that the proxy resolves it. */
  if (inet_pton(AF_INET, p->host, buf + n + 1) == 1) {
    buf[n++] = 1;
    n += 4;
  } else if (inet_pton(AF_INET6, p->host, buf + n + 1) == 1) {
    buf[n++] = 4;
    n += 16;
  } else {
    size_t hl = strlen(p->host);
    buf[n++] = 3;
    buf[n++] = (uint8_t)hl;
    memcpy(buf + n, p->host, hl);
    n += hl;
  }
  buf[n++] = (uint8_t)(p->port >> 8);
  buf[n++] = (uint8_t)(p->port & 0xff);
  p->state = ST_S5_REPLY;
  p->need = 4;
  p->have = 0;
  return set_output(p, buf, n);
}

int apns__proxy_new(apns__proxy **out, const apns__proxy_cfg *cfg, const char *host, uint16_t port) {
  *out = NULL;
  if (cfg == NULL || host == NULL || host[0] == '\0' || strlen(host) > 255 || has_ctl(host)) return APNS_EINVAL;
  apns__proxy *p = apns__calloc(1, sizeof *p);
  if (p == NULL) return APNS_ENOMEM;
  p->type = cfg->type;
  p->status = -1;
  p->port = port;
  p->host = apns__strdup(host);
  if (cfg->user) {
    p->have_creds = 1;
    p->user = apns__strdup(cfg->user);
    p->password = apns__strdup(cfg->password ? cfg->password : "");
  }
  if (p->host == NULL || (cfg->user && (p->user == NULL || p->password == NULL))) {
    apns__proxy_free(p);
    return APNS_ENOMEM;
  }
  char hp[280];
  host_port(hp, sizeof hp, cfg->host, cfg->port);
  snprintf(p->where, sizeof p->where, "%s proxy %s", cfg->type == APNS_PROXY_HTTP ? "HTTP" : "SOCKS5", hp);
  host_port(p->target, sizeof p->target, host, port);
  int rv;
  if (cfg->type == APNS_PROXY_HTTP) {
    p->state = ST_HTTP_REPLY;
    rv = http_request(p);
  } else {
    rv = s5_greeting(p);
  }
  if (rv < 0) {
    apns__proxy_free(p);
    return rv;
  }
  *out = p;
  return 0;
}

void apns__proxy_free(apns__proxy *p) {
  if (p == NULL) return;
  if (p->out) {
    apns__zero(p->out, p->out_len);
    apns__free(p->out);
  }
  free_secret(p->user);
  free_secret(p->password);
  apns__free(p->host);
  apns__free(p);
}

int apns__proxy_take_output(apns__proxy *p, uint8_t **buf, size_t *len) {
  *buf = p->out;
  *len = p->out_len;
  p->out = NULL;
  p->out_len = 0;
  return 0;
}

/* ---- HTTP CONNECT reply ---------------------------------------------------------------------------------------- */

static int is_tchar(unsigned char ch) {
  return (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
         (ch && strchr("!#$%&'*+-.^_`|~", ch) != NULL);
}

/* "HTTP/1.1 200 Connection established": the version, three digits, then a space and a reason, or nothing. */
static int http_status_line(apns__proxy *p, const char *l, size_t n) {
  if (n < 12 || memcmp(l, "HTTP/1.", 7) != 0 || (l[7] != '0' && l[7] != '1') || l[8] != ' ' || l[9] < '1' ||
      l[9] > '5' || l[10] < '0' || l[10] > '9' || l[11] < '0' || l[11] > '9' || (n > 12 && l[12] != ' '))
    return fail(p, APNS_EPROXYPROTO, "%s sent no HTTP/1.x status line in reply to CONNECT %s", p->where, p->target);
  p->status = (l[9] - '0') * 100 + (l[10] - '0') * 10 + (l[11] - '0');
  /* Kept for the message, printable ASCII only: the proxy's words go into our logs. */
  size_t r = 0;
  for (size_t i = 13; i < n && r + 1 < sizeof p->reason; i++) {
    unsigned char ch = (unsigned char)l[i];
    if (ch < 0x20 || ch >= 0x7f) {
      if (ch != '\t' && ch < 0x80)
        return fail(p, APNS_EPROXYPROTO,
                    "%s sent a control character in its status "
                    "line",
                    p->where);
      ch = '?';
    }
    p->reason[r++] = (char)ch;
  }
  p->reason[r] = '\0';
  p->in_headers = 1;
  return 0;
}

static int http_header_line(apns__proxy *p, const char *l, size_t n) {
  size_t i = 0;
  /* No obs-fold (RFC 9112 lets a client refuse it), no empty name, no space before the colon. */
  while (i < n && is_tchar((unsigned char)l[i])) i++;
  if (i == 0 || i == n || l[i] != ':')
    return fail(p, APNS_EPROXYPROTO, "%s sent a malformed header line in reply to CONNECT %s", p->where, p->target);
  for (i++; i < n; i++) {
    unsigned char ch = (unsigned char)l[i];
    if ((ch < 0x20 && ch != '\t') || ch == 0x7f)
      return fail(p, APNS_EPROXYPROTO, "%s sent a control character in a header", p->where);
  }
  return 0;
}

/* The blank line after the headers: decide. Returns 1 for an open tunnel, 0 to read another reply (1xx). */
static int http_end_of_reply(apns__proxy *p) {
  int st = p->status;
  char shown[128];
  snprintf(shown, sizeof shown, "%d%s%s", st, p->reason[0] ? " " : "", p->reason);
  if (st >= 200 && st < 300) {
    p->state = ST_DONE;
    return 1;
  }
  if (st >= 100 && st < 200 && st != 101) {
    /* An interim reply: the real one follows. */
    p->in_headers = 0;
    p->status = -1;
    return 0;
  }
  /* 401 too: the origin cannot have answered (there is no tunnel yet), and tinyproxy answers wrong credentials with
   * 401 rather than 407. */
  if (st == 407 || st == 401)
    return fail(p, APNS_EPROXYAUTH, "%s %s for CONNECT %s (%s)", p->where,
                p->have_creds ? "rejected the credentials" : "requires authentication", p->target, shown);
  return fail(p, APNS_EPROXY, "%s refused CONNECT %s: %s", p->where, p->target, shown);
}

static int http_feed(apns__proxy *p, const uint8_t *data, size_t len, size_t *used) {
  size_t i = 0;
  while (i < len) {
    unsigned char ch = data[i++];
    if (++p->total > APNS__PROXY_MAX_REPLY) {
      *used = i;
      return fail(p, APNS_EPROXYPROTO, "%s sent more than %d bytes of status line and headers for CONNECT %s",
                  p->where, APNS__PROXY_MAX_REPLY, p->target);
    }
    if (p->cr) {
      p->cr = 0;
      if (ch != '\n') {
        *used = i;
        return fail(p, APNS_EPROXYPROTO, "%s sent a CR without LF in reply to CONNECT %s", p->where, p->target);
      }
      int rv;
      if (!p->in_headers) {
        rv = http_status_line(p, p->line, p->line_len);
      } else if (p->line_len == 0) {
        rv = http_end_of_reply(p);
        if (rv == 1) {
          *used = i;
          return 1;
        }
      } else {
        rv = http_header_line(p, p->line, p->line_len);
      }
      p->line_len = 0;
      if (rv < 0) {
        *used = i;
        return rv;
      }
      continue;
    }
    if (ch == '\r') {
      p->cr = 1;
      continue;
    }
    if (ch == '\n') {
      *used = i;
      return fail(p, APNS_EPROXYPROTO, "%s ended a line with a bare LF (CRLF required) in reply to CONNECT %s",
                  p->where, p->target);
    }
    if (ch == '\0') {
      *used = i;
      return fail(p, APNS_EPROXYPROTO, "%s sent a NUL byte in reply to CONNECT %s", p->where, p->target);
    }
    if ((ch < 0x20 && ch != '\t') || ch == 0x7f) {
      *used = i;
      return fail(p, APNS_EPROXYPROTO, "%s sent control character 0x%02x in reply to CONNECT %s", p->where, ch,
                  p->target);
    }
    /* Not HTTP at all (a TLS or SOCKS server, an SSH banner): known from the first wrong byte. */
    if (!p->in_headers && p->line_len < 7 && ch != (unsigned char)"HTTP/1."[p->line_len]) {
      *used = i;
      return fail(p, APNS_EPROXYPROTO, "%s sent no HTTP/1.x status line in reply to CONNECT %s", p->where, p->target);
    }
    p->line[p->line_len++] = (char)ch; /* within bounds: line_len < total <= APNS__PROXY_MAX_REPLY */
  }
  *used = len;
  return 0;
}

/* ---- SOCKS5 replies -------------------------------------------------------------------------------------------- */

const char *apns__socks5_reply_string(int rep) {
  switch (rep) {
  case 0:
    return "succeeded";
  case 1:
    return "general SOCKS server failure";
  case 2:
    return "connection not allowed by ruleset";
  case 3:
    return "network unreachable";
  case 4:
    return "host unreachable";
  case 5:
    return "connection refused";
  case 6:
    return "TTL expired";
  case 7:
    return "command not supported";
  case 8:
    return "address type not supported";
  default:
    return "unassigned reply code";
  }
}

/* The message gathered so far (in line) is complete or shows an early failure. Returns 1 when the tunnel is open,
 * 0 to go on, or an error. */
static int s5_step(apns__proxy *p) {
  const uint8_t *m = (const uint8_t *)p->line;
  switch (p->state) {
  case ST_S5_METHOD:
    if (m[0] != 5) return fail(p, APNS_EPROXYPROTO, "%s answered with SOCKS version %u, not 5", p->where, m[0]);
    if (p->have < 2) return 0;
    if (m[1] == 0xff)
      return fail(p, APNS_EPROXYAUTH, "%s accepts none of the authentication methods offered (%s)", p->where,
                  p->have_creds ? "none, user/password" : "none; it may need a user and password");
    if (m[1] == 0) return s5_connect(p);
    if (m[1] == 2 && p->have_creds) return s5_auth(p);
    return fail(p, APNS_EPROXYPROTO, "%s chose authentication method %u, which was not offered", p->where, m[1]);
  case ST_S5_AUTH:
    if (m[0] != 1)
      return fail(p, APNS_EPROXYPROTO, "%s answered the user/password request with version %u, not 1", p->where,
                  m[0]);
    if (p->have < 2) return 0;
    if (m[1] != 0) {
      p->status = m[1];
      return fail(p, APNS_EPROXYAUTH, "%s rejected the credentials (RFC 1929 status %u)", p->where, m[1]);
    }
    return s5_connect(p);
  case ST_S5_REPLY:
    if (m[0] != 5) return fail(p, APNS_EPROXYPROTO, "%s replied with SOCKS version %u, not 5", p->where, m[0]);
    if (p->have < 2) return 0;
    p->status = m[1];
    if (m[1] != 0)
      return fail(p, APNS_EPROXY, "%s could not connect to %s: %s (reply %u)", p->where, p->target,
                  apns__socks5_reply_string(m[1]), m[1]);
    if (p->have < 4) return 0;
    if (p->need == 4) {
      /* The bound address (RSV is ignored, as reserved fields are). */
      if (m[3] == 1)
        p->need = 4 + 4 + 2;
      else if (m[3] == 4)
        p->need = 4 + 16 + 2;
      else if (m[3] == 3)
        p->need = 5; /* the length byte first */
      else
        return fail(p, APNS_EPROXYPROTO, "%s replied with unknown address type %u", p->where, m[3]);
      return 0;
    }
    if (m[3] == 3 && p->need == 5) {
      if (m[4] == 0) return fail(p, APNS_EPROXYPROTO, "%s replied with an empty bound name", p->where);
      p->need = 5 + m[4] + 2;
      return 0;
    }
    if (p->have < p->need) return 0;
    p->state = ST_DONE;
    return 1;
  default:
    return APNS_EBUSY;
  }
}

static int s5_feed(apns__proxy *p, const uint8_t *data, size_t len, size_t *used) {
  size_t i = 0;
  /* One byte at a time, so that an early failure (a wrong version, a refusal) is seen before the rest arrives
   * and nothing past the reply is taken. */
  while (i < len) {
    p->line[p->have++] = (char)data[i++];
    int rv = s5_step(p);
    if (rv != 0 || p->state == ST_FAILED) {
      *used = i;
      return rv;
    }
    /* A new step (after the method or the auth reply) starts gathering afresh. */
  }
  *used = len;
  return 0;
}

int apns__proxy_feed(apns__proxy *p, const uint8_t *data, size_t len, size_t *used) {
  *used = 0;
  if (p->state == ST_DONE || p->state == ST_FAILED) return APNS_EBUSY;
  if (len == 0) return 0;
  return p->state == ST_HTTP_REPLY ? http_feed(p, data, len, used) : s5_feed(p, data, len, used);
}

int apns__proxy_eof(apns__proxy *p) {
  if (p->state == ST_FAILED) return p->err;
  if (p->state == ST_DONE) return APNS_ECLOSED;
  return fail(p, APNS_EPROXY, "%s closed the connection before its reply to %s %s was complete", p->where,
              p->type == APNS_PROXY_HTTP ? "CONNECT" : "the request for", p->target);
}

int apns__proxy_done(const apns__proxy *p) {
  return p->state == ST_DONE;
}

const char *apns__proxy_error(const apns__proxy *p) {
  return p->errmsg;
}

int apns__proxy_status(const apns__proxy *p) {
  return p->status;
}

/* ---- proxy URLs ------------------------------------------------------------------------------------------------ */

static int hexval(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/* Percent-decodes s[0..n) into a new string. Returns NULL and sets *bad when an escape is malformed or decodes to
 * NUL; NULL with *bad 0 when out of memory. */
static char *pct_decode(const char *s, size_t n, int *bad) {
  char *out = apns__malloc(n + 1);
  size_t o = 0;
  *bad = 0;
  if (out == NULL) return NULL;
  for (size_t i = 0; i < n; i++) {
    if (s[i] != '%') {
      out[o++] = s[i];
      continue;
    }
    if (i + 2 >= n) {
      *bad = 1;
      break;
    }
    int h = hexval(s[i + 1]), l = hexval(s[i + 2]);
    if (h < 0 || l < 0 || (h == 0 && l == 0)) {
      *bad = 1;
      break;
    }
    out[o++] = (char)(h * 16 + l);
    i += 2;
  }
  if (*bad) {
    apns__zero(out, n + 1);
    apns__free(out);
    return NULL;
  }
  out[o] = '\0';
  return out;
}

void apns_proxy_options_free(apns_proxy_options *o) {
  if (o == NULL) return;
  apns__free((char *)o->host);
  free_secret((char *)o->user);
  free_secret((char *)o->password);
  apns__free(o);
}

static int ascii_ieq(const char *a, size_t n, const char *b) {
  if (strlen(b) != n) return 0;
  for (size_t i = 0; i < n; i++) {
    char x = a[i], y = b[i];
    if (x >= 'A' && x <= 'Z') x = (char)(x - 'A' + 'a');
    if (x != y) return 0;
  }
  return 1;
}

/* The scheme before "://" (none: http). *rest is what follows it. */
static int url_scheme(const char *url, apns_proxy_type *type, const char **rest, char *errbuf, size_t errlen) {
  const char *sep = strstr(url, "://");
  *type = APNS_PROXY_HTTP;
  *rest = url;
  if (sep == NULL) return 0;
  size_t sl = (size_t)(sep - url);
  if (ascii_ieq(url, sl, "http")) {
    *type = APNS_PROXY_HTTP;
  } else if (ascii_ieq(url, sl, "socks5") || ascii_ieq(url, sl, "socks5h")) {
    *type = APNS_PROXY_SOCKS5;
  } else if (ascii_ieq(url, sl, "https")) {
    apns__errbuf(errbuf, errlen, "proxy URL: HTTPS proxies (TLS to the proxy) are not supported; use http://");
    return APNS_EINVAL;
  } else {
    apns__errbuf(errbuf, errlen, "proxy URL: unsupported scheme \"%.*s\" (http, socks5 or socks5h)",
                 (int)(sl > 16 ? 16 : sl), url);
    return APNS_EINVAL;
  }
  *rest = sep + 3;
  return 0;
}

/* "user[:password]" in info[0..n), percent-decoded into o. */
static int url_userinfo(apns_proxy_options *o, const char *info, size_t n, char *errbuf, size_t errlen) {
  int bad = 0;
  const char *colon = memchr(info, ':', n);
  size_t ul = colon ? (size_t)(colon - info) : n;
  o->user = pct_decode(info, ul, &bad);
  if (o->user != NULL && colon) o->password = pct_decode(colon + 1, n - ul - 1, &bad);
  if (o->user == NULL || (colon && o->password == NULL)) {
    if (!bad) {
      apns__errbuf(errbuf, errlen, "out of memory");
      return APNS_ENOMEM;
    }
    apns__errbuf(errbuf, errlen, "proxy URL: a bad percent-escape in the user or password (%%XX, not %%00)");
    return APNS_EINVAL;
  }
  if (o->user[0] == '\0') {
    apns__errbuf(errbuf, errlen, "proxy URL: the user is empty");
    return APNS_EINVAL;
  }
  return 0;
}

/* The host at hp (a name, an IPv4 address or a bracketed IPv6 one), up to a ':' or after; *hend is where it ends. */
static int url_host(apns_proxy_options *o, const char *hp, const char *after, const char **hend, char *errbuf,
                    size_t errlen) {
  if (hp[0] == '[') {
    const char *rb = memchr(hp, ']', (size_t)(after - hp));
    if (rb == NULL) {
      apns__errbuf(errbuf, errlen, "proxy URL: '[' without ']' around the host");
      return APNS_EINVAL;
    }
    if ((o->host = apns__strndup(hp + 1, (size_t)(rb - hp - 1))) == NULL) goto nomem;
    struct in6_addr a6;
    if (inet_pton(AF_INET6, o->host, &a6) != 1) {
      apns__errbuf(errbuf, errlen, "proxy URL: [%s] is not an IPv6 address", o->host);
      return APNS_EINVAL;
    }
    *hend = rb + 1;
    if (*hend < after && **hend != ':') {
      apns__errbuf(errbuf, errlen, "proxy URL: junk after the IPv6 address");
      return APNS_EINVAL;
    }
  } else {
    *hend = memchr(hp, ':', (size_t)(after - hp));
    if (*hend == NULL) *hend = after;
    if ((o->host = apns__strndup(hp, (size_t)(*hend - hp))) == NULL) goto nomem;
  }
  if (o->host[0] == '\0' || strlen(o->host) > 253) {
    apns__errbuf(errbuf, errlen, "proxy URL: the host is empty or longer than 253 bytes");
    return APNS_EINVAL;
  }
  return 0;
nomem:
  apns__errbuf(errbuf, errlen, "out of memory");
  return APNS_ENOMEM;
}

/* The decimal port in p[0..n), 1 to 65535. */
static int url_port(apns_proxy_options *o, const char *p, size_t n, char *errbuf, size_t errlen) {
  unsigned long port = 0;
  for (size_t i = 0; i < n && n <= 5; i++) {
    if (p[i] < '0' || p[i] > '9') {
      port = 0;
      break;
    }
    port = port * 10 + (unsigned long)(p[i] - '0');
  }
  if (n > 5 || port == 0 || port > 65535) {
    apns__errbuf(errbuf, errlen, "proxy URL: the port is not a number from 1 to 65535");
    return APNS_EINVAL;
  }
  o->port = (uint16_t)port;
  return 0;
}

int apns_proxy_parse_url(const char *url, apns_proxy_options **out, char *errbuf, size_t errlen) {
  apns_proxy_type type;
  const char *rest;
  int rv;
  if (out == NULL) return APNS_EINVAL;
  *out = NULL;
  if (url == NULL || url[0] == '\0') {
    apns__errbuf(errbuf, errlen, "proxy URL is empty");
    return APNS_EINVAL;
  }
  for (const char *c = url; *c; c++) {
    if ((unsigned char)*c <= 0x20 || *c == 0x7f) {
      apns__errbuf(errbuf, errlen, "proxy URL has a space or control character");
      return APNS_EINVAL;
    }
  }
  if ((rv = url_scheme(url, &type, &rest, errbuf, errlen)) != 0) return rv;
  size_t alen = strcspn(rest, "/?#");
  const char *after = rest + alen;
  if (after[0] != '\0' && strcmp(after, "/") != 0) {
    apns__errbuf(errbuf, errlen, "proxy URL: a path, query or fragment is not allowed");
    return APNS_EINVAL;
  }
  /* The last '@' ends the user information: a password holding an unescaped '@' still parses. */
  const char *at = NULL;
  for (const char *c = rest; c < after; c++)
    if (*c == '@') at = c;
  const char *hp = at ? at + 1 : rest, *hend;
  apns_proxy_options *o = apns__calloc(1, sizeof *o);
  if (o == NULL) {
    apns__errbuf(errbuf, errlen, "out of memory");
    return APNS_ENOMEM;
  }
  o->size = sizeof *o;
  o->type = type;
  o->port = APNS_PROXY_DEFAULT_PORT;
  if ((at && (rv = url_userinfo(o, rest, (size_t)(at - rest), errbuf, errlen)) != 0) ||
      (rv = url_host(o, hp, after, &hend, errbuf, errlen)) != 0 ||
      (hend < after && (rv = url_port(o, hend + 1, (size_t)(after - hend - 1), errbuf, errlen)) != 0)) {
    apns_proxy_options_free(o);
    return rv;
  }
  *out = o;
  return 0;
}

/* ---- the environment ------------------------------------------------------------------------------------------- */

static const char *env_nonempty(const char *name) {
  const char *v = getenv(name);
  return v && v[0] ? v : NULL;
}

static void lower_copy(char *dst, const char *src, size_t n) {
  for (size_t i = 0; i < n; i++) dst[i] = (src[i] >= 'A' && src[i] <= 'Z') ? (char)(src[i] - 'A' + 'a') : src[i];
  dst[n] = '\0';
}

/* host (lowercase, no brackets, no trailing dot) against one no_proxy entry. */
static int no_proxy_entry_matches(const char *host, const char *e, size_t n) {
  char entry[256];
  uint8_t a[16], b[16];
  if (n >= 2 && e[0] == '[' && e[n - 1] == ']') {
    e++;
    n -= 2;
  }
  while (n > 0 && e[0] == '.') {
    e++;
    n--;
  }
  while (n > 0 && e[n - 1] == '.') n--;
  if (n == 0 || n >= sizeof entry) return 0;
  lower_copy(entry, e, n);
  if (inet_pton(AF_INET6, entry, a) == 1) return inet_pton(AF_INET6, host, b) == 1 && memcmp(a, b, 16) == 0;
  if (inet_pton(AF_INET, entry, a) == 1) return inet_pton(AF_INET, host, b) == 1 && memcmp(a, b, 4) == 0;
  if (strchr(entry, ':') || strchr(entry, '/')) return 0;
  /* An address is matched by an address only: "0.0.1" is not a domain that 127.0.0.1 is under. */
  if (inet_pton(AF_INET, host, b) == 1 || inet_pton(AF_INET6, host, b) == 1) return 0;
  size_t hl = strlen(host);
  if (hl == n) return memcmp(host, entry, n) == 0;
  return hl > n && host[hl - n - 1] == '.' && memcmp(host + hl - n, entry, n) == 0;
}

static int no_proxy_matches(const char *list, const char *host_in) {
  char host[256];
  size_t hl = strlen(host_in);
  if (hl >= 2 && host_in[0] == '[' && host_in[hl - 1] == ']') {
    host_in++;
    hl -= 2;
  }
  while (hl > 0 && host_in[hl - 1] == '.') hl--;
  if (hl == 0 || hl >= sizeof host) return 0;
  lower_copy(host, host_in, hl);
  const char *p = list;
  while (*p) {
    while (*p == ' ' || *p == '\t' || *p == ',') p++;
    const char *s = p;
    while (*p && *p != ',') p++;
    size_t n = (size_t)(p - s);
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t')) n--;
    if (n == 1 && s[0] == '*') return 1;
    if (n > 0 && no_proxy_entry_matches(host, s, n)) return 1;
  }
  return 0;
}

int apns_proxy_from_env(const char *host, apns_proxy_options **out, char *errbuf, size_t errlen) {
  static const char *const names[] = {"https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"};
  if (out == NULL) return APNS_EINVAL;
  *out = NULL;
  if (host == NULL || host[0] == '\0') {
    apns__errbuf(errbuf, errlen, "a host is required to apply no_proxy");
    return APNS_EINVAL;
  }
  const char *name = NULL, *url = NULL;
  for (size_t i = 0; i < sizeof names / sizeof names[0] && url == NULL; i++) {
    name = names[i];
    url = env_nonempty(name);
  }
  if (url == NULL) return 0;
  /* curl reads the lowercase spelling first, and the uppercase only when the lowercase is not set at all. */
  const char *no = getenv("no_proxy");
  if (no == NULL) no = getenv("NO_PROXY");
  if (no && no_proxy_matches(no, host)) return 0;
  char why[200];
  int rv = apns_proxy_parse_url(url, out, why, sizeof why);
  if (rv == APNS_EINVAL)
    apns__errbuf(errbuf, errlen, "%s: %s", name, why);
  else if (rv < 0)
    apns__errbuf(errbuf, errlen, "%s", why);
  return rv;
}

/* Bulk lines in, result lines out (see bulk.h): a one-pass JSON scanner for the few members a line has, and the
 * escaping that keeps every result line valid JSON and every log line free of a server's control bytes. */
#include "bulk.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* ---- output with snprintf's contract: count everything, write what fits ---- */

typedef struct out {
  char *p;
  size_t cap, n;
  int stop_when_full; /* bulk_escape_text: truncate on a whole escape instead of counting on */
  int full;
} out;

static void put(out *o, const char *s, size_t k) {
  if (o->full) return;
  if (o->n + k < o->cap) {
    memcpy(o->p + o->n, s, k);
  } else if (o->stop_when_full) {
    o->full = 1;
    return;
  }
  o->n += k;
}

static void put_c(out *o, char c) {
  put(o, &c, 1);
}

static void put_u64(out *o, uint64_t v) {
  char b[24];
  size_t i = sizeof b;
  do {
    b[--i] = (char)('0' + v % 10);
    v /= 10;
  } while (v);
  put(o, b + i, sizeof b - i);
}

static void put_i64(out *o, int64_t v) {
  if (v < 0) {
    put_c(o, '-');
    put_u64(o, (uint64_t)0 - (uint64_t)v);
  } else {
    put_u64(o, (uint64_t)v);
  }
}

static void put_hex4(out *o, unsigned v) {
  static const char hex[] = "0123456789abcdef";
  char b[6] = {'\\', 'u', hex[(v >> 12) & 15], hex[(v >> 8) & 15], hex[(v >> 4) & 15], hex[v & 15]};
  put(o, b, 6);
}

static void finish(out *o) {
  if (o->cap > 0) o->p[o->n < o->cap ? o->n : o->cap - 1] = '\0';
}

/* ---- byte classes ---- */

/* Bit 1: printable ASCII but '"' and '\\' (nothing to do in a JSON string); bit 2: printable ASCII (nothing to do
 * in text for a terminal, where '"' and '\\' stay as they are, so that escaping twice changes nothing). */
static const unsigned char plain_class[256] = {
#define P4(x) x, x, x, x
#define P16(x) P4(x), P4(x), P4(x), P4(x)
    P16(0), P16(0),                                        /* 0x00-0x1f */
    3,      3,      2,      3,      P4(3),  P4(3),  P4(3), /* 0x20-0x2f: '"' is 0x22 */
    P16(3),                                                /* 0x30-0x3f */
    P16(3),                                                /* 0x40-0x4f */
    P4(3),  P4(3),  P4(3),  2,      3,      3,      3,     /* 0x50-0x5f: '\\' is 0x5c */
    P16(3),                                                /* 0x60-0x6f */
    P4(3),  P4(3),  P4(3),  3,      3,      3,      0,     /* 0x70-0x7f: DEL */
    P16(0), P16(0), P16(0), P16(0), P16(0), P16(0), P16(0), P16(0),
#undef P16
#undef P4
};

static const unsigned char hex_digit[256] = {
    ['0'] = 1, ['1'] = 1, ['2'] = 1, ['3'] = 1, ['4'] = 1, ['5'] = 1, ['6'] = 1, ['7'] = 1,
    ['8'] = 1, ['9'] = 1, ['a'] = 1, ['b'] = 1, ['c'] = 1, ['d'] = 1, ['e'] = 1, ['f'] = 1,
    ['A'] = 1, ['B'] = 1, ['C'] = 1, ['D'] = 1, ['E'] = 1, ['F'] = 1};

static int plain(unsigned c, int json) {
  return plain_class[c] & (json ? 1 : 2);
}

#define ONES 0x0101010101010101ull
#define HIGHS 0x8080808080808080ull
/* Non-zero when a byte of x equals b (the classic zero-byte test on x ^ b...b). */
#define HAS_BYTE(x, b) ((((x) ^ (ONES * (b))) - ONES) & ~((x) ^ (ONES * (b))) & HIGHS)

/* The end of the run of plain bytes from i: 8 at a time while none of them needs a look (below 0x20, DEL, 0x80 and
 * up, and '"' and '\\' for JSON), then byte by byte. Strings are scanned on every line, twice for the result. */
static size_t plain_run(const unsigned char *s, size_t i, size_t n, int json) {
  while (i + 8 <= n) {
    uint64_t x;
    memcpy(&x, s + i, 8);
    uint64_t stop = (x & HIGHS) | ((x - ONES * 0x20) & ~x & HIGHS) | HAS_BYTE(x, 0x7f);
    if (json) stop |= HAS_BYTE(x, 0x22) | HAS_BYTE(x, 0x5c);
    if (stop) break;
    i += 8;
  }
  while (i < n && plain(s[i], json)) i++;
  return i;
}

/* ---- escaping ---- */

/* The length of the well-formed UTF-8 sequence at s (1 to 4), or 0 when the byte at s starts none. */
static size_t utf8_seq(const unsigned char *s, size_t n) {
  unsigned c = s[0];
  size_t k = c < 0x80                   ? 1
             : (c >= 0xc2 && c <= 0xdf) ? 2
             : (c >= 0xe0 && c <= 0xef) ? 3
             : (c >= 0xf0 && c <= 0xf4) ? 4
                                        : 0;
  if (k <= 1) return k;
  if (k > n) return 0;
  return apns_validate_utf8((const char *)s, k) == 0 ? k : 0;
}

static void escape(out *o, const char *str, size_t len, int json) {
  const unsigned char *s = (const unsigned char *)str;
  size_t i = 0;
  while (i < len && !o->full) {
    /* The common case first: printable ASCII that needs nothing, copied as one run. */
    size_t run = plain_run(s, i, len, json);
    if (run > i) {
      put(o, str + i, run - i);
      i = run;
      continue;
    }
    unsigned c = s[i];
    if (c == '"' || c == '\\') {
      char b[2] = {'\\', (char)c};
      put(o, b, 2);
      i++;
    } else if (c < 0x20 || c == 0x7f) {
      const char *short_form = c == '\n' ? "\\n" : c == '\r' ? "\\r" : c == '\t' ? "\\t" : NULL;
      if (short_form)
        put(o, short_form, 2);
      else
        put_hex4(o, c);
      i++;
    } else {
      size_t k = utf8_seq(s + i, len - i);
      if (k == 0) {
        put_hex4(o, 0xfffd); /* a byte that is not UTF-8 */
        i++;
        continue;
      }
      /* C1 controls (U+0080-U+009F: 0xC2 0x80-0x9F) act on some terminals; U+2028/U+2029 end lines in
       * JavaScript. Both as escapes; every other character as its bytes. */
      if (k == 2 && c == 0xc2 && s[i + 1] < 0xa0)
        put_hex4(o, s[i + 1]);
      else if (k == 3 && c == 0xe2 && s[i + 1] == 0x80 && (s[i + 2] == 0xa8 || s[i + 2] == 0xa9))
        put_hex4(o, 0x2000u | (unsigned)(s[i + 2] - 0x80));
      else
        put(o, str + i, k);
      i += k;
    }
  }
}

static void json_str(out *o, const char *s, size_t len) {
  if (s == NULL) {
    put(o, "null", 4);
    return;
  }
  put_c(o, '"');
  escape(o, s, len, 1);
  put_c(o, '"');
}

size_t bulk_json_string(char *dst, size_t cap, const char *s, size_t len) {
  out o = {dst, cap, 0, 0, 0};
  json_str(&o, s, len);
  finish(&o);
  return o.n;
}

size_t bulk_escape_text(char *dst, size_t cap, const char *s, size_t len) {
  out o = {dst, cap, 0, 1, 0};
  if (s) escape(&o, s, len, 0);
  finish(&o);
  return o.n < cap ? o.n : (cap ? cap - 1 : 0);
}

/* ---- result lines ---- */

static void member_str(out *o, const char *name, const char *s) {
  put(o, name, strlen(name));
  json_str(o, s, s ? strlen(s) : 0);
}

static size_t format_result(const bulk_result *r, const char *entry, char *buf, size_t cap) {
  out o = {buf, cap, 0, 0, 0};
  put(&o, "{\"line\":", 8);
  put_u64(&o, r->line);
  if (r->channel) {
    member_str(&o, ",\"channel\":", r->channel);
    put(&o, ",\"status\":", 10);
    if (r->status)
      put_i64(&o, r->status);
    else
      put(&o, "null", 4);
    member_str(&o, ",\"reason\":", r->reason);
    member_str(&o, ",\"apns_request_id\":", r->request_id);
    member_str(&o, ",\"apns_unique_id\":", r->unique_id);
    goto attempts;
  }
  member_str(&o, ",\"token\":", r->token);
  member_str(&o, ",\"apns_id\":", r->apns_id);
  put(&o, ",\"status\":", 10);
  put_i64(&o, r->status);
  member_str(&o, ",\"reason\":", r->reason);
  put(&o, ",\"timestamp\":", 13);
  if (r->timestamp_ms)
    put_i64(&o, r->timestamp_ms);
  else
    put(&o, "null", 4);
attempts:
  put(&o, ",\"attempts\":", 12);
  put_u64(&o, r->attempts);
  put(&o, ",\"latency_ms\":", 14);
  if (r->latency_ms >= 0 && r->latency_ms < 1e12) {
    /* %.3f by hand: the result writer is on the hot path of a bulk run. */
    uint64_t us = (uint64_t)(r->latency_ms * 1000.0 + 0.5);
    char frac[4] = {(char)('0' + us / 100 % 10), (char)('0' + us / 10 % 10), (char)('0' + us % 10), 0};
    put_u64(&o, us / 1000);
    put_c(&o, '.');
    put(&o, frac, 3);
  } else {
    put(&o, "null", 4);
  }
  if (r->error) {
    member_str(&o, ",\"error\":", r->error);
    member_str(&o, ",\"message\":", r->message ? r->message : "");
  }
  if (entry) member_str(&o, ",\"entry\":", entry);
  put(&o, "}\n", 2);
  finish(&o);
  return o.n;
}

size_t bulk_result_format(const bulk_result *r, char *buf, size_t cap) {
  return format_result(r, NULL, buf, cap);
}

size_t bulk_result_format_entry(const bulk_result *r, const char *entry, char *buf, size_t cap) {
  return format_result(r, entry, buf, cap);
}

/* ---- the line scanner ---- */

/* The line's own structure is walked here; every value in it (the members' strings and numbers, the payload,
 * anything else) is scanned by the library's apns_json_scan, the check behind apns_notification_new_raw, so that
 * a payload the scan passes is one the library takes as it is. */
typedef struct scan {
  const unsigned char *s;
  size_t i, n;
  const char *syntax; /* the first syntax error: the line is not JSON */
  size_t syntax_at;
  char *scratch;
  size_t used, cap;
} scan;

static int fail(scan *sc, const char *what) {
  if (sc->syntax == NULL) {
    sc->syntax = what;
    sc->syntax_at = sc->i;
  }
  return -1;
}

static void ws(scan *sc) {
  while (sc->i < sc->n) {
    unsigned char c = sc->s[sc->i];
    if (c != ' ' && c != '\t' && c != '\n' && c != '\r') break;
    sc->i++;
  }
}

/* The value at sc->i through the library's scan; sc->i then past it, or at the error. */
static int lib_scan(scan *sc, int depth, unsigned flags, char *dst, size_t dcap, apns_json_scan_result *r) {
  int err = apns_json_scan((const char *)sc->s, sc->n, sc->i, depth, flags, dst, dcap, r);
  sc->i = r->end;
  return err ? fail(sc, r->syntax ? r->syntax : "syntax error") : 0;
}

static int value(scan *sc, int depth) {
  apns_json_scan_result r;
  return lib_scan(sc, depth, 0, NULL, 0, &r);
}

/* A string at sc->i == '"', unescaped into dst (up to dcap bytes, NUL-terminated when that fits); *dlen its whole
 * unescaped length. */
static int string(scan *sc, char *dst, size_t dcap, size_t *dlen) {
  apns_json_scan_result r;
  if (lib_scan(sc, 1, 0, dst, dcap, &r) < 0) return -1;
  *dlen = r.string_len;
  return 0;
}

static char *scratch_take(scan *sc, size_t n) {
  if (sc->cap - sc->used < n) return NULL;
  char *p = sc->scratch + sc->used;
  sc->used += n;
  return p;
}

/* The payload's bytes without the whitespace outside its strings (a checked JSON object). */
static size_t minify(const unsigned char *s, size_t n, char *d) {
  size_t j = 0;
  for (size_t i = 0; i < n; i++) {
    unsigned c = s[i];
    if (c == '"') {
      d[j++] = '"';
      for (i++; s[i] != '"'; i++) {
        d[j++] = (char)s[i];
        if (s[i] == '\\') d[j++] = (char)s[++i];
      }
      d[j++] = '"';
    } else if (c != ' ' && c != '\t' && c != '\n' && c != '\r') {
      d[j++] = (char)c;
    }
  }
  return j;
}

enum {
  M_TOKEN,
  M_PAYLOAD,
  M_TOPIC,
  M_PUSH_TYPE,
  M_PRIORITY,
  M_EXPIRATION,
  M_COLLAPSE_ID,
  M_APNS_ID,
  M_CHANNEL,
  M_COUNT
};
static const char *const member_names[M_COUNT] = {"token",      "payload",     "topic",   "push_type", "priority",
                                                  "expiration", "collapse_id", "apns_id", "channel"};

static int member_of(const char *key, size_t len) {
  int m;
  if (len < 5) return -1;
  switch (key[0]) { /* one candidate per first letter but 't' and 'p' */
  case 't':
    m = key[2] == 'k' ? M_TOKEN : M_TOPIC;
    break;
  case 'p':
    m = len == 7 ? M_PAYLOAD : len == 8 ? M_PRIORITY : M_PUSH_TYPE;
    break;
  case 'e':
    m = M_EXPIRATION;
    break;
  case 'c':
    m = len == 7 ? M_CHANNEL : M_COLLAPSE_ID;
    break;
  case 'a':
    m = M_APNS_ID;
    break;
  default:
    return -1;
  }
  return strlen(member_names[m]) == len && memcmp(member_names[m], key, len) == 0 ? m : -1;
}

static void say(char *why, size_t whylen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void say(char *why, size_t whylen, const char *fmt, ...) {
  va_list ap;
  if (whylen == 0) return;
  va_start(ap, fmt);
  vsnprintf(why, whylen, fmt, ap);
  va_end(ap);
}

/* One line's parse: the scan, what it fills in, and the first error that is not a syntax error. */
typedef struct line_parse {
  scan sc;
  const char *text;
  bulk_line *out;
  apns_json_scan_result pr; /* the payload's scan */
  unsigned seen;            /* the members met, a bit each */
  int sem;                  /* the first error that is not a syntax error (0: none yet) */
  char *why;
  size_t whylen;
} line_parse;

/* What a step of the parse returns: STEP_OK, STEP_SYNTAX (sc.syntax says why) or STEP_INTERNAL (why says it). */
enum { STEP_OK = 0, STEP_SYNTAX = -1, STEP_INTERNAL = 1 };

/* The first error that is not a syntax error: its code, and its sentence in why. The scan goes on, so that a syntax
 * error further on still wins (the line is then not JSON at all). */
static void sem(line_parse *p, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void sem(line_parse *p, int code, const char *fmt, ...) {
  va_list ap;
  if (p->sem) return;
  p->sem = code;
  if (p->whylen == 0) return;
  va_start(ap, fmt);
  vsnprintf(p->why, p->whylen, fmt, ap);
  va_end(ap);
}

/* token, topic, push_type, collapse_id, apns_id, channel: a string, unescaped straight into the scratch (never
 * longer than what is left of the line). */
static int string_member(line_parse *p, int m) {
  scan *sc = &p->sc;
  bulk_line *out = p->out;
  if (sc->s[sc->i] != '"') {
    if (value(sc, 1) < 0) return STEP_SYNTAX;
    sem(p, APNS_EINVAL, "\"%s\" must be a string", member_names[m]);
    return STEP_OK;
  }
  char *d = sc->scratch + sc->used;
  size_t slen;
  if (string(sc, d, sc->cap - sc->used, &slen) < 0) return STEP_SYNTAX;
  sc->used += slen + 1;
  if (m == M_TOKEN) out->token = d;
  if (m == M_TOPIC) out->topic = d;
  if (m == M_COLLAPSE_ID) out->collapse_id = d;
  if (m == M_APNS_ID) out->apns_id = d;
  if (m == M_CHANNEL) out->channel = d;
  if (m == M_PUSH_TYPE) {
    out->has_push_type = 1;
    if (apns_push_type_from_string(d, &out->push_type) < 0) {
      char esc[160];
      bulk_escape_text(esc, 41, d, slen);
      sem(p, APNS_EINVAL, "unknown push_type \"%s\"", esc);
    }
  }
  return STEP_OK;
}

/* payload: an object, checked by the library's scan as a raw payload is; its bytes kept where they are, or
 * minified into the scratch when it has whitespace. */
static int payload_member(line_parse *p) {
  scan *sc = &p->sc;
  bulk_line *out = p->out;
  if (sc->s[sc->i] != '{') {
    if (value(sc, 1) < 0) return STEP_SYNTAX;
    sem(p, APNS_EINVAL, "\"payload\" must be a JSON object");
    return STEP_OK;
  }
  size_t start = sc->i;
  if (lib_scan(sc, 2, APNS_JSON_SCAN_PAYLOAD, NULL, 0, &p->pr) < 0) return STEP_SYNTAX;
  out->payload = p->text + start;
  out->payload_len = sc->i - start;
  if (p->pr.spaced) {
    char *d = scratch_take(sc, out->payload_len);
    if (d == NULL) {
      say(p->why, p->whylen, "internal: scratch too small for the line");
      return STEP_INTERNAL;
    }
    out->payload_len = minify(sc->s + start, out->payload_len, d);
    out->payload = d;
  }
  return STEP_OK;
}

/* priority and expiration: whole numbers, in their ranges. */
static int number_member(line_parse *p, int m) {
  apns_json_scan_result r;
  if (lib_scan(&p->sc, 1, APNS_JSON_SCAN_BIG_INTEGER, NULL, 0, &r) < 0) return STEP_SYNTAX;
  int whole = r.type == '0' && r.integer && r.fits;
  int64_t v = r.value;
  if (m == M_PRIORITY) {
    if (whole && (v == 1 || v == 5 || v == 10))
      p->out->priority = (int)v;
    else
      sem(p, APNS_EBADPRIORITY, "\"priority\" must be 10, 5 or 1");
  } else {
    if (whole && v >= 0)
      p->out->has_expiration = 1, p->out->expiration = v;
    else
      sem(p, APNS_EINVAL, "\"expiration\" must be UNIX seconds (a whole number, 0 or more)");
  }
  return STEP_OK;
}

/* One "key": value at sc.i (a '"'): the key told apart from the members', given once, and its value. */
static int member(line_parse *p) {
  scan *sc = &p->sc;
  char key[48];
  size_t klen, kstart = sc->i;
  if (string(sc, key, sizeof key - 1, &klen) < 0) return STEP_SYNTAX;
  int m = -1;
  if (klen < sizeof key) {
    m = member_of(key, klen);
  } else { /* longer than any member's name: unknown; its first bytes for the message */
    klen = 40;
    memcpy(key, p->text + kstart + 1, klen);
  }
  ws(sc);
  if (sc->i >= sc->n || sc->s[sc->i] != ':') return fail(sc, "':' expected");
  sc->i++;
  ws(sc);
  if (sc->i >= sc->n) return fail(sc, "unexpected end of the line");
  if (m >= 0 && (p->seen >> m & 1)) {
    sc->i = kstart;
    return fail(sc, "duplicate object key");
  }
  if (m >= 0) p->seen |= 1u << m;
  switch (m) {
  case M_TOKEN:
  case M_TOPIC:
  case M_PUSH_TYPE:
  case M_COLLAPSE_ID:
  case M_APNS_ID:
  case M_CHANNEL:
    return string_member(p, m);
  case M_PAYLOAD:
    return payload_member(p);
  case M_PRIORITY:
  case M_EXPIRATION:
    return number_member(p, m);
  default: {
    if (value(sc, 1) < 0) return STEP_SYNTAX;
    char esc[160];
    bulk_escape_text(esc, 41, key, klen);
    sem(p, APNS_EINVAL,
        "unknown field \"%s\" (known: token, channel, payload, topic, push_type, priority, expiration, "
        "collapse_id, apns_id)",
        esc);
    return STEP_OK;
  }
  }
}

/* The line's object at sc.i (a '{'), its members each through member, then the end of the line. */
static int object(line_parse *p) {
  scan *sc = &p->sc;
  sc->i++;
  ws(sc);
  if (sc->i < sc->n && sc->s[sc->i] == '}') {
    sc->i++;
  } else {
    for (;;) {
      ws(sc);
      if (sc->i >= sc->n || sc->s[sc->i] != '"') return fail(sc, "string or '}' expected");
      int rv = member(p);
      if (rv != STEP_OK) return rv;
      ws(sc);
      if (sc->i < sc->n && sc->s[sc->i] == ',') {
        sc->i++;
        continue;
      }
      if (sc->i < sc->n && sc->s[sc->i] == '}') {
        sc->i++;
        break;
      }
      return fail(sc, "',' or '}' expected");
    }
  }
  ws(sc);
  if (sc->i != sc->n) return fail(sc, "end of the line expected");
  return STEP_OK;
}

/* What a well-formed line must have together: a token or a channel (not both) of the right form, and a payload
 * the raw notification's checks (apns_notification_new_raw) pass where the scan decides them. 0 or the error. */
static int line_checks(line_parse *p) {
  bulk_line *out = p->out;
  char *why = p->why;
  size_t whylen = p->whylen;
  if (out->token && out->channel) {
    say(why, whylen, "\"token\" and \"channel\": a line goes to a device or to a channel, not both");
    return APNS_EINVAL;
  }
  if (out->channel && apns_validate_channel_id(out->channel) < 0) {
    say(why, whylen, "bad channel: %s", apns_strerror(APNS_EBADCHANNELID));
    return APNS_EBADCHANNELID;
  }
  if (out->token == NULL && out->channel == NULL) {
    say(why, whylen, "no \"token\" (or \"channel\")");
    return APNS_EBADTOKEN;
  }
  /* apns_validate_device_token's rule (the send checks it again), with a table: this runs for every line. */
  size_t tl = 0;
  while (out->token && hex_digit[(unsigned char)out->token[tl]]) tl++;
  if (out->token && (out->token[tl] != '\0' || tl == 0 || tl % 2 != 0 || tl > APNS_DEVICE_TOKEN_MAX)) {
    say(why, whylen, "bad token: %s", apns_strerror(APNS_EBADTOKEN));
    return APNS_EBADTOKEN;
  }
  if (out->payload) {
    out->payload_checked = !p->pr.unsure;
    if (p->pr.members == 0) {
      say(why, whylen, "payload: %s", apns_strerror(APNS_EPAYLOADEMPTY));
      return APNS_EPAYLOADEMPTY;
    }
    if (p->pr.aps_seen && !p->pr.aps_object) {
      say(why, whylen, "payload: %s (\"aps\" must be an object)", apns_strerror(APNS_EBADJSON));
      return APNS_EBADJSON;
    }
    out->payload_background = p->pr.background;
  }
  return 0;
}

/* A line that is not an object: JSON or not, it is no line. STEP_OK when it is some other JSON value. */
static int not_an_object(scan *sc) {
  if (value(sc, 1) < 0) return STEP_SYNTAX;
  ws(sc);
  return sc->i == sc->n ? STEP_OK : fail(sc, "end of the line expected");
}

int bulk_line_parse(const char *text, size_t len, bulk_line *out, char *scratch, size_t scratch_cap, char *why,
                    size_t whylen) {
  line_parse p;
  p.sc.s = (const unsigned char *)text;
  p.sc.i = 0;
  p.sc.n = len;
  p.sc.syntax = NULL;
  p.sc.syntax_at = 0;
  p.sc.scratch = scratch;
  p.sc.used = 0;
  p.sc.cap = scratch_cap;
  p.text = text;
  p.out = out;
  p.seen = 0;
  p.sem = 0;
  p.why = why;
  p.whylen = whylen;
  memset(out, 0, sizeof *out);
  if (whylen) why[0] = '\0';
  if (scratch_cap < BULK_SCRATCH(len)) {
    say(why, whylen, "internal: scratch too small for the line");
    return APNS_EINVAL;
  }
  ws(&p.sc);
  int rv;
  if (p.sc.i >= p.sc.n) {
    rv = fail(&p.sc, "unexpected end of the line");
  } else if (p.sc.s[p.sc.i] != '{') {
    if ((rv = not_an_object(&p.sc)) == STEP_OK) {
      say(why, whylen, "not a JSON object");
      return APNS_EINVAL;
    }
  } else {
    rv = object(&p);
  }
  if (rv == STEP_INTERNAL) return APNS_EINVAL;
  if (rv == STEP_SYNTAX) {
    say(why, whylen, "not JSON: %s at column %zu", p.sc.syntax ? p.sc.syntax : "syntax error", p.sc.syntax_at + 1);
    memset(out, 0, sizeof *out);
    return APNS_EBADJSON;
  }
  return p.sem ? p.sem : line_checks(&p);
}

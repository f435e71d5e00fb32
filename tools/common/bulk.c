/* Bulk lines in, result lines out (see bulk.h): a one-pass JSON scanner for the few members a line has, and the
 * escaping that keeps every result line valid JSON and every log line free of a server's control bytes. */
#include "bulk.h"

#include "validate.h"

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
  return apns__utf8_valid((const char *)s, k) ? k : 0;
}

static void escape(out *o, const char *str, size_t len, int json) {
  const unsigned char *s = (const unsigned char *)str;
  size_t i = 0;
  while (i < len && !o->full) {
    size_t run = i;
    /* The common case first: printable ASCII that needs nothing, copied as one run. */
    while (run < len && s[run] >= 0x20 && s[run] < 0x7f && s[run] != '\\' && (s[run] != '"' || !json)) run++;
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

size_t bulk_result_format(const bulk_result *r, char *buf, size_t cap) {
  out o = {buf, cap, 0, 0, 0};
  put(&o, "{\"line\":", 8);
  put_u64(&o, r->line);
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
  put(&o, "}\n", 2);
  finish(&o);
  return o.n;
}

/* ---- the line scanner ---- */

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

static int hex4(const unsigned char *p, unsigned *v) {
  unsigned x = 0;
  for (int k = 0; k < 4; k++) {
    unsigned c = p[k], d;
    if (c >= '0' && c <= '9')
      d = c - '0';
    else if ((c | 0x20) >= 'a' && (c | 0x20) <= 'f')
      d = (c | 0x20) - 'a' + 10;
    else
      return -1;
    x = x << 4 | d;
  }
  *v = x;
  return 0;
}

static size_t utf8_put(char *d, unsigned cp) {
  if (cp < 0x80) {
    d[0] = (char)cp;
    return 1;
  }
  if (cp < 0x800) {
    d[0] = (char)(0xc0 | cp >> 6);
    d[1] = (char)(0x80 | (cp & 0x3f));
    return 2;
  }
  if (cp < 0x10000) {
    d[0] = (char)(0xe0 | cp >> 12);
    d[1] = (char)(0x80 | (cp >> 6 & 0x3f));
    d[2] = (char)(0x80 | (cp & 0x3f));
    return 3;
  }
  d[0] = (char)(0xf0 | cp >> 18);
  d[1] = (char)(0x80 | (cp >> 12 & 0x3f));
  d[2] = (char)(0x80 | (cp >> 6 & 0x3f));
  d[3] = (char)(0x80 | (cp & 0x3f));
  return 4;
}

/* A string at s[i] == '"', checked as jansson checks it (no raw control characters, valid escapes, no \u0000, no
 * unpaired surrogates, valid UTF-8). Unescaped into dst (room for the raw length plus a NUL) when dst is set:
 * *dlen gets the length. */
static int string(scan *sc, char *dst, size_t *dlen) {
  size_t d = 0;
  sc->i++;
  for (;;) {
    if (sc->i >= sc->n) return fail(sc, "unterminated string");
    unsigned c = sc->s[sc->i];
    if (c == '"') break;
    if (c < 0x20) return fail(sc, "control character in a string");
    if (c == '\\') {
      if (sc->i + 1 >= sc->n) return fail(sc, "unterminated string");
      unsigned e = sc->s[sc->i + 1];
      char one = 0;
      switch (e) {
      case '"':
        one = '"';
        break;
      case '\\':
        one = '\\';
        break;
      case '/':
        one = '/';
        break;
      case 'b':
        one = '\b';
        break;
      case 'f':
        one = '\f';
        break;
      case 'n':
        one = '\n';
        break;
      case 'r':
        one = '\r';
        break;
      case 't':
        one = '\t';
        break;
      case 'u':
        break;
      default:
        return fail(sc, "invalid escape");
      }
      if (e != 'u') {
        if (dst) dst[d++] = one;
        sc->i += 2;
        continue;
      }
      unsigned cp, lo;
      if (sc->i + 6 > sc->n || hex4(sc->s + sc->i + 2, &cp) < 0) return fail(sc, "invalid \\u escape");
      sc->i += 6;
      if (cp >= 0xdc00 && cp <= 0xdfff) return fail(sc, "invalid Unicode escape (lone low surrogate)");
      if (cp >= 0xd800 && cp <= 0xdbff) {
        if (sc->i + 6 > sc->n || sc->s[sc->i] != '\\' || sc->s[sc->i + 1] != 'u' ||
            hex4(sc->s + sc->i + 2, &lo) < 0 || lo < 0xdc00 || lo > 0xdfff)
          return fail(sc, "invalid Unicode escape (lone high surrogate)");
        sc->i += 6;
        cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
      }
      if (cp == 0) return fail(sc, "\\u0000 is not allowed");
      if (dst) d += utf8_put(dst + d, cp);
      continue;
    }
    size_t k = utf8_seq(sc->s + sc->i, sc->n - sc->i);
    if (k == 0) return fail(sc, "invalid UTF-8");
    if (dst) memcpy(dst + d, sc->s + sc->i, k), d += k;
    sc->i += k;
  }
  sc->i++;
  if (dst) dst[d] = '\0';
  if (dlen) *dlen = d;
  return 0;
}

/* A number at s[i]: RFC 8259's grammar. *integer when it has neither fraction nor exponent; *v its value when it
 * is an integer that fits (else *fits 0). */
static int number(scan *sc, int *integer, int64_t *v, int *fits) {
  const unsigned char *s = sc->s;
  size_t n = sc->n;
  int neg = 0;
  uint64_t x = 0;
  *integer = 1;
  *fits = 1;
  if (sc->i < n && s[sc->i] == '-') neg = 1, sc->i++;
  if (sc->i >= n || s[sc->i] < '0' || s[sc->i] > '9') return fail(sc, "invalid number");
  if (s[sc->i] == '0') {
    sc->i++;
  } else {
    while (sc->i < n && s[sc->i] >= '0' && s[sc->i] <= '9') {
      unsigned dgt = s[sc->i++] - '0';
      if (x > (UINT64_MAX - dgt) / 10)
        *fits = 0;
      else
        x = x * 10 + dgt;
    }
  }
  if (sc->i < n && s[sc->i] == '.') {
    *integer = 0;
    sc->i++;
    if (sc->i >= n || s[sc->i] < '0' || s[sc->i] > '9') return fail(sc, "invalid number");
    while (sc->i < n && s[sc->i] >= '0' && s[sc->i] <= '9') sc->i++;
  }
  if (sc->i < n && (s[sc->i] == 'e' || s[sc->i] == 'E')) {
    *integer = 0;
    sc->i++;
    if (sc->i < n && (s[sc->i] == '+' || s[sc->i] == '-')) sc->i++;
    if (sc->i >= n || s[sc->i] < '0' || s[sc->i] > '9') return fail(sc, "invalid number");
    while (sc->i < n && s[sc->i] >= '0' && s[sc->i] <= '9') sc->i++;
  }
  if (*fits && x > (uint64_t)INT64_MAX + (uint64_t)neg) *fits = 0;
  if (*fits) *v = neg ? (int64_t)(0 - x) : (int64_t)x;
  return 0;
}

static int literal(scan *sc, const char *word) {
  size_t k = strlen(word);
  if (sc->n - sc->i < k || memcmp(sc->s + sc->i, word, k) != 0) return fail(sc, "invalid token");
  sc->i += k;
  return 0;
}

/* Any JSON value, fully checked, its content thrown away. */
static int value(scan *sc, int depth) {
  if (sc->i >= sc->n) return fail(sc, "unexpected end of the line");
  if (depth > APNS__JSON_MAX_DEPTH) return fail(sc, "too deeply nested");
  unsigned c = sc->s[sc->i];
  int integer, fits;
  int64_t v;
  switch (c) {
  case '"':
    return string(sc, NULL, NULL);
  case '{':
  case '[': {
    unsigned close = c == '{' ? '}' : ']';
    sc->i++;
    ws(sc);
    if (sc->i < sc->n && sc->s[sc->i] == close) {
      sc->i++;
      return 0;
    }
    for (;;) {
      ws(sc);
      if (c == '{') {
        if (sc->i >= sc->n || sc->s[sc->i] != '"') return fail(sc, "string or '}' expected");
        if (string(sc, NULL, NULL) < 0) return -1;
        ws(sc);
        if (sc->i >= sc->n || sc->s[sc->i] != ':') return fail(sc, "':' expected");
        sc->i++;
        ws(sc);
      }
      if (value(sc, depth + 1) < 0) return -1;
      ws(sc);
      if (sc->i < sc->n && sc->s[sc->i] == ',') {
        sc->i++;
        continue;
      }
      if (sc->i < sc->n && sc->s[sc->i] == close) {
        sc->i++;
        return 0;
      }
      return fail(sc, c == '{' ? "',' or '}' expected" : "',' or ']' expected");
    }
  }
  case 't':
    return literal(sc, "true");
  case 'f':
    return literal(sc, "false");
  case 'n':
    return literal(sc, "null");
  default:
    return number(sc, &integer, &v, &fits);
  }
}

/* The payload: an object whose shape (strings closed, brackets matched) is checked here and whose grammar the
 * library checks at the send. *spaced: whitespace outside its strings was seen. */
static int payload_shape(scan *sc, int *spaced) {
  unsigned char stack[APNS__JSON_MAX_DEPTH / 8 + 1]; /* bit set: '{' */
  size_t depth = 0;
  *spaced = 0;
  while (sc->i < sc->n) {
    unsigned c = sc->s[sc->i];
    if (c == '"') {
      sc->i++;
      while (sc->i < sc->n && sc->s[sc->i] != '"') sc->i += sc->s[sc->i] == '\\' ? 2 : 1;
      if (sc->i >= sc->n) return fail(sc, "unterminated string");
      sc->i++;
      continue;
    }
    if (c == '{' || c == '[') {
      if (depth >= APNS__JSON_MAX_DEPTH) return fail(sc, "too deeply nested");
      if (c == '{')
        stack[depth / 8] |= (unsigned char)(1u << (depth % 8));
      else
        stack[depth / 8] &= (unsigned char)~(1u << (depth % 8));
      depth++;
    } else if (c == '}' || c == ']') {
      if (depth == 0) return fail(sc, "unbalanced brackets");
      depth--;
      int brace = (stack[depth / 8] >> (depth % 8)) & 1;
      if (brace != (c == '}')) return fail(sc, "unbalanced brackets");
      if (depth == 0) {
        sc->i++;
        return 0;
      }
    } else if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
      *spaced = 1;
    }
    sc->i++;
  }
  return fail(sc, "unexpected end of the line");
}

static char *scratch_take(scan *sc, size_t n) {
  if (sc->cap - sc->used < n) return NULL;
  char *p = sc->scratch + sc->used;
  sc->used += n;
  return p;
}

static int word_byte(unsigned c) {
  return (c >= '0' && c <= '9') || ((c | 0x20) >= 'a' && (c | 0x20) <= 'z') || c == '.' || c == '+' || c == '-';
}

/* The payload's bytes without the whitespace outside its strings (already known to have closed strings). Where
 * whitespace parts two words ("1 2", "tr ue") one space stays: dropping it would turn a payload that is not JSON
 * into one that is ("12", "true"), and the send's check must see what was written. */
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
    } else if (j > 0 && word_byte((unsigned char)d[j - 1]) && i + 1 < n) {
      size_t k = i + 1;
      while (k < n && (s[k] == ' ' || s[k] == '\t' || s[k] == '\n' || s[k] == '\r')) k++;
      if (k < n && word_byte(s[k])) d[j++] = ' ';
      i = k - 1;
    }
  }
  return j;
}

enum { M_TOKEN, M_PAYLOAD, M_TOPIC, M_PUSH_TYPE, M_PRIORITY, M_EXPIRATION, M_COLLAPSE_ID, M_APNS_ID, M_COUNT };
static const char *const member_names[M_COUNT] = {"token",    "payload",    "topic",       "push_type",
                                                  "priority", "expiration", "collapse_id", "apns_id"};

static int member_of(const char *key, size_t len) {
  for (int m = 0; m < M_COUNT; m++)
    if (strlen(member_names[m]) == len && memcmp(member_names[m], key, len) == 0) return m;
  return -1;
}

static void say(char *why, size_t whylen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void say(char *why, size_t whylen, const char *fmt, ...) {
  va_list ap;
  if (whylen == 0) return;
  va_start(ap, fmt);
  vsnprintf(why, whylen, fmt, ap);
  va_end(ap);
}

int bulk_line_parse(const char *text, size_t len, bulk_line *out, char *scratch, size_t scratch_cap, char *why,
                    size_t whylen) {
  scan sc = {(const unsigned char *)text, 0, len, NULL, 0, scratch, 0, scratch_cap};
  int sem = 0; /* the first error that is not a syntax error; its sentence is in why */
  unsigned seen = 0;
  char esc[160];
  memset(out, 0, sizeof *out);
  if (whylen) why[0] = '\0';
  ws(&sc);
  if (sc.i < sc.n && sc.s[sc.i] != '{') {
    /* Not an object: JSON or not, it is no line. */
    if (value(&sc, 1) == 0) {
      ws(&sc);
      if (sc.i == sc.n) {
        say(why, whylen, "not a JSON object");
        return APNS_EINVAL;
      }
      fail(&sc, "end of the line expected");
    }
    goto syntax;
  }
  if (sc.i >= sc.n) {
    fail(&sc, "unexpected end of the line");
    goto syntax;
  }
  sc.i++;
  ws(&sc);
  if (sc.i < sc.n && sc.s[sc.i] == '}') {
    sc.i++;
  } else {
    for (;;) {
      char key[48];
      size_t klen;
      ws(&sc);
      if (sc.i >= sc.n || sc.s[sc.i] != '"') {
        fail(&sc, "string or '}' expected");
        goto syntax;
      }
      size_t kstart = sc.i;
      if (string(&sc, NULL, NULL) < 0) goto syntax;
      int m = -1;
      size_t kraw = sc.i - kstart - 2;
      if (kraw < sizeof key) {
        size_t end = sc.i;
        sc.i = kstart;
        string(&sc, key, &klen);
        sc.i = end;
        m = member_of(key, klen);
      } else { /* longer than any member's name: unknown; its first bytes, as written, for the message */
        klen = 40;
        memcpy(key, text + kstart + 1, klen);
      }
      ws(&sc);
      if (sc.i >= sc.n || sc.s[sc.i] != ':') {
        fail(&sc, "':' expected");
        goto syntax;
      }
      sc.i++;
      ws(&sc);
      if (sc.i >= sc.n) {
        fail(&sc, "unexpected end of the line");
        goto syntax;
      }
      if (m >= 0 && (seen >> m & 1)) {
        fail(&sc, "duplicate object key");
        goto syntax;
      }
      if (m >= 0) seen |= 1u << m;
      unsigned c = sc.s[sc.i];
      switch (m) {
      case M_TOKEN:
      case M_TOPIC:
      case M_PUSH_TYPE:
      case M_COLLAPSE_ID:
      case M_APNS_ID: {
        if (c != '"') {
          if (value(&sc, 1) < 0) goto syntax;
          if (!sem) say(why, whylen, "\"%s\" must be a string", member_names[m]), sem = APNS_EINVAL;
          break;
        }
        size_t start = sc.i, slen;
        char *d;
        if (string(&sc, NULL, NULL) < 0) goto syntax;
        if ((d = scratch_take(&sc, sc.i - start)) == NULL) {
          fail(&sc, "line too long for the scratch buffer");
          goto syntax;
        }
        size_t end = sc.i;
        sc.i = start;
        string(&sc, d, &slen);
        sc.i = end;
        sc.used -= (sc.i - start) - (slen + 1); /* give back what unescaping saved */
        if (m == M_TOKEN) out->token = d;
        if (m == M_TOPIC) out->topic = d;
        if (m == M_COLLAPSE_ID) out->collapse_id = d;
        if (m == M_APNS_ID) out->apns_id = d;
        if (m == M_PUSH_TYPE) {
          out->has_push_type = 1;
          if (apns_push_type_from_string(d, &out->push_type) < 0 && !sem) {
            bulk_escape_text(esc, 41, d, slen);
            say(why, whylen, "unknown push_type \"%s\"", esc);
            sem = APNS_EINVAL;
          }
        }
        break;
      }
      case M_PAYLOAD: {
        if (c != '{') {
          if (value(&sc, 1) < 0) goto syntax;
          if (!sem) say(why, whylen, "\"payload\" must be a JSON object"), sem = APNS_EINVAL;
          break;
        }
        int spaced;
        size_t start = sc.i;
        if (payload_shape(&sc, &spaced) < 0) goto syntax;
        out->payload = text + start;
        out->payload_len = sc.i - start;
        if (spaced) {
          char *d = scratch_take(&sc, out->payload_len);
          if (d == NULL) {
            fail(&sc, "line too long for the scratch buffer");
            goto syntax;
          }
          out->payload_len = minify(sc.s + start, out->payload_len, d);
          out->payload = d;
        }
        break;
      }
      case M_PRIORITY:
      case M_EXPIRATION: {
        int integer = 0, fits = 0;
        int64_t v = 0;
        int isnum = c == '-' || (c >= '0' && c <= '9');
        if (isnum ? number(&sc, &integer, &v, &fits) < 0 : value(&sc, 1) < 0) goto syntax;
        if (m == M_PRIORITY) {
          if (!(isnum && integer && fits && (v == 1 || v == 5 || v == 10))) {
            if (!sem) say(why, whylen, "\"priority\" must be 10, 5 or 1"), sem = APNS_EBADPRIORITY;
          } else {
            out->priority = (int)v;
          }
        } else {
          if (!(isnum && integer && fits && v >= 0)) {
            if (!sem)
              say(why, whylen, "\"expiration\" must be UNIX seconds (a whole number, 0 or more)"), sem = APNS_EINVAL;
          } else {
            out->has_expiration = 1;
            out->expiration = v;
          }
        }
        break;
      }
      default:
        if (value(&sc, 1) < 0) goto syntax;
        if (!sem) {
          bulk_escape_text(esc, 41, key, klen);
          say(why, whylen,
              "unknown field \"%s\" (known: token, payload, topic, push_type, priority, expiration, collapse_id, "
              "apns_id)",
              esc);
          sem = APNS_EINVAL;
        }
      }
      ws(&sc);
      if (sc.i < sc.n && sc.s[sc.i] == ',') {
        sc.i++;
        continue;
      }
      if (sc.i < sc.n && sc.s[sc.i] == '}') {
        sc.i++;
        break;
      }
      fail(&sc, "',' or '}' expected");
      goto syntax;
    }
  }
  ws(&sc);
  if (sc.i != sc.n) {
    fail(&sc, "end of the line expected");
    goto syntax;
  }
  if (sem) return sem;
  if (out->token == NULL) {
    say(why, whylen, "no \"token\"");
    return APNS_EBADTOKEN;
  }
  int rv = apns_validate_device_token(out->token);
  if (rv < 0) {
    say(why, whylen, "bad token: %s", apns_strerror(rv));
    return rv;
  }
  return 0;

syntax:
  say(why, whylen, "not JSON: %s at column %zu", sc.syntax ? sc.syntax : "syntax error", sc.syntax_at + 1);
  memset(out, 0, sizeof *out);
  return APNS_EBADJSON;
}

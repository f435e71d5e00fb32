/* Validation of everything a request is made of: device tokens, topics, ids, priorities, push types, headers,
 * UTF-8. Layer 1: no I/O, no allocation.
 *
 * Every check bounds its scan (strnlen with the limit + 1) so that a hostile 10 MB argument costs no more than a
 * valid one, and refuses NULL with the same code as a bad value. */
#include "validate.h"

#include <apns/common.h>
#include <apns/payload.h>
#include <string.h>

/* ---- push types ---- */

static const struct {
  const char *name;
  const char *suffix;
} push_types[APNS__PUSH_TYPE_COUNT] = {
    [APNS_PUSH_TYPE_DEFAULT] = {NULL, ""},
    [APNS_PUSH_TYPE_ALERT] = {"alert", ""},
    [APNS_PUSH_TYPE_BACKGROUND] = {"background", ""},
    [APNS_PUSH_TYPE_LOCATION] = {"location", ".location-query"},
    [APNS_PUSH_TYPE_VOIP] = {"voip", ".voip"},
    [APNS_PUSH_TYPE_COMPLICATION] = {"complication", ".complication"},
    [APNS_PUSH_TYPE_FILEPROVIDER] = {"fileprovider", ".pushkit.fileprovider"},
    [APNS_PUSH_TYPE_MDM] = {"mdm", ""},
    [APNS_PUSH_TYPE_LIVEACTIVITY] = {"liveactivity", ".push-type.liveactivity"},
    [APNS_PUSH_TYPE_PUSHTOTALK] = {"pushtotalk", ".voip-ptt"},
    [APNS_PUSH_TYPE_WIDGETS] = {"widgets", ".push-type.widgets"},
    [APNS_PUSH_TYPE_CONTROLS] = {"controls", ".push-type.controls"},
};

static int push_type_in_range(apns_push_type type) {
  /* The enum's underlying type may be unsigned: compare as int so a negative value cast in is caught. */
  return (int)type >= 0 && (int)type < APNS__PUSH_TYPE_COUNT;
}

const char *apns_push_type_string(apns_push_type type) {
  return push_type_in_range(type) ? push_types[type].name : NULL;
}

int apns_push_type_from_string(const char *s, apns_push_type *out) {
  if (out == NULL) return APNS_EINVAL;
  if (s == NULL) return APNS_EBADPUSHTYPE;
  for (int t = APNS_PUSH_TYPE_ALERT; t < APNS__PUSH_TYPE_COUNT; t++) {
    if (strcmp(s, push_types[t].name) == 0) {
      *out = (apns_push_type)t;
      return 0;
    }
  }
  return APNS_EBADPUSHTYPE;
}

const char *apns_push_type_topic_suffix(apns_push_type type) {
  return push_type_in_range(type) ? push_types[type].suffix : NULL;
}

int apns_push_type_default_priority(apns_push_type type) {
  if (!push_type_in_range(type)) return 0;
  return type == APNS_PUSH_TYPE_BACKGROUND ? 5 : 10;
}

size_t apns_payload_limit(apns_push_type type) {
  return type == APNS_PUSH_TYPE_VOIP ? APNS_PAYLOAD_MAX_VOIP : APNS_PAYLOAD_MAX;
}

/* ---- request fields ---- */

static int hex_digit(unsigned char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

int apns_validate_device_token(const char *token) {
  if (token == NULL) return APNS_EBADTOKEN;
  size_t len = strnlen(token, APNS_DEVICE_TOKEN_MAX + 1);
  if (len == 0 || len > APNS_DEVICE_TOKEN_MAX || len % 2 != 0) return APNS_EBADTOKEN;
  for (size_t i = 0; i < len; i++)
    if (!hex_digit((unsigned char)token[i])) return APNS_EBADTOKEN;
  return 0;
}

int apns_validate_topic(const char *topic) {
  if (topic == NULL) return APNS_EBADTOPIC;
  size_t len = strnlen(topic, APNS_TOPIC_MAX + 1);
  if (len == 0 || len > APNS_TOPIC_MAX) return APNS_EBADTOPIC;
  for (size_t i = 0; i < len; i++) {
    unsigned char c = (unsigned char)topic[i];
    if (c < 0x21 || c > 0x7e) return APNS_EBADTOPIC;
  }
  return 0;
}

int apns_validate_apns_id(const char *id, char out[37]) {
  if (id == NULL || strnlen(id, 37) != 36) return APNS_EBADAPNSID;
  for (size_t i = 0; i < 36; i++) {
    int dash = i == 8 || i == 13 || i == 18 || i == 23;
    if (dash ? id[i] != '-' : !hex_digit((unsigned char)id[i])) return APNS_EBADAPNSID;
  }
  if (out != NULL) {
    /* Element by element so that out == id works. */
    for (size_t i = 0; i < 36; i++) out[i] = (id[i] >= 'A' && id[i] <= 'F') ? (char)(id[i] - 'A' + 'a') : id[i];
    out[36] = '\0';
  }
  return 0;
}

int apns_validate_collapse_id(const char *id) {
  if (id == NULL) return APNS_EBADCOLLAPSEID;
  size_t len = strnlen(id, APNS_COLLAPSE_ID_MAX + 1);
  if (len == 0 || len > APNS_COLLAPSE_ID_MAX || !apns__header_value_valid(id, len)) return APNS_EBADCOLLAPSEID;
  return 0;
}

int apns_validate_priority(int priority, apns_push_type type) {
  if (!push_type_in_range(type)) return APNS_EBADPUSHTYPE;
  if (priority != 1 && priority != 5 && priority != 10) return APNS_EBADPRIORITY;
  /* Apple: "background" must use 5. 10 is the mistake people make (it is everyone's default); it is refused
   * rather than quietly lowered so that what is sent is what the caller asked for. 1 is lower still: allowed. */
  if (type == APNS_PUSH_TYPE_BACKGROUND && priority == 10) return APNS_EBADPRIORITY;
  return 0;
}

int apns_validate_expiration(int64_t expiration) {
  return expiration >= 0 ? 0 : APNS_EINVAL;
}

/* ---- HTTP/2 headers ---- */

/* RFC 9110 tchar without upper case (HTTP/2 field names must be lowercase). A table: this runs for every header
 * of every request. */
static const unsigned char name_chars[256] = {
    ['!'] = 1, ['#'] = 1, ['$'] = 1, ['%'] = 1, ['&'] = 1, ['\''] = 1, ['*'] = 1, ['+'] = 1, ['-'] = 1,
    ['.'] = 1, ['^'] = 1, ['_'] = 1, ['`'] = 1, ['|'] = 1, ['~'] = 1,  ['0'] = 1, ['1'] = 1, ['2'] = 1,
    ['3'] = 1, ['4'] = 1, ['5'] = 1, ['6'] = 1, ['7'] = 1, ['8'] = 1,  ['9'] = 1, ['a'] = 1, ['b'] = 1,
    ['c'] = 1, ['d'] = 1, ['e'] = 1, ['f'] = 1, ['g'] = 1, ['h'] = 1,  ['i'] = 1, ['j'] = 1, ['k'] = 1,
    ['l'] = 1, ['m'] = 1, ['n'] = 1, ['o'] = 1, ['p'] = 1, ['q'] = 1,  ['r'] = 1, ['s'] = 1, ['t'] = 1,
    ['u'] = 1, ['v'] = 1, ['w'] = 1, ['x'] = 1, ['y'] = 1, ['z'] = 1,
};

static int name_char(unsigned char c) {
  return name_chars[c];
}

int apns__header_name_valid(const char *name, size_t len) {
  /* Connection-specific fields are malformed in HTTP/2 (RFC 9113 8.2.2); the peer would reset the stream. */
  static const char *const forbidden[] = {"connection",        "keep-alive", "proxy-connection",
                                          "transfer-encoding", "upgrade",    "te"};
  if (name == NULL || len == 0) return 0;
  for (size_t i = 0; i < len; i++)
    if (!name_char((unsigned char)name[i])) return 0;
  /* The forbidden names are 2 to 17 bytes long and none starts with "apns-". */
  if (len > 17 || (len > 5 && memcmp(name, "apns-", 5) == 0)) return 1;
  for (size_t i = 0; i < sizeof forbidden / sizeof forbidden[0]; i++)
    if (strlen(forbidden[i]) == len && memcmp(forbidden[i], name, len) == 0) return 0;
  return 1;
}

int apns__header_value_valid(const char *value, size_t len) {
  if (value == NULL) return len == 0;
  if (len == 0) return 1;
  /* RFC 9113 8.2.1: no NUL, LF or CR anywhere; no space or tab at either end. */
  if (memchr(value, '\0', len) || memchr(value, '\n', len) || memchr(value, '\r', len)) return 0;
  if (value[0] == ' ' || value[0] == '\t' || value[len - 1] == ' ' || value[len - 1] == '\t') return 0;
  return 1;
}

int apns_validate_header(const char *name, const char *value) {
  if (name == NULL || value == NULL) return APNS_EBADHEADER;
  if (!apns__header_name_valid(name, strlen(name)) || !apns__header_value_valid(value, strlen(value)))
    return APNS_EBADHEADER;
  return 0;
}

/* ---- UTF-8 ---- */

int apns__utf8_valid(const char *str, size_t len) {
  const unsigned char *s = (const unsigned char *)str, *end = s + len;
  while (s < end) {
    unsigned char c = *s;
    if (c < 0x80) {
      s++;
      continue;
    }
    size_t n;
    unsigned char lo = 0x80, hi = 0xbf; /* allowed range of the second byte */
    if (c >= 0xc2 && c <= 0xdf) {
      n = 2;
    } else if (c >= 0xe0 && c <= 0xef) {
      n = 3;
      if (c == 0xe0)
        lo = 0xa0; /* overlong */
      else if (c == 0xed)
        hi = 0x9f; /* surrogates U+D800..U+DFFF */
    } else if (c >= 0xf0 && c <= 0xf4) {
      n = 4;
      if (c == 0xf0)
        lo = 0x90; /* overlong */
      else if (c == 0xf4)
        hi = 0x8f; /* above U+10FFFF */
    } else {
      return 0; /* continuation byte first, C0/C1 overlongs, F5..FF */
    }
    if ((size_t)(end - s) < n) return 0;
    if (s[1] < lo || s[1] > hi) return 0;
    for (size_t i = 2; i < n; i++)
      if (s[i] < 0x80 || s[i] > 0xbf) return 0;
    s += n;
  }
  return 1;
}

/* ---- JSON text ---- */

size_t apns__json_number_text(const char *printed, char *out) {
  size_t len = 0;
  int real = 0;
  for (const char *p = printed; *p != '\0'; p++) {
    if ((*p >= '0' && *p <= '9') || *p == '-' || *p == '+') {
      out[len++] = *p;
    } else if (*p == 'e' || *p == 'E') {
      out[len++] = 'e';
      real = 1;
    } else if (len == 0 || out[len - 1] != '.') { /* a decimal point, or its first byte */
      out[len++] = '.';
      real = 1;
    }
  }
  if (!real) {
    out[len++] = '.';
    out[len++] = '0';
  }
  out[len] = '\0';
  return len;
}

/* ---- JSON grammar, without allocating ---- */

static int json_space(unsigned char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static int hex_value(unsigned char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/* The 4 hex digits after "\u" at *p (which points at the 'u'); -1 when malformed. */
static long unicode_escape(const unsigned char **p, const unsigned char *end) {
  long value = 0;
  if (end - *p < 5) return -1;
  for (int i = 1; i <= 4; i++) {
    int h = hex_value((*p)[i]);
    if (h < 0) return -1;
    value = value * 16 + h;
  }
  *p += 5;
  return value;
}

/* A string from the opening quote at *p; on success *p is past the closing quote. */
static int json_string_valid(const unsigned char **pp, const unsigned char *end) {
  const unsigned char *p = *pp + 1;
  while (p < end) {
    unsigned char c = *p;
    if (c == '"') {
      *pp = p + 1;
      return 1;
    }
    if (c < 0x20) return 0;
    if (c != '\\') {
      p++;
      continue;
    }
    if (++p == end) return 0;
    if (*p != 'u') {
      if (strchr("\"\\/bfnrt", *p) == NULL || *p == '\0') return 0;
      p++;
      continue;
    }
    long u = unicode_escape(&p, end);
    if (u <= 0 || (u >= 0xdc00 && u <= 0xdfff)) return 0; /* malformed, \u0000, lone low surrogate */
    if (u >= 0xd800 && u <= 0xdbff) {                     /* a high surrogate needs its low half next */
      if (end - p < 2 || p[0] != '\\' || p[1] != 'u') return 0;
      p++;
      long low = unicode_escape(&p, end);
      if (low < 0xdc00 || low > 0xdfff) return 0;
    }
  }
  return 0;
}

static int json_number_valid(const unsigned char **pp, const unsigned char *end) {
  const unsigned char *p = *pp;
#define DIGIT(q) ((q) < end && *(q) >= '0' && *(q) <= '9')
  if (p < end && *p == '-') p++;
  if (!DIGIT(p)) return 0;
  if (*p == '0')
    p++;
  else
    while (DIGIT(p)) p++;
  if (p < end && *p == '.') {
    p++;
    if (!DIGIT(p)) return 0;
    while (DIGIT(p)) p++;
  }
  if (p < end && (*p == 'e' || *p == 'E')) {
    p++;
    if (p < end && (*p == '+' || *p == '-')) p++;
    if (!DIGIT(p)) return 0;
    while (DIGIT(p)) p++;
  }
#undef DIGIT
  *pp = p;
  return 1;
}

int apns__json_valid(const char *str, size_t len, int any_top) {
  enum { VALUE, VALUE_OR_CLOSE, KEY, KEY_OR_CLOSE, AFTER_VALUE } expect = VALUE;
  unsigned char stack[APNS__JSON_MAX_DEPTH]; /* '{' or '[' for each open container */
  size_t depth = 0;
  if (str == NULL) return 0;
  const unsigned char *p = (const unsigned char *)str, *end = p + len;
  while (p < end && json_space(*p)) p++;
  if (!any_top && (p == end || (*p != '{' && *p != '['))) return 0;
  for (;;) {
    while (p < end && json_space(*p)) p++;
    if (expect == AFTER_VALUE) {
      if (depth == 0) return p == end;
      if (p == end) return 0;
      unsigned char top = stack[depth - 1];
      if (*p == ',') {
        expect = top == '{' ? KEY : VALUE;
        p++;
      } else if ((*p == '}' && top == '{') || (*p == ']' && top == '[')) {
        depth--;
        p++;
      } else {
        return 0;
      }
      continue;
    }
    if (p == end) return 0;
    if (expect == KEY || expect == KEY_OR_CLOSE) {
      if (*p == '}' && expect == KEY_OR_CLOSE) {
        depth--;
        p++;
        expect = AFTER_VALUE;
        continue;
      }
      if (*p != '"' || !json_string_valid(&p, end)) return 0;
      while (p < end && json_space(*p)) p++;
      if (p == end || *p != ':') return 0;
      p++;
      expect = VALUE;
      continue;
    }
    /* VALUE or VALUE_OR_CLOSE */
    unsigned char c = *p;
    if (c == ']' && expect == VALUE_OR_CLOSE) {
      depth--;
      p++;
    } else if (c == '{' || c == '[') {
      if (depth == APNS__JSON_MAX_DEPTH) return 0;
      stack[depth++] = c;
      p++;
      expect = c == '{' ? KEY_OR_CLOSE : VALUE_OR_CLOSE;
      continue;
    } else if (c == '"') {
      if (!json_string_valid(&p, end)) return 0;
    } else if (c == '-' || (c >= '0' && c <= '9')) {
      if (!json_number_valid(&p, end)) return 0;
    } else {
      static const char *const literals[] = {"true", "false", "null"};
      size_t i, n = 0;
      for (i = 0; i < 3; i++) {
        n = strlen(literals[i]);
        if ((size_t)(end - p) >= n && memcmp(p, literals[i], n) == 0) break;
      }
      if (i == 3) return 0;
      p += n;
    }
    expect = AFTER_VALUE;
  }
}

int apns_validate_utf8(const char *s, size_t len) {
  if (s == NULL) return len == 0 ? 0 : APNS_EINVAL;
  return apns__utf8_valid(s, len) ? 0 : APNS_EBADUTF8;
}

/* ---- a JSON value scanned without a tree (apns_json_scan) ----
 *
 * One pass, no allocation: the raw-payload check of every send and the line scan of a bulk sender. It answers as
 * jansson's parser with JSON_REJECT_DUPLICATES does, so that the tree is built nowhere a send does not need one;
 * what it cannot decide alone (see apns_json_scan_result.unsure) it says so, and apns_notification_new_raw asks
 * jansson then. */

#define SCAN_KEYS_MAX 256 /* keys of the objects open at once, kept to refuse duplicates */

typedef struct scan {
  const unsigned char *s;
  size_t i, n;
  const char *syntax; /* the first syntax error */
  size_t syntax_at;
  struct {
    uint32_t off, len;
  } keys[SCAN_KEYS_MAX];
  size_t nkeys;
  int unsure, spaced;
  apns_json_scan_result *out;
} scan;

enum { R_ANY, R_PAYLOAD, R_APS };

#define ONES 0x0101010101010101ull
#define HIGHS 0x8080808080808080ull
/* Non-zero when a byte of x equals b (the classic zero-byte test on x ^ b...b). */
#define HAS_BYTE(x, b) ((((x) ^ (ONES * (b))) - ONES) & ~((x) ^ (ONES * (b))) & HIGHS)

/* The end of the run of bytes from i that need nothing in a JSON string (printable ASCII but '"' and '\\'), 8 at a
 * time while none of them needs a look. */
static size_t plain_run(const unsigned char *s, size_t i, size_t n) {
  while (i + 8 <= n) {
    uint64_t x;
    memcpy(&x, s + i, 8);
    uint64_t stop = (x & HIGHS) | ((x - ONES * 0x20) & ~x & HIGHS) | HAS_BYTE(x, 0x22) | HAS_BYTE(x, 0x5c);
    if (stop) break;
    i += 8;
  }
  while (i < n && s[i] >= 0x20 && s[i] < 0x80 && s[i] != '"' && s[i] != '\\') i++;
  return i;
}

/* The length of the well-formed UTF-8 sequence at s (2 to 4; 1 for ASCII), or 0 when none starts there. */
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

static int scan_fail(scan *sc, const char *what) {
  if (sc->syntax == NULL) {
    sc->syntax = what;
    sc->syntax_at = sc->i;
  }
  return -1;
}

static void scan_ws(scan *sc) {
  size_t i = sc->i;
  while (i < sc->n && json_space(sc->s[i])) i++;
  if (i != sc->i) sc->spaced = 1, sc->i = i;
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

/* A string at s[i] == '"', unescaped into dst when dst is set (up to dcap bytes, a NUL after them when it fits);
 * *dlen gets the whole unescaped length. *escaped: it has a backslash. */
static int scan_string(scan *sc, char *dst, size_t dcap, size_t *dlen, int *escaped) {
  size_t d = 0;
  const unsigned char *s = sc->s;
  size_t i = sc->i + 1, n = sc->n;
  char u8[4];
  *escaped = 0;
  for (;;) {
    size_t run = plain_run(s, i, n);
    if (run > i) {
      size_t k = run - i;
      if (dst && d < dcap) memcpy(dst + d, s + i, k <= dcap - d ? k : dcap - d);
      d += k;
      i = run;
    }
    if (i >= n) {
      sc->i = i;
      return scan_fail(sc, "unterminated string");
    }
    unsigned c = s[i];
    if (c == '"') break;
    if (c < 0x20) {
      sc->i = i;
      return scan_fail(sc, "control character in a string");
    }
    const char *add;
    size_t addlen;
    if (c == '\\') {
      *escaped = 1;
      if (i + 1 >= n) {
        sc->i = i;
        return scan_fail(sc, "unterminated string");
      }
      unsigned e = s[i + 1];
      static const char simple_in[] = "\"\\/bfnrt", simple_out[] = "\"\\/\b\f\n\r\t";
      const char *hit = e ? strchr(simple_in, (int)e) : NULL;
      if (hit) {
        add = simple_out + (hit - simple_in);
        addlen = 1;
        i += 2;
      } else if (e == 'u') {
        unsigned cp, lo;
        sc->i = i;
        if (i + 6 > n || hex4(s + i + 2, &cp) < 0) return scan_fail(sc, "invalid \\u escape");
        i += 6;
        if (cp >= 0xdc00 && cp <= 0xdfff) return scan_fail(sc, "invalid Unicode escape (lone low surrogate)");
        if (cp >= 0xd800 && cp <= 0xdbff) {
          if (i + 6 > n || s[i] != '\\' || s[i + 1] != 'u' || hex4(s + i + 2, &lo) < 0 || lo < 0xdc00 || lo > 0xdfff)
            return scan_fail(sc, "invalid Unicode escape (lone high surrogate)");
          i += 6;
          cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
        }
        if (cp == 0) return scan_fail(sc, "\\u0000 is not allowed");
        addlen = utf8_put(u8, cp);
        add = u8;
      } else {
        sc->i = i;
        return scan_fail(sc, "invalid escape");
      }
    } else {
      size_t k = utf8_seq(s + i, n - i);
      if (k == 0) {
        sc->i = i;
        return scan_fail(sc, "invalid UTF-8");
      }
      add = (const char *)s + i;
      addlen = k;
      i += k;
    }
    if (dst && d + addlen <= dcap) memcpy(dst + d, add, addlen);
    d += addlen;
  }
  sc->i = i + 1;
  if (dst && d < dcap) dst[d] = '\0';
  *dlen = d;
  return 0;
}

/* A number: RFC 8259's grammar. *integer without fraction or exponent; *v its value when it fits (else *fits 0).
 * A real whose exponent or length could overflow a double is unsure (jansson refuses those). */
static int scan_number(scan *sc, int *integer, int64_t *v, int *fits) {
  const unsigned char *s = sc->s;
  size_t n = sc->n, start = sc->i;
  int neg = 0;
  uint64_t x = 0;
  *integer = 1;
  *fits = 1;
  if (sc->i < n && s[sc->i] == '-') neg = 1, sc->i++;
  if (sc->i >= n || s[sc->i] < '0' || s[sc->i] > '9') return scan_fail(sc, "invalid number");
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
    if (sc->i >= n || s[sc->i] < '0' || s[sc->i] > '9') return scan_fail(sc, "invalid number");
    while (sc->i < n && s[sc->i] >= '0' && s[sc->i] <= '9') sc->i++;
  }
  if (sc->i < n && (s[sc->i] == 'e' || s[sc->i] == 'E')) {
    size_t ds;
    *integer = 0;
    sc->i++;
    if (sc->i < n && (s[sc->i] == '+' || s[sc->i] == '-')) sc->i++;
    if (sc->i >= n || s[sc->i] < '0' || s[sc->i] > '9') return scan_fail(sc, "invalid number");
    ds = sc->i;
    while (sc->i < n && s[sc->i] >= '0' && s[sc->i] <= '9') sc->i++;
    if (sc->i - ds > 2) sc->unsure = 1;
  }
  if (!*integer && sc->i - start > 300) sc->unsure = 1;
  if (*fits && x > (uint64_t)INT64_MAX + (uint64_t)neg) *fits = 0;
  *v = *fits ? (neg ? (int64_t)(0 - x) : (int64_t)x) : 0;
  return 0;
}

static int scan_literal(scan *sc, const char *word, size_t k) {
  if (sc->n - sc->i < k || memcmp(sc->s + sc->i, word, k) != 0) return scan_fail(sc, "invalid token");
  sc->i += k;
  return 0;
}

static int key_is(const unsigned char *k, size_t len, const char *name, size_t nlen) {
  return nlen == len && memcmp(k, name, len) == 0;
}
#define KEY_IS(k, len, lit) key_is(k, len, lit, sizeof lit - 1)

static int scan_value(scan *sc, int depth, int role);

static int scan_array(scan *sc, int depth) {
  sc->i++;
  scan_ws(sc);
  if (sc->i < sc->n && sc->s[sc->i] == ']') {
    sc->i++;
    return 0;
  }
  for (;;) {
    scan_ws(sc);
    if (scan_value(sc, depth + 1, R_ANY) < 0) return -1;
    scan_ws(sc);
    if (sc->i < sc->n && sc->s[sc->i] == ',') {
      sc->i++;
      continue;
    }
    if (sc->i < sc->n && sc->s[sc->i] == ']') {
      sc->i++;
      return 0;
    }
    return scan_fail(sc, "',' or ']' expected");
  }
}

/* Remembers the key of klen bytes at ks (the object's keys start at base), or fails on a duplicate. An escaped key,
 * or one past what the table holds, makes the result unsure instead. */
static int scan_key_unique(scan *sc, size_t base, size_t ks, size_t klen, int escaped) {
  if (escaped) {
    sc->unsure = 1; /* "a" and "\u0061" are one key: a parser with a tree tells */
    return 0;
  }
  for (size_t j = base; j < sc->nkeys; j++)
    if (sc->keys[j].len == klen && memcmp(sc->s + sc->keys[j].off, sc->s + ks, klen) == 0) {
      sc->i = ks - 1;
      return scan_fail(sc, "duplicate object key");
    }
  if (sc->nkeys < SCAN_KEYS_MAX) {
    sc->keys[sc->nkeys].off = (uint32_t)ks;
    sc->keys[sc->nkeys].len = (uint32_t)klen;
    sc->nkeys++;
  } else {
    sc->unsure = 1;
  }
  return 0;
}

/* An object. role R_PAYLOAD counts its members and notes its "aps"; role R_APS notes whether it asks for a
 * background push (content-available 1 with nothing shown). */
static int scan_object(scan *sc, int depth, int role) {
  apns_json_scan_result *out = sc->out;
  size_t base = sc->nkeys, len;
  int ca_one = 0, shown = 0, escaped;
  sc->i++;
  scan_ws(sc);
  if (sc->i < sc->n && sc->s[sc->i] == '}') {
    sc->i++;
    return 0;
  }
  for (;;) {
    scan_ws(sc);
    if (sc->i >= sc->n || sc->s[sc->i] != '"') return scan_fail(sc, "string or '}' expected");
    size_t ks = sc->i + 1;
    if (scan_string(sc, NULL, 0, &len, &escaped) < 0) return -1;
    const unsigned char *k = sc->s + ks;
    size_t klen = sc->i - 1 - ks;
    if (scan_key_unique(sc, base, ks, klen, escaped) < 0) return -1;
    scan_ws(sc);
    if (sc->i >= sc->n || sc->s[sc->i] != ':') return scan_fail(sc, "':' expected");
    sc->i++;
    scan_ws(sc);
    int child = R_ANY;
    size_t vs = sc->i;
    if (role == R_PAYLOAD) {
      out->members++;
      if (KEY_IS(k, klen, "aps")) {
        out->aps_seen = 1;
        out->aps_object = vs < sc->n && sc->s[vs] == '{';
        child = R_APS;
      }
    }
    if (scan_value(sc, depth + 1, child) < 0) return -1;
    if (role == R_APS) {
      if (KEY_IS(k, klen, "content-available")) ca_one = sc->i - vs == 1 && sc->s[vs] == '1';
      if (KEY_IS(k, klen, "alert") || KEY_IS(k, klen, "badge") || KEY_IS(k, klen, "sound")) shown = 1;
    }
    scan_ws(sc);
    if (sc->i < sc->n && sc->s[sc->i] == ',') {
      sc->i++;
      continue;
    }
    if (sc->i < sc->n && sc->s[sc->i] == '}') {
      sc->i++;
      sc->nkeys = base;
      if (role == R_APS) out->background = ca_one && !shown;
      return 0;
    }
    return scan_fail(sc, "',' or '}' expected");
  }
}

/* Any JSON value, fully checked. role: R_PAYLOAD for a payload object, R_APS for its "aps" object. */
static int scan_value(scan *sc, int depth, int role) {
  if (sc->i >= sc->n) return scan_fail(sc, "unexpected end of the line");
  if (depth > APNS_JSON_MAX_DEPTH) return scan_fail(sc, "too deeply nested");
  int integer, fits, escaped;
  int64_t v;
  size_t len;
  switch (sc->s[sc->i]) {
  case '"':
    return scan_string(sc, NULL, 0, &len, &escaped);
  case '[':
    return scan_array(sc, depth);
  case '{':
    return scan_object(sc, depth, role);
  case 't':
    return scan_literal(sc, "true", 4);
  case 'f':
    return scan_literal(sc, "false", 5);
  case 'n':
    return scan_literal(sc, "null", 4);
  default:
    if (scan_number(sc, &integer, &v, &fits) < 0) return -1;
    if (integer && !fits) return scan_fail(sc, "integer too big");
    return 0;
  }
}

int apns_json_scan(const char *text, size_t len, size_t start, int depth, unsigned flags, char *dst, size_t dcap,
                   apns_json_scan_result *out) {
  scan sc;
  int rv;
  if (out == NULL) return APNS_EINVAL;
  memset(out, 0, sizeof *out);
  out->end = start;
  if (text == NULL || start > len) return APNS_EINVAL;
  sc.s = (const unsigned char *)text;
  sc.i = start;
  sc.n = len;
  sc.syntax = NULL;
  sc.syntax_at = start;
  sc.nkeys = 0;
  sc.unsure = sc.spaced = 0;
  sc.out = out;
  unsigned c = start < len ? sc.s[start] : 0;
  out->type = c == '-' || (c >= '0' && c <= '9') ? '0' : (int)c;
  if (c == '"') {
    rv = scan_string(&sc, dst, dcap, &out->string_len, &out->escaped);
  } else if (out->type == '0') {
    rv = depth > APNS_JSON_MAX_DEPTH ? scan_fail(&sc, "too deeply nested")
                                     : scan_number(&sc, &out->integer, &out->value, &out->fits);
    if (rv == 0 && out->integer && !out->fits && !(flags & APNS_JSON_SCAN_BIG_INTEGER))
      rv = scan_fail(&sc, "integer too big");
  } else {
    rv = scan_value(&sc, depth, (flags & APNS_JSON_SCAN_PAYLOAD) && c == '{' ? R_PAYLOAD : R_ANY);
  }
  out->unsure = sc.unsure;
  out->spaced = sc.spaced;
  if (rv < 0) {
    out->syntax = sc.syntax;
    out->end = sc.syntax_at;
    return APNS_EBADJSON;
  }
  out->end = sc.i;
  return 0;
}

/* A request built once into one allocation, ready for nghttp2. Layer 1: no I/O.
 *
 * Layout of the block: the apns__req, the owner's `extra` bytes, a table of 8 bytes per header (lengths only), the
 * body, then the strings: the path, then each header's name and value, NUL-terminated, one after the other. Names of
 * the usual APNs headers are not copied: the table says which static name it is. A request may wait in a queue of a
 * million, so this is a few hundred bytes smaller than keeping nghttp2's 40-byte nghttp2_nv per field; the nv array
 * is spread out at submit (apns__req_nv), into the copy the h2 session makes anyway to add :authority. Everything
 * it points at lives as long as the request, or is static, so it is handed to nghttp2 with NO_COPY flags. */
#include "request.h"

#include "abi.h"
#include "alloc.h"

#include <stddef.h>
#include <string.h>

#define APNS__NV_STATIC (NGHTTP2_NV_FLAG_NO_COPY_NAME | NGHTTP2_NV_FLAG_NO_COPY_VALUE)
#define APNS__NAME_KNOWN 0x80000000u  /* in req_hdr.name: the low bits are an index into known_names */
#define APNS__VALUE_KNOWN 0x40000000u /* in req_hdr.name: value_len is an index into known_values */
#define APNS__NAME_MAX 0x3fffffffu

typedef struct {
  uint32_t name; /* length of the name in the strings, or APNS__NAME_KNOWN | index (not in the strings), with
                  * APNS__VALUE_KNOWN when the value is one of known_values (not in the strings either) */
  uint32_t value_len;
} req_hdr;

typedef struct {
  const char *name;
  uint8_t len;
  uint8_t flags; /* HPACK flags beyond NO_COPY */
} static_str;

/* Methods are matched exactly (HTTP methods are case-sensitive). */
static const static_str methods[] = {{"POST", 4, 0}, {"GET", 3, 0}, {"DELETE", 6, 0}, {"PUT", 3, 0}, {"HEAD", 4, 0}};

/* The headers APNs requests carry, most frequent first. Values that change per request (apns-id, apns-request-id)
 * would only churn the HPACK table, and authorization is a secret: those are never indexed. Any other name is
 * never one of them, so the flags follow from this table alone. */
/* The values of apns-push-type, apns-priority and apns-expiration that nearly every request carries: kept as an
 * index, not copied into each queued request (a million queued notifications, 9 bytes each for "alert" and
 * "10"). Only for those three names (known_names 1 to 3). */
static const static_str known_values[] = {
    {"alert", 5, 0},
    {"background", 10, 0},
    {"10", 2, 0},
    {"5", 1, 0},
    {"1", 1, 0},
    {"0", 1, 0},
    {"voip", 4, 0},
    {"location", 8, 0},
    {"complication", 12, 0},
    {"fileprovider", 12, 0},
    {"mdm", 3, 0},
    {"liveactivity", 12, 0},
    {"pushtotalk", 10, 0},
    {"widgets", 7, 0},
    {"controls", 8, 0},
};

static int known_value(int name, const char *value, size_t len) {
  if (name < 1 || name > 3) return -1;
  for (size_t i = 0; i < sizeof known_values / sizeof known_values[0]; i++)
    if (known_values[i].len == len && memcmp(known_values[i].name, value, len) == 0) return (int)i;
  return -1;
}

static const static_str known_names[] = {
    {"apns-topic", 10, 0},
    {"apns-push-type", 14, 0},
    {"apns-priority", 13, 0},
    {"apns-expiration", 15, 0},
    {"apns-collapse-id", 16, 0},
    {"apns-id", 7, NGHTTP2_NV_FLAG_NO_INDEX},
    {"authorization", 13, NGHTTP2_NV_FLAG_NO_INDEX},
    {"apns-channel-id", 15, 0},
    {"apns-request-id", 15, NGHTTP2_NV_FLAG_NO_INDEX},
};

static size_t round_up(size_t n) {
  return (n + APNS__REQ_ALIGN - 1) & ~(size_t)(APNS__REQ_ALIGN - 1);
}

static size_t extra_offset(void) {
  return APNS__REQ_EXTRA_OFFSET;
}

static int method_lookup(const char *method) {
  if (method == NULL) return 0;
  for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++)
    if (strcmp(method, methods[i].name) == 0) return (int)i;
  return -1;
}

/* Which of known_names this is, or -1: by length, then constant-length compares the compiler inlines (this runs
 * for every header of every request). */
#define NAME_IS(lit) (memcmp(name, lit, sizeof lit - 1) == 0)
static int known_lookup(const char *name, size_t len) {
  switch (len) {
  case 7:
    return NAME_IS("apns-id") ? 5 : -1;
  case 10:
    return NAME_IS("apns-topic") ? 0 : -1;
  case 13:
    return NAME_IS("apns-priority") ? 2 : NAME_IS("authorization") ? 6 : -1;
  case 14:
    return NAME_IS("apns-push-type") ? 1 : -1;
  case 15:
    return NAME_IS("apns-expiration") ? 3 : NAME_IS("apns-channel-id") ? 7 : NAME_IS("apns-request-id") ? 8 : -1;
  case 16:
    return NAME_IS("apns-collapse-id") ? 4 : -1;
  default:
    return -1;
  }
}
#undef NAME_IS

/* A path is sent as :path: no spaces or controls (they must be percent-encoded); bytes above 0x7f pass, as they
 * always have. Bytes a path may hold are 1 here, NUL (the end) and the rest 0, so one look-up per byte finds both
 * the end and a bad byte. */
// clang-format off
static const unsigned char path_chars[256] = {
    [0x21] = 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    [0x30] = 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    [0x40] = 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    [0x50] = 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    [0x60] = 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    [0x70] = 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, /* to 0x7e */
    [0x80] = 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    [0x90] = 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    [0xa0] = 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    [0xb0] = 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    [0xc0] = 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    [0xd0] = 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    [0xe0] = 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    [0xf0] = 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
};
// clang-format on

/* Returns the path's length, or SIZE_MAX when it is not a valid path. */
static size_t path_measure(const char *path) {
  const unsigned char *p = (const unsigned char *)path;
  if (path == NULL || path[0] != '/') return SIZE_MAX;
  while (path_chars[*p]) p++;
  return *p == 0 ? (size_t)(p - (const unsigned char *)path) : SIZE_MAX;
}

static int add_size(size_t *total, size_t n) {
  if (n > SIZE_MAX - *total) return 0;
  *total += n;
  return 1;
}

static nghttp2_nv nv_static(const char *name, size_t namelen, const char *value, size_t valuelen, uint8_t flags) {
  nghttp2_nv nv;
  nv.name = (uint8_t *)(uintptr_t)name;
  nv.namelen = namelen;
  nv.value = (uint8_t *)(uintptr_t)value;
  nv.valuelen = valuelen;
  nv.flags = flags;
  return nv;
}

static const req_hdr *hdrs_of(const apns__req *req) {
  return (const req_hdr *)(const void *)((const char *)req + req->hdrs_off);
}

/* What the first headers measured to (this runs for every request): name and value lengths, known name and value.
 * Later ones are measured again when they are copied. */
typedef struct {
  size_t lens[2 * 8];
  int known[8], kval[8];
} req_measure;

/* Checks every header and adds the bytes its strings take in the block to *strings. Returns 0, APNS_EBADHEADER or
 * APNS_EINVAL (see apns__req_new). */
static int headers_measure(const apns_request *desc, req_measure *m, size_t *strings) {
  for (size_t i = 0; i < desc->num_headers; i++) {
    const apns_header *h = &desc->headers[i];
    size_t nl, vl;
    int k;
    if (h->name == NULL || h->value == NULL) return APNS_EBADHEADER;
    nl = strlen(h->name);
    vl = strlen(h->value);
    /* A pseudo-header fails the token check (':' is not a tchar), so callers cannot forge :path or :authority. */
    if (!apns__header_name_valid(h->name, nl) || !apns__header_value_valid(h->value, vl)) return APNS_EBADHEADER;
    if (nl > APNS__NAME_MAX || vl > UINT32_MAX) return APNS_EINVAL;
    k = known_lookup(h->name, nl);
    int kv = known_value(k, h->value, vl);
    if (i < 8) m->lens[2 * i] = nl, m->lens[2 * i + 1] = vl, m->known[i] = k, m->kval[i] = kv;
    if ((k < 0 && !add_size(strings, nl + 1)) || (kv < 0 && !add_size(strings, vl + 1))) return APNS_EINVAL;
  }
  return 0;
}

/* Fills the header table and copies the strings of the headers that are not known ones, from s on. */
static void headers_copy(req_hdr *hdrs, char *s, const apns_request *desc, const req_measure *m) {
  for (size_t i = 0; i < desc->num_headers; i++) {
    const apns_header *h = &desc->headers[i];
    size_t nl = i < 8 ? m->lens[2 * i] : strlen(h->name), vl = i < 8 ? m->lens[2 * i + 1] : strlen(h->value);
    int k = i < 8 ? m->known[i] : known_lookup(h->name, nl);
    int kv = i < 8 ? m->kval[i] : known_value(k, h->value, vl);
    if (k >= 0) {
      hdrs[i].name = APNS__NAME_KNOWN | (uint32_t)k;
    } else {
      memcpy(s, h->name, nl + 1);
      s += nl + 1;
      hdrs[i].name = (uint32_t)nl;
    }
    if (kv >= 0) {
      hdrs[i].name |= APNS__VALUE_KNOWN;
      hdrs[i].value_len = (uint32_t)kv;
    } else {
      memcpy(s, h->value, vl + 1);
      s += vl + 1;
      hdrs[i].value_len = (uint32_t)vl;
    }
  }
}

int apns__req_new(apns__req **out, const apns_request *caller, size_t extra) {
  apns_request copy, *desc = &copy;
  int method, rv;
  size_t path_len, total, strings = 0, hdrs_off;
  req_measure m;
  apns__req *req;
  req_hdr *hdrs;
  char *s;

  if (out == NULL) return APNS_EINVAL;
  *out = NULL;
  if (caller == NULL || APNS__ABI_READ(apns_request, method, &copy, caller, NULL, 0) < 0) return APNS_EINVAL;
  if ((path_len = path_measure(desc->path)) == SIZE_MAX) return APNS_EINVAL;
  method = method_lookup(desc->method);
  if (method < 0) return APNS_EINVAL;
  if (desc->num_headers > 0 && desc->headers == NULL) return APNS_EINVAL;
  if (desc->body_len > 0 && desc->body == NULL) return APNS_EINVAL;

  if (path_len > UINT32_MAX || !add_size(&strings, path_len + 1)) return APNS_EINVAL;
  if ((rv = headers_measure(desc, &m, &strings)) != 0) return rv;
  if (desc->num_headers > UINT32_MAX || desc->num_headers > SIZE_MAX / sizeof(req_hdr)) return APNS_EINVAL;

  hdrs_off = extra_offset();
  if (!add_size(&hdrs_off, round_up(extra)) || round_up(extra) < extra || hdrs_off > UINT32_MAX) return APNS_EINVAL;
  total = hdrs_off;
  if (!add_size(&total, desc->num_headers * sizeof(req_hdr)) || !add_size(&total, desc->body_len) ||
      !add_size(&total, strings))
    return APNS_EINVAL;

  req = apns__malloc(total);
  if (req == NULL) return APNS_ENOMEM;
  memset(req, 0, hdrs_off);
  req->body_len = desc->body_len;
  req->path_len = (uint32_t)path_len;
  req->num_headers = (uint32_t)desc->num_headers;
  req->hdrs_off = (uint32_t)hdrs_off;
  req->method = (uint8_t)method;

  hdrs = (req_hdr *)(void *)((char *)req + hdrs_off);
  s = (char *)(hdrs + desc->num_headers);
  if (desc->body_len > 0) memcpy(s, desc->body, desc->body_len);
  s += desc->body_len;
  memcpy(s, desc->path, path_len + 1);
  s += path_len + 1;
  headers_copy(hdrs, s, desc, &m);
  *out = req;
  return 0;
}

const uint8_t *apns__req_body(const apns__req *req) {
  if (req->body_len == 0) return NULL;
  return (const uint8_t *)(hdrs_of(req) + req->num_headers);
}

size_t apns__req_nv(const apns__req *req, nghttp2_nv *out, size_t cap, const char *authority, size_t authority_len) {
  size_t n = 4 + (size_t)req->num_headers;
  const req_hdr *h = hdrs_of(req);
  const static_str *m = &methods[req->method];
  const char *s;

  if (out == NULL || cap < n) return n;
  s = (const char *)(h + req->num_headers) + req->body_len;
  out[0] = nv_static(":method", 7, m->name, m->len, APNS__NV_STATIC);
  out[1] = nv_static(":scheme", 7, "https", 5, APNS__NV_STATIC);
  out[2] = nv_static(":path", 5, s, req->path_len, APNS__NV_STATIC | NGHTTP2_NV_FLAG_NO_INDEX);
  out[3] = nv_static(":authority", 10, authority ? authority : "", authority ? authority_len : 0, APNS__NV_STATIC);
  s += req->path_len + 1;
  for (size_t i = 0; i < req->num_headers; i++, h++) {
    nghttp2_nv *nv = &out[4 + i];
    if (h->name & APNS__NAME_KNOWN) {
      const static_str *k = &known_names[h->name & APNS__NAME_MAX];
      nv->name = (uint8_t *)(uintptr_t)k->name;
      nv->namelen = k->len;
      nv->flags = APNS__NV_STATIC | k->flags;
    } else {
      nv->name = (uint8_t *)(uintptr_t)s;
      nv->namelen = h->name & APNS__NAME_MAX;
      nv->flags = APNS__NV_STATIC;
      s += nv->namelen + 1;
    }
    if (h->name & APNS__VALUE_KNOWN) {
      nv->value = (uint8_t *)(uintptr_t)known_values[h->value_len].name;
      nv->valuelen = known_values[h->value_len].len;
    } else {
      nv->value = (uint8_t *)(uintptr_t)s;
      nv->valuelen = h->value_len;
      s += h->value_len + 1;
    }
  }
  return n;
}

void apns__req_free(apns__req *req) {
  apns__free(req);
}

int apns__req_deadline_less(const apns__heap_node *a, const apns__heap_node *b) {
  const apns__req *x = apns__req_of_dl((apns__heap_node *)a), *y = apns__req_of_dl((apns__heap_node *)b);
  /* Equal deadlines (a burst posted in one loop turn) end in the order their streams were opened. */
  return x->link.deadline < y->link.deadline ||
         (x->link.deadline == y->link.deadline && x->link.stream_id < y->link.stream_id);
}

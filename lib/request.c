/* A request built once into one allocation, ready for nghttp2. Layer 1: no I/O.
 *
 * Layout of the block: the apns__req, the owner's `extra` bytes, the nghttp2_nv array, the strings (path, then each
 * header's name and value, NUL-terminated), then the body. Everything the nv array points at lives as long as the
 * request, so it is handed to nghttp2 with NO_COPY flags; only :authority is left for the h2 session to fill, as it
 * belongs to the connection. */
#include "request.h"

#include "alloc.h"

#include <stdalign.h>
#include <stddef.h>
#include <string.h>

#define APNS__REQ_ALIGN alignof(max_align_t)
#define APNS__NV_STATIC (NGHTTP2_NV_FLAG_NO_COPY_NAME | NGHTTP2_NV_FLAG_NO_COPY_VALUE)

static size_t round_up(size_t n) {
  return (n + APNS__REQ_ALIGN - 1) & ~(size_t)(APNS__REQ_ALIGN - 1);
}

/* The extra bytes sit right behind the struct, so finding them needs no stored offset. */
static size_t extra_offset(void) {
  return round_up(sizeof(apns__req));
}

/* Methods are matched exactly (HTTP methods are case-sensitive) and point at static strings. */
static const char *const methods[] = {"POST", "GET", "DELETE", "PUT", "HEAD"};

static const char *method_lookup(const char *method) {
  if (method == NULL) return methods[0];
  for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++)
    if (strcmp(method, methods[i]) == 0) return methods[i];
  return NULL;
}

/* A path is sent as :path: visible ASCII only (spaces and controls must be percent-encoded). */
static int path_valid(const char *path) {
  if (path == NULL || path[0] != '/') return 0;
  for (const unsigned char *p = (const unsigned char *)path; *p; p++)
    if (*p <= 0x20 || *p == 0x7f) return 0;
  return 1;
}

/* Connection-specific fields are forbidden in HTTP/2 (RFC 9113 8.2.2); a server would reset the stream. */
/* Values that change per request would only churn the HPACK table, and authorization is a secret. */
static int never_indexed(const char *name, size_t len) {
  return (len == 13 && memcmp(name, "authorization", 13) == 0) || (len == 7 && memcmp(name, "apns-id", 7) == 0);
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

int apns__req_new(apns__req **out, const apns_request *desc, size_t extra) {
  const char *method;
  size_t path_len, total, strings = 0, nvlen, i;
  /* Lengths of the first headers' names and values, measured once (this runs for every request). */
  size_t lens[2 * 8];
  apns__req *req;
  char *s;

  if (out == NULL) return APNS_EINVAL;
  *out = NULL;
  if (desc == NULL || !path_valid(desc->path)) return APNS_EINVAL;
  method = method_lookup(desc->method);
  if (method == NULL) return APNS_EINVAL;
  if (desc->num_headers > 0 && desc->headers == NULL) return APNS_EINVAL;
  if (desc->body_len > 0 && desc->body == NULL) return APNS_EINVAL;

  path_len = strlen(desc->path);
  if (!add_size(&strings, path_len + 1)) return APNS_EINVAL;
  for (i = 0; i < desc->num_headers; i++) {
    const apns_header *h = &desc->headers[i];
    size_t nl, vl;
    if (h->name == NULL || h->value == NULL) return APNS_EBADHEADER;
    nl = strlen(h->name);
    vl = strlen(h->value);
    if (i < 8) lens[2 * i] = nl, lens[2 * i + 1] = vl;
    /* A pseudo-header fails the token check (':' is not a tchar), so callers cannot forge :path or :authority. */
    if (!apns__header_name_valid(h->name, nl) || !apns__header_value_valid(h->value, vl)) return APNS_EBADHEADER;
    if (!add_size(&strings, nl + 1) || !add_size(&strings, vl + 1)) return APNS_EINVAL;
  }

  nvlen = 4 + desc->num_headers;
  if (nvlen < desc->num_headers || nvlen > SIZE_MAX / sizeof(nghttp2_nv)) return APNS_EINVAL;
  total = extra_offset();
  if (!add_size(&total, round_up(extra)) || round_up(extra) < extra ||
      !add_size(&total, nvlen * sizeof(nghttp2_nv)) || !add_size(&total, strings) ||
      !add_size(&total, desc->body_len))
    return APNS_EINVAL;

  req = apns__malloc(total);
  if (req == NULL) return APNS_ENOMEM;
  memset(req, 0, extra_offset() + round_up(extra));
  req->nva = (nghttp2_nv *)((char *)req + extra_offset() + round_up(extra));
  req->nvlen = nvlen;
  s = (char *)(req->nva + nvlen);

  memcpy(s, desc->path, path_len + 1);
  req->nva[0] = nv_static(":method", 7, method, strlen(method), APNS__NV_STATIC);
  req->nva[1] = nv_static(":scheme", 7, "https", 5, APNS__NV_STATIC);
  req->nva[2] = nv_static(":path", 5, s, path_len, APNS__NV_STATIC | NGHTTP2_NV_FLAG_NO_INDEX);
  /* The h2 session puts its own authority here (a copy of this array per submit). */
  req->nva[3] = nv_static(":authority", 10, "", 0, APNS__NV_STATIC);
  s += path_len + 1;

  for (i = 0; i < desc->num_headers; i++) {
    const apns_header *h = &desc->headers[i];
    size_t nl = i < 8 ? lens[2 * i] : strlen(h->name), vl = i < 8 ? lens[2 * i + 1] : strlen(h->value);
    char *name = s, *value = s + nl + 1;
    memcpy(name, h->name, nl + 1);
    memcpy(value, h->value, vl + 1);
    req->nva[4 + i] =
        nv_static(name, nl, value, vl, APNS__NV_STATIC | (never_indexed(name, nl) ? NGHTTP2_NV_FLAG_NO_INDEX : 0));
    s += nl + 1 + vl + 1;
  }

  if (desc->body_len > 0) memcpy(s, desc->body, desc->body_len);
  req->body = desc->body_len > 0 ? (const uint8_t *)s : NULL;
  req->body_len = desc->body_len;
  req->timeout_ms = desc->timeout_ms ? desc->timeout_ms : APNS_DEFAULT_TIMEOUT_MS;
  req->owner = NULL;
  *out = req;
  return 0;
}

void *apns__req_extra(apns__req *req) {
  return req == NULL ? NULL : (char *)req + extra_offset();
}

void apns__req_free(apns__req *req) {
  apns__free(req);
}

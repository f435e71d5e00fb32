/* The request block: validation, layout, HPACK flags, allocation failure. */
#include "harness.h"

#include "../lib/alloc.h"
#include "../lib/request.h"
#include <apns.h>
#include <stdalign.h>
#include <stddef.h>

static int nv_is(const nghttp2_nv *nv, const char *name, const char *value) {
  return nv->namelen == strlen(name) && memcmp(nv->name, name, nv->namelen) == 0 && nv->valuelen == strlen(value) &&
         memcmp(nv->value, value, nv->valuelen) == 0;
}

#define NOCOPY (NGHTTP2_NV_FLAG_NO_COPY_NAME | NGHTTP2_NV_FLAG_NO_COPY_VALUE)

/* The request's fields as the h2 session gets them, with no authority (""), as the block itself has none. */
static size_t req_nv(const apns__req *req, nghttp2_nv *nva, size_t cap) {
  return apns__req_nv(req, nva, cap, NULL, 0);
}

TEST(request_layout_and_flags) {
  char path[] = "/3/device/abcd";
  char body[] = "{\"aps\":{}}";
  apns_header headers[] = {
      {"apns-topic", "com.example.app"},
      {"apns-id", "123e4567-e89b-12d3-a456-426614174000"},
      {"authorization", "bearer x.y.z"},
      {"apns-priority", "10"},
  };
  apns_request desc = {sizeof(apns_request), NULL, path, headers, 4, body, strlen(body), 0};
  apns__req *req;
  ASSERT_OK(apns__req_new(&req, &desc, 40));
  /* Everything is copied: the caller's buffers are theirs again. */
  memset(path, 'x', sizeof path - 1);
  memset(body, 'y', sizeof body - 1);
  nghttp2_nv nva[8];
  memset(nva, 0, sizeof nva);
  ASSERT_EQ(req_nv(req, NULL, 0), 8);
  ASSERT_EQ(req_nv(req, nva, 7), 8); /* too small: told the size, nothing written */
  ASSERT_NULL(nva[0].name);
  ASSERT_EQ(req_nv(req, nva, 8), 8);
  ASSERT_TRUE(nv_is(&nva[0], ":method", "POST"));
  ASSERT_TRUE(nv_is(&nva[1], ":scheme", "https"));
  ASSERT_TRUE(nv_is(&nva[2], ":path", "/3/device/abcd"));
  ASSERT_TRUE(nv_is(&nva[3], ":authority", ""));
  ASSERT_TRUE(nv_is(&nva[4], "apns-topic", "com.example.app"));
  ASSERT_TRUE(nv_is(&nva[5], "apns-id", "123e4567-e89b-12d3-a456-426614174000"));
  ASSERT_TRUE(nv_is(&nva[6], "authorization", "bearer x.y.z"));
  ASSERT_TRUE(nv_is(&nva[7], "apns-priority", "10"));
  /* nghttp2 need copy nothing: it all lives as long as the request. */
  for (size_t i = 0; i < 8; i++) ASSERT_EQ(nva[i].flags & NOCOPY, NOCOPY);
  /* Per-request values are never indexed; constant ones may be. */
  ASSERT_TRUE(nva[2].flags & NGHTTP2_NV_FLAG_NO_INDEX);
  ASSERT_TRUE(nva[5].flags & NGHTTP2_NV_FLAG_NO_INDEX);
  ASSERT_TRUE(nva[6].flags & NGHTTP2_NV_FLAG_NO_INDEX);
  ASSERT_TRUE(!(nva[0].flags & NGHTTP2_NV_FLAG_NO_INDEX));
  ASSERT_TRUE(!(nva[4].flags & NGHTTP2_NV_FLAG_NO_INDEX));
  ASSERT_TRUE(!(nva[7].flags & NGHTTP2_NV_FLAG_NO_INDEX));
  /* Strings are NUL-terminated in the block, handy for logs. */
  ASSERT_STREQ((const char *)nva[2].value, "/3/device/abcd");
  ASSERT_STREQ((const char *)nva[5].value, "123e4567-e89b-12d3-a456-426614174000");
  ASSERT_EQ(req->body_len, 10);
  ASSERT_MEMEQ(apns__req_body(req), "{\"aps\":{}}", 10);
  /* The authority is the caller's (the connection's), passed through without a copy. */
  const char authority[] = "api.push.apple.com:443";
  ASSERT_EQ(apns__req_nv(req, nva, 8, authority, 22), 8);
  ASSERT_TRUE(nva[3].value == (const uint8_t *)authority);
  ASSERT_TRUE(nv_is(&nva[3], ":authority", "api.push.apple.com:443"));
  ASSERT_EQ(nva[3].flags, NOCOPY);
  ASSERT_TRUE(nv_is(&nva[2], ":path", "/3/device/abcd"));
  ASSERT_UEQ(apns__req_timeout(&desc), APNS_DEFAULT_TIMEOUT_MS);
  ASSERT_EQ(req->link.stream_id, 0);
  ASSERT_NULL(req->link.dl.parent);
  ASSERT_NULL(req->link.q.next);
  ASSERT_TRUE(req->link.done == NULL);
  apns__req_free(req);
}

/* Past the first 8 headers (measured once and remembered), near misses of the usual names (stored as given), the
 * usual names late in the list, and a body: all come back in order with their flags. */
TEST(request_many_headers) {
  apns_header h[] = {
      {"x-a", "1"},
      {"apns-topic", "t"},
      {"apns-ids", "2"},
      {"apns-i", "3"},
      {"apns-topic-", "4"},
      {"x-b", ""},
      {"apns-push-type", "alert"},
      {"apns-priority", "5"},
      {"apns-id", "id-9"},
      {"authorization", "bearer a.b.c"},
      {"x-c", "last"},
      {"apns-collapse-id", "c"},
      {"apns-expiration", "0"},
      {"apns-channel-id", "ch"},
      {"apns-request-id", "rq"},
      {"authorizations", "no"},
  };
  size_t nh = sizeof h / sizeof h[0];
  apns_request desc = {sizeof(apns_request), "PUT", "/p?q=1", h, nh, "body!", 5, 7};
  apns__req *req;
  ASSERT_OK(apns__req_new(&req, &desc, 24));
  nghttp2_nv nva[4 + sizeof h / sizeof h[0]];
  ASSERT_EQ(req_nv(req, nva, 4 + nh), 4 + nh);
  ASSERT_TRUE(nv_is(&nva[0], ":method", "PUT"));
  ASSERT_TRUE(nv_is(&nva[2], ":path", "/p?q=1"));
  for (size_t i = 0; i < nh; i++) {
    int secret = strcmp(h[i].name, "apns-id") == 0 || strcmp(h[i].name, "authorization") == 0 ||
                 strcmp(h[i].name, "apns-request-id") == 0;
    ASSERT_TRUE(nv_is(&nva[4 + i], h[i].name, h[i].value));
    ASSERT_EQ(nva[4 + i].flags, NOCOPY | (secret ? NGHTTP2_NV_FLAG_NO_INDEX : 0));
    ASSERT_EQ(((const char *)nva[4 + i].name)[nva[4 + i].namelen], '\0');
    ASSERT_EQ(((const char *)nva[4 + i].value)[nva[4 + i].valuelen], '\0');
  }
  ASSERT_EQ(req->body_len, 5);
  ASSERT_MEMEQ(apns__req_body(req), "body!", 5);
  ASSERT_UEQ(apns__req_timeout(&desc), 7);
  apns__req_free(req);
}

TEST(request_extra_is_aligned_and_separate) {
  apns_request desc = {sizeof(apns_request), "GET", "/1/apps/x/all-channels", NULL, 0, NULL, 0, 2500};
  size_t extras[] = {0, 1, 7, 16, 33, 1000};
  for (size_t k = 0; k < sizeof extras / sizeof extras[0]; k++) {
    apns__req *req;
    ASSERT_OK(apns__req_new(&req, &desc, extras[k]));
    unsigned char *extra = apns__req_extra(req);
    ASSERT_NOT_NULL(extra);
    ASSERT_TRUE(apns__req_of_extra(extra) == req);
    ASSERT_EQ((uintptr_t)extra % APNS__REQ_ALIGN, 0);
    ASSERT_EQ(APNS__REQ_ALIGN % alignof(void *), 0);
    ASSERT_EQ(APNS__REQ_ALIGN % alignof(uint64_t), 0);
    ASSERT_EQ(APNS__REQ_ALIGN % alignof(double), 0);
    ASSERT_TRUE(extra >= (unsigned char *)(req + 1));
    if (extras[k] > 0) {
      ASSERT_EQ(extra[0], 0);         /* zeroed for the owner */
      memset(extra, 0xAA, extras[k]); /* ASan/valgrind: inside the block, and must not touch the headers */
    }
    nghttp2_nv nva[4];
    ASSERT_EQ(req_nv(req, nva, 4), 4);
    ASSERT_TRUE(nv_is(&nva[0], ":method", "GET"));
    ASSERT_TRUE(nv_is(&nva[2], ":path", "/1/apps/x/all-channels"));
    ASSERT_NULL(apns__req_body(req));
    ASSERT_EQ(req->body_len, 0);
    ASSERT_UEQ(apns__req_timeout(&desc), 2500);
    apns__req_free(req);
  }
  ASSERT_NULL(apns__req_extra(NULL));
  ASSERT_NULL(apns__req_of_extra(NULL));
  apns__req_free(NULL);
}

TEST(request_methods) {
  const char *ok[] = {NULL, "POST", "GET", "DELETE", "PUT", "HEAD"};
  const char *want[] = {"POST", "POST", "GET", "DELETE", "PUT", "HEAD"};
  const char *bad[] = {"post", "PATCH", "", "GET ", "CONNECT"};
  for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
    apns_request desc = {sizeof(apns_request), ok[i], "/", NULL, 0, NULL, 0, 0};
    apns__req *req;
    ASSERT_OK(apns__req_new(&req, &desc, 0));
    nghttp2_nv nva[4];
    ASSERT_EQ(req_nv(req, nva, 4), 4);
    ASSERT_TRUE(nv_is(&nva[0], ":method", want[i]));
    apns__req_free(req);
  }
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    apns_request desc = {sizeof(apns_request), bad[i], "/", NULL, 0, NULL, 0, 0};
    apns__req *req = (apns__req *)&desc;
    ASSERT_ERR(apns__req_new(&req, &desc, 0), APNS_EINVAL);
    ASSERT_NULL(req);
  }
}

TEST(request_bad_path) {
  const char *bad[] = {NULL, "", "3/device/x", "http://x/", "/a b", "/a\r\nx: y", "/a\n", "/\x7f", "/\t"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    apns_request desc = {sizeof(apns_request), NULL, bad[i], NULL, 0, NULL, 0, 0};
    apns__req *req;
    ASSERT_ERR(apns__req_new(&req, &desc, 0), APNS_EINVAL);
  }
  /* Every byte: spaces, controls and DEL are refused, anything else (bytes above 0x7f too) is sent as given. */
  for (int c = 1; c < 256; c++) {
    char path[] = {'/', 'a', (char)c, 'b', '\0'};
    apns_request desc = {sizeof(apns_request), NULL, path, NULL, 0, NULL, 0, 0};
    apns__req *req = NULL;
    int rv = apns__req_new(&req, &desc, 0);
    if (c <= 0x20 || c == 0x7f) {
      ASSERT_ERR(rv, APNS_EINVAL);
      continue;
    }
    ASSERT_OK(rv);
    nghttp2_nv nva[4];
    ASSERT_EQ(req_nv(req, nva, 4), 4);
    ASSERT_TRUE(nv_is(&nva[2], ":path", path));
    apns__req_free(req);
  }
}

TEST(request_bad_headers) {
  apns_header bad[][1] = {
      {{"Apns-Topic", "x"}}, {{":path", "/x"}},        {{":authority", "evil"}},  {{"", "x"}},
      {{"bad name", "x"}},   {{"apns-topic", "a\rb"}}, {{"apns-topic", "a\nb"}},  {{"x\r\ny", "1"}},
      {{NULL, "x"}},         {{"apns-topic", NULL}},   {{"connection", "close"}}, {{"transfer-encoding", "x"}},
      {{"upgrade", "h2c"}},  {{"te", "gzip"}},         {{"keep-alive", "1"}},     {{"na\xc3\xa9me", "x"}},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    apns_request desc = {sizeof(apns_request), NULL, "/3/device/x", bad[i], 1, NULL, 0, 0};
    apns__req *req;
    ASSERT_ERR(apns__req_new(&req, &desc, 0), APNS_EBADHEADER);
  }
  /* HTTP/2 would allow "te: trailers", but no APNs request has a use for te: it is refused whole. Empty values and
   * odd token characters are fine. */
  apns_header te[] = {{"te", "trailers"}};
  apns_request te_desc = {sizeof(apns_request), NULL, "/3/device/x", te, 1, NULL, 0, 0};
  apns__req *req;
  ASSERT_ERR(apns__req_new(&req, &te_desc, 0), APNS_EBADHEADER);
  apns_header good[] = {{"x-empty", ""}, {"x-odd!#$%&'*+-.^_`|~0", "v a\tl"}};
  apns_request desc = {sizeof(apns_request), NULL, "/3/device/x", good, 2, NULL, 0, 0};
  ASSERT_OK(apns__req_new(&req, &desc, 0));
  nghttp2_nv nva[6];
  ASSERT_EQ(req_nv(req, nva, 6), 6);
  ASSERT_TRUE(nv_is(&nva[4], "x-empty", ""));
  ASSERT_TRUE(nv_is(&nva[5], "x-odd!#$%&'*+-.^_`|~0", "v a\tl"));
  apns__req_free(req);
}

TEST(request_bad_args) {
  apns__req *req;
  apns_request desc = {sizeof(apns_request), NULL, "/", NULL, 1, NULL, 0, 0};
  ASSERT_ERR(apns__req_new(NULL, &desc, 0), APNS_EINVAL);
  ASSERT_ERR(apns__req_new(&req, NULL, 0), APNS_EINVAL);
  ASSERT_ERR(apns__req_new(&req, &desc, 0), APNS_EINVAL); /* headers NULL, num_headers 1 */
  apns_request nobody = {sizeof(apns_request), NULL, "/", NULL, 0, NULL, 5, 0};
  ASSERT_ERR(apns__req_new(&req, &nobody, 0), APNS_EINVAL);
  apns_request huge = {sizeof(apns_request), NULL, "/", NULL, 0, NULL, 0, 0};
  ASSERT_ERR(apns__req_new(&req, &huge, SIZE_MAX - 8), APNS_EINVAL);
}

TEST(request_one_allocation) {
  apns_header h[] = {{"apns-topic", "t"}, {"apns-push-type", "alert"}};
  apns_request desc = {sizeof(apns_request), NULL, "/3/device/ab", h, 2, "{}", 2, 0};
  long live = test_alloc_live();
  test_alloc_fail_after(1000);
  apns__req *req;
  ASSERT_OK(apns__req_new(&req, &desc, 64));
  ASSERT_EQ(test_alloc_count(), 1);
  test_alloc_reset();
  ASSERT_EQ(test_alloc_live(), live + 1);
  apns__req_free(req);
  ASSERT_EQ(test_alloc_live(), live);
}

TEST(request_alloc_failure) {
  apns_header h[] = {{"apns-topic", "t"}};
  apns_request desc = {sizeof(apns_request), "DELETE", "/1/apps/x/channels", h, 1, NULL, 0, 0};
  long live = test_alloc_live();
  int ok = 0;
  for (long i = 0; i < 10 && !ok; i++) {
    apns__req *req = NULL;
    test_alloc_fail_after(i);
    int rv = apns__req_new(&req, &desc, 16);
    test_alloc_reset();
    if (rv == 0) {
      ok = 1;
      apns__req_free(req);
    } else {
      ASSERT_ERR(rv, APNS_ENOMEM);
      ASSERT_NULL(req);
    }
    ASSERT_EQ(test_alloc_live(), live);
  }
  ASSERT_TRUE(ok);
}

TEST(request_header_checks) {
  ASSERT_TRUE(apns__header_name_valid("apns-topic", 10));
  ASSERT_TRUE(!apns__header_name_valid("apns-topic", 0));
  ASSERT_TRUE(!apns__header_name_valid("Apns", 4));
  ASSERT_TRUE(!apns__header_name_valid(":path", 5));
  ASSERT_TRUE(!apns__header_name_valid("a\0b", 3));
  ASSERT_TRUE(apns__header_value_valid("", 0));
  ASSERT_TRUE(apns__header_value_valid("bearer a.b.c", 12));
  ASSERT_TRUE(!apns__header_value_valid("a\0b", 3));
  ASSERT_TRUE(!apns__header_value_valid("a\r", 2));
  ASSERT_TRUE(!apns__header_value_valid("\n", 1));
}

/* A queued notification is mostly its request block: the values nearly every request has (apns-push-type,
 * apns-priority, apns-expiration 0) are not copied into it, and the block's header holds no timeout (the owner
 * turns it into link.deadline at post). A value outside the table, or under another name, is copied as before.
 * The block's header is 24 bytes of layout and the links of its holder: deadline, stream id, done, and the deadline
 * heap's and the queue's nodes, which the pool's bookkeeping in the extra bytes does not repeat. */
TEST(request_known_values_not_copied) {
  ASSERT_LE(sizeof(apns__req), 88);
  apns_header h[] = {{"apns-push-type", "alert"},
                     {"apns-priority", "10"},
                     {"apns-expiration", "0"},
                     {"apns-push-type", "alerts"},
                     {"apns-collapse-id", "10"}};
  apns_request desc = {sizeof(apns_request), NULL, "/3/device/abcd", h, 5, NULL, 0, 0};
  apns__req *a, *b;
  nghttp2_nv na[9], nb[9];
  ASSERT_OK(apns__req_new(&a, &desc, 0));
  ASSERT_OK(apns__req_new(&b, &desc, 0));
  ASSERT_EQ(req_nv(a, na, 9), 9);
  ASSERT_EQ(req_nv(b, nb, 9), 9);
  for (size_t i = 0; i < 5; i++) {
    ASSERT_TRUE(nv_is(&na[4 + i], h[i].name, h[i].value));
    ASSERT_EQ(((const char *)na[4 + i].value)[na[4 + i].valuelen], '\0');
    /* Known: both blocks point at the same constant; copied: each at its own bytes. */
    ASSERT_EQ(na[4 + i].value == nb[4 + i].value, i < 3);
  }
  ASSERT_TRUE(nv_is(&na[2], ":path", "/3/device/abcd"));
  apns__req_free(a);
  apns__req_free(b);
}

TEST_SUITE(request){
    TEST_ENTRY(request_known_values_not_copied),
    TEST_ENTRY(request_layout_and_flags),
    TEST_ENTRY(request_many_headers),
    TEST_ENTRY(request_extra_is_aligned_and_separate),
    TEST_ENTRY(request_methods),
    TEST_ENTRY(request_bad_path),
    TEST_ENTRY(request_bad_headers),
    TEST_ENTRY(request_bad_args),
    TEST_ENTRY(request_one_allocation),
    TEST_ENTRY(request_alloc_failure),
    TEST_ENTRY(request_header_checks),
    TEST_SUITE_END,
};

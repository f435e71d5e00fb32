/* The proxy handshake (lib/proxy.c) without sockets, against hand-written proxy replies, well-formed and hostile;
 * proxy URLs and the proxy environment variables. */
#include "harness.h"

#include "alloc.h"
#include "proxy.h"
#include "proxy_fixture.h"

#include <apns.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

/* A handshake to target:port through a proxy at 127.0.0.1:3128 (type, optional credentials). */
static apns__proxy *start(apns_proxy_type type, const char *user, const char *pass, const char *target,
                          uint16_t port) {
  apns_proxy_options o = {sizeof(apns_proxy_options), type, "127.0.0.1", 3128, user, pass};
  apns__proxy_cfg *cfg;
  apns__proxy *p;
  ASSERT_OK(apns__proxy_cfg_new(&cfg, &o, NULL, 0));
  ASSERT_OK(apns__proxy_new(&p, cfg, target, port));
  apns__proxy_cfg_free(cfg);
  return p;
}

/* What the handshake wants to send now, appended to out (a transcript). */
typedef struct {
  uint8_t bytes[4096];
  size_t len;
} transcript;

static void take(apns__proxy *p, transcript *t) {
  uint8_t *buf;
  size_t len;
  ASSERT_OK(apns__proxy_take_output(p, &buf, &len));
  ASSERT_LE(t->len + len, sizeof t->bytes);
  if (len) memcpy(t->bytes + t->len, buf, len);
  t->len += len;
  apns__zero(buf, len);
  apns__free(buf);
}

/* Feeds reply in chunks cut at the given offsets (ascending, within len), as a connection would: output taken
 * after every feed, and once the tunnel is open the rest of every read goes to "TLS". Returns the last result;
 * *tls gets the bytes that went to TLS. */
static int drive(apns__proxy *p, const uint8_t *reply, size_t len, const size_t *cuts, size_t ncuts, transcript *sent,
                 transcript *tls) {
  size_t at = 0;
  int rv = 0;
  take(p, sent);
  for (size_t c = 0; c <= ncuts; c++) {
    size_t end = c < ncuts ? cuts[c] : len;
    const uint8_t *chunk = reply + at;
    size_t n = end - at, used = 0;
    at = end;
    if (rv == 1) {
      memcpy(tls->bytes + tls->len, chunk, n);
      tls->len += n;
      continue;
    }
    if (rv < 0) break;
    rv = apns__proxy_feed(p, chunk, n, &used);
    ASSERT_LE(used, n);
    if (rv == 1) {
      memcpy(tls->bytes + tls->len, chunk + used, n - used);
      tls->len += n - used;
    } else if (rv == 0) {
      ASSERT_EQ(used, n); /* nothing is dropped while the handshake runs */
    }
    take(p, sent);
  }
  return rv;
}

static int feed_all(apns__proxy *p, const char *s, size_t *used) {
  return apns__proxy_feed(p, (const uint8_t *)s, strlen(s), used);
}

static int contains(const char *hay, const char *needle) {
  return strstr(hay, needle) != NULL;
}

/* ---- HTTP CONNECT ---------------------------------------------------------------------------------------------- */

TEST(proxy_http_request_bytes) {
  transcript t = {0};
  apns__proxy *p = start(APNS_PROXY_HTTP, NULL, NULL, "api.push.apple.com", 443);
  take(p, &t);
  const char *want = "CONNECT api.push.apple.com:443 HTTP/1.1\r\nHost: api.push.apple.com:443\r\n\r\n";
  ASSERT_EQ(t.len, strlen(want));
  ASSERT_MEMEQ(t.bytes, want, t.len);
  /* Taken once: nothing more until the proxy answers. */
  take(p, &t);
  ASSERT_EQ(t.len, strlen(want));
  apns__proxy_free(p);

  transcript a = {0};
  p = start(APNS_PROXY_HTTP, "alice", "s3cret", "::1", 8443);
  take(p, &a);
  /* base64("alice:s3cret") */
  const char *auth = "CONNECT [::1]:8443 HTTP/1.1\r\nHost: [::1]:8443\r\n"
                     "Proxy-Authorization: Basic YWxpY2U6czNjcmV0\r\n\r\n";
  ASSERT_EQ(a.len, strlen(auth));
  ASSERT_MEMEQ(a.bytes, auth, a.len);
  apns__proxy_free(p);

  /* Every padding length of base64: "ab:" "ab:c" "ab:cd". */
  const char *pw[] = {"", "c", "cd"}, *enc[] = {"YWI6", "YWI6Yw==", "YWI6Y2Q="};
  for (int i = 0; i < 3; i++) {
    transcript b = {0};
    char line[80];
    p = start(APNS_PROXY_HTTP, "ab", pw[i], "h", 1);
    take(&*p, &b);
    snprintf(line, sizeof line, "Proxy-Authorization: Basic %s\r\n", enc[i]);
    b.bytes[b.len] = 0;
    ASSERT_TRUE(contains((const char *)b.bytes, line));
    apns__proxy_free(p);
  }
}

TEST(proxy_http_200_opens_tunnel) {
  const char *replies[] = {"HTTP/1.1 200 Connection established\r\n\r\n",
                           "HTTP/1.0 200 Connection established\r\nProxy-agent: tinyproxy/1.11.1\r\n\r\n",
                           "HTTP/1.1 200\r\n\r\n", "HTTP/1.1 204 No Content\r\nContent-Length: 12\r\n\r\n",
                           "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nVia: 1.1 squid\r\n\r\n"};
  for (size_t i = 0; i < sizeof replies / sizeof replies[0]; i++) {
    apns__proxy *p = start(APNS_PROXY_HTTP, NULL, NULL, "localhost", 443);
    size_t used = 99;
    ASSERT_EQ(feed_all(p, replies[i], &used), 1);
    ASSERT_EQ(used, strlen(replies[i]));
    ASSERT_TRUE(apns__proxy_done(p));
    ASSERT_STREQ(apns__proxy_error(p), "");
    ASSERT_GE(apns__proxy_status(p), 200);
    ASSERT_LT(apns__proxy_status(p), 300);
    /* Done: later bytes are not the handshake's. */
    ASSERT_ERR(feed_all(p, "x", &used), APNS_EBUSY);
    ASSERT_EQ(used, 0);
    apns__proxy_free(p);
  }
}

TEST(proxy_http_tls_bytes_in_same_read) {
  /* A ClientHello-sized tail after the 200 (the server speaks first in no TLS version, but a proxy may coalesce
   * whatever it has): it must come back whole, once. */
  uint8_t buf[600];
  const char *reply = "HTTP/1.1 200 OK\r\n\r\n";
  size_t rl = strlen(reply), used = 0;
  memcpy(buf, reply, rl);
  for (size_t i = rl; i < sizeof buf; i++) buf[i] = (uint8_t)(i * 7 + 0x16);
  apns__proxy *p = start(APNS_PROXY_HTTP, NULL, NULL, "localhost", 443);
  ASSERT_EQ(apns__proxy_feed(p, buf, sizeof buf, &used), 1);
  ASSERT_EQ(used, rl);
  apns__proxy_free(p);
}

TEST(proxy_http_reply_split_at_every_byte) {
  const char *reply = "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.0 200 Connection established\r\nProxy-agent: x\r\n\r\n";
  const char *tls = "\x16\x03\x03\x00\x05hello";
  uint8_t all[256];
  size_t rl = strlen(reply), tl = strlen(tls);
  memcpy(all, reply, rl);
  memcpy(all + rl, tls, tl);
  /* Two reads cut at every offset, and one byte per read. */
  for (size_t cut = 0; cut <= rl + tl; cut++) {
    transcript sent = {0}, out = {0};
    apns__proxy *p = start(APNS_PROXY_HTTP, NULL, NULL, "localhost", 443);
    ASSERT_EQ(drive(p, all, rl + tl, &cut, 1, &sent, &out), 1);
    ASSERT_EQ(out.len, tl);
    ASSERT_MEMEQ(out.bytes, tls, tl);
    apns__proxy_free(p);
  }
  size_t cuts[256];
  for (size_t i = 0; i < rl + tl; i++) cuts[i] = i + 1;
  transcript sent = {0}, out = {0};
  apns__proxy *p = start(APNS_PROXY_HTTP, NULL, NULL, "localhost", 443);
  ASSERT_EQ(drive(p, all, rl + tl, cuts, rl + tl - 1, &sent, &out), 1);
  ASSERT_EQ(out.len, tl);
  ASSERT_MEMEQ(out.bytes, tls, tl);
  apns__proxy_free(p);
}

TEST(proxy_http_407_is_auth_error) {
  const char *reply = "HTTP/1.0 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm=\"x\"\r\n"
                      "Connection: close\r\n\r\n<html>body</html>";
  size_t used;
  apns__proxy *p = start(APNS_PROXY_HTTP, NULL, NULL, "api.push.apple.com", 443);
  ASSERT_ERR(feed_all(p, reply, &used), APNS_EPROXYAUTH);
  ASSERT_EQ(apns__proxy_status(p), 407);
  ASSERT_TRUE(contains(apns__proxy_error(p), "127.0.0.1:3128"));
  ASSERT_TRUE(contains(apns__proxy_error(p), "requires authentication"));
  ASSERT_TRUE(contains(apns__proxy_error(p), "407 Proxy Authentication Required"));
  ASSERT_TRUE(contains(apns__proxy_error(p), "api.push.apple.com:443"));
  /* The body is not read. */
  ASSERT_EQ(used, strlen(reply) - strlen("<html>body</html>"));
  ASSERT_ERR(feed_all(p, "more", &used), APNS_EBUSY);
  ASSERT_ERR(apns__proxy_eof(p), APNS_EPROXYAUTH);
  apns__proxy_free(p);

  p = start(APNS_PROXY_HTTP, "alice", "hunter2-secret", "api.push.apple.com", 443);
  ASSERT_ERR(feed_all(p, reply, &used), APNS_EPROXYAUTH);
  ASSERT_TRUE(contains(apns__proxy_error(p), "rejected the credentials"));
  ASSERT_TRUE(!contains(apns__proxy_error(p), "hunter2"));
  ASSERT_TRUE(!contains(apns__proxy_error(p), "alice"));
  apns__proxy_free(p);

  /* 401 is about the proxy's credentials too: no origin has answered yet. */
  p = start(APNS_PROXY_HTTP, "alice", "pw", "api.push.apple.com", 443);
  ASSERT_ERR(feed_all(p, "HTTP/1.0 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"T\"\r\n\r\n", &used),
             APNS_EPROXYAUTH);
  ASSERT_EQ(apns__proxy_status(p), 401);
  apns__proxy_free(p);
}

TEST(proxy_http_other_statuses_are_proxy_errors) {
  const struct {
    const char *reply;
    int status;
    const char *shown;
  } cases[] = {
      {"HTTP/1.1 403 Access violation\r\n\r\n", 403, "403 Access violation"},
      {"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n", 502, "502 Bad Gateway"},
      {"HTTP/1.1 503 Service Unavailable\r\n\r\n", 503, "503 Service Unavailable"},
      {"HTTP/1.1 500 Unable to connect\r\n\r\n", 500, "500 Unable to connect"},
      {"HTTP/1.1 301 Moved\r\nLocation: http://x/\r\n\r\n", 301, "301 Moved"},
      {"HTTP/1.1 101 Switching Protocols\r\n\r\n", 101, "101 Switching Protocols"},
      {"HTTP/1.1 404\r\n\r\n", 404, "404"},
      /* A reason from a hostile proxy is shown in printable ASCII only. */
      {"HTTP/1.1 403 No\xff\xfe way\r\n\r\n", 403, "403 No?? way"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    size_t used;
    apns__proxy *p = start(APNS_PROXY_HTTP, NULL, NULL, "api.push.apple.com", 443);
    ASSERT_ERR(feed_all(p, cases[i].reply, &used), APNS_EPROXY);
    ASSERT_EQ(apns__proxy_status(p), cases[i].status);
    ASSERT_TRUE(contains(apns__proxy_error(p), cases[i].shown));
    ASSERT_TRUE(contains(apns__proxy_error(p), "HTTP proxy 127.0.0.1:3128 refused CONNECT api.push.apple.com:443"));
    apns__proxy_free(p);
  }
}

TEST(proxy_http_oversized_reply) {
  /* A status line that never ends: refused at the bound, not one byte later, nothing buffered past it. */
  static uint8_t big[APNS__PROXY_MAX_REPLY * 2];
  memcpy(big, "HTTP/1.1 200 ", 13);
  memset(big + 13, 'A', sizeof big - 13);
  size_t used;
  apns__proxy *p = start(APNS_PROXY_HTTP, NULL, NULL, "localhost", 443);
  ASSERT_ERR(apns__proxy_feed(p, big, sizeof big, &used), APNS_EPROXYPROTO);
  ASSERT_EQ(used, APNS__PROXY_MAX_REPLY + 1);
  ASSERT_TRUE(contains(apns__proxy_error(p), "more than 8192 bytes"));
  apns__proxy_free(p);

  /* Many short headers, fed in small reads: the bound is on the whole reply. */
  p = start(APNS_PROXY_HTTP, NULL, NULL, "localhost", 443);
  ASSERT_EQ(feed_all(p, "HTTP/1.1 200 OK\r\n", &used), 0);
  int rv = 0;
  size_t total = 17;
  while (rv == 0) {
    rv = feed_all(p, "X-Filler: 0123456789\r\n", &used);
    total += used;
  }
  ASSERT_ERR(rv, APNS_EPROXYPROTO);
  ASSERT_EQ(total, APNS__PROXY_MAX_REPLY + 1);
  apns__proxy_free(p);

  /* Exactly at the bound is accepted. */
  p = start(APNS_PROXY_HTTP, NULL, NULL, "localhost", 443);
  memset(big, 0, sizeof big);
  size_t n = 0;
  memcpy(big, "HTTP/1.1 200 OK\r\nX: ", 20);
  n = 20;
  while (n < APNS__PROXY_MAX_REPLY - 4) big[n++] = 'v';
  memcpy(big + n, "\r\n\r\n", 4);
  n += 4;
  ASSERT_EQ(apns__proxy_feed(p, big, n, &used), 1);
  ASSERT_EQ(used, (size_t)APNS__PROXY_MAX_REPLY);
  apns__proxy_free(p);
}

TEST(proxy_http_malformed_replies) {
  const char *bad[] = {
      "HTTP/1.1 200 OK\n\n",                        /* bare LF */
      "HTTP/1.1 200 OK\r\nVia: x\n\r\n",            /* bare LF in the headers */
      "HTTP/1.1 200 OK\rX\r\n\r\n",                 /* CR without LF */
      "HTTP/2 200\r\n\r\n",                         /* not HTTP/1.x */
      "HTTP/1.2 200 OK\r\n\r\n",                    /* unknown minor version */
      "HTTP/1.1 20\r\n\r\n",                        /* two digits */
      "HTTP/1.1 2000 OK\r\n\r\n",                   /* four digits */
      "HTTP/1.1 099 OK\r\n\r\n",                    /* below 100 */
      "HTTP/1.1 600 OK\r\n\r\n",                    /* above 599 */
      "http/1.1 200 OK\r\n\r\n",                    /* case matters */
      "SSH-2.0-OpenSSH_9.2\r\n",                    /* not HTTP at all */
      "\x16\x03\x01\x00\x10",                       /* TLS from a proxy that speaks TLS (https://) */
      "\r\n",                                       /* empty status line */
      "HTTP/1.1 200 OK\r\nNoColon\r\n\r\n",         /* header without a colon */
      "HTTP/1.1 200 OK\r\nBad Name: x\r\n\r\n",     /* space in the name */
      "HTTP/1.1 200 OK\r\n: x\r\n\r\n",             /* empty name */
      "HTTP/1.1 200 OK\r\nA: b\r\n folded\r\n\r\n", /* obs-fold */
      "HTTP/1.1 200 OK\r\nA: b\x01\r\n\r\n",        /* control character */
      "HTTP/1.1 200 O\x01K\r\n\r\n",                /* control character in the reason */
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    size_t used;
    apns__proxy *p = start(APNS_PROXY_HTTP, NULL, NULL, "localhost", 443);
    int rv = feed_all(p, bad[i], &used);
    if (rv != APNS_EPROXYPROTO) test__fail(__FILE__, __LINE__, "case %zu: %s", i, apns_err_name(rv));
    ASSERT_TRUE(contains(apns__proxy_error(p), "HTTP proxy 127.0.0.1:3128"));
    ASSERT_TRUE(!apns__proxy_done(p));
    apns__proxy_free(p);
  }
  /* A NUL byte (not expressible in the strings above). */
  apns__proxy *p = start(APNS_PROXY_HTTP, NULL, NULL, "localhost", 443);
  size_t used;
  ASSERT_ERR(apns__proxy_feed(p, (const uint8_t *)"HTTP/1.1 200 O\0K\r\n\r\n", 20, &used), APNS_EPROXYPROTO);
  ASSERT_TRUE(contains(apns__proxy_error(p), "NUL"));
  apns__proxy_free(p);
}

TEST(proxy_http_eof_before_reply) {
  size_t used;
  apns__proxy *p = start(APNS_PROXY_HTTP, NULL, NULL, "api.push.apple.com", 443);
  ASSERT_EQ(feed_all(p, "HTTP/1.1 200 Connection est", &used), 0);
  ASSERT_ERR(apns__proxy_eof(p), APNS_EPROXY);
  ASSERT_TRUE(contains(apns__proxy_error(p), "HTTP proxy 127.0.0.1:3128 closed the connection"));
  ASSERT_TRUE(contains(apns__proxy_error(p), "api.push.apple.com:443"));
  apns__proxy_free(p);
}

/* ---- SOCKS5 ---------------------------------------------------------------------------------------------------- */

TEST(proxy_socks5_no_auth) {
  /* Method reply, then a CONNECT reply with an IPv4 bound address, then TLS bytes in the same read. */
  const uint8_t reply[] = {5, 0, 5, 0, 0, 1, 10, 0, 0, 1, 0x1f, 0x90, 0x16, 0x03, 0x03};
  transcript sent = {0}, tls = {0};
  apns__proxy *p = start(APNS_PROXY_SOCKS5, NULL, NULL, "api.push.apple.com", 443);
  ASSERT_EQ(drive(p, reply, sizeof reply, (size_t[]){2}, 1, &sent, &tls), 1);
  const uint8_t want[] = {5,   1,   0,   5,   1,   0,   3,   18,  'a', 'p', 'i', '.', 'p',  'u',
                          's', 'h', '.', 'a', 'p', 'p', 'l', 'e', '.', 'c', 'o', 'm', 0x01, 0xbb};
  ASSERT_EQ(sent.len, sizeof want);
  ASSERT_MEMEQ(sent.bytes, want, sizeof want);
  ASSERT_EQ(tls.len, 3);
  ASSERT_MEMEQ(tls.bytes, "\x16\x03\x03", 3);
  ASSERT_EQ(apns__proxy_status(p), 0);
  ASSERT_TRUE(apns__proxy_done(p));
  apns__proxy_free(p);
}

TEST(proxy_socks5_user_password) {
  /* Method 2, auth ok, CONNECT reply with a domain-name bound address ("px"), then TLS. */
  const uint8_t reply[] = {5, 2, 1, 0, 5, 0, 0, 3, 2, 'p', 'x', 0, 80, 0xAA};
  transcript sent = {0}, tls = {0};
  apns__proxy *p = start(APNS_PROXY_SOCKS5, "bob", "pw", "h.example", 2197);
  ASSERT_EQ(drive(p, reply, sizeof reply, NULL, 0, &sent, &tls), 1);
  /* Everything in one read (a proxy that answers ahead): each step's output is appended, none lost. */
  const uint8_t want[] = {5, 2, 0, 2,   1,   3,   'b', 'o', 'b', 2,   'p', 'w', 5,    1,
                          0, 3, 9, 'h', '.', 'e', 'x', 'a', 'm', 'p', 'l', 'e', 0x08, 0x95};
  ASSERT_EQ(sent.len, sizeof want);
  ASSERT_MEMEQ(sent.bytes, want, sizeof want);
  ASSERT_EQ(tls.len, 1);
  apns__proxy_free(p);
  size_t cuts[sizeof reply];
  for (size_t i = 0; i < sizeof reply - 1; i++) cuts[i] = i + 1;
  transcript s2 = {0}, t2 = {0};
  p = start(APNS_PROXY_SOCKS5, "bob", "pw", "h.example", 2197);
  ASSERT_EQ(drive(p, reply, sizeof reply, cuts, sizeof reply - 1, &s2, &t2), 1);
  ASSERT_EQ(s2.len, sizeof want);
  ASSERT_MEMEQ(s2.bytes, want, sizeof want);
  ASSERT_EQ(t2.len, 1);
  ASSERT_EQ(t2.bytes[0], 0xAA);
  apns__proxy_free(p);

  /* The proxy may pick no-auth even though credentials were offered. */
  const uint8_t noauth[] = {5, 0, 5, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1};
  transcript s3 = {0}, t3 = {0};
  p = start(APNS_PROXY_SOCKS5, "bob", "pw", "h.example", 2197);
  ASSERT_EQ(drive(p, noauth, sizeof noauth, (size_t[]){2}, 1, &s3, &t3), 1);
  ASSERT_EQ(t3.len, 0);
  ASSERT_EQ(s3.len, 4 + 4 + 1 + 9 + 2);
  apns__proxy_free(p);
}

TEST(proxy_socks5_ip_literals_as_addresses) {
  transcript s = {0}, t = {0};
  apns__proxy *p = start(APNS_PROXY_SOCKS5, NULL, NULL, "127.0.0.1", 443);
  const uint8_t r[] = {5, 0};
  ASSERT_EQ(drive(p, r, 2, NULL, 0, &s, &t), 0);
  const uint8_t want4[] = {5, 1, 0, 5, 1, 0, 1, 127, 0, 0, 1, 1, 0xbb};
  ASSERT_EQ(s.len, sizeof want4);
  ASSERT_MEMEQ(s.bytes, want4, sizeof want4);
  apns__proxy_free(p);
  transcript s6 = {0};
  p = start(APNS_PROXY_SOCKS5, NULL, NULL, "::1", 443);
  ASSERT_EQ(drive(p, r, 2, NULL, 0, &s6, &t), 0);
  ASSERT_EQ(s6.len, 3 + 4 + 16 + 2);
  ASSERT_EQ(s6.bytes[6], 4);
  ASSERT_EQ(s6.bytes[7 + 15], 1);
  apns__proxy_free(p);
}

TEST(proxy_socks5_every_reply_code) {
  for (int rep = 1; rep <= 255; rep++) {
    const uint8_t reply[] = {5, 0, 5, (uint8_t)rep, 0, 1, 0, 0, 0, 0, 0, 0};
    transcript s = {0}, t = {0};
    apns__proxy *p = start(APNS_PROXY_SOCKS5, NULL, NULL, "api.push.apple.com", 443);
    int rv = drive(p, reply, sizeof reply, (size_t[]){2}, 1, &s, &t);
    ASSERT_ERR(rv, APNS_EPROXY);
    ASSERT_EQ(apns__proxy_status(p), rep);
    char want[160];
    snprintf(want, sizeof want,
             "SOCKS5 proxy 127.0.0.1:3128 could not connect to api.push.apple.com:443: %s (reply %d)",
             apns__socks5_reply_string(rep), rep);
    ASSERT_STREQ(apns__proxy_error(p), want);
    apns__proxy_free(p);
  }
  ASSERT_STREQ(apns__socks5_reply_string(1), "general SOCKS server failure");
  ASSERT_STREQ(apns__socks5_reply_string(2), "connection not allowed by ruleset");
  ASSERT_STREQ(apns__socks5_reply_string(3), "network unreachable");
  ASSERT_STREQ(apns__socks5_reply_string(4), "host unreachable");
  ASSERT_STREQ(apns__socks5_reply_string(5), "connection refused");
  ASSERT_STREQ(apns__socks5_reply_string(6), "TTL expired");
  ASSERT_STREQ(apns__socks5_reply_string(7), "command not supported");
  ASSERT_STREQ(apns__socks5_reply_string(8), "address type not supported");
  ASSERT_STREQ(apns__socks5_reply_string(9), "unassigned reply code");
  /* A refusal is seen from its first two bytes: a proxy that sends them and closes is still understood. */
  size_t used;
  apns__proxy *p = start(APNS_PROXY_SOCKS5, NULL, NULL, "api.push.apple.com", 443);
  ASSERT_EQ(apns__proxy_feed(p, (const uint8_t *)"\x05\x00", 2, &used), 0);
  ASSERT_ERR(apns__proxy_feed(p, (const uint8_t *)"\x05\x05", 2, &used), APNS_EPROXY);
  ASSERT_EQ(used, 2);
  apns__proxy_free(p);
}

TEST(proxy_socks5_wrong_versions_and_methods) {
  const struct {
    const char *user;
    uint8_t reply[8];
    size_t len;
    int err;
    const char *msg;
  } cases[] = {
      {NULL, {4, 0}, 2, APNS_EPROXYPROTO, "SOCKS version 4, not 5"},
      {NULL, {0x48, 0x54}, 2, APNS_EPROXYPROTO, "SOCKS version 72"}, /* "HT": an HTTP proxy */
      {NULL, {5, 2}, 2, APNS_EPROXYPROTO, "method 2, which was not offered"},
      {NULL, {5, 1}, 2, APNS_EPROXYPROTO, "method 1, which was not offered"}, /* GSSAPI */
      {NULL, {5, 0xff}, 2, APNS_EPROXYAUTH, "may need a user and password"},
      {"u", {5, 0xff}, 2, APNS_EPROXYAUTH, "accepts none of the authentication methods"},
      {"u", {5, 2, 5, 0}, 4, APNS_EPROXYPROTO, "with version 5, not 1"},
      {"u", {5, 2, 1, 1}, 4, APNS_EPROXYAUTH, "rejected the credentials (RFC 1929 status 1)"},
      {"u", {5, 2, 1, 0xff}, 4, APNS_EPROXYAUTH, "rejected the credentials (RFC 1929 status 255)"},
      {NULL, {5, 0, 4, 0}, 4, APNS_EPROXYPROTO, "replied with SOCKS version 4"},
      {NULL, {5, 0, 5, 0, 0, 2}, 6, APNS_EPROXYPROTO, "unknown address type 2"},
      {NULL, {5, 0, 5, 0, 0, 3, 0}, 7, APNS_EPROXYPROTO, "empty bound name"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    transcript s = {0}, t = {0};
    apns__proxy *p = start(APNS_PROXY_SOCKS5, cases[i].user, cases[i].user ? "secret-pw" : NULL, "localhost", 443);
    int rv = drive(p, cases[i].reply, cases[i].len, NULL, 0, &s, &t);
    if (rv != cases[i].err) test__fail(__FILE__, __LINE__, "case %zu: %s", i, apns_err_name(rv));
    if (!contains(apns__proxy_error(p), cases[i].msg))
      test__fail(__FILE__, __LINE__, "case %zu: \"%s\"", i, apns__proxy_error(p));
    ASSERT_TRUE(contains(apns__proxy_error(p), "SOCKS5 proxy 127.0.0.1:3128"));
    ASSERT_TRUE(!contains(apns__proxy_error(p), "secret-pw"));
    ASSERT_TRUE(!apns__proxy_done(p));
    apns__proxy_free(p);
  }
}

TEST(proxy_socks5_split_at_every_byte) {
  const uint8_t reply[] = {5, 2, 1, 0, 5, 0, 0, 3, 3, 'a', 'b', 'c', 0x01, 0xbb, 'T', 'L', 'S'};
  size_t n = sizeof reply;
  for (size_t a = 0; a <= n; a++) {
    for (size_t b = a; b <= n; b++) {
      transcript s = {0}, t = {0};
      size_t cuts[2] = {a, b};
      apns__proxy *p = start(APNS_PROXY_SOCKS5, "u", "p", "localhost", 443);
      ASSERT_EQ(drive(p, reply, n, cuts, 2, &s, &t), 1);
      ASSERT_EQ(t.len, 3);
      ASSERT_MEMEQ(t.bytes, "TLS", 3);
      apns__proxy_free(p);
    }
  }
}

TEST(proxy_socks5_eof) {
  size_t used;
  apns__proxy *p = start(APNS_PROXY_SOCKS5, NULL, NULL, "api.push.apple.com", 443);
  ASSERT_EQ(apns__proxy_feed(p, (const uint8_t *)"\x05", 1, &used), 0);
  ASSERT_ERR(apns__proxy_eof(p), APNS_EPROXY);
  ASSERT_TRUE(contains(apns__proxy_error(p), "SOCKS5 proxy 127.0.0.1:3128 closed the connection"));
  apns__proxy_free(p);
}

TEST(proxy_random_replies_stay_bounded) {
  /* Random bytes after plausible starts, cut at random: whatever a proxy sends, the handshake ends (open, error)
   * or waits, never takes more than it was given, never more than its bound, and frees cleanly. */
  static const char *starts[] = {"HTTP/1.1 200", "HTTP/1.0 407 x\r\n",          "HTTP/1.1 200 OK\r\nA: b\r\n", "",
                                 "\x05\x00",     "\x05\x02\x01\x00\x05\x00\x00"};
  uint32_t seed = 12345;
  int outcomes[3] = {0}; /* waiting, open, refused */
  for (int round = 0; round < 3000; round++) {
    uint8_t buf[600];
    size_t si = (size_t)round % (sizeof starts / sizeof starts[0]), sl = strlen(starts[si]);
    memcpy(buf, starts[si], sl);
    for (size_t i = sl; i < sizeof buf; i++) {
      seed = seed * 1103515245u + 12345u;
      buf[i] = (uint8_t)(seed >> 16);
      /* Mostly printable with CRLFs, so that the parser gets past the first line often enough. */
      if ((seed >> 8) % 4 != 0) buf[i] = (uint8_t)(0x20 + buf[i] % 0x5f);
      if ((seed >> 4) % 13 == 0) buf[i] = '\r';
      if (i > 0 && buf[i - 1] == '\r' && (seed >> 2) % 3 != 0) buf[i] = '\n';
    }
    apns_proxy_type type = si >= 4 ? APNS_PROXY_SOCKS5 : APNS_PROXY_HTTP;
    apns__proxy *p = start(type, si == 5 ? "u" : NULL, si == 5 ? "p" : NULL, "localhost", 443);
    size_t at = 0, total = 0;
    int rv = 0;
    while (rv == 0 && at < sizeof buf) {
      seed = seed * 1103515245u + 12345u;
      size_t n = 1 + (seed >> 16) % 64, used = 0;
      if (n > sizeof buf - at) n = sizeof buf - at;
      rv = apns__proxy_feed(p, buf + at, n, &used);
      ASSERT_LE(used, n);
      if (rv == 0) ASSERT_EQ(used, n);
      at += n;
      total += used;
      uint8_t *o;
      size_t ol;
      apns__proxy_take_output(p, &o, &ol);
      apns__free(o);
    }
    ASSERT_TRUE(rv == 0 || rv == 1 || rv == APNS_EPROXY || rv == APNS_EPROXYAUTH || rv == APNS_EPROXYPROTO);
    ASSERT_LE(total, type == APNS_PROXY_HTTP ? (size_t)APNS__PROXY_MAX_REPLY + 1 : 2 + 2 + 5 + 255 + 2);
    if (rv != 0) ASSERT_TRUE(rv == 1 ? apns__proxy_done(p) : apns__proxy_error(p)[0] != '\0');
    outcomes[rv == 0 ? 0 : rv == 1 ? 1 : 2]++;
    apns__proxy_free(p);
  }
  printf("waiting %d, open %d, refused %d\n", outcomes[0], outcomes[1], outcomes[2]);
  ASSERT_GT(outcomes[1], 0);
  ASSERT_GT(outcomes[2], 0);
}

/* ---- configuration --------------------------------------------------------------------------------------------- */

TEST(proxy_cfg_validation) {
  apns__proxy_cfg *cfg = (apns__proxy_cfg *)1;
  char err[200];
  ASSERT_OK(apns__proxy_cfg_new(&cfg, NULL, NULL, 0));
  ASSERT_NULL(cfg);
  apns_proxy_options o = APNS_PROXY_OPTIONS_INIT;
  ASSERT_OK(apns__proxy_cfg_new(&cfg, &o, NULL, 0));
  ASSERT_NULL(cfg);
  o.type = APNS_PROXY_HTTP;
  ASSERT_ERR(apns__proxy_cfg_new(&cfg, &o, err, sizeof err), APNS_EINVAL);
  ASSERT_TRUE(contains(err, "host is required"));
  o.host = "proxy.example";
  ASSERT_OK(apns__proxy_cfg_new(&cfg, &o, NULL, 0));
  ASSERT_EQ(cfg->port, APNS_PROXY_DEFAULT_PORT);
  ASSERT_NULL(cfg->user);
  apns__proxy_cfg_free(cfg);
  o.user = "a:b";
  ASSERT_ERR(apns__proxy_cfg_new(&cfg, &o, err, sizeof err), APNS_EINVAL);
  ASSERT_TRUE(contains(err, "':'"));
  o.type = APNS_PROXY_SOCKS5; /* ':' is fine in RFC 1929 */
  ASSERT_OK(apns__proxy_cfg_new(&cfg, &o, NULL, 0));
  ASSERT_STREQ(cfg->password, "");
  apns__proxy_cfg_free(cfg);
  char longname[300];
  memset(longname, 'u', 256);
  longname[256] = 0;
  o.user = longname;
  ASSERT_ERR(apns__proxy_cfg_new(&cfg, &o, err, sizeof err), APNS_EINVAL);
  ASSERT_TRUE(contains(err, "255"));
  o.user = NULL;
  o.password = "pw";
  ASSERT_ERR(apns__proxy_cfg_new(&cfg, &o, err, sizeof err), APNS_EINVAL);
  o.password = NULL;
  o.user = "";
  ASSERT_ERR(apns__proxy_cfg_new(&cfg, &o, err, sizeof err), APNS_EINVAL);
  o.user = NULL;
  o.type = (apns_proxy_type)7;
  ASSERT_ERR(apns__proxy_cfg_new(&cfg, &o, err, sizeof err), APNS_EINVAL);
  o.type = APNS_PROXY_HTTP;
  o.host = "bad host";
  ASSERT_ERR(apns__proxy_cfg_new(&cfg, &o, err, sizeof err), APNS_EINVAL);
  /* The target is checked too. */
  o.host = "p";
  ASSERT_OK(apns__proxy_cfg_new(&cfg, &o, NULL, 0));
  apns__proxy *p = (apns__proxy *)1;
  ASSERT_ERR(apns__proxy_new(&p, cfg, "", 443), APNS_EINVAL);
  ASSERT_ERR(apns__proxy_new(&p, cfg, "a\r\nb", 443), APNS_EINVAL);
  ASSERT_NULL(p);
  apns__proxy_cfg_free(cfg);
  ASSERT_STREQ(apns_proxy_type_name(APNS_PROXY_HTTP), "http");
  ASSERT_STREQ(apns_proxy_type_name(APNS_PROXY_SOCKS5), "socks5");
  ASSERT_STREQ(apns_proxy_type_name(APNS_PROXY_NONE), "none");
}

TEST(proxy_alloc_failures) {
  /* Every allocation of a handshake's life may fail: the call says so, and nothing leaks. */
  const uint8_t reply[] = {5, 2, 1, 0, 5, 0, 0, 1, 0, 0, 0, 0, 0, 0};
  for (int type = APNS_PROXY_HTTP; type <= APNS_PROXY_SOCKS5; type++) {
    int ok = 0;
    for (long n = 0; !ok; n++) {
      apns_proxy_options o = {sizeof(apns_proxy_options), (apns_proxy_type)type, "127.0.0.1", 3128, "user", "pass"};
      apns__proxy_cfg *cfg = NULL;
      apns__proxy *p = NULL;
      test_alloc_reset();
      long live = test_alloc_live();
      test_alloc_fail_after(n);
      int rv = apns__proxy_cfg_new(&cfg, &o, NULL, 0);
      if (rv == 0) rv = apns__proxy_new(&p, cfg, "localhost", 443);
      if (rv == 0 && type == APNS_PROXY_SOCKS5) {
        for (size_t i = 0; i < sizeof reply && rv >= 0 && rv != 1; i++) {
          size_t used;
          uint8_t *b;
          size_t bl;
          apns__proxy_take_output(p, &b, &bl);
          apns__free(b);
          rv = apns__proxy_feed(p, reply + i, 1, &used);
        }
      } else if (rv == 0) {
        size_t used;
        rv = feed_all(p, "HTTP/1.1 200 OK\r\n\r\n", &used);
      }
      if (rv < 0) ASSERT_ERR(rv, APNS_ENOMEM);
      ok = rv == 1;
      apns__proxy_free(p);
      apns__proxy_cfg_free(cfg);
      test_alloc_reset();
      ASSERT_EQ(test_alloc_live(), live);
      ASSERT_LT(n, 100);
    }
  }
}

/* ---- URLs and the environment ---------------------------------------------------------------------------------- */

TEST(proxy_parse_url_good) {
  const struct {
    const char *url;
    apns_proxy_type type;
    const char *host;
    int port;
    const char *user, *pass;
  } cases[] = {
      {"http://proxy.example:3128", APNS_PROXY_HTTP, "proxy.example", 3128, NULL, NULL},
      {"http://proxy.example", APNS_PROXY_HTTP, "proxy.example", 1080, NULL, NULL},
      {"HTTP://proxy.example:8080/", APNS_PROXY_HTTP, "proxy.example", 8080, NULL, NULL},
      {"proxy.example:3128", APNS_PROXY_HTTP, "proxy.example", 3128, NULL, NULL},
      {"socks5://10.0.0.1:1080", APNS_PROXY_SOCKS5, "10.0.0.1", 1080, NULL, NULL},
      {"socks5h://u@h:1", APNS_PROXY_SOCKS5, "h", 1, "u", NULL},
      {"http://alice:s3cret@proxy:3128", APNS_PROXY_HTTP, "proxy", 3128, "alice", "s3cret"},
      {"http://al%69ce:p%40ss%3Aw%2fd@proxy:3128", APNS_PROXY_HTTP, "proxy", 3128, "alice", "p@ss:w/d"},
      {"http://alice:p@ss@proxy:3128", APNS_PROXY_HTTP, "proxy", 3128, "alice", "p@ss"},
      {"http://alice:@proxy", APNS_PROXY_HTTP, "proxy", 1080, "alice", ""},
      {"socks5://[::1]:1080", APNS_PROXY_SOCKS5, "::1", 1080, NULL, NULL},
      {"http://u:p@[fe80::1]", APNS_PROXY_HTTP, "fe80::1", 1080, "u", "p"},
      {"http://h:65535", APNS_PROXY_HTTP, "h", 65535, NULL, NULL},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    apns_proxy_options *o = NULL;
    char err[200] = "";
    int rv = apns_proxy_parse_url(cases[i].url, &o, err, sizeof err);
    if (rv != 0) test__fail(__FILE__, __LINE__, "%s: %s", cases[i].url, err);
    ASSERT_EQ(o->type, cases[i].type);
    ASSERT_STREQ(o->host, cases[i].host);
    ASSERT_EQ(o->port, cases[i].port);
    ASSERT_STREQ(o->user, cases[i].user);
    ASSERT_STREQ(o->password, cases[i].pass);
    /* What was parsed is accepted as options. */
    apns__proxy_cfg *cfg;
    ASSERT_OK(apns__proxy_cfg_new(&cfg, o, NULL, 0));
    apns__proxy_cfg_free(cfg);
    apns_proxy_options_free(o);
  }
  apns_proxy_options_free(NULL);
}

TEST(proxy_parse_url_bad) {
  const struct {
    const char *url, *msg;
  } cases[] = {
      {"", "empty"},
      {"https://proxy:443", "HTTPS proxies"},
      {"socks4://proxy:1080", "unsupported scheme \"socks4\""},
      {"socks4a://proxy", "unsupported scheme"},
      {"ftp://proxy", "unsupported scheme"},
      {"http://", "host is empty"},
      {"http://:3128", "host is empty"},
      {"http://user:pw@", "host is empty"},
      {"http://proxy:", "port"},
      {"http://proxy:0", "port"},
      {"http://proxy:65536", "port"},
      {"http://proxy:80a", "port"},
      {"http://proxy:123456", "port"},
      {"http://proxy:3128/path", "path"},
      {"http://proxy:3128?q", "path"},
      {"http://pro xy", "space"},
      {"http://u:p%zz@proxy", "percent-escape"},
      {"http://u:p%4@proxy", "percent-escape"},
      {"http://u:p%@proxy", "percent-escape"},
      {"http://u%00:p@proxy", "percent-escape"},
      {"http://:pw@proxy", "user is empty"},
      {"http://[::1", "without ']'"},
      {"http://[nothost]:80", "not an IPv6 address"},
      {"http://[::1]x:80", "junk"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    apns_proxy_options *o = (apns_proxy_options *)1;
    char err[200] = "";
    int rv = apns_proxy_parse_url(cases[i].url, &o, err, sizeof err);
    if (rv != APNS_EINVAL) test__fail(__FILE__, __LINE__, "%s: %s", cases[i].url, apns_err_name(rv));
    if (!contains(err, cases[i].msg)) test__fail(__FILE__, __LINE__, "%s: \"%s\"", cases[i].url, err);
    ASSERT_TRUE(!contains(err, "pw"));
    ASSERT_NULL(o);
  }
  ASSERT_ERR(apns_proxy_parse_url(NULL, NULL, NULL, 0), APNS_EINVAL);
  /* Out of memory at every step. */
  for (long n = 0;; n++) {
    apns_proxy_options *o = NULL;
    test_alloc_fail_after(n);
    int rv = apns_proxy_parse_url("http://al%69ce:pw@[::1]:3128", &o, NULL, 0);
    test_alloc_reset();
    if (rv == 0) {
      ASSERT_STREQ(o->user, "alice");
      apns_proxy_options_free(o);
      break;
    }
    ASSERT_ERR(rv, APNS_ENOMEM);
    ASSERT_NULL(o);
    ASSERT_LT(n, 20);
  }
}

static void clear_env(void) {
  const char *names[] = {"https_proxy", "HTTPS_PROXY", "all_proxy",  "ALL_PROXY",
                         "no_proxy",    "NO_PROXY",    "http_proxy", "HTTP_PROXY"};
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) unsetenv(names[i]);
}

static char *env_host(const char *host) {
  static char buf[300];
  apns_proxy_options *o = NULL;
  char err[200] = "";
  int rv = apns_proxy_from_env(host, &o, err, sizeof err);
  if (rv != 0) test__fail(__FILE__, __LINE__, "from_env(%s): %s %s", host, apns_err_name(rv), err);
  if (o == NULL) return NULL;
  snprintf(buf, sizeof buf, "%s %s:%u", apns_proxy_type_name(o->type), o->host, o->port);
  apns_proxy_options_free(o);
  return buf;
}

TEST(proxy_from_env_precedence) {
  clear_env();
  ASSERT_NULL(env_host("api.push.apple.com"));
  /* Only the HTTPS and "all" variables matter for APNs; http_proxy is for http:// URLs. */
  setenv("http_proxy", "http://wrong:1", 1);
  setenv("HTTP_PROXY", "http://wrong:2", 1);
  ASSERT_NULL(env_host("api.push.apple.com"));
  setenv("ALL_PROXY", "socks5h://all-upper:1080", 1);
  ASSERT_STREQ(env_host("api.push.apple.com"), "socks5 all-upper:1080");
  setenv("all_proxy", "socks5://all-lower:1081", 1);
  ASSERT_STREQ(env_host("api.push.apple.com"), "socks5 all-lower:1081");
  setenv("HTTPS_PROXY", "http://https-upper:3128", 1);
  ASSERT_STREQ(env_host("api.push.apple.com"), "http https-upper:3128");
  setenv("https_proxy", "https-lower:8080", 1);
  ASSERT_STREQ(env_host("api.push.apple.com"), "http https-lower:8080");
  /* Empty counts as unset. */
  setenv("https_proxy", "", 1);
  ASSERT_STREQ(env_host("api.push.apple.com"), "http https-upper:3128");
  /* A bad value is an error naming the variable. */
  setenv("HTTPS_PROXY", "https://tls-proxy:443", 1);
  apns_proxy_options *o = (apns_proxy_options *)1;
  char err[200];
  ASSERT_ERR(apns_proxy_from_env("api.push.apple.com", &o, err, sizeof err), APNS_EINVAL);
  ASSERT_NULL(o);
  ASSERT_TRUE(contains(err, "HTTPS_PROXY: "));
  ASSERT_TRUE(contains(err, "HTTPS proxies"));
  ASSERT_ERR(apns_proxy_from_env(NULL, &o, err, sizeof err), APNS_EINVAL);
  clear_env();
}

TEST(proxy_from_env_no_proxy) {
  clear_env();
  setenv("https_proxy", "http://u:p@proxy:3128", 1);
  const struct {
    const char *no_proxy, *host;
    int bypass;
  } cases[] = {
      {"*", "api.push.apple.com", 1},
      {"apple.com", "api.push.apple.com", 1},
      {".apple.com", "api.push.apple.com", 1},
      {"APPLE.COM", "api.push.Apple.com", 1},
      {"api.push.apple.com", "api.push.apple.com", 1},
      {"push.apple.com.", "api.push.apple.com", 1},
      {"le.com", "api.push.apple.com", 0}, /* a suffix, but not at a dot */
      {"other.com, apple.com", "api.push.apple.com", 1},
      {" other.com ,  localhost ", "localhost", 1},
      {"other.com", "api.push.apple.com", 0},
      {"127.0.0.1", "127.0.0.1", 1},
      {"127.0.0.1", "127.0.0.10", 0},
      {"0.0.1", "127.0.0.1", 0}, /* IP addresses match whole */
      {"::1", "::1", 1},
      {"[::1]", "0:0::1", 1},
      {"10.0.0.0/8", "10.1.2.3", 0}, /* CIDR not understood */
      {"apple.com:443", "api.push.apple.com", 0},
      {"*.apple.com", "api.push.apple.com", 0},
      {"", "api.push.apple.com", 0},
      {",,", "api.push.apple.com", 0},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    setenv("no_proxy", cases[i].no_proxy, 1);
    char *got = env_host(cases[i].host);
    if ((got == NULL) != cases[i].bypass)
      test__fail(__FILE__, __LINE__, "no_proxy=\"%s\" host %s: %s", cases[i].no_proxy, cases[i].host,
                 got ? got : "bypassed");
  }
  /* NO_PROXY only when no_proxy is unset; an empty no_proxy hides it, as in curl. */
  unsetenv("no_proxy");
  setenv("NO_PROXY", "apple.com", 1);
  ASSERT_NULL(env_host("api.push.apple.com"));
  setenv("no_proxy", "", 1);
  ASSERT_NOT_NULL(env_host("api.push.apple.com"));
  clear_env();
}

TEST(proxy_error_codes) {
  ASSERT_STREQ(apns_err_name(APNS_EPROXY), "APNS_EPROXY");
  ASSERT_STREQ(apns_err_name(APNS_EPROXYAUTH), "APNS_EPROXYAUTH");
  ASSERT_STREQ(apns_err_name(APNS_EPROXYPROTO), "APNS_EPROXYPROTO");
  ASSERT_TRUE(contains(apns_strerror(APNS_EPROXYAUTH), "authentication"));
  /* Appended: the codes before them keep their values (others may be appended between). */
  ASSERT_GT(APNS_EPROXY, APNS_ESTOPPED);
  ASSERT_EQ(APNS_EPROXYAUTH, APNS_EPROXY + 1);
  ASSERT_EQ(APNS_EPROXYPROTO, APNS_EPROXY + 2);
}

/* ---- the handshake against the real daemons, over blocking sockets --------------------------------------------- */

static int tcp_listen(int *port) {
  int s = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a;
  socklen_t len = sizeof a;
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(s, (struct sockaddr *)&a, sizeof a), 0);
  ASSERT_EQ(listen(s, 8), 0);
  ASSERT_EQ(getsockname(s, (struct sockaddr *)&a, &len), 0);
  *port = ntohs(a.sin_port);
  return s;
}

static int tcp_connect(int port) {
  int s = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a;
  struct timeval tv = {10 * test_time_factor(), 0};
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons((uint16_t)port);
  ASSERT_EQ(connect(s, (struct sockaddr *)&a, sizeof a), 0);
  setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  return s;
}

/* Runs the handshake over a socket to the daemon: the result (1, or an error) and the surplus count. */
static int raw_handshake(fx_daemon *d, apns_proxy_type type, const char *user, const char *pass, const char *target,
                         int target_port, int *sock, char *msg, size_t msglen) {
  apns_proxy_options o = {sizeof(apns_proxy_options), type, "127.0.0.1", (uint16_t)fx_daemon_port(d), user, pass};
  apns__proxy_cfg *cfg;
  apns__proxy *p;
  ASSERT_OK(apns__proxy_cfg_new(&cfg, &o, NULL, 0));
  ASSERT_OK(apns__proxy_new(&p, cfg, target, (uint16_t)target_port));
  apns__proxy_cfg_free(cfg);
  int s = tcp_connect(fx_daemon_port(d)), rv = 0;
  while (rv == 0) {
    uint8_t *out, in[4096];
    size_t olen, used;
    apns__proxy_take_output(p, &out, &olen);
    if (olen) ASSERT_EQ(write(s, out, olen), (ssize_t)olen);
    apns__free(out);
    ssize_t n = read(s, in, sizeof in);
    if (n <= 0) {
      ASSERT_EQ(n, 0); /* not a timeout: every answer must come at once */
      rv = apns__proxy_eof(p);
      break;
    }
    rv = apns__proxy_feed(p, in, (size_t)n, &used);
    if (rv == 1) ASSERT_EQ(used, (size_t)n); /* these daemons send nothing after their reply */
  }
  snprintf(msg, msglen, "%s", apns__proxy_error(p));
  apns__proxy_free(p);
  *sock = s;
  return rv;
}

/* The tunnel carries bytes both ways, unchanged. */
static void check_tunnel(int client, int listener) {
  int server = accept(listener, NULL, NULL);
  char buf[16];
  ASSERT_GE(server, 0);
  ASSERT_EQ(write(client, "\x16\x03\x01ping", 7), 7);
  ASSERT_EQ(read(server, buf, sizeof buf), 7);
  ASSERT_MEMEQ(buf, "\x16\x03\x01ping", 7);
  ASSERT_EQ(write(server, "pong", 4), 4);
  ASSERT_EQ(read(client, buf, sizeof buf), 4);
  ASSERT_MEMEQ(buf, "pong", 4);
  close(server);
}

TEST(proxy_raw_tinyproxy) {
  int port, sock;
  char msg[512];
  int l = tcp_listen(&port);
  fx_daemon *d = fx_tinyproxy_start(NULL, NULL, 0);
  ASSERT_EQ(raw_handshake(d, APNS_PROXY_HTTP, NULL, NULL, "localhost", port, &sock, msg, sizeof msg), 1);
  check_tunnel(sock, l);
  close(sock);
  /* Nothing listens there: tinyproxy answers 500. */
  int dead;
  close(tcp_listen(&dead));
  ASSERT_ERR(raw_handshake(d, APNS_PROXY_HTTP, NULL, NULL, "127.0.0.1", dead, &sock, msg, sizeof msg), APNS_EPROXY);
  ASSERT_TRUE(contains(msg, "500"));
  close(sock);
  fx_daemon_stop(d);

  /* ConnectPort allows one port only: any other is refused with 403. */
  d = fx_tinyproxy_start(NULL, NULL, port + 1 == 65536 ? 1 : port + 1);
  ASSERT_ERR(raw_handshake(d, APNS_PROXY_HTTP, NULL, NULL, "localhost", port, &sock, msg, sizeof msg), APNS_EPROXY);
  ASSERT_TRUE(contains(msg, "403"));
  close(sock);
  fx_daemon_stop(d);
  close(l);
}

TEST(proxy_raw_tinyproxy_basic_auth) {
  int port, sock;
  char msg[512];
  int l = tcp_listen(&port);
  fx_daemon *d = fx_tinyproxy_start("alice", "s3cret", port);
  ASSERT_EQ(raw_handshake(d, APNS_PROXY_HTTP, "alice", "s3cret", "localhost", port, &sock, msg, sizeof msg), 1);
  check_tunnel(sock, l);
  close(sock);
  ASSERT_ERR(raw_handshake(d, APNS_PROXY_HTTP, "alice", "wrong", "localhost", port, &sock, msg, sizeof msg),
             APNS_EPROXYAUTH);
  ASSERT_TRUE(contains(msg, "rejected the credentials"));
  ASSERT_TRUE(contains(msg, "401 Unauthorized")); /* tinyproxy's answer to wrong credentials */
  close(sock);
  ASSERT_ERR(raw_handshake(d, APNS_PROXY_HTTP, NULL, NULL, "localhost", port, &sock, msg, sizeof msg),
             APNS_EPROXYAUTH);
  ASSERT_TRUE(contains(msg, "requires authentication"));
  close(sock);
  fx_daemon_stop(d);
  close(l);
}

TEST(proxy_raw_danted) {
  int port, sock;
  char msg[512];
  int l = tcp_listen(&port);
  fx_daemon *d = fx_danted_start(NULL, NULL);
  /* A name: resolved by danted (address type 3). */
  ASSERT_EQ(raw_handshake(d, APNS_PROXY_SOCKS5, NULL, NULL, "localhost", port, &sock, msg, sizeof msg), 1);
  check_tunnel(sock, l);
  close(sock);
  ASSERT_EQ(raw_handshake(d, APNS_PROXY_SOCKS5, NULL, NULL, "127.0.0.1", port, &sock, msg, sizeof msg), 1);
  check_tunnel(sock, l);
  close(sock);
  int dead;
  close(tcp_listen(&dead));
  ASSERT_ERR(raw_handshake(d, APNS_PROXY_SOCKS5, NULL, NULL, "localhost", dead, &sock, msg, sizeof msg), APNS_EPROXY);
  ASSERT_TRUE(contains(msg, "connection refused (reply 5)"));
  close(sock);
  /* Credentials offered to a proxy that needs none: it picks no-auth. */
  ASSERT_EQ(raw_handshake(d, APNS_PROXY_SOCKS5, "u", "p", "localhost", port, &sock, msg, sizeof msg), 1);
  check_tunnel(sock, l);
  close(sock);
  fx_daemon_stop(d);
  close(l);
}

TEST(proxy_raw_danted_username) {
  int port, sock;
  char msg[512];
  int l = tcp_listen(&port);
  fx_daemon *d = fx_danted_start("apnsproxy", "s3cret");
  ASSERT_EQ(raw_handshake(d, APNS_PROXY_SOCKS5, "apnsproxy", "s3cret", "localhost", port, &sock, msg, sizeof msg), 1);
  check_tunnel(sock, l);
  close(sock);
  ASSERT_ERR(raw_handshake(d, APNS_PROXY_SOCKS5, "apnsproxy", "wrong", "localhost", port, &sock, msg, sizeof msg),
             APNS_EPROXYAUTH);
  ASSERT_TRUE(contains(msg, "rejected the credentials"));
  close(sock);
  ASSERT_ERR(raw_handshake(d, APNS_PROXY_SOCKS5, NULL, NULL, "localhost", port, &sock, msg, sizeof msg),
             APNS_EPROXYAUTH);
  ASSERT_TRUE(contains(msg, "accepts none of the authentication methods"));
  close(sock);
  fx_daemon_stop(d);
  close(l);
}

TEST(proxy_raw_daemon_restart) {
  /* The fixture itself: killed, the port refuses; restarted, the same port serves again. */
  int port, sock;
  char msg[512];
  int l = tcp_listen(&port);
  fx_daemon *d = fx_danted_start(NULL, NULL);
  int pport = fx_daemon_port(d);
  fx_daemon_kill(d);
  struct sockaddr_in a;
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons((uint16_t)pport);
  /* The daemon's processes are gone, so the port refuses. A connect can still succeed by chance (the kernel may
   * give the probe's own ephemeral port the same number: a TCP self-connect), so one refusal in a few tries is
   * the proof, not the first try alone. */
  int refused = 0;
  for (int i = 0; i < 20 && !refused; i++) {
    int s = socket(AF_INET, SOCK_STREAM, 0);
    refused = connect(s, (struct sockaddr *)&a, sizeof a) != 0;
    close(s);
  }
  ASSERT_TRUE(refused);
  fx_daemon_restart(d);
  ASSERT_EQ(fx_daemon_port(d), pport);
  ASSERT_EQ(raw_handshake(d, APNS_PROXY_SOCKS5, NULL, NULL, "localhost", port, &sock, msg, sizeof msg), 1);
  check_tunnel(sock, l);
  close(sock);
  ASSERT_TRUE(contains(fx_daemon_output(d), "running"));
  fx_daemon_stop(d);
  close(l);
}

TEST_SUITE(proxy){TEST_ENTRY(proxy_http_request_bytes),
                  TEST_ENTRY(proxy_http_200_opens_tunnel),
                  TEST_ENTRY(proxy_http_tls_bytes_in_same_read),
                  TEST_ENTRY(proxy_http_reply_split_at_every_byte),
                  TEST_ENTRY(proxy_http_407_is_auth_error),
                  TEST_ENTRY(proxy_http_other_statuses_are_proxy_errors),
                  TEST_ENTRY(proxy_http_oversized_reply),
                  TEST_ENTRY(proxy_http_malformed_replies),
                  TEST_ENTRY(proxy_http_eof_before_reply),
                  TEST_ENTRY(proxy_socks5_no_auth),
                  TEST_ENTRY(proxy_socks5_user_password),
                  TEST_ENTRY(proxy_socks5_ip_literals_as_addresses),
                  TEST_ENTRY(proxy_socks5_every_reply_code),
                  TEST_ENTRY(proxy_socks5_wrong_versions_and_methods),
                  TEST_ENTRY(proxy_socks5_split_at_every_byte),
                  TEST_ENTRY(proxy_socks5_eof),
                  TEST_ENTRY(proxy_random_replies_stay_bounded),
                  TEST_ENTRY(proxy_cfg_validation),
                  TEST_ENTRY(proxy_alloc_failures),
                  TEST_ENTRY(proxy_parse_url_good),
                  TEST_ENTRY(proxy_parse_url_bad),
                  TEST_ENTRY(proxy_from_env_precedence),
                  TEST_ENTRY(proxy_from_env_no_proxy),
                  TEST_ENTRY(proxy_error_codes),
                  TEST_ENTRY(proxy_raw_tinyproxy),
                  TEST_ENTRY(proxy_raw_tinyproxy_basic_auth),
                  TEST_ENTRY(proxy_raw_danted),
                  TEST_ENTRY(proxy_raw_danted_username),
                  TEST_ENTRY(proxy_raw_daemon_restart),
                  TEST_SUITE_END};

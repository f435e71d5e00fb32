/* Validators, push types and UTF-8: every check at its edges, and hostile input (NULL, huge, binary). */
#include "harness.h"

#include <apns.h>
#include <jansson.h>

#include "request.h"
#include "validate.h"

/* A string of n (at most 10 240) copies of c, NUL-terminated, in one of a few static buffers used in turn. */
static char *repeat(char c, size_t n) {
  static char bufs[4][10241];
  static int next;
  char *s = bufs[next++ % 4];
  ASSERT_LE(n, 10240);
  memset(s, c, n);
  s[n] = '\0';
  return s;
}

TEST(validate_device_token) {
  ASSERT_OK(apns_validate_device_token("0123456789abcdefABCDEF0123456789abcdef0123456789abcdef0123456789"));
  ASSERT_OK(apns_validate_device_token("00"));
  ASSERT_OK(apns_validate_device_token("aB"));
  ASSERT_ERR(apns_validate_device_token(NULL), APNS_EBADTOKEN);
  ASSERT_ERR(apns_validate_device_token(""), APNS_EBADTOKEN);
  ASSERT_ERR(apns_validate_device_token("0"), APNS_EBADTOKEN);   /* odd */
  ASSERT_ERR(apns_validate_device_token("abc"), APNS_EBADTOKEN); /* odd */
  ASSERT_ERR(apns_validate_device_token("0g"), APNS_EBADTOKEN);
  ASSERT_ERR(apns_validate_device_token("0 "), APNS_EBADTOKEN);
  ASSERT_ERR(apns_validate_device_token("a\r\n0"), APNS_EBADTOKEN);
  ASSERT_ERR(apns_validate_device_token("ab/.."), APNS_EBADTOKEN);
  ASSERT_ERR(apns_validate_device_token("\xc3\xa9\xc3\xa9"), APNS_EBADTOKEN);
  /* Today's 64, and no fixed length: 100 or 200 pass, 202 and 10 KB do not. */
  ASSERT_OK(apns_validate_device_token(repeat('f', 100)));
  ASSERT_OK(apns_validate_device_token(repeat('f', APNS_DEVICE_TOKEN_MAX)));
  ASSERT_ERR(apns_validate_device_token(repeat('f', APNS_DEVICE_TOKEN_MAX + 2)), APNS_EBADTOKEN);
  ASSERT_ERR(apns_validate_device_token(repeat('a', 10240)), APNS_EBADTOKEN);
}

TEST(validate_topic) {
  ASSERT_OK(apns_validate_topic("com.example.app"));
  ASSERT_OK(apns_validate_topic("com.example.app.voip"));
  ASSERT_OK(apns_validate_topic("x"));
  ASSERT_OK(apns_validate_topic("!~"));
  ASSERT_ERR(apns_validate_topic(NULL), APNS_EBADTOPIC);
  ASSERT_ERR(apns_validate_topic(""), APNS_EBADTOPIC);
  ASSERT_ERR(apns_validate_topic("com.example app"), APNS_EBADTOPIC);
  ASSERT_ERR(apns_validate_topic(" com.example"), APNS_EBADTOPIC);
  ASSERT_ERR(apns_validate_topic("com.example\t"), APNS_EBADTOPIC);
  ASSERT_ERR(apns_validate_topic("com.example\r\nx-evil: 1"), APNS_EBADTOPIC);
  ASSERT_ERR(apns_validate_topic("com.\x7f"), APNS_EBADTOPIC);
  ASSERT_ERR(apns_validate_topic("com.caf\xc3\xa9"), APNS_EBADTOPIC);
  ASSERT_OK(apns_validate_topic(repeat('a', APNS_TOPIC_MAX)));
  ASSERT_ERR(apns_validate_topic(repeat('a', APNS_TOPIC_MAX + 1)), APNS_EBADTOPIC);
  ASSERT_ERR(apns_validate_topic(repeat('a', 10240)), APNS_EBADTOPIC);
}

TEST(validate_apns_id) {
  char out[37];
  memset(out, 'x', sizeof out);
  ASSERT_OK(apns_validate_apns_id("123e4567-e89b-12d3-a456-426614174000", out));
  ASSERT_STREQ(out, "123e4567-e89b-12d3-a456-426614174000");
  ASSERT_OK(apns_validate_apns_id("ABCDEF00-E89B-12D3-A456-4266141740FF", out));
  ASSERT_STREQ(out, "abcdef00-e89b-12d3-a456-4266141740ff");
  ASSERT_OK(apns_validate_apns_id("00000000-0000-0000-0000-000000000000", NULL));
  /* In place. */
  char same[37] = "FFFFFFFF-AAAA-BBBB-CCCC-DDDDDDDDDDDD";
  ASSERT_OK(apns_validate_apns_id(same, same));
  ASSERT_STREQ(same, "ffffffff-aaaa-bbbb-cccc-dddddddddddd");

  memcpy(out, "untouched", 10);
  const char *bad[] = {
      "",
      "123e4567e89b12d3a456426614174000",           /* no dashes */
      "123e4567-e89b-12d3-a456-42661417400",        /* 35 */
      "123e4567-e89b-12d3-a456-4266141740000",      /* 37 */
      "123e4567-e89b-12d3-a456_426614174000",       /* wrong separator */
      "123e456-7e89b-12d3-a456-426614174000",       /* dash misplaced */
      "{23e4567-e89b-12d3-a456-426614174000",       /* braces are not canonical */
      "123e4567-e89b-12d3-a456-42661417400g",       /* not hex */
      "123e4567-e89b-12d3-a456-42661417400\n",      /* control */
      "123e4567-e89b-12d3-a456-4266141740\xc3\xa9", /* 36 bytes, not ASCII */
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    ASSERT_ERR(apns_validate_apns_id(bad[i], out), APNS_EBADAPNSID);
  ASSERT_ERR(apns_validate_apns_id(NULL, out), APNS_EBADAPNSID);
  ASSERT_ERR(apns_validate_apns_id(repeat('a', 10240), out), APNS_EBADAPNSID);
  ASSERT_STREQ(out, "untouched");
}

TEST(validate_collapse_id) {
  ASSERT_OK(apns_validate_collapse_id("x"));
  ASSERT_OK(apns_validate_collapse_id("score-update: 3 \xe2\x80\x94 2")); /* UTF-8 and inner spaces are fine */
  ASSERT_OK(apns_validate_collapse_id(repeat('c', APNS_COLLAPSE_ID_MAX)));
  ASSERT_ERR(apns_validate_collapse_id(repeat('c', APNS_COLLAPSE_ID_MAX + 1)), APNS_EBADCOLLAPSEID);
  ASSERT_ERR(apns_validate_collapse_id(repeat('c', 10240)), APNS_EBADCOLLAPSEID);
  ASSERT_ERR(apns_validate_collapse_id(NULL), APNS_EBADCOLLAPSEID);
  ASSERT_ERR(apns_validate_collapse_id(""), APNS_EBADCOLLAPSEID);
  ASSERT_ERR(apns_validate_collapse_id("a\rb"), APNS_EBADCOLLAPSEID);
  ASSERT_ERR(apns_validate_collapse_id("a\nb"), APNS_EBADCOLLAPSEID);
  ASSERT_ERR(apns_validate_collapse_id(" a"), APNS_EBADCOLLAPSEID);
  /* The message names every way the id can be wrong, not only its length (CR/LF used to read "longer than 64"). */
  ASSERT_TRUE(strstr(apns_strerror(APNS_EBADCOLLAPSEID), "64 bytes") != NULL);
  ASSERT_TRUE(strstr(apns_strerror(APNS_EBADCOLLAPSEID), "CR, LF") != NULL);
  ASSERT_TRUE(strstr(apns_strerror(APNS_EBADCOLLAPSEID), "empty") != NULL);
  ASSERT_ERR(apns_validate_collapse_id("a\t"), APNS_EBADCOLLAPSEID);
}

TEST(validate_priority) {
  for (int t = APNS_PUSH_TYPE_DEFAULT; t < APNS__PUSH_TYPE_COUNT; t++) {
    ASSERT_OK(apns_validate_priority(5, (apns_push_type)t));
    ASSERT_OK(apns_validate_priority(1, (apns_push_type)t));
    ASSERT_ERR(apns_validate_priority(10, (apns_push_type)t), t == APNS_PUSH_TYPE_BACKGROUND ? APNS_EBADPRIORITY : 0);
    int bad[] = {0, -1, 2, 4, 6, 9, 11, 100, -10};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
      ASSERT_ERR(apns_validate_priority(bad[i], (apns_push_type)t), APNS_EBADPRIORITY);
  }
  ASSERT_ERR(apns_validate_priority(10, APNS__PUSH_TYPE_COUNT), APNS_EBADPUSHTYPE);
  ASSERT_ERR(apns_validate_priority(10, (apns_push_type)-1), APNS_EBADPUSHTYPE);
}

TEST(validate_expiration) {
  ASSERT_OK(apns_validate_expiration(0));
  ASSERT_OK(apns_validate_expiration(1700000000));
  ASSERT_OK(apns_validate_expiration(INT64_MAX));
  ASSERT_ERR(apns_validate_expiration(-1), APNS_EINVAL);
  ASSERT_ERR(apns_validate_expiration(INT64_MIN), APNS_EINVAL);
}

TEST(validate_push_types) {
  static const struct {
    apns_push_type type;
    const char *name, *suffix;
    int priority;
  } table[] = {
      {APNS_PUSH_TYPE_ALERT, "alert", "", 10},
      {APNS_PUSH_TYPE_BACKGROUND, "background", "", 5},
      {APNS_PUSH_TYPE_LOCATION, "location", ".location-query", 10},
      {APNS_PUSH_TYPE_VOIP, "voip", ".voip", 10},
      {APNS_PUSH_TYPE_COMPLICATION, "complication", ".complication", 10},
      {APNS_PUSH_TYPE_FILEPROVIDER, "fileprovider", ".pushkit.fileprovider", 10},
      {APNS_PUSH_TYPE_MDM, "mdm", "", 10},
      {APNS_PUSH_TYPE_LIVEACTIVITY, "liveactivity", ".push-type.liveactivity", 10},
      {APNS_PUSH_TYPE_PUSHTOTALK, "pushtotalk", ".voip-ptt", 10},
      {APNS_PUSH_TYPE_WIDGETS, "widgets", ".push-type.widgets", 10},
      {APNS_PUSH_TYPE_CONTROLS, "controls", ".push-type.controls", 10},
  };
  ASSERT_EQ(sizeof table / sizeof table[0], APNS__PUSH_TYPE_COUNT - 1);
  for (size_t i = 0; i < sizeof table / sizeof table[0]; i++) {
    apns_push_type t = APNS_PUSH_TYPE_DEFAULT;
    ASSERT_STREQ(apns_push_type_string(table[i].type), table[i].name);
    ASSERT_OK(apns_push_type_from_string(table[i].name, &t));
    ASSERT_EQ(t, table[i].type);
    ASSERT_STREQ(apns_push_type_topic_suffix(table[i].type), table[i].suffix);
    ASSERT_EQ(apns_push_type_default_priority(table[i].type), table[i].priority);
    ASSERT_OK(apns_validate_priority(apns_push_type_default_priority(table[i].type), table[i].type));
    ASSERT_UEQ(apns_payload_limit(table[i].type), table[i].type == APNS_PUSH_TYPE_VOIP ? 5120 : 4096);
  }
  ASSERT_NULL(apns_push_type_string(APNS_PUSH_TYPE_DEFAULT));
  ASSERT_STREQ(apns_push_type_topic_suffix(APNS_PUSH_TYPE_DEFAULT), "");
  ASSERT_EQ(apns_push_type_default_priority(APNS_PUSH_TYPE_DEFAULT), 10);
  ASSERT_UEQ(apns_payload_limit(APNS_PUSH_TYPE_DEFAULT), APNS_PAYLOAD_MAX);
  ASSERT_NULL(apns_push_type_string(APNS__PUSH_TYPE_COUNT));
  ASSERT_NULL(apns_push_type_string((apns_push_type)-1));
  ASSERT_NULL(apns_push_type_topic_suffix((apns_push_type)99));
  ASSERT_EQ(apns_push_type_default_priority((apns_push_type)99), 0);

  apns_push_type t = APNS_PUSH_TYPE_VOIP;
  const char *bad[] = {"", "Alert", "ALERT", "alert ", "voip-ptt", "broadcast", "default"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    ASSERT_ERR(apns_push_type_from_string(bad[i], &t), APNS_EBADPUSHTYPE);
  ASSERT_ERR(apns_push_type_from_string(NULL, &t), APNS_EBADPUSHTYPE);
  ASSERT_EQ(t, APNS_PUSH_TYPE_VOIP); /* untouched on error */
  ASSERT_ERR(apns_push_type_from_string("alert", NULL), APNS_EINVAL);
}

TEST(validate_header_name) {
  ASSERT_TRUE(apns__header_name_valid("apns-topic", 10));
  const char *all_tchars = "x-a_b.c~1!#$%&'*+^`|";
  ASSERT_TRUE(apns__header_name_valid(all_tchars, strlen(all_tchars)));
  ASSERT_TRUE(apns__header_name_valid("a", 1));
  ASSERT_TRUE(apns__header_name_valid("tea", 3)); /* only "te" itself is connection-specific */
  ASSERT_TRUE(!apns__header_name_valid("", 0));
  ASSERT_TRUE(!apns__header_name_valid(NULL, 0));
  ASSERT_TRUE(!apns__header_name_valid("Apns-Topic", 10));
  ASSERT_TRUE(!apns__header_name_valid(":path", 5));
  ASSERT_TRUE(!apns__header_name_valid("a b", 3));
  ASSERT_TRUE(!apns__header_name_valid("a:b", 3));
  ASSERT_TRUE(!apns__header_name_valid("a\r\nb", 4));
  ASSERT_TRUE(!apns__header_name_valid("a\0b", 3));
  ASSERT_TRUE(!apns__header_name_valid("caf\xc3\xa9", 5));
  ASSERT_TRUE(!apns__header_name_valid("a\"", 2));
  const char *forbidden[] = {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade", "te"};
  for (size_t i = 0; i < sizeof forbidden / sizeof forbidden[0]; i++)
    ASSERT_TRUE(!apns__header_name_valid(forbidden[i], strlen(forbidden[i])));
  /* The length given is what counts, not a NUL further on. */
  ASSERT_TRUE(apns__header_name_valid("apns-id\r\n", 7));
}

TEST(validate_header_value) {
  ASSERT_TRUE(apns__header_value_valid("", 0));
  ASSERT_TRUE(apns__header_value_valid(NULL, 0));
  ASSERT_TRUE(apns__header_value_valid("bearer a.b.c", 12));
  ASSERT_TRUE(apns__header_value_valid("caf\xc3\xa9", 5)); /* obs-text is legal in a value */
  ASSERT_TRUE(apns__header_value_valid("a\tb", 3));
  ASSERT_TRUE(!apns__header_value_valid(NULL, 1));
  ASSERT_TRUE(!apns__header_value_valid("a\rb", 3));
  ASSERT_TRUE(!apns__header_value_valid("a\nb", 3));
  ASSERT_TRUE(!apns__header_value_valid("a\0b", 3));
  ASSERT_TRUE(!apns__header_value_valid("ab\r", 3));
  ASSERT_TRUE(!apns__header_value_valid(" ab", 3));
  ASSERT_TRUE(!apns__header_value_valid("ab ", 3));
  ASSERT_TRUE(!apns__header_value_valid("\tab", 3));
  ASSERT_TRUE(!apns__header_value_valid(" ", 1));

  ASSERT_OK(apns_validate_header("apns-topic", "com.example"));
  ASSERT_OK(apns_validate_header("x-empty", ""));
  ASSERT_ERR(apns_validate_header("apns-topic", "com.example\r\nx-evil: 1"), APNS_EBADHEADER);
  ASSERT_ERR(apns_validate_header("Apns-Topic", "x"), APNS_EBADHEADER);
  ASSERT_ERR(apns_validate_header(":authority", "x"), APNS_EBADHEADER);
  ASSERT_ERR(apns_validate_header(NULL, "x"), APNS_EBADHEADER);
  ASSERT_ERR(apns_validate_header("a", NULL), APNS_EBADHEADER);
  ASSERT_ERR(apns_validate_header("connection", "close"), APNS_EBADHEADER);
}

TEST(validate_utf8) {
  static const struct {
    const char *s;
    size_t len;
    int ok;
  } cases[] = {
      {"", 0, 1},
      {"plain ASCII", 11, 1},
      {"\x00", 1, 1},             /* NUL is UTF-8; callers refuse it where they must */
      {"\xc2\x80", 2, 1},         /* U+0080, smallest 2-byte */
      {"\xdf\xbf", 2, 1},         /* U+07FF */
      {"\xe0\xa0\x80", 3, 1},     /* U+0800, smallest 3-byte */
      {"\xed\x9f\xbf", 3, 1},     /* U+D7FF, just below the surrogates */
      {"\xee\x80\x80", 3, 1},     /* U+E000, just above */
      {"\xef\xbf\xbf", 3, 1},     /* U+FFFF */
      {"\xf0\x90\x80\x80", 4, 1}, /* U+10000 */
      {"\xf4\x8f\xbf\xbf", 4, 1}, /* U+10FFFF, the last */
      {"\xf0\x9f\x98\x80", 4, 1}, /* an emoji */
      {"\x80", 1, 0},             /* lone continuation */
      {"\xbf", 1, 0},
      {"\xc0\x80", 2, 0},         /* overlong NUL */
      {"\xc1\xbf", 2, 0},         /* overlong */
      {"\xc2", 1, 0},             /* truncated */
      {"\xc2\x41", 2, 0},         /* bad continuation */
      {"\xe0\x9f\xbf", 3, 0},     /* overlong 3-byte */
      {"\xed\xa0\x80", 3, 0},     /* U+D800 surrogate */
      {"\xed\xbf\xbf", 3, 0},     /* U+DFFF surrogate */
      {"\xe2\x82", 2, 0},         /* truncated */
      {"\xf0\x8f\xbf\xbf", 4, 0}, /* overlong 4-byte */
      {"\xf4\x90\x80\x80", 4, 0}, /* U+110000 */
      {"\xf5\x80\x80\x80", 4, 0},
      {"\xff", 1, 0},
      {"\xfe", 1, 0},
      {"\xf0\x9f\x98", 3, 0}, /* truncated emoji */
      {"ok\xf0\x9f\x98\x80"
       "then\x80",
       11, 0},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    if (apns__utf8_valid(cases[i].s, cases[i].len) != cases[i].ok)
      test__fail(__FILE__, __LINE__, "case %zu: expected %d", i, cases[i].ok);
  }
  /* The length bounds the scan: a truncated sequence at the end is caught even if bytes follow in memory. */
  ASSERT_TRUE(!apns__utf8_valid("\xe2\x82\xac", 2));
  ASSERT_TRUE(apns__utf8_valid("\xe2\x82\xac", 3));
}

TEST(validate_json_grammar) {
  /* Each case is judged by our checker and by jansson (any value at the top): they must agree, since a jansson
   * failure on text we accept is taken for an allocation failure. */
  static const struct {
    const char *s;
    int ok;
  } cases[] = {
      {"{}", 1},
      {"[]", 1},
      {" \t\r\n{ } \n", 1},
      {"{\"a\":1}", 1},
      {"{\"a\" : [1, -2.5e+3, 0, -0, 0.0e0]}", 1},
      {"[true,false,null]", 1},
      {"\"s\"", 1},
      {"0", 1},
      {"-1", 1},
      {"1E5", 1},
      {"1e-5", 1},
      {"[[[[]]]]", 1},
      {"{\"a\":{\"b\":{\"c\":[{}]}}}", 1},
      {"\"esc \\\" \\\\ \\/ \\b \\f \\n \\r \\t \\u00e9 \\uD83D\\uDE00\"", 1},
      {"\"caf\xc3\xa9\"", 1},
      {"", 0},
      {" ", 0},
      {"{", 0},
      {"}", 0},
      {"[", 0},
      {"[1,]", 0},
      {"[,1]", 0},
      {"{\"a\":1,}", 0},
      {"{,}", 0},
      {"{\"a\"}", 0},
      {"{\"a\":}", 0},
      {"{a:1}", 0},
      {"{'a':1}", 0},
      {"{1:1}", 0},
      {"[1 2]", 0},
      {"{}{}", 0},
      {"{} x", 0},
      {"[1]]", 0},
      {"[}", 0},
      {"{]", 0},
      {"01", 0},
      {"-", 0},
      {"+1", 0},
      {"1.", 0},
      {".5", 0},
      {"1e", 0},
      {"1e+", 0},
      {"0x10", 0},
      {"NaN", 0},
      {"Infinity", 0},
      {"tru", 0},
      {"truex", 0},
      {"nul", 0},
      {"True", 0},
      {"\"abc", 0},
      {"\"a\x01\"", 0},
      {"\"a\tb\"", 0},
      {"\"\\x\"", 0},
      {"\"\\u12\"", 0},
      {"\"\\u12g4\"", 0},
      {"\"\\u0000\"", 0},
      {"\"\\uD800\"", 0},
      {"\"\\uDC00\"", 0},
      {"\"\\uD800\\u0041\"", 0},
      {"\"\\uD800x\"", 0},
      {"\"\\", 0},
      {"[1] // c", 0},
      {"/* c */ 1", 0},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    const char *s = cases[i].s;
    int ours = apns__json_valid(s, strlen(s), 1);
    json_t *v = json_loadb(s, strlen(s), JSON_DECODE_ANY, NULL);
    int theirs = v != NULL;
    json_decref(v);
    if (ours != cases[i].ok || theirs != cases[i].ok)
      test__fail(__FILE__, __LINE__, "case %zu '%s': ours %d, jansson %d, want %d", i, s, ours, theirs, cases[i].ok);
  }
  /* The top level must be a container unless any_top. */
  ASSERT_TRUE(!apns__json_valid("1", 1, 0));
  ASSERT_TRUE(!apns__json_valid("\"s\"", 3, 0));
  ASSERT_TRUE(apns__json_valid("[1]", 3, 0));
  ASSERT_TRUE(!apns__json_valid(NULL, 0, 1));
  /* Bytes past len are not read; a NUL inside len is not whitespace. */
  ASSERT_TRUE(apns__json_valid("[1]]]", 3, 0));
  ASSERT_TRUE(!apns__json_valid("[1]\0", 4, 0));
  ASSERT_TRUE(!apns__json_valid("[\"\0\"]", 5, 0));
  /* Depth: as deep as jansson goes and no deeper, without recursion. */
  char deep[2 * (APNS__JSON_MAX_DEPTH + 1)];
  memset(deep, '[', APNS__JSON_MAX_DEPTH);
  memset(deep + APNS__JSON_MAX_DEPTH, ']', APNS__JSON_MAX_DEPTH);
  ASSERT_TRUE(apns__json_valid(deep, 2 * APNS__JSON_MAX_DEPTH, 0));
  json_t *at_limit = json_loadb(deep, 2 * APNS__JSON_MAX_DEPTH, 0, NULL);
  ASSERT_NOT_NULL(at_limit);
  json_decref(at_limit);
  memset(deep, '[', APNS__JSON_MAX_DEPTH + 1);
  memset(deep + APNS__JSON_MAX_DEPTH + 1, ']', APNS__JSON_MAX_DEPTH + 1);
  ASSERT_TRUE(!apns__json_valid(deep, 2 * (APNS__JSON_MAX_DEPTH + 1), 0));
  json_t *v = json_loadb(deep, 2 * (APNS__JSON_MAX_DEPTH + 1), 0, NULL);
  ASSERT_NULL(v); /* jansson 2.14 refuses this depth too (pinned) */
  /* Numbers that overflow are grammar-valid: jansson refuses them with json_error_numeric_overflow (pinned). */
  json_error_t error;
  ASSERT_TRUE(apns__json_valid("1e400", 5, 1));
  ASSERT_NULL(json_loadb("1e400", 5, JSON_DECODE_ANY, &error));
  ASSERT_EQ(json_error_code(&error), json_error_numeric_overflow);
  ASSERT_NULL(json_loadb("[99999999999999999999]", 22, 0, &error));
  ASSERT_EQ(json_error_code(&error), json_error_numeric_overflow);
  ASSERT_NULL(json_loadb("{\"a\":1,\"a\":1}", 13, JSON_REJECT_DUPLICATES, &error));
  ASSERT_EQ(json_error_code(&error), json_error_duplicate_key);
}

TEST(validate_json_number_text) {
  static const struct {
    const char *printed, *json;
  } cases[] = {
      {"0.8", "0.8"},
      {"0,8", "0.8"}, /* de_DE and friends */
      {"3\xd9\xab"
       "14",
       "3.14"}, /* a two-byte decimal point (U+066B) */
      {"1.5e+20", "1.5e+20"},
      {"1,5E-07", "1.5e-07"},
      {"2", "2.0"},
      {"-0", "-0.0"},
      {"1e+300", "1e+300"},
      {"-12345", "-12345.0"},
  };
  char out[32];
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    size_t len = apns__json_number_text(cases[i].printed, out);
    ASSERT_STREQ(out, cases[i].json);
    ASSERT_UEQ(len, strlen(cases[i].json));
    ASSERT_TRUE(apns__json_valid(out, len, 1));
  }
}

/* The public face of the UTF-8 check, as bulk senders use it. */
TEST(validate_utf8_public) {
  ASSERT_OK(apns_validate_utf8("", 0));
  ASSERT_OK(apns_validate_utf8(NULL, 0));
  ASSERT_ERR(apns_validate_utf8(NULL, 1), APNS_EINVAL);
  ASSERT_OK(apns_validate_utf8("caf\xc3\xa9 \xf0\x9f\x98\x80", 10));
  ASSERT_OK(apns_validate_utf8("a\0b", 3));
  ASSERT_ERR(apns_validate_utf8("\xc0\xaf", 2), APNS_EBADUTF8);         /* overlong '/' */
  ASSERT_ERR(apns_validate_utf8("\xed\xa0\x80", 3), APNS_EBADUTF8);     /* a surrogate */
  ASSERT_ERR(apns_validate_utf8("\xf4\x90\x80\x80", 4), APNS_EBADUTF8); /* above U+10FFFF */
  ASSERT_ERR(apns_validate_utf8("\xc3", 1), APNS_EBADUTF8);             /* cut short */
}

/* ---- apns_json_scan: the tree-free check behind raw payloads ---- */

TEST(validate_json_scan_result) {
  apns_json_scan_result r;
  char dst[16];
  const char *t = "xx{\"aps\":{\"content-available\":1}, \"k\" : [1, \"a\"]} tail";
  ASSERT_OK(apns_json_scan(t, strlen(t), 2, 1, APNS_JSON_SCAN_PAYLOAD, NULL, 0, &r));
  ASSERT_EQ((int)r.end, (int)(strchr(t, '}') - t) + 1 + (int)strlen(", \"k\" : [1, \"a\"]}"));
  ASSERT_EQ(r.type, '{');
  ASSERT_EQ((int)r.members, 2);
  ASSERT_TRUE(r.aps_seen && r.aps_object && r.background && r.spaced && !r.unsure);
  /* A string at the top is unescaped; its length is the whole one even when cut. */
  t = "\"a\\u00e9\\n\"";
  ASSERT_OK(apns_json_scan(t, strlen(t), 0, 1, 0, dst, sizeof dst, &r));
  ASSERT_STREQ(dst, "a\xc3\xa9\n");
  ASSERT_EQ((int)r.string_len, 4);
  ASSERT_TRUE(r.escaped);
  ASSERT_OK(apns_json_scan(t, strlen(t), 0, 1, 0, dst, 2, &r));
  ASSERT_EQ(memcmp(dst, "a\xc3", 2), 0);
  ASSERT_EQ((int)r.string_len, 4);
  /* Integers: range checked, unless the caller takes big ones. */
  t = "-9223372036854775808";
  ASSERT_OK(apns_json_scan(t, strlen(t), 0, 1, 0, NULL, 0, &r));
  ASSERT_TRUE(r.type == '0' && r.integer && r.fits && r.value == INT64_MIN);
  t = "9223372036854775808";
  ASSERT_ERR(apns_json_scan(t, strlen(t), 0, 1, 0, NULL, 0, &r), APNS_EBADJSON);
  ASSERT_STREQ(r.syntax, "integer too big");
  ASSERT_OK(apns_json_scan(t, strlen(t), 0, 1, APNS_JSON_SCAN_BIG_INTEGER, NULL, 0, &r));
  ASSERT_TRUE(r.integer && !r.fits);
  t = "1e999";
  ASSERT_OK(apns_json_scan(t, strlen(t), 0, 1, 0, NULL, 0, &r));
  ASSERT_TRUE(!r.integer && r.unsure);
  /* Errors say what and where. */
  t = "{\"a\":1,\"a\":2}";
  ASSERT_ERR(apns_json_scan(t, strlen(t), 0, 1, 0, NULL, 0, &r), APNS_EBADJSON);
  ASSERT_STREQ(r.syntax, "duplicate object key");
  ASSERT_EQ((int)r.end, 7);
  t = "{\"a\":\"\xff\"}";
  ASSERT_ERR(apns_json_scan(t, strlen(t), 0, 1, 0, NULL, 0, &r), APNS_EBADJSON);
  ASSERT_STREQ(r.syntax, "invalid UTF-8");
  ASSERT_ERR(apns_json_scan(t, strlen(t), 0, APNS_JSON_MAX_DEPTH + 1, 0, NULL, 0, &r), APNS_EBADJSON);
  ASSERT_STREQ(r.syntax, "too deeply nested");
  ASSERT_ERR(apns_json_scan(NULL, 0, 0, 1, 0, NULL, 0, &r), APNS_EINVAL);
  ASSERT_ERR(apns_json_scan(t, 2, 3, 1, 0, NULL, 0, &r), APNS_EINVAL);
  ASSERT_ERR(apns_json_scan(t, 2, 0, 1, 0, NULL, 0, NULL), APNS_EINVAL);
}

/* The old check, on a jansson tree: what the scan must answer, code for code. */
static int tree_check(const char *json, size_t len, int *background) {
  size_t i = 0;
  while (i < len && (json[i] == ' ' || json[i] == '\t' || json[i] == '\n' || json[i] == '\r')) i++;
  if (i == len) return APNS_EPAYLOADEMPTY;
  if (!apns__utf8_valid(json, len)) return APNS_EBADUTF8;
  json_t *root = json_loadb(json, len, JSON_REJECT_DUPLICATES, NULL);
  if (root == NULL) return APNS_EBADJSON;
  json_t *aps = json_object_get(root, "aps");
  int err = !json_is_object(root)                 ? APNS_EBADJSON
            : json_object_size(root) == 0         ? APNS_EPAYLOADEMPTY
            : aps != NULL && !json_is_object(aps) ? APNS_EBADJSON
                                                  : 0;
  json_t *ca = json_object_get(aps, "content-available");
  *background = err == 0 && json_is_integer(ca) && json_integer_value(ca) == 1 &&
                json_object_get(aps, "alert") == NULL && json_object_get(aps, "badge") == NULL &&
                json_object_get(aps, "sound") == NULL;
  json_decref(root);
  return err;
}

TEST(validate_raw_payload_matches_jansson) {
  static const char *const seeds[] = {
      "{\"aps\":{\"alert\":\"hi\",\"badge\":1}}",
      "{\"aps\":{\"content-available\":1},\"id\":[1,2.5e3,-0,{\"n\":null,\"t\":true}]}",
      " {\"aps\" : {\"content-available\" : 1 , \"sound\":\"x\"} } ",
      "{\"a\":\"caf\xc3\xa9 \\u00e9 \\ud83d\\ude00\",\"b\":{\"c\":{\"d\":[]}}}",
      "{\"aps\":[],\"x\":false}",
      "{}",
  };
  uint64_t x = 0x9e3779b97f4a7c15ull;
  char text[256];
  int ok = 0, refused = 0;
  for (int it = 0; it < 40000; it++) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    const char *seed = seeds[x % (sizeof seeds / sizeof seeds[0])];
    size_t n = strlen(seed);
    memcpy(text, seed, n);
    int muts = it < 50 ? 0 : 1 + (int)(x >> 8) % 3;
    for (int m = 0; m < muts; m++) {
      static const char bytes[] = "{}[]\":,\\ u0123456789.eE-+tfnlxa\xff\xc3\x01";
      x ^= x << 13, x ^= x >> 7, x ^= x << 17;
      size_t at = (size_t)(x % (n + 1));
      char b = bytes[(x >> 20) % (sizeof bytes - 1)];
      int op = (int)((x >> 40) % 3);
      if (op == 0 && n < sizeof text - 1) {
        memmove(text + at + 1, text + at, n - at);
        text[at] = b;
        n++;
      } else if (op == 1 && at < n) {
        memmove(text + at, text + at + 1, n - at - 1);
        n--;
      } else if (at < n) {
        text[at] = b;
      }
    }
    int want_bg = 0, got_bg = 0;
    int want = tree_check(text, n, &want_bg);
    apns_notification *pn = NULL;
    int got = apns_notification_new_raw(&pn, text, n);
    if (got == 0) got_bg = apns_notification_is_background(pn);
    apns_notification_free(pn);
    if (got != want || got_bg != want_bg)
      test__fail(__FILE__, __LINE__, "%s (background %d) where jansson gives %s (%d): %.*s", apns_err_name(got),
                 got_bg, apns_err_name(want), want_bg, (int)n, text);
    ASSERT_EQ(apns_validate_payload(text, n, 0), want);
    if (want == 0)
      ok++;
    else
      refused++;
  }
  ASSERT_GT(ok, 1000);
  ASSERT_GT(refused, 1000);
}

TEST_SUITE(validate){
    TEST_ENTRY(validate_json_scan_result), TEST_ENTRY(validate_raw_payload_matches_jansson),
    TEST_ENTRY(validate_device_token),     TEST_ENTRY(validate_topic),
    TEST_ENTRY(validate_apns_id),          TEST_ENTRY(validate_collapse_id),
    TEST_ENTRY(validate_priority),         TEST_ENTRY(validate_expiration),
    TEST_ENTRY(validate_push_types),       TEST_ENTRY(validate_header_name),
    TEST_ENTRY(validate_header_value),     TEST_ENTRY(validate_utf8),
    TEST_ENTRY(validate_utf8_public),      TEST_ENTRY(validate_json_grammar),
    TEST_ENTRY(validate_json_number_text), TEST_SUITE_END,
};

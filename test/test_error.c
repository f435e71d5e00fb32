/* Error codes and APNs reasons. */
#include "harness.h"

#include <apns.h>
#include <uv.h>

TEST(error_every_code_has_name_and_message) {
  int seen = 0;
  for (int e = APNS__ERR_FIRST + 1; e < APNS__ERR_LAST; e++) {
    const char *name = apns_err_name(e), *msg = apns_strerror(e);
    ASSERT_NOT_NULL(name);
    ASSERT_NOT_NULL(msg);
    ASSERT_EQ(strncmp(name, "APNS_E", 6), 0);
    ASSERT_NE(strcmp(msg, "unknown error"), 0);
    ASSERT_GT(strlen(msg), 5);
    seen++;
  }
  ASSERT_GE(seen, 11);
  ASSERT_STREQ(apns_err_name(APNS_ETIMEDOUT), "APNS_ETIMEDOUT");
  ASSERT_STREQ(apns_err_name(APNS_EBLOCKED), "APNS_EBLOCKED");
  ASSERT_STREQ(apns_strerror(0), "success");
}

TEST(error_range_apart_from_libuv) {
  /* libuv's codes must pass through untouched and keep their own names. */
  ASSERT_LT(APNS_EINVAL, -4096 * 2);
  ASSERT_STREQ(apns_err_name(UV_ECONNREFUSED), "ECONNREFUSED");
  ASSERT_STREQ(apns_strerror(UV_ECONNREFUSED), uv_strerror(UV_ECONNREFUSED));
  ASSERT_STREQ(apns_err_name(UV_EAI_NONAME), "EAI_NONAME");
  ASSERT_STREQ(apns_err_name(APNS__ERR_LAST), "UNKNOWN");
  ASSERT_STREQ(apns_strerror(12345), "unknown error");
}

TEST(error_codes_are_distinct) {
  int codes[] = {
#define X(name, msg) APNS_##name,
      APNS_ERRNO_MAP(X)
#undef X
  };
  size_t n = sizeof codes / sizeof codes[0];
  for (size_t i = 0; i < n; i++)
    for (size_t j = i + 1; j < n; j++) ASSERT_NE(codes[i], codes[j]);
}

TEST(reason_round_trip) {
  for (int r = APNS_REASON_UNKNOWN + 1; r < APNS__REASON_COUNT; r++) {
    const char *s = apns_reason_string((apns_reason)r);
    ASSERT_NOT_NULL(s);
    ASSERT_EQ(apns_reason_from_string(s, strlen(s)), r);
    ASSERT_GE(apns_reason_status((apns_reason)r), 400);
  }
  ASSERT_EQ(apns_reason_from_string("BadEnvironmentKeyIdInToken", 26), APNS_REASON_BadEnvironmentKeyIdInToken);
  ASSERT_EQ(apns_reason_from_string("BadEnvironmentKeyInToken", 24), APNS_REASON_BadEnvironmentKeyInToken);
  ASSERT_EQ(apns_reason_from_string("Unregistered", 12), APNS_REASON_Unregistered);
  ASSERT_EQ(apns_reason_status(APNS_REASON_Unregistered), 410);
  ASSERT_EQ(apns_reason_status(APNS_REASON_PayloadTooLarge), 413);
  ASSERT_STREQ(apns_reason_string(APNS_REASON_TopicMismatch), "TopicMismatch");
}

TEST(reason_unknown_and_edges) {
  ASSERT_EQ(apns_reason_from_string("", 0), APNS_REASON_NONE);
  ASSERT_EQ(apns_reason_from_string(NULL, 5), APNS_REASON_NONE);
  ASSERT_EQ(apns_reason_from_string("SomethingNew", 12), APNS_REASON_UNKNOWN);
  ASSERT_EQ(apns_reason_from_string("unregistered", 12), APNS_REASON_UNKNOWN);
  /* A prefix of a known reason is not that reason. */
  ASSERT_EQ(apns_reason_from_string("Unregistered", 5), APNS_REASON_UNKNOWN);
  ASSERT_STREQ(apns_reason_string(APNS_REASON_NONE), "");
  ASSERT_STREQ(apns_reason_string(APNS_REASON_UNKNOWN), "Unknown");
  ASSERT_NULL(apns_reason_string(APNS__REASON_COUNT));
  ASSERT_NULL(apns_reason_string((apns_reason)-1));
  ASSERT_EQ(apns_reason_status(APNS_REASON_UNKNOWN), 0);
}

TEST(reason_classes) {
  ASSERT_TRUE(apns_reason_is_token_dead(APNS_REASON_Unregistered));
  ASSERT_TRUE(apns_reason_is_token_dead(APNS_REASON_ExpiredToken));
  ASSERT_TRUE(apns_reason_is_token_dead(APNS_REASON_BadDeviceToken));
  ASSERT_TRUE(apns_reason_is_token_dead(APNS_REASON_DeviceTokenNotForTopic));
  ASSERT_TRUE(!apns_reason_is_token_dead(APNS_REASON_TooManyRequests));
  ASSERT_TRUE(!apns_reason_is_token_dead(APNS_REASON_NONE));
  ASSERT_TRUE(apns_reason_is_retryable(APNS_REASON_ServiceUnavailable));
  ASSERT_TRUE(apns_reason_is_retryable(APNS_REASON_Shutdown));
  ASSERT_TRUE(apns_reason_is_retryable(APNS_REASON_InternalServerError));
  /* Never retry what Apple says must not be retried. */
  apns_reason never[] = {APNS_REASON_BadDeviceToken, APNS_REASON_DeviceTokenNotForTopic, APNS_REASON_Forbidden,
                         APNS_REASON_ExpiredToken,   APNS_REASON_Unregistered,           APNS_REASON_PayloadTooLarge};
  for (size_t i = 0; i < sizeof never / sizeof never[0]; i++) ASSERT_TRUE(!apns_reason_is_retryable(never[i]));
  int retryable = 0, dead = 0;
  for (int r = 0; r < APNS__REASON_COUNT; r++) {
    retryable += apns_reason_is_retryable((apns_reason)r);
    dead += apns_reason_is_token_dead((apns_reason)r);
    ASSERT_TRUE(!(apns_reason_is_retryable((apns_reason)r) && apns_reason_is_token_dead((apns_reason)r)));
  }
  ASSERT_EQ(dead, 4);
  ASSERT_EQ(retryable, 7);
}

TEST(version) {
  ASSERT_STREQ(apns_version_string(), APNS_VERSION_STRING);
}

TEST_SUITE(error){
    TEST_ENTRY(error_every_code_has_name_and_message),
    TEST_ENTRY(error_range_apart_from_libuv),
    TEST_ENTRY(error_codes_are_distinct),
    TEST_ENTRY(reason_round_trip),
    TEST_ENTRY(reason_unknown_and_edges),
    TEST_ENTRY(reason_classes),
    TEST_ENTRY(version),
    TEST_SUITE_END,
};

/* The structure the README promises, checked over the build itself: the layers of lib/ over the compiler's own
 * dependency output (test/check_layers.py runs each module's compile command with -M), and what libapns.so exports
 * over nm (test/check_exports.py), libapns as a meson subproject (test/check_subproject.sh), and the length of every
 * function of lib/ and tools/ (test/check_functions.py). Each check also gets
 * a case that must fail, so a check that can no longer see anything would not pass quietly. */
#include "harness.h"

#include <apns.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

/* Runs a shell command with stdout and stderr captured into out (NUL-terminated, truncated to cap) and returns its
 * exit status. The output is printed, so that a failing check says why in the test's log. */
static int run_capture(const char *cmd, char *out, size_t cap) {
  char full[4096];
  snprintf(full, sizeof full, "%s 2>&1", cmd);
  FILE *p = popen(full, "r");
  ASSERT_NOT_NULL(p);
  size_t got = 0, n;
  char chunk[4096];
  while ((n = fread(chunk, 1, sizeof chunk, p)) > 0) {
    size_t take = n < cap - 1 - got ? n : cap - 1 - got;
    memcpy(out + got, chunk, take);
    got += take;
  }
  out[got] = '\0';
  int status = pclose(p);
  fputs(out, stdout);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

static void write_file(const char *path, const char *text) {
  FILE *f = fopen(path, "w");
  ASSERT_NOT_NULL(f);
  ASSERT_EQ(fputs(text, f) >= 0, 1);
  ASSERT_EQ(fclose(f), 0);
}

static char out[1 << 16];

static int check_layers(const char *extra_args) {
  char cmd[2048];
  snprintf(cmd, sizeof cmd, "'%s' '%s/test/check_layers.py' '%s' %s", APNS_PYTHON, APNS_SOURCE_DIR, APNS_BUILD_DIR,
           extra_args);
  return run_capture(cmd, out, sizeof out);
}

TEST(structure_layers_hold) {
  ASSERT_EQ(check_layers(""), 0);
  /* Every module of both layers was looked at. */
  const char *modules[] = {"alloc.c",    "base64.c", "error.c", "jwt.c",     "payload.c",
                           "validate.c", "tls.c",    "h2.c",    "request.c", "blocks.c"};
  for (size_t i = 0; i < sizeof modules / sizeof modules[0]; i++) {
    char line[64];
    snprintf(line, sizeof line, "ok   %s (", modules[i]);
    ASSERT_TRUE(strstr(out, line) != NULL);
  }
  ASSERT_TRUE(strstr(out, "FAIL") == NULL);
}

/* A pure module that includes <apns.h> sees uv.h through apns/conn.h: the check must say so. */
TEST(structure_layers_catch_uv_in_a_pure_module) {
  char src[512], args[1024];
  snprintf(src, sizeof src, "%s/umbrella.c", test_tmpdir());
  write_file(src, "#include <apns.h>\n");
  snprintf(args, sizeof args, "--source '%s' --as payload", src);
  ASSERT_EQ(check_layers(args), 1);
  ASSERT_TRUE(strstr(out, "(payload, pure layer) sees ") != NULL);
  ASSERT_TRUE(strstr(out, "/uv.h\n") != NULL);
}

/* request.h brings nghttp2: fine for the sans-I/O layer, not for validation. */
TEST(structure_layers_catch_nghttp2_in_a_pure_module) {
  char src[512], args[1024];
  snprintf(src, sizeof src, "%s/request_user.c", test_tmpdir());
  write_file(src, "#include \"request.h\"\n");
  snprintf(args, sizeof args, "--source '%s' --as validate", src);
  ASSERT_EQ(check_layers(args), 1);
  ASSERT_TRUE(strstr(out, "nghttp2/nghttp2.h") != NULL);
  snprintf(args, sizeof args, "--source '%s' --as h2", src);
  ASSERT_EQ(check_layers(args), 0);
}

TEST(structure_layers_catch_tls_headers_and_uv_in_sans_io) {
  char src[512], args[1024];
  snprintf(src, sizeof src, "%s/tls_user.c", test_tmpdir());
  write_file(src, "#include <mbedtls/ssl.h>\n");
  snprintf(args, sizeof args, "--source '%s' --as jwt", src);
  ASSERT_EQ(check_layers(args), 1);
  ASSERT_TRUE(strstr(out, "mbedtls/ssl.h") != NULL);
  snprintf(args, sizeof args, "--source '%s' --as tls", src);
  ASSERT_EQ(check_layers(args), 0);
  snprintf(src, sizeof src, "%s/uv_user.c", test_tmpdir());
  write_file(src, "#include <uv.h>\n");
  snprintf(args, sizeof args, "--source '%s' --as tls", src);
  ASSERT_EQ(check_layers(args), 1);
  ASSERT_TRUE(strstr(out, "(tls, sans-I/O layer) sees ") != NULL);
}

static int check_exports(const char *extra_args) {
  char cmd[2048];
  snprintf(cmd, sizeof cmd, "'%s' '%s/test/check_exports.py' '%s' '%s/include' %s", APNS_PYTHON, APNS_SOURCE_DIR,
           APNS_SHARED_LIB, APNS_SOURCE_DIR, extra_args);
  return run_capture(cmd, out, sizeof out);
}

/* libapns.so exports exactly the APNS_EXTERN functions of include/, and holds no certgen or verifier code. */
TEST(structure_exports_match_the_headers) {
  ASSERT_EQ(check_exports(""), 0);
  ASSERT_TRUE(strstr(out, "FAIL") == NULL);
  /* A few from each header, so that a parser that found nothing could not pass. */
  int n = 0;
  ASSERT_EQ(sscanf(out, "ok   %d exported functions", &n), 1);
  ASSERT_GE(n, 80);
}

/* A function a header declares but the library lacks fails the check, and so would one exported undeclared. */
TEST(structure_exports_catch_a_missing_function) {
  char h[512], args[1024];
  snprintf(h, sizeof h, "%s/extra.h", test_tmpdir());
  write_file(h, "/* APNS_EXTERN in a comment is not a declaration */\n"
                "APNS_EXTERN int apns_not_in_the_library(const char *s,\n    int n);\n");
  snprintf(args, sizeof args, "--extra-header '%s'", h);
  ASSERT_EQ(check_exports(args), 1);
  ASSERT_TRUE(strstr(out, "not exported: apns_not_in_the_library\n") != NULL);
  ASSERT_TRUE(strstr(out, "declared APNS_EXTERN in no header") == NULL);
}

static int check_abi(const char *extra_args) {
  char cmd[2048];
  snprintf(cmd, sizeof cmd, "'%s' '%s/test/check_abi.py' '%s' '%s/abi/libapns.abi' '%s/include' %s", APNS_PYTHON,
           APNS_SOURCE_DIR, APNS_SHARED_LIB, APNS_SOURCE_DIR, APNS_SOURCE_DIR, extra_args);
  return run_capture(cmd, out, sizeof out);
}

/* libapns.so is ABI-compatible with the committed baseline (abi/libapns.abi): functions may be added and fields
 * appended, nothing else (refresh it with scripts/abi-update along with a new soname). */
TEST(structure_abi_matches_the_baseline) {
  ASSERT_EQ(check_abi(""), 0);
  ASSERT_TRUE(strstr(out, "ok   the ABI is compatible with the baseline") != NULL);
}

/* The check fails on a function removed and on a field moved (the baseline edited to have them). */
TEST(structure_abi_catches_incompatible_changes) {
  ASSERT_EQ(check_abi("--tamper removed"), 1);
  ASSERT_TRUE(strstr(out, "'function const char* apns_gone()'") != NULL);
  ASSERT_EQ(check_abi("--tamper moved"), 1);
  ASSERT_TRUE(strstr(out, "struct apns_pool_options") != NULL);
  ASSERT_TRUE(strstr(out, "offset changed") != NULL);
}

static int check_subproject(const char *layout, const char *args) {
  char cmd[4096];
  snprintf(cmd, sizeof cmd, "'%s/test/check_subproject.sh' '%s' '%s' '%s' '%s' %s %s", APNS_SOURCE_DIR,
           APNS_SOURCE_DIR, test_tmpdir(), APNS_MESON, APNS_NINJA, layout, args);
  return run_capture(cmd, out, sizeof out);
}

/* A project with libapns in subprojects/apns gets it with dependency('apns'); the subproject configures whole with
 * its default options (tests, tools, bench, examples), and the app builds and runs against it. */
TEST(structure_subproject_default_options) {
  ASSERT_EQ(check_subproject("dir", "--only-app"), 0);
  ASSERT_TRUE(strstr(out, "app: libapns " APNS_VERSION_STRING ", uv ") != NULL);
  ASSERT_TRUE(strstr(out, ": APNS_EINVAL\n") != NULL);
}

/* The same through a wrap file's [provide] (subprojects/libapns), building only the library: no tests, no tools.
 * Its CA bundle is set at build time (-Dca_bundle), and the app's connection with the default trust reads that
 * one and no other. */
TEST(structure_subproject_library_only) {
  char args[1024];
  snprintf(args, sizeof args,
           "-Dlibapns:tests=false -Dlibapns:tools=false -Dlibapns:ca_bundle=%s/no-such-bundle.pem "
           "--expect-ca=%s/no-such-bundle.pem",
           test_tmpdir(), test_tmpdir());
  ASSERT_EQ(check_subproject("wrap", args), 0);
  ASSERT_TRUE(strstr(out, "app: libapns " APNS_VERSION_STRING) != NULL);
  ASSERT_TRUE(strstr(out, "open: APNS_EBADCERT: cannot load CA file ") != NULL);
  ASSERT_TRUE(strstr(out, "apns-mock built: no") != NULL);
}

static int check_functions(const char *extra_args) {
  char cmd[4096];
  snprintf(cmd, sizeof cmd, "'%s' '%s/test/check_functions.py' '%s' %s", APNS_PYTHON, APNS_SOURCE_DIR,
           APNS_SOURCE_DIR, extra_args);
  return run_capture(cmd, out, sizeof out);
}

/* No function of lib/ or tools/ is over 80 lines, from its first line to its closing brace, except those the check's
 * allow-list names with a reason. */
TEST(structure_functions_within_the_limit) {
  ASSERT_EQ(check_functions(""), 0);
  ASSERT_TRUE(strstr(out, "FAIL") == NULL);
  /* The parser found the functions, so that one that found none could not pass. */
  int n = 0, files = 0;
  ASSERT_EQ(sscanf(out, "ok   %d functions in %d files", &n, &files), 2);
  ASSERT_GE(n, 800);
  ASSERT_GE(files, 35); /* lib/ alone is about 20 */
}

/* The default scope over a source tree of its own: a long function in a file deep under tools/ fails, and short
 * ones in lib/ and tools/apns-push/ are counted and pass. */
TEST(structure_functions_cover_tools) {
  char dir[512], path[1024], cmd[4096];
  static char text[8192];
  size_t n = 0;
  static const char *const dirs[] = {"", "/lib", "/tools", "/tools/deep", "/tools/deep/er", "/tools/apns-push"};
  for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++) {
    snprintf(dir, sizeof dir, "%s/src%s", test_tmpdir(), dirs[i]);
    ASSERT_EQ(mkdir(dir, 0700), 0);
  }
  snprintf(dir, sizeof dir, "%s/src", test_tmpdir());
  snprintf(path, sizeof path, "%s/lib/short.c", dir);
  write_file(path, "int short_one(void) {\n  return 0;\n}\n");
  snprintf(path, sizeof path, "%s/tools/apns-push/args.c", dir);
  write_file(path, "int push_parse_args(void) {\n  return 0;\n}\n");
  n += (size_t)snprintf(text + n, sizeof text - n, "static int deep_one(void) {\n  int a = 0;\n");
  for (int i = 0; i < 77; i++) n += (size_t)snprintf(text + n, sizeof text - n, "  a++;\n");
  n += (size_t)snprintf(text + n, sizeof text - n, "  return a;\n}\n");
  snprintf(path, sizeof path, "%s/tools/deep/er/long.c", dir);
  write_file(path, text);
  snprintf(cmd, sizeof cmd, "'%s' '%s/test/check_functions.py' '%s'", APNS_PYTHON, APNS_SOURCE_DIR, dir);
  ASSERT_EQ(run_capture(cmd, out, sizeof out), 1);
  ASSERT_TRUE(strstr(out, "FAIL tools/deep/er/long.c:1 deep_one: 81 lines (limit 80)") != NULL);
  ASSERT_TRUE(strstr(out, "short_one") == NULL);
  ASSERT_TRUE(strstr(out, "push_parse_args") == NULL);
  ASSERT_TRUE(strstr(out, "FAIL 3 functions in 3 files, the longest deep_one in tools/deep/er/long.c") != NULL);
}

/* Two functions around a struct, an initializer and a prototype: the one of 81 lines fails and is named with its
 * line and length, the one of exactly 80 passes, and the braces of the struct and the initializer count for
 * neither. */
TEST(structure_functions_catch_a_long_one) {
  char src[512], args[1024];
  static char text[16384];
  size_t n = 0;
  snprintf(src, sizeof src, "%s/long.c", test_tmpdir());
  n += (size_t)snprintf(text + n, sizeof text - n,
                        "struct point {\n  int x;\n};\n\nstatic const int table[] = {\n    1,\n};\n\n"
                        "static int shorter(int a,\n                   int b);\n\n"
                        "static int shorter(int a,\n                   int b) {\n");
  for (int i = 0; i < 76; i++) n += (size_t)snprintf(text + n, sizeof text - n, "  a += b; /* { */\n");
  n += (size_t)snprintf(text + n, sizeof text - n, "  return a;\n}\n\nint longer(void) {\n  int a = 0;\n");
  for (int i = 0; i < 25; i++) n += (size_t)snprintf(text + n, sizeof text - n, "  if (a) {\n    a++;\n  }\n");
  n += (size_t)snprintf(text + n, sizeof text - n, "  a++;\n  a++;\n");
  n += (size_t)snprintf(text + n, sizeof text - n, "  return a;\n}\n");
  write_file(src, text);
  snprintf(args, sizeof args, "--file '%s'", src);
  ASSERT_EQ(check_functions(args), 1);
  ASSERT_TRUE(strstr(out, "long.c:93 longer: 81 lines (limit 80)") != NULL);
  ASSERT_TRUE(strstr(out, "shorter") == NULL);
  ASSERT_TRUE(strstr(out, "FAIL 2 functions in 1 files, the longest longer") != NULL);
  /* Under a limit of 81 both pass. */
  snprintf(args, sizeof args, "--limit 81 --file '%s'", src);
  ASSERT_EQ(check_functions(args), 0);
}

TEST_SUITE(structure){
    TEST_ENTRY(structure_layers_hold),
    TEST_ENTRY(structure_layers_catch_uv_in_a_pure_module),
    TEST_ENTRY(structure_layers_catch_nghttp2_in_a_pure_module),
    TEST_ENTRY(structure_layers_catch_tls_headers_and_uv_in_sans_io),
    TEST_ENTRY(structure_exports_match_the_headers),
    TEST_ENTRY(structure_exports_catch_a_missing_function),
    TEST_ENTRY(structure_abi_matches_the_baseline),
    TEST_ENTRY(structure_abi_catches_incompatible_changes),
    TEST_ENTRY(structure_subproject_default_options),
    TEST_ENTRY(structure_subproject_library_only),
    TEST_ENTRY(structure_functions_within_the_limit),
    TEST_ENTRY(structure_functions_catch_a_long_one),
    TEST_ENTRY(structure_functions_cover_tools),
    TEST_SUITE_END,
};

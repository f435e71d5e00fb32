/* The fuzz targets in the normal suite: every committed seed (fuzz/corpus/NAME/) and every input a fuzzer once
 * broke something with (fuzz/regress/NAME/) replayed through the target's own entry point (fuzz/NAME.c, built
 * without libFuzzer), so their invariants are checked on every test run, under ASan+UBSan and valgrind too. */
#include "harness.h"

#include "../fuzz/fuzz.h"
#include "../lib/alloc.h"
#include <apns.h>

#include <dirent.h>
#include <sys/stat.h>

#ifndef APNS_FUZZ_DIR
#error "APNS_FUZZ_DIR (the source tree's fuzz/) must be defined by the build"
#endif

static uint8_t *read_all(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  uint8_t *buf;
  struct stat st;
  ASSERT_NOT_NULL(f);
  ASSERT_EQ(fstat(fileno(f), &st), 0);
  *len = (size_t)st.st_size;
  buf = malloc(*len + 1);
  ASSERT_NOT_NULL(buf);
  ASSERT_UEQ(fread(buf, 1, *len, f), *len);
  fclose(f);
  return buf;
}

/* Runs every file of fuzz/<sub>/<target>/ through fn; returns how many there were. */
static int replay_dir(const char *sub, const char *target, int (*fn)(const uint8_t *, size_t)) {
  char dir[1024], path[2048];
  int n = 0;
  snprintf(dir, sizeof dir, "%s/%s/%s", APNS_FUZZ_DIR, sub, target);
  DIR *d = opendir(dir);
  if (d == NULL) return 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    size_t len;
    if (e->d_name[0] == '.') continue;
    snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
    printf("replay %s\n", path);
    uint8_t *buf = read_all(path, &len);
    ASSERT_EQ(fn(buf, len), 0);
    free(buf);
    n++;
  }
  closedir(d);
  return n;
}

static void replay(const char *target, int (*fn)(const uint8_t *, size_t)) {
  int seeds = replay_dir("corpus", target, fn);
  int regress = replay_dir("regress", target, fn);
  printf("%s: %d seeds, %d regression inputs\n", target, seeds, regress);
  ASSERT_GT(seeds, 0); /* an empty corpus would make the fuzz stage start from nothing */
}

#define REPLAY_TEST(name)                                                                                            \
  TEST(fuzz_replay_##name) {                                                                                         \
    replay(#name, apns_fuzz_##name);                                                                                 \
  }
APNS_FUZZ_TARGETS(REPLAY_TEST)
#undef REPLAY_TEST

TEST_SUITE(fuzz){
#define REPLAY_ENTRY(name) TEST_ENTRY(fuzz_replay_##name),
    APNS_FUZZ_TARGETS(REPLAY_ENTRY)
#undef REPLAY_ENTRY
        TEST_SUITE_END,
};

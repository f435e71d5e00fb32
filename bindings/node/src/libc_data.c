/* Local copies of libc's stdin, stdout and stderr for the statically linked libraries.
 *
 * Debian builds its static archives with the toolchain's default -fPIE: position-independent code for an
 * executable, not -fPIC. Such code reaches libc's data symbols PC-relative (an executable gets them by copy
 * relocation), which a shared object cannot: the link fails with "relocation R_X86_64_PC32 against symbol
 * `stderr' can not be used when making a shared object". Every other reference in those archives is
 * PIC-compatible (functions go through the PLT; their own data becomes local through --exclude-libs), and the
 * only libc data they touch is stderr (nghttp2's map debug printer) and stdin (jansson's json_loadf). So the addon
 * defines the three stdio pointers itself, hidden, and fills them from libc's at load time; every reference in
 * the addon binds to these. Harmless when the archives are real PIC.
 *
 * stdio.h is not included: it declares these names as libc's.
 */
#include <dlfcn.h>

__attribute__((visibility("hidden"))) void *stdin;
__attribute__((visibility("hidden"))) void *stdout;
__attribute__((visibility("hidden"))) void *stderr;

__attribute__((constructor)) static void apns_node_libc_data(void) {
  void **p;
  if ((p = dlsym(RTLD_DEFAULT, "stdin")) != 0) stdin = *p;
  if ((p = dlsym(RTLD_DEFAULT, "stdout")) != 0) stdout = *p;
  if ((p = dlsym(RTLD_DEFAULT, "stderr")) != 0) stderr = *p;
}

#!/usr/bin/env bash
# libapns as a meson subproject: a small project with a copy of this tree in subprojects/ gets the library with
# dependency('apns') (meson.override_dependency in lib/meson.build), builds against it and runs.
#
#   check_subproject.sh SRC WORK MESON NINJA LAYOUT [meson setup args...]
#     LAYOUT dir   the tree is subprojects/apns (meson falls back to the subproject named like the dependency)
#     LAYOUT wrap  the tree is subprojects/libapns, with libapns.wrap saying "[provide] dependency_names = apns"
#   Extra arguments go to meson setup (-Dlibapns:tests=false ...). With "--only-app", only the app target is built
#   (the subproject is still configured whole). With "--expect-ca=PATH" the app also opens a connection with the
#   default trust and expects APNS_EBADCERT naming PATH (the bundle given with -D...:ca_bundle=PATH). Prints
#   "ok ..." and exits 0, or says what failed and exits 1.
set -euo pipefail
src=$1 work=$2 meson=$3 ninja=$4 layout=$5
shift 5
only_app=0
expect_ca=
args=()
for a in "$@"; do
  case "$a" in
    --only-app) only_app=1 ;;
    --expect-ca=*) expect_ca=${a#--expect-ca=} ;;
    *) args+=("$a") ;;
  esac
done
app="$work/app"
rm -rf "$app"
mkdir -p "$app/subprojects"
case "$layout" in
  dir) sub="$app/subprojects/apns" ;;
  wrap) sub="$app/subprojects/libapns"
        printf '[wrap-file]\ndirectory = libapns\n\n[provide]\ndependency_names = apns\n' >"$app/subprojects/libapns.wrap" ;;
  *) echo "check_subproject: unknown layout $layout" >&2; exit 2 ;;
esac
mkdir -p "$sub"
# The tree as a user would unpack it: no build directories, no git metadata.
(cd "$src" && tar --exclude='./build*' --exclude=./.git --exclude=node_modules -cf - .) | tar -C "$sub" -xf -

cat >"$app/meson.build" <<'EOF'
project('app', 'c')
executable('app', 'app.c', dependencies: dependency('apns'))
EOF
cat >"$app/app.c" <<'EOF'
#include <apns.h>
#include <stdio.h>
#include <string.h>

/* With an argument: a connection with the default trust must fail to load the CA bundle named by it. */
static int open_with_default_ca(const char *bundle) {
  uv_loop_t loop;
  apns_conn_options o = APNS_CONN_OPTIONS_INIT;
  apns_conn *c = NULL;
  char err[512] = "";
  uv_loop_init(&loop);
  o.host = "127.0.0.1";
  int rv = apns_conn_open(&loop, &c, &o, err, sizeof err);
  printf("open: %s: %s\n", apns_err_name(rv), err);
  if (rv == 0) return 1;
  uv_run(&loop, UV_RUN_DEFAULT);
  uv_loop_close(&loop);
  return rv == APNS_EBADCERT && strstr(err, bundle) != NULL ? 0 : 1;
}

int main(int argc, char **argv) {
  apns_notification *n = NULL;
  if (apns_notification_new(&n) != 0 || apns_notification_set_alert_text(n, "hi") != 0) return 1;
  apns_notification_free(n);
  printf("libapns %s, uv %s: %s\n", apns_version_string(), uv_version_string(), apns_err_name(APNS_EINVAL));
  if (argc > 1 && open_with_default_ca(argv[1]) != 0) return 1;
  return strcmp(apns_version_string(), APNS_VERSION_STRING) != 0;
}
EOF

log="$work/subproject-$layout.log"
# --force-fallback-for: an apns installed on the machine must not stand in for the subproject.
if ! "$meson" setup "$app/build" "$app" --force-fallback-for=apns "${args[@]}" >"$log" 2>&1; then
  cat "$log"
  echo "FAIL meson setup"
  exit 1
fi
grep -q 'Dependency apns found: YES .*(overridden)' "$log" || { cat "$log"; echo "FAIL apns not from the subproject"; exit 1; }
targets=()
[ "$only_app" = 1 ] && targets=(app)
if ! "$ninja" -C "$app/build" "${targets[@]}" >>"$log" 2>&1; then
  tail -40 "$log"
  echo "FAIL build"
  exit 1
fi
run=("$app/build/app")
[ -n "$expect_ca" ] && run+=("$expect_ca")
out=$(env -u SSL_CERT_FILE -u SSL_CERT_DIR "${run[@]}") || { echo "app: $out"; echo "FAIL the app exited with an error"; exit 1; }
echo "app: $out"
built_tools=no
[ -e "$app/build/subprojects/$(basename "$sub")/tools/apns-mock/apns-mock" ] && built_tools=yes
echo "ok   layout $layout, ${args[*]:-default options}: dependency('apns') from the subproject; apns-mock built: $built_tools"

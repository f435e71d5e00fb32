# The addon: the glue (src/addon.c) and libapns's own sources, compiled here against Node's headers, so libapns
# sees the uv.h of the libuv it will run on (Node's). nghttp2, mbedTLS and jansson come in as static archives;
# --exclude-libs and the version script keep every symbol but the N-API entry point local, and libuv is never
# linked: its symbols resolve at load time to the copy Node already has (its own, or the system's for Debian's
# nodejs).
{
  "targets": [
    {
      "target_name": "apns",
      "sources": ["src/addon.c", "src/libc_data.c", "<!@(node scripts/static-libs.js sources)"],
      "include_dirs": ["../../include", "../../lib"],
      "defines": ["NAPI_VERSION=8", "_GNU_SOURCE"],
      "cflags": ["-fvisibility=hidden", "-ffunction-sections", "-fdata-sections"],
      "cflags_c": ["-std=c11", "-Wall", "-Wextra"],
      "cflags!": ["-fno-exceptions"],
      "conditions": [
        # APNS_SANITIZE=1 npm install: the addon's own code (glue and libapns) under ASan and UBSan, for
        # scripts/node-test --sanitize (run with libasan and libubsan preloaded into node).
        # APNS_WERROR=1: warnings are errors (CI; not for users, whose compiler or Node headers may differ).
        ["<!(node -p \"process.env.APNS_WERROR ? 1 : 0\")==1", {
          "cflags": ["-Werror"]
        }],
        ["<!(node -p \"process.env.APNS_SANITIZE ? 1 : 0\")==1", {
          "cflags": ["-fsanitize=address,undefined", "-fno-omit-frame-pointer", "-O1", "-g"],
          "ldflags": ["-fsanitize=address,undefined"]
        }]
      ],
      "libraries": [
        "<!@(node scripts/static-libs.js libs)",
        "-lm",
        "-Wl,--exclude-libs,ALL",
        "-Wl,--gc-sections",
        "-Wl,--version-script=<(module_root_dir)/src/exports.map"
      ]
    }
  ]
}

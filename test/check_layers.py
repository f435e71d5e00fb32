#!/usr/bin/env python3
"""The layer rule of lib/, checked over what the compiler says each module includes.

For every module of a layer, the compile command meson wrote into BUILD/compile_commands.json is run again with -M
instead of -c (same flags, same include paths, same defines), and every header in the dependency list is matched
against what the layer must not see:
  pure      (abi, alloc, base64, error, heap, jwt, payload, validate): no libuv, no nghttp2, no mbedTLS TLS or X.509 headers;
  sans-I/O  (tls, h2, request, blocks): no libuv.
A header reached through any chain of includes counts: that is the point of asking the compiler.

  check_layers.py BUILD                       checks every module; exit 1 naming each module and header at fault
  check_layers.py BUILD --source F --as MOD   checks the file F compiled as module MOD would be (used by the test
                                              that proves the check catches a violation)
"""
import json
import os
import re
import shlex
import subprocess
import sys

UV = [r"(^|/)uv\.h$", r"(^|/)uv/[^/]+\.h$"]
NGHTTP2 = [r"(^|/)nghttp2/[^/]+\.h$"]
MBEDTLS_TLS = [r"(^|/)mbedtls/(ssl[^/]*|net_sockets|debug|x509[^/]*)\.h$"]

LAYERS = {
    "pure": (["abi", "alloc", "base64", "error", "heap", "jwt", "payload", "validate"], UV + NGHTTP2 + MBEDTLS_TLS),
    "sans-I/O": (["tls", "h2", "request", "blocks"], UV),
}


def layer_of(module):
    for name, (modules, forbidden) in LAYERS.items():
        if module in modules:
            return name, forbidden
    raise SystemExit(f"check_layers: {module} is in no layer")


def entries_for(commands, module):
    """The compile commands of lib/<module>.c (one per library variant meson compiles it for)."""
    found = []
    for e in commands:
        path = os.path.normpath(os.path.join(e["directory"], e["file"]))
        if path.endswith(os.sep + os.path.join("lib", module + ".c")):
            found.append(e)
    return found


def dependencies(entry, source):
    args = entry["arguments"] if "arguments" in entry else shlex.split(entry["command"])
    cmd, skip = [], False
    for a in args:
        if skip:
            skip = False
            continue
        if a in ("-o", "-MQ", "-MF", "-MT"):
            skip = True
            continue
        if a in ("-c", "-MD", "-MMD") or a == entry["file"]:
            continue
        cmd.append(a)
    cmd += ["-M", "-MT", "dep", source]
    r = subprocess.run(cmd, cwd=entry["directory"], capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"check_layers: {' '.join(cmd)} failed:\n{r.stderr}")
    words = r.stdout.replace("\\\n", " ").split()
    return [w for w in words[1:] if w != os.path.basename(source) and not w.endswith(".c")]


def check(entry, module, source):
    layer, forbidden = layer_of(module)
    deps = dependencies(entry, source)
    bad = [d for d in deps if any(re.search(p, d) for p in forbidden)]
    return layer, deps, bad


def main(argv):
    if len(argv) < 2:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    build = argv[1]
    with open(os.path.join(build, "compile_commands.json")) as f:
        commands = json.load(f)
    jobs = []
    if len(argv) == 6 and argv[2] == "--source" and argv[4] == "--as":
        source, module = os.path.abspath(argv[3]), argv[5]
        es = entries_for(commands, module)
        jobs = [(e, module, source) for e in es[:1]]
        if not jobs:
            print(f"check_layers: no compile command for lib/{module}.c", file=sys.stderr)
            return 2
    else:
        for modules, _ in LAYERS.values():
            for m in modules:
                es = entries_for(commands, m)
                if not es:
                    print(f"FAIL {m}: no compile command for lib/{m}.c in {build}/compile_commands.json")
                    return 1
                jobs += [(e, m, os.path.normpath(os.path.join(e["directory"], e["file"]))) for e in es]
    failed = 0
    for e, m, src in jobs:
        layer, deps, bad = check(e, m, src)
        if bad:
            failed += 1
            for b in bad:
                print(f"FAIL {os.path.basename(src)} ({m}, {layer} layer) sees {b}")
        else:
            print(f"ok   {os.path.basename(src)} ({m}, {layer} layer): {len(deps)} headers, none forbidden")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

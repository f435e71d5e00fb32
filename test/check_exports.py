#!/usr/bin/env python3
"""What libapns.so exports, against what the public headers declare.

  check_exports.py LIB.so INCLUDE_DIR [--extra-header H]...

1. The dynamic symbols the library defines (nm -D --defined-only) are exactly the functions declared APNS_EXTERN in
   INCLUDE_DIR's headers: an exported symbol no header declares, or a declared function the library lacks, fails.
2. No test or mock code is in the library at all (nm of the whole symbol table, hidden symbols included): the
   certificate generator (apns__certgen_*) and the JWT verifier (apns__jwt_verifier_*, apns__jwt_verify) live in
   the support library, and nothing in libapns.so writes certificates (mbedtls_x509write_*).
--extra-header adds a header's declarations to the expected list (the test that proves a missing export fails).
"""
import os
import re
import subprocess
import sys

# Symbols the toolchain itself puts into a shared object's dynamic table.
TOOLCHAIN = {"_init", "_fini", "_edata", "_end", "__bss_start"}
FORBIDDEN = re.compile(r"^(apns__certgen_|apns__jwt_verifier_|apns__jwt_verify$|mbedtls_x509write_)")


def declared(paths):
    names = {}
    for path in paths:
        with open(path) as f:
            text = f.read()
        text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
        text = re.sub(r"//[^\n]*", " ", text)
        text = re.sub(r"^\s*#.*?(?<!\\)$", " ", text, flags=re.M | re.S)
        for m in re.finditer(r"\bAPNS_EXTERN\b[^;{()]*?\b([A-Za-z_][A-Za-z0-9_]*)\s*\(", text):
            names[m.group(1)] = os.path.basename(path)
    return names


def nm(args, lib):
    r = subprocess.run(["nm"] + args + [lib], capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"check_exports: nm {' '.join(args)} {lib} failed: {r.stderr.strip()}")
    out = []
    for line in r.stdout.splitlines():
        parts = line.split()
        if len(parts) >= 2:
            out.append((parts[-2], parts[-1].split("@")[0]))
    return out


def main(argv):
    if len(argv) < 3:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    lib, incdir = argv[1], argv[2]
    extra = [argv[i + 1] for i in range(3, len(argv) - 1) if argv[i] == "--extra-header"]
    headers = sorted(
        os.path.join(d, f) for d, _, fs in os.walk(incdir) for f in fs if f.endswith(".h")
    ) + extra
    want = declared(headers)
    have = {name for kind, name in nm(["-D", "--defined-only"], lib) if name not in TOOLCHAIN}
    failed = 0
    for name in sorted(have - set(want)):
        print(f"FAIL exported but declared APNS_EXTERN in no header: {name}")
        failed += 1
    for name in sorted(set(want) - have):
        print(f"FAIL declared APNS_EXTERN in {want[name]} but not exported: {name}")
        failed += 1
    for kind, name in nm(["--defined-only"], lib) + nm(["-D", "--undefined-only"], lib):
        if FORBIDDEN.match(name):
            print(f"FAIL test or mock code in the library: {name} ({kind})")
            failed += 1
    if not failed:
        print(f"ok   {len(have)} exported functions, each declared APNS_EXTERN in {len(headers)} headers; "
              "no certgen, verifier or certificate-writing symbol")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

#!/usr/bin/env python3
"""libapns.so's ABI against the committed baseline (abi/libapns.abi, made by scripts/abi-update).

  check_abi.py LIB.so BASELINE INCLUDE_DIR [--tamper removed|moved]

Runs abidiff (Debian's abigail-tools) on the baseline and the library, looking only at the types the public headers
define (so the opaque structs' insides, libuv's and mbedTLS's types may change freely). What the ABI rule allows
passes: functions added, fields appended at the end of a struct (abidiff counts those harmless). What breaks a
program built against the baseline fails: a function removed, a field inserted, moved or retyped, a struct shrunk.
--tamper edits a copy of the baseline first, to prove the check catches each kind: "removed" gives the baseline a
function the library lacks, "moved" takes the first field after `size` out of apns_pool_options, so that every
later field of the library's layout has moved. Prints abidiff's report and "ok" or "FAIL"; exits 0 when the ABI is
compatible, 1 when not, 2 when abidiff could not run.
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile


def tamper(text, how):
    if how == "removed":
        sym = re.search(r"    <elf-symbol name='apns_version_string'[^\n]*\n", text)
        decl = re.search(r"    <function-decl name='apns_version_string'.*?</function-decl>\n", text, re.S)
        if not sym or not decl:
            raise SystemExit("check_abi: apns_version_string not in the baseline")
        text = text.replace(sym.group(0), sym.group(0) + sym.group(0).replace("apns_version_string", "apns_gone"))
        return text.replace(decl.group(0), decl.group(0) + decl.group(0).replace("apns_version_string", "apns_gone"))
    if how == "moved":
        i = text.index("<class-decl name='apns_pool_options'")
        j = text.index("</class-decl>", i)
        body = text[i:j]
        members = re.findall(r"\n( *<data-member [^>]*layout-offset-in-bits='(\d+)'>.*?</data-member>)", body, re.S)
        if len(members) < 3:
            raise SystemExit("check_abi: apns_pool_options has no fields in the baseline")
        gone, width = members[1][0], int(members[2][1]) - int(members[1][1])
        body = body.replace("\n" + gone, "", 1)
        for m, off in members[2:]:
            body = body.replace(m, m.replace(f"layout-offset-in-bits='{off}'", f"layout-offset-in-bits='{int(off) - width}'"), 1)
        size = int(re.search(r"size-in-bits='(\d+)'", body).group(1))
        body = body.replace(f"size-in-bits='{size}'", f"size-in-bits='{size - width}'", 1)
        return text[:i] + body + text[j:]
    raise SystemExit(f"check_abi: unknown --tamper {how}")


def main():
    args = sys.argv[1:]
    how = None
    if "--tamper" in args:
        k = args.index("--tamper")
        how = args[k + 1]
        del args[k : k + 2]
    if len(args) != 3:
        raise SystemExit(__doc__)
    lib, baseline, include = args
    if shutil.which("abidiff") is None:
        print("FAIL abidiff not found: apt-get install abigail-tools (scripts/deps installs it)")
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        if how:
            with open(baseline) as f:
                text = tamper(f.read(), how)
            baseline = os.path.join(tmp, "tampered.abi")
            with open(baseline, "w") as f:
                f.write(text)
        r = subprocess.run(["abidiff", "--no-added-syms", "--headers-dir1", include, "--headers-dir2", include,
                            baseline, lib], capture_output=True, text=True)
    print(r.stdout + r.stderr)
    # abidiff's exit status is a bit set: 1 error, 2 usage error, 4 an ABI change, 8 an incompatible one.
    if r.returncode & 3:
        print(f"FAIL abidiff could not compare (status {r.returncode})")
        return 2
    if r.returncode:
        print(f"FAIL the ABI differs from {os.path.basename(args[1])} (abidiff status {r.returncode}): if that is "
              "meant, and the soname changes with it, run scripts/abi-update")
        return 1
    print("ok   the ABI is compatible with the baseline")
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""The length of every function in lib/ and tools/, so that a long one is split where a name would explain the part.

A function runs from the first line of its definition (the line in column 0 where the return type starts) to its
closing brace, which clang-format puts alone in column 0; its length is that count of lines, comments and blank
lines inside included. Declarations, struct and enum bodies and initializers (their closing line is "};" or "} x;")
are not functions. A function over the limit fails the check unless ALLOWED names it with the reason it reads
better whole.

  check_functions.py SOURCE_DIR                  checks SOURCE_DIR/lib/*.c and every *.c under SOURCE_DIR/tools/
  check_functions.py SOURCE_DIR --file F ...     checks only the files given (used by the test that proves the check
                                                 catches a long function)
  --limit N                                      the limit (default 80 lines)
"""
import glob
import os
import re
import sys

LIMIT = 80

# "file:function": why it stays whole. An entry whose function is no longer over the limit fails the check too.
ALLOWED = {}


def functions(text):
    """(name, first line, length) of each function definition in text."""
    lines = text.split("\n")
    found = []
    start = None
    i = 0
    while i < len(lines):
        line = lines[i]
        if start is None and re.match(r"[A-Za-z_]", line) and not re.match(r"(typedef|struct|enum|union)\b[^(]*$", line):
            start = i
        if start is not None:
            head = " ".join(lines[start : i + 1])
            if line.endswith("{") and "(" in head and "=" not in head:
                name = re.search(r"([A-Za-z_]\w*)\s*\(", head).group(1)
                end = i + 1
                while end < len(lines) and lines[end] != "}":
                    end += 1
                if end == len(lines):
                    raise SystemExit(f"check_functions: {name} at line {start + 1} has no closing brace in column 0")
                found.append((name, start + 1, end - start + 1))
                i = end
                start = None
            elif line == "" or line.endswith((";", "{", "}")):
                start = None
        i += 1
    return found


def main(argv):
    args = argv[1:]
    limit = LIMIT
    if "--limit" in args:
        k = args.index("--limit")
        limit = int(args[k + 1])
        del args[k : k + 2]
    if not args:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    src = args[0]
    if len(args) > 2 and args[1] == "--file":
        files = [os.path.abspath(f) for f in args[2:]]
    else:
        files = sorted(glob.glob(os.path.join(src, "lib", "*.c")))
        tools = sorted(glob.glob(os.path.join(src, "tools", "**", "*.c"), recursive=True))
        files += tools
    failed = 0
    count = 0
    longest = ("", "", 0)
    over = set()
    for path in files:
        rel = os.path.relpath(path, src)
        with open(path) as f:
            fs = functions(f.read())
        count += len(fs)
        for name, line, length in fs:
            if length > longest[2]:
                longest = (rel, name, length)
            if length > limit:
                over.add(f"{rel}:{name}")
                if f"{rel}:{name}" not in ALLOWED:
                    failed += 1
                    print(f"FAIL {rel}:{line} {name}: {length} lines (limit {limit}): split it where a name explains a part")
    if len(args) <= 2 or args[1] != "--file":
        for key in sorted(set(ALLOWED) - over):
            failed += 1
            print(f"FAIL {key} is allowed to be long but is not (or is gone): take it off ALLOWED")
    summary = f"{count} functions in {len(files)} files, the longest {longest[1]} in {longest[0]} ({longest[2]} lines)"
    print(f"{'FAIL' if failed else 'ok  '} {summary}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

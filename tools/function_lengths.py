#!/usr/bin/env python3
"""Lists the longest functions of a Rust source tree, outside test modules.

Usage: python3 tools/function_lengths.py [DIR] [HOW_MANY] [NAME_REGEX]

A function's length is its lines from `fn` to its closing brace, braces matched after
string literals and line comments are blanked. Each line: length, file, name, first line.
"""
import os
import re
import sys


def functions(root):
    for folder, _, files in os.walk(root):
        for name in sorted(files):
            if not name.endswith(".rs"):
                continue
            path = os.path.join(folder, name)
            lines = open(path, encoding="utf-8").read().split("\n")
            for i, line in enumerate(lines):
                if re.match(r"\s*#\[cfg\(test\)\]", line):
                    break
                m = re.match(r"\s*(pub(\([^)]*\))?\s+)?(const\s+)?(unsafe\s+)?fn\s+(\w+)", line)
                if not m:
                    continue
                depth, started, j = 0, False, i
                while j < len(lines):
                    text = re.sub(r'"([^"\\]|\\.)*"', '""', lines[j])
                    text = re.sub(r"'.'", "", text).split("//")[0]
                    if not started and ";" in text and "{" not in text:
                        break
                    for ch in text:
                        if ch == "{":
                            depth, started = depth + 1, True
                        elif ch == "}":
                            depth -= 1
                    if started and depth == 0:
                        break
                    j += 1
                if started:
                    yield j - i + 1, path, m.group(5), i + 1


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else "src"
    most = int(sys.argv[2]) if len(sys.argv) > 2 else 15
    pattern = re.compile(sys.argv[3]) if len(sys.argv) > 3 else None
    found = sorted(functions(root), key=lambda f: (-f[0], f[1], f[3]))
    if pattern:
        found = [f for f in found if pattern.fullmatch(f[2])]
    for length, path, name, line in found[:most]:
        print(f"{length:4} {path}:{line} {name}")


if __name__ == "__main__":
    main()

#!/usr/bin/env bash
# What clang-format cannot check (STYLE.md): banned calls and file length.
# Exits non-zero with one line per finding.
set -u
cd "$(dirname "$0")/.."
status=0
files=$(git ls-files 'src/*.c' 'src/*.h' 'include/*.h' 2>/dev/null || find src include -name '*.[ch]')
for f in $files; do
    [ -f "$f" ] || continue
    # Banned: unbounded or unchecked forms; use op_parse_*, snprintf, op_buf.
    if grep -nE '\b(atoi|atol|atoll|sprintf|vsprintf|strcpy|strcat|gets|strtok)\s*\(' "$f" |
        grep -vE '^\s*[0-9]+:\s*(//|/?\*)'; then
        echo "lint: $f: banned call (see STYLE.md: checked and bounded forms only)" >&2
        status=1
    fi
    n=$(wc -l <"$f")
    if [ "$n" -gt 1500 ]; then
        echo "lint: $f: $n lines (over 1,500: does it hold two things?)" >&2
        status=1
    fi
done
[ $status -eq 0 ] && echo "lint: $(echo "$files" | wc -w) files clean"
exit $status

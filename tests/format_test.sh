#!/bin/sh
# format_test.sh SOURCE-DIR — every C file is formatted as .clang-format says.
set -u
cd "$1" || exit 2
files=$(git ls-files --cached --others --exclude-standard '*.c' '*.h' 2>/dev/null || find common broker agents tools tests bench -name '*.[ch]')
# shellcheck disable=SC2086
if clang-format --dry-run --Werror $files; then
    echo "format: $(echo "$files" | wc -l) files clean"
else
    echo "format: run clang-format -i on the files above"
    exit 1
fi

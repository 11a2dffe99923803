#!/bin/sh
# docs_test.sh SOURCE-DIR — the documents stay true to the code: every error code in
# common/error.h is listed in docs/errors.md with its number, and every event type of the
# schema is described in docs/schema.md.
set -u
src=$1
fail=0
grep -oE 'SH_E_[A-Z0-9_]+ = [0-9]+' "$src/common/error.h" | while read -r name _ num; do
    grep -qE "^\| $num \| \`$name\` \|" "$src/docs/errors.md" || { echo "FAIL: $name ($num) missing from docs/errors.md"; exit 1; }
done || fail=1
grep -oE 'EVENT_TYPE_[A-Z_]+ = [0-9]+' "$src/proto/sharehub/v1/envelope.proto" | grep -v UNSPECIFIED |
while read -r name _ num; do
    short=${name#EVENT_TYPE_}
    grep -qE "^\| $num \`$short\` \|" "$src/docs/schema.md" || { echo "FAIL: $short missing from docs/schema.md"; exit 1; }
done || fail=1
[ "$fail" -eq 0 ] && echo "docs: error codes and event types all documented"
exit "$fail"

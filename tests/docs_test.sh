#!/bin/sh
# docs_test.sh SOURCE-DIR — the documents stay true to the code: every error code in
# common/error.h is listed in docs/errors.md with its number, and every event type of the
# schema is described in docs/schema.md, and every metric the daemons serve is described in
# docs/operations.md.
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
# (the metrics are named in each daemon's stats.c; finding none there means this test lost them)
n=$(cat "$src/broker/stats.c" "$src/agents/stats.c" | grep -cE 'M\("[a-z_]+"\)')
[ "$n" -ge 20 ] || { echo "FAIL: only $n metric names found in broker/stats.c and agents/stats.c"; fail=1; }
for m in $(grep -oE 'M\("[a-z_]+"\)' "$src/broker/stats.c" | sed 's/M("\(.*\)")/sharehub_broker_\1/') \
         $(grep -oE 'M\("[a-z_]+"\)' "$src/agents/stats.c" | sed 's/M("\(.*\)")/sharehub_agent_\1/') \
         $(grep -oE 's_gauge\(f, prefix, "[a-z_]+"' "$src/common/metrics.c" |
           sed 's/.*"\(.*\)"/sharehub_broker_\1 sharehub_agent_\1/') sharehub_build_info; do
    grep -q "\`$m[\`{]" "$src/docs/operations.md" || { echo "FAIL: metric $m missing from docs/operations.md"; fail=1; }
done
[ "$fail" -eq 0 ] && echo "docs: error codes, event types and metrics all documented"
exit "$fail"

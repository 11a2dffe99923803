#!/bin/sh
# demo_failure_test.sh BUILD-DIR SOURCE-DIR — when the demo fails it says which process failed,
# shows the end of that process's log, and keeps its work directory: here a broker that cannot
# start (a stand-in that fails as a broker with a loose key file does).
set -u
build=$1 src=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/build/tools" "$tmp/build/broker" "$tmp/build/agents"
ln -s "$(cd "$build" && pwd)/tools/sharehub" "$tmp/build/tools/sharehub"
ln -s "$(cd "$build" && pwd)/agents/sharehub-agent" "$tmp/build/agents/sharehub-agent"
cat >"$tmp/build/broker/sharehub-broker" <<'SH'
#!/bin/sh
echo "sharehub-broker: E401 SH_E_KEY_PERMISSIONS: broker.master has mode 0644; want 0600 or 0400" >&2
exit 1
SH
chmod +x "$tmp/build/broker/sharehub-broker"
out=$(TMPDIR=$tmp "$src/tools/essex-case" "$tmp/build" 2>&1)
rc=$?
fail=0
expect() { printf '%s' "$out" | grep -qF -- "$1" || { echo "FAIL: no '$1' in the output"; fail=1; }; }
[ "$rc" -eq 1 ] || { echo "FAIL: exit $rc, want 1"; fail=1; }
expect "the broker process"
expect "E401 SH_E_KEY_PERMISSIONS: broker.master has mode 0644"
expect "the work directory is kept"
kept=$(printf '%s' "$out" | sed -n 's/.*the work directory is kept: //p')
[ -n "$kept" ] && [ -f "$kept/broker.log" ] || { echo "FAIL: the work directory was not kept"; fail=1; }
if [ "$fail" -ne 0 ]; then
    printf '%s\n' "$out"
    exit 1
fi
echo "demo failure: names the broker, shows its log's end, keeps $kept"

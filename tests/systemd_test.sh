#!/bin/sh
# systemd_test.sh BUILD-DIR — installs sharehub into a scratch root as a package would
# (cmake --install, DESTDIR), beside the base units of this Debian system, then checks the
# units there: systemd-analyze verify must say nothing (a warning is a failure), the
# sysusers entry must create the service user, and the units' exposure as scored by
# systemd-analyze security must be at most 2.0 of 10.
set -u
build=$1
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
fail=0
# the parts of a Debian 12 root the units refer to: the base units (targets), /bin merged into
# /usr/bin, and kill(1) for ExecReload
mkdir -p "$root/usr/lib/systemd/system" "$root/usr/bin" "$root/etc"
cp -a /usr/lib/systemd/system/. "$root/usr/lib/systemd/system/" 2>/dev/null ||
    cp -a /lib/systemd/system/. "$root/usr/lib/systemd/system/"
ln -s usr/bin "$root/bin"
cp /usr/bin/kill "$root/usr/bin/kill" 2>/dev/null || cp /bin/kill "$root/usr/bin/kill"
DESTDIR=$root cmake --install "$build" --prefix /usr >/dev/null || { echo "FAIL: cmake --install"; exit 1; }
for f in usr/bin/sharehub-broker usr/bin/sharehub-agent usr/bin/sharehub-api usr/bin/sharehub \
         usr/lib/systemd/system/sharehub-broker.service \
         usr/lib/systemd/system/sharehub-agent@.service \
         usr/lib/systemd/system/sharehub-api@.service usr/lib/sysusers.d/sharehub.conf \
         usr/share/doc/sharehub/operations.md usr/share/doc/sharehub/openapi.json; do
    [ -e "$root/$f" ] || { echo "FAIL: /$f not installed"; fail=1; }
done
# the documents installed link only to documents installed
docs="$root/usr/share/doc/sharehub"
for d in "$docs"/*.md; do
    for l in $(grep -o '](\([a-z-]*\.\(md\|json\)\)' "$d" | sed 's/.*(//'); do
        [ -e "$docs/$l" ] || { echo "FAIL: $(basename "$d") links to $l, not installed"; fail=1; }
    done
done
# the sample policy is installed, and loads
"$root/usr/bin/sharehub" policy check "$root/usr/share/sharehub/policy" \
    --registry "$root/usr/share/sharehub/policy/enrolment.yaml" >/dev/null ||
    { echo "FAIL: the installed sample policy does not load"; fail=1; }
# operations.md names the keys where the units hand them over as credentials
for u in sharehub-broker.service sharehub-agent@.service sharehub-api@.service; do
    for p in $(sed -n 's/^LoadCredential=[^:]*:\(.*\)/\1/p' "$root/usr/lib/systemd/system/$u"); do
        shown=$(printf '%s' "$p" | sed 's/%i/881/; s/%i/RAJ/')
        alt=$(printf '%s' "$p" | sed 's/%i/RAJ/')
        grep -qF -- "$shown" "$docs/operations.md" || grep -qF -- "$alt" "$docs/operations.md" ||
            { echo "FAIL: operations.md never names $p ($u)"; fail=1; }
    done
done
grep -qE '/etc/sharehub/agent\.curve|/var/lib/sharehub/agent( |$)|/etc/sharehub/master\.key' \
    "$docs/operations.md" && { echo "FAIL: operations.md names a path no unit uses"; fail=1; }
[ "$fail" -eq 0 ] && echo "systemd: ok   installed documents link only to installed ones; sample policy loads; key paths match the units"
units="sharehub-broker.service sharehub-agent@881.service sharehub-agent@RAJ.service
sharehub-api@881.service"
# shellcheck disable=SC2086
out=$(systemd-analyze verify --root="$root" $units 2>&1)
if [ -n "$out" ]; then
    echo "FAIL: systemd-analyze verify:"
    echo "$out"
    fail=1
else
    echo "systemd: ok   systemd-analyze verify: $units"
fi
if systemd-sysusers --root="$root" >/dev/null 2>&1 && grep -q '^sharehub:' "$root/etc/passwd"; then
    echo "systemd: ok   sysusers.d entry creates the user: $(grep '^sharehub:' "$root/etc/passwd")"
else
    echo "FAIL: systemd-sysusers did not create the sharehub user"
    fail=1
fi
for u in sharehub-broker.service sharehub-agent@881.service sharehub-api@881.service; do
    score=$(systemd-analyze security --root="$root" --offline=yes "$u" 2>/dev/null |
        sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p')
    if systemd-analyze security --root="$root" --offline=yes --threshold=20 "$u" >/dev/null 2>&1; then
        echo "systemd: ok   $u exposure $score of 10 (at most 2.0)"
    else
        echo "FAIL: $u exposure ${score:-unknown} of 10: over 2.0"
        fail=1
    fi
done
exit "$fail"

#!/bin/sh
# cli_test.sh SHAREHUB — the `sharehub` command as a person or script runs it: exit codes,
# messages, refusal of loose key files, and `audit verify` on a store the demo left behind.
set -u
bin=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0
pass=0
check() { # check NAME WANT-EXIT WANT-OUTPUT-SUBSTRING -- command...
    name=$1 want=$2 text=$3
    shift 4
    out=$("$@" 2>&1)
    rc=$?
    if [ "$rc" -ne "$want" ] || ! printf '%s' "$out" | grep -qF -- "$text"; then
        echo "FAIL $name: exit $rc (want $want), output: $out"
        fail=$((fail + 1))
    else
        pass=$((pass + 1))
    fi
}

check version 0 "sharehub 0." -- "$bin" version
check usage 2 "usage:" -- "$bin"
check unknown 2 "unknown command" -- "$bin" frobnicate
check nhs-ok 0 "valid nhs" -- "$bin" ident check nhs "943 476 5919"
check nhs-bad 1 "E300 SH_E_BAD_NHS_NUMBER" -- "$bin" ident check nhs 9434765918
check upn-ok 0 "valid upn" -- "$bin" ident check upn B801200005001
check upn-bad 1 "E301" -- "$bin" ident check upn A801200005001
check org-bad 1 "E303" -- "$bin" ident check org rh8
# the value checked is never echoed back
out=$("$bin" ident check nhs 9434765918 2>&1)
case "$out" in *9434765918*) echo "FAIL echo: identifier echoed"; fail=$((fail + 1)) ;; *) pass=$((pass + 1)) ;; esac

check keygen 0 "mode 0600" -- "$bin" keygen master "$tmp/m.key"
check keygen-again 2 "E501 SH_E_EXISTS" -- "$bin" keygen master "$tmp/m.key"
check keygen-sign 0 "wrote sign key" -- "$bin" keygen sign "$tmp/s.pem"
[ "$(stat -c %a "$tmp/m.key")" = 600 ] && pass=$((pass + 1)) || { echo "FAIL mode"; fail=$((fail + 1)); }

# a store made by the demo, verified, then tampered with
TMPDIR=$tmp "$bin" selfcheck --keep >"$tmp/demo.out" 2>&1
kept=$(sed -n 's/^kept //p' "$tmp/demo.out")
if [ -z "$kept" ]; then
    echo "FAIL selfcheck --keep: $(cat "$tmp/demo.out")"
    fail=$((fail + 1))
else
    # the demo flipped a byte in entry 20 of its store
    check verify-tampered 1 "TAMPERED: E600 SH_E_AUDIT_ALTERED at entry 20" -- \
        "$bin" audit verify "$kept/store" --master "$kept/master.key" --sign-key "$kept/audit-sign.pem"
    chmod 0640 "$kept/master.key"
    check verify-loose-key 2 "E401 SH_E_KEY_PERMISSIONS" -- \
        "$bin" audit verify "$kept/store" --master "$kept/master.key" --sign-key "$kept/audit-sign.pem"
    chmod 0600 "$kept/master.key"
    check verify-wrong-key 2 "E404 SH_E_WRONG_KEY" -- \
        "$bin" audit verify "$kept/store" --master "$tmp/m.key" --sign-key "$kept/audit-sign.pem"
    check verify-missing-key 2 "E400 SH_E_KEY_MISSING" -- \
        "$bin" audit verify "$kept/store" --master "$tmp/none.key" --sign-key "$kept/audit-sign.pem"
    check verify-no-store 2 "No such file" -- \
        "$bin" audit verify "$tmp/nowhere" --master "$kept/master.key" --sign-key "$kept/audit-sign.pem"
    rm -rf "$kept"
fi

# verifying never creates a store
mkdir "$tmp/empty"
check verify-not-a-store 2 "not a sharehub store" -- \
    "$bin" audit verify "$tmp/empty" --master "$tmp/m.key" --sign-key "$tmp/s.pem"
[ ! -e "$tmp/empty/data.mdb" ] && pass=$((pass + 1)) || { echo "FAIL verify created a store"; fail=$((fail + 1)); }

# enrolment: add, refuse a duplicate, revoke
src=$(cd "$(dirname "$0")/.." && pwd)
cp "$src/deploy/policy/enrolment.yaml" "$tmp/reg.yaml"
key=$("$bin" keygen curve "$tmp/a.curve" | sed 's/.*public key: //')
check enrol 0 "enrolled key for RAJ" -- "$bin" enrol --registry "$tmp/reg.yaml" --code RAJ --key "$key"
grep -qF -- "$key" "$tmp/reg.yaml" && pass=$((pass + 1)) || { echo "FAIL enrol wrote no key"; fail=$((fail + 1)); }
check enrol-twice 1 "already enrolled for RAJ" -- "$bin" enrol --registry "$tmp/reg.yaml" --code 881 --key "$key"
check enrol-unknown 1 "no organisation NOBODY" -- "$bin" enrol --registry "$tmp/reg.yaml" --code NOBODY --key "$key"
check enrol-badkey 1 "E402" -- "$bin" enrol --registry "$tmp/reg.yaml" --code RAJ --key short
check revoke 0 "revoked key for RAJ" -- "$bin" enrol --registry "$tmp/reg.yaml" --code RAJ --key "$key" --revoke
rc=0
grep -qF -- "$key" "$tmp/reg.yaml" || rc=$?
[ "$rc" -eq 1 ] && pass=$((pass + 1)) || { echo "FAIL revoke left the key (grep rc $rc)"; fail=$((fail + 1)); }
check registry-still-valid 0 "safeguarding_concern from RAJ" -- "$bin" policy explain \
    --policy "$src/deploy/policy" --registry "$tmp/reg.yaml" --from RAJ --type safeguarding_concern

# --help on every subcommand, exit 0, on stdout
for c in status publish inbox show child triage keygen ident audit policy enrol selfcheck; do
    check "help-$c" 0 "sharehub" -- "$bin" "$c" --help
done
check agent-unreachable 2 "cannot reach the agent" -- "$bin" status --socket "$tmp/nothing.sock"

echo "cli: $pass passed, $fail failed"
[ "$fail" -eq 0 ]

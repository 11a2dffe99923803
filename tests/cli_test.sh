#!/bin/sh
# cli_test.sh SHAREHUB — the `sharehub` command as a person or script runs it: exit codes,
# messages, refusal of loose key files, `audit verify` on a store the demo left behind, and the
# conventions every command keeps (docs/cli.md): help everywhere, errors that name the option
# or argument or file, bad numbers refused, errors as JSON with --json; the daemons' own.
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
check keygen-again 1 "E501 SH_E_EXISTS" -- "$bin" keygen master "$tmp/m.key"
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
    check verify-loose-key 1 "E401 SH_E_KEY_PERMISSIONS" -- \
        "$bin" audit verify "$kept/store" --master "$kept/master.key" --sign-key "$kept/audit-sign.pem"
    chmod 0600 "$kept/master.key"
    check verify-wrong-key 1 "E404 SH_E_WRONG_KEY" -- \
        "$bin" audit verify "$kept/store" --master "$tmp/m.key" --sign-key "$kept/audit-sign.pem"
    check verify-missing-key 1 "E400 SH_E_KEY_MISSING" -- \
        "$bin" audit verify "$kept/store" --master "$tmp/none.key" --sign-key "$kept/audit-sign.pem"
    check verify-no-store 1 "No such file" -- \
        "$bin" audit verify "$tmp/nowhere" --master "$kept/master.key" --sign-key "$kept/audit-sign.pem"
    rm -rf "$kept"
fi

# verifying never creates a store
mkdir "$tmp/empty"
check verify-not-a-store 1 "not a sharehub store" -- \
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

check enrol-says-rewritten 0 "comments and layout are not kept" -- "$bin" enrol --registry \
    "$tmp/reg.yaml" --code RAJ --key "$key"

# --help on every command and subcommand: its own usage, exit 0, on stdout
for c in status publish inbox show child triage keygen ident audit policy enrol selfcheck; do
    check "help-$c" 0 "usage: sharehub $c" -- "$bin" "$c" --help
done
for c in verify grant replay subject whatif event; do
    check "help-audit-$c" 0 "usage: sharehub audit $c" -- "$bin" audit "$c" --help
    check "help-audit-$c-h" 0 "usage: sharehub audit $c" -- "$bin" audit "$c" -h
done
for c in check explain; do
    check "help-policy-$c" 0 "usage: sharehub policy $c" -- "$bin" policy "$c" --help
done
for h in -h --help help; do
    check "help-top$h" 0 "usage: sharehub COMMAND" -- "$bin" "$h"
done
check help-of 0 "usage: sharehub publish" -- "$bin" help publish
help_out=$("$bin" inbox --help 2>/dev/null)
[ -n "$help_out" ] && pass=$((pass + 1)) || { echo "FAIL help goes to stdout"; fail=$((fail + 1)); }

# usage errors name what is wrong and exit 2; nothing silently becomes 0
check unknown-option 2 "unknown option '--bogus'" -- "$bin" keygen master "$tmp/x.key" --bogus
check unknown-option-audit 2 "unknown option '--bogus'" -- "$bin" audit replay "$tmp" --bogus
check missing-value 2 "option '--user' needs a value" -- "$bin" inbox --purpose p --user
check bad-since 2 "option '--since' needs a whole number from 0" -- "$bin" inbox --user u \
    --purpose p --since abc --socket "$tmp/none.sock"
check bad-level 2 "option '--level' needs a whole number from 1 to 4, not 'five'" -- "$bin" \
    triage 01a2267d-8047-7294-bea0-c7f0f0390bbf --level five --outcome early_help \
    --rationale r --user u
check bad-examples 2 "option '--examples' needs a whole number" -- "$bin" audit whatif \
    --store s --policy p --registry r --keyring k --examples many
check extra-argument 2 "extra argument 'again'" -- "$bin" keygen master "$tmp/y.key" again
check missing-argument 2 "missing argument EVENT-ID" -- "$bin" audit event "$tmp" --master m \
    --sign-key s --user u --purpose p
check missing-option 2 "missing option '--registry'" -- "$bin" enrol --code RAJ --key k
check no-keys 2 "no keys: give --keyring FILE" -- "$bin" audit verify "$tmp"
check bad-decision 2 "--decision 'maybe': want ok, denied or failed" -- "$bin" audit replay \
    "$tmp" --keyring k --decision maybe
check bad-key-kind 2 "not a kind of key: want master, sign or curve" -- "$bin" keygen rsa "$tmp/k"
check synthetic-bad-la 2 "LA 'XYZ': not a DfE local authority code" -- "$bin" ident synthetic 5 XYZ
check synthetic-bad-seed 2 "SEED 'abc': want a whole number" -- "$bin" ident synthetic abc
check synthetic-distinct 0 "9996544524" -- "$bin" ident synthetic 100766
n1=$("$bin" ident synthetic 100766 | sed 's/.*"nhs_number":"\([0-9]*\)".*/\1/')
n2=$("$bin" ident synthetic 101262 | sed 's/.*"nhs_number":"\([0-9]*\)".*/\1/')
[ -n "$n1" ] && [ "$n1" != "$n2" ] && pass=$((pass + 1)) || { echo "FAIL seeds 100766 and 101262 repeat a child"; fail=$((fail + 1)); }
check unknown-audit 2 "unknown command 'frob'" -- "$bin" audit frob

# the operation failed: exit 1, the message names the file
check agent-unreachable 1 "cannot reach the agent at $tmp/nothing.sock" -- "$bin" status \
    --socket "$tmp/nothing.sock"
check publish-directory 1 "$tmp: is a directory" -- "$bin" publish "$tmp" --user u \
    --socket "$tmp/nothing.sock"
head -c 1200000 /dev/zero | tr '\0' ' ' >"$tmp/big.json"
check publish-too-large 1 "too large (limit 1 MiB)" -- "$bin" publish "$tmp/big.json" --user u \
    --socket "$tmp/nothing.sock"
check publish-missing-file 1 "$tmp/none.json: No such file" -- "$bin" publish "$tmp/none.json" \
    --user u --socket "$tmp/nothing.sock"
echo '[1,2]' >"$tmp/array.json"
check publish-not-object 1 "not a JSON object" -- "$bin" publish "$tmp/array.json" --user u \
    --socket "$tmp/nothing.sock"

# with --json, errors are JSON on stderr: code, name, message
out=$("$bin" status --socket "$tmp/nothing.sock" --json 2>&1 >/dev/null)
case "$out" in
'{"ok":false,"code":102,"name":"SH_E_IO","message":"cannot reach the agent at '*) pass=$((pass + 1)) ;;
*) echo "FAIL json error: $out"; fail=$((fail + 1)) ;;
esac
out=$("$bin" inbox --json --bogus 2>&1 >/dev/null)
case "$out" in
'{"ok":false,"code":0,"name":"usage","message":"unknown option '"'"'--bogus'"'"'"}') pass=$((pass + 1)) ;;
*) echo "FAIL json usage error: $out"; fail=$((fail + 1)) ;;
esac

# the daemons keep the same conventions
bindir=$(cd "$(dirname "$bin")/.." && pwd)
for d in broker/sharehub-broker agents/sharehub-agent; do
    dname=$(basename "$d")
    check "$dname-help" 0 "usage: $dname" -- "$bindir/$d" --help
    check "$dname-version" 0 "$dname 0." -- "$bindir/$d" --version
    check "$dname-unknown" 2 "unknown option '--bogus'" -- "$bindir/$d" --bogus
done
check broker-bad-number 2 "option '--window' needs a whole number from 1 to 4096, not 'lots'" -- \
    "$bindir/broker/sharehub-broker" --window lots
check broker-missing 2 "missing option '--endpoint'" -- "$bindir/broker/sharehub-broker" --store s
check agent-missing 2 "missing option '--config'" -- "$bindir/agents/sharehub-agent"
printf "org: '881'\nrole: social_care\nbroker: {endpoint: 'tcp://127.0.0.1:1', public_key: '%s'}\ncurve_key: c\nstore: s\nmaster_key: m\nsign_key: k\nsocket: %s/a.sock\nheartbeat_ms: 2.5\n" \
    "$key" "$tmp" >"$tmp/agent.yaml"
check agent-bad-number 1 "heartbeat_ms: '2.5' is not a whole number from 100 to 3600000" -- \
    "$bindir/agents/sharehub-agent" --config "$tmp/agent.yaml"
sed -i -e 's/^role: .*/role: 2/' -e '/^heartbeat_ms/d' "$tmp/agent.yaml"
check agent-enum-number 1 "role: '2' is not one of: education, health, social_care" -- \
    "$bindir/agents/sharehub-agent" --config "$tmp/agent.yaml"
check agent-no-config 1 "$tmp/none.yaml" -- "$bindir/agents/sharehub-agent" --config "$tmp/none.yaml"

echo "cli: $pass passed, $fail failed"
[ "$fail" -eq 0 ]

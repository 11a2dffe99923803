#!/bin/sh
# federation_test.sh BUILD — two authorities' brokers joined by peer links, on loopback
# (docs/federation.md): Essex (881) and Thurrock (883), each with its own broker, store, keys,
# registry and policy, and a signed federation directory. An Essex emergency department (RAJ)
# raises a safeguarding concern about a Thurrock child: Essex's broker permits it to the
# Thurrock hub (883) under the cross-border protocol and queues it for its peer; Thurrock's link
# forwards it; Thurrock's broker decides again and delivers it minimised; the hub's agent checks
# RAJ's signature on its copy. An attendance Essex permits but Thurrock's policy does not cover
# is denied at Thurrock's border, and RAJ gets the DENIED receipt. Bad directories are refused.
# On failure the work directory is kept; PAUSE=N also keeps the processes running N seconds.
set -u
build=$(cd "${1:?usage: federation_test.sh BUILD}" && pwd)
root=$(cd "$(dirname "$0")/.." && pwd)
sh="$build/tools/sharehub"
work=$(mktemp -d "${TMPDIR:-/tmp}/sharehub-fed-XXXXXX")
chmod 700 "$work"
pids=""
cleanup() {
    for p in $pids; do kill -TERM "$p" 2>/dev/null; done
    for p in $pids; do wait "$p" 2>/dev/null; done
    [ "${KEEP:-}" = 1 ] || rm -rf "$work"
}
trap cleanup EXIT INT TERM
fail() {
    echo "federation_test: FAILED: $*" >&2
    for f in "$work"/*.log; do
        echo "--- $f" >&2
        tail -n 12 "$f" >&2
    done
    KEEP=1
    [ -z "${PAUSE:-}" ] || sleep "$PAUSE"
    echo "federation_test: kept $work" >&2
    exit 1
}
cd "$work" || exit 1
port=$((20000 + $$ % 11000))
ep_e="tcp://127.0.0.1:$port" ep_t="tcp://127.0.0.1:$((port + 1))"
pub() { sed 's/.*public key: //'; }

for n in essex thurrock raj hub; do "$sh" keygen master "$n.master" >/dev/null || fail keygen; done
se=$("$sh" keygen sign essex.sign.pem | pub)
st=$("$sh" keygen sign thurrock.sign.pem | pub)
sraj=$("$sh" keygen sign raj.sign.pem | pub)
shub=$("$sh" keygen sign hub.sign.pem | pub)
fed=$("$sh" keygen sign federation.pem | pub)
be=$("$sh" keygen curve essex.curve | pub)
bt=$("$sh" keygen curve thurrock.curve | pub)
kraj=$("$sh" keygen curve raj.curve | pub)
khub=$("$sh" keygen curve hub.curve | pub)
lt=$("$sh" keygen curve link-thurrock.curve | pub) # Thurrock's link: Essex into Thurrock
le=$("$sh" keygen curve link-essex.curve | pub)    # Essex's link: Thurrock into Essex

cat >directory.yaml <<EOF
federation: weisf
serial: 1
authorities:
  - la_code: "881"
    name: Essex County Council
    broker: {code: SH881, endpoint: "$ep_e", curve_key: '$be', sign_key: "$se"}
    organisations:
      - {code: RAJ, name: Acute trust emergency departments, sector: health, locality: essex,
         service_type: emergency_department, sign_keys: ["$sraj"]}
  - la_code: "883"
    name: Thurrock Council
    broker: {code: SH883, endpoint: "$ep_t", curve_key: '$bt', sign_key: "$st"}
    organisations:
      - {code: "883", name: Thurrock Children's Social Care front door, sector: social_care,
         locality: thurrock, la_code: "883"}
EOF
"$sh" directory sign directory.yaml --key federation.pem >/dev/null || fail "directory sign"

cat >essex.registry.yaml <<EOF
organisations:
  - {code: RAJ, name: Acute trust emergency departments, sector: health, locality: essex,
     service_type: emergency_department, keys: ['$kraj']}
  - {code: LA883, name: Thurrock's broker, sector: peer, locality: thurrock, la_code: "883",
     keys: ['$lt', '$le']}
EOF
cat >thurrock.registry.yaml <<EOF
organisations:
  - {code: "883", name: Thurrock Children's Social Care front door, sector: social_care,
     locality: thurrock, la_code: "883", keys: ['$khub']}
  - {code: LA881, name: Essex's broker, sector: peer, locality: essex, la_code: "881",
     keys: ['$lt', '$le']}
EOF

isp() { # isp ID EVENT-TYPE PURPOSE A9 PARA ITEMS
    cat <<EOF
id: $1
version: "1"
title: Cross-border $2 from Essex emergency departments to the Thurrock front door
status: active
review_date: "2027-06-30"
lead: "883"
purpose_statement: >-
  Essex emergency departments tell the Thurrock front door about Thurrock children they see, so
  that the authority responsible for the child can act.
gateways: [Children Act 1989 s47, Children Act 2004 s11]
purposes: [$3]
event_types: [$2]
senders: [{organisation: RAJ}]
recipients:
  - {organisation: "883", data_items: [$6]}
lawful_basis: {article6: 6(1)(e), article9: $4, dpa_schedule1_paragraph: $5}
consent: not_required
controllers: [{organisation: RAJ, role: controller}, {organisation: "883", role: controller}]
retention: {keep: 6 years, then: review}
dpia: {reference: FED-DPIA-1, completed_on: "2026-08-14"}
signatories:
  - {organisation: RAJ, role: Caldicott Guardian, signed_on: "2026-09-01", version: "1"}
  - {organisation: "883", role: Director of Children's Services, signed_on: "2026-09-02", version: "1"}
EOF
}
mkdir essex.policy thurrock.policy
isp isp-xb-concerns safeguarding_concern safeguarding "9(2)(g)" "Schedule 1 paragraph 18" \
    "child, safeguarding_concern" >essex.policy/isp-xb-concerns.yaml
# Thurrock allows the hub less: the concern without the child's identifiers beyond the NHS number
isp isp-xb-concerns safeguarding_concern safeguarding "9(2)(g)" "Schedule 1 paragraph 18" \
    "child.nhs_number, safeguarding_concern" >thurrock.policy/isp-xb-concerns.yaml
# only Essex covers attendances: Thurrock's border denies them
isp isp-xb-attendances unscheduled_care_attendance direct_care "9(2)(h)" "Schedule 1 paragraph 2" \
    "child, unscheduled_care_attendance" >essex.policy/isp-xb-attendances.yaml

broker() { # broker NAME LA ENDPOINT HTTP-PORT
    "$build/broker/sharehub-broker" --endpoint "$3" --store "$1.store" --master "$1.master" \
        --http "127.0.0.1:$4" \
        --sign-key "$1.sign.pem" --curve-key "$1.curve" --registry "$1.registry.yaml" \
        --policy "$1.policy" --org "SH$2" --directory directory.yaml --federation-key "$fed" \
        --authority "$2" --heartbeat-ms 1000 --redeliver-ms 1000 --log-level warning \
        2>>"$1.log" &
    pids="$pids $!"
}
# a directory that does not verify is refused at start, naming the problem
cp directory.yaml.sig good.sig
sed 's/Thurrock Council/Thurrock Borough Council/' directory.yaml >altered.yaml
cp good.sig altered.yaml.sig
out=$("$build/broker/sharehub-broker" --endpoint "$ep_e" --store bad.store --master essex.master \
    --sign-key essex.sign.pem --curve-key essex.curve --registry essex.registry.yaml \
    --policy essex.policy --directory altered.yaml --federation-key "$fed" --authority 881 2>&1)
[ $? = 1 ] || fail "an altered directory was not refused"
printf '%s' "$out" | grep -q "E812 .*does not verify under the federation key" ||
    fail "an altered directory: $out"

broker essex 881 "$ep_e" $((port + 10))
broker thurrock 883 "$ep_t" $((port + 11))
"$build/broker/sharehub-link" --directory directory.yaml --federation-key "$fed" --authority 883 \
    --peer 881 --curve-key link-thurrock.curve --local "$ep_t" --local-key "$bt" \
    --heartbeat-ms 1000 2>>link-thurrock.log &
pids="$pids $!"
"$build/broker/sharehub-link" --directory directory.yaml --federation-key "$fed" --authority 881 \
    --peer 883 --curve-key link-essex.curve --local "$ep_e" --local-key "$be" \
    --heartbeat-ms 1000 2>>link-essex.log &
pids="$pids $!"

printf 'org=RAJ key=%s\norg=883 key=%s\n' "$sraj" "$shub" >senders
agent() { # agent NAME ORG ROLE ENDPOINT BROKER-KEY
    cat >"$1.yaml" <<EOF
org: "$2"
role: $3
broker: {endpoint: "$4", public_key: '$5'}
curve_key: $work/$1.curve
store: $work/$1.store
master_key: $work/$1.master
sign_key: $work/$1.sign.pem
senders: $work/senders
socket: $work/$1.sock
heartbeat_ms: 1000
log_level: warning
EOF
    "$build/agents/sharehub-agent" --config "$1.yaml" 2>>"$1.log" &
    pids="$pids $!"
}
agent raj RAJ health "$ep_e" "$be"
agent hub 883 social_care "$ep_t" "$bt"
for a in raj hub; do
    n=0
    until "$sh" status --socket "$a.sock" --json 2>/dev/null | grep -q '"connected":true'; do
        n=$((n + 1))
        [ $n -lt 100 ] || fail "the $a agent did not connect"
        sleep 0.1
    done
done

said() { # said ID WANT: waits until RAJ's record of its event ID has the broker's line WANT
    n=0
    until "$sh" show "$1" --socket raj.sock --user ed-nurse --purpose audit --json |
        sed -n 's/.*"broker":"\([^"]*\)".*/\1/p' | grep -q "$2"; do
        n=$((n + 1))
        [ $n -lt 100 ] || fail "Essex's broker did not say '$2' of $1"
        sleep 0.1
    done
}
child=$("$sh" ident synthetic 2026 883)
nhs=$(printf '%s' "$child" | sed -n 's/.*"nhs_number":"\([^"]*\)".*/\1/p')
out=$(cat <<EOF | "$sh" publish - --socket raj.sock --user ed-nurse --purpose safeguarding
{"event_type":"safeguarding_concern","purpose":"safeguarding","consent":"not_required",
 "level_of_need":3,"lawful_basis":{"article6":"e_public_task","article9":"2g_substantial_public_interest","dpa_schedule1_paragraph":18},
 "child":$child,
 "safeguarding_concern":{"category":"neglect","immediate_risk":false,
  "narrative":"Synthetic test narrative: attended twice this month with untreated injuries.",
  "reported_by":{"org_code":"RAJ","role":"ED nurse"}}}
EOF
) || fail "publish: $out"
concern=$(printf '%s' "$out" | awk '{print $2}')
said "$concern" "883 permit isp-xb-concerns@1"

n=0
until "$sh" inbox --socket hub.sock --user t --purpose t --summary --json | grep -q '"type":"safeguarding_concern"'; do
    n=$((n + 1))
    [ $n -lt 150 ] || fail "the concern did not reach the Thurrock hub"
    sleep 0.1
done
shown=$("$sh" show "$concern" --socket hub.sock --user sw-t --purpose safeguarding --json) ||
    fail "show at the hub"
printf '%s' "$shown" | grep -q "$nhs" || fail "the hub's copy lacks the NHS number"
printf '%s' "$shown" | grep -q '"given_name"' && fail "Thurrock's protocol withholds the name: $shown"
printf '%s' "$shown" | grep -q "untreated injuries" || fail "the hub's copy lacks the narrative"

# an attendance: Essex permits it, Thurrock's border denies it (no protocol there)
out=$(cat <<EOF | "$sh" publish - --socket raj.sock --user ed-nurse --purpose direct_care
{"event_type":"unscheduled_care_attendance","purpose":"direct_care","consent":"not_required",
 "lawful_basis":{"article6":"e_public_task","article9":"2h_health_social_care","dpa_schedule1_paragraph":2},
 "child":{"nhs_number":"$nhs"},
 "unscheduled_care_attendance":{"site_code":"RAJ01","setting":"emergency_department",
  "arrived_at_ms":$(($(date +%s) * 1000)),"presenting_complaint":"Synthetic: fall","outcome":"discharged"}}
EOF
) || fail "publish the attendance: $out"
att=$(printf '%s' "$out" | awk '{print $2}')
said "$att" "883 permit isp-xb-attendances@1"
# Thurrock's broker answers with a DENIED receipt (800: no protocol of its own covers it),
# carried back by Essex's link and delivered to RAJ by Essex's broker
n=0
denied=""
until [ -n "$denied" ]; do
    for r in $("$sh" inbox --socket raj.sock --user ed-nurse --purpose audit --summary --json |
        grep -o '"event_id":"[^"]*","type":"delivery_receipt"' | cut -d'"' -f4); do
        "$sh" show "$r" --socket raj.sock --user ed-nurse --purpose audit --json |
            grep -q "\"for_event_id\":\"$att\",\"recipient_org\":\"883\",\"status\":\"denied\",\"reason_code\":800" &&
            denied=$r
    done
    n=$((n + 1))
    [ $n -lt 100 ] || fail "no DENIED receipt for $att reached RAJ"
    [ -n "$denied" ] || sleep 0.1
done
# each broker says how its peer is, in /readyz and in its metrics
r=$(curl -s "http://127.0.0.1:$((port + 10))/readyz")
printf '%s' "$r" | grep -q "^peer LA883 (authority 883): up, 0 waiting" || fail "Essex's /readyz: $r"
m=$(curl -s "http://127.0.0.1:$((port + 11))/metrics")
printf '%s' "$m" | grep -q '^sharehub_broker_peer_up{peer="LA881",authority="881"} 1' ||
    fail "Thurrock's metrics lack peer_up 1: $(printf '%s' "$m" | grep peer_up)"
printf '%s' "$m" | grep -q '^sharehub_broker_forwards_total{peer="LA881"} [1-9]' ||
    fail "Thurrock's metrics lack its forwards: $(printf '%s' "$m" | grep forwards)"

# every chain verifies, and each broker's against the heads of it the other's chain holds
for p in $pids; do kill -TERM "$p" 2>/dev/null; done
for p in $pids; do wait "$p" 2>/dev/null; done
pids=""
for n in essex thurrock; do
    "$sh" audit grant "$n.store" --master "$n.master" --sign-key "$n.sign.pem" --keyring auditor.keys \
        --name "$n" >/dev/null || fail "audit grant $n"
done
grep -q "heads witnessed ([0-9]* refused)" link-thurrock.log || fail "the link witnessed nothing"
grep -q " 0 heads witnessed" link-thurrock.log link-essex.log && fail "a link witnessed nothing"
v=$("$sh" audit verify essex=essex.store thurrock=thurrock.store --keyring auditor.keys 2>&1) ||
    fail "audit verify: $v"
printf '%s\n' "$v" | grep -q "witness" || fail "audit verify says nothing of witnessing: $v"
printf '%s\n' "$v" | sed 's/^/  /'
echo "federation_test: ok (concern $concern delivered across the border; attendance $att denied at Thurrock's)"

#!/bin/sh
# federation_test.sh BUILD — two authorities' brokers joined by peer links, on loopback
# (docs/federation.md): Essex (881) and Thurrock (883), each with its own broker, store, keys,
# registry and policy, and a signed federation directory. An Essex emergency department (RAJ)
# raises a safeguarding concern about a Thurrock child: Essex's broker permits it to the
# Thurrock hub (883) under the cross-border protocol and queues it for its peer; Thurrock's link
# forwards it; Thurrock's broker decides again and delivers it minimised; the hub's agent checks
# RAJ's signature on its copy. An attendance Essex permits but Thurrock's policy does not cover
# is denied at Thurrock's border, and RAJ gets the DENIED receipt. A child-protection plan moves
# from Essex to Thurrock (ended by Essex's hub, started by Thurrock's): the CP-IS view of both
# authorities' unscheduled care (RAJ, and Thurrock's RTX) names Thurrock. Each broker reports
# its peer in /readyz and its metrics; both chains verify, each against the heads of it the
# other holds. A school move across the border: the Essex hub's plan status goes to the child's
# school of record, the Thurrock school once it has told the Essex hub about the child, and the
# Essex school the child left is told nothing more. Consent withdrawn with the Essex hub is
# honoured by Thurrock's broker for a Thurrock school's request. A peer revoked at Essex is
# refused and what waits for it crosses once it is enrolled again. Bad directories are refused.
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

for n in essex thurrock raj hub hub881 rtx sch sch883; do "$sh" keygen master "$n.master" >/dev/null || fail keygen; done
se=$("$sh" keygen sign essex.sign.pem | pub)
st=$("$sh" keygen sign thurrock.sign.pem | pub)
sraj=$("$sh" keygen sign raj.sign.pem | pub)
shub=$("$sh" keygen sign hub.sign.pem | pub)
s881=$("$sh" keygen sign hub881.sign.pem | pub)
srtx=$("$sh" keygen sign rtx.sign.pem | pub)
k881=$("$sh" keygen curve hub881.curve | pub)
krtx=$("$sh" keygen curve rtx.curve | pub)
ssch=$("$sh" keygen sign sch.sign.pem | pub)
ssch883=$("$sh" keygen sign sch883.sign.pem | pub)
ksch=$("$sh" keygen curve sch.curve | pub)
ksch883=$("$sh" keygen curve sch883.curve | pub)
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
      - {code: "881", name: Essex Children and Families Hub, sector: social_care, locality: essex,
         la_code: "881", sign_keys: ["$s881"]}
      - {code: "8819990", name: Example Academy (illustrative), sector: education, locality: essex,
         sign_keys: ["$ssch"]}
  - la_code: "883"
    name: Thurrock Council
    broker: {code: SH883, endpoint: "$ep_t", curve_key: '$bt', sign_key: "$st"}
    organisations:
      - {code: "883", name: Thurrock Children's Social Care front door, sector: social_care,
         locality: thurrock, la_code: "883", sign_keys: ["$shub"]}
      - {code: RTX, name: Thurrock urgent treatment centre (illustrative), sector: health,
         locality: thurrock, service_type: emergency_department, sign_keys: ["$srtx"]}
      - {code: "8834001", name: "Example School, Grays (illustrative)", sector: education,
         locality: thurrock, sign_keys: ["$ssch883"]}
EOF
"$sh" directory sign directory.yaml --key federation.pem >/dev/null || fail "directory sign"

cat >essex.registry.yaml <<EOF
organisations:
  - {code: RAJ, name: Acute trust emergency departments, sector: health, locality: essex,
     service_type: emergency_department, keys: ['$kraj']}
  - {code: "881", name: Essex Children and Families Hub, sector: social_care, locality: essex,
     la_code: "881", keys: ['$k881']}
  - {code: "8819990", name: Example Academy (illustrative), sector: education, locality: essex,
     keys: ['$ksch']}
  - {code: LA883, name: Thurrock's broker, sector: peer, locality: thurrock, la_code: "883",
     keys: ['$lt', '$le']}
EOF
cat >thurrock.registry.yaml <<EOF
organisations:
  - {code: "883", name: Thurrock Children's Social Care front door, sector: social_care,
     locality: thurrock, la_code: "883", keys: ['$khub']}
  - {code: RTX, name: Thurrock urgent treatment centre (illustrative), sector: health,
     locality: thurrock, service_type: emergency_department, keys: ['$krtx']}
  - {code: "8834001", name: "Example School, Grays (illustrative)", sector: education,
     locality: thurrock, keys: ['$ksch883']}
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

# CP-IS across the border: both hubs' plan status to both authorities' unscheduled care
for d in essex.policy thurrock.policy; do
    cat >"$d/isp-xb-cpis.yaml" <<EOF
id: isp-xb-cpis
version: "1"
title: Child-protection flags for unscheduled care in Essex and Thurrock
status: active
review_date: "2027-06-30"
lead: "881"
purpose_statement: >-
  Clinicians in either authority's unscheduled care see whether a child is on a child-protection
  plan and which authority to call, wherever the plan is held.
gateways: [Children Act 2004 s11, Health and Social Care Act 2012 s251B]
purposes: [safeguarding]
event_types: [cp_plan_status]
senders: [{organisation: "881"}, {organisation: "883"}]
recipients:
  - {organisation: RAJ, data_items: [child.nhs_number, child.date_of_birth, cp_plan_status]}
  - {organisation: RTX, data_items: [child.nhs_number, child.date_of_birth, cp_plan_status]}
lawful_basis: {article6: 6(1)(e), article9: 9(2)(g), dpa_schedule1_paragraph: Schedule 1 paragraph 18}
consent: not_required
controllers: [{organisation: "881", role: controller}, {organisation: "883", role: controller},
              {organisation: RAJ, role: controller}, {organisation: RTX, role: controller}]
retention: {keep: 1 year, then: erase}
dpia: {reference: FED-DPIA-2, completed_on: "2026-08-14"}
signatories:
  - {organisation: "881", role: Director of Children's Services, signed_on: "2026-09-01", version: "1"}
  - {organisation: "883", role: Director of Children's Services, signed_on: "2026-09-02", version: "1"}
  - {organisation: RAJ, role: Caldicott Guardian, signed_on: "2026-09-03", version: "1"}
  - {organisation: RTX, role: Caldicott Guardian, signed_on: "2026-09-04", version: "1"}
EOF
done

# a school in one authority teaching a child of the other: either school tells the Essex hub of
# poor attendance (and so becomes the child's school of record at the broker that decides); the
# Essex hub's plan status goes to the child's school of record, wherever it is
for d in essex.policy thurrock.policy; do
    cat >"$d/isp-xb-schools.yaml" <<EOF
id: isp-xb-schools
version: "1"
title: Schools either side of the border and the Essex hub
status: active
review_date: "2027-06-30"
lead: "881"
purpose_statement: >-
  A school tells the child's local authority about poor attendance, wherever the school is;
  the authority tells the child's school of record that a child-protection plan starts or ends.
gateways: [Education Act 1996 s444, Children Act 2004 s11]
purposes: [safeguarding]
event_types: [attendance_concern, cp_plan_status]
senders: [{organisation: "8819990"}, {organisation: "8834001"}, {organisation: "881"}]
recipients:
  - {organisation: "881", data_items: [child, attendance_concern]}
  - {relationship: child_school, data_items: [child.nhs_number, cp_plan_status.status,
                                              cp_plan_status.responsible_la]}
lawful_basis: {article6: 6(1)(e), article9: 9(2)(g), dpa_schedule1_paragraph: Schedule 1 paragraph 18}
consent: not_required
controllers: [{organisation: "881", role: controller}, {organisation: "8819990", role: controller},
              {organisation: "8834001", role: controller}]
retention: {keep: 1 year, then: review}
dpia: {reference: FED-DPIA-3, completed_on: "2026-08-14"}
signatories:
  - {organisation: "881", role: Director of Children's Services, signed_on: "2026-09-01", version: "1"}
  - {organisation: "8819990", signs_for: education, role: Headteacher, signed_on: "2026-09-02", version: "1"}
  - {organisation: "8834001", role: Headteacher, signed_on: "2026-09-03", version: "1"}
EOF
done

# consent: each hub's consent records go to the other's, and Thurrock's early-help protocol needs
# the family's consent: a withdrawal recorded in Essex is honoured in Thurrock
for d in essex.policy thurrock.policy; do
    cat >"$d/isp-xb-consent.yaml" <<EOF
id: isp-xb-consent
version: "1"
title: Consent records between the Essex and Thurrock front doors
status: active
review_date: "2027-06-30"
lead: "881"
purpose_statement: >-
  A family's decision about consent, recorded by one authority's front door, holds in the other
  authority too, so that a withdrawal stops every later share that relied on the consent.
gateways: [Children Act 1989 s17, Children Act 2004 s10]
purposes: [early_help, safeguarding]
event_types: [consent]
senders: [{organisation: "881"}, {organisation: "883"}]
recipients:
  - {organisation: "881", data_items: [child, consent_change]}
  - {organisation: "883", data_items: [child, consent_change]}
lawful_basis: {article6: 6(1)(e), article9: none}
consent: not_required
controllers: [{organisation: "881", role: controller}, {organisation: "883", role: controller}]
retention: {keep: 6 years, then: erase}
dpia: {reference: FED-DPIA-4, completed_on: "2026-08-14"}
signatories:
  - {organisation: "881", role: Director of Children's Services, signed_on: "2026-09-01", version: "1"}
  - {organisation: "883", role: Director of Children's Services, signed_on: "2026-09-02", version: "1"}
EOF
done
cat >thurrock.policy/isp-early-help.yaml <<EOF
id: isp-early-help
version: "1"
title: Requests for early help from Thurrock schools, with the family's consent
status: active
review_date: "2027-06-30"
lead: "883"
purpose_statement: >-
  A school asks the Thurrock front door for early help for a family who have agreed to it.
gateways: [Children Act 1989 s17]
purposes: [early_help]
event_types: [request_for_support]
senders: [{organisation: "8834001"}]
recipients:
  - {organisation: "883", data_items: [child, level_of_need, request_for_support]}
lawful_basis: {article6: 6(1)(e), article9: 9(2)(g), dpa_schedule1_paragraph: Schedule 1 paragraph 18}
consent: required
controllers: [{organisation: "883", role: controller}, {organisation: "8834001", role: controller}]
retention: {keep: 6 years, then: review}
dpia: {reference: FED-DPIA-5, completed_on: "2026-08-14"}
signatories:
  - {organisation: "883", role: Director of Children's Services, signed_on: "2026-09-01", version: "1"}
  - {organisation: "8834001", role: Headteacher, signed_on: "2026-09-02", version: "1"}
EOF

broker() { # broker NAME LA ENDPOINT HTTP-PORT [MORE OPTIONS]
    n=$1 la=$2 ep=$3 hp=$4
    shift 4
    "$build/broker/sharehub-broker" --endpoint "$ep" --store "$n.store" --master "$n.master" \
        --http "127.0.0.1:$hp" "$@" \
        --sign-key "$n.sign.pem" --curve-key "$n.curve" --registry "$n.registry.yaml" \
        --policy "$n.policy" --org "SH$la" --directory directory.yaml --federation-key "$fed" \
        --authority "$la" --heartbeat-ms 1000 --redeliver-ms 1000 --log-level warning \
        2>>"$n.log" &
    pids="$pids $!"
    eval "pid_$n=$!"
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
# a link the broker is to start for an authority no peer is enrolled for: refused at start
out=$("$build/broker/sharehub-broker" --endpoint "$ep_e" --store bad.store --master essex.master \
    --sign-key essex.sign.pem --curve-key essex.curve --registry essex.registry.yaml \
    --policy essex.policy --directory directory.yaml --federation-key "$fed" --authority 881 \
    --link 882=link-essex.curve 2>&1)
[ $? = 1 ] || fail "a link to an authority with no peer enrolled was not refused"
printf '%s' "$out" | grep -q "no peer LA882 is enrolled" || fail "--link 882: $out"
"$build/broker/sharehub-broker" --endpoint "$ep_e" --store bad.store --master essex.master \
    --sign-key essex.sign.pem --curve-key essex.curve --registry essex.registry.yaml \
    --policy essex.policy --link 88=x >/dev/null 2>&1
[ $? = 2 ] || fail "--link 88=x without --directory is not a usage error"

# Essex's broker starts its link itself (its log is the broker's); Thurrock's runs apart
broker essex 881 "$ep_e" $((port + 10)) --link 883=link-essex.curve
broker thurrock 883 "$ep_t" $((port + 11))
"$build/broker/sharehub-link" --directory directory.yaml --federation-key "$fed" --authority 883 \
    --peer 881 --curve-key link-thurrock.curve --local "$ep_t" --local-key "$bt" \
    --heartbeat-ms 1000 2>>link-thurrock.log &
pids="$pids $!"

printf 'org=RAJ key=%s\norg=883 key=%s\norg=881 key=%s\norg=RTX key=%s\n' "$sraj" "$shub" \
    "$s881" "$srtx" >senders
printf 'org=8819990 key=%s\norg=8834001 key=%s\n' "$ssch" "$ssch883" >>senders
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
agent hub881 881 social_care "$ep_e" "$be"
agent rtx RTX health "$ep_t" "$bt"
agent sch 8819990 education "$ep_e" "$be"
agent sch883 8834001 education "$ep_t" "$bt"
for a in raj hub hub881 rtx sch sch883; do
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
# and RAJ's tracking of the attendance says so, with Thurrock's reason
t=$("$sh" show "$att" --socket raj.sock --user ed-nurse --purpose audit --json | grep -o '"tracking":.*')
printf '%s' "$t" | grep -q '"decision":"permitted".*"state":"denied"' || fail "RAJ's tracking: $t"
printf '%s' "$t" | grep -q '"reason_code":800' || fail "RAJ's tracking lacks the code: $t"
# a child-protection plan moves from Essex to Thurrock: Essex's hub ends it, Thurrock's starts it;
# both authorities' unscheduled care (RAJ in Essex, RTX in Thurrock) see the flag move
basis='"lawful_basis":{"article6":"e_public_task","article9":"2g_substantial_public_interest","dpa_schedule1_paragraph":18}'
plan() { # plan SOCKET STATUS LA [END-DATE-FIELD]
    cat <<EOF | "$sh" publish - --socket "$1" --user sw --purpose safeguarding >/dev/null || fail "publish $2 at $1"
{"event_type":"cp_plan_status","purpose":"safeguarding","consent":"not_required","level_of_need":4,
 $basis,"child":$child,
 "cp_plan_status":{"status":"$2","category":"neglect","start_date":"$(date -u +%F)"${4:+,\"$4\":\"$(date -u +%F)\"},
  "responsible_la":{"la_code":"$3","office_hours_phone":"0300 000 0$3","out_of_hours_phone":"0300 111 0$3"}}}
EOF
}
flag_is() { # flag_is SOCKET LA: waits until the CP-IS view there names LA as responsible
    n=0
    until "$sh" child "$nhs" --socket "$1" --user clinician --purpose direct_care --json |
        grep -q "\"responsible_la\":\"$2\""; do
        n=$((n + 1))
        [ $n -lt 100 ] || fail "the CP-IS view at $1 does not name $2: $("$sh" child "$nhs" --socket "$1" --user clinician --purpose direct_care --json)"
        sleep 0.1
    done
}
plan hub881.sock started 881
flag_is raj.sock 881
flag_is rtx.sock 881
plan hub881.sock ended 881 end_date
sleep 0.5
plan hub.sock started 883
flag_is raj.sock 883
flag_is rtx.sock 883

# the cross-border school: child 2 attends the Essex academy, then a school in Grays (Thurrock)
child2=$("$sh" ident synthetic 2027 881)
nhs2=$(printf '%s' "$child2" | sed -n 's/.*"nhs_number":"\([^"]*\)".*/\1/p')
attend() { # attend SOCKET: the school there tells the Essex hub of poor attendance
    cat <<EOF | "$sh" publish - --socket "$1" --user dsl --purpose safeguarding >/dev/null || fail "attendance at $1"
{"event_type":"attendance_concern","purpose":"safeguarding","consent":"not_required","level_of_need":2,
 $basis,"child":$child2,
 "attendance_concern":{"period_start":"2026-09-01","period_end":"2026-10-31","attendance_permille":812,
  "unauthorised_sessions":14,"persistent_absence":true,"severe_absence":false}}
EOF
}
plan2() { # plan2 STATUS: the Essex hub's plan for child 2
    cat <<EOF | "$sh" publish - --socket hub881.sock --user sw --purpose safeguarding >/dev/null || fail "plan2 $1"
{"event_type":"cp_plan_status","purpose":"safeguarding","consent":"not_required","level_of_need":4,
 $basis,"child":$child2,
 "cp_plan_status":{"status":"$1","category":"neglect","start_date":"$(date -u +%F)"${2:+,\"end_date\":\"$(date -u +%F)\"},
  "responsible_la":{"la_code":"881","office_hours_phone":"0300 000 0881","out_of_hours_phone":"0300 111 0881"}}}
EOF
}
plans_at() { # plans_at SOCKET N: waits until the school there holds N cp_plan_status events
    n=0
    until [ "$("$sh" inbox --socket "$1" --user dsl --purpose safeguarding --summary --json |
        grep -o '"type":"cp_plan_status"' | wc -l)" -eq "$2" ]; do
        n=$((n + 1))
        [ $n -lt 100 ] || fail "the school at $1 does not hold $2 plan events"
        sleep 0.1
    done
}
hub_has() { # hub_has N: waits until the Essex hub holds N attendance concerns
    n=0
    until [ "$("$sh" inbox --socket hub881.sock --user sw --purpose safeguarding --summary --json |
        grep -o '"type":"attendance_concern"' | wc -l)" -eq "$1" ]; do
        n=$((n + 1))
        [ $n -lt 100 ] || fail "the Essex hub does not hold $1 attendance concerns"
        sleep 0.1
    done
}
attend sch.sock
hub_has 1
plan2 started
plans_at sch.sock 1
attend sch883.sock # (crosses to Essex: the Grays school is now the school of record there)
hub_has 2
plan2 ended end
plans_at sch883.sock 1
sleep 1
plans_at sch.sock 1 # (the academy the child left is told nothing more)

# consent recorded in Essex, honoured in Thurrock: the Grays school's request for early help for
# child 3 (the family's consent claimed) reaches the Thurrock front door; the family withdraws
# consent with the Essex hub; the school's next request is denied at Thurrock's broker
child3=$("$sh" ident synthetic 2028 883)
rfs() { # rfs: the Grays school asks for early help, claiming consent; prints the event id
    cat <<EOF | "$sh" publish - --socket sch883.sock --user dsl --purpose early_help | awk '{print $2}'
{"event_type":"request_for_support","purpose":"early_help","consent":"given","level_of_need":2,
 $basis,"child":$child3,
 "request_for_support":{"referrer":{"org_code":"8834001","role":"Designated Safeguarding Lead"},
  "concerns":[{"category":"neglect","about":"the child","examples":"Synthetic example."}]}}
EOF
}
said_at() { # said_at SOCKET ID WANT: waits until that agency's record of ID has the line WANT
    n=0
    until "$sh" show "$2" --socket "$1" --user dsl --purpose audit --json |
        sed -n 's/.*"broker":"\([^"]*\)".*/\1/p' | grep -q "$3"; do
        n=$((n + 1))
        [ $n -lt 100 ] || fail "the broker did not say '$3' of $2: $("$sh" show "$2" --socket "$1" --user dsl --purpose audit --json | head -c 600)"
        sleep 0.1
    done
}
first=$(rfs)
said_at sch883.sock "$first" "883 permit isp-early-help@1"
cat <<EOF | "$sh" publish - --socket hub881.sock --user sw --purpose early_help >/dev/null || fail "consent"
{"event_type":"consent","purpose":"early_help","consent":"not_required",
 "lawful_basis":{"article6":"e_public_task","article9":"none"},"child":$child3,
 "consent_change":{"action":"withdrawn","scope":"early_help","given_by":"parental_responsibility",
  "recorded_on":"$(date -u +%F)"}}
EOF
n=0
until "$sh" inbox --socket hub.sock --user sw --purpose early_help --summary --json | grep -q '"type":"consent"'; do
    n=$((n + 1))
    [ $n -lt 100 ] || fail "the withdrawal did not reach the Thurrock front door"
    sleep 0.1
done
second=$(rfs)
said_at sch883.sock "$second" "883 deny 806 isp-early-help@1"

# a peer revoked at Essex (its link's key removed, SIGHUP) is refused from then on: what Essex
# permits to Thurrock waits in Thurrock's queue there; enrolled again, the link takes it
"$sh" enrol --registry essex.registry.yaml --code LA883 --key "$lt" --revoke >/dev/null ||
    fail "revoke the link's key"
kill -HUP "$pid_essex"
sleep 1
before=$("$sh" inbox --socket hub.sock --user t --purpose t --summary --json | grep -o '"type":"safeguarding_concern"' | wc -l)
out=$(cat <<EOF | "$sh" publish - --socket raj.sock --user ed-nurse --purpose safeguarding
{"event_type":"safeguarding_concern","purpose":"safeguarding","consent":"not_required",
 "level_of_need":3,$basis,"child":$child,
 "safeguarding_concern":{"category":"neglect","immediate_risk":false,
  "narrative":"Synthetic test narrative: a second attendance.","reported_by":{"org_code":"RAJ","role":"ED nurse"}}}
EOF
) || fail "publish while revoked: $out"
held=$(printf '%s' "$out" | awk '{print $2}')
said "$held" "883 permit isp-xb-concerns@1"
n=0
until grep -q "the remote broker answered E701" link-thurrock.log; do
    n=$((n + 1))
    [ $n -lt 100 ] || fail "the revoked link was not refused"
    sleep 0.1
done
sleep 2
now=$("$sh" inbox --socket hub.sock --user t --purpose t --summary --json | grep -o '"type":"safeguarding_concern"' | wc -l)
[ "$now" = "$before" ] || fail "a concern crossed while the link was revoked"
r=$(curl -s "http://127.0.0.1:$((port + 10))/readyz")
printf '%s' "$r" | grep -q "^peer LA883 (authority 883): down, 1 waiting" || fail "Essex's /readyz while revoked: $r"
"$sh" enrol --registry essex.registry.yaml --code LA883 --key "$lt" >/dev/null || fail "enrol again"
kill -HUP "$pid_essex"
n=0
until [ "$("$sh" inbox --socket hub.sock --user t --purpose t --summary --json | grep -o '"type":"safeguarding_concern"' | wc -l)" -gt "$before" ]; do
    n=$((n + 1))
    [ $n -lt 150 ] || fail "the held concern did not cross once the link was enrolled again"
    sleep 0.1
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
grep -q " 0 heads witnessed" link-thurrock.log essex.log && fail "a link witnessed nothing"
# Essex's own link started again with each reload (it reads the directory when it starts)
"$sh" audit replay essex.store --master essex.master --sign-key essex.sign.pem --action admin |
    grep -q "the link from authority 883 started again" || fail "Essex's link was not restarted on reload"
v=$("$sh" audit verify essex=essex.store thurrock=thurrock.store --keyring auditor.keys 2>&1) ||
    fail "audit verify: $v"
printf '%s\n' "$v" | grep -q "witness" || fail "audit verify says nothing of witnessing: $v"
printf '%s\n' "$v" | sed 's/^/  /'
echo "federation_test: ok (concern $concern delivered across the border; attendance $att denied at Thurrock's; the CP plan moved to Thurrock in both CP-IS views; the plan followed child 2 to the Thurrock school; Essex's consent withdrawal held in Thurrock)"

#!/bin/sh
# policy_cli_test.sh SHAREHUB SOURCE-DIR — `sharehub policy check` and `policy explain` as an
# information-governance officer runs them, on a policy written with dates relative to today,
# and on the shipped sample (which must always load).
set -u
bin=$1 src=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pass=0 fail=0
ok() { pass=$((pass + 1)); }
bad() { echo "FAIL $*"; fail=$((fail + 1)); }
expect() { # expect NAME WANT-EXIT PATTERN -- cmd...
    name=$1 want=$2 pat=$3
    shift 4
    out=$("$@" 2>&1)
    rc=$?
    if [ "$rc" -eq "$want" ] && printf '%s\n' "$out" | grep -qE -- "$pat"; then ok; else
        bad "$name: exit $rc (want $want), output:"
        printf '%s\n' "$out"
    fi
}

inyear=$(date -u -d '+1 year' +%F)
ago5=$(date -u -d '-5 months' +%F)
cp "$src/deploy/policy/enrolment.yaml" "$tmp/enrolment.yaml"
cat >"$tmp/isp-cpis.yaml" <<YAML
id: isp-cpis
version: 1
title: CP flags to health
status: active
review_date: "$inyear"
lead: "881"
purposes: [safeguarding]
event_types: [cp_plan_status]
senders: [{organisation: "881"}]
recipients:
  - {sector: health, data_items: [child.nhs_number, cp_plan_status.status]}
lawful_basis: {article6: public_task, article9: substantial_public_interest, dpa_schedule1_paragraph: 18}
consent: not_required
purpose_statement: Unscheduled care sees the child-protection flag, to act on it at once.
gateways: [Children Act 2004 s11]
controllers: [{organisation: "881", role: controller}, {sector: health, role: controller}]
retention: {keep: 1 year, then: erase}
dpia: {reference: TEST-DPIA-1, completed_on: "2026-01-05"}
signatories:
  - {organisation: "881", role: Director of Children's Services, signed_on: "2026-01-06", version: "1"}
  - {organisation: RAJ, signs_for: health, role: Caldicott Guardian, signed_on: "2026-01-07", version: "1"}
YAML
expect check-clean 0 "^1 protocols \(1 in force\), 0 errors, 0 warnings$" -- \
    "$bin" policy check "$tmp" --registry "$tmp/enrolment.yaml"
expect explain-permit 0 "PERMIT  RAJ" -- "$bin" policy explain --policy "$tmp" \
    --registry "$tmp/enrolment.yaml" --from 881 --type cp_plan_status
expect explain-items 0 "sees      child.nhs_number, cp_plan_status.status" -- "$bin" policy explain \
    --policy "$tmp" --registry "$tmp/enrolment.yaml" --from 881 --type cp_plan_status
expect explain-deny 0 "no protocol names these as recipients of a cp_plan_status from 881 \(E800\): 881EDU, 882, 8819990" -- \
    "$bin" policy explain --policy "$tmp" --registry "$tmp/enrolment.yaml" --from 881 --type cp_plan_status
expect explain-unknown-type 2 "not an event type" -- "$bin" policy explain --policy "$tmp" \
    --registry "$tmp/enrolment.yaml" --from 881 --type parking_ticket
expect explain-unknown-org 2 "not in the enrolment registry" -- "$bin" policy explain \
    --policy "$tmp" --registry "$tmp/enrolment.yaml" --from NOBODY --type cp_plan_status
# --school names the child's school of record (it was in the usage text and not parsed)
sed -e 's/id: isp-cpis/id: isp-school/' -e 's/recipients:/recipients:\n  - {relationship: child_school, data_items: [cp_plan_status.status]}/' \
    -e '/sector: health, data_items/d' "$tmp/isp-cpis.yaml" >"$tmp/isp-school.yaml"
echo '  - {organisation: "881EDU", signs_for: education, role: Director of Education, signed_on: "2026-01-06", version: "1"}' >>"$tmp/isp-school.yaml"
expect explain-school 0 "PERMIT  8819990" -- "$bin" policy explain --policy "$tmp" \
    --registry "$tmp/enrolment.yaml" --from 881 --type cp_plan_status --school 8819990
expect explain-no-school 0 "recipients of a cp_plan_status from 881 \(E800\): .*8819990" -- "$bin" policy explain --policy "$tmp" \
    --registry "$tmp/enrolment.yaml" --from 881 --type cp_plan_status
expect explain-bad-school 2 "--school NOSUCH is not in the enrolment registry" -- "$bin" policy \
    explain --policy "$tmp" --registry "$tmp/enrolment.yaml" --from 881 --type cp_plan_status \
    --school NOSUCH
expect explain-bad-option 2 "unknown option '--bogus'" -- "$bin" policy explain --policy "$tmp" \
    --registry "$tmp/enrolment.yaml" --from 881 --type cp_plan_status --bogus x
rm "$tmp/isp-school.yaml"

# explain in an IG officer's words: every option, names not numbers, the closest protocol for
# that recipient, the consent ground of a permit, --json for tools (on the shipped sample)
ex() { "$bin" policy explain --policy "$src/deploy/policy" --registry "$src/deploy/policy/enrolment.yaml" "$@"; }
expect explain-header 0 "decided on 2027-02-01, for safeguarding, level of need 2, consent refused" -- \
    ex --from RAJ --type safeguarding_concern --level 2 --consent refused --date 2027-02-01
expect explain-closest 0 "closest   isp-safeguarding-concerns-police@1 .*why       E806 SH_E_DENY_CONSENT: isp-safeguarding-concerns-police@1 shares only on a risk of significant harm" -- \
    sh -c "'$bin' policy explain --policy '$src/deploy/policy' --registry '$src/deploy/policy/enrolment.yaml' --from RAJ --type safeguarding_concern --level 2 --consent given --to ESXPOL | tr '\n' ' '"
expect explain-ground-consent 0 "consent   consent given" -- \
    ex --from RAJ --type safeguarding_concern --level 2 --consent given --to 881
expect explain-ground-risk 0 "consent   without consent: the event asserts a risk of significant harm" -- \
    ex --from RAJ --type safeguarding_concern --level 2 --consent not_sought_risk_of_harm --risk --to ESXPOL
expect explain-judgement 0 "consent   without consent: a practitioner's recorded judgement of significant harm" -- \
    ex --from 8819990 --type request_for_support --level 3 --consent refused --judgement --to 881
expect explain-no-risk-fact 0 "below level of need 4 the event must assert that risk" -- \
    ex --from RAJ --type safeguarding_concern --level 3 --consent not_sought_risk_of_harm --to 881
expect explain-retention 0 "keeps it  2 years, then erase it" -- \
    ex --from RAJ --type safeguarding_concern --level 4 --consent refused --to ESXPOL
expect explain-purpose 0 "does not cover the purpose early_help \(it covers safeguarding\)" -- \
    ex --from RAJ --type safeguarding_concern --purpose early_help --to 881
expect explain-basis 0 "the event's lawful basis \(6\(1\)\(e\) public task; 9\(2\)\(h\) health or social care, Schedule 1 paragraph 2\) is not its \(6\(1\)\(e\) public task; 9\(2\)\(g\)" -- \
    ex --from RAJ --type safeguarding_concern --basis "6(1)(e), 9(2)(h), paragraph 2" --to 881
expect explain-lapsed 0 "isp-safeguarding-concerns@3 lapsed on 2027-09-30 \(3 months after its review date 2027-06-30\)" -- \
    ex --from RAJ --type safeguarding_concern --date 2027-10-01 --to 881
expect explain-cpis-ambulance 0 "PERMIT  RYC" -- ex --from 881 --type cp_plan_status --to RYC
expect explain-cpis-not-community 0 "no protocol names these as recipients of a cp_plan_status from 881 \(E800\): .*R1L" -- \
    ex --from 881 --type cp_plan_status
expect explain-json 0 '"decision":"deny","code":806,"code_name":"SH_E_DENY_CONSENT","isp":"isp-safeguarding-concerns-police@1"' -- \
    ex --from RAJ --type safeguarding_concern --level 2 --consent given --to ESXPOL --json
expect explain-json-ground 0 '"ground":"level_4","ground_words":"without consent: level of need 4"' -- \
    ex --from RAJ --type safeguarding_concern --level 4 --consent refused --to ESXPOL --json
expect explain-bad-date 2 "--date '2027-02-30' is not a calendar date" -- \
    ex --from RAJ --type safeguarding_concern --date 2027-02-30
expect explain-bad-basis 2 "--basis '6\(1\)\(f\)' is not a lawful basis" -- \
    ex --from RAJ --type safeguarding_concern --basis "6(1)(f)"
expect explain-bad-purpose 2 "--purpose 'gossip' is not a purpose: want one of" -- \
    ex --from RAJ --type safeguarding_concern --purpose gossip
expect explain-risk-wrong-type 2 "--risk: only a safeguarding_concern or a request_for_support" -- \
    ex --from 881 --type cp_plan_status --risk

sed -e "s/$inyear/$ago5/" -e 's/isp-cpis/isp-old/' "$tmp/isp-cpis.yaml" >"$tmp/isp-old.yaml"
lapse=$(date -u -d "$ago5 +3 months" +%F)
expect check-lapsed 1 "error: .*isp-old@1: lapsed on $lapse \(3 months after its review date $ago5\)" -- \
    "$bin" policy check "$tmp" --registry "$tmp/enrolment.yaml"
rm "$tmp/isp-old.yaml"
# protocols for disjoint levels of need never meet: no contradiction, whatever their items
sed -e 's/id: isp-cpis/id: isp-lo/' -e 's/event_types: \[cp_plan_status\]/event_types: [looked_after_status]/' \
    -e 's/^consent: not_required/consent: not_required\nlevel_of_need: {min: 1, max: 2}/' \
    "$tmp/isp-cpis.yaml" >"$tmp/isp-lo.yaml"
sed -e 's/id: isp-lo/id: isp-hi/' -e 's/min: 1, max: 2/min: 3, max: 4/' \
    -e 's/child.nhs_number, //' "$tmp/isp-lo.yaml" >"$tmp/isp-hi.yaml"
expect check-disjoint-levels 0 "^3 protocols \(3 in force\), 0 errors, 0 warnings$" -- \
    "$bin" policy check "$tmp" --registry "$tmp/enrolment.yaml"
sed -i -e 's/min: 3, max: 4/min: 2, max: 4/' "$tmp/isp-hi.yaml"
expect check-meeting-levels 1 "contradicts isp-lo@1: .*level of need 2-2" -- \
    "$bin" policy check "$tmp" --registry "$tmp/enrolment.yaml"
rm "$tmp/isp-lo.yaml" "$tmp/isp-hi.yaml"
# a gateway sharehub does not know (a mistyped citation) and a signature dated after today
# are warnings: worth a second look, not wrong
sed -e 's/id: isp-cpis/id: isp-gw/' -e 's/event_types: \[cp_plan_status\]/event_types: [looked_after_status]/' \
    -e 's/gateways: \[Children Act 2004 s11\]/gateways: [Children Act 2004 s 11]/' \
    -e "s/signed_on: \"2026-01-07\"/signed_on: \"$inyear\"/" "$tmp/isp-cpis.yaml" >"$tmp/isp-gw.yaml"
expect check-gateway 0 "warning: .*isp-gw@1: gateway 'Children Act 2004 s 11' is not one sharehub knows: check the citation" -- \
    "$bin" policy check "$tmp" --registry "$tmp/enrolment.yaml"
expect check-future-signature 0 "warning: .*isp-gw@1: RAJ's signature is dated $inyear, after today" -- \
    "$bin" policy check "$tmp" --registry "$tmp/enrolment.yaml"
rm "$tmp/isp-gw.yaml"
# a protocol in a file the broker does not load is named, not silently skipped
sed -e 's/id: isp-cpis/id: isp-misnamed/' "$tmp/isp-cpis.yaml" >"$tmp/misnamed-protocol.yaml"
expect check-misnamed 0 "warning: .*misnamed-protocol.yaml: looks like a protocol but is not named isp-\*.yaml" -- \
    "$bin" policy check "$tmp" --registry "$tmp/enrolment.yaml"
rm "$tmp/misnamed-protocol.yaml"
sed -e 's/id: isp-cpis/id: isp-x/' "$tmp/isp-cpis.yaml" >"$tmp/isp-x.yaml"
expect check-overlap 0 "warning: .*overlaps with isp-x@1" -- \
    "$bin" policy check "$tmp" --registry "$tmp/enrolment.yaml"
sed -i -e 's/child.nhs_number, //' "$tmp/isp-x.yaml"
expect check-contradiction 1 "error: .*contradicts isp-x@1: .*different data items" -- \
    "$bin" policy check "$tmp" --registry "$tmp/enrolment.yaml"
sed -e 's/organisation: RAJ/organisation: NOSUCH/' -e 's/id: isp-cpis/id: isp-y/' \
    -e 's/event_types: \[cp_plan_status\]/event_types: [looked_after_status]/' \
    "$tmp/isp-cpis.yaml" >"$tmp/isp-y.yaml"
rm "$tmp/isp-x.yaml"
expect check-unknown-org 1 "organisation NOSUCH \(signatory\) is not in the enrolment registry" -- \
    "$bin" policy check "$tmp" --registry "$tmp/enrolment.yaml"
rm "$tmp/isp-y.yaml"
echo "colour: blue" >>"$tmp/isp-cpis.yaml"
expect check-unknown-field 1 "error: .*isp-cpis.yaml.*colour — not a protocol key" -- \
    "$bin" policy check "$tmp"

# a directory of broken protocols (tests/policy-broken: one mistake per file): each mistake is
# named with its file, its key and the fix, and the check fails
broken=$("$bin" policy check "$src/tests/policy-broken" --registry "$src/deploy/policy/enrolment.yaml" 2>&1)
rc=$?
[ "$rc" -eq 1 ] && ok || bad "broken: exit $rc, want 1"
while IFS='|' read -r file pat; do
    if printf '%s\n' "$broken" | grep -qE -- "^error: .*/$file\.yaml: $pat"; then ok; else
        bad "broken $file: no line '$pat' in:"
        printf '%s\n' "$broken"
    fi
done <<'LINES'
isp-b01-legitimate-interests|lawful_basis.article6: '6\(1\)\(f\)' is legitimate interests, .*use 6\(1\)\(e\) public task
isp-b02-part1-paragraph|lawful_basis.dpa_schedule1_paragraph: paragraph 2 is in Part 1, .*give a Part 2 paragraph
isp-b03-no-paragraph|lawful_basis.dpa_schedule1_paragraph: missing: 9\(2\)\(g\) needs a Schedule 1 Part 2 condition
isp-b04-consent-basis|consent: the lawful basis is consent \(6\(1\)\(a\)\), so consent must be required: write consent: required
isp-b05-no-purpose|purpose_statement: missing: say in a sentence or more why
isp-b06-no-gateway|gateways: missing: name the legal gateway
isp-b07-no-controllers|controllers: missing: name who controls the data
isp-b08-no-retention|retention: missing for recipient 1: say how long it keeps
isp-b09-bad-retention|retention.keep: '6 yrs' is not a retention period: write a whole number and days
isp-b10-no-dpia|dpia: missing: give the data protection impact assessment
isp-b11-party-not-signed|recipient 2: ESXPOL is a party but has not signed: add a signatory with organisation: "ESXPOL"
isp-b12-sector-not-signed|sender 2: no one has signed for the health sector: add a signatory .* signs_for: health
isp-b13-old-signature|signatories 2: 881EDU signed version 1, but this is version 2: a changed protocol needs every party to sign it again
isp-b14-unknown-service|recipient 2: service type 'casualty' is not one sharehub knows
isp-b15-approvers|Unexpected key: approvers — approvers are now signatories
LINES
n=$(printf '%s\n' "$broken" | grep -c '^error: ')
[ "$n" -eq 15 ] && ok || bad "broken: $n error lines, want 15 (one per mistake)"
printf '%s\n' "$broken" | grep -qE "^warning: .*safeguarding-protocol.yaml: looks like a protocol but is not named isp-\*.yaml" && ok ||
    bad "broken: the misnamed protocol is not named"
printf '%s\n' "$broken" | grep -qE "^15 errors, 1 warnings: the broker will not load these protocols" && ok ||
    bad "broken: no summary line"

# the review page of the sample is what `policy show` makes of it today
if (cd "$src" && "$bin" policy show deploy/policy --registry deploy/policy/enrolment.yaml | diff -u docs/policy-review.md -); then ok; else
    bad "docs/policy-review.md is not what 'sharehub policy show' prints: regenerate it"
fi
expect show-help 0 "usage: sharehub policy show" -- "$bin" policy show --help
expect show-broken 1 "E810 SH_E_POLICY_FILE" -- "$bin" policy show "$src/tests/policy-broken"

# the shipped sample always loads (its lifecycle findings change with the calendar)
out=$("$bin" policy check "$src/deploy/policy" --registry "$src/deploy/policy/enrolment.yaml" 2>&1)
if printf '%s\n' "$out" | grep -qE "^12 protocols" && ! printf '%s\n' "$out" | grep -q "E81"; then ok; else
    bad "sample-loads: $out"
fi
echo "policy cli: $pass passed, $fail failed"
[ "$fail" -eq 0 ]

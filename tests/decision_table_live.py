#!/usr/bin/env python3
"""decision_table_live.py BUILD-DIR — the rows of tests/decision-table.md marked live, and its
table of consent that follows the child, sent through a real broker and agents (tests/api_rig.py,
the sample policy) with the broker's clock on the row's date (libfaketime). For each row the
broker's own per-recipient outcome is checked: `ORG permit RULE`, `ORG deny CODE RULE`, or — for
an organisation no protocol names (E800) or whose protocol does not name the sender (E807) — no
line at all. Synthetic children only (sharehub ident synthetic).
"""
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from api_rig import ROOT, Rig, faketime_env  # noqa: E402

AGENCY = {"881": "hub", "8819990": "school", "RAJ": "health"}
ART6 = {"6(1)(e)": "e_public_task", "6(1)(c)": "c_legal_obligation"}
ART9 = {"9(2)(g)": "2g_substantial_public_interest", "9(2)(h)": "2h_health_social_care",
        "none": "none"}
TODAY = time.strftime("%Y-%m-%d", time.gmtime())
failures = []



def check(ok, what):
    print("decision table: %s %s" % ("ok  " if ok else "FAIL", what))
    if not ok:
        failures.append(what)


def tables():
    """The decision rows and the linking rows, as lists of cell lists."""
    rows, links = [], []
    with open(os.path.join(ROOT, "tests", "decision-table.md")) as f:
        for line in f:
            if not line.startswith("| "):
                continue
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if cells[0].isdigit() and len(cells) == 16:
                rows.append(cells)
            elif cells[0].startswith("L") and cells[0][1:].isdigit():
                links.append(cells)
    return rows, links


def basis(text, event_type):
    if text == "-":
        if event_type == "unscheduled_care_attendance":
            return {"article6": "e_public_task", "article9": "2h_health_social_care",
                    "dpa_schedule1_paragraph": 2}
        return {"article6": "e_public_task", "article9": "2g_substantial_public_interest",
                "dpa_schedule1_paragraph": 18}
    parts = [p.strip() for p in text.split(",")]
    b = {"article6": ART6[parts[0]], "article9": ART9[parts[1]]}
    if len(parts) > 2:
        b["dpa_schedule1_paragraph"] = int(parts[2])
    return b


def body(event_type, facts, sender, now_ms):
    pro = {"org_code": sender, "role": "Designated Safeguarding Lead"}
    if event_type == "safeguarding_concern":
        return {"category": "neglect", "narrative": "Synthetic narrative for the table.",
                "reported_by": pro, "immediate_risk": facts == "immediate risk"}
    if event_type == "request_for_support":
        return {"referrer": pro, "priority": facts == "priority",
                "concerns": [{"category": "neglect", "about": "the child",
                              "examples": "Synthetic example."}]}
    if event_type == "cp_plan_status":
        return {"status": "started", "category": "neglect", "start_date": TODAY,
                "responsible_la": {"la_code": "881", "office_hours_phone": "0333 000 0000",
                                   "out_of_hours_phone": "0345 000 0000"}}
    if event_type == "access_notification":
        return {"site_code": "RAJ01", "setting": "emergency_department",
                "accessed_at_ms": now_ms, "flag": "child_protection_plan"}
    if event_type == "unscheduled_care_attendance":
        return {"site_code": "RAJ01", "setting": "emergency_department", "arrived_at_ms": now_ms,
                "presenting_complaint": "Synthetic complaint", "outcome": "discharged"}
    if event_type == "exclusion":
        return {"kind": "suspension", "school_code": sender, "start_date": TODAY, "sessions": 2,
                "reason": "persistent_disruption"}
    if event_type == "consent":
        return {"action": "recorded", "scope": "early_help",
                "given_by": "parental_responsibility", "recorded_on": TODAY}
    raise ValueError("no live body for " + event_type)


def publish(rig, sender, event):
    """Publishes event at the sender's agent; the broker's outcome lines once it has decided."""
    sock = rig.socket(AGENCY[sender])
    r = subprocess.run([rig.sh, "publish", "-", "--socket", sock, "--user", "table",
                        "--purpose", "test"], input=json.dumps(event), capture_output=True,
                       text=True)
    if r.returncode != 0:
        raise RuntimeError("publish from %s: %s%s" % (sender, r.stdout, r.stderr))
    eid = r.stdout.split()[1]
    said = []

    def decided():
        s = subprocess.run([rig.sh, "show", eid, "--socket", sock, "--user", "table",
                            "--purpose", "test", "--json"], capture_output=True, text=True)
        if s.returncode != 0:
            return False
        broker = json.loads(s.stdout.splitlines()[-1]).get("item", {}).get("broker")
        if broker == "waiting in the outbox":  # (sent, not yet answered: no decision yet)
            return False
        if broker:
            said[:] = broker.splitlines()
        return bool(broker)
    rig.wait(decided, "the broker's outcome for " + eid)
    return said


def expect(said, to, decision, rule, what):
    mine = [line for line in said if line.split(" ")[0] == to]
    if decision == "permit":
        ok = len(mine) == 1 and mine[0].split(" ")[1:3] == ["permit", rule]
    elif decision in ("deny E800", "deny E807"):
        ok = not mine  # audited at the broker, not listed to the sender
    else:
        ok = len(mine) == 1 and mine[0].split(" ")[1:4] == ["deny", decision[6:], rule]
    check(ok, "%s: %s %s %s (the broker said: %s)" % (what, to, decision, rule,
                                                      "; ".join(said[1:]) or "-"))


def child(rig, seed, ids=None):
    c = json.loads(rig.run(rig.sh, "ident", "synthetic", str(seed), "881").stdout)
    if ids is not None:  # keep only these identifiers ("nhs", "upn", "la")
        for key, name in (("nhs_number", "nhs"), ("upn", "upn"), ("la_child_id", "la")):
            if name not in ids:
                del c[key]
    return c


def event(kind, purpose, level, consent, facts, basis_text, sender, kid):
    now_ms = int(time.time() * 1000)
    e = {"event_type": kind, "purpose": purpose, "consent": consent, "level_of_need": level,
         "lawful_basis": basis(basis_text, kind), "child": kid,
         kind if kind != "consent" else "consent_change": body(kind, facts, sender, now_ms)}
    if facts == "judgement":
        e["harm_judgement"] = {"made_by": {"org_code": sender, "role": "Social worker",
                                           "name": "A Practitioner"},
                               "made_at_ms": now_ms}
    return e


def run_rows(build, date, rows):
    rig = Rig(build, {}, apis=[], broker_env=faketime_env("@%s 12:00:00" % date))
    ok = False
    try:
        for c in rows:
            n, what, sender, kind, purpose, level, consent, facts, btext = c[:9]
            to, decision, rule = c[10], c[11], c[12]
            kid = child(rig, 7000 + int(n))
            said = publish(rig, sender, event(kind, purpose, int(level), consent, facts, btext,
                                              sender, kid))
            expect(said, to, decision, rule, "row %s on %s (%s)" % (n, date, what))
        ok = True
    finally:
        bad = rig.stop(keep=bool(failures) or not ok)
        check(not bad, "the rig stopped cleanly on %s %s" % (date, bad or ""))


def run_links(build, links):
    rig = Rig(build, {}, apis=[])
    ok = False
    try:
        for c in links:
            n, what, record, together, carries, facts, to, decision, rule = c
            seed = 8000 + int(n[1:])
            for step in record.split(", then "):  # "withdrawn (nhs)", "given (upn)"
                action, ids = step.split(" (")
                kid = child(rig, seed, ids.rstrip(")").split(", "))
                e = event("consent", "early_help", 0, "not_required", "-", "6(1)(e), none",
                          "8819990", kid)
                e["consent_change"]["action"] = {"withdrawn": "withdrawn", "refused": "refused",
                                                 "given": "recorded"}[action]
                publish(rig, "8819990", e)
                time.sleep(0.01)  # (records are ordered by time)
                if together != "-" and step == record.split(", then ")[0]:
                    for group in together.split("; "):  # events that carry ids together
                        kid = child(rig, seed, group.split(", "))
                        publish(rig, "8819990", event("safeguarding_concern", "safeguarding", 2,
                                                      "given", "-", "-", "8819990", kid))
            kid = child(rig, seed, carries.split(", "))
            said = publish(rig, "8819990", event("request_for_support", "early_help", 3, "given",
                                                 facts, "-", "8819990", kid))
            expect(said, to, decision, rule, "%s (%s)" % (n, what))
        ok = True
    finally:
        bad = rig.stop(keep=bool(failures) or not ok)
        check(not bad, "the linking rig stopped cleanly %s" % (bad or ""))


def main():
    build = sys.argv[1]
    rows, links = tables()
    live = [r for r in rows if r[15] == "yes"]
    check(len(rows) >= 60 and len(live) >= 30 and len(links) >= 5,
          "the table has %d rows, %d of them live, and %d linking rows" %
          (len(rows), len(live), len(links)))
    for date in sorted({r[9] for r in live}):
        run_rows(build, date, [r for r in live if r[9] == date])
    run_links(build, links)
    print("decision table: %s (%d failed)" % ("FAILED" if failures else "passed", len(failures)))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""retention_test.py BUILD-DIR — retention enforced at the recipients, through the real broker
and agents (tests/api_rig.py, the sample policy with one-day retentions): a copy the protocol
says to erase is erased on its day — gone from reads, inbox, search and the offline auditor,
its day key forgotten — with an audit entry that names the rule and not the data; a copy the
protocol says to review is kept and marked, held until a person reviews it (sharehub review:
kept longer, or erased). The agents are restarted with their clock two days
on (libfaketime): what fell due while they were stopped goes before anyone can read it. The
broker, which keeps events a day here (--keep-events 1d), restarts two days on as well: its
copies become hashes, a copy still queued for an agent that was away is erased and its sender
told, and its day keys are forgotten. Synthetic children only.
"""
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from api_rig import Rig, faketime_env  # noqa: E402
import workspace_test  # noqa: E402  (its Browser: headless Chromium with axe-core)

failures = []



def check(ok, what):
    print("retention: %s %s" % ("ok  " if ok else "FAIL", what))
    if not ok:
        failures.append(what)


def one_day(pol):
    """Concerns are kept a day at the hub, then erased; CP flags a day at health, then reviewed."""
    for name, old, new in [
            ("isp-safeguarding-concerns.yaml", "retention: {keep: 6 years, then: review}",
             "retention: {keep: 1 day, then: erase}"),
            ("isp-cpis.yaml", "retention: {keep: 1 year, then: erase}",
             "retention: {keep: 1 day, then: review}")]:
        p = os.path.join(pol, name)
        with open(p) as f:
            text = f.read()
        assert old in text, name
        with open(p, "w") as f:
            f.write(text.replace(old, new))


def publish(rig, agency, event):
    r = subprocess.run([rig.sh, "publish", "-", "--socket", rig.socket(agency), "--user", "t",
                        "--purpose", "test"], input=json.dumps(event), capture_output=True,
                       text=True)
    if r.returncode != 0:
        raise RuntimeError("publish at %s: %s%s" % (agency, r.stdout, r.stderr))
    return r.stdout.split()[1]


def show(rig, agency, eid):
    r = subprocess.run([rig.sh, "show", eid, "--socket", rig.socket(agency), "--user", "auditor",
                        "--purpose", "retention test", "--json"], capture_output=True, text=True)
    body = json.loads((r.stdout or r.stderr).splitlines()[-1])
    return r.returncode, body


def review(rig, *args):
    r = subprocess.run([rig.sh, "review"] + list(args) +
                       ["--user", "ig.officer", "--purpose", "retention review", "--socket",
                        rig.socket("health"), "--json"], capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError("review %s: %s%s" % (" ".join(args), r.stdout, r.stderr))
    return json.loads(r.stdout.splitlines()[-1])


def browser_review(rig, plan, plan2, child):
    """The ED's records manager, in the workspace: the list, a refusal to decide nothing, an
    erasure; a practitioner is not offered the page. Returns the browser (quit by main)."""
    rig.account("health", "rm-health", "manager", "records manager pass", "Rhea Records")
    rig.account("health", "li", "practitioner", "emergency dept pass", "Li Clinician")
    br = workspace_test.Browser(rig.ws_url("health"),
                                os.path.join(rig.build, "screenshots"))
    br.sign_in("rm-health", "records manager pass")
    check(br.finds("a[href='/review']"), "a manager's menu has Retention review")
    br.get("/review")
    rows = [r.text for r in br.finds("#review tbody tr")]
    page = br.d.page_source
    check(len(rows) == 2 and all("CP plan status" in r and "881" in r and "isp-cpis@5" in r and
                                 "1 day" in r for r in rows),
          "the review list shows both flags by type, sender, protocol and period: %s" % rows)
    check(child["nhs_number"] not in page and child["family_name"] not in page,
          "the list names no child")
    br.screenshot("retention-review.png")
    br.get("/review/%s" % plan2)
    br.click("#decide")
    check("Choose whether to keep this record longer or erase it" in br.text() and
          br.finds(".govuk-error-summary"), "deciding nothing is refused, saying what to choose")
    br.choose("decision", "erase")
    br.click("#decide")
    check("Record erased" in br.text() and len(br.finds("#review tbody tr")) == 1,
          "erased: the list has one record left")
    br.get("/review/%s" % plan2)
    check("E500" in br.text(), "the erased record's page is gone")
    br.sign_out()
    br.sign_in("li", "emergency dept pass")
    check(not br.finds("a[href='/review']"), "a practitioner's menu has no Retention review")
    br.get("/review")
    check("E914" in br.text(), "a practitioner cannot open the review list")
    br.sign_out()
    return br


def stop(rig, name):
    p = rig.proc(name)
    p.terminate()
    p.wait(timeout=10)
    rig.procs = [(n, q) for n, q in rig.procs if q is not p]


def restart_broker(rig, env):
    stop(rig, "broker")
    rig._spawn("broker", rig.broker_cmd, env=env)


def restart(rig, agency, env):
    stop(rig, agency)
    rig._spawn(agency, [os.path.join(rig.build, "agents", "sharehub-agent"), "--config",
                        agency + ".yaml"], env=env)
    rig.wait(lambda: '"connected":true' in rig.run(
        rig.sh, "status", "--socket", rig.socket(agency), "--json", check=False).stdout,
        "the %s agent to connect again" % agency)


def main():
    rig = Rig(sys.argv[1], {}, apis=["health"], workspace=True, policy_edit=one_day,
              expiry="1d", broker_args=["--keep-events", "1d"])
    br = None
    ok = False
    try:
        child = rig.synthetic_child(4401)
        basis = {"article6": "e_public_task", "article9": "2g_substantial_public_interest",
                 "dpa_schedule1_paragraph": 18}
        concern = publish(rig, "school", {
            "event_type": "safeguarding_concern", "purpose": "safeguarding",
            "consent": "not_sought_risk_of_harm", "level_of_need": 4, "lawful_basis": basis,
            "child": child, "safeguarding_concern": {
                "category": "neglect", "narrative": "Synthetic narrative.", "immediate_risk": True,
                "reported_by": {"org_code": "8819990", "role": "DSL"}}})
        rig.wait(lambda: show(rig, "hub", concern)[0] == 0, "the concern at the hub")
        # the school is away: the plan's copy for it (the child's school of record) waits
        stop(rig, "school")
        plan = publish(rig, "hub", {
            "event_type": "cp_plan_status", "purpose": "safeguarding", "consent": "not_required",
            "level_of_need": 4, "lawful_basis": basis, "child": child, "cp_plan_status": {
                "status": "started", "category": "neglect",
                "start_date": time.strftime("%Y-%m-%d", time.gmtime()),
                "responsible_la": {"la_code": "881", "office_hours_phone": "0333 000 0000",
                                   "out_of_hours_phone": "0345 000 0000"}}})
        plan2 = publish(rig, "hub", {
            "event_type": "cp_plan_status", "purpose": "safeguarding", "consent": "not_required",
            "level_of_need": 4, "lawful_basis": basis, "child": rig.synthetic_child(4402),
            "cp_plan_status": {
                "status": "started", "category": "emotional_abuse",
                "start_date": time.strftime("%Y-%m-%d", time.gmtime()),
                "responsible_la": {"la_code": "881", "office_hours_phone": "0333 000 0000",
                                   "out_of_hours_phone": "0345 000 0000"}}})
        rig.wait(lambda: show(rig, "hub", concern)[0] == 0, "the concern at the hub")
        rig.wait(lambda: show(rig, "health", plan)[0] == 0, "the plan at the emergency department")
        rig.wait(lambda: show(rig, "health", plan2)[0] == 0, "the second plan there")
        _, b = show(rig, "hub", concern)
        keep = b["item"].get("retention", {})
        day = 86400000
        check(keep.get("keep") == "1d" and keep.get("then") == "erase" and
              abs(keep.get("due_at_ms", 0) - b["item"]["stored_at_ms"] - day) < 1000,
              "the hub keeps the concern a day, then erases it: %s" % keep)
        _, b = show(rig, "health", plan)
        check(b["item"].get("retention", {}).get("then") == "review",
              "the emergency department keeps the flag a day, then reviews it")
        hub_store = rig.path("hub.store")
        audit_event = [rig.sh, "audit", "event", hub_store, concern, "--master",
                       rig.path("hub.master"), "--sign-key", rig.path("hub.sign.pem"), "--user",
                       "auditor", "--purpose", "retention test"]
        r = subprocess.run(audit_event, capture_output=True, text=True)
        check(r.returncode == 0 and '"safeguarding_concern"' in r.stdout,
              "before its day, the auditor opens the hub's copy offline")
        shred = os.path.join(hub_store, "erase.shred")
        with open(shred, "rb") as f:
            first_before = int.from_bytes(f.read()[8:12], "big")
        check(os.stat(shred).st_mode & 0o777 == 0o600, "the hub's erasure keys are 0600")

        broker_store = rig.path("broker.store")
        broker_keys = ["--master", rig.path("broker.master"), "--sign-key",
                       rig.path("broker.sign.pem"), "--user", "auditor", "--purpose",
                       "retention test"]
        r = subprocess.run([rig.sh, "audit", "event", broker_store, plan] + broker_keys,
                           capture_output=True, text=True)
        check(r.returncode == 0 and '"cp_plan_status"' in r.stdout,
              "before its day, the auditor opens the broker's copy offline")
        bshred = os.path.join(broker_store, "erase.shred")
        check(os.path.exists(bshred) and os.stat(bshred).st_mode & 0o777 == 0o600,
              "the broker's erasure keys are 0600")

        # half a day on, nothing is due yet: the broker and the hub start again and keep all
        restart_broker(rig, faketime_env("+12h"))
        restart(rig, "hub", faketime_env("+12h"))
        code, _ = show(rig, "hub", concern)
        r = subprocess.run([rig.sh, "audit", "event", broker_store, concern] + broker_keys,
                           capture_output=True, text=True)
        check(code == 0 and r.returncode == 0 and not rig.audit("broker", "--action", "erase")
              and not rig.audit("hub", "--action", "erase"),
              "half a day on, before their day, the hub's copy and the broker's still open and "
              "nothing is erased")

        # two days on: the broker starts again and sweeps before it serves; then the agents
        restart_broker(rig, faketime_env("+2d"))
        for agency in ("hub", "health"):
            restart(rig, agency, faketime_env("+2d"))
        rig._spawn("school", [os.path.join(rig.build, "agents", "sharehub-agent"), "--config",
                              "school.yaml"], env=faketime_env("+2d"))
        rig.wait(lambda: '"connected":true' in rig.run(
            rig.sh, "status", "--socket", rig.socket("school"), "--json", check=False).stdout,
            "the school agent to connect again")
        erased = rig.audit("broker", "--action", "erase")
        copies = [e for e in erased if e["event_id"] in (concern, plan) and
                  e["detail"].startswith("erased: the broker's copy of")]
        queued = [e for e in erased if e["event_id"] == plan and e["peer_org"] == "8819990"]
        check(len(copies) == 2 and all(e["rule"] == "keep-events" and e["child_ref"] and
                                       e["outcome"] == "ok" for e in copies),
              "the broker erased its copies of both events, each audited under keep-events with "
              "the child's reference: %s" % [e["detail"] for e in copies])
        check(len(queued) == 1 and
              queued[0]["detail"] == "erased: a copy still queued for 8819990 after 1d, the "
                                     "broker's keeping",
              "... and the plan's copy still queued for the absent school: %s" %
              [e["detail"] for e in queued])
        # (the sweep runs as the broker starts; what it accepts after — a recipient's signed
        # STORED receipt made late, say — is not yet at its keeping's end)
        swept = min(e["seq"] for e in erased) if erased else 0
        check(all(e["rule"] == "keep-events" for e in erased) and
              len([e for e in erased if "broker's copy" in e["detail"]]) ==
              len([e for e in rig.audit("broker", "--action", "receive") if e["seq"] < swept]),
              "every event the broker accepted (receipts too) was erased at its keeping's end")
        check(not any(child["nhs_number"] in e["detail"] or "Synthetic" in e["detail"]
                      for e in erased), "no erasure entry holds the child's data")
        r = subprocess.run([rig.sh, "audit", "event", broker_store, concern] + broker_keys,
                           capture_output=True, text=True)
        check(r.returncode != 0 and "erased after --keep-events" in r.stderr,
              "the auditor cannot open the broker's copy any more: %s" % r.stderr.strip())
        with open(bshred, "rb") as f:
            bfirst = int.from_bytes(f.read()[8:12], "big")
        check(bfirst >= int(time.time() // 86400) + 2,
              "the broker forgot the day keys before its (faked) today: first day %d" % bfirst)
        rig.wait(lambda: any(t.get("org") == "8819990" and t.get("state") == "expired" for t in
                             show(rig, "hub", plan)[1].get("item", {}).get("tracking", [])),
                 "the hub to learn the school's copy was not delivered")
        check(True, "the hub (the plan's sender) is told the school's copy expired")
        time.sleep(1)
        code, _ = show(rig, "school", plan)
        check(code != 0, "the school never receives the erased copy")
        code, b = show(rig, "hub", concern)
        check(code != 0 and b.get("name") == "SH_E_NOT_FOUND",
              "the erased concern cannot be read at the hub: %s %s" % (b.get("name"),
                                                                       b.get("message")))
        inbox = json.loads(rig.run(rig.sh, "inbox", "--socket", rig.socket("hub"), "--user", "a",
                                   "--purpose", "test", "--summary", "--json")
                           .stdout.splitlines()[-1])
        check(concern not in [i["event_id"] for i in inbox["items"]],
              "the hub's inbox no longer lists it")
        r = subprocess.run([rig.sh, "child", child["nhs_number"], "--socket", rig.socket("hub"),
                            "--user", "a", "--purpose", "test", "--json"], capture_output=True,
                           text=True)
        check(concern not in r.stdout, "the child's record at the hub no longer holds it")
        erased = rig.audit("hub", "--action", "erase")
        check(len(erased) == 1 and erased[0]["outcome"] == "ok" and
              erased[0]["rule"] == "isp-safeguarding-concerns@3" and erased[0]["child_ref"] and
              erased[0]["detail"].startswith("erased: safeguarding_concern from 8819990: kept 1 "
                                             "day as isp-safeguarding-concerns@3 says") and
              "Synthetic" not in erased[0]["detail"] and child["nhs_number"] not in
              erased[0]["detail"],
              "the erasure is audited with its rule and child reference, not the data: %s" %
              (erased[0]["detail"] if erased else "no entry"))
        r = subprocess.run(audit_event, capture_output=True, text=True)
        check(r.returncode != 0 and "SH_E_NOT_FOUND" in r.stderr,
              "the auditor cannot open it offline either (the record is gone, and its day key "
              "with it): %s" % (r.stderr or r.stdout).strip())
        with open(shred, "rb") as f:
            first_after = int.from_bytes(f.read()[8:12], "big")
        check(first_after > first_before and first_after >= int(time.time() // 86400) + 2,
              "the hub forgot the day keys before its (faked) today: first day %d -> %d" %
              (first_before, first_after))
        code, b = show(rig, "health", plan)
        keep = b.get("item", {}).get("retention", {})
        check(code == 0 and keep.get("review_due") is True,
              "the flag whose protocol says review is kept, marked due for review: %s" % keep)
        reviewed = rig.audit("health", "--action", "erase")
        check(len(reviewed) == 2 and all(e["outcome"] == "denied" and
                                         e["detail"].startswith("due for review: cp_plan_status "
                                                                "from 881") for e in reviewed),
              "... and the review is audited: %s" % [e["detail"] for e in reviewed])

        # a person reviews them: the ED's records manager erases one in the workspace ...
        due = review(rig, "--due")
        check(due.get("total") == 2 and {i["event_id"] for i in due["items"]} == {plan, plan2} and
              all(i.get("type") == "cp_plan_status" and i.get("peer") == "881" and
                  i.get("rule") == "isp-cpis@5" and i.get("kept") == "1d" for i in due["items"]),
              "the ED's list of copies due for review names both flags, not what they say: %s" %
              due.get("items"))
        br = browser_review(rig, plan, plan2, child)
        # ... and the IG officer keeps the other a day more, on the command line
        kept = review(rig, plan, "--keep", "1d")
        code, b = show(rig, "health", plan)
        keep = b.get("item", {}).get("retention", {})
        check(kept.get("decision") == "kept" and code == 0 and "review_due" not in keep and
              keep.get("keep") == "1d" and keep.get("then") == "review" and
              keep.get("due_at_ms") == kept.get("due_at_ms"),
              "kept a day more: no longer due, reviewed again then: %s" % keep)
        code, b = show(rig, "health", plan2)
        check(code != 0 and b.get("name") == "SH_E_NOT_FOUND",
              "the one erased in the workspace cannot be read")
        r = subprocess.run([rig.sh, "review", plan2, "--erase", "--user", "ig.officer",
                            "--purpose", "retention review", "--socket", rig.socket("health"),
                            "--json"], capture_output=True, text=True)
        check(r.returncode == 1 and "SH_E_NOT_FOUND" in r.stdout + r.stderr,
              "erasing it twice is refused: %s" % (r.stdout + r.stderr).strip())
        r = subprocess.run([rig.sh, "review", plan, "--keep", "forever", "--user", "ig.officer",
                            "--purpose", "retention review", "--socket", rig.socket("health"),
                            "--json"], capture_output=True, text=True)
        check(r.returncode == 1 and "SH_E_BAD_FIELD" in r.stdout + r.stderr and
              "90d, 18m or 2y" in r.stdout + r.stderr,
              "a period that is not one is refused, naming the form: %s" % r.stdout.strip())
        r = subprocess.run([rig.sh, "review", plan, "--keep", "1d", "--user", "ig.officer",
                            "--purpose", "retention review", "--socket", rig.socket("health"),
                            "--json"], capture_output=True, text=True)
        check(r.returncode == 1 and "not due for review" in r.stdout + r.stderr,
              "a copy not due for review is refused: %s" % r.stdout.strip())
        log = rig.audit("health")
        decisions = [e for e in log if e["actor_user"] == "ig.officer"]
        check([(e["action"], e["outcome"]) for e in decisions] == [("read", "ok"), ("write", "ok")]
              and decisions[1]["detail"].startswith("kept on review for 1 day: cp_plan_status "
                                                    "from 881 under isp-cpis@5") and
              all(e["purpose"] == "retention review" for e in decisions) and
              decisions[1]["child_ref"],
              "the list and the keeping are audited as the reviewer's, with the child's "
              "reference: %s" % [e["detail"] for e in decisions])
        by_mgr = [e for e in log if e["actor_user"] == "rm-health" and e["action"] == "erase"]
        check(len(by_mgr) == 1 and by_mgr[0]["event_id"] == plan2 and
              by_mgr[0]["detail"] == "erased on review: cp_plan_status from 881, kept under "
                                     "isp-cpis@5" and by_mgr[0]["child_ref"] and
              by_mgr[0]["purpose"] == "retention review" and
              by_mgr[0]["detail"].endswith("isp-cpis@5"),
              "the erasure in the workspace is audited as the records manager's: %s" %
              [e["detail"] for e in by_mgr])

        # four days on the kept flag is due again; held under each day's key, it still opens
        restart(rig, "health", faketime_env("+4d"))
        code, b = show(rig, "health", plan)
        check(code == 0 and b["item"]["retention"].get("review_due") is True,
              "a day after its new period the kept flag is due for review again, and readable: "
              "%s" % b.get("item", {}).get("retention"))
        restart(rig, "health", faketime_env("+6d"))
        code, b = show(rig, "health", plan)
        with open(os.path.join(rig.path("health.store"), "erase.shred"), "rb") as f:
            hfirst = int.from_bytes(f.read()[8:12], "big")
        check(code == 0 and hfirst >= int(time.time() // 86400) + 6,
              "two days later, the days before forgotten (first day %d), it still opens while "
              "it waits for a person" % hfirst)

        # the auditor's subject reports show the erasures and the reviews, and who made them
        ring = rig.path("auditor.ring")
        for who in ("broker", "hub", "health"):
            rig.run(rig.sh, "audit", "grant", rig.path(who + ".store"), "--master",
                    rig.path(who + ".master"), "--sign-key", rig.path(who + ".sign.pem"),
                    "--keyring", ring, "--name", who)
        stores = [rig.path(w + ".store") for w in ("broker", "hub", "health")]
        one = rig.run(rig.sh, "audit", "subject", child["nhs_number"], "--stores", *stores,
                      "--keyring", ring, check=False).stdout
        two = rig.run(rig.sh, "audit", "subject", rig.synthetic_child(4402)["nhs_number"],
                      "--stores", *stores, "--keyring", ring, check=False).stdout
        check("ERASED at SHAREHUB under keep-events: erased: the broker's copy of a "
              "safeguarding_concern from 8819990" in one and
              "ERASED at 881 under isp-safeguarding-concerns@3" in one and
              "DUE FOR REVIEW at RAJ under isp-cpis@5" in one and
              "KEPT ON REVIEW at RAJ by ig.officer: kept on review for 1 day" in one,
              "the child's subject report shows the broker's and the hub's erasures, the review "
              "due and the keeping, with who kept it")
        check("ERASED at RAJ by rm-health under isp-cpis@5: erased on review" in two,
              "the other child's shows the erasure on review, by the records manager")
        ok = True
    finally:
        if br:
            br.quit()
        failures.extend(workspace_test.FAILED)
        bad = rig.stop(keep=bool(failures) or not ok)
        check(not bad, "the rig stopped cleanly %s" % (bad or ""))
    print("retention: %s (%d failed)" % ("FAILED" if failures else "passed", len(failures)))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/python3
"""api_test.py BUILD-DIR — the agency API (docs/api.md) through the real processes: a broker,
three agents and their sharehub-api servers on loopback, clients with certificates from a
private CA made for the run, Python requests and curl as the integrators' tools.

Each check prints "api: ok   ..." or "api: FAIL ..."; the exit status is 1 if any failed.
Debian's python3 (python3-requests, python3-jsonschema) runs it; nothing is fetched.
"""
import json
import os
import re
import resource
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time

import jsonschema
import requests

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from api_rig import ROOT, Rig  # noqa: E402

FAILED = []


def check(ok, what):
    print("api: %s %s" % ("ok  " if ok else "FAIL", what), flush=True)
    if not ok:
        FAILED.append(what)
    return ok


NPM = os.path.join(ROOT, "tools", "npm", "node_modules")
with open(os.path.join(NPM, "@medplum", "definitions", "dist", "fhir", "r4",
                       "fhir.schema.json")) as f:
    FHIR = json.load(f)  # HL7's FHIR R4 JSON schema (draft-06)
with open(os.path.join(ROOT, "docs", "openapi.json"), "rb") as f:
    OPENAPI_BYTES = f.read()
OPENAPI = json.loads(OPENAPI_BYTES)


def conforms(body, schema_name):
    """Whether body fits the OpenAPI document's schema (JSON Schema 2020-12)."""
    schema = {"$ref": "#/components/schemas/" + schema_name, "components": OPENAPI["components"]}
    try:
        jsonschema.Draft202012Validator(schema).validate(body)
        return True
    except jsonschema.ValidationError as e:
        print("api:      %s does not fit %s: %s" % (json.dumps(body)[:200], schema_name, e.message))
        return False


def fhir_valid(resource, what):
    """Whether resource validates against HL7's FHIR R4 schema for its resourceType."""
    rt = resource.get("resourceType", "?")
    schema = {"$ref": "#/definitions/" + rt, "definitions": FHIR["definitions"]}
    try:
        jsonschema.Draft6Validator(schema).validate(resource)
        return True
    except jsonschema.ValidationError as e:
        print("api:      %s is not a valid FHIR R4 %s: %s at %s" %
              (what, rt, e.message[:200], "/".join(str(p) for p in e.absolute_path)))
        return False
    except jsonschema.RefResolutionError:
        print("api:      %s: no FHIR R4 resource %s" % (what, rt))
        return False


def session(rig, name=None, other=False):
    s = requests.Session()
    s.trust_env = False  # the machine's CA bundle variables must not replace ours
    s.verify = rig.ca
    if name:
        s.cert = rig.cert(name, other)
    return s


def reader(user="pat-1", purpose="direct care"):
    return {"X-Sharehub-User": user, "X-Sharehub-Purpose": purpose}


BASIS = {"article6": "e_public_task", "article9": "2g_substantial_public_interest",
         "dpa_schedule1_paragraph": 18}


def concern(rig, seed, event_id=None, narrative="synthetic narrative"):
    ev = {"event_type": "safeguarding_concern", "purpose": "safeguarding",
          "consent": "not_sought_risk_of_harm", "level_of_need": 4, "lawful_basis": BASIS,
          "child": rig.synthetic_child(seed),
          "safeguarding_concern": {"category": "physical_abuse", "immediate_risk": True,
                                   "narrative": narrative,
                                   "reported_by": {"org_code": "8819990", "role": "DSL"}}}
    if event_id:
        ev["event_id"] = event_id
    return ev


def new_event_id(rig):
    return rig.run(rig.sh, "ident", "event-id").stdout.strip()


def error_is(res, status, code, what):
    try:
        body = res.json()
    except ValueError:
        body = {}
    ok = res.status_code == status and body.get("code") == code and conforms(body, "Error")
    return check(ok, "%s: HTTP %d, code %s (%s)" % (what, res.status_code, body.get("code"),
                                                   body.get("detail", body.get("message", ""))))


def test_publish_and_refusals(rig):
    mis = session(rig, "mis")
    url = rig.url("school")
    eid = new_event_id(rig)
    ev = concern(rig, 11, eid)
    res = mis.post(url + "/v1/events", json=ev, headers=reader("dsl-1", "safeguarding"))
    body = res.json()
    check(res.status_code == 202 and body.get("event_id") == eid and
          body.get("status") in ("sent", "queued") and conforms(body, "PublishResult") and
          res.headers.get("Location") == "/v1/events/" + eid,
          "Python requests publishes over HTTPS: 202, %s, Location %s" %
          (body.get("status"), res.headers.get("Location")))
    res = mis.post(url + "/v1/events", json=ev, headers=reader("dsl-1", "safeguarding"))
    check(res.status_code == 202 and res.json().get("status") == "already accepted" and
          res.json().get("event_id") == eid,
          "the same publish again (a retry) answers with the original result: already accepted")
    ev2 = concern(rig, 11, eid, narrative="other content")
    res = mis.post(url + "/v1/events", json=ev2, headers=reader("dsl-1", "safeguarding"))
    error_is(res, 409, 703, "the same event id with other content")

    # curl, as an integrator would
    path = rig.path("curl-event.json")
    with open(path, "w") as f:
        json.dump(concern(rig, 12), f)
    crt, key = rig.cert("mis")
    out = subprocess.run(["curl", "-sS", "--cacert", rig.ca, "--cert", crt, "--key", key,
                          "-H", "Content-Type: application/json", "-H", "X-Sharehub-User: dsl-1",
                          "--data-binary", "@" + path, "-w", "\n%{http_code}",
                          url + "/v1/events"], capture_output=True, text=True)
    lines = out.stdout.strip().split("\n")
    check(out.returncode == 0 and lines[-1] == "202" and '"event_id"' in lines[0],
          "curl publishes over HTTPS: %s %s" % (lines[-1], lines[0][:80]))
    out = subprocess.run(["curl", "-sS", "--cacert", rig.ca, "-w", "\n%{http_code}",
                          url + "/v1/status"], capture_output=True, text=True)
    check(out.stdout.strip().endswith("401") and '"code":900' in out.stdout,
          "curl without a certificate: 401 E900")
    out = subprocess.run(["curl", "-sS", "--cacert", rig.ca, "--cert", crt, "--key", key,
                          "--tls-max", "1.1", url + "/v1/status"], capture_output=True, text=True)
    check(out.returncode != 0, "TLS 1.1 is refused at the handshake (curl exit %d)" %
          out.returncode)

    # who may not
    error_is(session(rig).get(url + "/v1/status"), 401, 900, "no client certificate")
    error_is(session(rig, "stranger").get(url + "/v1/status"), 401, 901,
             "a certificate from the CA that the registry does not name")
    error_is(session(rig, "impostor", other=True).get(url + "/v1/status"), 401, 900,
             "a certificate from another CA")
    error_is(mis.get(url + "/v1/inbox", headers=reader()), 403, 902,
             "a client without the inbox scope reading the inbox")
    refusals = rig.audit("school", "--action", "refuse")
    codes = sorted(e["code"] for e in refusals if e["detail"].startswith("api"))
    check(codes.count(900) >= 3 and codes.count(901) >= 1 and codes.count(902) >= 1 and
          all("9434" not in e["detail"] for e in refusals),
          "each refusal is in the school agent's audit log (codes %s)" % codes)
    writes = [e for e in rig.audit("school", "--action", "write", "--event", eid)]
    check(len(writes) == 1 and writes[0]["actor_user"] == "dsl-1" and
          writes[0]["detail"].endswith("via api:mis"),
          "the publish is audited with the user and the client system: %s / %s" %
          (writes[0]["actor_user"] if writes else "-", writes[0]["detail"] if writes else "-"))
    return eid


def test_bad_input(rig):
    mis = session(rig, "mis")
    url = rig.url("school")
    h = dict(reader("dsl-1", "safeguarding"), **{"Content-Type": "application/json"})
    error_is(mis.post(url + "/v1/events", data=b'{"event_type": ', headers=h), 400, 201,
             "bad JSON")
    error_is(mis.post(url + "/v1/events", data=b"[1,2]", headers=h), 400, 201,
             "JSON that is not an object")
    error_is(mis.post(url + "/v1/events", data=b"x" * (1024 * 1024 + 1), headers=h), 413, 200,
             "a body over 1 MiB")
    error_is(mis.post(url + "/v1/events", data=b"{}",
                      headers=dict(reader(), **{"Content-Type": "text/plain"})), 415, 905,
             "a body that is not application/json")
    ev = concern(rig, 13)
    ev["child"]["nhs_number"] = ev["child"]["nhs_number"][:9] + str(
        (int(ev["child"]["nhs_number"][9]) + 1) % 10)
    res = mis.post(url + "/v1/events", json=ev, headers=reader("dsl-1", "safeguarding"))
    error_is(res, 400, 300, "an event whose NHS number fails its check digit")
    check(res.json().get("field") == "child.nhs_number", "... the error names the field: %s" %
          res.json().get("field"))
    error_is(mis.post(url + "/v1/events", json=concern(rig, 14)), 400, 202,
             "a publish without X-Sharehub-User")
    error_is(mis.get(url + "/v1/nothing"), 404, 903, "an unknown path")
    res = mis.delete(url + "/v1/events")
    error_is(res, 405, 904, "a method the resource does not take")
    check(res.headers.get("Allow") == "POST", "... Allow: %s" % res.headers.get("Allow"))
    error_is(mis.get(url + "/v1/events/not-an-id", headers=reader()), 400, 304,
             "an event id that is not a UUID")
    error_is(mis.get(url + "/v1/events/01a226e9-6f8e-73ad-8918-e598b858fecc",
                     headers=reader()), 404, 500, "an event this agency does not hold")
    error_is(mis.get(url + "/v1/events/01a226e9-6f8e-73ad-8918-e598b858fecc",
                     headers={"X-Sharehub-User": "pat"}), 400, 202,
             "a read without X-Sharehub-Purpose")


def tracking_of(s, url, eid, org):
    res = s.get(url + "/v1/events/" + eid, headers=reader("dsl-1", "follow-up"))
    if res.status_code != 200:
        return None, res
    for t in res.json().get("tracking", []):
        if t["org"] == org:
            return t, res
    return None, res


def test_tracking_and_expiry(rig, eid):
    mis = session(rig, "mis")
    url = rig.url("school")
    hub = session(rig, "cms")
    t0 = time.time()
    state = {}

    def delivered():
        t, _ = tracking_of(mis, url, eid, "881")
        state["hub"] = t
        return t is not None and t["state"] == "delivered"
    rig.wait(delivered, "the concern to be delivered at the hub")
    t, res = tracking_of(mis, url, eid, "881")
    check(conforms(res.json(), "EventItem") and t["decision"] == "permitted" and
          t["isp"].startswith("isp-safeguarding-concerns@") and t["queued_at_ms"] > 0 and
          t["delivered_at_ms"] >= t["queued_at_ms"],
          "the sender follows its referral: permitted under %s, queued, delivered (%s)" %
          (t.get("isp"), json.dumps(t)))
    res = hub.get(rig.url("hub") + "/v1/events/" + eid, headers=reader("sw-amir", "triage"))
    check(res.status_code == 200 and res.json().get("direction") == "received",
          "a hub practitioner opens it through the hub's API")

    def read():
        t, _ = tracking_of(mis, url, eid, "881")
        return t is not None and t["state"] == "read"
    rig.wait(read, "the READ receipt to reach the school")
    t, _ = tracking_of(mis, url, eid, "881")
    check(t["read_at_ms"] >= t["delivered_at_ms"], "... and the school sees it read at the hub")

    # police triage (ESXPOL) never connects: under this ISP (delivery_expiry 3s) it expires
    def expired():
        t, _ = tracking_of(mis, url, eid, "ESXPOL")
        return t is not None and t["state"] == "expired"
    rig.wait(expired, "the delivery to ESXPOL to expire", timeout=20)
    t, _ = tracking_of(mis, url, eid, "ESXPOL")
    check(t["reason_code"] == 708 and t["expired_at_ms"] - t["queued_at_ms"] >= 3000,
          "a recipient that never connects: the delivery expires (E708) after %.1f s, the "
          "sender holds the EXPIRED receipt" % ((t["expired_at_ms"] - t["queued_at_ms"]) / 1e3))
    page = requests.get("http://127.0.0.1:%d/metrics" % rig.ports["broker-http"]).text
    m = re.search(r'sharehub_broker_deliveries_expired_total\{recipient="ESXPOL"\} (\d+)', page)
    check(m is not None and int(m.group(1)) >= 1, "the broker counts it: %s" %
          (m.group(0) if m else "no metric"))
    exp = rig.audit("broker", "--action", "expire", "--event", eid)
    check(len(exp) == 1 and exp[0]["peer_org"] == "ESXPOL" and exp[0]["code"] == 708,
          "the broker audits the expiry: %s" % (exp[0]["detail"] if exp else "none"))
    check(time.time() - t0 < 30, "tracking took %.1f s" % (time.time() - t0))
    # track scope alone: the events this agency received are not shown
    res = session(rig, "tracker").get(rig.url("hub") + "/v1/events/" + eid, headers=reader())
    error_is(res, 404, 500, "a track-only client asking for an event its agency received")


def test_inbox(rig):
    url = rig.url("hub")
    cms = session(rig, "cms")
    mis = session(rig, "mis")
    h = reader("sw-1", "triage")
    sent = set()
    for i in range(7):
        res = mis.post(rig.url("school") + "/v1/events", json=concern(rig, 100 + i),
                       headers=reader("dsl-1", "safeguarding"))
        sent.add(res.json()["event_id"])

    def arrived():
        res = session(rig, "cms2").get(url + "/v1/inbox?limit=1000", headers=h)
        got = {i["event_id"] for i in res.json()["items"]}
        return sent <= got
    rig.wait(arrived, "seven concerns at the hub")
    # a case-management system pulls exactly once: page, process, acknowledge
    seen, pages = [], 0
    while True:
        res = cms.get(url + "/v1/inbox?limit=3&type=safeguarding_concern", headers=h)
        page = res.json()
        if pages == 0:
            check(res.status_code == 200 and conforms(page, "InboxPage") and
                  len(page["items"]) == 3 and page["more"] is True,
                  "a page of 3 with more to come: more=%s, next %s" %
                  (page.get("more"), page.get("next")))
        pages += 1
        seen += [i["event_id"] for i in page["items"]]
        if not page["items"]:
            break
        res = cms.post(url + "/v1/inbox/ack", json={"cursor": page["next"]}, headers=h)
        check(res.status_code == 200 and res.json()["acknowledged"] == page["next"] and
              conforms(res.json(), "AckResult"), "acknowledged up to %s" % page["next"])
        if pages > 20:
            break
    check(len(seen) == len(set(seen)) and sent <= set(seen),
          "pulled %d events in %d pages, each once, all seven among them" % (len(seen), pages))
    res = cms.get(url + "/v1/inbox", headers=h)
    check(res.json()["items"] == [] and res.json()["more"] is False,
          "after acknowledging, the next pull holds nothing")
    res = cms.post(url + "/v1/inbox/ack", json={"cursor": "1"}, headers=h)
    check(res.json()["acknowledged"] != "1", "an acknowledgement never moves back")
    res = cms.post(url + "/v1/inbox/ack", json={"cursor": "999999"}, headers=h)
    error_is(res, 400, 203, "an acknowledgement past the inbox")
    res = session(rig, "cms2").get(url + "/v1/inbox?limit=1000", headers=h)
    check(sent <= {i["event_id"] for i in res.json()["items"]},
          "another client system has its own acknowledgements: it still gets all of them")
    error_is(cms.get(url + "/v1/inbox?type=no_such_type", headers=h), 400, 203,
             "an unknown event type in type=")
    error_is(cms.get(url + "/v1/inbox?after=abc", headers=h), 400, 203, "a cursor we never gave")
    acks = [e for e in rig.audit("hub", "--action", "write") if "acknowledged" in e["detail"]]
    check(len(acks) >= 2 and all(e["detail"].endswith("via api:cms") for e in acks),
          "each acknowledgement is audited with the client system (%d)" % len(acks))
    reads = [e for e in rig.audit("hub", "--action", "read")
             if e["detail"] == "inbox via api:cms"]
    check(len(reads) >= 7 and all(e["actor_user"] == "sw-1" and e["purpose"] == "triage"
                                  for e in reads),
          "every inbox read is audited with the user, purpose and client (%d)" % len(reads))

    # server-sent events: told at once
    events = []
    stop = threading.Event()

    def listen():
        try:
            with cms.get(url + "/v1/inbox/stream", headers=h, stream=True, timeout=20) as res:
                events.append(("status", res.status_code, res.headers.get("Content-Type")))
                for line in res.iter_lines(decode_unicode=True):
                    if line and line.startswith("data:"):
                        events.append(("data", json.loads(line[5:]), time.time()))
                    if stop.is_set():
                        return
        except requests.RequestException:
            pass  # the stream ends when the rig stops
    th = threading.Thread(target=listen, daemon=True)
    th.start()
    rig.wait(lambda: len(events) >= 2, "the stream's first event")
    first = events[1][1]["next"]
    t_pub = time.time()
    mis.post(rig.url("school") + "/v1/events", json=concern(rig, 200),
             headers=reader("dsl-1", "safeguarding"))
    rig.wait(lambda: len(events) >= 3, "the stream to tell of the new event", timeout=10)
    stop.set()
    check(events[0][1] == 200 and events[0][2] == "text/event-stream" and
          int(events[2][1]["next"]) > int(first),
          "the stream tells of a new event %.0f ms after it was published (next %s -> %s)" %
          ((events[2][2] - t_pub) * 1000, first, events[2][1]["next"]))


def test_children(rig):
    url = rig.url("hub")
    cms = session(rig, "cms")
    child = rig.synthetic_child(100)
    nhs = child["nhs_number"]
    res = cms.get(url + "/v1/children/" + nhs, headers=reader("sw-1", "assessment"))
    body = res.json()
    check(res.status_code == 200 and conforms(body, "Child") and len(body["events"]) >= 1,
          "a child found by NHS number: flag %s, %d events" % (body.get("flag"),
                                                               len(body.get("events", []))))
    bad = nhs[:9] + str((int(nhs[9]) + 1) % 10)
    res = cms.get(url + "/v1/children/" + bad, headers=reader("sw-1", "assessment"))
    error_is(res, 400, 300, "a mistyped NHS number (never 'nothing found')")
    check("modulus 11" in res.json().get("detail", ""), "... naming the check: %s" %
          res.json().get("detail"))
    res = cms.get(url + "/v1/children/" + bad[:3] + " " + bad[3:6] + " " + bad[6:],
                  headers=reader("sw-1", "assessment"))
    error_is(res, 400, 300, "the same, typed with spaces")
    upn = child["upn"]
    badu = ("A" if upn[0] != "A" else "B") + upn[1:]
    error_is(cms.get(url + "/v1/children/" + badu, headers=reader("sw-1", "assessment")), 400,
             301, "a UPN with the wrong check letter")
    res = cms.get(url + "/v1/children/" + child["la_child_id"], headers=reader("sw-1", "a"))
    check(res.status_code == 200, "a child found by LA child id: %d" % res.status_code)
    gp = session(rig, "gp")
    res = gp.get(url + "/v1/children/" + nhs, headers=reader("dr-1", "ed attendance"))
    check(res.status_code == 200 and "events" not in res.json() and "flag" in res.json(),
          "a client with only the flags scope learns the flag and nothing else")
    flags = [e for e in rig.audit("hub", "--action", "read") if "child flag" in e["detail"]]
    check(len(flags) >= 1 and flags[-1]["actor_user"] == "dr-1" and
          flags[-1]["detail"].endswith("via api:gp") and flags[-1]["child_ref"],
          "the flag check is audited with the clinician, the purpose and the system")


def test_openapi(rig):
    res = session(rig, "mis").get(rig.url("school") + "/v1/openapi.json")
    check(res.status_code == 200 and res.content == OPENAPI_BYTES,
          "GET /v1/openapi.json serves docs/openapi.json byte for byte (%d bytes)" %
          len(res.content))
    res = session(rig, "ops").get(rig.url("school") + "/v1/status")
    check(res.status_code == 200 and conforms(res.json(), "Status"), "GET /v1/status: %s" %
          res.text[:120])


FLAG_SYSTEM = "urn:sharehub:fhir:CodeSystem:cpis-flag"
NHS_SYSTEM = "https://fhir.nhs.uk/Id/nhs-number"


def outcome_is(res, status, issue, what, text=None):
    try:
        body = res.json()
    except ValueError:
        body = {}
    iss = (body.get("issue") or [{}])[0]
    ok = (res.status_code == status and body.get("resourceType") == "OperationOutcome" and
          iss.get("severity") == "error" and iss.get("code") == issue and
          res.headers.get("Content-Type", "").startswith("application/fhir+json") and
          fhir_valid(body, "OperationOutcome") and conforms(body, "OperationOutcome") and
          (text is None or text in iss.get("diagnostics", "")))
    return check(ok, "%s: HTTP %d, OperationOutcome %s (%s)" % (
        what, res.status_code, iss.get("code"), iss.get("diagnostics", "")[:110]))


def test_fhir(rig):
    hub = session(rig, "cms")
    ed = session(rig, "ed")
    url = rig.url("health")
    child = rig.synthetic_child(300)
    nhs = child["nhs_number"]
    plan = {"event_type": "cp_plan_status", "purpose": "safeguarding", "consent": "not_required",
            "level_of_need": 4, "lawful_basis": BASIS, "child": child,
            "cp_plan_status": {"status": "started", "category": "physical_abuse",
                               "start_date": time.strftime("%Y-%m-%d", time.gmtime()),
                               "responsible_la": {"la_code": "881",
                                                  "office_hours_phone": "01632 960001",
                                                  "out_of_hours_phone": "01632 960002"}}}
    res = hub.post(rig.url("hub") + "/v1/events", json=plan, headers=reader("sw-2", "plan"))
    check(res.status_code == 202, "the hub publishes a child-protection plan over HTTPS")
    q = "/fhir/r4/Flag?patient.identifier=%s|%s" % (NHS_SYSTEM, nhs)
    h = reader("dr-patel", "ed attendance")
    state = {}

    def flagged():
        res = ed.get(url + q, headers=h)
        state["res"] = res
        return res.status_code == 200 and res.json().get("total") == 1
    rig.wait(flagged, "health to hold the flag", timeout=20)
    res = state["res"]
    b = res.json()
    check(res.headers.get("Content-Type", "").startswith("application/fhir+json") and
          b["resourceType"] == "Bundle" and b["type"] == "searchset" and fhir_valid(b, "Bundle")
          and conforms(b, "FhirBundle"),
          "the FHIR Flag search returns a searchset Bundle valid against the FHIR R4 schema")
    flag = [e["resource"] for e in b["entry"] if e["search"]["mode"] == "match"][0]
    org = flag["contained"][0]
    phones = {c["purpose"]["text"]: c["telecom"][0]["value"] for c in org["contact"]}
    check(flag["status"] == "active" and
          flag["category"][0]["coding"][0]["system"] ==
          "http://terminology.hl7.org/CodeSystem/flag-category" and
          flag["code"]["coding"][0] == {"system": FLAG_SYSTEM, "code": "child-protection-plan",
                                        "display": "Child protection plan"} and
          flag["subject"]["identifier"] == {"system": NHS_SYSTEM, "value": nhs} and
          flag["author"]["reference"] == "#" + org["id"] and
          org["identifier"][0]["value"] == "881" and
          phones == {"office hours": "01632 960001", "out of hours": "01632 960002"} and
          flag["period"]["start"] == plan["cp_plan_status"]["start_date"],
          "the Flag: status, category, code, subject, period, and the responsible authority "
          "with its office-hours and out-of-hours numbers")
    outcome = [e["resource"] for e in b["entry"] if e["search"]["mode"] == "outcome"]
    check(len(outcome) == 1 and "access notification" in outcome[0]["issue"][0]["diagnostics"],
          "the Bundle says the responsible authority was told of this access")

    def notified():
        res = hub.get(rig.url("hub") + "/v1/inbox?after=0&limit=1000&type=access_notification",
                      headers=reader("sw-2", "cp-is"))
        state["an"] = [i for i in res.json()["items"]
                       if i["event"]["child"].get("nhs_number") == nhs]
        return len(state["an"]) >= 1
    rig.wait(notified, "the access notification at the hub")
    an = state["an"][0]["event"]["access_notification"]
    check(an["site_code"] == "RAJ01" and an["setting"] == "emergency_department" and
          "attendance_event_id" not in an and an["flag"] == "child_protection_plan",
          "the flag search is a CP-IS access: the hub gets an access notification (site %s, "
          "no attendance)" % an.get("site_code"))
    reads = [e for e in rig.audit("health", "--action", "read")
             if e["detail"] == "child flag via api:ed"]
    check(len(reads) >= 1 and reads[-1]["actor_user"] == "dr-patel" and
          reads[-1]["purpose"] == "ed attendance",
          "the search is audited at health with the clinician, the purpose and the system")
    res = ed.get(url + "/fhir/r4/Flag?patient.identifier=%s|%s" % (NHS_SYSTEM,
                 rig.synthetic_child(301)["nhs_number"]), headers=h)
    check(res.status_code == 200 and res.json()["total"] == 0 and "entry" not in res.json() and
          fhir_valid(res.json(), "Bundle"), "a child without a flag: an empty Bundle (total 0)")
    bad = nhs[:9] + str((int(nhs[9]) + 1) % 10)
    outcome_is(ed.get(url + "/fhir/r4/Flag?patient.identifier=%s|%s" % (NHS_SYSTEM, bad),
                      headers=h), 400, "invalid", "a mistyped NHS number in a Flag search",
               "modulus 11")
    outcome_is(ed.get(url + "/fhir/r4/Flag?patient.identifier=urn:other|123", headers=h), 400,
               "invalid", "another identifier system")
    outcome_is(ed.get(url + "/fhir/r4/Flag", headers=h), 400, "required",
               "a Flag search without patient.identifier")
    outcome_is(session(rig, "stranger").get(url + q, headers=h), 401, "login",
               "an unregistered certificate on a FHIR path")
    outcome_is(session(rig, "edops").get(url + q, headers=h), 403, "forbidden",
               "a client without the flags scope")

    # an emergency-department attendance as a FHIR Encounter
    eid = new_event_id(rig)
    enc = {"resourceType": "Encounter", "status": "finished",
           "identifier": [{"system": "urn:ietf:rfc:3986", "value": "urn:uuid:" + eid}],
           "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
                     "code": "EMER", "display": "emergency"},
           "subject": {"identifier": {"system": NHS_SYSTEM, "value": nhs}},
           "period": {"start": time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime())},
           "reasonCode": [{"text": "Fall from a bicycle"}],
           "hospitalization": {"dischargeDisposition": {"text": "discharged"}},
           "location": [{"location": {"identifier": {
               "system": "https://fhir.nhs.uk/Id/ods-site-code", "value": "RAJ01"}}}]}
    check(fhir_valid(enc, "Encounter"), "(the test's Encounter is valid FHIR R4)")
    fh = {"X-Sharehub-User": "dr-patel", "Content-Type": "application/fhir+json"}
    res = ed.post(url + "/fhir/r4/Encounter", data=json.dumps(enc), headers=fh)
    body = res.json()
    check(res.status_code == 201 and body.get("id") == eid and
          res.headers.get("Location") == "/fhir/r4/Encounter/" + eid and
          fhir_valid(body, "Encounter"),
          "POST /fhir/r4/Encounter: 201, the attendance published as event %s" % body.get("id"))
    res = ed.post(url + "/fhir/r4/Encounter", data=json.dumps(enc), headers=fh)
    check(res.status_code == 200 and res.json().get("id") == eid,
          "the same Encounter again (a retry): 200, the same event, nothing published twice")
    rig.wait(lambda: notified() and any(
        i["event"]["access_notification"].get("attendance_event_id") == eid
        for i in state["an"]), "the attendance's access notification at the hub")
    check(True, "the attendance of the flagged child notifies the hub, naming the attendance")
    res = session(rig, "ed").get(url + "/v1/events/" + eid, headers=reader("dr-patel", "x"))
    error_is(res, 403, 902, "(ed may not read events: track scope needed)")
    outcome_is(ed.post(url + "/fhir/r4/Encounter", data=b"{not json", headers=fh), 400,
               "invalid", "an Encounter that is not JSON")
    outcome_is(ed.post(url + "/fhir/r4/Encounter", data=json.dumps(dict(enc, resourceType="Patient")),
                       headers=fh), 400, "invalid", "another resourceType")
    e2 = dict(enc)
    del e2["subject"]
    e2.pop("identifier")
    res = ed.post(url + "/fhir/r4/Encounter", data=json.dumps(e2), headers=fh)
    outcome_is(res, 400, "required", "an Encounter without its patient")
    check(res.json()["issue"][0].get("expression") == ["Encounter.subject"],
          "... the OperationOutcome names the element: %s" % res.json()["issue"][0].get("expression"))
    e3 = dict(enc, subject={"identifier": {"system": NHS_SYSTEM, "value": bad}})
    e3.pop("identifier")
    res = ed.post(url + "/fhir/r4/Encounter", data=json.dumps(e3), headers=fh)
    outcome_is(res, 400, "invalid", "an Encounter whose NHS number fails its check digit")
    check(res.json()["issue"][0].get("expression") == ["Encounter.subject.identifier"],
          "... naming Encounter.subject.identifier")
    outcome_is(ed.post(url + "/fhir/r4/Encounter",
                       data=json.dumps(dict(enc, modifierExtension=[{"url": "x"}])), headers=fh),
               400, "invalid", "an Encounter with a modifierExtension")
    outcome_is(ed.post(url + "/fhir/r4/Encounter", data=json.dumps(dict(enc, period={"start": "yesterday"})),
                       headers=fh), 400, "invalid", "an Encounter whose period.start is not a dateTime")
    outcome_is(ed.post(url + "/fhir/r4/Encounter", data=json.dumps(enc),
                       headers=dict(fh, **{"Content-Type": "text/xml"})), 415, "not-supported",
               "FHIR XML (not taken)")


def test_openapi_document():
    tool = os.path.join(NPM, ".bin", "validate-api")
    out = subprocess.run([tool, os.path.join(ROOT, "docs", "openapi.json")],
                         capture_output=True, text=True)
    check(out.returncode == 0 and '"valid": true' in out.stdout,
          "docs/openapi.json is a valid OpenAPI 3.1 document (@seriousme/openapi-schema-validator)")
    broken = json.loads(OPENAPI_BYTES)
    del broken["info"]
    path = os.path.join(tempfile.mkdtemp(), "broken.json")
    with open(path, "w") as f:
        json.dump(broken, f)
    out = subprocess.run([tool, path], capture_output=True, text=True)
    check(out.returncode != 0 or '"valid": false' in out.stdout,
          "... and the validator refuses a broken copy (no info object)")


def tls_socket(rig, name="mis"):
    ctx = ssl.create_default_context(cafile=rig.ca)
    ctx.load_cert_chain(*rig.cert(name))
    raw = socket.create_connection(("127.0.0.1", rig.ports["api-school"]), timeout=10)
    return ctx.wrap_socket(raw, server_hostname="127.0.0.1")


def timed_status(rig, n=10):
    ops = session(rig, "ops")
    worst = 0.0
    for _ in range(n):
        t = time.time()
        res = ops.get(rig.url("school") + "/v1/status", timeout=10)
        worst = max(worst, time.time() - t)
        if res.status_code != 200:
            return None
    return worst


def test_hostile(rig):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 8192)), hard))
    idle = timed_status(rig)
    # slow-loris: 100 connections sending a request a byte at a time, slowly
    loris = []
    for _ in range(100):
        s = socket.create_connection(("127.0.0.1", rig.ports["api-school"]), timeout=10)
        s.sendall(b"\x16\x03\x01")  # the start of a TLS record, then nothing more
        loris.append(s)
    slow = []
    for _ in range(20):
        s = tls_socket(rig)
        s.sendall(b"GET /v1/status HTTP/1.1\r\nHost: x\r\n")
        slow.append(s)
    worst = timed_status(rig)
    check(worst is not None and worst < 1.0,
          "120 slow-loris connections (stalled handshakes and headers): others served, worst "
          "%.0f ms (idle %.0f ms)" % (worst * 1000 if worst else -1, idle * 1000))
    for s in loris + slow:
        s.close()
    # 1,000 concurrent connections, each with a request in flight
    conns = []
    t = time.time()
    for _ in range(1000):
        conns.append(tls_socket(rig))
    t_open = time.time() - t
    worst = timed_status(rig, 5)
    req = (b"GET /v1/openapi.json HTTP/1.1\r\nHost: x\r\n\r\n")
    for s in conns:
        s.sendall(req)
    ok = 0
    for s in conns:
        data = b""
        try:
            while b"\r\n\r\n" not in data:
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
        except OSError:
            pass
        ok += data.startswith(b"HTTP/1.1 200")
        s.close()
    check(ok == 1000 and worst is not None and worst < 2.0,
          "1,000 concurrent TLS connections (opened in %.1f s): %d of 1000 answered 200; "
          "meanwhile another client's worst %.0f ms" % (t_open, ok, (worst or -1) * 1000))
    # bad input of every kind left the agent and the API serving
    st = rig.run(rig.sh, "status", "--socket", rig.socket("school"), "--json").stdout
    check('"connected":true' in st and timed_status(rig, 3) is not None,
          "afterwards the agent and its API serve as before")


def main():
    build = sys.argv[1] if len(sys.argv) > 1 else "build/dev"

    def short_expiry(pol):
        p = os.path.join(pol, "isp-safeguarding-concerns-police.yaml")
        with open(p) as f:
            text = f.read()
        assert "delivery_expiry: 4h\n" in text
        with open(p, "w") as f:
            f.write(text.replace("delivery_expiry: 4h\n", "delivery_expiry: 3s\n"))
    clients = {
        "school": [("mis", ["publish", "track"]), ("ops", ["admin"])],
        "hub": [("cms", ["inbox", "track", "publish"]), ("cms2", ["inbox"]),
                ("gp", ["flags"]), ("tracker", ["track"])],
        "health": [("ed", ["publish", "flags"], {"site": "RAJ01", "setting": "emergency_department"}),
                   ("edops", ["inbox"])],
    }
    test_openapi_document()
    rig = Rig(build, clients, policy_edit=short_expiry)
    try:
        eid = test_publish_and_refusals(rig)
        test_bad_input(rig)
        test_tracking_and_expiry(rig, eid)
        test_inbox(rig)
        test_children(rig)
        test_openapi(rig)
        test_fhir(rig)
        test_hostile(rig)
    except Exception as e:  # a crash of the harness is a failure, with the rig kept
        check(False, "the test raised %s: %s" % (type(e).__name__, e))
    finally:
        for n, p in rig.procs:
            check(p.poll() is None, "%s still running at the end" % n)
            if n.startswith("api-") and p.poll() is None:
                # it parses HTTP from other hosts: no new privileges, a seccomp filter
                # (common/sandbox.c; docs/security.md, "Privilege separation")
                with open("/proc/%d/status" % p.pid) as f:
                    st = dict(l.split(":", 1) for l in f if ":" in l)
                check(st.get("NoNewPrivs", "").strip() == "1" and
                      st.get("Seccomp", "").strip() == "2",
                      "%s runs sandboxed (NoNewPrivs %s, Seccomp %s)" %
                      (n, st.get("NoNewPrivs", "?").strip(), st.get("Seccomp", "?").strip()))
        bad = rig.stop(keep=bool(FAILED))
        for b in bad:
            check(False, b)
    print("api: %s (%d failed)" % ("FAILED" if FAILED else "all passed", len(FAILED)))
    return 1 if FAILED else 0


if __name__ == "__main__":
    sys.exit(main())

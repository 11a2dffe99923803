#!/usr/bin/python3
"""workspace_test.py BUILD-DIR [SCREENSHOT-DIR] — the workspace (docs/workspace.md) as its people
use it: headless Chromium driven by Selenium against the real processes (a broker, the hub's,
a school's and a hospital's agents, sharehub-api serving the workspace over HTTPS), with
axe-core checking every page it visits for WCAG 2.2 AA violations.

Each check prints "workspace: ok   ..." or "workspace: FAIL ..."; the exit status is 1 if any
failed. Screenshots of the queue, a referral and the clinician's view are written to
SCREENSHOT-DIR (default: BUILD-DIR/screenshots); docs/workspace.md shows them.
Debian's python3, python3-selenium, chromium and chromium-driver run it; axe-core comes from
tools/npm (tools/deps installs it, pinned).
"""
import concurrent.futures
import json
import os
import re
import subprocess
import sys
import time

import requests
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.select import Select

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from api_rig import ROOT, Rig, free_port  # noqa: E402

FAILED = []
AXE = os.path.join(ROOT, "tools", "npm", "node_modules", "axe-core", "axe.min.js")
BASIS = {"article6": "e_public_task", "article9": "2g_substantial_public_interest",
         "dpa_schedule1_paragraph": 18}
HUB_CONFIG = """front_door:
  working_days: 1
  day_ends: "17:00"
  due_soon: 4h
  bank_holidays: ["2026-12-25", "2026-12-28", "2027-01-01"]
  localities:
    - {name: Mid, referrers: ["8819990"]}
    - {name: South, referrers: ["RAJ"]}
"""
PASSWORDS = {"amir": "correct horse battery", "mona": "manager staple battery",
             "rory": "read only reader pass", "ade": "auditor of the logs", "li": "emergency dept pass"}


def check(ok, what):
    print("workspace: %s %s" % ("ok  " if ok else "FAIL", what), flush=True)
    if not ok:
        FAILED.append(what)
    return ok


class Browser:
    """One person's headless Chromium."""

    def __init__(self, base, shots):
        o = webdriver.ChromeOptions()
        for a in ["--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1280,1100",
                  "--ignore-certificate-errors", "--disable-dev-shm-usage"]:
            o.add_argument(a)  # (the run's private CA is checked by the requests-based checks)
        self.d = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=o)
        self.d.set_page_load_timeout(30)
        self.base = base
        self.shots = shots
        with open(AXE) as f:
            self.axe = f.read()
        self.pages = set()
        self.urls = []  # every address the browser was at

    def get(self, path):
        self.d.get(self.base + path)
        self.accessible()

    def find(self, css):
        return self.d.find_element(By.CSS_SELECTOR, css)

    def finds(self, css):
        return self.d.find_elements(By.CSS_SELECTOR, css)

    def text(self):
        return self.find("main").text

    def fill(self, fields):
        for name, value in fields.items():
            el = self.find("[name='%s']" % name)
            el.clear()
            el.send_keys(value)

    def click(self, css):
        self.find(css).click()
        self.accessible()

    def choose(self, name, value):
        self.find("input[name='%s'][value='%s']" % (name, value)).click()

    def accessible(self):
        """axe-core's WCAG 2.0-2.2 A and AA rules on the page now: no violations."""
        self.urls.append(self.d.current_url)
        path = re.sub(r"[0-9a-f]{8}-[0-9a-f-]{27}", "ID", self.d.current_url.split("?")[0])
        path = path.replace(self.base, "")
        title = self.d.title
        key = (path, title.split(" - ")[0])
        self.d.execute_script(self.axe)  # (DevTools-injected: not blocked by the page's CSP)
        res = self.d.execute_async_script(
            "const done = arguments[arguments.length - 1];"
            "axe.run(document, {runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a',"
            " 'wcag21aa', 'wcag22aa']}}).then(r => done(r.violations.map(v => v.id + ': ' +"
            " v.nodes.length + ' ' + v.help)), e => done(['axe failed: ' + e]));")
        if key not in self.pages or res:
            self.pages.add(key)
            check(not res, "axe-core: no WCAG 2.2 AA violations on %s (%s)%s" %
                  (path or "/", key[1], ": " + "; ".join(res) if res else ""))

    def screenshot(self, name):
        os.makedirs(self.shots, exist_ok=True)
        path = os.path.join(self.shots, name)
        self.d.save_screenshot(path)
        check(os.path.getsize(path) > 10000, "screenshot %s written" % name)

    def sign_in(self, name, password=None):
        self.get("/sign-in")
        self.fill({"name": name, "password": password or PASSWORDS[name]})
        self.click("#sign-in")

    def sign_out(self):
        self.click("button.sh-link-button")

    def cookie(self):
        c = self.d.get_cookie("sh_session")
        return c["value"] if c else None

    def quit(self):
        self.d.quit()


def publish(rig, agency, ev, user="dsl-katie"):
    r = subprocess.run([rig.sh, "publish", "-", "--user", user, "--socket", rig.socket(agency),
                        "--json"], input=json.dumps(ev), capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError("publish at %s: %s%s" % (agency, r.stdout, r.stderr))
    return json.loads(r.stdout)["event_id"]


def inbox(rig, agency, types):
    r = rig.run(rig.sh, "inbox", "--user", "test", "--purpose", "test", "--socket",
                rig.socket(agency), "--json")
    items = json.loads(r.stdout.splitlines()[-1])["items"] if r.stdout.strip() else []
    return [i for i in items if i.get("type") in types]


def concern(child, level=4, immediate=True, category="physical_abuse",
            consent="not_sought_risk_of_harm"):
    return {"event_type": "safeguarding_concern", "purpose": "safeguarding",
            "consent": consent, "level_of_need": level, "lawful_basis": BASIS,
            "child": child,
            "safeguarding_concern": {"category": category, "immediate_risk": immediate,
                                     "narrative": "Synthetic narrative for the test.",
                                     "reported_by": {"org_code": "8819990", "role": "DSL"}}}


def request_for_support(child, level=3):
    return {"event_type": "request_for_support", "purpose": "early_help", "consent": "given",
            "level_of_need": level, "lawful_basis": BASIS, "child": child,
            "request_for_support": {
                "referrer": {"org_code": "8819990", "role": "Designated Safeguarding Lead"},
                "concerns": [{"category": "neglect", "about": "the child",
                              "examples": "Synthetic example."}]}}


def setup(rig):
    for name, role, display in [("amir", "practitioner", "Amir Shah"),
                                ("mona", "manager", "Mona Patel"),
                                ("rory", "read_only", "Rory Bell"),
                                ("ade", "auditor", "Ade Okafor")]:
        rig.account("hub", name, role, PASSWORDS[name], display)
    rig.account("health", "li", "read_only", PASSWORDS["li"], "Dr Li")
    a, b = rig.synthetic_child(41), rig.synthetic_child(42)
    ids = {"rfs": publish(rig, "school", request_for_support(b)),
           # below level 4 and with no immediate risk, a concern is shared with consent
           "low": publish(rig, "school", concern(b, level=2, immediate=False,
                                                 category="emotional_abuse", consent="given")),
           "concern": publish(rig, "school", concern(a))}
    today = time.strftime("%Y-%m-%d", time.gmtime())
    plan = {"event_type": "cp_plan_status", "purpose": "safeguarding", "consent": "not_required",
            "level_of_need": 4, "lawful_basis": BASIS, "child": a,
            "cp_plan_status": {"status": "started", "category": "physical_abuse",
                               "start_date": today,
                               "responsible_la": {"la_code": "881",
                                                  "office_hours_phone": "01632 960001",
                                                  "out_of_hours_phone": "01632 960002"}}}
    ids["plan"] = publish(rig, "hub", plan, "sw-test")
    rig.wait(lambda: len(inbox(rig, "health", {"cp_plan_status"})) == 1, "health to hold the plan")
    att = {"event_type": "unscheduled_care_attendance", "purpose": "direct_care",
           "consent": "not_required",
           "lawful_basis": {"article6": "e_public_task", "article9": "2h_health_social_care",
                            "dpa_schedule1_paragraph": 2},
           "child": {"nhs_number": a["nhs_number"]},
           "unscheduled_care_attendance": {"site_code": "RAJ01", "setting": "emergency_department",
                                           "arrived_at_ms": int(time.time() * 1000) - 3600000,
                                           "presenting_complaint": "Synthetic complaint",
                                           "outcome": "discharged"}}
    ids["attendance"] = publish(rig, "health", att, "ed-nurse")
    rig.wait(lambda: len(inbox(rig, "hub", {"safeguarding_concern", "request_for_support"})) == 3,
             "the hub to receive the three referrals")
    return a, b, ids


def reads_of(rig, event_id, user):
    return [e for e in rig.audit("hub", "--action", "read", "--event", event_id)
            if e.get("actor_user") == user]


def test_sign_in(rig, br):
    br.get("/queue")
    check("/sign-in" in br.d.current_url, "a page that needs a session sends an anonymous visitor "
          "to sign in")
    br.sign_in("amir", "wrong password entirely")
    check("The user name or password is not right" in br.text(),
          "a wrong password is refused with a message that does not say which part was wrong")
    br.sign_in("nobody", "whatever password")
    check("The user name or password is not right" in br.text(),
          "an unknown user name gets the same message")
    for _ in range(5):
        br.sign_in("rory", "not the password at all")
    check("locked" in br.text(), "five failures in a row lock the account")
    br.sign_in("rory")
    check("locked" in br.text() and br.cookie() is not None and "/sign-in" in br.d.current_url,
          "the right password does not open a locked account")
    rig.run(rig.sh, "account", "set", "rory", "--role", "read_only", "--user", "admin",
            "--socket", rig.socket("hub"))
    fails = rig.audit("hub", "--action", "sign_in", "--decision", "failed")
    denied = rig.audit("hub", "--action", "sign_in", "--decision", "denied")
    check(len(fails) >= 6 and len(denied) >= 1 and
          any(e.get("actor_user") == "?" or e.get("actor_user") == "nobody" for e in fails),
          "failed sign-ins and the lock are audited (%d failed, %d denied)" %
          (len(fails), len(denied)))


def test_manager_assigns(rig, br, ids):
    br.sign_in("mona")
    check("/queue" in br.d.current_url, "a manager at the hub lands on the front-door queue")
    rows = br.finds("tr.sh-item")
    order = [r.get_attribute("data-event-id") for r in rows]
    check(order[:1] == [ids["concern"]] and set(order) == {ids["concern"], ids["rfs"], ids["low"]},
          "the queue lists the three referrals, immediate risk first")
    showing = br.find("#showing").text
    check("of 3 items" in showing, "the queue says how many there are (%r)" % showing)
    first = rows[0].text
    check("Immediate risk" in first and "Level 4" in first and "8819990" in first and
          re.search(r"\d{2}:\d{2}", first) and "left" in first and "Mid" in first,
          "a queue row shows risk, level asked, referrer, locality, received and the deadline")
    check(not reads_of(rig, ids["rfs"], "mona") and not reads_of(rig, ids["concern"], "mona"),
          "listing the queue is not a read of any item in it")
    br.screenshot("workspace-queue.png")
    br.d.find_element(By.CSS_SELECTOR, "tr[data-event-id='%s'] a" % ids["concern"]).click()
    check("Why are you opening this record?" in br.text(), "opening an item asks why first")
    br.accessible()
    br.choose("purpose", "triage")
    br.click("#open-record")
    br.find("select#to option[value='amir']")
    Select(br.find("select#to")).select_by_value("amir")
    br.click("#assign-button")
    check("Assigned to amir" in br.text() and "amir (assigned by mona)" in br.find("#holder").text,
          "a manager assigns the concern to a practitioner")
    br.get("/queue")
    row = br.find("tr[data-event-id='%s']" % ids["concern"])
    check("amir" in row.find_element(By.CSS_SELECTOR, ".sh-holder").text,
          "the queue shows who holds what")
    br.sign_out()
    check("signed out" in br.text(), "signing out ends the session")


def test_practitioner_decides(rig, br, ids, shots):
    br.sign_in("amir")
    br.get("/queue?mine=1")
    order = [r.get_attribute("data-event-id") for r in br.finds("tr.sh-item")]
    check(order == [ids["concern"]], "'assigned to me' shows the practitioner's item")
    before = len(reads_of(rig, ids["concern"], "amir"))
    br.get("/items/%s?purpose=triage" % ids["concern"])
    after = reads_of(rig, ids["concern"], "amir")
    check(before == 0 and len(after) == 1 and after[0].get("purpose") == "triage",
          "opening the concern is one audited read, by the signed-in user, for the purpose chosen")
    text = br.text()
    shared = br.find("#shared").text
    check("Consent" in shared and "Not sought risk of harm" in shared and
          "Purpose" in shared and "Safeguarding" in shared,
          "the referral shows the consent on record and the purpose it was shared for")
    check("Child protection plan" in text and "01632 960001" in text and
          len(br.finds("#attendances tbody tr")) == 1 and
          "CP plan status" in br.find("#history").text,
          "the referral shows the CP-IS flag the hub started, the authority's numbers, the "
          "attendance and the child's history")
    # a pair outside the table: refused before anything is sent
    br.choose("level", "2")
    br.choose("outcome", "section_47_strategy")
    br.fill({"rationale": "Synthetic rationale."})
    br.click("#decide-button")
    check("does not fit level of need 2" in br.text() and "Assigned" in br.find("#state").text,
          "level 2 with a section 47 strategy discussion is refused, naming what fits")
    br.choose("level", "4")
    br.choose("outcome", "section_47_strategy")
    br.fill({"rationale": "Synthetic rationale: strategy discussion today."})
    br.click("#decide-button")
    check("Decision sent to the referrer" in br.text() and "Decided" in br.find("#state").text,
          "the practitioner decides level 4, strategy discussion; the item is decided")
    br.screenshot("workspace-referral.png")
    rig.wait(lambda: len(inbox(rig, "school", {"hub_decision"})) == 1,
             "the school's agent to receive the decision")
    dec = inbox(rig, "school", {"hub_decision"})[0]["event"]["hub_decision"]
    check(dec["level_of_need"] == 4 and dec["outcome"] == "section_47_strategy" and
          "rationale" not in dec, "the school receives the decision, without the rationale")
    # a second decision is refused; an amendment with a reason goes through
    br.choose("level", "3")
    br.choose("outcome", "section_17_assessment")
    br.fill({"rationale": "Synthetic second thoughts.", "amend_reason": ""})
    br.click("#decide-button")
    check("already decided" in br.text(), "a second decision without a reason is refused")
    br.choose("level", "3")
    br.choose("outcome", "section_17_assessment")
    br.fill({"rationale": "Synthetic rationale.",
             "amend_reason": "Strategy discussion found no significant harm."})
    br.click("#decide-button")
    check("Amended decision sent" in br.text() and "amended 1 time" in br.find("#decided").text,
          "an amendment with a reason goes through")
    rig.wait(lambda: len(inbox(rig, "school", {"hub_decision"})) == 2,
             "the school's agent to receive the amendment")
    decs = [i["event"]["hub_decision"] for i in inbox(rig, "school", {"hub_decision"})]
    check(decs[1].get("amends_event_id") and decs[1]["level_of_need"] == 3,
          "the school's amendment names the decision it replaces")
    # the CLI is held to the same rules
    r = rig.run(rig.sh, "triage", ids["concern"], "--level", "1", "--outcome",
                "no_further_action", "--rationale", "x", "--user", "amir", "--socket",
                rig.socket("hub"), check=False)
    check(r.returncode == 1 and "E915" in r.stderr, "the CLI's second decision is refused too")
    r = rig.run(rig.sh, "triage", ids["plan"], "--level", "4", "--outcome",
                "section_47_strategy", "--rationale", "x", "--user", "amir", "--socket",
                rig.socket("hub"), check=False)
    check(r.returncode == 1 and "E915" in r.stderr, "a decision on something the hub sent is "
          "refused")
    # forged and stale posts
    cookie = br.cookie()
    s = requests.Session()
    s.trust_env = False
    s.verify = rig.ca
    s.cookies.set("sh_session", cookie)
    res = s.post(br.base + "/items/%s/decide" % ids["rfs"],
                 data={"level": "3", "outcome": "family_solutions", "rationale": "forged"},
                 allow_redirects=False)
    check(res.status_code == 403 and "E913" in res.text, "a post without the CSRF token is refused")
    return cookie


def test_refusals(rig, br, ids, old_cookie):
    s = requests.Session()
    s.trust_env = False
    s.verify = rig.ca
    s.cookies.set("sh_session", old_cookie)
    br.sign_out()
    res = s.get(br.base + "/queue", allow_redirects=False)
    check(res.status_code == 303 and "/sign-in" in res.headers.get("Location", ""),
          "a session ended by signing out no longer opens pages")
    # a read-only user sees no form and cannot decide
    br.sign_in("rory")
    br.get("/items/%s?purpose=triage" % ids["rfs"])
    check(not br.finds("#decide") and not br.finds("#assign"), "a read-only user gets no forms")
    csrf = re.search(r'name="csrf" value="([^"]+)"', br.d.page_source).group(1)
    s2 = requests.Session()
    s2.trust_env = False
    s2.verify = rig.ca
    s2.cookies.set("sh_session", br.cookie())
    res = s2.post(br.base + "/items/%s/decide" % ids["rfs"],
                  data={"csrf": csrf, "level": "3", "outcome": "family_solutions",
                        "rationale": "x"}, allow_redirects=False)
    check(res.status_code == 403 and "E914" in res.text, "a read-only user's decision is refused")
    br.sign_out()
    # idle sessions end: a second workspace on the hub with a 2 s idle time
    port = free_port()
    cfg = rig.path("api-hub.yaml")
    with open(cfg) as f:
        text = f.read()
    text = re.sub(r'listen: "127.0.0.1:\d+"\n', 'listen: "127.0.0.1:%d"\n' % free_port(), text, 1)
    text = re.sub(r'(workspace:\n  listen: )"127.0.0.1:\d+"', r'\1"127.0.0.1:%d"' % port, text)
    text = text.replace("  site: RAJ01", "  session_idle: 2s\n  session_absolute: 4s\n  site: RAJ01")
    with open(rig.path("api-hub-idle.yaml"), "w") as f:
        f.write(text)
    rig._spawn("api-hub-idle", [os.path.join(rig.build, "api", "sharehub-api"), "--config",
                                "api-hub-idle.yaml"])
    base = "https://127.0.0.1:%d" % port
    s3 = requests.Session()
    s3.trust_env = False
    s3.verify = rig.ca

    def up():
        try:
            return s3.get(base + "/sign-in").status_code == 200
        except requests.RequestException:
            return False
    rig.wait(up, "the second workspace to listen")
    csrf = re.search(r'name="csrf" value="([^"]+)"', s3.get(base + "/sign-in").text).group(1)
    res = s3.post(base + "/sign-in", data={"csrf": csrf, "name": "amir",
                                           "password": PASSWORDS["amir"]})
    ok = res.status_code == 200 and "Front-door queue" in res.text
    page = s3.get(base + "/queue")
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
    time.sleep(2.5)
    res = s3.get(base + "/queue", allow_redirects=False)
    res2 = s3.post(base + "/items/%s/decide" % ids["rfs"],
                   data={"csrf": csrf, "level": "3", "outcome": "family_solutions",
                         "rationale": "x"}, allow_redirects=False)
    check(ok and res.status_code == 303 and "expired=1" in res.headers.get("Location", "") and
          res2.status_code == 401 and "E912" in res2.text,
          "an idle session ends: its pages send to sign-in, its posts are refused")
    # a session kept busy still ends at its absolute time
    csrf = re.search(r'name="csrf" value="([^"]+)"', s3.get(base + "/sign-in").text).group(1)
    t0, alive = time.time(), []  # (from before signing in: the session starts then)
    s3.post(base + "/sign-in", data={"csrf": csrf, "name": "amir", "password": PASSWORDS["amir"]})
    t1 = time.time()  # (the session started before this: its password check can take a while)
    kept = s3.cookies.get("sh_session")
    while time.time() - t0 < 8.0:
        r = s3.get(base + "/queue", allow_redirects=False)
        alive.append((time.time() - t0, r.status_code))
        if r.status_code != 200:
            break
        time.sleep(0.5)
    ended = [t for t, code in alive if code == 303]
    # the browser drops the cookie at its Max-Age (whole seconds); the server refuses the
    # session past its absolute time even to a client that kept the cookie
    time.sleep(max(0.0, 4.3 - (time.time() - t1)))
    s4 = requests.Session()
    s4.trust_env = False
    s4.verify = rig.ca
    s4.cookies.set("sh_session", kept)
    late = s4.get(base + "/queue", allow_redirects=False)
    check(alive[0][1] == 200 and ended and 3.0 < ended[0] < 7.0 and
          all(code == 200 for t, code in alive if t < 3.0) and late.status_code == 303 and
          "expired=1" in late.headers.get("Location", ""),
          "a busy session still ends at its absolute time (4 s here; ended at %.1f s: %s)" %
          (ended[0] if ended else -1, " ".join("%.1f:%d" % a for a in alive)))
    # a burst of sign-ins: at most 10 password checks a second, the rest told to wait
    # (8 clients at once, 6 tries each: far more than 10 arrive in some second however slow
    # the build)
    def burst(_):
        c = requests.Session()
        c.trust_env = False
        c.verify = rig.ca
        tok = re.search(r'name="csrf" value="([^"]+)"', c.get(base + "/sign-in").text).group(1)
        return [c.post(base + "/sign-in", data={"csrf": tok, "name": "nobody",
                                                "password": "not a password at all"},
                       allow_redirects=False).status_code for _ in range(6)]
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        codes = [c for batch in pool.map(burst, range(8)) for c in batch]
    check(codes.count(429) > 0 and codes.count(401) + codes.count(429) == len(codes),
          "a burst of sign-ins is throttled (%d checked, %d told to wait)" %
          (codes.count(401), codes.count(429)))
    check(res.headers.get("Strict-Transport-Security") and
          "script-src 'self'" in page.headers.get("Content-Security-Policy", "") and
          "HttpOnly" in page.headers.get("Set-Cookie", "HttpOnly") and
          all(c.secure for c in s3.cookies), "pages carry a strict CSP, HSTS, secure cookies")


def test_search(rig, br, a):
    br.sign_in("amir")
    br.get("/children")
    dob = a["date_of_birth"].split("-")
    br.fill({"given_name": a["given_name"].lower(), "family_name": a["family_name"],
             "dob_day": str(int(dob[2])), "dob_month": str(int(dob[1])), "dob_year": dob[0]})
    br.choose("purpose", "safeguarding_enquiry")
    br.click("#search-button")
    rows = br.finds("#found tbody tr")
    check(len(rows) == 1 and a["nhs_number"] in rows[0].text,
          "the child search finds the child by name and date of birth")
    rows[0].find_element(By.CSS_SELECTOR, "button").click()
    br.accessible()
    check("Child protection plan" in br.text(), "the child's record opens from the search")
    br.get("/children")
    bad = a["nhs_number"][:-1] + str((int(a["nhs_number"][-1]) + 1) % 10)
    br.fill({"id": bad})
    br.choose("purpose", "triage")
    br.click("#search-button")
    check("not a valid NHS number" in br.text() and "nothing" not in br.text().lower(),
          "a mistyped NHS number is refused as not valid, never 'not found'")
    leaked = [u for u in br.urls for v in (a["nhs_number"], a["upn"], a["family_name"],
                                            a["given_name"], bad) if v.lower() in u.lower()]
    check(not leaked, "no child's identifier or name is ever in an address (%s)" % leaked[:1])
    with open(rig.path("hub.store") + "/data.mdb", "rb") as f:
        raw = f.read()
    check(a["family_name"].encode() not in raw and a["given_name"].encode() not in raw,
          "the name index keeps no name in clear in the hub's store")
    br.sign_out()


def test_auditor(rig, br, ids):
    br.sign_in("ade")
    check("/audit" in br.d.current_url and br.finds("#audit tbody tr"),
          "an auditor lands on the audit log")
    br.get("/audit?action=read&actor=amir")
    rows = [r.text for r in br.finds("#audit tbody tr")]
    check(rows and all("read" in r and "amir" in r for r in rows) and
          any("front-door item" in r for r in rows),
          "the auditor filters the log: amir's reads, with the purpose and what was read")
    page = br.d.page_source
    a = rig.synthetic_child(41)
    check(a["nhs_number"] not in page and a["family_name"] not in page,
          "the audit log page shows no child's name or identifier")
    br.get("/queue")
    check("E914" in br.text(), "an auditor cannot open the queue")
    br.get("/items/%s?purpose=triage" % ids["rfs"])
    check("E914" in br.text(), "an auditor cannot open a record")
    br.sign_out()


UNIX_USER = "shws%d" % (os.getpid() % 100000)
UNIX_GROUP = "shwsgroup"


def unix_user_made():
    """As root: a group allowed on the hub's socket and a login in it (removed at the end)."""
    if os.geteuid() != 0:
        return False
    subprocess.run(["groupadd", "-f", UNIX_GROUP], check=True)
    subprocess.run(["useradd", "-M", "-N", "-g", UNIX_GROUP, "-s", "/usr/sbin/nologin",
                    UNIX_USER], check=True)
    return True


def test_unix_identity(rig, ids):
    """A member of socket_group uses the CLI as themselves: the agent reads the connection's
    credentials, so --user cannot claim anyone else."""
    os.chmod(rig.work, 0o711)  # (the socket's directory: reachable, not listable)
    sock = rig.socket("hub")

    def as_user(*args):
        return subprocess.run(["runuser", "-u", UNIX_USER, "--", rig.sh] + list(args) +
                              ["--socket", sock], capture_output=True, text=True)
    r = as_user("show", ids["rfs"], "--purpose", "triage")
    reads = [e for e in rig.audit("hub", "--action", "read", "--event", ids["rfs"])
             if e.get("actor_user") == UNIX_USER]
    check(r.returncode == 0 and reads and reads[-1]["detail"].endswith("via unix"),
          "a Unix account in socket_group reads as itself, recorded as its login (%s)" %
          (r.stderr.strip() or "ok"))
    r = as_user("show", ids["rfs"], "--purpose", "triage", "--user", "amir")
    check(r.returncode == 1 and "E914" in r.stderr and UNIX_USER in r.stderr,
          "it cannot claim to be someone else with --user")
    r = as_user("account", "list")
    check(r.returncode == 1 and "E914" in r.stderr, "it cannot list or read the accounts")
    r = as_user("triage", ids["rfs"], "--level", "3", "--outcome", "family_solutions",
                "--rationale", "x")
    check(r.returncode == 1 and "E914" in r.stderr and "not an account" in r.stderr,
          "its login decides nothing unless it is a practitioner's account")


def test_clinician(rig, base, a, shots):
    br = Browser(base, shots)
    try:
        before = len(inbox(rig, "hub", {"access_notification"}))
        br.sign_in("li")
        check("/clinician" in br.d.current_url, "a clinician at health lands on the flag check")
        bad = a["nhs_number"][:-1] + str((int(a["nhs_number"][-1]) + 1) % 10)
        br.fill({"nhs": bad})
        br.click("#check-button")
        check("not a valid NHS number" in br.text(),
              "a mistyped NHS number is refused, never 'no flag'")
        br.fill({"nhs": a["nhs_number"]})
        br.click("#check-button")
        text = br.text()
        check("Child protection plan" in text and "01632 960001" in text and
              "01632 960002" in text and len(br.finds("#attendances tbody tr")) == 1 and
              "Essex" in br.find("#la-name").text,
              "the clinician sees the flag, both numbers and the attendance")
        br.screenshot("workspace-clinician.png")
        check(not [u for u in br.urls if a["nhs_number"] in u or bad in u],
              "the NHS number looked up is never in an address")
        rig.wait(lambda: len(inbox(rig, "hub", {"access_notification"})) > before,
                 "the hub to receive the access notification")
        check(True, "the look-up notifies the responsible authority")
    finally:
        br.quit()


def main():
    build = sys.argv[1] if len(sys.argv) > 1 else "build/dev"
    shots = sys.argv[2] if len(sys.argv) > 2 else os.path.join(build, "screenshots")
    unix = unix_user_made()
    try:
        rig = Rig(build, {}, workspace=True, apis=["hub", "health"],
                  agent_extra={"hub": HUB_CONFIG + ("socket_group: %s\n" % UNIX_GROUP if unix
                                                    else "")})
    except BaseException:
        if unix:
            subprocess.run(["userdel", UNIX_USER], capture_output=True)
        raise
    br = None
    try:
        a, _, ids = setup(rig)
        br = Browser(rig.ws_url("hub"), shots)
        test_sign_in(rig, br)
        test_manager_assigns(rig, br, ids)
        cookie = test_practitioner_decides(rig, br, ids, shots)
        test_refusals(rig, br, ids, cookie)
        test_search(rig, br, a)
        test_auditor(rig, br, ids)
        if unix:
            test_unix_identity(rig, ids)
        else:
            print("workspace: skip the Unix-credentials checks (they make a login: root only)")
        test_clinician(rig, rig.ws_url("health"), a, shots)
    except Exception as e:  # a crash of the harness is a failure, with the rig kept
        import traceback
        traceback.print_exc()
        check(False, "the test raised %s: %s" % (type(e).__name__, e))
    finally:
        if br:
            br.quit()
        for n, p in rig.procs:
            check(p.poll() is None, "%s still running at the end" % n)
        bad = rig.stop(keep=bool(FAILED))
        if unix:
            subprocess.run(["userdel", UNIX_USER], capture_output=True)
            subprocess.run(["groupdel", UNIX_GROUP], capture_output=True)
        for b in bad:
            check(False, b)
    print("workspace: %s (%d failed)" % ("FAILED" if FAILED else "all passed", len(FAILED)))
    return 1 if FAILED else 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""federation_faults.py BUILD [--rounds N] [--rate R] [--keep] — three local authorities on three
hosts, with the network failing between them (docs/federation.md, "Proven on separate hosts").

The hosts are Linux network namespaces this test makes (it must run as root, as CI does):
Essex (881), Thurrock (883) and Southend (882), each with its own address on a bridge in a
fourth namespace, its own broker (on 127.0.0.1 for its agents and links, on its address for its
peers), its own store, keys, registry and protocols, and the signed federation directory.
Essex's emergency department (RAJ) publishes safeguarding concerns about children of Thurrock
and Southend; the cross-border protocol permits each to both front doors (883, 882). Thurrock's
and Southend's links pull from Essex; Essex's links pull the receipts back: Essex's broker
starts those itself (--link) and they go down and come back with it.

While it publishes, the test fails the network, round after round, each kind once a round:
  loss       30% of Essex's packets dropped at random for a second (nftables, numgen random)
  partition  every packet between Essex and Thurrock or Southend dropped for 1.5 s (nftables)
  linkdown   Thurrock's or Southend's interface taken down for 1.5 s (ip link)
  throttle   Thurrock's or Southend's interface slowed to 256 kbit/s for 1.5 s (tc tbf): a link
             that still works but queues, so everything crossing it is late
  kill-essex, kill-thurrock   that broker killed with SIGKILL while events cross, restarted
Then it waits for the outbox and the queues to drain and counts, from the agents' own records:
every event the Essex broker confirmed must be held exactly once by each of the two front
doors, in the order RAJ published them, and every broker's audit chain must verify, each
against the signed heads of it that its peers' chains hold (the links witness them).

tc netem (delay, reordering) is not used: this machine's kernel has no sch_netem (the test
says so when it looks); the throttle is tc's token bucket instead, and TCP turns loss into
retransmission and reordering into delay either way.
"""
import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TAG = "%05d" % (os.getpid() % 100000)
SUBNET = "10.%d.%d" % (200 + os.getpid() % 50, os.getpid() % 250)
AUTH = {  # name: (LA code, broker code, host number, recipient org or None)
    "essex": ("881", "SH881", 1, None),
    "thurrock": ("883", "SH883", 2, "883"),
    "southend": ("882", "SH882", 3, "882"),
}
PORT = 7750


def sh(*cmd, check=True, ns=None, **kw):
    if ns:
        cmd = ("ip", "netns", "exec", ns) + cmd
    r = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if check and r.returncode != 0:
        raise RuntimeError("%s: %s" % (" ".join(cmd), (r.stderr or r.stdout).strip()))
    return r


class Net:
    """The hosts: a namespace each, joined by a bridge in a namespace of its own."""

    def __init__(self):
        self.ns = {a: "shf%s%s" % (TAG, a[0]) for a in AUTH}
        self.hub = "shf%sn" % TAG
        self.made = []
        sh("ip", "netns", "add", self.hub)
        self.made.append(self.hub)
        sh("ip", "link", "add", "br0", "type", "bridge", ns=self.hub)
        sh("ip", "link", "set", "br0", "up", ns=self.hub)
        for a, (_, _, n, _) in AUTH.items():
            ns = self.ns[a]
            sh("ip", "netns", "add", ns)
            self.made.append(ns)
            inner, outer = "v%s%s" % (TAG, a[0]), "w%s%s" % (TAG, a[0])
            sh("ip", "link", "add", inner, "type", "veth", "peer", "name", outer)
            sh("ip", "link", "set", inner, "netns", ns, "name", "eth0")
            sh("ip", "link", "set", outer, "netns", self.hub)
            sh("ip", "link", "set", outer, "master", "br0", ns=self.hub)
            sh("ip", "link", "set", outer, "up", ns=self.hub)
            sh("ip", "addr", "add", "%s.%d/24" % (SUBNET, n), "dev", "eth0", ns=ns)
            sh("ip", "link", "set", "eth0", "up", ns=ns)
            sh("ip", "link", "set", "lo", "up", ns=ns)
            sh("nft", "add", "table", "inet", "faults", ns=ns)
            for chain, hook in (("in", "input"), ("out", "output")):
                sh("nft", "add", "chain", "inet", "faults", chain,
                   "{ type filter hook %s priority 0 ; }" % hook, ns=ns)

    def addr(self, a):
        return "%s.%d" % (SUBNET, AUTH[a][2])

    def drop(self, a, rule):
        for chain, direction in (("in", "saddr"), ("out", "daddr")):
            sh("nft", "add", "rule", "inet", "faults", chain,
               *rule.replace("DIR", direction).split(), ns=self.ns[a])

    def heal(self, a):
        for chain in ("in", "out"):
            sh("nft", "flush", "chain", "inet", "faults", chain, ns=self.ns[a])

    def close(self):
        for ns in reversed(self.made):
            sh("ip", "netns", "del", ns, check=False)


class Federation:
    def __init__(self, build, net, work):
        self.b, self.net, self.w = build, net, work
        self.cli = os.path.join(build, "tools", "sharehub")
        self.procs = {}
        self.args = {}
        self.logs = []
        k = {}

        def key(kind, name):
            out = sh(self.cli, "keygen", kind, self.p(name)).stdout
            return out.strip().split("public key: ")[-1]

        for a in AUTH:
            sh(self.cli, "keygen", "master", self.p(a + ".master"))
            k[a + ".sign"] = key("sign", a + ".sign.pem")
            k[a + ".curve"] = key("curve", a + ".curve")
        for agent in ("raj", "hub883", "hub882"):
            sh(self.cli, "keygen", "master", self.p(agent + ".master"))
            k[agent + ".sign"] = key("sign", agent + ".sign.pem")
            k[agent + ".curve"] = key("curve", agent + ".curve")
        # the links: into Thurrock and Southend from Essex, and back into Essex from each
        for link in ("t-from-e", "s-from-e", "e-from-t", "e-from-s"):
            k[link] = key("curve", "link-%s.curve" % link)
        self.fed = key("sign", "federation.pem")
        self.k = k
        orgs = {
            "essex": "      - {code: RAJ, name: Emergency departments, sector: health, "
                     "locality: essex, service_type: emergency_department, "
                     "sign_keys: ['%s']}\n" % k["raj.sign"],
            "thurrock": "      - {code: '883', name: Thurrock front door, sector: social_care, "
                        "locality: thurrock, la_code: '883'}\n",
            "southend": "      - {code: '882', name: Southend front door, sector: social_care, "
                        "locality: southend, la_code: '882'}\n",
        }
        d = "federation: weisf\nserial: 1\nauthorities:\n"
        for a, (la, code, _, _) in AUTH.items():
            d += ("  - la_code: '%s'\n    name: %s\n    broker: {code: %s, endpoint: 'tcp://%s:%d',"
                  " curve_key: '%s', sign_key: '%s'}\n    organisations:\n%s"
                  % (la, a.title(), code, net.addr(a), PORT, k[a + ".curve"], k[a + ".sign"],
                     orgs[a]))
        self.write("directory.yaml", d)
        sh(self.cli, "directory", "sign", self.p("directory.yaml"), "--key",
           self.p("federation.pem"))
        peer = "  - {code: LA%s, name: peer, sector: peer, locality: %s, la_code: '%s', keys: ['%s', '%s']}\n"
        self.write("essex.registry.yaml", "organisations:\n"
                   "  - {code: RAJ, name: Emergency departments, sector: health, locality: essex,"
                   " service_type: emergency_department, keys: ['%s']}\n" % k["raj.curve"]
                   + peer % ("883", "thurrock", "883", k["t-from-e"], k["e-from-t"])
                   + peer % ("882", "southend", "882", k["s-from-e"], k["e-from-s"]))
        for a, link, back in (("thurrock", "t-from-e", "e-from-t"),
                              ("southend", "s-from-e", "e-from-s")):
            la = AUTH[a][0]
            self.write(a + ".registry.yaml", "organisations:\n"
                       "  - {code: '%s', name: front door, sector: social_care, locality: %s,"
                       " la_code: '%s', keys: ['%s']}\n" % (la, a, la, k["hub%s.curve" % la])
                       + peer % ("881", "essex", "881", k[link], k[back]))
        for a, recipients in (("essex", ["883", "882"]), ("thurrock", ["883"]),
                              ("southend", ["882"])):
            os.makedirs(self.p(a + ".policy"))
            self.write(a + ".policy/isp-xb.yaml", self.isp(recipients))
        self.write("senders", "org=RAJ key=%s\norg=883 key=%s\norg=882 key=%s\n"
                   % (k["raj.sign"], k["hub883.sign"], k["hub882.sign"]))

    def p(self, *x):
        return os.path.join(self.w, *x)

    def write(self, name, text):
        with open(self.p(name), "w") as f:
            f.write(text)

    @staticmethod
    def isp(recipients):
        parties = ["RAJ"] + recipients
        return (
            "id: isp-xb\nversion: '1'\ntitle: Concerns from Essex emergency departments to "
            "the front door of the child's authority\nstatus: active\nreview_date: '2027-06-30'\n"
            "lead: '%s'\npurpose_statement: >-\n  Essex emergency departments tell the front door"
            " of the authority responsible for the child.\ngateways: [Children Act 1989 s47]\n"
            "purposes: [safeguarding]\nevent_types: [safeguarding_concern]\n"
            "senders: [{organisation: RAJ}]\nrecipients:\n%s"
            "lawful_basis: {article6: 6(1)(e), article9: 9(2)(g), dpa_schedule1_paragraph: "
            "Schedule 1 paragraph 18}\nconsent: not_required\ncontrollers: [%s]\n"
            "retention: {keep: 6 years, then: review}\n"
            "dpia: {reference: FED-DPIA-1, completed_on: '2026-08-14'}\nsignatories:\n%s"
            % (recipients[0],
               "".join("  - {organisation: '%s', data_items: [child, safeguarding_concern]}\n" % r
                       for r in recipients),
               ", ".join("{organisation: '%s', role: controller}" % o for o in parties),
               "".join("  - {organisation: '%s', role: Signatory, signed_on: '2026-09-01', "
                       "version: '1'}\n" % o for o in parties)))

    def spawn(self, name, ns, args):
        log = open(self.p(name + ".log"), "a")
        self.logs.append(log)
        self.args[name] = (ns, args)
        self.procs[name] = subprocess.Popen(["ip", "netns", "exec", ns] + args, stdout=log,
                                            stderr=log, cwd=self.w)

    def restart(self, name):
        ns, args = self.args[name]
        self.spawn(name, ns, args)

    def start(self):
        for a, (la, code, _, _) in AUTH.items():
            self.spawn(a, self.net.ns[a], [
                os.path.join(self.b, "broker", "sharehub-broker"),
                "--endpoint", "tcp://127.0.0.1:%d" % PORT,
                "--endpoint", "tcp://%s:%d" % (self.net.addr(a), PORT),
                "--store", self.p(a + ".store"), "--master", self.p(a + ".master"),
                "--sign-key", self.p(a + ".sign.pem"), "--curve-key", self.p(a + ".curve"),
                "--registry", self.p(a + ".registry.yaml"), "--policy", self.p(a + ".policy"),
                "--org", code, "--directory", self.p("directory.yaml"),
                "--federation-key", self.fed, "--authority", la, "--heartbeat-ms", "1000",
                "--redeliver-ms", "1000", "--log-level", "warning"]
                + (["--link", "883=" + self.p("link-e-from-t.curve"),
                    "--link", "882=" + self.p("link-e-from-s.curve")] if a == "essex" else []))
        # (Essex's broker starts its own links: --link; the others run theirs apart)
        for name, a, peer, keyname in (("link-t", "thurrock", "881", "t-from-e"),
                                       ("link-s", "southend", "881", "s-from-e")):
            self.spawn(name, self.net.ns[a], [
                os.path.join(self.b, "broker", "sharehub-link"),
                "--directory", self.p("directory.yaml"), "--federation-key", self.fed,
                "--authority", AUTH[a][0], "--peer", peer,
                "--curve-key", self.p("link-%s.curve" % keyname),
                "--local", "tcp://127.0.0.1:%d" % PORT, "--local-key", self.k[a + ".curve"],
                "--heartbeat-ms", "1000"])
        for agent, a, org, role in (("raj", "essex", "RAJ", "health"),
                                    ("hub883", "thurrock", "883", "social_care"),
                                    ("hub882", "southend", "882", "social_care")):
            self.write(agent + ".yaml", (
                "org: '%s'\nrole: %s\nbroker: {endpoint: 'tcp://127.0.0.1:%d', public_key: '%s'}\n"
                "curve_key: %s\nstore: %s\nmaster_key: %s\nsign_key: %s\nsenders: %s\n"
                "socket: %s\nheartbeat_ms: 1000\nlog_level: warning\n"
                % (org, role, PORT, self.k[a + ".curve"], self.p(agent + ".curve"),
                   self.p(agent + ".store"), self.p(agent + ".master"),
                   self.p(agent + ".sign.pem"), self.p("senders"), self.p(agent + ".sock"))))
            self.spawn(agent, self.net.ns[a], [os.path.join(self.b, "agents", "sharehub-agent"),
                                               "--config", self.p(agent + ".yaml")])
        deadline = time.time() + 20
        for agent in ("raj", "hub883", "hub882"):
            while '"connected":true' not in self.agent(agent, "status", check=False):
                if time.time() > deadline:
                    raise RuntimeError("the %s agent did not connect" % agent)
                time.sleep(0.1)

    def agent(self, agent, *args, check=True, stdin=None):
        r = subprocess.run([self.cli] + list(args) + ["--socket", self.p(agent + ".sock"),
                                                      "--json"],
                           capture_output=True, text=True, input=stdin)
        if check and r.returncode != 0:
            raise RuntimeError("sharehub %s at %s: %s" % (args[0], agent, r.stdout + r.stderr))
        return r.stdout

    def kill(self, name):
        p = self.procs[name]
        p.send_signal(signal.SIGKILL)
        p.wait()

    def stop(self):
        for name in list(self.procs):
            if self.procs[name].poll() is None:
                self.procs[name].send_signal(signal.SIGTERM)
        ok = True
        for name, p in self.procs.items():
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
                ok = False
        for log in self.logs:
            log.close()
        return ok


def publisher(fed, child, stop, sent, errors, rate):
    n = 0
    while not stop.is_set():
        event = {
            "event_type": "safeguarding_concern", "purpose": "safeguarding",
            "consent": "not_required", "level_of_need": 3,
            "lawful_basis": {"article6": "e_public_task",
                             "article9": "2g_substantial_public_interest",
                             "dpa_schedule1_paragraph": 18},
            "child": child,
            "safeguarding_concern": {"category": "neglect", "immediate_risk": False,
                                     "narrative": "Synthetic test narrative %d." % n,
                                     "reported_by": {"org_code": "RAJ", "role": "ED nurse"}}}
        out = fed.agent("raj", "publish", "-", "--user", "ed", "--purpose", "safeguarding",
                        check=False, stdin=json.dumps(event))
        try:
            r = json.loads(out)
            sent.append(r["event_id"])
        except (ValueError, KeyError):
            errors.append(out.strip()[:200])
        n += 1
        time.sleep(1.0 / rate)


def inbox(fed, agent):
    ids, since = [], 0
    while True:
        r = json.loads(fed.agent(agent, "inbox", "--user", "auditor", "--purpose", "count",
                                 "--summary", "--since", str(since)))
        for it in r["items"]:
            if it.get("type") == "safeguarding_concern" and it.get("peer") == "RAJ":
                ids.append(it["event_id"])
        if not r.get("more"):
            return ids
        since = r["next"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build")
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--rate", type=float, default=10.0)
    ap.add_argument("--keep", action="store_true")
    o = ap.parse_args()
    build = os.path.abspath(o.build)
    if os.geteuid() != 0:
        print("federation_faults: skipped: network namespaces need root (CI runs as root)")
        return 0
    if not shutil.which("nft"):
        print("federation_faults: FAILED: nft (nftables) is missing: tools/deps installs it")
        return 1
    netem = sh("tc", "qdisc", "add", "dev", "lo", "root", "netem", "delay", "1ms",
               check=False, ns=None)
    if netem.returncode == 0:
        sh("tc", "qdisc", "del", "dev", "lo", "root", check=False)
    work = tempfile.mkdtemp(prefix="sharehub-fedfaults-")
    os.chmod(work, 0o700)
    net = fed = None
    rc = 1
    try:
        net = Net()
        fed = Federation(build, net, work)
        fed.start()
        child = json.loads(sh(fed.cli, "ident", "synthetic", "7", "883").stdout)
        stop, sent, errors = threading.Event(), [], []
        th = threading.Thread(target=publisher, args=(fed, child, stop, sent, errors, o.rate))
        th.start()
        counts = {}
        rnd = random.Random(int(TAG))
        t0 = time.time()
        for r in range(o.rounds):
            for kind in ("loss", "partition", "linkdown", "throttle", "kill-essex",
                         "kill-thurrock"):
                far = rnd.choice(("thurrock", "southend"))
                if kind == "loss":
                    net.drop("essex", "numgen random mod 100 < 30 drop")
                    time.sleep(1.0)
                    net.heal("essex")
                elif kind == "partition":
                    net.drop(far, "ip DIR %s drop" % net.addr("essex"))
                    time.sleep(1.5)
                    net.heal(far)
                elif kind == "throttle":
                    sh("tc", "qdisc", "add", "dev", "eth0", "root", "tbf", "rate", "256kbit",
                       "burst", "16kbit", "latency", "500ms", ns=net.ns[far])
                    time.sleep(1.5)
                    sh("tc", "qdisc", "del", "dev", "eth0", "root", ns=net.ns[far])
                elif kind == "linkdown":
                    sh("ip", "link", "set", "eth0", "down", ns=net.ns[far])
                    time.sleep(1.5)
                    sh("ip", "link", "set", "eth0", "up", ns=net.ns[far])
                else:
                    who = kind.split("-")[1]
                    fed.kill(who)
                    time.sleep(0.3)
                    fed.restart(who)
                counts[kind] = counts.get(kind, 0) + 1
                time.sleep(0.3)
        stop.set()
        th.join()
        faulted = time.time() - t0
        if errors:
            print("federation_faults: %d publishes refused by the agent, e.g. %s"
                  % (len(errors), errors[0]))
        # drain: every sent event answered by the Essex broker, then held by both front doors
        deadline = time.time() + 180
        confirmed, refused, pending = [], [], list(sent)
        while pending and time.time() < deadline:
            left = []
            for eid in pending:
                r = json.loads(fed.agent("raj", "show", eid, "--user", "auditor", "--purpose",
                                         "count", check=False) or "{}")
                said = r.get("item", {}).get("broker", "")
                if said.startswith("accepted") or said.startswith("duplicate"):
                    confirmed.append(eid)
                elif said and said != "waiting in the outbox":
                    refused.append((eid, said.split("\n")[0]))
                else:
                    left.append(eid)
            pending = left
            if pending:
                time.sleep(1)
        want = set(confirmed)
        got = {}
        while time.time() < deadline:
            got = {a: inbox(fed, a) for a in ("hub883", "hub882")}
            if all(want <= set(v) for v in got.values()):
                break
            time.sleep(1)
        order = {eid: i for i, eid in enumerate(sent)}
        problems = []
        lost = dup = 0
        for a, ids in got.items():
            missing = want - set(ids)
            lost += len(missing)
            dup += len(ids) - len(set(ids))
            extra = set(ids) - want
            if missing:
                problems.append("%s lacks %d confirmed events" % (a, len(missing)))
            if len(ids) != len(set(ids)):
                problems.append("%s holds %d events twice" % (a, len(ids) - len(set(ids))))
            if extra:
                problems.append("%s holds %d events never confirmed" % (a, len(extra)))
            pos = [order[i] for i in ids if i in order]
            if pos != sorted(pos):
                problems.append("%s holds RAJ's events out of order" % a)
        if pending:
            problems.append("%d events never answered by the Essex broker" % len(pending))
        if refused:
            problems.append("%d refused, e.g. %s" % (len(refused), refused[0]))
        clean = fed.stop()
        fed = None if clean else fed
        cli = os.path.join(build, "tools", "sharehub")
        keys = os.path.join(work, "auditor.keys")
        for a in AUTH:
            sh(cli, "audit", "grant", os.path.join(work, a + ".store"), "--master",
               os.path.join(work, a + ".master"), "--sign-key", os.path.join(work, a + ".sign.pem"),
               "--keyring", keys, "--name", a)
        v = sh(cli, "audit", "verify", *["%s=%s" % (a, os.path.join(work, a + ".store"))
                                         for a in AUTH], "--keyring", keys, check=False)
        lines = (v.stdout + v.stderr).strip().splitlines()
        if v.returncode != 0:
            problems.append("audit verify: " + " | ".join(lines)[-400:])
        for a in AUTH:  # each broker's chain checked against the heads of it its peers hold
            mine = [ln for ln in lines if "/%s.store: OK" % a in ln]
            if not mine or "witnessed heads match" not in mine[0]:
                problems.append("%s's chain is not cross-witnessed: %s" % (a, mine))
        if not clean:
            problems.append("a process did not stop cleanly on SIGTERM")
        print("federation_faults: %d published, %d confirmed, %d delivered to 883, %d to 882,"
              " %d lost, %d duplicated; faults in %.0f s: %s; netem %s"
              % (len(sent), len(confirmed), len(got.get("hub883", [])),
                 len(got.get("hub882", [])), lost, dup, faulted,
                 ", ".join("%s %d" % kv for kv in counts.items()),
                 "available (unused)" if netem.returncode == 0 else "not in this kernel"))
        if problems or not confirmed:
            print("federation_faults: FAILED: " + "; ".join(problems or ["nothing confirmed"]))
        else:
            rc = 0
    finally:
        if fed:
            fed.stop()
        if net:
            net.close()
        if rc == 0 and not o.keep:
            shutil.rmtree(work, ignore_errors=True)
        else:
            print("federation_faults: kept %s" % work)
    return rc


if __name__ == "__main__":
    sys.exit(main())

"""api_rig.py — a broker, agents and their sharehub-api processes on loopback, for the API
tests (tests/api_test.py) and the API benchmark (bench/api_bench.py).

Everything is made for the run in a fresh directory: storage keys, CURVE keys, a private CA
with server and client certificates (tools/api-certs), the sample Essex policy and registry
(deploy/policy) with this run's keys. Synthetic children only (sharehub ident synthetic).
"""
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

AGENCIES = {  # name: (org, role)
    "hub": ("881", "social_care"),
    "school": ("8819990", "education"),
    "health": ("RAJ", "health"),
}


_TAKEN = set()


FAKETIME_LIB = "/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1"


def faketime_env(spec):
    """The environment that runs a process on a clock the tests control: libfaketime preloaded
    into the program itself (not the faketime wrapper, which would stand between the rig and
    the daemon it stops), FAKETIME=spec ("@2026-12-01 12:00:00" from that moment on, "+2d" two
    days ahead). Monotonic time stays real; under AddressSanitizer, whose runtime would insist
    on coming first, its link-order check is off."""
    asan = os.environ.get("ASAN_OPTIONS", "")
    pre = os.environ.get("LD_PRELOAD", "")
    return dict(os.environ, FAKETIME=spec, FAKETIME_DONT_FAKE_MONOTONIC="1",
                LD_PRELOAD=FAKETIME_LIB + (" " + pre if pre else ""),
                ASAN_OPTIONS=(asan + ":" if asan else "") + "verify_asan_link_order=0")


def free_port():
    """A loopback port below the ephemeral range (tests bind below 32768), not given before."""
    rnd = random.Random(os.getpid() ^ int(time.time() * 1000))
    for _ in range(200):
        port = rnd.randrange(20000, 32000)
        if port in _TAKEN:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
                _TAKEN.add(port)
                return port
            except OSError:
                time.sleep(0.01)
    raise RuntimeError("no free port")


class Rig:
    """Starts the processes; stop() ends them and removes the directory unless keep."""

    def __init__(self, build, clients, expiry=None, policy_edit=None, agencies=None,
                 apis=None, log_level="warning", agent_extra=None, workspace=False,
                 broker_env=None, broker_args=None):
        self.build = os.path.abspath(build)
        self.sh = os.path.join(self.build, "tools", "sharehub")
        self.work = tempfile.mkdtemp(prefix="sharehub-api-")
        os.chmod(self.work, 0o700)
        self.procs = []  # (name, Popen)
        self.agencies = agencies or list(AGENCIES)
        self.apis = apis if apis is not None else self.agencies
        self.ports = {}
        self.clients = clients  # agency -> [(name, scopes)]
        self.agent_extra = agent_extra or {}  # agency -> YAML appended to its configuration
        self.workspace = workspace  # each API also serves the workspace (docs/workspace.md)
        self.broker_env = broker_env  # the broker's environment, when not ours (faketime_env)
        self.broker_args = broker_args or []  # more options for the broker
        try:
            self._keys()
            self._policy(policy_edit)
            self._certs()
            self._start(expiry, log_level)
        except BaseException:
            self.stop(keep=True)
            raise

    def path(self, *p):
        return os.path.join(self.work, *p)

    def run(self, *args, check=True):
        r = subprocess.run(args, cwd=self.work, capture_output=True, text=True)
        if check and r.returncode != 0:
            raise RuntimeError("%s: %s%s" % (" ".join(args), r.stdout, r.stderr))
        return r

    def _keys(self):
        self.pub = {}
        for who in ["broker"] + self.agencies:
            self.run(self.sh, "keygen", "master", who + ".master")
            self.run(self.sh, "keygen", "sign", who + ".sign.pem")
            out = self.run(self.sh, "keygen", "curve", who + ".curve").stdout
            self.pub[who] = out.strip().split("public key: ")[-1]

    def _policy(self, edit):
        pol = self.path("policy")
        shutil.copytree(os.path.join(ROOT, "deploy", "policy"), pol)
        if edit:
            edit(pol)
        lines = []
        codes = {AGENCIES[a][0]: a for a in self.agencies}
        with open(os.path.join(pol, "enrolment.yaml")) as f:
            for line in f:
                lines.append(line)
                for code, who in codes.items():
                    if line.rstrip() == '  - code: "%s"' % code:
                        lines.append("    keys: ['%s']\n" % self.pub[who])
        with open(self.path("enrolment.yaml"), "w") as f:
            f.writelines(lines)

    def _certs(self):
        tool = os.path.join(ROOT, "tools", "api-certs")
        pki = self.path("pki")
        subprocess.run([tool, "ca", pki], check=True, capture_output=True)
        subprocess.run([tool, "ca", self.path("other-pki")], check=True, capture_output=True)
        self.fingerprints = {}
        for a in self.apis:
            subprocess.run([tool, "server", pki, "api-" + a, "127.0.0.1", "localhost"],
                           check=True, capture_output=True)
            for c in self.clients.get(a, []):
                self.client_cert(c[0])
        # a registered nowhere, and one from another CA
        self.client_cert("stranger")
        subprocess.run([tool, "client", self.path("other-pki"), "impostor"], check=True,
                       capture_output=True)

    def client_cert(self, name):
        if name in self.fingerprints:
            return
        tool = os.path.join(ROOT, "tools", "api-certs")
        out = subprocess.run([tool, "client", self.path("pki"), name], check=True,
                             capture_output=True, text=True).stdout
        self.fingerprints[name] = out.split("fingerprint: ")[1].strip()

    def cert(self, name, other=False):
        d = self.path("other-pki" if other else "pki")
        return (os.path.join(d, name + ".crt"), os.path.join(d, name + ".key"))

    @property
    def ca(self):
        return self.path("pki", "ca.crt")

    def ws_url(self, agency):
        return "https://127.0.0.1:%d" % self.ports["ws-" + agency]

    def account(self, agency, name, role, password, display=None):
        args = [self.sh, "account", "set", name, "--role", role, "--user", "admin",
                "--socket", self.socket(agency), "--password-stdin"]
        if display:
            args += ["--display", display]
        r = subprocess.run(args, input=password + "\n", capture_output=True, text=True)
        if r.returncode != 0:
            raise RuntimeError("account set %s: %s%s" % (name, r.stdout, r.stderr))

    def url(self, agency):
        return "https://127.0.0.1:%d" % self.ports["api-" + agency]

    def socket(self, agency):
        return self.path(agency + ".sock")

    def _spawn(self, name, args, env=None):
        log = open(self.path(name + ".log"), "w")
        p = subprocess.Popen(args, cwd=self.work, stdout=log, stderr=log, env=env)
        self.procs.append((name, p))
        return p

    def _start(self, expiry, log_level):
        self.ports["broker"] = free_port()
        self.ports["broker-http"] = free_port()
        endpoint = "tcp://127.0.0.1:%d" % self.ports["broker"]
        args = [os.path.join(self.build, "broker", "sharehub-broker"), "--endpoint", endpoint,
                "--store", "broker.store", "--master", "broker.master", "--sign-key",
                "broker.sign.pem", "--curve-key", "broker.curve", "--registry",
                "enrolment.yaml", "--policy", "policy", "--log-level", log_level, "--http",
                "127.0.0.1:%d" % self.ports["broker-http"]]
        if expiry:
            args += ["--delivery-expiry", expiry]
        self.broker_cmd = args + self.broker_args
        self._spawn("broker", self.broker_cmd, env=self.broker_env)
        for a in self.agencies:
            org, role = AGENCIES[a]
            with open(self.path(a + ".yaml"), "w") as f:
                f.write('org: "%s"\nrole: %s\nbroker: {endpoint: "%s", public_key: \'%s\'}\n'
                        'curve_key: %s\nstore: %s\nmaster_key: %s\nsign_key: %s\nsocket: %s\n'
                        'heartbeat_ms: 1000\nlog_level: %s\n'
                        % (org, role, endpoint, self.pub["broker"], self.path(a + ".curve"),
                           self.path(a + ".store"), self.path(a + ".master"),
                           self.path(a + ".sign.pem"), self.socket(a), log_level))
                f.write(self.agent_extra.get(a, ""))
            self._spawn(a, [os.path.join(self.build, "agents", "sharehub-agent"), "--config",
                            a + ".yaml"])
        for a in self.agencies:
            self.wait(lambda: '"connected":true' in self.run(
                self.sh, "status", "--socket", self.socket(a), "--json", check=False).stdout,
                "the %s agent to connect" % a)
        for a in self.apis:
            self.start_api(a, log_level)

    def api_config(self, a, clients=None):
        clients = self.clients.get(a, []) if clients is None else clients
        port = self.ports.setdefault("api-" + a, free_port())
        lines = ['listen: "127.0.0.1:%d"' % port, "agent_socket: %s" % self.socket(a),
                 "tls:", "  certificate: %s" % self.path("pki", "api-%s.crt" % a),
                 "  key: %s" % self.path("pki", "api-%s.key" % a),
                 "  client_ca: %s" % self.ca, "stream_poll_ms: 50", "clients:"]
        if not clients:
            lines[-1] = "clients: []"
        for c in clients:  # (name, scopes) or (name, scopes, {"site": ..., "setting": ...})
            name, scopes = c[0], c[1]
            lines += ["  - name: %s" % name, '    fingerprint: "%s"' % self.fingerprints[name],
                      "    scopes: [%s]" % ", ".join(scopes)]
            for k, v in (c[2] if len(c) > 2 else {}).items():
                lines.append("    %s: %s" % (k, v))
        if self.workspace:
            wport = self.ports.setdefault("ws-" + a, free_port())
            lines += ["workspace:", '  listen: "127.0.0.1:%d"' % wport,
                      "  root: %s" % os.path.join(ROOT, "api", "workspace"),
                      "  site: RAJ01", "  setting: emergency_department"]
        with open(self.path("api-%s.yaml" % a), "w") as f:
            f.write("\n".join(lines) + "\n")

    def start_api(self, a, log_level="warning"):
        self.api_config(a)
        with open(self.path("api-%s.yaml" % a), "a") as f:
            f.write("log_level: %s\n" % log_level)
        self._spawn("api-" + a, [os.path.join(self.build, "api", "sharehub-api"), "--config",
                                 "api-%s.yaml" % a])
        port = self.ports["api-" + a]

        def up():
            with socket.socket() as s:
                return s.connect_ex(("127.0.0.1", port)) == 0
        self.wait(up, "sharehub-api for %s to listen" % a)

    def proc(self, name):
        for n, p in self.procs:
            if n == name:
                return p
        return None

    def wait(self, cond, what, timeout=15.0):
        end = time.time() + timeout
        while time.time() < end:
            if cond():
                return
            for n, p in self.procs:
                if p.poll() is not None:
                    raise RuntimeError("%s exited (%s) while waiting for %s; see %s" %
                                       (n, p.returncode, what, self.path(n + ".log")))
            time.sleep(0.05)
        raise RuntimeError("timed out waiting for " + what)

    def synthetic_child(self, seed):
        out = self.run(self.sh, "ident", "synthetic", str(seed), "881").stdout
        return json.loads(out)

    def audit(self, agency, *filters):
        out = self.run(self.sh, "audit", "replay", self.path(agency + ".store"), "--master",
                       self.path(agency + ".master"), "--sign-key",
                       self.path(agency + ".sign.pem"), "--json", "--no-progress",
                       *filters).stdout
        return [json.loads(line) for line in out.splitlines() if line.strip().startswith("{")]

    def stop(self, keep=False):
        for _, p in self.procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        bad = []
        for n, p in self.procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
                bad.append("%s did not stop on SIGTERM" % n)
            if p.returncode not in (0, -signal.SIGTERM):
                bad.append("%s exited %s" % (n, p.returncode))
        if keep or bad:
            print("api rig: the work directory is kept: " + self.work)
        else:
            shutil.rmtree(self.work, ignore_errors=True)
        return bad

#!/bin/sh
# deploy_test.sh SOURCE-DIR BUILD-DIR — checks deploy/container and deploy/kubernetes with what
# runs on a machine without a container engine or a cluster:
#   - the Kubernetes manifests against the API schema, offline (tools/k8s-check), and a
#     broken copy must be refused (the check can fail);
#   - the compose file with docker-compose's own validation (`config`), likewise;
#   - the Dockerfile: two Debian 12 slim stages, a non-root user in the final one, every
#     library the programs link installed there, everything it copies present;
#   - the compose deployment's own setup script and command lines, run here: setup.sh makes
#     the keys and agent configurations, the broker starts with the compose command, an agent
#     with a configuration setup.sh wrote connects to it and reports ready.
set -u
src=$(cd "$1" && pwd)
build=$(cd "$2" && pwd)
py=/usr/bin/python3
tmp=$(mktemp -d)
pids=""
cleanup() {
    for p in $pids; do kill "$p" 2>/dev/null; done
    rm -rf "$tmp"
}
trap cleanup EXIT
fail=0
ok() { echo "deploy: ok   $*"; }
bad() { echo "deploy: FAIL $*"; fail=1; }

# ---- Kubernetes ------------------------------------------------------------------------
if out=$("$py" "$src/tools/k8s-check" "$src"/deploy/kubernetes/*.yaml); then
    ok "$out"
else
    bad "k8s-check:"; echo "$out"
fi
# three authorities' brokers (docs/federation.md): valid objects, and joined the right way round
if out=$("$py" "$src/tools/k8s-check" "$src"/deploy/kubernetes/federation/*.yaml); then
    ok "federation: $out"
else
    bad "k8s-check federation:"; echo "$out"
fi
if out=$("$py" - "$src"/deploy/kubernetes/federation/*.yaml <<'EOF'
import sys, yaml
docs = [d for f in sys.argv[1:] for d in yaml.safe_load_all(open(f)) if d]
ns = {d["metadata"]["name"] for d in docs if d["kind"] == "Namespace"}
problems, links = [], 0
for d in docs:
    m, kind = d["metadata"], d["kind"]
    if kind == "StatefulSet":
        a = d["spec"]["template"]["spec"]["containers"][0]["args"]
        la = a[a.index("--authority") + 1]
        if m["namespace"] != "sharehub-" + la:
            problems.append("%s's broker serves %s" % (m["namespace"], la))
    if kind == "Deployment" and m["name"].startswith("sharehub-link-"):
        links += 1
        a = d["spec"]["template"]["spec"]["containers"][0]["args"]
        peer, own = a[a.index("--peer") + 1], a[a.index("--authority") + 1]
        if "sharehub-" + peer not in ns:
            problems.append("%s links to %s, which has no namespace" % (m["namespace"], peer))
        # the peer's broker must let this namespace's links in
        allowed = any(
            p["kind"] == "NetworkPolicy" and p["metadata"]["namespace"] == "sharehub-" + peer and
            any(f.get("namespaceSelector", {}).get("matchLabels", {}).get(
                "kubernetes.io/metadata.name") == "sharehub-" + own
                for r in p["spec"].get("ingress", []) for f in r.get("from", []))
            for p in docs)
        if not allowed:
            problems.append("%s's broker does not let %s's link in" % (peer, own))
print("; ".join(problems) or "%d namespaces, %d links, each let in by its peer's policy"
      % (len(ns), links))
sys.exit(1 if problems else 0)
EOF
); then
    ok "federation: $out"
else
    bad "federation manifests: $out"
fi
sed 's/containerPort: 7750/containerPort: "7750"/; s/readOnlyRootFilesystem/readOnlyRootFS/' \
    "$src/deploy/kubernetes/broker.yaml" >"$tmp/broken.yaml"
if "$py" "$src/tools/k8s-check" "$tmp/broken.yaml" >"$tmp/k8s.out"; then
    bad "k8s-check accepted a manifest with a string port and an unknown field"
else
    ok "k8s-check refuses a broken copy: $(wc -l <"$tmp/k8s.out") problems"
fi

# ---- compose ---------------------------------------------------------------------------
compose="$src/deploy/container/compose.yaml"
if docker-compose -f "$compose" config -q 2>"$tmp/compose.err"; then
    ok "docker-compose config: $compose is valid"
else
    bad "docker-compose config:"; cat "$tmp/compose.err"
fi
sed 's/read_only: true/read_onlyy: true/' "$compose" >"$tmp/compose.yaml"
if docker-compose -f "$tmp/compose.yaml" config -q 2>/dev/null; then
    bad "docker-compose accepted an unknown option"
else
    ok "docker-compose config refuses a broken copy"
fi

# ---- Dockerfile ------------------------------------------------------------------------
df="$src/deploy/container/Dockerfile"
[ "$(grep -c '^FROM debian:12-slim' "$df")" -eq 2 ] && ok "Dockerfile: two stages, both debian:12-slim" ||
    bad "Dockerfile: want two FROM debian:12-slim stages"
user=$(awk '/^FROM/{u=""} /^USER/{u=$2} END{print u}' "$df")
case "$user" in
    "" | 0 | 0:* | root | root:*) bad "Dockerfile: the final stage runs as root" ;;
    *) ok "Dockerfile: the final stage runs as $user" ;;
esac
libs_ok=1
runtime=$(awk '/^FROM/{n++} n==2' "$df" | tr ' \\' '\n\n' | grep -E '^lib[a-z0-9.+-]+$' | sort -u)
# what apt installs with them (their dependencies, as this machine's copies declare them)
pulled=$(for p in $runtime; do dpkg-query -W -f='${Depends}\n' "$p" 2>/dev/null; done |
    tr ',|' '\n\n' | sed 's/(.*//; s/:any//; s/ //g' | sort -u)
for b in broker/sharehub-broker agents/sharehub-agent api/sharehub-api tools/sharehub; do
    for lib in $(readelf -d "$build/$b" | sed -n 's/.*Shared library: \[\(.*\)\]/\1/p'); do
        path=$(ldd "$build/$b" | awk -v l="$lib" '$1 == l {print $3}')
        pkg=$(dpkg -S "$(readlink -f "$path")" 2>/dev/null | head -1 | cut -d: -f1)
        [ -z "$pkg" ] && pkg=$(dpkg -S "$path" 2>/dev/null | head -1 | cut -d: -f1)
        case "$pkg" in
            libc6 | libgcc-s1 | libstdc++6) ;; # in debian:12-slim
            libasan* | libubsan*) ;;           # a sanitizer build's runtime: not in a release
            *) printf '%s\n%s\n' "$runtime" "$pulled" | grep -qx "$pkg" || {
                bad "Dockerfile: $b needs $lib ($pkg), not installed in the final stage"
                libs_ok=0
            } ;;
        esac
    done
done
[ "$libs_ok" -eq 1 ] &&
    ok "Dockerfile: the final stage installs every library the programs link: $(echo $runtime)"
for f in $(awk '/^COPY/ && !/--from/ {for (i = 2; i < NF; i++) print $i}' "$df"); do
    [ -e "$src/$f" ] || bad "Dockerfile: COPY $f: not in the repository"
done
# every directory the build adds (but tests and bench, which the image does not build) is copied
copied=1
for d in $(sed -n 's/^add_subdirectory(\([a-z]*\))$/\1/p' "$src/CMakeLists.txt"); do
    case "$d" in tests | bench) continue ;; esac
    grep -q "^COPY $d/ $d/" "$df" || { bad "Dockerfile: the build needs $d/, not copied"; copied=0; }
done
[ "$copied" -eq 1 ] && ok "Dockerfile: the build stage copies every directory CMake adds"
grep -q 'rm -rf /var/lib/apt/lists' "$df" && ok "Dockerfile: apt lists removed in each stage" ||
    bad "Dockerfile: apt lists left in the image"

# ---- the compose deployment's setup and command lines, run here ------------------------
mkdir -p "$tmp/bin" "$tmp/keys" "$tmp/state"
ln -s "$build/tools/sharehub" "$tmp/bin/sharehub"
if PATH="$tmp/bin:$PATH" SHAREHUB_KEYS="$tmp/keys" SHAREHUB_POLICY="$src/deploy/policy" \
    SHAREHUB_API_CERTS="$src/tools/api-certs" sh "$src/deploy/container/setup.sh" >/dev/null; then
    ok "setup.sh: keys and configurations for the broker and three agents, the hub's API certificates"
else
    bad "setup.sh failed"
fi
port=$((22000 + $$ % 8000))
# the broker's command from the compose file, with this machine's paths and ports
docker-compose -f "$compose" config >"$tmp/canonical.yaml" 2>/dev/null
"$py" - "$tmp/canonical.yaml" "$tmp" "$src" "$build" "$port" >"$tmp/broker.cmd" <<'PY' || bad "reading the broker's command from compose.yaml"
import shlex, sys, yaml
doc = yaml.safe_load(open(sys.argv[1]))
tmp, src, build, port = sys.argv[2:6]
cmd = doc["services"]["broker"]["command"]
sub = {"/usr/bin/sharehub-broker": f"{build}/broker/sharehub-broker",
       "tcp://0.0.0.0:7750": f"tcp://127.0.0.1:{port}", "0.0.0.0:9750": f"127.0.0.1:{int(port) + 1}",
       "/etc/sharehub/policy": f"{src}/deploy/policy"}
out = []
for a in cmd:
    a = sub.get(a, a)
    a = a.replace("/keys/", f"{tmp}/keys/").replace("/var/lib/sharehub/", f"{tmp}/state/")
    out.append(shlex.quote(a))
print(" ".join(out))
PY
sh -c "exec $(cat "$tmp/broker.cmd")" 2>"$tmp/broker.log" &
pids="$!"
sed -e "s|tcp://broker:7750|tcp://127.0.0.1:$port|" -e "s|0.0.0.0:9751|127.0.0.1:$((port + 2))|" \
    -e "s|/var/lib/sharehub/|$tmp/state/|" -e "s|/run/sharehub/agent.sock|$tmp/agent.sock|" \
    "$tmp/keys/agent-881.yaml" >"$tmp/agent-881.yaml"
"$build/agents/sharehub-agent" --config "$tmp/agent-881.yaml" 2>"$tmp/agent.log" &
pids="$pids $!"
ready=0
for _ in $(seq 1 50); do
    [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$((port + 2))/readyz")" = 200 ] && { ready=1; break; }
    sleep 0.2
done
if [ "$ready" -eq 1 ]; then
    ok "the broker started with compose.yaml's command and the hub agent with setup.sh's configuration: connected, /readyz 200"
else
    bad "the compose broker and agent did not connect:"; cat "$tmp/broker.log" "$tmp/agent.log"
fi
# the hub's API with setup.sh's configuration and certificates, and its client system's
# (its key paths are already this run's: setup.sh wrote them under SHAREHUB_KEYS)
sed -e "s|0.0.0.0:8443|127.0.0.1:$((port + 3))|" -e "s|/run/sharehub/agent.sock|$tmp/agent.sock|" \
    -e "s|0.0.0.0:8444|127.0.0.1:$((port + 4))|" -e "s|/usr/share/sharehub/workspace|$src/api/workspace|" \
    "$tmp/keys/api-881.yaml" >"$tmp/api-881.yaml"
"$build/api/sharehub-api" --config "$tmp/api-881.yaml" 2>"$tmp/api.log" &
pids="$pids $!"
code=000
for _ in $(seq 1 50); do
    code=$(curl -s -o /dev/null -w '%{http_code}' --cacert "$tmp/keys/pki/ca.crt" \
        --cert "$tmp/keys/pki/cms-881.crt" --key "$tmp/keys/pki/cms-881.key" \
        -H 'X-Sharehub-User: deploy-test' -H 'X-Sharehub-Purpose: deploy test' \
        "https://127.0.0.1:$((port + 3))/v1/inbox")
    [ "$code" = 200 ] && break
    sleep 0.2
done
wcode=$(curl -s -o /dev/null -w '%{http_code}' --cacert "$tmp/keys/pki/ca.crt" \
    "https://localhost:$((port + 4))/sign-in")
if [ "$wcode" = 200 ]; then
    ok "the hub's workspace started with setup.sh's configuration: its sign-in page answers over HTTPS (200)"
else
    bad "the compose workspace did not answer (HTTP $wcode):"; cat "$tmp/api.log"
fi
if [ "$code" = 200 ]; then
    ok "the hub's API started with setup.sh's configuration: its registered client system reads the inbox over mutual TLS (200)"
else
    bad "the compose API did not answer its client (HTTP $code):"; cat "$tmp/api.log"
fi
for p in $pids; do kill -TERM "$p" 2>/dev/null; done
for p in $pids; do wait "$p" || bad "a daemon did not stop cleanly (status $?)"; done
pids=""
exit "$fail"

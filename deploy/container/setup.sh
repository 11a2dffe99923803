#!/bin/sh
# setup.sh — first start of the compose deployment (compose.yaml): keys for the broker and the
# three agents, the agents' enrolment in a copy of the registry, the agents' configurations,
# and the hub's agency API (a private CA, its certificates, its configuration), all in /keys (a volume only the sharehub user can read; SHAREHUB_KEYS names
# another directory, SHAREHUB_POLICY another policy than /etc/sharehub/policy). Does nothing
# once it has run. In a real deployment each agency makes its own keys on its own host and sends
# the broker only its public key (docs/operations.md#keys).
set -eu
umask 077
k=${SHAREHUB_KEYS:-/keys}
policy=${SHAREHUB_POLICY:-/etc/sharehub/policy}
[ -e "$k/.done" ] && exit 0
# keys NAME [ORG]: a directory of the three keys; prints the CURVE public key; an agency's
# signing key goes into the senders list every agent trusts (docs/evidence.md)
keys() {
    mkdir -p "$k/$1"
    sharehub keygen master "$k/$1/master.key" >/dev/null
    sign=$(sharehub keygen sign "$k/$1/audit-sign.pem" | sed 's/.*public key: //')
    [ -z "${2:-}" ] || echo "org=$2 key=$sign" >>"$k/senders"
    sharehub keygen curve "$k/$1/curve.key" | sed 's/.*public key: //'
}
: >"$k/senders"
broker_public=$(keys broker)
cp "$policy/enrolment.yaml" "$k/enrolment.yaml"
for agency in "881 social_care" "RAJ health" "8819990 education"; do
    # shellcheck disable=SC2086
    set -- $agency
    public=$(keys "agent-$1" "$1")
    sharehub enrol --registry "$k/enrolment.yaml" --code "$1" --key "$public" >/dev/null
    cat >"$k/agent-$1.yaml" <<CONFIG
org: '$1'
role: $2
broker: {endpoint: 'tcp://broker:7750', public_key: '$broker_public'}
curve_key: $k/agent-$1/curve.key
master_key: $k/agent-$1/master.key
sign_key: $k/agent-$1/audit-sign.pem
senders: $k/senders
store: /var/lib/sharehub/agent-$1
socket: /run/sharehub/agent.sock
http: '0.0.0.0:9751'
CONFIG
done
# the hub's agency API (docs/api.md): a CA for this deployment, the server's certificate, and
# one client system (a case-management system) registered with its fingerprint; the client's
# certificate and key are for that system: copy them out of the volume to it
certs=${SHAREHUB_API_CERTS:-/usr/share/sharehub/api-certs}
"$certs" ca "$k/pki" >/dev/null
"$certs" server "$k/pki" api-881 api-881 localhost 127.0.0.1 >/dev/null
fingerprint=$("$certs" client "$k/pki" cms-881 | sed -n 's/^fingerprint: //p')
cat >"$k/api-881.yaml" <<CONFIG
listen: '0.0.0.0:8443'
agent_socket: /run/sharehub/agent.sock
tls: {certificate: $k/pki/api-881.crt, key: $k/pki/api-881.key, client_ca: $k/pki/ca.crt}
clients:
  - {name: cms-881, fingerprint: '$fingerprint', scopes: [publish, inbox, track]}
workspace: {listen: '0.0.0.0:8444', root: /usr/share/sharehub/workspace}
CONFIG
touch "$k/.done"
echo "setup: keys and configurations for the broker and agents 881, RAJ and 8819990, and the hub's API certificates, in $k"
echo "setup: the hub's workspace will be on https://localhost:8444: make its accounts with"
echo "  docker compose exec agent-881 sharehub account set NAME --role ROLE --user ADMIN --password-stdin --socket /run/sharehub/agent.sock"

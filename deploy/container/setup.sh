#!/bin/sh
# setup.sh — first start of the compose deployment (compose.yaml): keys for the broker and the
# three agents, the agents' enrolment in a copy of the registry, and the agents'
# configurations, all in /keys (a volume only the sharehub user can read; SHAREHUB_KEYS names
# another directory, SHAREHUB_POLICY another policy than /etc/sharehub/policy). Does nothing
# once it has run. In a real deployment each agency makes its own keys on its own host and sends
# the broker only its public key (docs/operations.md#keys).
set -eu
umask 077
k=${SHAREHUB_KEYS:-/keys}
policy=${SHAREHUB_POLICY:-/etc/sharehub/policy}
[ -e "$k/.done" ] && exit 0
# keys NAME: a directory of the three keys; prints the CURVE public key
keys() {
    mkdir -p "$k/$1"
    sharehub keygen master "$k/$1/master.key" >/dev/null
    sharehub keygen sign "$k/$1/audit-sign.pem" >/dev/null
    sharehub keygen curve "$k/$1/curve.key" | sed 's/.*public key: //'
}
broker_public=$(keys broker)
cp "$policy/enrolment.yaml" "$k/enrolment.yaml"
for agency in "881 social_care" "RAJ health" "8819990 education"; do
    # shellcheck disable=SC2086
    set -- $agency
    public=$(keys "agent-$1")
    sharehub enrol --registry "$k/enrolment.yaml" --code "$1" --key "$public" >/dev/null
    cat >"$k/agent-$1.yaml" <<CONFIG
org: '$1'
role: $2
broker: {endpoint: 'tcp://broker:7750', public_key: '$broker_public'}
curve_key: $k/agent-$1/curve.key
master_key: $k/agent-$1/master.key
sign_key: $k/agent-$1/audit-sign.pem
store: /var/lib/sharehub/agent-$1
socket: /run/sharehub/agent.sock
http: '0.0.0.0:9751'
CONFIG
done
touch "$k/.done"
echo "setup: keys and configurations for the broker and agents 881, RAJ and 8819990 in $k"

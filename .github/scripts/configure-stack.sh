#!/usr/bin/env bash
# Sets a stack's VPS connection config from the environment, before preview/up in CI:
#   bash .github/scripts/configure-stack.sh STACK [PREFIX]
# reads ${PREFIX}VPS_HOST, VPS_PORT, VPS_USER, VPS_HOST_KEY (or VPS_HOSTS, a fleet) and VPS_SSH_KEY (the workflow maps them
# from the GitHub environment's secrets into `env:`). An unset or empty variable leaves the key as
# Pulumi.STACK.yaml has it. The private key goes on stdin as a secret: never in argv, never echoed.
set -euo pipefail

stack="${1:?usage: configure-stack.sh STACK [PREFIX]}"
prefix="${2:-}"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
pulumi_() { bash "$root/scripts/pulumi.sh" "$@"; }

set_plain() {
	local key="$1" var="$prefix$2"
	if [ -n "${!var:-}" ]; then
		pulumi_ config set -s "$stack" "$key" -- "${!var}" >/dev/null
		echo "$key set from $var"
	else
		echo "$key: $var is empty; kept from Pulumi.$stack.yaml"
	fi
}

set_plain vps:host VPS_HOST
set_plain vps:port VPS_PORT
set_plain vps:user VPS_USER
set_plain vps:hostKey VPS_HOST_KEY
# A fleet: the JSON list of {host, port?, hostKey, primary?} (exclusive with the three above).
set_plain vps:hosts VPS_HOSTS

key_var="${prefix}VPS_SSH_KEY"
if [ -n "${!key_var:-}" ]; then
	printf '%s' "${!key_var}" | pulumi_ config set -s "$stack" --secret vps:privateKey >/dev/null
	echo "vps:privateKey set (secret) from $key_var"
else
	echo "vps:privateKey: $key_var is empty; kept from Pulumi.$stack.yaml"
fi

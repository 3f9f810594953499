#!/usr/bin/env bash
# npm run pulumi -- ARGS: the project's Pulumi CLI with the project's environment.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
use_project_node
use_project_pulumi
command -v pulumi >/dev/null || die "no pulumi CLI: run npm run setup"
cd "$PROJECT_ROOT"
stack="$(stack_from_args "$@")"
if [ -z "$stack" ] && [ -z "${PULUMI_CONFIG_PASSPHRASE:-}${PULUMI_CONFIG_PASSPHRASE_FILE:-}" ]; then
	stack="$(pulumi stack --show-name 2>/dev/null || true)"
fi
# The throwaway local stacks (the local VPS, the local fleet) get a fixed passphrase; no other does.
if { [ "$stack" = "local" ] || [ "$stack" = "local-fleet" ]; } && [ -z "${PULUMI_CONFIG_PASSPHRASE:-}${PULUMI_CONFIG_PASSPHRASE_FILE:-}" ]; then
	export PULUMI_CONFIG_PASSPHRASE="$LOCAL_STACK_PASSPHRASE"
fi
exec pulumi "$@"

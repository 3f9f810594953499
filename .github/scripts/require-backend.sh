#!/usr/bin/env bash
# CI: refuse to run without PULUMI_BACKEND_URL. Without it the project's scripts use the file
# backend inside the checkout (the local default), whose state a CI runner throws away.
#   bash .github/scripts/require-backend.sh STACK
set -euo pipefail
stack="${1:?usage: require-backend.sh STACK}"
if [ -z "${PULUMI_BACKEND_URL:-}" ]; then
	echo "::error::PULUMI_BACKEND_URL is empty: set it (and PULUMI_CONFIG_PASSPHRASE, or the credentials of the stack's secrets provider) as secrets of the GitHub environment '$stack'"
	exit 1
fi
case "$PULUMI_BACKEND_URL" in
file://*) echo "::warning::PULUMI_BACKEND_URL is a file backend; on a hosted runner its state is lost after the job" ;;
esac
echo "state backend: ${PULUMI_BACKEND_URL%%://*}://…"

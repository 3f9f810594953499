#!/usr/bin/env bash
# npm run demo: setup when anything is missing, start the local VPS, package examples/backend,
# `pulumi up` on the `local` stack, and show the health answer. A second run changes nothing.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$PROJECT_ROOT"

bash scripts/setup.sh
bash scripts/local-vps.sh up

log_step "packaging examples/backend"
result="$(bash scripts/node.sh scripts/package.ts examples/backend | tail -n 1)"
artifact="$(node -p 'JSON.parse(process.argv[1]).path' "$result")"
echo "artifact: $artifact"

p="$PROJECT_ROOT/scripts/pulumi.sh"
# The demo deploys the example's artifact: a release pinned by an earlier rollback gives way to it.
if "$p" config get -s local app:release >/dev/null 2>&1; then
	echo "note: removing app:release (pinned by a rollback) to deploy the artifact"
	"$p" config rm -s local app:release
fi
"$p" config set -s local app:artifact "${artifact#"$PROJECT_ROOT"/}"
log_step "pulumi up -s local"
"$p" up -s local --yes --skip-preview --non-interactive

health_url="$("$p" stack output -s local healthUrl)"
eval "$(bash scripts/local-vps.sh env)"
log_step "health, asked on the VPS: $health_url"
ssh -q -i "$VPS_KEY_FILE" -p "$VPS_PORT" -o IdentitiesOnly=yes -o BatchMode=yes -o StrictHostKeyChecking=yes \
	-o UserKnownHostsFile="$VPS_KNOWN_HOSTS" "$VPS_USER@$VPS_HOST" \
	"node -e 'fetch(process.argv[1]).then(async r => console.log(r.status, await r.text()))' $(printf '%q' "$health_url")"

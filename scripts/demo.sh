#!/usr/bin/env bash
# npm run demo: setup when anything is missing, start the local VPS, package examples/backend,
# `pulumi up` on the `local` stack, and show the health answer. A second run changes nothing.
# Each step's output goes to .tools/logs/; `pulumi up` is shown as it runs and logged too.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$PROJECT_ROOT"

bash scripts/setup.sh
bash scripts/local-vps.sh up

p="$PROJECT_ROOT/scripts/pulumi.sh"
package_example() { bash scripts/node.sh scripts/package.ts examples/backend; }
run_step "package examples/backend" package_example
result="$(tail -n 1 "$LOG_DIR/package-examples-backend.log")"
artifact="$(node -p 'JSON.parse(process.argv[1]).path' "$result")"
echo "artifact: ${artifact#"$PROJECT_ROOT"/}"

# The demo deploys the example's artifact: a release pinned by an earlier rollback gives way to it.
if "$p" config get -s local app:release >/dev/null 2>&1; then
	echo "note: removing app:release (pinned by a rollback) to deploy the artifact"
	"$p" config rm -s local app:release
fi
"$p" config set -s local app:artifact "${artifact#"$PROJECT_ROOT"/}"
log_step "pulumi up -s local (also in ${LOG_DIR#"$PROJECT_ROOT"/}/demo-up.log)"
mkdir -p "$LOG_DIR"
rc=0
"$p" up -s local --yes --skip-preview --non-interactive 2>&1 | tee "$LOG_DIR/demo-up.log" || rc=$?
[ "$rc" = 0 ] || die "pulumi up -s local failed (exit $rc); its output is above and in $LOG_DIR/demo-up.log"

# The health answer, asked on the VPS with the stack's own connection and the one health rule.
log_step "health, asked on the VPS"
bash scripts/node.sh ops/smoke.ts --stack local --timeout 10

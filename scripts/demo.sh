#!/usr/bin/env bash
# npm run demo: setup when anything is missing, start the local VPS, package examples/backend,
# `pulumi up` on the `local` stack, and show the health answer. A second run changes nothing.
# Each step's output goes to .tools/logs/; `pulumi up` is shown as it runs and logged too.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$PROJECT_ROOT"

# --hosts N: the same on the local fleet (N hosts behind a balancer, one PostgreSQL), stack local-fleet.
hosts=""
case "${1:-}" in
"") ;;
--hosts) hosts="${2:?--hosts needs a number, e.g. npm run demo -- --hosts 3}" ;;
*) die "unknown argument $1 (npm run demo, or npm run demo -- --hosts 3)" ;;
esac
stack=local
bash scripts/setup.sh
if [ -n "$hosts" ]; then
	stack=local-fleet
	bash scripts/local-vps.sh up --hosts "$hosts"
else
	bash scripts/local-vps.sh up
fi

p="$PROJECT_ROOT/scripts/pulumi.sh"
# The project's backend folder (package.json vpsRelease.backend; examples/backend here).
package_example() { bash scripts/node.sh scripts/package.ts; }
run_step "package the backend" package_example
result="$(tail -n 1 "$LOG_DIR/package-the-backend.log")"
artifact="$(node -p 'JSON.parse(process.argv[1]).path' "$result")"
echo "artifact: ${artifact#"$PROJECT_ROOT"/}"

# The demo deploys the example's artifact: a release pinned by an earlier rollback gives way to it.
if "$p" config get -s "$stack" app:release >/dev/null 2>&1; then
	echo "note: removing app:release (pinned by a rollback) to deploy the artifact"
	"$p" config rm -s "$stack" app:release
fi
"$p" config set -s "$stack" app:artifact "${artifact#"$PROJECT_ROOT"/}"
if [ "$stack" = local-fleet ]; then
	# The fleet's hosts share the local PostgreSQL; its URL (with a password) goes in as a secret, on
	# stdin. HOST: the balancer reaches each host on its own address, so the app listens on all.
	db_file="$(bash scripts/local-fleet.sh env | sed -n 's/^FLEET_STATE_DIR=//p')/database_url"
	node -e 'process.stdout.write(JSON.stringify({DATABASE_URL: require("fs").readFileSync(process.argv[1], "utf8").trim(), HOST: "0.0.0.0"}))' "$db_file" |
		"$p" config set -s "$stack" --secret app:env >/dev/null
fi
log_step "pulumi up -s $stack (also in ${LOG_DIR#"$PROJECT_ROOT"/}/demo-up.log)"
mkdir -p "$LOG_DIR"
rc=0
"$p" up -s "$stack" --yes --skip-preview --non-interactive 2>&1 | tee "$LOG_DIR/demo-up.log" || rc=$?
[ "$rc" = 0 ] || die "pulumi up -s $stack failed (exit $rc); its output is above and in $LOG_DIR/demo-up.log"

# The health answer, asked on the VPS with the stack's own connection and the one health rule.
log_step "health, asked on the VPS"
bash scripts/node.sh ops/smoke.ts --stack "$stack" --timeout 10
if [ "$stack" = local-fleet ]; then
	lb="$(bash scripts/local-fleet.sh env | sed -n 's/^FLEET_LB_URL=//p')"
	echo "through the balancer $lb/health: $(node -e 'fetch(process.argv[1]).then(async r => console.log(r.status, await r.text()))' "$lb/health")"
fi

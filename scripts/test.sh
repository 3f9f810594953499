#!/usr/bin/env bash
# npm test: setup when anything is missing, then every test: unit, then end to end on the local VPS.
# Flags: --unit (unit tests only), --example (examples/backend's own tests), --e2e (end-to-end
# only). Extra args after -- go to node --test.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$PROJECT_ROOT"
which_tests=all
while [ $# -gt 0 ]; do
	case "$1" in
	--unit) which_tests=unit ;;
	--e2e) which_tests=e2e ;;
	--example) which_tests=example ;;
	--) shift; break ;;
	*) die "unknown flag $1 (known: --unit, --example, --e2e)" ;;
	esac
	shift
done
bash scripts/setup.sh
mkdir -p "$LOG_DIR"
# phase NAME CMD...: runs CMD with its output on the terminal and in .tools/logs/test-NAME.log;
# a failure names the phase and the log, and stops the run.
phase() {
	local name="$1" log="$LOG_DIR/test-$1.log" rc=0 t0
	shift
	t0="$(now_ms)"
	log_step "$name (log: ${log#"$PROJECT_ROOT"/})"
	"$@" 2>&1 | tee "$log" || rc=$?
	if [ "$rc" != 0 ]; then
		die "$name failed (exit $rc) after $(seconds_since "$t0")s; full output: $log"
	fi
	printf '    %-28s %6ss\n' "$name" "$(seconds_since "$t0")" >&2
}
node_test() { bash scripts/node.sh --test --test-reporter=spec "$@"; }
typecheck() { bash scripts/node.sh node_modules/typescript/bin/tsc --noEmit -p .; }
# The command provider built here, against the official v1.2.1 it mirrors (each test cites its source).
provider_tests() {
	if [ -x "$TOOLS_DIR/plugins/pulumi-resource-command" ] && command -v go >/dev/null; then
		cd tools/pulumi-resource-command && GOFLAGS=-mod=readonly go test ./...
	else
		echo "the command provider was not built here (the official toolchain is in use): nothing to test"
	fi
}
example_tests() {
	use_project_node
	cd examples/backend && npm ci --no-audit --no-fund --loglevel=error && npm test
}
if [ "$which_tests" = all ] || [ "$which_tests" = unit ]; then
	phase typecheck typecheck
	phase provider provider_tests
	phase unit node_test "$@" 'infra/**/*.test.ts' 'scripts/**/*.test.ts' 'ops/**/*.test.ts' 'bench/**/*.test.ts' 'test/support/**/*.test.ts' 'test/workflows/**/*.test.ts'
fi
if [ "$which_tests" = all ] || [ "$which_tests" = example ]; then
	# examples/backend's own tests: SQLite, PostgreSQL, graceful shutdown.
	phase example example_tests
fi
if [ "$which_tests" = all ] || [ "$which_tests" = e2e ]; then
	# End to end on the local VPS, one at a time: they share it.
	phase e2e node_test --test-concurrency=1 "$@" 'test/e2e/**/*.test.ts'
fi

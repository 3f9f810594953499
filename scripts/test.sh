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
node_test() { bash scripts/node.sh --test --test-reporter=spec "$@"; }
if [ "$which_tests" = all ] || [ "$which_tests" = unit ]; then
	log_step "typecheck"
	bash scripts/node.sh node_modules/typescript/bin/tsc --noEmit -p .
	log_step "unit tests"
	node_test "$@" 'infra/**/*.test.ts' 'scripts/**/*.test.ts' 'bench/**/*.test.ts' 'test/support/**/*.test.ts' 'test/workflows/**/*.test.ts'
fi
if [ "$which_tests" = all ] || [ "$which_tests" = example ]; then
	log_step "examples/backend: its own tests (SQLite, PostgreSQL, graceful shutdown)"
	use_project_node
	(cd examples/backend && npm ci --no-audit --no-fund --loglevel=error && npm test)
fi
if [ "$which_tests" = all ] || [ "$which_tests" = e2e ]; then
	log_step "end-to-end tests (local VPS)"
	# One at a time: they share the local VPS.
	node_test --test-concurrency=1 "$@" 'test/e2e/**/*.test.ts'
fi

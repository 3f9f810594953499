#!/usr/bin/env bash
# Runs a TypeScript entry point (or node's own flags) on the project's Node >= 22, with tsx.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
use_project_node
use_project_pulumi
[ "$(node_major node)" -ge "$NODE_MIN_MAJOR" ] || die "Node $NODE_MIN_MAJOR+ is needed: run npm run setup"
[ -d "$PROJECT_ROOT/node_modules/tsx" ] || die "dependencies are missing: run npm run setup"
exec node --import tsx "$@"

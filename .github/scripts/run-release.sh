#!/usr/bin/env bash
# CI: one release action on a stack, its whole output in release.log (read by release-summary.ts).
#   bash .github/scripts/run-release.sh deploy STACK ARTIFACT     # app:artifact=ARTIFACT, pulumi up
#   bash .github/scripts/run-release.sh promote STACK ARTIFACT    # npm run promote -- --from staging --to STACK
#   bash .github/scripts/run-release.sh rollback STACK [ID]       # npm run rollback -- --stack STACK [--to ID]
set -euo pipefail

action="${1:?usage: run-release.sh deploy|promote|rollback STACK [ARTIFACT|ID]}"
stack="${2:?usage: run-release.sh deploy|promote|rollback STACK [ARTIFACT|ID]}"
arg="${3:-}"
log="${RELEASE_LOG:-release.log}"

case "$action" in
deploy)
	[ -f "$arg" ] || { echo "::error::deploy needs the artifact file, got '$arg'"; exit 2; }
	# app:artifact and app:release are exclusive; a rollback may have pinned app:release.
	npm run --silent pulumi -- config rm -s "$stack" app:release
	npm run --silent pulumi -- config set -s "$stack" app:artifact "$arg"
	npm run --silent pulumi -- up -s "$stack" --yes --skip-preview --non-interactive \
		--message "deploy $(basename "$arg") (${GITHUB_SHA:-local})" 2>&1 | tee "$log"
	;;
promote)
	[ -f "$arg" ] || { echo "::error::promote needs the artifact file staging runs, got '$arg'"; exit 2; }
	[ "$stack" != staging ] || { echo "::error::promote goes from staging to another stack"; exit 2; }
	npm run --silent promote -- --from staging --to "$stack" --artifact "$arg" 2>&1 | tee "$log"
	;;
rollback)
	if [ -n "$arg" ]; then
		npm run --silent rollback -- --stack "$stack" --to "$arg" 2>&1 | tee "$log"
	else
		npm run --silent rollback -- --stack "$stack" 2>&1 | tee "$log"
	fi
	;;
*)
	echo "::error::unknown action '$action' (deploy, promote, rollback)"
	exit 2
	;;
esac

#!/usr/bin/env bash
# CI: find the workflow run that holds the artifact `release-ID`, for a promotion that was not
# built in this run. ID defaults to the release the source stack runs now. Prints `release-id=`
# and `run-id=` lines for $GITHUB_OUTPUT. Needs GH_TOKEN with actions: read.
#   bash .github/scripts/locate-artifact.sh [ID] [SOURCE_STACK]
set -euo pipefail

id="${1:-}"
source_stack="${2:-staging}"
if [ -z "$id" ]; then
	id="$(npm run --silent pulumi -- stack output -s "$source_stack" releaseId)"
	[ -n "$id" ] || { echo "::error::stack $source_stack records no release to promote"; exit 1; }
fi
[[ "$id" =~ ^[0-9a-f]{12}$ ]] || { echo "::error::'$id' is not a release id (12 hex digits)"; exit 1; }

run_id="$(gh api "repos/$GITHUB_REPOSITORY/actions/artifacts?name=release-$id&per_page=20" \
	--jq '[.artifacts[] | select(.expired | not)][0].workflow_run.id // empty')"
if [ -z "$run_id" ]; then
	echo "::error::no kept artifact release-$id (artifacts expire): deploy that commit to $source_stack again, then promote"
	exit 1
fi
echo "release-id=$id"
echo "run-id=$run_id"

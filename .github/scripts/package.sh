#!/usr/bin/env bash
# CI: build the backend into a release artifact with `npm run package` (default OUT:
# .artifacts/<name>-<release id>.tar.gz) and hand its name, release id and sha256 to later steps.
#   bash .github/scripts/package.sh [APP_DIR]
# APP_DIR defaults to the project's backend folder, package.json's vpsRelease.backend.
set -euo pipefail

out="$(mktemp)"
npm run --silent package -- "$@" | tee "$out"
# The last line is JSON: {"path","size","sha256","releaseId"}.
json="$(tail -n 1 "$out")"
field() { node -e 'process.stdout.write(String(JSON.parse(process.argv[1])[process.argv[2]]))' "$json" "$1"; }
artifact="$(basename "$(field path)")"
release_id="$(field releaseId)"
sha256="$(field sha256)"
{
	echo "artifact=$artifact"
	echo "release-id=$release_id"
	echo "sha256=$sha256"
} >>"${GITHUB_OUTPUT:-/dev/null}"
# shellcheck disable=SC2016 # the backticks are Markdown code spans
printf '### Artifact\n\n| | |\n| --- | --- |\n| file | `%s` |\n| release | `%s` |\n| sha256 | `%s` |\n' \
	"$artifact" "$release_id" "$sha256" >>"${GITHUB_STEP_SUMMARY:-/dev/null}"

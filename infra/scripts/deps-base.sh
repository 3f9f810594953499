# shellcheck shell=bash
# A kept release that has an artifact's node_modules (infra/layers.ts): read by the release script
# (release.main.sh, when only the app layer came) and by the upload's query before the upload
# (scripts/release.ts depsBaseScript), so both pick alike.

# deps_base RELEASES DIGEST: the id of the newest kept release whose node_modules carry DIGEST (its
# .deps-digest, written once they matched), or nothing.
deps_base() {
  local releases="$1" digest="$2" mark
  [ -n "$digest" ] || return 0
  while read -r _ mark; do
    if [ "$(cat "$mark" 2>/dev/null)" = "$digest" ] && [ -d "${mark%/*}/node_modules" ]; then
      basename "${mark%/*}"
      return 0
    fi
  done < <(find "$releases" -mindepth 2 -maxdepth 2 -name .deps-digest ! -path "$releases/.*" -printf '%T@ %p\n' 2>/dev/null | sort -rn)
}

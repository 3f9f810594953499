# shellcheck shell=bash
# Body of the release script; infra/scripts/release.ts puts the quoted header (ROOT, RELEASE_ID, ...)
# in front of it. Fixed text: no value is ever interpolated here. The script reaches the VPS on the
# command's stdin as a temporary file ($0), which it removes first: bash keeps reading the open file.
# What it prints follows infra/protocol.ts (step, healthy, failed, error and RESULT lines).
rm -f -- "$0"
RELEASES="$ROOT/releases"
SHARED="$ROOT/shared"
ECOSYSTEM="$SHARED/ecosystem.config.js"
CURRENT="$ROOT/current"
NEW_DIR="$RELEASES/$RELEASE_ID"
ERR_LOG="$SHARED/logs/err.log"
PREFLIGHT_LOG="$SHARED/logs/preflight.log"
REVISIONS="$ROOT/revisions.log"

# Everything the script prints also goes to shared/logs/release.log, through tee, which keeps
# going when the SSH connection is cut (-p): the release then finishes or reverts on the VPS as if
# the client were still there, instead of dying halfway. A hangup is ignored for the same reason.
trap '' HUP
if [ -d "$SHARED/logs" ]; then
  exec > >(tee -p -a "$SHARED/logs/release.log") 2> >(tee -p -a "$SHARED/logs/release.log" >&2)
fi
echo "release $RELEASE_ID ($MODE, $SOURCE) by stack $STACK at $(date -u +%Y-%m-%dT%H:%M:%SZ)"

STEP=start
STEP_T0=$(date +%s%N)
STEPS_JSON=""
SWITCHED=0
PREV_ID=""
TMP_DIR=""
PREFLIGHT_PID=""
LOCKED=0
DAEMON_AT_START=""

elapsed() { awk -v a="$1" -v b="$(date +%s%N)" 'BEGIN { printf "%.2f", (b - a) / 1e9 }'; }
step() {
  local secs
  if [ "$STEP" != start ]; then
    secs="$(elapsed "$STEP_T0")"
    printf 'step %-10s %6ss\n' "$STEP" "$secs"
    STEPS_JSON="$STEPS_JSON${STEPS_JSON:+,}{\"name\":\"$STEP\",\"seconds\":$secs}"
  fi
  STEP="$1"
  STEP_T0=$(date +%s%N)
}
fail() {
  echo "error: $*" >&2
  exit 1
}
record() {
  printf '%s\t%s\t%s\t%s\t%s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$RELEASE_ID" "${PREV_ID:--}" "$1" "$SOURCE" >>"$REVISIONS"
}
point_current() {
  ln -sfn "releases/$1" "$ROOT/.current.tmp"
  mv -Tf "$ROOT/.current.tmp" "$CURRENT"
}
# The PM2 daemon's pid, when one runs. A daemon that died and was started again during the release
# (killed, OOM) runs only this app: the others in its dump come back with `pm2 resurrect`, and the
# dump must not be saved before that, or they would be lost.
pm2_daemon() {
  local pid
  pid="$(cat "${PM2_HOME:-$HOME/.pm2}/pm2.pid" 2>/dev/null || true)"
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then echo "$pid"; fi
}
restore_other_apps() {
  if [ "$(pm2_daemon)" != "$DAEMON_AT_START" ] && [ -f "${PM2_HOME:-$HOME/.pm2}/dump.pm2" ]; then
    echo "pm2: the PM2 daemon was started anew during this release (pid ${DAEMON_AT_START:-none} -> $(pm2_daemon)); pm2 resurrect brings back the other saved apps" >&2
    pm2 resurrect >/dev/null 2>&1 || echo "warning: pm2 resurrect failed; run it on the VPS, then pm2 save" >&2
  fi
}
pm2_apply() {
  pm2 startOrReload "$ECOSYSTEM" --only "$APP_NAME" --update-env >"$SHARED/logs/pm2-apply.log" 2>&1 ||
    { cat "$SHARED/logs/pm2-apply.log" >&2; return 1; }
}
stop_preflight() {
  if [ -n "$PREFLIGHT_PID" ]; then
    kill -TERM -- "-$PREFLIGHT_PID" 2>/dev/null || true
    wait "$PREFLIGHT_PID" 2>/dev/null || true
    PREFLIGHT_PID=""
  fi
}
revert() {
  if [ -n "$PREV_ID" ] && [ -d "$RELEASES/$PREV_ID" ]; then
    point_current "$PREV_ID"
    if pm2_apply; then
      restore_other_apps
      echo "reverted: current -> $PREV_ID, reloaded; the previous release keeps serving" >&2
    else
      echo "revert: current -> $PREV_ID, but pm2 reload failed; run: pm2 startOrReload $ECOSYSTEM --only $APP_NAME --update-env" >&2
    fi
  else
    rm -f "$CURRENT"
    pm2 delete "$APP_NAME" >/dev/null 2>&1 || true
    echo "reverted: there was no earlier release; $APP_NAME is stopped" >&2
  fi
}
on_exit() {
  local rc=$?
  # Whatever fails from here on, the cleanup and the revert run to the end.
  set +e
  stop_preflight
  if [ "$LOCKED" = 1 ]; then : >"$ROOT/.deploy.lock.owner"; fi
  if [ -n "$TMP_DIR" ]; then rm -rf "$TMP_DIR"; fi
  if [ "$rc" -ne 0 ]; then
    local failed="$STEP"
    echo "release $RELEASE_ID failed at step $failed (exit $rc)" >&2
    if [ "$SWITCHED" = 1 ]; then
      revert
      echo "--- tail of $ERR_LOG ---" >&2
      tail -n 25 "$ERR_LOG" >&2 2>/dev/null || true
    fi
    record "failed:$failed" 2>/dev/null || true
  fi
  exit "$rc"
}
# npm_config_yes=false: npx must never download a tool the release does not bring.
run_migrate() {
  npm_config_yes=false node "$ECOSYSTEM" exec "$NEW_DIR" -- bash -c "$MIGRATE" 2>&1 | tee "$migrate_log"
}
# Prisma records a failed migration and then refuses every later one (P3009) until it is resolved.
# It failed, so mark it rolled back, as `prisma migrate resolve --rolled-back` would (that command
# needs Prisma's native engine; `db execute` runs offline). Were it partly applied (no
# transactional DDL), the next release's migration says so.
mark_failed_prisma_migrations() {
  local schema failed_migration sql
  schema="$(sed -n 's/^Prisma schema loaded from \(.*\)$/\1/p' "$migrate_log" | head -n 1)"
  sed -n -e 's/^Migration name: *\([^ ]*\).*/\1/p' -e 's/^The `\([^`]*\)` migration started at .* failed.*/\1/p' \
    -e 's/^ *with migration_name="\([^"]*\)".*/\1/p' "$migrate_log" | sort -u |
    while IFS= read -r failed_migration; do
      case "$failed_migration" in "" | *[!A-Za-z0-9_-]*) continue ;; esac
      sql="UPDATE _prisma_migrations SET rolled_back_at = CURRENT_TIMESTAMP WHERE migration_name = '$failed_migration' AND finished_at IS NULL AND rolled_back_at IS NULL;"
      if printf '%s\n' "$sql" | npm_config_yes=false node "$ECOSYSTEM" exec "$NEW_DIR" -- \
        npx --no-install prisma db execute --stdin --schema "${schema:-prisma/schema.prisma}" >>"$migrate_log" 2>&1; then
        echo "migrate: marked the failed migration $failed_migration as rolled back, so a later release can migrate (the database copy from before this attempt is in $ROOT/backups)" >&2
      else
        echo "migrate: could not mark $failed_migration as rolled back; on the VPS run: cd $NEW_DIR && npx prisma migrate resolve --rolled-back $failed_migration" >&2
      fi
    done
}
trap on_exit EXIT

for tool in node pm2 npm tar gzip sha256sum flock setsid; do
  command -v "$tool" >/dev/null || fail "$tool is not on PATH for $(id -un) in non-interactive SSH sessions (for node and pm2: put the PATH line at the top of ~/.bashrc)"
done
[ -f "$ECOSYSTEM" ] || fail "$ECOSYSTEM is missing: the Pm2Ecosystem step did not run"

step lock
exec 9>>"$ROOT/.deploy.lock"
if ! flock -w "$LOCK_TIMEOUT" 9; then
  fail "another deploy holds $ROOT/.deploy.lock (waited ${LOCK_TIMEOUT}s; holder: $(grep . "$ROOT/.deploy.lock.owner" 2>/dev/null || echo "not a deploy of this tool")); wait for it to finish, then run pulumi up again"
fi
LOCKED=1
DAEMON_AT_START="$(pm2_daemon)"
# @CLAIM_ROOT@
echo "pid $$ release $RELEASE_ID since $(date -u +%Y-%m-%dT%H:%M:%SZ) ($SOURCE)" >"$ROOT/.deploy.lock.owner"
if [ -L "$CURRENT" ]; then PREV_ID="$(basename "$(readlink "$CURRENT")")"; fi
if [ "$PREV_ID" = "$RELEASE_ID" ]; then
  # Re-activating the live release (an env or ecosystem change): its previous stays the previous.
  PREV_ID="$(awk -F'\t' -v id="$RELEASE_ID" '$2 == id && $4 == "ok" && $3 != id { p = $3 } END { print p }' "$REVISIONS")"
  [ "$PREV_ID" = "-" ] && PREV_ID=""
fi

if [ ! -d "$NEW_DIR" ]; then
  [ "$MODE" = deploy ] || fail "release $RELEASE_ID is not on the VPS; kept releases: $(find "$RELEASES" -mindepth 1 -maxdepth 1 -type d ! -name '.*' -printf '%f ' 2>/dev/null)"

  step verify
  # The upload lands under a temporary name ($INCOMING); only a verified archive is renamed ($VERIFIED).
  if [ -f "$INCOMING" ]; then
    got="$(sha256sum "$INCOMING" | cut -d' ' -f1)"
    if [ "$got" != "$SHA256" ]; then
      rm -f "$INCOMING"
      fail "sha256 of the uploaded $INCOMING is $got, expected $SHA256 (a cut or corrupt upload, now removed); run pulumi up again to upload it anew"
    fi
    mv -f "$INCOMING" "$VERIFIED"
  fi
  [ -f "$VERIFIED" ] || fail "the uploaded artifact $INCOMING is missing (a new or wiped VPS?); run pulumi up again: it uploads the artifact anew"
  INCOMING="$VERIFIED"
  gzip -t "$INCOMING" 2>/dev/null || fail "$INCOMING is not a valid gzip file"
  listing="$(tar -tvzf "$INCOMING" --quoting-style=escape)" || fail "$INCOMING is not a readable tar archive"
  bad="$(printf '%s\n' "$listing" | awk '
    { type = substr($1, 1, 1); name = $0; sub(/^([^ ]+ +){5}/, "", name) }
    type !~ /^[-dlh]$/ { print "entry " name ": type " type " (devices, FIFOs and sockets are refused)"; next }
    { sub(/ (->|link to) .*$/, "", name) }
    name ~ /^\// { print "entry " name ": absolute path" }
    name ~ /(^|\/)\.\.(\/|$)/ { print "entry " name ": .. component" }
  ' | head -n 20)"
  [ -z "$bad" ] || fail "unsafe archive, refused before anything was activated: $bad"
  count="$(printf '%s\n' "$listing" | wc -l)"
  [ "$count" -le 200000 ] || fail "archive has $count entries (limit 200000)"

  step extract
  TMP_DIR="$RELEASES/.tmp-$RELEASE_ID-$$"
  rm -rf "$TMP_DIR"
  mkdir -p "$TMP_DIR"
  if ! tar -xzf "$INCOMING" -C "$TMP_DIR" --no-same-owner --delay-directory-restore; then
    rm -rf "$TMP_DIR"
    TMP_DIR=""
    fail "extract failed; nothing was activated. Space left on $ROOT: $(df -h --output=avail "$ROOT" | tail -n 1 | tr -d ' ') (the release needs $(gzip -l "$INCOMING" | awk 'NR == 2 { printf "%.0f MB", $2 / 1e6 }') unpacked); free space on the VPS (df -h $ROOT), then run pulumi up again"
  fi
  while IFS= read -r -d '' link; do
    target="$(realpath -m "$link")"
    case "$target" in
      "$TMP_DIR"/*) ;;
      *) fail "unsafe archive: link $(printf '%s' "${link#"$TMP_DIR"/}") points outside the release" ;;
    esac
  done < <(find "$TMP_DIR" -type l -print0)
  [ -z "$(find "$TMP_DIR" \( -type b -o -type c -o -type p -o -type s \) -print -quit)" ] || fail "unsafe archive: special files"
  [ -f "$TMP_DIR/package.json" ] || fail "archive has no package.json at its root"
  echo "$SHA256" >"$TMP_DIR/.artifact-sha256"

  step install
  prev_dir=""
  if [ -n "$PREV_ID" ]; then prev_dir="$RELEASES/$PREV_ID"; fi
  same_deps() {
    [ -n "$prev_dir" ] && [ -d "$prev_dir/node_modules" ] && [ -f "$TMP_DIR/package-lock.json" ] &&
      cmp -s "$TMP_DIR/package-lock.json" "$prev_dir/package-lock.json" &&
      [ "$(cat "$TMP_DIR"/prisma/*.prisma 2>/dev/null | sha256sum)" = "$(cat "$prev_dir"/prisma/*.prisma 2>/dev/null | sha256sum)" ]
  }
  if [ -d "$TMP_DIR/node_modules" ]; then
    echo "install: the artifact brings node_modules"
  elif same_deps; then
    # Hard links: instant, and safe, because a later install replaces files instead of writing into them.
    cp -al "$prev_dir/node_modules" "$TMP_DIR/node_modules"
    echo "install: same lockfile and schema as $PREV_ID, reused its node_modules"
  else
    # --ignore-scripts: no install script may download anything on the VPS. The artifact carries
    # its generated Prisma client (npm run package generates it before the build).
    (cd "$TMP_DIR" && npm ci --omit=dev --ignore-scripts --no-audit --no-fund --loglevel=error) || fail "npm ci --omit=dev failed"
    echo "install: npm ci --omit=dev"
  fi

  step link
  ln -sfn ../../shared/.env "$TMP_DIR/.env"
  echo "$RELEASE_ID" >"$TMP_DIR/REVISION"
  mv -T "$TMP_DIR" "$NEW_DIR"
  TMP_DIR=""
  rm -f "$INCOMING"
fi
[ -f "$NEW_DIR/REVISION" ] || fail "$NEW_DIR is incomplete (no REVISION); remove it and deploy the artifact again"
[ -f "$NEW_DIR/$APP_SCRIPT" ] || fail "$NEW_DIR/$APP_SCRIPT does not exist; check app:script"

# The same migration files as the live release, which migrated: nothing can be pending.
migrations_of() { (cd "$1" 2>/dev/null && find . -path '*migrations*' -type f -print0 | sort -z | xargs -0 -r sha256sum | sha256sum); }
if [ -n "$MIGRATE" ] && [ ! -f "$NEW_DIR/.migrated" ] && [ -n "$PREV_ID" ] && [ -f "$RELEASES/$PREV_ID/.migrated" ] &&
  [ "$(migrations_of "$NEW_DIR")" = "$(migrations_of "$RELEASES/$PREV_ID")" ]; then
  echo "migrate: same migration files as the live release $PREV_ID; nothing pending, no backup needed"
  touch "$NEW_DIR/.migrated"
fi
if [ -n "$MIGRATE" ] && [ ! -f "$NEW_DIR/.migrated" ]; then
  step backup
  case "$BACKUP" in
    "") echo "backup: disabled" ;;
    auto) node "$ECOSYSTEM" sqlite-backup "$ROOT/backups" "$RELEASE_ID" ;;
    *) BACKUP_DIR="$ROOT/backups" node "$ECOSYSTEM" exec "$NEW_DIR" -- bash -c "$BACKUP" || fail "backup command failed" ;;
  esac
  # keep as many backups as releases
  find "$ROOT/backups" -mindepth 1 -maxdepth 1 -type f -printf '%T@ %p\n' | sort -rn | awk -v k="$((KEEP_RELEASES * 2))" 'NR > k { sub(/^[^ ]+ /, ""); print }' |
    while IFS= read -r old; do rm -f "$old"; done

  step migrate
  migrate_log="$SHARED/logs/migrate.log"
  if ! run_migrate; then
    case "$MIGRATE" in
      *"prisma migrate deploy"*)
        mark_failed_prisma_migrations
        # P3009: an earlier attempt's failure blocked this one; now that it is resolved, try once more.
        if grep -q 'P3009' "$migrate_log" && run_migrate; then
          touch "$NEW_DIR/.migrated"
        fi
        ;;
    esac
    [ -f "$NEW_DIR/.migrated" ] || fail "migration failed: $MIGRATE (output in $migrate_log)"
  fi
  touch "$NEW_DIR/.migrated"
fi

step preflight
spare="$(node "$ECOSYSTEM" free-port)"
setsid node "$ECOSYSTEM" exec "$NEW_DIR" "$spare" -- node "$NEW_DIR/$APP_SCRIPT" >"$PREFLIGHT_LOG" 2>&1 &
PREFLIGHT_PID=$!
if ! node "$ECOSYSTEM" health "http://127.0.0.1:$spare$HEALTH_PATH" "$RELEASE_ID" "$HEALTH_TIMEOUT" "$PREFLIGHT_PID"; then
  echo "--- tail of the preflight run ($PREFLIGHT_LOG) ---" >&2
  tail -n 25 "$PREFLIGHT_LOG" >&2
  fail "release $RELEASE_ID did not become healthy when started alone on port $spare; nothing live was touched"
fi
stop_preflight

step switch
touch "$NEW_DIR"
if [ "$PREV_ID" != "$RELEASE_ID" ]; then
  point_current "$RELEASE_ID"
fi
SWITCHED=1

step reload
pm2_apply || fail "pm2 startOrReload failed"

step health
node "$ECOSYSTEM" health "http://127.0.0.1:$APP_PORT$HEALTH_PATH" "$RELEASE_ID" "$HEALTH_TIMEOUT" ||
  fail "the live app did not answer healthy as release $RELEASE_ID"
SWITCHED=0

step save
restore_other_apps
pm2 save --force >/dev/null 2>&1 || echo "warning: pm2 save failed; after a reboot run: pm2 resurrect" >&2
record ok

step prune
find "$RELEASES" -mindepth 1 -maxdepth 1 -type d ! -name '.*' -printf '%T@ %f\n' | sort -rn | awk -v k="$KEEP_RELEASES" 'NR > k { print $2 }' |
  while IFS= read -r old; do
    if [ "$old" != "$RELEASE_ID" ] && [ "$old" != "$PREV_ID" ]; then
      rm -rf "${RELEASES:?}/$old"
      echo "pruned release $old"
    fi
  done
find "$ROOT/.incoming" -mindepth 1 -maxdepth 1 -mmin +60 -delete 2>/dev/null || true
step finished

sha="$(cat "$NEW_DIR/.artifact-sha256" 2>/dev/null || true)"
# The migrations the live release carries (names only; a name that is not plain is left out of the JSON).
migrations="$(find "$NEW_DIR" -path "$NEW_DIR/node_modules" -prune -o -type f -path '*/migrations/*/migration.sql' -print 2>/dev/null |
  awk -F/ '$(NF-1) ~ /^[A-Za-z0-9_.-]+$/ { print $(NF-1) }' | sort -u | awk '{ printf "%s\"%s\"", (NR > 1 ? "," : ""), $0 }')"
printf 'RESULT {"releaseId":"%s","previousReleaseId":"%s","artifactSha256":"%s","activatedAt":"%s","migrations":[%s],"steps":[%s]}\n' \
  "$RELEASE_ID" "$PREV_ID" "$sha" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$migrations" "$STEPS_JSON"

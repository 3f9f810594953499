# shellcheck shell=bash
# The release: the phases of release.lib.sh in order. infra/scripts/release.ts puts the quoted
# header (the release's settings and the layout of infra/paths.ts) and the library in front of it;
# the script reaches the VPS on the command's stdin as a temporary file ($0), which it removes
# first (bash keeps reading the open file).
rm -f -- "$0"

# Everything the script prints also goes to the release log, through tee, which keeps going when
# the SSH connection is cut (-p): the release then finishes or reverts on the VPS as if the client
# were still there, instead of dying halfway. A hangup is ignored for the same reason.
trap '' HUP
if [ -d "$LOGS" ]; then
  exec > >(tee -p -a "$RELEASE_LOG") 2> >(tee -p -a "$RELEASE_LOG" >&2)
fi
echo "release $RELEASE_ID ($MODE, $SOURCE) by stack $STACK at $(date -u +%Y-%m-%dT%H:%M:%SZ)"

# The run's state: the only values that change as the release goes, read by step() and on_exit.
declare -A RUN=([step]=start [t0]="$(date +%s%N)" [steps]="" [switched]=0 [prev]="" [tmp]="" [preflight]="" [locked]=0 [daemon]="")

# step NAME: ends the running step (its protocol line and its entry in RESULT) and starts NAME.
step() {
  local secs
  if [ "${RUN[step]}" != start ]; then
    secs="$(elapsed "${RUN[t0]}")"
    step_line "${RUN[step]}" "$secs"
    RUN[steps]="${RUN[steps]}${RUN[steps]:+,}{\"name\":\"${RUN[step]}\",\"seconds\":$secs}"
  fi
  RUN[step]="$1"
  RUN[t0]="$(date +%s%N)"
}

on_exit() {
  local rc=$?
  # Whatever fails from here on, the cleanup and the revert run to the end.
  set +e
  preflight_stop "${RUN[preflight]}"
  if [ "${RUN[locked]}" = 1 ]; then lock_release "$LOCK_OWNER"; fi
  if [ -n "${RUN[tmp]}" ]; then rm -rf "${RUN[tmp]}"; fi
  if [ "$rc" -ne 0 ]; then
    echo "release $RELEASE_ID failed at step ${RUN[step]} (exit $rc)" >&2
    if [ "${RUN[switched]}" = 1 ]; then
      revert "$ROOT" "$CURRENT" "$RELEASES" "${RUN[prev]}" "$ECOSYSTEM" "$APP_NAME" "$PM2_LOG" && restore_other_apps "${RUN[daemon]}"
      echo "--- tail of $ERR_LOG ---" >&2
      tail -n 25 "$ERR_LOG" >&2 2>/dev/null || true
    fi
    record "$REVISIONS" "$RELEASE_ID" "${RUN[prev]}" "failed:${RUN[step]}" "$SOURCE" 2>/dev/null || true
  fi
  exit "$rc"
}
trap on_exit EXIT

require_tools
[ -f "$ECOSYSTEM" ] || fail "$ECOSYSTEM is missing: the Pm2Ecosystem step did not run"
[ -f "$HELPER" ] || fail "$HELPER is missing: the Pm2Ecosystem step did not run"
NEW_DIR="$RELEASES/$RELEASE_ID"

step lock
lock_acquire "$LOCK_FILE" "$LOCK_OWNER" "$LOCK_TIMEOUT" "pid $$ release $RELEASE_ID since $(date -u +%Y-%m-%dT%H:%M:%SZ) ($SOURCE)"
RUN[locked]=1
RUN[daemon]="$(pm2_daemon)"
# @CLAIM_ROOT@
takeover "$ROOT" "$CURRENT" "$RELEASES" "$APP_NAME"
RUN[prev]="$(previous_release "$HELPER" "$ECOSYSTEM" "$REVISIONS" "$(live_release "$CURRENT")" "$RELEASE_ID")"
PREV_DIR=""
if [ -n "${RUN[prev]}" ]; then PREV_DIR="$RELEASES/${RUN[prev]}"; fi

if [ ! -d "$NEW_DIR" ]; then
  [ "$MODE" = deploy ] || fail "release $RELEASE_ID is not on the VPS; kept releases: $(kept_releases "$RELEASES")"
  step verify
  stage_verify "$INCOMING" "$VERIFIED" "$SHA256"
  step extract
  RUN[tmp]="$RELEASES/.tmp-$RELEASE_ID-$$"
  stage_extract "$VERIFIED" "${RUN[tmp]}" "$ROOT"
  step install
  stage_install "${RUN[tmp]}" "$PREV_DIR"
  step link
  stage_link "${RUN[tmp]}" "$NEW_DIR" "$RELEASE_ID" "$SHA256"
  RUN[tmp]=""
  rm -f "$VERIFIED"
fi
check_release "$NEW_DIR" "$APP_SCRIPT"

if migrate_pending "$MIGRATE" "$NEW_DIR" "$PREV_DIR"; then
  step backup
  backup "$BACKUP" "$BACKUPS" "$RELEASE_ID" "$NEW_DIR" "$KEEP_RELEASES"
  step migrate
  migrate "$MIGRATE" "$NEW_DIR" "$MIGRATE_LOG"
elif [ -n "$MIGRATE" ] && [ ! -f "$NEW_DIR/.migrated" ]; then
  echo "migrate: the same Prisma migrations as the live release ${RUN[prev]}; nothing pending, no backup needed"
  touch "$NEW_DIR/.migrated"
fi

step preflight
spare="$(node "$HELPER" "$ECOSYSTEM" free-port)"
RUN[preflight]="$(preflight_start "$NEW_DIR" "$APP_SCRIPT" "$spare" "$PREFLIGHT_LOG")"
preflight_check "${RUN[preflight]}" "$spare" "$RELEASE_ID" "$HEALTH_TIMEOUT" "$HEALTH_SETTLE" "$PREFLIGHT_LOG"
ready_mode "$NEW_DIR"
preflight_stop "${RUN[preflight]}"
RUN[preflight]=""

step switch
# The release's folder time is when it went live: prune keeps the newest.
touch "$NEW_DIR"
if [ "${RUN[prev]}" != "$RELEASE_ID" ]; then point_current "$ROOT" "$CURRENT" "$RELEASE_ID"; fi
RUN[switched]=1
step reload
pm2_apply "$ECOSYSTEM" "$APP_NAME" "$PM2_LOG" || fail "pm2 startOrReload failed"
step health
live_health "$APP_PORT" "$RELEASE_ID" "$HEALTH_TIMEOUT"
RUN[switched]=0

step save
save "${RUN[daemon]}"
record "$REVISIONS" "$RELEASE_ID" "${RUN[prev]}" ok "$SOURCE"
step prune
prune "$RELEASES" "$KEEP_RELEASES" "$RELEASE_ID" "${RUN[prev]}" "$INCOMING_DIR"
step finished
result_line "$RELEASE_ID" "${RUN[prev]}" "$NEW_DIR" "${RUN[steps]}"

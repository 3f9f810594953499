# shellcheck shell=bash
# The release: the phases of release.lib.sh in order. infra/scripts/release.ts puts the quoted
# header (the release's settings and the layout of infra/paths.ts) and the library in front of it;
# the script reaches the VPS on the command's stdin as a temporary file ($0), which it removes
# first (bash keeps reading the open file).
# PHASES says which phases this run does: all four (stage migrate preflight publish) for a single
# VPS, one per remote command on a fleet, where the Pulumi engine orders them across the hosts
# (infra/components/fleet.ts). A fleet's host holds a lease from its stage to its publish (LEASE_KEY).
rm -f -- "$0"

# Everything the script prints also goes to the release log, through tee, which keeps going when
# the SSH connection is cut (-p): the release then finishes or reverts on the VPS as if the client
# were still there, instead of dying halfway. A hangup is ignored for the same reason.
trap '' HUP
if [ -d "$LOGS" ]; then
  exec > >(tee -p -a "$RELEASE_LOG") 2> >(tee -p -a "$RELEASE_LOG" >&2)
fi
echo "release $RELEASE_ID ($MODE, $SOURCE) by stack $STACK at $(date -u +%Y-%m-%dT%H:%M:%SZ)${HOST_LABEL:+: $PHASES on host $HOST_LABEL}"
has_phase() { case " $PHASES " in *" $1 "*) return 0 ;; esac; return 1; }

# The run's state: the only values that change as the release goes, read by step() and on_exit.
declare -A RUN=([step]=start [t0]="$(date +%s%N)" [steps]="" [switched]=0 [prev]="" [tmp]="" [preflight]="" [locked]=0 [leased]=0 [daemon]=""
  [staged]=0 [digest]="" [digest_out]="")

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
  if [ -n "${RUN[digest]}" ]; then kill "${RUN[digest]}" 2>/dev/null; wait "${RUN[digest]}" 2>/dev/null; fi
  if [ -n "${RUN[digest_out]}" ]; then rm -f "${RUN[digest_out]}"; fi
  # A failed phase ends this host's sequence: its lease goes (a fleet's other hosts keep theirs
  # until their own phases end or the lease expires; the same stack's next up takes them over).
  if [ "$rc" -ne 0 ] && [ "${RUN[leased]}" = 1 ]; then lease_drop "$LEASE_FILE" "$LEASE_KEY"; fi
  if [ "${RUN[locked]}" = 1 ]; then lock_release "$LOCK_OWNER"; fi
  if [ -n "${RUN[tmp]}" ]; then rm -rf "${RUN[tmp]}"; fi
  if [ "$rc" -ne 0 ]; then
    echo "release $RELEASE_ID failed at step ${RUN[step]}${HOST_LABEL:+ on host $HOST_LABEL} (exit $rc)" >&2
    if [ "${RUN[switched]}" = 1 ]; then
      revert "$ROOT" "$CURRENT" "$RELEASES" "${RUN[prev]}" "$ECOSYSTEM" "$APP_NAME" "$PM2_LOG" && restore_other_apps "${RUN[daemon]}"
      echo "--- tail of $ERR_LOG ---" >&2
      tail -n 25 "$ERR_LOG" >&2 2>/dev/null || true
    fi
    record "$REVISIONS" "$RELEASE_ID" "${RUN[prev]}" "failed:${RUN[step]}" "$SOURCE" 2>/dev/null || true
    notify "failed:${RUN[step]}" "${RUN[step]}" "${RUN[steps]}"
  elif has_phase publish; then
    notify ok "" "${RUN[steps]}"
  fi
  exit "$rc"
}
trap on_exit EXIT

require_tools
[ -f "$ECOSYSTEM" ] || fail "$ECOSYSTEM is missing: the Pm2Ecosystem step did not run"
[ -f "$HELPER" ] || fail "$HELPER is missing: the Pm2Ecosystem step did not run"
NEW_DIR="$RELEASES/$RELEASE_ID"

step lock
lock_acquire "$LOCK_FILE" "$LOCK_OWNER" "$LOCK_TIMEOUT" "pid $$ release $RELEASE_ID since $(date -u +%Y-%m-%dT%H:%M:%SZ) ($SOURCE${HOST_LABEL:+, $PHASES})"
RUN[locked]=1
if [ -n "$LEASE_KEY" ]; then
  lease_take "$LEASE_FILE" "$LEASE_KEY" "$STACK" "$RELEASE_ID" "$PHASES" "$LEASE_TTL" "$LOCK_TIMEOUT"
  RUN[leased]=1
fi
RUN[daemon]="$(pm2_daemon)"
# @CLAIM_ROOT@
if has_phase stage; then takeover "$ROOT" "$CURRENT" "$RELEASES" "$APP_NAME"; fi
RUN[prev]="$(previous_release "$HELPER" "$ECOSYSTEM" "$REVISIONS" "$(live_release "$CURRENT")" "$RELEASE_ID")"
PREV_DIR=""
if [ -n "${RUN[prev]}" ]; then PREV_DIR="$RELEASES/${RUN[prev]}"; fi

if has_phase stage && [ ! -d "$NEW_DIR" ]; then
  [ "$MODE" = deploy ] || fail "release $RELEASE_ID is not on ${HOST_LABEL:-the VPS}; kept releases: $(kept_releases "$RELEASES")"
  RUN[tmp]="$RELEASES/.tmp-$RELEASE_ID-$$"
  step verify
  if [ -n "$APP_SHA256" ] && [ ! -f "$INCOMING" ] && [ ! -f "$VERIFIED" ] && { [ -f "$APP_INCOMING" ] || [ -f "$APP_VERIFIED" ]; }; then
    # Only the app layer came (infra/layers.ts): the node_modules are a kept release's, the same tree.
    base="$(deps_base "$RELEASES" "$DEPS_DIGEST")"
    [ -n "$base" ] || fail "only the app layer of release $RELEASE_ID was uploaded, and no kept release has its node_modules (tree digest $DEPS_DIGEST) any more; run pulumi up again: it uploads the whole artifact"
    stage_verify "$APP_INCOMING" "$APP_VERIFIED" "$APP_SHA256"
    step extract
    stage_extract "$APP_VERIFIED" "${RUN[tmp]}" "$ROOT"
    step install
    stage_deps "${RUN[tmp]}" "$RELEASES/$base" "$DEPS_DIGEST"
  else
    stage_verify "$INCOMING" "$VERIFIED" "$SHA256"
    step extract
    stage_extract "$VERIFIED" "${RUN[tmp]}" "$ROOT"
    step install
    stage_install "${RUN[tmp]}" "$PREV_DIR"
  fi
  step link
  stage_link "${RUN[tmp]}" "$NEW_DIR" "$RELEASE_ID" "$SHA256"
  RUN[tmp]=""
  RUN[staged]=1
  rm -f "$VERIFIED" "$APP_VERIFIED"
fi
[ -d "$NEW_DIR" ] || fail "release $RELEASE_ID is not staged on ${HOST_LABEL:-the VPS} (its stage step did not run there); run pulumi up again"
check_release "$NEW_DIR" "$APP_SCRIPT"

# The tree digest of the release's node_modules (those it came with, to mark them; those linked from
# a kept release, to check them) runs in the background from here; deps_checked waits for it before
# anything relies on linked ones being the artifact's (a migration, the release counting as
# preflighted) and, for a mark, by the time the release counts as preflighted or this run ends.
if { { [ -n "$DEPS_DIGEST" ] && [ "${RUN[staged]}" = 1 ]; } || [ -f "$NEW_DIR/.deps-unverified" ]; } && [ -d "$NEW_DIR/node_modules" ]; then
  RUN[digest_out]="$RELEASES/.digest-$RELEASE_ID-$$"
  deps_digest_start "$NEW_DIR" "${RUN[digest_out]}" &
  RUN[digest]=$!
fi
deps_checked() {
  local got=""
  [ -n "${RUN[digest]}" ] || return 0
  step deps
  if wait "${RUN[digest]}"; then got="$(cat "${RUN[digest_out]}")"; fi
  RUN[digest]=""
  rm -f "${RUN[digest_out]}"
  deps_verify "$NEW_DIR" "$DEPS_DIGEST" "$got"
}

if has_phase migrate; then
  if migrate_pending "$MIGRATE" "$NEW_DIR" "$PREV_DIR"; then
    # A migration runs the release's node_modules (prisma): linked ones must be checked first.
    if [ -f "$NEW_DIR/.deps-unverified" ]; then deps_checked; fi
    step backup
    backup "$BACKUP" "$BACKUPS" "$RELEASE_ID" "$NEW_DIR" "$KEEP_RELEASES"
    step migrate
    migrate "$MIGRATE" "$NEW_DIR" "$MIGRATE_LOG"
  elif [ -n "$MIGRATE" ] && [ ! -f "$NEW_DIR/.migrated" ]; then
    echo "migrate: the same Prisma migrations as the live release ${RUN[prev]}; nothing pending, no backup needed"
    touch "$NEW_DIR/.migrated"
  fi
fi

if has_phase preflight; then
  step preflight
  rm -f "$NEW_DIR/.preflight-ok"
  spare="$(node "$HELPER" "$ECOSYSTEM" free-port)"
  RUN[preflight]="$(preflight_start "$NEW_DIR" "$APP_SCRIPT" "$spare" "$PREFLIGHT_LOG")"
  preflight_check "${RUN[preflight]}" "$spare" "$RELEASE_ID" "$HEALTH_TIMEOUT" "$(settle_for "$NEW_DIR" "$HEALTH_SETTLE")" "$PREFLIGHT_LOG"
  ready_mode "$NEW_DIR"
  preflight_stop "${RUN[preflight]}"
  RUN[preflight]=""
  deps_checked
  touch "$NEW_DIR/.preflight-ok"
fi

if has_phase publish; then
  deps_checked
  # On a fleet the preflight ran in an earlier command: it must have passed here, for this release.
  [ -f "$NEW_DIR/.preflight-ok" ] || fail "release $RELEASE_ID has not passed preflight on ${HOST_LABEL:-the VPS}; run pulumi up again"
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
  served_key >"$NEW_DIR/.served"

  step save
  save "${RUN[daemon]}"
  record "$REVISIONS" "$RELEASE_ID" "${RUN[prev]}" ok "$SOURCE"
  step prune
  prune "$RELEASES" "$KEEP_RELEASES" "$RELEASE_ID" "${RUN[prev]}" "$INCOMING_DIR"
  rm -f "$NEW_DIR/.preflight-ok"
  if [ "${RUN[leased]}" = 1 ]; then lease_drop "$LEASE_FILE" "$LEASE_KEY"; RUN[leased]=0; fi
  step finished
  result_line "$RELEASE_ID" "${RUN[prev]}" "$NEW_DIR" "${RUN[steps]}"
else
  deps_checked
  step finished
  phase_line "$PHASES" "$RELEASE_ID" "$HOST_LABEL" "${RUN[steps]}"
fi

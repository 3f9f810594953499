# shellcheck shell=bash
# The release's phases, in Capistrano's order: lock; stage (verify, extract, install, link);
# migrate (with its backup); preflight; publish (switch, reload, health); finish (save, record,
# prune); and revert. Each is a function of its arguments (paths come from the header that
# infra/scripts/release.ts writes from infra/paths.ts; nothing here spells a VPS path), prints what
# infra/protocol.ts reads, and fails through fail(). release.main.sh calls them in order; the tests
# (release.lib.test.ts) source this file and run each one for real.

# fail MESSAGE: the protocol's error line, then exit 1 (the caller's EXIT trap reverts if needed).
fail() {
  echo "error: $*" >&2
  exit 1
}

# elapsed T0_NS: seconds since T0 (from date +%s%N), two decimals.
elapsed() { awk -v a="$1" -v b="$(date +%s%N)" 'BEGIN { printf "%.2f", (b - a) / 1e9 }'; }

# step_line NAME SECONDS: the protocol's `step NAME 1.23s` line.
step_line() { printf 'step %-10s %6ss\n' "$1" "$2"; }

# require_tools: what the release needs on PATH in a non-interactive SSH session.
# The same list and words as `npm run doctor` (ops/doctor.ts), which checks the rest too.
require_tools() {
  local tool hint
  for tool in node pm2 npm tar gzip sha256sum flock setsid; do
    case "$tool" in
      flock | setsid) hint="; it is in util-linux: apt-get install util-linux" ;;
      pm2) hint="; npm install -g pm2" ;;
      *) hint="" ;;
    esac
    command -v "$tool" >/dev/null || fail "$tool is not on PATH for $(id -un) in non-interactive SSH sessions (for node and pm2: put the PATH line at the top of ~/.bashrc)$hint"
  done
}

# --- lock -------------------------------------------------------------------------------------

# lock_acquire LOCK_FILE OWNER_FILE TIMEOUT OWNER_TEXT: holds LOCK_FILE on fd 9 until the script
# exits; a lock still held after TIMEOUT seconds fails, naming its holder.
lock_acquire() {
  local lock="$1" owner="$2" timeout="$3" text="$4"
  exec 9>>"$lock"
  if ! flock -w "$timeout" 9; then
    fail "another deploy holds $lock (waited ${timeout}s; holder: $(grep . "$owner" 2>/dev/null || echo "not a deploy of this tool")); wait for it to finish, then run pulumi up again"
  fi
  echo "$text" >"$owner"
}

# lock_release OWNER_FILE: the holder's line goes (the lock itself ends with the process).
lock_release() { : >"$1"; }

# A fleet's host is leased from its stage to its publish, across the separate commands of one
# update (the lock above lasts one command). A lease is one line in LEASE_FILE, written under the
# lock: KEY STACK RELEASE EXPIRES PHASES SINCE. KEY names the update (its release and triggers).

# lease_take LEASE_FILE KEY STACK ID PHASES TTL TIMEOUT: takes or renews the lease for TTL seconds.
# Another stack's unexpired lease is waited for (the lock let go meanwhile, so its phases can run)
# up to TIMEOUT seconds, then fails naming it. This stack's own lease from an update that did not
# finish is taken over: Pulumi's stack lock already keeps two updates of one stack apart.
lease_take() {
  local file="$1" key="$2" stack="$3" id="$4" phases="$5" ttl="$6" timeout="$7" now waited=0 hkey hstack hid hexp
  while :; do
    now="$(date +%s)"
    hkey="" hstack="" hid="" hexp=0
    if [ -s "$file" ]; then read -r hkey hstack hid hexp _ <"$file" || true; fi
    case "$hexp" in "" | *[!0-9]*) hexp=0 ;; esac
    if [ -n "$hkey" ] && [ "$hkey" != "$key" ] && [ "$hexp" -gt "$now" ]; then
      if [ "$hstack" = "$stack" ]; then
        echo "lease: taking over this stack's lease from an update that did not finish (release $hid)"
      elif [ "$waited" -ge "$timeout" ]; then
        fail "${HOST_LABEL:-this host} is leased by stack $hstack for release $hid until $(date -u -d "@$hexp" +%Y-%m-%dT%H:%M:%SZ) (its fleet update is under way; waited ${timeout}s). Wait for it to finish and run pulumi up again; if that update crashed, its lease expires by then (or remove $file on the host)"
      else
        flock -u 9
        sleep 2
        waited=$((waited + 2))
        flock -w "$timeout" 9 || fail "another deploy holds $LOCK_FILE (waited ${timeout}s)"
        continue
      fi
    fi
    printf '%s %s %s %s %s %s\n' "$key" "$stack" "$id" "$((now + ttl))" "${phases// /,}" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" >"$file.tmp"
    mv -f "$file.tmp" "$file"
    return 0
  done
}

# lease_drop LEASE_FILE KEY: ends the lease, when KEY holds it.
lease_drop() {
  local hkey=""
  if [ -s "$1" ]; then read -r hkey _ <"$1" || true; fi
  if [ "$hkey" = "$2" ]; then rm -f "$1"; fi
}

# --- what is live -----------------------------------------------------------------------------

# live_release CURRENT: the id `current` points at, or nothing.
live_release() {
  if [ -L "$1" ]; then basename "$(readlink "$1")"; fi
}

# previous_release HELPER ECOSYSTEM REVISIONS LIVE ID: the release ID replaces. The live one, unless
# ID is the live one (an env or ecosystem change): then the one it replaced when it went live.
previous_release() {
  local helper="$1" ecosystem="$2" revisions="$3" live="$4" id="$5"
  if [ "$live" != "$id" ]; then
    echo "$live"
  else
    node "$helper" "$ecosystem" previous-of "$revisions" "$id"
  fi
}

# --- takeover ---------------------------------------------------------------------------------

# takeover ROOT CURRENT RELEASES APP: a root deployed the old way (the hand-written deploys this
# project replaces: current/ a real folder, its .env inside, PM2 running APP from it) becomes the
# link layout. Nothing of it is deleted: current/ is kept, whole, as a release that prune never
# removes (.keep), its .env carried to $TAKEOVER_ENV (app:env wins for a key both set), and current
# then links to it. The running workers keep serving from the moved folder; the release's reload
# later moves them to the new one. What cannot be taken over safely is refused before any change.
takeover() {
  local root="$1" current="$2" releases="$3" app="$4" found mode cwd id keys
  [ -d "$current" ] && [ ! -L "$current" ] || return 0
  found="$(pm2 jlist 2>/dev/null | node "$HELPER" "$ECOSYSTEM" pm2-app "$app")" ||
    fail "takeover: could not read PM2's process list; nothing was changed. Run pm2 jlist on the VPS as $(id -un) to see why"
  mode="${found%% *}"
  cwd="${found#* }"
  case "$mode" in
    none | cluster_mode) ;;
    *) fail "takeover: PM2 runs $app in $mode from $cwd; this release reloads it in cluster mode, which PM2 cannot switch to without a restart. Nothing was changed. In a maintenance window run pm2 delete $app on the VPS, then pulumi up again (or give the stack another app:name)" ;;
  esac
  if [ "$mode" != none ] && [ "$cwd" != "$current" ] && [ "$(realpath -m "$cwd")" != "$(realpath -m "$current")" ]; then
    fail "takeover: PM2 runs an app named $app from $cwd, not from $current; nothing was changed. Point app:name at the app this root serves, or vps:root at $cwd"
  fi
  [ -O "$current" ] || fail "takeover: $current belongs to $(stat -c %U "$current"), not to $(id -un); nothing was changed. chown -R $(id -un) $current on the VPS, then pulumi up again"
  if [ -e "$current/.env" ] && [ ! -r "$current/.env" ]; then
    fail "takeover: $current/.env is not readable by $(id -un); nothing was changed"
  fi
  id="$(printf 'takeover %s %s' "$root" "$(date +%s%N)" | sha256sum | cut -c1-12)"
  if [ -f "$current/.env" ]; then
    keys="$(node "$HELPER" "$ECOSYSTEM" carry-env "$current/.env" "$TAKEOVER_ENV")"
    echo "takeover: carried $current/.env to $TAKEOVER_ENV: $keys (names only; a key app:env also sets takes app:env's value)"
  fi
  echo "$id" >"$current/REVISION"
  touch "$current/.migrated" "$current/.keep"
  ln -sfn "releases/$id" "$root/.current.tmp"
  mv -T "$current" "$releases/$id"
  mv -Tf "$root/.current.tmp" "$current"
  record "$REVISIONS" "$id" "" takeover "the release deployed by hand in $current"
  echo "takeover: $current was a folder deployed the old way: kept whole as release $id (never pruned), current now links to it"
}

# kept_releases RELEASES: the ids in RELEASES, space-separated.
kept_releases() { find "$1" -mindepth 1 -maxdepth 1 -type d ! -name '.*' -printf '%f ' 2>/dev/null; }

# --- stage ------------------------------------------------------------------------------------

# stage_verify INCOMING VERIFIED SHA256: the upload (a temporary name) must have SHA256; it is then
# renamed to VERIFIED and its entries are checked before anything is extracted: no absolute path,
# no `..`, no device, FIFO or socket, at most 200000 entries (the rules of infra/artifact.ts, which
# the client applies at preview; here they hold for what actually arrived).
stage_verify() {
  local incoming="$1" verified="$2" sha256="$3" got listing bad count
  if [ -f "$incoming" ]; then
    got="$(sha256sum "$incoming" | cut -d' ' -f1)"
    if [ "$got" != "$sha256" ]; then
      rm -f "$incoming"
      fail "sha256 of the uploaded $incoming is $got, expected $sha256 (a cut or corrupt upload, now removed); run pulumi up again to upload it anew"
    fi
    mv -f "$incoming" "$verified"
  fi
  [ -f "$verified" ] || fail "the uploaded artifact $incoming is missing (a new or wiped VPS?); run pulumi up again: it uploads the artifact anew"
  # -P: names as stored; GNU tar would otherwise list /etc/x as etc/x and hide what is refused here.
  # The listing reads the whole stream, so it also proves the gzip sound; gzip -t runs only to name
  # which layer is broken.
  if ! listing="$(tar -tvzPf "$verified" --quoting-style=escape 2>/dev/null)"; then
    gzip -t "$verified" 2>/dev/null || fail "$verified is not a valid gzip file"
    fail "$verified is not a readable tar archive"
  fi
  # Five fields (mode, owner, size, date, time) before the name; written out, as mawk (Debian's awk)
  # has no {n} intervals.
  bad="$(printf '%s\n' "$listing" | awk '
    { type = substr($1, 1, 1); name = $0; sub(/^[^ ]+ +[^ ]+ +[^ ]+ +[^ ]+ +[^ ]+ +/, "", name) }
    type !~ /^[-dlh]$/ { print "entry " name ": type " type " (devices, FIFOs and sockets are refused)"; next }
    { sub(/ (->|link to) .*$/, "", name) }
    name ~ /^\// { print "entry " name ": absolute path" }
    name ~ /(^|\/)\.\.(\/|$)/ { print "entry " name ": .. component" }
  ' | head -n 20)"
  [ -z "$bad" ] || fail "unsafe archive, refused before anything was activated: $bad"
  count="$(printf '%s\n' "$listing" | wc -l)"
  [ "$count" -le "$MAX_ENTRIES" ] || fail "archive has $count entries (limit $MAX_ENTRIES)"
}

# stage_extract ARCHIVE DIR ROOT: extracts into DIR (new), then checks what arrived: links stay
# inside, no special files, package.json at the root. On failure DIR is removed.
stage_extract() {
  local archive="$1" dir="$2" root="$3" link target
  rm -rf "$dir"
  mkdir -p "$dir"
  if ! tar -xzf "$archive" -C "$dir" --no-same-owner --delay-directory-restore; then
    rm -rf "$dir"
    fail "extract failed; nothing was activated. Space left on $root: $(df -h --output=avail "$root" | tail -n 1 | tr -d ' ') (the release needs $(gzip -l "$archive" | awk 'NR == 2 { printf "%.0f MB", $2 / 1e6 }') unpacked); free space on the VPS (df -h $root), then run pulumi up again"
  fi
  while IFS= read -r -d '' link; do
    target="$(realpath -m "$link")"
    case "$target" in
      "$dir"/*) ;;
      *)
        rm -rf "$dir"
        fail "unsafe archive: link $(printf '%s' "${link#"$dir"/}") points outside the release"
        ;;
    esac
  done < <(find "$dir" -type l -print0)
  if [ -n "$(find "$dir" \( -type b -o -type c -o -type p -o -type s \) -print -quit)" ]; then
    rm -rf "$dir"
    fail "unsafe archive: special files"
  fi
  [ -f "$dir/package.json" ] || { rm -rf "$dir"; fail "archive has no package.json at its root"; }
}

# same_dependencies DIR PREV_DIR: whether DIR can take PREV_DIR's node_modules as they are: the
# same lockfile and the same Prisma schema (the generated client depends on it).
same_dependencies() {
  local dir="$1" prev="$2"
  [ -n "$prev" ] && [ -d "$prev/node_modules" ] && [ -f "$dir/package-lock.json" ] &&
    cmp -s "$dir/package-lock.json" "$prev/package-lock.json" &&
    [ "$(cat "$dir"/prisma/*.prisma 2>/dev/null | sha256sum)" = "$(cat "$prev"/prisma/*.prisma 2>/dev/null | sha256sum)" ]
}

# NPM_FLAGS: every install on the VPS. --ignore-scripts: no install script may download anything on
# the VPS; the artifact carries its generated Prisma client (npm run package generates it before
# the build).
NPM_FLAGS=(--omit=dev --ignore-scripts --no-audit --no-fund --loglevel=error)

# reconcile_install DIR PREV_DIR: DIR's dependencies from PREV_DIR's node_modules: hard links of
# every file, then npm install reconciles them with DIR's lockfile, fetching only the packages that
# changed. npm replaces a package it changes (a new folder, the old one removed) and never writes
# into an installed file, so PREV_DIR's files stay as they were; the one file it rewrites in place,
# its record of the tree (node_modules/.package-lock.json), is a copy here. npm ci --dry-run, run
# alongside (it reads only package.json and the lockfile, and changes nothing), refuses a lockfile
# out of step with package.json, as npm ci would: the reconciled tree is then dropped. Fails
# (leaving no node_modules) when any of it fails; the caller then installs from scratch.
reconcile_install() {
  local dir="$1" prev="$2" npm_major check reconciled=0
  # npm 6 and older write fields into installed packages' package.json: never over hard links.
  npm_major="$(npm --version 2>/dev/null | cut -d. -f1)"
  [ "${npm_major:-0}" -ge 7 ] 2>/dev/null || return 1
  (cd "$dir" && npm ci --dry-run "${NPM_FLAGS[@]}") >/dev/null 2>&1 &
  check=$!
  if link_deps "$prev" "$dir" &&
    { [ ! -e "$dir/node_modules/.package-lock.json" ] ||
      cp --remove-destination "$prev/node_modules/.package-lock.json" "$dir/node_modules/.package-lock.json"; } &&
    (cd "$dir" && npm install --no-save "${NPM_FLAGS[@]}"); then
    reconciled=1
  fi
  if ! wait "$check"; then
    echo "install: the lockfile is out of step with package.json (npm ci --dry-run refused it)"
  elif [ "$reconciled" = 1 ]; then
    return 0
  else
    echo "install: reconciling $(basename "$prev")'s node_modules failed (npm's output above); installing from scratch"
  fi
  rm -rf "$dir/node_modules"
  return 1
}

# link_deps FROM_DIR DIR: DIR/node_modules as hard links of FROM_DIR's: instant, and safe, because an
# install replaces files instead of writing into them. Not their .cache: tools write caches there in
# place while a release runs (deploy-helper.js TREE_CACHE), which would change both releases.
link_deps() {
  cp -al "$1/node_modules" "$2/node_modules" && rm -rf "$2/node_modules/.cache"
}

# stage_install DIR PREV_DIR: production dependencies: the artifact's own; the previous release's
# (hard links) when they are the same; the previous release's reconciled with the new lockfile;
# else npm ci --omit=dev.
stage_install() {
  local dir="$1" prev="$2"
  if [ -d "$dir/node_modules" ]; then
    echo "install: the artifact brings node_modules"
  elif same_dependencies "$dir" "$prev"; then
    link_deps "$prev" "$dir"
    echo "install: same lockfile and schema as $(basename "$prev"), reused its node_modules"
  elif [ -n "$prev" ] && [ -d "$prev/node_modules" ] && [ -f "$dir/package-lock.json" ] && reconcile_install "$dir" "$prev"; then
    echo "install: $(basename "$prev")'s node_modules, reconciled with the new lockfile (npm install --no-save)"
  else
    (cd "$dir" && npm ci "${NPM_FLAGS[@]}") || fail "npm ci --omit=dev failed"
    echo "install: npm ci --omit=dev"
  fi
}

# --- stage: the layers of an artifact (infra/layers.ts) --------------------------------------

# tree_digest DIR: the deploy helper's digest of the tree DIR (the records infra/layers.ts computes
# from an artifact's entries).
tree_digest() { node "$HELPER" "$ECOSYSTEM" tree-digest "$1"; }

# deps_mark DIR DIGEST GOT: DIR/.deps-digest, when DIR's node_modules are the tree DIGEST names (GOT:
# their tree digest, deps_digest_start): a later release with the same dependencies then needs only
# its app layer uploaded.
deps_mark() {
  local dir="$1" digest="$2" got="$3"
  [ -n "$digest" ] || return 0
  if [ "$got" = "$digest" ]; then
    echo "$digest" >"$dir/.deps-digest"
  else
    echo "install: node_modules as extracted differ from the artifact's tree digest; the next release with them uploads its whole artifact"
  fi
}

# stage_deps DIR BASE_DIR DIGEST: DIR's node_modules as hard links of BASE_DIR's (only the app layer
# came). They count as the artifact's only once their tree digest matched DIGEST (deps_verify); until
# then DIR/.deps-unverified holds BASE_DIR's release and DIGEST, so that any later run checks them,
# a rollback to this release too (which knows no artifact digest of its own).
stage_deps() {
  local dir="$1" base="$2" digest="$3"
  [ ! -e "$dir/node_modules" ] || fail "the app layer brought node_modules; run pulumi up again: it uploads the whole artifact"
  link_deps "$base" "$dir" || fail "could not hard-link $base/node_modules into the new release"
  printf '%s %s\n' "$(basename "$base")" "$digest" >"$dir/.deps-unverified"
  echo "install: only the app layer was uploaded; node_modules hard-linked from release $(basename "$base"), checked against the artifact's tree digest before the release can go live"
}

# deps_digest_start NEW_DIR OUT: the tree digest of NEW_DIR/node_modules into OUT. Run as a job in
# the background (`deps_digest_start ... &`: $! is then the digest's own process), so that it reads
# the 200 MB of node_modules while the release goes on (migrate, preflight) instead of before it.
deps_digest_start() {
  exec node "$HELPER" "$ECOSYSTEM" tree-digest "$1/node_modules" >"$2"
}

# deps_verify NEW_DIR DIGEST GOT: the node_modules of a release that came as its app layer (NEW_DIR
# has .deps-unverified) must be the tree its marker names (GOT: their digest). If they are not, the
# kept release they were linked from changed on the VPS: no release keeps that mark, NEW_DIR goes
# (it never went live: this check comes first), and the release fails; the next up finds no base
# and uploads the whole artifact. Otherwise NEW_DIR is marked as a base itself. A release that came
# whole is marked when its digest matches (deps_mark).
deps_verify() {
  local dir="$1" digest="$2" got="$3" base
  if [ ! -f "$dir/.deps-unverified" ]; then
    deps_mark "$dir" "$digest" "$got"
    return 0
  fi
  read -r base digest <"$dir/.deps-unverified" || true
  if [ -z "$digest" ] || [ "$got" != "$digest" ]; then
    # Every release marked alike is suspect now: none is a base any more, so the next up sends it all.
    [ -z "$digest" ] || grep -lxF -- "$digest" "$(dirname "$dir")"/*/.deps-digest 2>/dev/null | xargs -r rm -f --
    rm -rf "$dir"
    fail "release $base's node_modules changed on the VPS since it was deployed (tree digest ${got:-none}, the artifact's ${digest:-none}): nothing was activated; run pulumi up again: it uploads the whole artifact"
  fi
  echo "$digest" >"$dir/.deps-digest"
  rm -f "$dir/.deps-unverified"
  echo "install: node_modules hard-linked from release $base are the artifact's own tree (digest checked)"
}

# stage_link DIR NEW_DIR ID SHA256: the shared .env link, a logs link to shared/logs (unless the
# artifact brings logs/), REVISION and the artifact's sha256, then DIR becomes NEW_DIR in one
# rename: a release folder is complete or absent. Why logs: PM2 keeps an app's log files from its
# first start; an app a hand-written deploy started logs to current/logs, which must still exist
# once current is a release (the seed's own script had to recreate that folder for the same reason).
stage_link() {
  local dir="$1" new="$2" id="$3" sha256="$4"
  ln -sfn ../../shared/.env "$dir/.env"
  [ -e "$dir/logs" ] || [ -L "$dir/logs" ] || ln -s ../../shared/logs "$dir/logs"
  echo "$sha256" >"$dir/.artifact-sha256"
  echo "$id" >"$dir/REVISION"
  mv -T "$dir" "$new"
}

# check_release NEW_DIR SCRIPT: a release folder that can start.
check_release() {
  [ -f "$1/REVISION" ] || fail "$1 is incomplete (no REVISION); remove it and deploy the artifact again"
  [ -f "$1/$2" ] || fail "$1/$2 does not exist; check app:script"
}

# --- migrate ----------------------------------------------------------------------------------

# migration_files DIR: a hash of DIR's Prisma migration files (prisma/**/migrations/*), or nothing
# when it has none.
migration_files() {
  local list
  list="$(cd "$1" 2>/dev/null && find . -path ./node_modules -prune -o -type f -path '*/migrations/*' -print0 | sort -z | xargs -0 -r sha256sum)"
  [ -z "$list" ] || printf '%s\n' "$list" | sha256sum | cut -d' ' -f1
}

# migrate_pending MIGRATE NEW_DIR PREV_DIR: whether MIGRATE must run for NEW_DIR. It is skipped only
# when it provably has nothing to do: NEW_DIR migrated already, or it is `prisma migrate deploy`
# and NEW_DIR's migration files are the same, non-empty set as PREV_DIR's, which migrated. Any
# other command runs on every new release (it alone knows what is pending).
migrate_pending() {
  local migrate="$1" new="$2" prev="$3" mine
  [ -n "$migrate" ] || return 1
  [ ! -f "$new/.migrated" ] || return 1
  case "$migrate" in *"prisma migrate deploy"*) ;; *) return 0 ;; esac
  [ -n "$prev" ] && [ -f "$prev/.migrated" ] || return 0
  mine="$(migration_files "$new")"
  [ -n "$mine" ] && [ "$mine" = "$(migration_files "$prev")" ] && return 1
  return 0
}

# backup BACKUP BACKUPS ID NEW_DIR KEEP: the backup before a migration: `auto` copies a SQLite
# DATABASE_URL, "" disables it, anything else is a command run in NEW_DIR with BACKUP_DIR set.
# Keeps twice KEEP backups.
backup() {
  local how="$1" dir="$2" id="$3" new="$4" keep="$5"
  case "$how" in
    "") echo "backup: disabled" ;;
    auto) node "$HELPER" "$ECOSYSTEM" sqlite-backup "$dir" "$id" ;;
    *) BACKUP_DIR="$dir" node "$HELPER" "$ECOSYSTEM" exec "$new" -- bash -c "$how" || fail "backup command failed" ;;
  esac
  find "$dir" -mindepth 1 -maxdepth 1 -type f -printf '%T@ %p\n' | sort -rn | awk -v k="$((keep * 2))" 'NR > k { sub(/^[^ ]+ /, ""); print }' |
    while IFS= read -r old; do rm -f "$old"; done
}

# run_migrate MIGRATE NEW_DIR LOG: runs MIGRATE in NEW_DIR with the app's environment; output in LOG.
# npm_config_yes=false: npx must never download a tool the release does not bring.
run_migrate() {
  npm_config_yes=false node "$HELPER" "$ECOSYSTEM" exec "$2" -- bash -c "$1" 2>&1 | tee "$3"
}

# Prisma records a failed migration and then refuses every later one (P3009) until it is resolved.
# It failed, so mark it rolled back, as `prisma migrate resolve --rolled-back` would (that command
# needs Prisma's native engine; `db execute` runs offline). Were it partly applied (no
# transactional DDL), the next release's migration says so.
# mark_failed_prisma_migrations NEW_DIR LOG
mark_failed_prisma_migrations() {
  local new="$1" log="$2" schema failed_migration sql
  schema="$(sed -n 's/^Prisma schema loaded from \(.*\)$/\1/p' "$log" | head -n 1)"
  sed -n -e 's/^Migration name: *\([^ ]*\).*/\1/p' -e 's/^The `\([^`]*\)` migration started at .* failed.*/\1/p' \
    -e 's/^ *with migration_name="\([^"]*\)".*/\1/p' "$log" | sort -u |
    while IFS= read -r failed_migration; do
      case "$failed_migration" in "" | *[!A-Za-z0-9_-]*) continue ;; esac
      sql="UPDATE _prisma_migrations SET rolled_back_at = CURRENT_TIMESTAMP WHERE migration_name = '$failed_migration' AND finished_at IS NULL AND rolled_back_at IS NULL;"
      if printf '%s\n' "$sql" | npm_config_yes=false node "$HELPER" "$ECOSYSTEM" exec "$new" -- \
        npx --no-install prisma db execute --stdin --schema "${schema:-prisma/schema.prisma}" >>"$log" 2>&1; then
        echo "migrate: marked the failed migration $failed_migration as rolled back, so a later release can migrate (the database copy from before this attempt is in $BACKUPS)" >&2
      else
        echo "migrate: could not mark $failed_migration as rolled back; on the VPS run: cd $new && npx prisma migrate resolve --rolled-back $failed_migration" >&2
      fi
    done
}

# migrate MIGRATE NEW_DIR LOG: runs the migration; a failed Prisma migration is marked rolled back
# and, when an earlier attempt's failure blocked it (P3009), tried once more. Marks NEW_DIR migrated.
migrate() {
  local cmd="$1" new="$2" log="$3"
  if ! run_migrate "$cmd" "$new" "$log"; then
    case "$cmd" in
      *"prisma migrate deploy"*)
        mark_failed_prisma_migrations "$new" "$log"
        if grep -q 'P3009' "$log" && run_migrate "$cmd" "$new" "$log"; then
          touch "$new/.migrated"
        fi
        ;;
    esac
    [ -f "$new/.migrated" ] || fail "migration failed: $cmd (output in $log)"
  fi
  touch "$new/.migrated"
}

# --- preflight --------------------------------------------------------------------------------

# preflight_start NEW_DIR SCRIPT PORT LOG: the new release alone on PORT with the live environment,
# in its own session (so the whole tree can be stopped), with an IPC channel as under PM2: a
# `process.send('ready')` creates NEW_DIR/.sends-ready (see ready_mode). Prints its pid.
preflight_start() {
  rm -f "$1/.sends-ready"
  VPS_RELEASE_READY_FILE="$1/.sends-ready" setsid node "$HELPER" "$ECOSYSTEM" exec "$1" "$3" -- node "$1/$2" >"$4" 2>&1 &
  echo "$!"
}

# preflight_stop PID: stops the preflight run's whole process group.
preflight_stop() {
  [ -n "$1" ] || return 0
  kill -TERM -- "-$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
}

# preflight_check PID PORT ID TIMEOUT SETTLE LOG: waits until the preflight run answers healthy as
# ID, then SETTLE seconds more in which it must stay healthy and alive; fails, with the tail of its
# output, when it exits, turns unhealthy or TIMEOUT passes first.
preflight_check() {
  local pid="$1" port="$2" id="$3" timeout="$4" settle="$5" log="$6"
  if ! node "$HELPER" "$ECOSYSTEM" health "http://127.0.0.1:$port$HEALTH_PATH" "$id" "$timeout" "$pid" "$settle"; then
    echo "--- tail of the preflight run ($log) ---" >&2
    tail -n 25 "$log" >&2
    fail "release $id did not become healthy when started alone on port $port; nothing live was touched"
  fi
}

# served_key: what a release's settle window depends on besides the release itself: the live
# environment and the PM2 ecosystem, as one sha256.
served_key() { { cat "$SHARED_ENV" "$ECOSYSTEM" 2>/dev/null || true; } | sha256sum | cut -d' ' -f1; }

# settle_for NEW_DIR SETTLE: the settle window of this preflight. None for a release that went
# live before, and answered healthy live, with the same .env and ecosystem (NEW_DIR/.served holds
# served_key of that time: a rollback's target stayed up then, under load); else SETTLE. The
# preflight's health check itself always runs.
settle_for() {
  if [ "$2" != 0 ] && [ -f "$1/.served" ] && [ "$(cat "$1/.served")" = "$(served_key)" ]; then
    echo "preflight: $(basename "$1") went live before with this .env and ecosystem: no settle window this time (app:healthSettle)" >&2
    echo 0
  else
    echo "$2"
  fi
}

# ready_mode NEW_DIR: says how PM2 will count the release's workers up. PM2 waits for each new
# worker's 'ready' on a reload (wait_ready, which PM2 keeps from an app's first start): an app that
# sent 'ready' in preflight sends it itself; for one that never did, the ready shim
# (shared/bin/ready-shim.js, preloaded into every worker) sends it when the worker listens, instead
# of PM2 waiting listen_timeout per worker for a message that never comes. The ecosystem file reads
# NEW_DIR/.sends-ready.
ready_mode() {
  # An app sends 'ready' right after it listens: give the message a moment to arrive.
  [ -f "$1/.sends-ready" ] || sleep 0.5
  if [ -f "$1/.sends-ready" ]; then
    echo "ready: the app sends 'ready' itself (PM2 wait_ready): a worker counts as up when it says so"
  else
    echo "ready: the app never sent 'ready' in preflight: the deploy's ready shim sends it for each worker as soon as it listens"
  fi
}

# --- publish ----------------------------------------------------------------------------------

# point_current ROOT CURRENT ID: CURRENT -> releases/ID, atomically (a new link renamed over it).
point_current() {
  ln -sfn "releases/$3" "$1/.current.tmp"
  mv -Tf "$1/.current.tmp" "$2"
}

# pm2_apply ECOSYSTEM APP LOG: startOrReload the app from the ecosystem (cluster mode: no dropped
# request; two workers reload at once: deploy-helper.js pm2-reload); on failure, PM2's output.
pm2_apply() {
  node "$HELPER" "$1" pm2-reload "$(command -v pm2)" "$2" >"$3" 2>&1 || { cat "$3" >&2; return 1; }
}

# live_health PORT ID TIMEOUT: the live port answers healthy as ID within TIMEOUT.
live_health() {
  node "$HELPER" "$ECOSYSTEM" health "http://127.0.0.1:$1$HEALTH_PATH" "$2" "$3" ||
    fail "the live app did not answer healthy as release $2"
}

# --- finish -----------------------------------------------------------------------------------

# pm2_daemon: the PM2 daemon's pid, when one runs.
pm2_daemon() {
  local pid
  pid="$(cat "${PM2_HOME:-$HOME/.pm2}/pm2.pid" 2>/dev/null || true)"
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then echo "$pid"; fi
}

# restore_other_apps DAEMON_AT_START: a daemon that died and was started again during the release
# (killed, OOM) runs only this app: the others in its dump come back with `pm2 resurrect`, and the
# dump must not be saved before that, or they would be lost.
restore_other_apps() {
  if [ "$(pm2_daemon)" != "$1" ] && [ -f "${PM2_HOME:-$HOME/.pm2}/dump.pm2" ]; then
    echo "pm2: the PM2 daemon was started anew during this release (pid ${1:-none} -> $(pm2_daemon)); pm2 resurrect brings back the other saved apps" >&2
    pm2 resurrect >/dev/null 2>&1 || echo "warning: pm2 resurrect failed; run it on the VPS, then pm2 save" >&2
  fi
}

# save DAEMON_AT_START: pm2 save, so a reboot (pm2 resurrect) brings back the live release.
save() {
  restore_other_apps "$1"
  pm2 save --force >/dev/null 2>&1 || echo "warning: pm2 save failed; after a reboot run: pm2 resurrect" >&2
}

# record REVISIONS ID PREV RESULT SOURCE: one JSON line in revisions.log (deploy-helper.js record).
record() { node "$HELPER" "$ECOSYSTEM" record "$@"; }

# prune RELEASES KEEP ID PREV INCOMING_DIR: keeps the KEEP newest releases (by the time they went
# live), and always ID, PREV and a release marked .keep (a taken-over one); uploads older than an
# hour go.
prune() {
  local releases="$1" keep="$2" id="$3" prev="$4" incoming="$5" old
  find "$releases" -mindepth 1 -maxdepth 1 -type d ! -name '.*' -printf '%T@ %f\n' | sort -rn | awk -v k="$keep" 'NR > k { print $2 }' |
    while IFS= read -r old; do
      if [ "$old" != "$id" ] && [ "$old" != "$prev" ] && [ ! -f "$releases/$old/.keep" ]; then
        rm -rf "${releases:?}/$old"
        echo "pruned release $old"
      fi
    done
  find "$incoming" -mindepth 1 -maxdepth 1 -mmin +60 -delete 2>/dev/null || true
}

# --- revert -----------------------------------------------------------------------------------

# revert ROOT CURRENT RELEASES PREV ECOSYSTEM APP LOG: after a failure past the switch: CURRENT back
# to PREV and reloaded; with no PREV, the app is stopped.
revert() {
  local root="$1" current="$2" releases="$3" prev="$4" ecosystem="$5" app="$6" log="$7"
  if [ -n "$prev" ] && [ -d "$releases/$prev" ]; then
    point_current "$root" "$current" "$prev"
    if pm2_apply "$ecosystem" "$app" "$log"; then
      echo "reverted: current -> $prev, reloaded; the previous release keeps serving" >&2
      return 0
    fi
    echo "revert: current -> $prev, but pm2 reload failed; run: pm2 startOrReload $ecosystem --only $app --update-env" >&2
    return 1
  fi
  rm -f "$current"
  pm2 delete "$app" >/dev/null 2>&1 || true
  echo "reverted: there was no earlier release; $app is stopped" >&2
}

# phase_line PHASES ID HOST STEPS_JSON: the last line of a fleet phase that does not publish,
# `PHASE {json}` (infra/protocol.ts).
phase_line() {
  printf 'PHASE {"phases":"%s","releaseId":"%s","host":"%s","steps":[%s]}\n' "$1" "$2" "$3" "$4"
}

# notify RESULT STEP STEPS_JSON: the activation's message to app:notify's webhook (deploy-helper.js
# notify), with the failed step's log tail; nothing when no URL is set. Sent from here, the VPS, so
# it goes out even when the deploy's SSH connection was cut. It never fails the release.
notify() {
  local result="$1" failed_step="$2" steps="$3" log="$RELEASE_LOG"
  case "$failed_step" in
    migrate | backup) log="$MIGRATE_LOG" ;;
    preflight) log="$PREFLIGHT_LOG" ;;
    reload) log="$PM2_LOG" ;;
  esac
  [ -s "$NOTIFY_URL" ] || return 0
  timeout 15 node "$HELPER" "$ECOSYSTEM" notify "$NOTIFY_URL" "$log" "$STACK" "$HOST_LABEL" "$RELEASE_ID" "${RUN[prev]}" "$SOURCE" "$result" "[$steps]" ||
    echo "warning: notify: the message was not sent; the deploy is not affected" >&2
}

# result_line ID PREV DIR STEPS_JSON: the protocol's last line, `RESULT {json}` (infra/protocol.ts).
result_line() {
  local id="$1" prev="$2" dir="$3" steps="$4" sha migrations
  sha="$(cat "$dir/.artifact-sha256" 2>/dev/null || true)"
  # The migrations the release carries (names only; a name that is not plain is left out of the JSON).
  migrations="$(find "$dir" -path "$dir/node_modules" -prune -o -type f -path '*/migrations/*/migration.sql' -print 2>/dev/null |
    awk -F/ '$(NF-1) ~ /^[A-Za-z0-9_.-]+$/ { print $(NF-1) }' | sort -u | awk '{ printf "%s\"%s\"", (NR > 1 ? "," : ""), $0 }')"
  printf 'RESULT {"releaseId":"%s","previousReleaseId":"%s","artifactSha256":"%s","activatedAt":"%s","migrations":[%s],"steps":[%s]}\n' \
    "$id" "$prev" "$sha" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$migrations" "$steps"
}

#!/usr/bin/env bash
# Baseline for `npm run bench`: the seed's deploy, the hand-written script this project replaces,
# as a plain bash script over ssh and scp. Faithful to it, weaknesses included: one folder
# (current/ is moved to backups/backup-DATE and the new build extracted in its place, so there is
# no release to switch back to atomically), dependencies installed on the VPS on every deploy,
# PM2 reloaded before anything checked that the new build starts, the health check only after
# the switch, and nothing undone when it fails (the manual option is seed-rollback.sh).
#
# One fix a user makes after the first outage: the PM2 logs are inside current/logs, which the
# move takes away, and every reloaded worker then crashes on its missing log folder; the script
# recreates the folder before the reload.
#
# The only additions are for the bench: `step NAME 1.23s` lines (as the release script of this
# project prints them) and the settings below taken from the environment instead of hard-coded.
#
# usage: seed-deploy.sh BUILD      BUILD: the built app, a folder (tarred here) or a .tar.gz
# env:   SEED_HOST SEED_SSH_PORT SEED_USER SEED_KEY SEED_KNOWN_HOSTS  the VPS and its SSH login
#        SEED_ROOT      the app's folder on the VPS (current/, backups/, shared/app.db)
#        SEED_APP       PM2 app name            SEED_APP_PORT  the app's PORT
set -euo pipefail

build="${1:?usage: seed-deploy.sh BUILD (a folder or a .tar.gz)}"
for v in SEED_HOST SEED_SSH_PORT SEED_USER SEED_KEY SEED_KNOWN_HOSTS SEED_ROOT SEED_APP SEED_APP_PORT; do
	[ -n "${!v:-}" ] || { echo "seed-deploy: $v is not set" >&2; exit 2; }
done
[[ "$SEED_APP" =~ ^[A-Za-z0-9._-]+$ ]] || { echo "seed-deploy: SEED_APP must be letters, digits, . _ -" >&2; exit 2; }
[[ "$SEED_APP_PORT" =~ ^[0-9]+$ ]] || { echo "seed-deploy: SEED_APP_PORT must be a number" >&2; exit 2; }
ssh_opts=(-o LogLevel=ERROR -i "$SEED_KEY" -o IdentitiesOnly=yes -o BatchMode=yes -o StrictHostKeyChecking=yes -o "UserKnownHostsFile=$SEED_KNOWN_HOSTS")
target="$SEED_USER@$SEED_HOST"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
if [ -d "$build" ]; then
	tar -czf "$work/app.tar.gz" -C "$build" .
else
	ln -s "$(realpath "$build")" "$work/app.tar.gz"
fi

# The seed's ecosystem.config.js (in its repository, shipped with every build).
cat >"$work/ecosystem.config.js" <<JS
const fs = require("fs");
const path = require("path");
const { parseEnv } = require("util");
let dotenv = {};
try { dotenv = parseEnv(fs.readFileSync(path.join(__dirname, ".env"), "utf8")); } catch (e) {}
module.exports = {
  apps: [{
    name: "$SEED_APP",
    script: "dist/server.js",
    cwd: __dirname,
    exec_mode: "cluster",
    instances: 2,
    env: Object.assign({}, dotenv, { NODE_ENV: "production", PORT: "$SEED_APP_PORT" }),
    out_file: path.join(__dirname, "logs", "out.log"),
    error_file: path.join(__dirname, "logs", "err.log"),
    merge_logs: true,
    time: true,
    wait_ready: true,
    listen_timeout: 15000,
    kill_timeout: 10000,
  }],
};
JS

scp -q -P "$SEED_SSH_PORT" "${ssh_opts[@]}" "$work/app.tar.gz" "$work/ecosystem.config.js" "$target:$SEED_ROOT/"

# The script goes as an argument, not on stdin: npm or npx reading stdin would eat the rest of it.
remote="$(cat <<'REMOTE'
set -euo pipefail
root="$1" app="$2" port="$3"
step_name="" step_t0=0
step() {
	local now
	now=$(date +%s%N)
	if [ -n "$step_name" ]; then awk -v n="$step_name" -v a="$step_t0" -v b="$now" 'BEGIN { printf "step %-10s %6.2fs\n", n, (b - a) / 1e9 }'; fi
	step_name="$1" step_t0=$now
}
cd "$root"
mkdir -p backups

step backup
if [ -d current ]; then
	mv current "backups/backup-$(date +%Y%m%d-%H%M%S)"
fi

step extract
mkdir current
tar -xzf app.tar.gz -C current
mv ecosystem.config.js current/
rm app.tar.gz
newest="$(find backups -mindepth 1 -maxdepth 1 -name 'backup-*' | sort | tail -n 1)"
if [ -n "$newest" ] && [ -f "$newest/.env" ]; then
	cp "$newest/.env" current/.env
fi
cd current

step install
npm ci --production --no-audit --no-fund --loglevel=error

step migrate
npx prisma migrate deploy >/dev/null

step reload
# The fix after the first outage: PM2 writes into current/logs, and the move above took it away.
mkdir -p logs
pm2 reload "$app" >/dev/null 2>&1 || pm2 start ecosystem.config.js >/dev/null

step save
pm2 save >/dev/null

step prune
find ../backups -mindepth 1 -maxdepth 1 -name 'backup-*' | sort -r | tail -n +6 | xargs -r rm -rf

step health
sleep 10
healthy=0
for _ in 1 2 3 4 5; do
	if curl -fsS "http://127.0.0.1:$port/health" >/dev/null; then healthy=1; break; fi
	sleep 3
done
step done
if [ "$healthy" != 1 ]; then
	echo "health check failed: http://127.0.0.1:$port/health; run seed-rollback.sh" >&2
	exit 1
fi
echo "deployed"
REMOTE
)"
ssh -p "$SEED_SSH_PORT" "${ssh_opts[@]}" "$target" \
	"bash -c $(printf '%q' "$remote") seed-deploy $(printf '%q ' "$SEED_ROOT" "$SEED_APP" "$SEED_APP_PORT")"

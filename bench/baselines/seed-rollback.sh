#!/usr/bin/env bash
# Baseline for `npm run bench`: the seed's manual rollback option. Copies the newest backup over
# current/ and restarts the app (all workers at once: a restart, not a reload). The environment is
# seed-deploy.sh's.
set -euo pipefail
for v in SEED_HOST SEED_SSH_PORT SEED_USER SEED_KEY SEED_KNOWN_HOSTS SEED_ROOT SEED_APP; do
	[ -n "${!v:-}" ] || { echo "seed-rollback: $v is not set" >&2; exit 2; }
done
remote="$(cat <<'REMOTE'
set -euo pipefail
root="$1" app="$2"
step_name="" step_t0=0
step() {
	local now
	now=$(date +%s%N)
	if [ -n "$step_name" ]; then awk -v n="$step_name" -v a="$step_t0" -v b="$now" 'BEGIN { printf "step %-10s %6.2fs\n", n, (b - a) / 1e9 }'; fi
	step_name="$1" step_t0=$now
}
cd "$root"
newest="$(find backups -mindepth 1 -maxdepth 1 -name 'backup-*' | sort | tail -n 1)"
[ -n "$newest" ] || { echo "no backup to roll back to" >&2; exit 1; }
step copy
rm -rf current
cp -a "$newest" current
mkdir -p current/logs
step restart
pm2 restart "$app" >/dev/null
step save
pm2 save >/dev/null
step done
echo "rolled back to $newest"
REMOTE
)"
ssh -o LogLevel=ERROR -p "$SEED_SSH_PORT" -i "$SEED_KEY" -o IdentitiesOnly=yes -o BatchMode=yes -o StrictHostKeyChecking=yes \
	-o "UserKnownHostsFile=$SEED_KNOWN_HOSTS" "$SEED_USER@$SEED_HOST" \
	"bash -c $(printf '%q' "$remote") seed-rollback $(printf '%q ' "$SEED_ROOT" "$SEED_APP")"

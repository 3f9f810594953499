#!/usr/bin/env bash
# npm run local:up / local:down: a throwaway VPS on this machine.
#   up:   a private sshd on 127.0.0.1 (own config, host key, port, pid file; key-only), a deploy
#         user (a dedicated unprivileged one when run as root, the current user otherwise) with
#         Node and PM2, and the `local` stack's vps:* config (private key as a secret, host key pinned).
#   down: stops the user's PM2 daemon and the sshd. Keys, the user and its files stay.
#   purge: down, then removes the VPS state folder and (as root) the deploy user with its home.
#   env:  prints the connection as shell assignments (for tests and scripts).
# LOCAL_VPS_USER names the deploy user (root only; default vpsdeploy); CI gives each run its own.
# Every step's output goes to .tools/logs/; the deploy user's commands run with a clean
# environment of their own (none of the caller's npm_config_*, HOME or PATH).
# Idempotent: `up` on a running VPS returns in about a second.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

VPS_DIR="${VPS_STATE_DIR:-$TOOLS_DIR/vps}"
PM2_VERSION="6.0.14"
SSHD="${SSHD:-/usr/sbin/sshd}"
if [ "$(id -u)" = 0 ]; then
	VPS_USER="${LOCAL_VPS_USER:-vpsdeploy}"
else
	VPS_USER="$(id -un)"
fi

user_home() { getent passwd "$VPS_USER" | cut -d: -f6; }

# The machine's Node and npm, which the deploy user uses to install its own Node and PM2.
MACHINE_NODE_DIR="$(dirname "$(command -v node || echo /usr/bin/node)")"

# as_user runs a command as the deploy user in a clean environment: its own HOME, a plain PATH
# (plus the machine's Node), the CA file the machine trusts, and nothing else of the caller's.
as_user() {
	local env=(env -i HOME="$(user_home)" USER="$VPS_USER" LOGNAME="$VPS_USER" SHELL=/bin/bash LANG=C.UTF-8
		PATH="$MACHINE_NODE_DIR:/usr/local/bin:/usr/bin:/bin")
	if [ -n "${NODE_EXTRA_CA_CERTS:-}" ]; then env+=(NODE_EXTRA_CA_CERTS="$NODE_EXTRA_CA_CERTS"); fi
	if [ "$(id -u)" = 0 ]; then
		runuser -u "$VPS_USER" -- "${env[@]}" "$@"
	else
		"${env[@]}" "$@"
	fi
}

sshd_pid() {
	local pid
	[ -f "$VPS_DIR/sshd.pid" ] || return 1
	pid="$(cat "$VPS_DIR/sshd.pid")"
	kill -0 "$pid" 2>/dev/null && echo "$pid"
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

free_port() {
	node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'
}

ensure_user() {
	if [ "$(id -u)" != 0 ]; then
		return
	fi
	if ! getent passwd "$VPS_USER" >/dev/null; then
		log_step "creating deploy user $VPS_USER"
		useradd --create-home --shell /bin/bash "$VPS_USER"
	fi
	# With UsePAM no, sshd treats a user whose password field is "!" as locked.
	usermod -p '*' "$VPS_USER"
}

# ensure_runtime installs Node and PM2 in the deploy user's home, as one would on a bare VPS.
# Its npm settings (.npmrc) are written first; the install has a time limit.
NPM_TIMEOUT=900
runtime_ready() {
	local prefix
	prefix="$(user_home)/.vps-node"
	[ -x "$prefix/node_modules/.bin/pm2" ] && [ -x "$prefix/node_modules/node-$(node_arch)/bin/node" ]
}
ensure_runtime() {
	local home prefix rc=0
	home="$(user_home)"
	prefix="$home/.vps-node"
	as_user node -v >/dev/null 2>&1 ||
		die "$VPS_USER cannot run the machine's node ($MACHINE_NODE_DIR/node): install Node.js where every user can run it (e.g. /usr/bin)"
	as_user mkdir -p "$prefix"
	echo "npm install as $VPS_USER (limit ${NPM_TIMEOUT}s): node-$(node_arch)@$NODE_VERSION pm2@$PM2_VERSION"
	(cd "$home" && as_user timeout --kill-after=10 "$NPM_TIMEOUT" npm install --no-audit --no-fund --no-save \
		--loglevel=http --prefix "$prefix" "node-$(node_arch)@$NODE_VERSION" "pm2@$PM2_VERSION") || rc=$?
	[ "$rc" != 124 ] || die "npm install as $VPS_USER did not finish within ${NPM_TIMEOUT}s: check that the registry ($(npm config get registry)) answers"
	[ "$rc" = 0 ] || die "npm install as $VPS_USER failed (exit $rc); its output is above"
	runtime_ready || die "npm install as $VPS_USER finished, but $prefix has no node or pm2"
}

ensure_path_line() {
	local home line
	home="$(user_home)"
	line="export PATH=\"\$HOME/.vps-node/node_modules/node-$(node_arch)/bin:\$HOME/.vps-node/node_modules/.bin:\$PATH\""
	# Non-interactive SSH sessions stop at the top of Debian's .bashrc, so the line must come first.
	if [ "$(id -u)" = 0 ] && ! head -n1 "$home/.bashrc" 2>/dev/null | grep -qF "$line"; then
		# shellcheck disable=SC2016 # the inner script expands its own arguments
		as_user bash -c 'f="$1"; l="$2"; { echo "$l"; grep -vF "$l" "$f" 2>/dev/null || true; } >"$f.new" && mv "$f.new" "$f"' \
			_ "$home/.bashrc" "$line"
	fi
	# Our sshd also reads ~/.ssh/environment (PermitUserEnvironment), which covers a non-root
	# user without touching their .bashrc.
	as_user mkdir -p "$home/.ssh"
	as_user chmod 700 "$home/.ssh"
	{
		printf 'PATH=%s\n' "$home/.vps-node/node_modules/node-$(node_arch)/bin:$home/.vps-node/node_modules/.bin:/usr/local/bin:/usr/bin:/bin"
		# A machine behind a TLS-inspecting proxy trusts it through these; the VPS user needs the same.
		if [ -n "${NODE_EXTRA_CA_CERTS:-}" ]; then printf 'NODE_EXTRA_CA_CERTS=%s\n' "$NODE_EXTRA_CA_CERTS"; fi
	} | as_user tee "$home/.ssh/environment" >/dev/null
}

# ensure_npmrc gives the deploy user this machine's registry settings (registry, CA file, proxies),
# so `npm ci` in a release reaches the same registry the machine does.
ensure_npmrc() {
	local home key value
	home="$(user_home)"
	{
		for key in registry cafile proxy https-proxy strict-ssl; do
			value="$(npm config get "$key" 2>/dev/null || true)"
			case "$value" in "" | null | undefined) continue ;; esac
			printf '%s=%s\n' "$key" "$value"
		done
		printf 'fund=false\naudit=false\nupdate-notifier=false\n'
	} | as_user tee "$home/.npmrc" >/dev/null
	as_user chmod 600 "$home/.npmrc"
}

ensure_keys() {
	local home
	home="$(user_home)"
	mkdir -p "$VPS_DIR"
	chmod 700 "$VPS_DIR"
	[ -f "$VPS_DIR/ssh_host_ed25519_key" ] || ssh-keygen -q -t ed25519 -N '' -C local-vps-host -f "$VPS_DIR/ssh_host_ed25519_key"
	[ -f "$VPS_DIR/id_ed25519" ] || ssh-keygen -q -t ed25519 -N '' -C local-vps-deploy -f "$VPS_DIR/id_ed25519"
	local pub
	pub="$(cat "$VPS_DIR/id_ed25519.pub")"
	if ! grep -qF "$pub" "$home/.ssh/authorized_keys" 2>/dev/null; then
		echo "$pub" | as_user tee -a "$home/.ssh/authorized_keys" >/dev/null
	fi
	as_user chmod 600 "$home/.ssh/authorized_keys"
}

write_sshd_config() {
	local port="$1"
	cat >"$VPS_DIR/sshd_config" <<EOF
Port $port
ListenAddress 127.0.0.1
HostKey $VPS_DIR/ssh_host_ed25519_key
PidFile $VPS_DIR/sshd.pid
AuthorizedKeysFile .ssh/authorized_keys
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
PermitRootLogin no
AllowUsers $VPS_USER
PermitUserEnvironment yes
Subsystem sftp internal-sftp
MaxStartups 100:30:200
MaxSessions 64
ClientAliveInterval 30
EOF
}

start_sshd() {
	[ -x "$SSHD" ] || die "no sshd at $SSHD: install it (Debian/Ubuntu: apt-get install openssh-server)"
	local port
	port="$(cat "$VPS_DIR/port" 2>/dev/null || true)"
	if [ -z "$port" ] || port_open "$port"; then
		port="$(free_port)"
		echo "$port" >"$VPS_DIR/port"
	fi
	write_sshd_config "$port"
	if [ "$(id -u)" = 0 ]; then
		mkdir -p /run/sshd
		chmod 755 /run/sshd
	fi
	"$SSHD" -t -f "$VPS_DIR/sshd_config" || die "sshd refused $VPS_DIR/sshd_config"
	"$SSHD" -f "$VPS_DIR/sshd_config" -E "$VPS_DIR/sshd.log"
	for _ in $(seq 1 50); do
		port_open "$port" && return
		sleep 0.1
	done
	die "sshd did not start on 127.0.0.1:$port; see $VPS_DIR/sshd.log"
}

host_key() { cut -d' ' -f1,2 "$VPS_DIR/ssh_host_ed25519_key.pub"; }

vps_root() { echo "$(user_home)/htdocs/api.local"; }

ssh_vps() {
	ssh -q -i "$VPS_DIR/id_ed25519" -p "$(cat "$VPS_DIR/port")" \
		-o IdentitiesOnly=yes -o BatchMode=yes -o StrictHostKeyChecking=yes \
		-o UserKnownHostsFile="$VPS_DIR/known_hosts" "$VPS_USER@127.0.0.1" "$@"
}

write_known_hosts() {
	echo "[127.0.0.1]:$(cat "$VPS_DIR/port") $(host_key)" >"$VPS_DIR/known_hosts"
}

set_stack_config() {
	local p="$PROJECT_ROOT/scripts/pulumi.sh"
	cd "$PROJECT_ROOT"
	"$p" stack select --create -s local
	"$p" config set -s local vps:host 127.0.0.1
	"$p" config set -s local vps:port "$(cat "$VPS_DIR/port")"
	"$p" config set -s local vps:user "$VPS_USER"
	"$p" config set -s local vps:hostKey "$(host_key)"
	"$p" config set -s local vps:root "$(vps_root)"
	"$p" config set -s local --secret vps:privateKey <"$VPS_DIR/id_ed25519"
}

# write_stack_config sets the `local` stack's vps:* keys when they differ from what was written last.
write_stack_config() {
	local want stamp="$VPS_DIR/stack-config.stamp"
	want="$(cat "$VPS_DIR/port") $VPS_USER $(host_key) $(vps_root) ${PULUMI_BACKEND_URL:-default}"
	if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && [ -f "$PROJECT_ROOT/Pulumi.local.yaml" ]; then
		return
	fi
	run_step "local stack vps:* config" set_stack_config
	echo "$want" >"$stamp"
}

cmd_up() {
	mkdir -p "$VPS_DIR"
	if ! sshd_pid >/dev/null; then
		local t0
		t0="$(now_ms)"
		log_step "starting the local VPS (deploy user $VPS_USER; step logs: ${LOG_DIR#"$PROJECT_ROOT"/}/)"
		run_step "deploy user $VPS_USER" ensure_user
		run_step "npm settings for $VPS_USER" ensure_npmrc
		if ! runtime_ready; then
			run_step "node $NODE_VERSION + pm2 $PM2_VERSION" ensure_runtime
		fi
		run_step "PATH and ssh keys" ensure_login
		run_step "sshd on 127.0.0.1" start_sshd
		run_step "node and pm2 over ssh" check_vps
		log_step "local VPS up in $(seconds_since "$t0")s"
	fi
	if [ "${LOCAL_VPS_NO_STACK:-}" != 1 ]; then
		write_stack_config
	fi
	echo "local VPS: $VPS_USER@127.0.0.1:$(cat "$VPS_DIR/port"), root $(vps_root)"
}

ensure_login() {
	ensure_path_line
	ensure_keys
}

check_vps() {
	write_known_hosts
	ssh_vps 'node -v && pm2 -v' ||
		die "the local VPS answers, but node or pm2 is missing for $VPS_USER; see $VPS_DIR/sshd.log"
	# As at boot (pm2 startup): bring back the saved processes when no PM2 daemon runs.
	# shellcheck disable=SC2016 # expanded on the VPS
	ssh_vps 'pid="$(cat ~/.pm2/pm2.pid 2>/dev/null)"; if ! kill -0 "${pid:-0}" 2>/dev/null && [ -f ~/.pm2/dump.pm2 ]; then pm2 resurrect >/dev/null 2>&1 || true; fi'
}

cmd_down() {
	local pid
	if pid="$(sshd_pid)"; then
		ssh_vps 'pm2 kill >/dev/null 2>&1 || true' || true
		kill "$pid"
		echo "local VPS stopped"
	else
		echo "local VPS is not running"
	fi
}

# cmd_purge: down, then nothing of this VPS is left (CI runs it at the end of every run).
cmd_purge() {
	cmd_down
	if [ "$(id -u)" = 0 ] && [ "$VPS_USER" != root ] && getent passwd "$VPS_USER" >/dev/null; then
		pkill -KILL -u "$VPS_USER" 2>/dev/null || true
		sleep 0.2
		userdel --remove "$VPS_USER" 2>/dev/null || userdel "$VPS_USER"
		echo "removed deploy user $VPS_USER and its home"
	fi
	rm -rf "$VPS_DIR"
	echo "removed $VPS_DIR"
}

cmd_env() {
	sshd_pid >/dev/null || die "the local VPS is not running: npm run local:up"
	printf 'VPS_HOST=127.0.0.1\nVPS_PORT=%s\nVPS_USER=%s\nVPS_KEY_FILE=%s\nVPS_HOST_KEY=%q\nVPS_ROOT=%s\nVPS_KNOWN_HOSTS=%s\nVPS_STATE_DIR=%s\n' \
		"$(cat "$VPS_DIR/port")" "$VPS_USER" "$VPS_DIR/id_ed25519" "$(host_key)" "$(vps_root)" "$VPS_DIR/known_hosts" "$VPS_DIR"
}

case "${1:-}" in
up) cmd_up ;;
down) cmd_down ;;
purge) cmd_purge ;;
env) cmd_env ;;
*) die "usage: local-vps.sh up|down|purge|env" ;;
esac

#!/usr/bin/env bash
# npm run local:up / local:down: a throwaway VPS on this machine.
#   up:   a private sshd on 127.0.0.1 (own config, host key, port, pid file; key-only), a deploy
#         user (a dedicated unprivileged one when run as root, the current user otherwise) with
#         Node and PM2, and the `local` stack's vps:* config (private key as a secret, host key pinned).
#   down: stops the user's PM2 daemon and the sshd. Keys, the user and its files stay.
#   purge: down, then removes the VPS state folder and (as root) the deploy user with its home.
#   env:  prints the connection as shell assignments (for tests and scripts).
# With --hosts N (up) or --hosts / --fleet (down, purge, env) it runs the local fleet instead:
# N hosts, each in a network namespace of its own, behind a balancer (scripts/local-fleet.sh).
# LOCAL_VPS_USER names the deploy user (root only; default vpsdeploy); CI gives each run its own.
# Every step's output goes to .tools/logs/; the deploy user's commands run with a clean
# environment of their own (none of the caller's npm_config_*, HOME or PATH).
# Idempotent: `up` on a running VPS returns in about a second.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

VPS_DIR="${VPS_STATE_DIR:-$TOOLS_DIR/vps}"
if [ "$(id -u)" = 0 ]; then
	VPS_USER="${LOCAL_VPS_USER:-vpsdeploy}"
else
	VPS_USER="$(id -un)"
fi
# shellcheck source=scripts/vps-lib.sh
source "$PROJECT_ROOT/scripts/vps-lib.sh"

sshd_pid() { pid_in "$VPS_DIR/sshd.pid"; }

ensure_keys() {
	mkdir -p "$VPS_DIR"
	chmod 700 "$VPS_DIR"
	[ -f "$VPS_DIR/ssh_host_ed25519_key" ] || ssh-keygen -q -t ed25519 -N '' -C local-vps-host -f "$VPS_DIR/ssh_host_ed25519_key"
	[ -f "$VPS_DIR/id_ed25519" ] || ssh-keygen -q -t ed25519 -N '' -C local-vps-deploy -f "$VPS_DIR/id_ed25519"
	authorize_key "$VPS_DIR/id_ed25519.pub"
}

write_sshd_config() {
	sshd_config_for "$1" 127.0.0.1 "$VPS_DIR/ssh_host_ed25519_key" "$VPS_DIR/sshd.pid" >"$VPS_DIR/sshd_config"
}

start_sshd() {
	ensure_sshd_dirs
	local port
	port="$(cat "$VPS_DIR/port" 2>/dev/null || true)"
	if [ -z "$port" ] || port_open "$port"; then
		port="$(free_port 127.0.0.1)"
		echo "$port" >"$VPS_DIR/port"
	fi
	write_sshd_config "$port"
	"$SSHD" -t -f "$VPS_DIR/sshd_config" || die "sshd refused $VPS_DIR/sshd_config"
	"$SSHD" -f "$VPS_DIR/sshd_config" -E "$VPS_DIR/sshd.log"
	wait_for_port "$port" || die "sshd did not start on 127.0.0.1:$port; see $VPS_DIR/sshd.log"
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
	# As at boot (pm2 startup), before anything starts an empty PM2 daemon: the saved apps come back.
	ssh_vps "$VPS_RESURRECT_PM2"
	ssh_vps "$VPS_CHECK_RUNTIME" ||
		die "the local VPS answers, but node or pm2 is missing for $VPS_USER; see $VPS_DIR/sshd.log"
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

# parse_flags ARGS...: the flags after the command. --hosts [N] (or --fleet) and --app-port P select
# the local fleet (scripts/local-fleet.sh), so that `npm run local:up -- --hosts 3` needs no script
# of its own in package.json. Sets FLEET (true/false) and FLEET_ARGS (the fleet script's arguments).
FLEET=false
FLEET_ARGS=()
parse_flags() {
	local app_port=""
	while [ $# -gt 0 ]; do
		case "$1" in
		--hosts | --fleet)
			FLEET=true
			if [[ "${2:-}" =~ ^[0-9]+$ ]]; then
				FLEET_ARGS+=("$2")
				shift
			fi
			;;
		--hosts=*)
			FLEET=true
			FLEET_ARGS+=("${1#--hosts=}")
			;;
		--app-port)
			[ $# -ge 2 ] || die "--app-port needs a port"
			app_port="$2"
			shift
			;;
		--app-port=*) app_port="${1#--app-port=}" ;;
		*) die "unknown flag $1 (known: --hosts N, --fleet, --app-port P)" ;;
		esac
		shift
	done
	if [ -n "$app_port" ]; then
		$FLEET || die "--app-port is for the local fleet: add --hosts N"
		FLEET_ARGS+=(--app-port "$app_port")
	fi
}

main() {
	local cmd="${1:-}"
	[ $# -eq 0 ] || shift
	parse_flags "$@"
	if $FLEET; then
		exec bash "$PROJECT_ROOT/scripts/local-fleet.sh" "$cmd" "${FLEET_ARGS[@]}"
	fi
	case "$cmd" in
	up) cmd_up ;;
	down) cmd_down ;;
	purge) cmd_purge ;;
	env) cmd_env ;;
	*) die "usage: local-vps.sh up|down|purge|env [--hosts N [--app-port P]] (with --hosts: the local fleet, see scripts/local-fleet.sh)" ;;
	esac
}

main "$@"

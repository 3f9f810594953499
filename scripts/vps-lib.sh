# shellcheck shell=bash disable=SC2034
# What a local VPS and every host of the local fleet share: the deploy user, its Node and PM2, its
# npm settings, PATH and authorized key, and the key-only sshd config. Sourced (after lib.sh) by
# local-vps.sh and local-fleet.sh, never run; each sets VPS_USER before calling anything here.

PM2_VERSION="6.0.14"
SSHD="${SSHD:-/usr/sbin/sshd}"

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

# pid_in FILE: prints the pid in FILE when that process is alive.
pid_in() {
	local pid
	[ -f "$1" ] || return 1
	pid="$(head -n1 "$1")"
	[ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && echo "$pid"
}

# port_open PORT [ADDRESS]: whether something accepts TCP connections there (default 127.0.0.1).
port_open() { (exec 3<>"/dev/tcp/${2:-127.0.0.1}/$1") 2>/dev/null; }

# wait_for_port PORT [ADDRESS]: up to 5 s for a daemon that was just started to listen.
wait_for_port() {
	for _ in $(seq 1 50); do
		port_open "$@" && return
		sleep 0.1
	done
	return 1
}

# free_port [ADDRESS]: a TCP port nothing listens on at ADDRESS (default 127.0.0.1), as the kernel picks it.
free_port() {
	node -e 'const s=require("net").createServer();s.listen(0,process.argv[1],()=>{console.log(s.address().port);s.close()})' \
		"${1:-127.0.0.1}"
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

# runtime_path HOME: the deploy user's PATH, its own Node and PM2 first.
runtime_path() {
	printf '%s\n' "$1/.vps-node/node_modules/node-$(node_arch)/bin:$1/.vps-node/node_modules/.bin:/usr/local/bin:/usr/bin:/bin"
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
		printf 'PATH=%s\n' "$(runtime_path "$home")"
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

# authorize_key PUBFILE: lets the key in PUBFILE log in as the deploy user (once).
authorize_key() {
	local home pub
	home="$(user_home)"
	pub="$(cat "$1")"
	if ! grep -qF "$pub" "$home/.ssh/authorized_keys" 2>/dev/null; then
		echo "$pub" | as_user tee -a "$home/.ssh/authorized_keys" >/dev/null
	fi
	as_user chmod 600 "$home/.ssh/authorized_keys"
}

# sshd_config_for PORT LISTEN_ADDRESS HOST_KEY PID_FILE: a key-only sshd for the deploy user alone,
# which reads ~/.ssh/environment and allows as many sessions as a parallel deploy opens.
sshd_config_for() {
	cat <<EOF
Port $1
ListenAddress $2
HostKey $3
PidFile $4
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

# sshd's privilege separation directory; a fresh container may lack it.
ensure_sshd_dirs() {
	[ -x "$SSHD" ] || die "no sshd at $SSHD: install it (Debian/Ubuntu: apt-get install openssh-server)"
	if [ "$(id -u)" = 0 ]; then
		mkdir -p /run/sshd
		chmod 755 /run/sshd
	fi
}

# Run on the VPS after a start: node and pm2 answer for the deploy user's sessions, and, as at boot
# (pm2 startup), the saved processes come back when no PM2 daemon runs.
VPS_CHECK_RUNTIME='node -v && pm2 -v'
# shellcheck disable=SC2016 # expanded on the VPS
# (Without a pid file, `kill -0 0` would ask about the session's own process group and succeed.)
VPS_RESURRECT_PM2='pid="$(cat ~/.pm2/pm2.pid 2>/dev/null)"; if ! { [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; } && [ -f ~/.pm2/dump.pm2 ]; then pm2 resurrect >/dev/null 2>&1 || true; fi'

#!/usr/bin/env bash
# The local fleet: N throwaway VPS hosts on this machine, for the end-to-end tests and the demo.
#   up [N] [--app-port P]: N hosts (default: as many as last time), each in a network namespace of its
#         own (vf<tag>h<i>, address 10.A.B.(10+i) on a bridge 10.A.B.1/24) and mount and UTS
#         namespaces in which /home/USER, /tmp, /etc/hosts, resolv.conf and hostname, and the host
#         name (fleet-h<i>) are its own; in them an sshd on port
#         22 (own host key, key-only) for the one deploy user, with Node and PM2 as on the local VPS.
#         Plus one PostgreSQL cluster on 10.A.B.1, an nginx balancer on 127.0.0.1 forwarding to
#         port P (default 3000) of every host, and the `local-fleet` stack's vps:* config.
#   down: stops every host's PM2 daemon and sshd, nginx and postgres; removes the namespaces and the
#         bridge. Keys, homes, addresses, ports and the database stay for the next `up`.
#   purge: down, then removes the deploy user and the state folder.
#   env:  prints the fleet as shell assignments (for tests and scripts).
#   stop-sshd I / start-sshd I: stop or start host I's sshd alone (its PM2 apps keep running).
#   exec I -- CMD...: runs CMD as the deploy user on host I (its namespaces, its home).
# Root only. State: FLEET_STATE_DIR (default .tools/fleet, or /var/tmp/vps-fleet-<hash> for a
# checkout that postgres and nginx cannot enter); deploy user: LOCAL_FLEET_USER (default
# vpsfleet); CI gives each run its own. Every step's output goes to .tools/logs/fleet-*.log.
# Idempotent: `up` on a running fleet returns in about a second.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# searchable_by_all DIR: whether every folder from / down to DIR lets others pass (o+x).
searchable_by_all() {
	local d
	d="$(realpath -m "$1")"
	while [ "$d" != / ]; do
		[ -n "$(find "$d" -maxdepth 0 -perm -o=x 2>/dev/null)" ] || return 1
		d="$(dirname "$d")"
	done
}
# The state folder must be reachable by postgres and nginx's workers. A checkout they cannot enter
# (e.g. under /root) keeps it in /var/tmp instead, one per checkout.
default_state_dir() {
	if [ ! -e "$PROJECT_ROOT" ] || searchable_by_all "$PROJECT_ROOT"; then
		echo "$TOOLS_DIR/fleet"
	else
		echo "/var/tmp/vps-fleet-$(printf '%s' "$PROJECT_ROOT" | sha256sum | cut -c1-12)"
	fi
}
# Absolute and without symlinks: the hosts' mounts and sshd configs name it.
FLEET_DIR="$(realpath -m "${FLEET_STATE_DIR:-$(default_state_dir)}")"
VPS_USER="${LOCAL_FLEET_USER:-vpsfleet}"
# shellcheck source=scripts/vps-lib.sh
source "$PROJECT_ROOT/scripts/vps-lib.sh"

FLEET_STACK=local-fleet
DEFAULT_APP_PORT=3000
MAX_HOSTS=200
# The one role and database the hosts' apps use.
PG_NAME=fleet
# nginx runs as root (it listens on the bridge for the hosts' npm traffic); its workers as Debian's web user.
NGINX_WORKER_USER=www-data
NGINX="${NGINX:-/usr/sbin/nginx}"
NGINX_STREAM_MODULE=/usr/lib/nginx/modules/ngx_stream_module.so
# Fleets of other checkouts pick their subnets under the same lock.
NET_LOCK=/run/lock/local-fleet-net.lock

# --- the state folder: every name and number a later `up` must find again ----------------------

state() { cat "$FLEET_DIR/$1" 2>/dev/null; }
fleet_tag() { state tag; }
net_prefix() { state net; }
gateway() { echo "$(net_prefix).1"; }
bridge_name() { echo "vf$(fleet_tag)br"; }
host_count() { state hosts || echo 0; }
app_port() { state app_port || echo "$DEFAULT_APP_PORT"; }
host_ns() { echo "vf$(fleet_tag)h$1"; }
host_ip() { echo "$(net_prefix).$((10 + $1))"; }
host_dir() { echo "$FLEET_DIR/h$1"; }
host_name() { echo "fleet-h$1"; }
host_key() { cut -d' ' -f1,2 "$(host_dir "$1")/ssh_host_ed25519_key.pub"; }
mnt_ns_file() { echo "$FLEET_DIR/ns/h$1.mnt"; }
uts_ns_file() { echo "$FLEET_DIR/ns/h$1.uts"; }
fleet_root() { echo "$(user_home)/htdocs/api.local"; }
pg_dir() { echo "$FLEET_DIR/pg"; }
lb_dir() { echo "$FLEET_DIR/lb"; }

# state_under_tmp: the state folder's path under /tmp, if it is there.
state_under_tmp() {
	case "$FLEET_DIR" in /tmp/*) echo "${FLEET_DIR#/tmp/}" ;; esac
}

random_hex() { od -An -tx1 -N"$1" /dev/urandom | tr -d ' \n'; }

require_root() {
	[ "$(id -u)" = 0 ] || die "local-fleet.sh must run as root: it creates network namespaces, a bridge, mounts and a deploy user. Run it as root, or with sudo: sudo bash scripts/local-fleet.sh ${CMD_LINE:-up N}"
}

check_user_name() {
	{ [[ "$VPS_USER" =~ ^[a-z_][a-z0-9_-]{0,31}$ ]] && [ "$VPS_USER" != root ]; } ||
		die "LOCAL_FLEET_USER=$VPS_USER: use up to 32 lowercase letters, digits, _ or - (not root), starting with a letter or _"
}

# The state folder must be searchable by postgres and nginx's workers (they reach their own
# folders in it); the keys and homes in it are closed to them.
ensure_state_dir() {
	local home
	home="$(user_home || true)"
	case "$FLEET_DIR/" in
	"${home:-/home/$VPS_USER}"/* | /home/"$VPS_USER"/*) die "FLEET_STATE_DIR ($FLEET_DIR) cannot be in the deploy user's home: each host mounts its own home there" ;;
	esac
	if [ ! -d "$FLEET_DIR" ]; then
		mkdir -p "$FLEET_DIR"
		# purge removes only a folder that carries this mark.
		: >"$FLEET_DIR/.local-fleet"
	fi
	chmod 711 "$FLEET_DIR"
}

# --- Debian packages ----------------------------------------------------------------------------

pg_bin_dir() {
	local d
	d="$(find /usr/lib/postgresql -mindepth 2 -maxdepth 2 -name bin 2>/dev/null | sort -V | tail -n1)"
	[ -n "$d" ] && [ -x "$d/pg_ctl" ] && echo "$d"
}

# nginx_stream_line: how this nginx gets its stream module (Debian: a dynamic module package).
nginx_stream_line() {
	if [ -f "$NGINX_STREAM_MODULE" ]; then
		echo "load_module $NGINX_STREAM_MODULE;"
	elif ! "$NGINX" -V 2>&1 | grep -Eq -- '--with-stream( |$)'; then
		return 1
	fi
}

fleet_missing_packages() {
	command -v ip >/dev/null || echo iproute2
	{ command -v unshare && command -v nsenter && command -v flock && command -v mountpoint; } >/dev/null || echo util-linux
	[ -x "$SSHD" ] || echo openssh-server
	command -v ssh-keygen >/dev/null || echo openssh-client
	[ -x "$NGINX" ] || echo nginx
	{ [ -x "$NGINX" ] && nginx_stream_line >/dev/null; } || echo libnginx-mod-stream
	pg_bin_dir >/dev/null || echo postgresql
}

# ensure_packages installs what the fleet needs and the machine lacks, as setup.sh does.
ensure_packages() {
	local missing
	mapfile -t missing < <(fleet_missing_packages)
	[ ${#missing[@]} -gt 0 ] || return 0
	command -v apt-get >/dev/null ||
		die "missing packages: ${missing[*]}, and no apt-get here: install their equivalents with this system's package manager"
	echo "installing Debian packages: ${missing[*]}"
	apt-get update
	DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"
	if [[ " ${missing[*]} " == *" nginx "* ]]; then
		# shellcheck disable=SC2119 # as root: no prefix
		quiet_system_nginx
	fi
	local still
	still="$(fleet_missing_packages | tr '\n' ' ')"
	[ -z "$still" ] || die "apt-get finished, but these are still missing: $still"
}

# --- the deploy user, installed once: each host's home starts as a copy of its real home ----------

ensure_template() {
	ensure_path_line
	[ -f "$FLEET_DIR/id_ed25519" ] || ssh-keygen -q -t ed25519 -N '' -C local-fleet-deploy -f "$FLEET_DIR/id_ed25519"
	authorize_key "$FLEET_DIR/id_ed25519.pub"
}

# --- the network: one bridge, a /24 nothing else on this machine uses ----------------------------

ensure_tag() {
	local tag
	[ -s "$FLEET_DIR/tag" ] && return
	# Short and [a-z0-9]: interface names stay under 15 characters; random: no two state folders share one.
	while :; do
		tag="$(random_hex 3)"
		[ -z "$(ip netns list | grep "^vf${tag}h" || true)" ] && ! ip link show dev "vf${tag}br" >/dev/null 2>&1 && break
	done
	echo "$tag" >"$FLEET_DIR/tag"
}

# The prefixes in use: addresses, routes, and the name servers and npm endpoint reached through
# the default route (a bridge on their subnet would take their traffic).
used_prefixes() {
	ip -4 -o addr show | awk '{print $4}'
	ip -4 route show | awk '$1 != "default" {print $1}'
	awk '$1 == "nameserver" && $2 ~ /^[0-9.]+$/ {print $2}' /etc/resolv.conf 2>/dev/null || true
	if [ -s "$FLEET_DIR/npm_endpoint" ]; then awk '{print $3}' "$FLEET_DIR/npm_endpoint"; fi
}

# subnet_free 10.A.B: whether 10.A.B.0/24 overlaps none of the prefixes in use.
subnet_free() {
	used_prefixes | awk -v c="$1.0" '
		function n(s, a) { split(s, a, "."); return ((a[1] * 256 + a[2]) * 256 + a[3]) * 256 + a[4] }
		BEGIN { lo = n(c); hi = lo + 255; free = 1 }
		{
			split($1, p, "/"); len = (p[2] == "" ? 32 : p[2]); size = 2 ^ (32 - len)
			s = int(n(p[1]) / size) * size
			if (s <= hi && s + size - 1 >= lo) free = 0
		}
		END { exit !free }'
}

pick_subnet() {
	local net
	for _ in $(seq 1 200); do
		net="10.$((16 + RANDOM % 239)).$((RANDOM % 256))"
		if subnet_free "$net"; then
			echo "$net"
			return
		fi
	done
	die "found no free /24 in 10.0.0.0/8 (tried 200): see ip route"
}

ensure_network() {
	mkdir -p "$(dirname "$NET_LOCK")"
	(
		flock 9
		ensure_tag
		local br net
		br="$(bridge_name)"
		if ! ip link show dev "$br" >/dev/null 2>&1; then
			# The same subnet as last time, when nothing took it since: addresses and known_hosts stay.
			net="$(net_prefix || true)"
			if [ -z "$net" ] || ! subnet_free "$net"; then
				net="$(pick_subnet)"
				echo "$net" >"$FLEET_DIR/net"
			fi
			ip link add "$br" type bridge
		fi
		if ! ip -4 -o addr show dev "$br" | grep -qF " $(gateway)/24 "; then
			ip -4 addr flush dev "$br"
			ip addr add "$(gateway)/24" dev "$br"
		fi
		ip link set "$br" up
		echo "bridge $br $(gateway)/24"
	) 9>"$NET_LOCK"
}

# --- the npm registry, for the hosts' `npm ci` ---------------------------------------------------
# The hosts have no route out (this machine does not forward). nginx passes the registry's (or the
# npm proxy's) TCP port through from the bridge address, and each host's /etc/hosts names that
# address: TLS, certificates and the lockfile's URLs stay exactly the machine's.

npm_url() {
	local key value
	for key in https-proxy proxy registry; do
		value="$(npm config get "$key" 2>/dev/null || true)"
		case "$value" in "" | null | undefined) continue ;; esac
		echo "$value"
		return
	done
	echo https://registry.npmjs.org/
}

ensure_npm_endpoint() {
	local url name port ip
	url="$(npm_url)"
	read -r name port < <(node -e 'const u = new URL(process.argv[1]);
		console.log(u.hostname, u.port || (u.protocol === "https:" ? 443 : 80))' "$url")
	: >"$FLEET_DIR/npm_endpoint"
	if [[ "$name" =~ ^[0-9.]+$ || "$name" == *:* || "$name" == localhost ]]; then
		echo "warning: npm reaches $url by address, which cannot be pointed at the bridge: the hosts cannot reach it (npm ci on a host will fail)"
		return
	fi
	ip="$(getent ahostsv4 "$name" | awk 'NR == 1 {print $1}')"
	if [ -z "$ip" ]; then
		echo "warning: $name does not resolve here: the hosts cannot reach npm (npm ci on a host will fail)"
		return
	fi
	echo "$name $port $ip" >"$FLEET_DIR/npm_endpoint"
	echo "npm for the hosts: $name:$port ($ip), passed through from the bridge address"
}

# --- one host ------------------------------------------------------------------------------------

# write_in_place FILE: stdin into FILE without replacing it (a bind mount pins the file, not the name).
write_in_place() { cat >"$1"; }

write_host_etc() {
	local i="$1" d name port
	d="$(host_dir "$i")/etc"
	{
		printf '127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n%s\t%s\n' "$(host_ip "$i")" "$(host_name "$i")"
		if read -r name port _ <"$FLEET_DIR/npm_endpoint" && [ -n "$name" ]; then
			printf '%s\t%s\n' "$(gateway)" "$name"
		fi
	} | write_in_place "$d/hosts"
	# The machine's name server is out of the hosts' reach: a lookup fails at once instead of after
	# a timeout. The names they need are in their /etc/hosts.
	printf 'nameserver 127.0.0.1\noptions timeout:1 attempts:1\n' | write_in_place "$d/resolv.conf"
	host_name "$i" | write_in_place "$d/hostname"
	chmod 644 "$d/hosts" "$d/resolv.conf" "$d/hostname"
}

# sync_home I: host I's home, a copy of the deploy user's real one (without npm's cache) the first
# time; later the login files only, which `up` writes anew. Releases and PM2 state stay.
sync_home() {
	local i="$1" t d
	t="$(user_home)"
	d="$(host_dir "$i")/home"
	if [ ! -d "$d" ]; then
		mkdir "$d"
	fi
	chown --reference="$t" "$d"
	chmod --reference="$t" "$d"
	if [ ! -x "$d/.vps-node/node_modules/.bin/pm2" ]; then
		find "$t" -mindepth 1 -maxdepth 1 ! -name .npm -exec cp -a -t "$d" {} +
	else
		cp -a "$t/.bashrc" "$t/.npmrc" "$d/"
		cp -a "$t/.ssh/environment" "$t/.ssh/authorized_keys" "$d/.ssh/"
	fi
}

ensure_host_files() {
	local i="$1" d
	d="$(host_dir "$i")"
	# Closed to the deploy user: a host reaches its own home and /tmp through its mounts only.
	install -d -m 700 "$d" "$d/etc"
	install -d -m 1777 "$d/tmp"
	if [ -n "$(state_under_tmp)" ]; then install -d -m 711 "$d/tmp/$(state_under_tmp)"; fi
	[ -f "$d/ssh_host_ed25519_key" ] || ssh-keygen -q -t ed25519 -N '' -C "local-fleet-h$i" -f "$d/ssh_host_ed25519_key"
	sync_home "$i"
	write_host_etc "$i"
	sshd_config_for 22 0.0.0.0 "$d/ssh_host_ed25519_key" "$d/sshd.pid" >"$d/sshd_config"
}

ensure_host_netns() {
	local i="$1" ns
	ns="$(host_ns "$i")"
	[ -e "/run/netns/$ns" ] || ip netns add "$ns"
	# The root-side end carries the namespace's name, so `ip link` shows which host it is.
	if ! ip link show dev "$ns" >/dev/null 2>&1; then
		ip link add "$ns" type veth peer name eth0 netns "$ns"
	fi
	ip link set "$ns" master "$(bridge_name)" up
	ip -n "$ns" link set lo up
	if ! ip -n "$ns" -4 -o addr show dev eth0 | grep -qF " $(host_ip "$i")/24 "; then
		ip -n "$ns" -4 addr flush dev eth0
		ip -n "$ns" addr add "$(host_ip "$i")/24" dev eth0
	fi
	ip -n "$ns" link set eth0 up
	ip -n "$ns" route replace default via "$(gateway)"
}

# The namespace files live in a private mount of their own folder: the kernel refuses to bind a
# namespace into a mount that propagates (/ is shared under systemd).
ensure_ns_dir() {
	local d="$FLEET_DIR/ns"
	mkdir -p "$d"
	mountpoint -q "$d" || mount --bind "$d" "$d"
	mount --make-private "$d"
}

# ensure_host_mounts I: host I's mount and UTS namespaces, kept by bind mounts under STATE/ns so
# that sshd, its sessions, their PM2 daemon and `exec` all share them, with or without a running sshd.
ensure_host_mounts() {
	local i="$1" mnt uts d
	mnt="$(mnt_ns_file "$i")"
	uts="$(uts_ns_file "$i")"
	d="$(host_dir "$i")"
	mountpoint -q "$mnt" && return
	ensure_ns_dir
	touch "$mnt" "$uts"
	unshare --mount="$mnt" --uts="$uts" --propagation private true
	# shellcheck disable=SC2016 # the inner script expands its own arguments
	if ! nsenter --net="/run/netns/$(host_ns "$i")" --mount="$mnt" --uts="$uts" -- sh -c '
		set -e
		hostname "$1"
		mount --bind "$2/etc/hosts" /etc/hosts
		mount --bind "$2/etc/resolv.conf" /etc/resolv.conf
		mount --bind "$2/etc/hostname" /etc/hostname
		mount --bind "$2/home" "$3"
		if [ -n "$4" ]; then
			# The state folder is under /tmp: it stays there in the host'"'"'s own /tmp (closed, as
			# root'"'"'s), since its sshd reads its config, key and pid file from it.
			mount --bind "$5" "$2/tmp/$4"
			mount --rbind "$2/tmp" /tmp
		else
			mount --bind "$2/tmp" /tmp
		fi
		# As `ip netns exec` does: /sys/class/net shows the host'"'"'s own interfaces.
		mount -t sysfs sysfs /sys 2>/dev/null || true
	' sh "$(host_name "$i")" "$d" "$(user_home)" "$(state_under_tmp)" "$FLEET_DIR"; then
		# Half set up: the next `up` starts this host's namespaces afresh.
		umount "$mnt" "$uts"
		die "could not set up host $i's mounts; see above"
	fi
}

# in_host I CMD...: CMD as root in host I's namespaces.
in_host() {
	local i="$1"
	shift
	nsenter --net="/run/netns/$(host_ns "$i")" --mount="$(mnt_ns_file "$i")" --uts="$(uts_ns_file "$i")" -- "$@"
}

# as_host_user I CMD...: CMD as the deploy user on host I, in its home, with the PATH its ssh
# sessions get and nothing of the caller's environment.
as_host_user() {
	local i="$1" home env
	shift
	home="$(user_home)"
	env=(env -i HOME="$home" USER="$VPS_USER" LOGNAME="$VPS_USER" SHELL=/bin/bash LANG=C.UTF-8 PATH="$(runtime_path "$home")")
	if [ -n "${NODE_EXTRA_CA_CERTS:-}" ]; then env+=(NODE_EXTRA_CA_CERTS="$NODE_EXTRA_CA_CERTS"); fi
	# shellcheck disable=SC2016 # expanded by the inner shell
	in_host "$i" runuser -u "$VPS_USER" -- "${env[@]}" bash -c 'cd "$HOME" && exec "$@"' _ "$@"
}

# host_sshd_pid I: host I's sshd, when its pid file names a live sshd in host I's network namespace
# (after a reboot the pid may belong to anything).
host_sshd_pid() {
	local pid
	pid="$(pid_in "$(host_dir "$1")/sshd.pid")" || return 1
	[ "$(readlink "/proc/$pid/exe" 2>/dev/null)" = "$SSHD" ] &&
		[ "$(stat -L -c %i "/proc/$pid/ns/net" 2>/dev/null)" = "$(stat -L -c %i "/run/netns/$(host_ns "$1")" 2>/dev/null)" ] &&
		echo "$pid"
}

start_host_sshd() {
	local i="$1" d
	d="$(host_dir "$i")"
	host_sshd_pid "$i" >/dev/null && return
	ensure_sshd_dirs
	"$SSHD" -t -f "$d/sshd_config" || die "sshd refused $d/sshd_config"
	in_host "$i" "$SSHD" -f "$d/sshd_config" -E "$d/sshd.log"
	wait_for_port 22 "$(host_ip "$i")" || die "host $i's sshd did not start on $(host_ip "$i"):22; see $d/sshd.log"
}

ensure_host() {
	ensure_host_files "$1"
	ensure_host_netns "$1"
	ensure_host_mounts "$1"
	start_host_sshd "$1"
	echo "host $1: $(host_ns "$1") $(host_ip "$1"), sshd pid $(host_sshd_pid "$1")"
}

stop_host_sshd() {
	local pid
	pid="$(host_sshd_pid "$1")" || return 0
	kill "$pid"
	for _ in $(seq 1 50); do
		kill -0 "$pid" 2>/dev/null || return 0
		sleep 0.1
	done
	kill -KILL "$pid" 2>/dev/null || true
}

# kill_netns_processes NS: whatever still runs in the namespace (apps PM2 left, stray sessions).
kill_netns_processes() {
	local pids
	mapfile -t pids < <(ip netns pids "$1" 2>/dev/null)
	[ ${#pids[@]} -gt 0 ] || return 0
	kill "${pids[@]}" 2>/dev/null || true
	for _ in $(seq 1 30); do
		mapfile -t pids < <(ip netns pids "$1" 2>/dev/null)
		[ ${#pids[@]} -gt 0 ] || return 0
		sleep 0.1
	done
	kill -KILL "${pids[@]}" 2>/dev/null || true
}

stop_host() {
	local i="$1" ns mnt
	ns="$(host_ns "$i")"
	mnt="$(mnt_ns_file "$i")"
	if [ -e "/run/netns/$ns" ] && mountpoint -q "$mnt" && pid_in "$(host_dir "$i")/home/.pm2/pm2.pid" >/dev/null; then
		# As PM2 would at shutdown; the saved process list stays for the next `up`.
		timeout 30 "$BASH" "$0" exec "$i" -- pm2 kill >/dev/null 2>&1 || true
	fi
	stop_host_sshd "$i"
	if [ -e "/run/netns/$ns" ]; then
		kill_netns_processes "$ns"
		ip netns del "$ns"
	fi
	ip link del "$ns" 2>/dev/null || true
	local f
	for f in "$mnt" "$(uts_ns_file "$i")"; do
		if mountpoint -q "$f"; then umount "$f"; fi
	done
	echo "host $i stopped"
}

# host_indexes: the hosts the state names, and any other this fleet's namespaces still hold.
host_indexes() {
	local tag
	tag="$(fleet_tag)" || return 0
	{
		seq 1 "$(host_count)"
		ip netns list 2>/dev/null | awk '{print $1}' | sed -n "s/^vf${tag}h\([0-9][0-9]*\)$/\1/p"
	} | sort -nu
}

# --- PostgreSQL ----------------------------------------------------------------------------------

as_postgres() { (cd / && runuser -u postgres -- "$@"); }

# pg_pid: the cluster's postmaster, when its pid file names a live postgres (not a reused pid).
pg_pid() {
	local pid
	pid="$(pid_in "$(pg_dir)/data/postmaster.pid")" || return 1
	[ "$(basename "$(readlink "/proc/$pid/exe" 2>/dev/null)")" = postgres ] && echo "$pid"
}

pg_conf() {
	printf "listen_addresses = '%s'\nport = %s\nunix_socket_directories = '%s'\n" "$(gateway)" "$(state pg/port)" "$(pg_dir)/run"
}

pg_hba() {
	printf '# Written by scripts/local-fleet.sh up.\nlocal\tall\tpostgres\tpeer\nhost\t%s\t%s\t%s.0/24\tscram-sha-256\n' \
		"$PG_NAME" "$PG_NAME" "$(net_prefix)"
}

pg_init() {
	local bin="$1" pg
	pg="$(pg_dir)"
	install -d -o postgres -g postgres -m 700 "$pg/data"
	as_postgres "$bin/initdb" -D "$pg/data" -U postgres --auth-local=peer --auth-host=scram-sha-256 \
		-E UTF8 --locale=C.UTF-8 --no-instructions
	echo "include_if_exists = 'fleet.conf'" | as_postgres tee -a "$pg/data/postgresql.conf" >/dev/null
}

# pg_role: the fleet's role (with the password in STATE/pg/password) and database.
pg_role() {
	local bin="$1" pg
	pg="$(pg_dir)"
	as_postgres "$bin/psql" -X -q -v ON_ERROR_STOP=1 -h "$pg/run" -p "$(state pg/port)" -U postgres -d postgres \
		-v name="$PG_NAME" -v pw="$(state pg/password)" <<'SQL'
SELECT format('CREATE ROLE %I LOGIN', :'name') WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'name')\gexec
ALTER ROLE :"name" LOGIN PASSWORD :'pw';
SELECT format('CREATE DATABASE %I OWNER %I', :'name', :'name') WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'name')\gexec
SQL
}

ensure_postgres() {
	local bin pg port conf_changed=false
	bin="$(pg_bin_dir)" || die "no PostgreSQL server (/usr/lib/postgresql/*/bin/pg_ctl): apt-get install postgresql"
	pg="$(pg_dir)"
	runuser -u postgres -- test -x "$FLEET_DIR" ||
		die "the postgres user cannot reach $FLEET_DIR: make the folders above it searchable (chmod o+x), or set FLEET_STATE_DIR to a folder such as /var/tmp/fleet"
	install -d -m 711 "$pg"
	install -d -o postgres -g postgres -m 700 "$pg/run" "$pg/log"
	[ -s "$pg/password" ] || (umask 077 && random_hex 16 >"$pg/password")
	[ -f "$pg/data/PG_VERSION" ] || pg_init "$bin"
	if ! pg_pid >/dev/null; then
		port="$(state pg/port || true)"
		if [ -z "$port" ] || port_open "$port" "$(gateway)"; then
			free_port "$(gateway)" >"$pg/port"
		fi
	fi
	if [ "$(pg_conf)" != "$(cat "$pg/data/fleet.conf" 2>/dev/null)" ]; then
		pg_conf | as_postgres tee "$pg/data/fleet.conf" >/dev/null
		conf_changed=true
	fi
	pg_hba | as_postgres tee "$pg/data/pg_hba.conf" >/dev/null
	if ! pg_pid >/dev/null; then
		as_postgres "$bin/pg_ctl" start -D "$pg/data" -l "$pg/log/postgres.log" -w -t 60 -s
	elif $conf_changed; then
		as_postgres "$bin/pg_ctl" restart -D "$pg/data" -l "$pg/log/postgres.log" -m fast -w -t 60 -s
	else
		as_postgres "$bin/pg_ctl" reload -D "$pg/data" -s
	fi
	pg_role "$bin"
	echo "postgres $(gateway):$(state pg/port), database $PG_NAME"
}

stop_postgres() {
	local bin
	pg_pid >/dev/null || return 0
	bin="$(pg_bin_dir)"
	as_postgres "$bin/pg_ctl" stop -D "$(pg_dir)/data" -m fast -w -t 60 -s
	echo "postgres stopped"
}

database_url() {
	printf 'postgresql://%s:%s@%s:%s/%s\n' "$PG_NAME" "$(state pg/password)" "$(gateway)" "$(state pg/port)" "$PG_NAME"
}

# --- the balancer --------------------------------------------------------------------------------

lb_pid() {
	local pid
	pid="$(pid_in "$(lb_dir)/nginx.pid")" || return 1
	[ "$(readlink "/proc/$pid/exe" 2>/dev/null)" = "$(readlink -f "$NGINX")" ] && echo "$pid"
}

nginx_args() { echo -p "$(lb_dir)/" -e "$(lb_dir)/error.log" -c "$(lb_dir)/${1:-nginx.conf}"; }

lb_upstreams() {
	local i
	for i in $(seq 1 "$(host_count)"); do
		printf '\t\tserver %s:%s max_fails=1 fail_timeout=2s;\n' "$(host_ip "$i")" "$(app_port)"
	done
}

# lb_npm_stream: the hosts' way to npm (see ensure_npm_endpoint).
lb_npm_stream() {
	local name port ip
	read -r name port ip <"$FLEET_DIR/npm_endpoint" || return 0
	[ -n "$ip" ] || return 0
	printf 'stream {\n\tserver {\n\t\tlisten %s:%s;\n\t\tproxy_pass %s:%s;\n\t\tproxy_connect_timeout 5s;\n\t}\n}\n' \
		"$(gateway)" "$port" "$ip" "$port"
}

lb_conf() {
	local lb stream have_stream=true
	lb="$(lb_dir)"
	stream="$(nginx_stream_line)" || {
		stream="# no stream module: the hosts get no way to npm"
		have_stream=false
	}
	cat <<EOF
# Written by scripts/local-fleet.sh up: the local fleet's balancer.
user $NGINX_WORKER_USER;
worker_processes 1;
pid $lb/nginx.pid;
error_log $lb/error.log notice;
$stream
events {
	worker_connections 1024;
}
http {
	log_format fleet '\$remote_addr [\$time_local] "\$request" \$status \$body_bytes_sent upstream \$upstream_addr \$upstream_status \$request_time';
	access_log $lb/access.log fleet;
	client_body_temp_path $lb/tmp/body;
	proxy_temp_path $lb/tmp/proxy;
	fastcgi_temp_path $lb/tmp/fastcgi;
	uwsgi_temp_path $lb/tmp/uwsgi;
	scgi_temp_path $lb/tmp/scgi;
	# No keepalive on either side: every request picks its host afresh.
	keepalive_timeout 0;
	upstream fleet {
$(lb_upstreams)
	}
	server {
		listen 127.0.0.1:$(state lb/port);
		location / {
			proxy_pass http://fleet;
			# A host whose app is down (refused, reset, 502-504) costs one retry on the next host,
			# and is left out for 2 s (passive health: max_fails=1 fail_timeout=2s).
			proxy_connect_timeout 1s;
			# A request a host accepted and never answers is retried on the next host after 3 s.
			# Node's cluster primary (PM2's daemon) can strand the one connection it was handing to
			# a host's last listening worker as that worker stops (a release failing after its
			# switch): nothing answers or closes it (nodejs/node#21746). See README, Known limits.
			proxy_read_timeout 3s;
			proxy_next_upstream error timeout http_502 http_503 http_504 non_idempotent;
			proxy_next_upstream_tries $(host_count);
			proxy_set_header Host \$host;
			proxy_set_header X-Real-IP \$remote_addr;
			proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
			proxy_set_header X-Forwarded-Proto \$scheme;
			add_header X-Fleet-Upstream \$upstream_addr always;
		}
	}
}
$(if $have_stream; then lb_npm_stream; fi)
EOF
}

ensure_balancer() {
	local lb port
	lb="$(lb_dir)"
	install -d -m 711 "$lb"
	install -d -m 755 "$lb/tmp"
	runuser -u "$NGINX_WORKER_USER" -- test -x "$lb/tmp" ||
		die "nginx's workers ($NGINX_WORKER_USER) cannot reach $lb: make the folders above $FLEET_DIR searchable (chmod o+x), or set FLEET_STATE_DIR to a folder such as /var/tmp/fleet"
	if ! lb_pid >/dev/null; then
		port="$(state lb/port || true)"
		if [ -z "$port" ] || port_open "$port"; then
			free_port 127.0.0.1 >"$lb/port"
		fi
	fi
	lb_conf >"$lb/nginx.conf.new"
	# shellcheck disable=SC2046 # nginx_args prints separate words
	"$NGINX" -t -q $(nginx_args nginx.conf.new) || die "nginx refused $lb/nginx.conf.new; see above"
	if lb_pid >/dev/null && cmp -s "$lb/nginx.conf.new" "$lb/nginx.conf"; then
		rm "$lb/nginx.conf.new"
	else
		mv "$lb/nginx.conf.new" "$lb/nginx.conf"
		if lb_pid >/dev/null; then
			kill -HUP "$(lb_pid)"
		else
			# shellcheck disable=SC2046 # nginx_args prints separate words
			"$NGINX" $(nginx_args)
		fi
	fi
	wait_for_port "$(state lb/port)" || die "nginx did not start on 127.0.0.1:$(state lb/port); see $lb/error.log"
	echo "balancer http://127.0.0.1:$(state lb/port) -> $(host_count) hosts, port $(app_port)"
}

stop_balancer() {
	local pid
	pid="$(lb_pid)" || return 0
	kill "$pid"
	for _ in $(seq 1 50); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	echo "balancer stopped"
}

# --- checks, stack config, env -------------------------------------------------------------------

write_known_hosts() {
	local i
	for i in $(seq 1 "$(host_count)"); do
		echo "$(host_ip "$i") $(host_key "$i")"
	done >"$FLEET_DIR/known_hosts"
}

ssh_host() {
	local i="$1"
	shift
	ssh -q -i "$FLEET_DIR/id_ed25519" -o IdentitiesOnly=yes -o BatchMode=yes -o StrictHostKeyChecking=yes \
		-o UserKnownHostsFile="$FLEET_DIR/known_hosts" -o ConnectTimeout=5 "$VPS_USER@$(host_ip "$i")" "$@"
}

# check_host I: the saved PM2 processes back first (`pm2 -v` would start an empty daemon), then
# node and pm2 as the deploy user's sessions see them.
check_host() {
	local i="$1" out
	ssh_host "$i" "$VPS_RESURRECT_PM2"
	out="$(ssh_host "$i" "$VPS_CHECK_RUNTIME && hostname && echo \$HOME")" ||
		die "host $i answers, but node or pm2 is missing for $VPS_USER; see $(host_dir "$i")/sshd.log"
	echo "host $i: $(echo "$out" | tail -n4 | tr '\n' ' ')"
}

# in_parallel FN I...: FN I for every host I at once; fails when any of them fails.
in_parallel() {
	local fn="$1" i pids=() rc=0
	shift
	for i in "$@"; do
		"$fn" "$i" &
		pids+=("$!")
	done
	for i in "${pids[@]}"; do
		wait "$i" || rc=1
	done
	return "$rc"
}

# check_hosts: over ssh, as the deploy and the tests will, every host at once.
check_hosts() {
	local hosts
	write_known_hosts
	mapfile -t hosts < <(seq 1 "$(host_count)")
	in_parallel check_host "${hosts[@]}"
}

hosts_json() {
	local i sep=""
	printf '['
	for i in $(seq 1 "$(host_count)"); do
		printf '%s{"host":"%s","port":22,"hostKey":"%s"}' "$sep" "$(host_ip "$i")" "$(host_key "$i")"
		sep=","
	done
	printf ']'
}

set_stack_config() {
	local p="$PROJECT_ROOT/scripts/pulumi.sh"
	cd "$PROJECT_ROOT"
	"$p" stack select --create -s "$FLEET_STACK"
	"$p" config set -s "$FLEET_STACK" vps:user "$VPS_USER"
	"$p" config set -s "$FLEET_STACK" vps:root "$(fleet_root)"
	"$p" config set -s "$FLEET_STACK" vps:hosts -- "$(hosts_json)"
	"$p" config set -s "$FLEET_STACK" --secret vps:privateKey <"$FLEET_DIR/id_ed25519"
}

# write_stack_config sets the stack's vps:* keys when they differ from what was written last.
write_stack_config() {
	local want stamp="$FLEET_DIR/stack-config.stamp"
	want="$VPS_USER $(fleet_root) $(hosts_json) $(cut -d' ' -f2 "$FLEET_DIR/id_ed25519.pub") ${PULUMI_BACKEND_URL:-default}"
	if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && [ -f "$PROJECT_ROOT/Pulumi.$FLEET_STACK.yaml" ]; then
		return
	fi
	run_step "fleet: $FLEET_STACK stack vps:* config" set_stack_config
	echo "$want" >"$stamp"
}

write_database_url() {
	(umask 077 && database_url >"$FLEET_DIR/database_url.new")
	if cmp -s "$FLEET_DIR/database_url.new" "$FLEET_DIR/database_url"; then
		rm "$FLEET_DIR/database_url.new"
	else
		mv "$FLEET_DIR/database_url.new" "$FLEET_DIR/database_url"
	fi
}

# fleet_running N PORT: whether everything `up N --app-port PORT` starts already runs.
fleet_running() {
	local i
	[ -f "$FLEET_DIR/up" ] && [ "$(host_count)" = "$1" ] && [ "$(app_port)" = "$2" ] && [ -s "$FLEET_DIR/tag" ] || return 1
	ip link show dev "$(bridge_name)" >/dev/null 2>&1 || return 1
	for i in $(seq 1 "$1"); do
		[ -e "/run/netns/$(host_ns "$i")" ] && mountpoint -q "$(mnt_ns_file "$i")" && host_sshd_pid "$i" >/dev/null || return 1
	done
	pg_pid >/dev/null && lb_pid >/dev/null
}

summary() {
	local n
	n="$(host_count)"
	echo "local fleet: $n hosts $(host_ip 1)$([ "$n" = 1 ] || echo "-$((10 + n))"), balancer http://127.0.0.1:$(state lb/port), postgres $(gateway):$(state pg/port)"
}

# --- commands ------------------------------------------------------------------------------------

cmd_up() {
	local n="$1" port="$2" i t0
	[ -n "$n" ] || n="$(state hosts || true)"
	[ -n "$n" ] || die "usage: local-fleet.sh up N [--app-port P] (N hosts; later ups default to the last N)"
	{ [[ "$n" =~ ^[0-9]+$ ]] && [ "$n" -ge 1 ] && [ "$n" -le "$MAX_HOSTS" ]; } || die "up N: N must be 1 to $MAX_HOSTS hosts, not $n"
	[ -n "$port" ] || port="$(app_port)"
	{ [[ "$port" =~ ^[0-9]+$ ]] && [ "$port" -ge 1 ] && [ "$port" -le 65535 ]; } || die "--app-port must be a TCP port, not $port"
	ensure_state_dir
	if ! fleet_running "$n" "$port"; then
		t0="$(now_ms)"
		log_step "starting the local fleet: $n hosts (deploy user $VPS_USER, state ${FLEET_DIR#"$PROJECT_ROOT"/}; step logs: ${LOG_DIR#"$PROJECT_ROOT"/}/fleet-*)"
		# STATE/up: every part of the fleet started (env and the quick path of `up` ask for it).
		rm -f "$FLEET_DIR/up"
		echo "$n" >"$FLEET_DIR/hosts"
		echo "$port" >"$FLEET_DIR/app_port"
		run_step "fleet: Debian packages" ensure_packages
		run_step "fleet: deploy user $VPS_USER" ensure_user
		run_step "fleet: npm settings" ensure_npmrc
		if ! runtime_ready; then
			run_step "fleet: node $NODE_VERSION + pm2 $PM2_VERSION" ensure_runtime
		fi
		run_step "fleet: PATH and deploy key" ensure_template
		run_step "fleet: npm for the hosts" ensure_npm_endpoint
		run_step "fleet: network" ensure_network
		for i in $(host_indexes); do
			if [ "$i" -gt "$n" ]; then
				run_step "fleet: stop host $i" stop_host "$i"
			fi
		done
		for i in $(seq 1 "$n"); do
			run_step "fleet: host $i ($(host_ip "$i"))" ensure_host "$i"
		done
		run_step "fleet: postgres" ensure_postgres
		run_step "fleet: balancer" ensure_balancer
		run_step "fleet: node and pm2 over ssh" check_hosts
		: >"$FLEET_DIR/up"
		log_step "local fleet up in $(seconds_since "$t0")s"
	fi
	write_database_url
	if [ "${LOCAL_FLEET_NO_STACK:-}" != 1 ]; then
		write_stack_config
	fi
	summary
}

# fleet_exists: whether any namespace or the bridge of this fleet is there.
fleet_exists() {
	[ -s "$FLEET_DIR/tag" ] || return 1
	ip netns list 2>/dev/null | grep -q "^vf$(fleet_tag)h" || ip link show dev "$(bridge_name)" >/dev/null 2>&1
}

# stop_hosts: every host at once (PM2 takes a second or two to stop its apps).
stop_hosts() {
	local hosts
	mapfile -t hosts < <(host_indexes)
	in_parallel stop_host "${hosts[@]}"
}

stop_network() {
	local br
	br="$(bridge_name)"
	if ip link show dev "$br" >/dev/null 2>&1; then
		ip link del "$br"
		echo "bridge $br removed"
	fi
	if mountpoint -q "$FLEET_DIR/ns"; then umount "$FLEET_DIR/ns"; fi
}

cmd_down() {
	if [ ! -s "$FLEET_DIR/tag" ]; then
		echo "local fleet is not running"
		return
	fi
	local was_up=false
	rm -f "$FLEET_DIR/up"
	if fleet_exists || pg_pid >/dev/null || lb_pid >/dev/null; then was_up=true; fi
	run_step "fleet: stop hosts" stop_hosts
	run_step "fleet: stop balancer and postgres" stop_services
	run_step "fleet: remove network" stop_network
	if $was_up; then echo "local fleet stopped"; else echo "local fleet is not running"; fi
}

stop_services() {
	stop_balancer
	stop_postgres
}

remove_user() {
	getent passwd "$VPS_USER" >/dev/null || return 0
	pkill -KILL -u "$VPS_USER" 2>/dev/null || true
	sleep 0.2
	userdel --remove "$VPS_USER" 2>/dev/null || userdel "$VPS_USER"
}

# cmd_purge: down, then nothing of this fleet is left (CI runs it at the end of every run).
cmd_purge() {
	cmd_down
	if getent passwd "$VPS_USER" >/dev/null; then
		run_step "fleet: remove deploy user $VPS_USER" remove_user
		echo "removed deploy user $VPS_USER and its home"
	fi
	rm -f "$(lock_file)"
	[ -d "$FLEET_DIR" ] || return 0
	[ -f "$FLEET_DIR/.local-fleet" ] || die "not removing $FLEET_DIR: it is not a local fleet's state folder (no .local-fleet in it)"
	if findmnt -rn -o TARGET | grep -qF "$FLEET_DIR/"; then
		die "not removing $FLEET_DIR: something is still mounted in it (findmnt | grep $FLEET_DIR)"
	fi
	run_step "fleet: remove state" rm -rf --one-file-system "$FLEET_DIR"
	echo "removed $FLEET_DIR"
}

require_host() {
	local i="$1"
	{ [[ "$i" =~ ^[0-9]+$ ]] && [ "$i" -ge 1 ] && [ "$i" -le "$(host_count)" ]; } || die "no host $i in the local fleet (it has $(host_count))"
	{ [ -e "/run/netns/$(host_ns "$i")" ] && mountpoint -q "$(mnt_ns_file "$i")"; } ||
		die "host $i of the local fleet is not running: npm run local:up -- --hosts $(host_count)"
}

cmd_env() {
	local n i
	n="$(host_count)"
	{ [ -f "$FLEET_DIR/up" ] && [ "$n" -gt 0 ] && [ -e "/run/netns/$(host_ns 1)" ]; } ||
		die "the local fleet is not running: npm run local:up -- --hosts N"
	printf 'FLEET_HOSTS=%q\n' "$n"
	printf 'FLEET_USER=%q\n' "$VPS_USER"
	printf 'FLEET_KEY_FILE=%q\n' "$FLEET_DIR/id_ed25519"
	printf 'FLEET_ROOT=%q\n' "$(fleet_root)"
	printf 'FLEET_LB_URL=%q\n' "http://127.0.0.1:$(state lb/port)"
	printf 'FLEET_DATABASE_URL=%q\n' "$(database_url)"
	printf 'FLEET_APP_PORT=%q\n' "$(app_port)"
	printf 'FLEET_STATE_DIR=%q\n' "$FLEET_DIR"
	printf 'FLEET_KNOWN_HOSTS=%q\n' "$FLEET_DIR/known_hosts"
	for i in $(seq 1 "$n"); do
		printf 'FLEET_HOST_%s=%q\n' "$i" "$(host_ip "$i")"
		printf 'FLEET_HOST_KEY_%s=%q\n' "$i" "$(host_key "$i")"
		printf 'FLEET_NETNS_%s=%q\n' "$i" "$(host_ns "$i")"
	done
}

cmd_stop_sshd() {
	require_host "$1"
	stop_host_sshd "$1"
	echo "host $1: sshd stopped"
}

cmd_start_sshd() {
	require_host "$1"
	start_host_sshd "$1"
	echo "host $1: sshd started on $(host_ip "$1"):22"
}

cmd_exec() {
	local i="${1:-}"
	shift || true
	[ "${1:-}" = -- ] && shift
	[ $# -gt 0 ] || die "usage: local-fleet.sh exec I -- CMD..."
	require_host "$i"
	as_host_user "$i" "$@"
}

# with_lock CMD ARGS...: one up, down or purge of this state folder at a time. flock -o: the daemons
# these start never hold the lock.
lock_file() { echo "/run/lock/local-fleet-$(printf '%s' "$FLEET_DIR" | sha256sum | cut -c1-16).lock"; }
with_lock() {
	if [ -z "${LOCAL_FLEET_LOCKED:-}" ]; then
		mkdir -p /run/lock
		export LOCAL_FLEET_LOCKED=1
		exec flock -o "$(lock_file)" "$BASH" "$0" "$@"
	fi
}

usage() {
	die "usage: local-fleet.sh up [N] [--app-port P] | down | purge | env | stop-sshd I | start-sshd I | exec I -- CMD..."
}

main() {
	CMD_LINE="$*"
	CMD="${1:-}"
	[ $# -eq 0 ] || shift
	require_root
	check_user_name
	case "$CMD" in
	up)
		local n="" port=""
		while [ $# -gt 0 ]; do
			case "$1" in
			--app-port) port="${2:-}" && shift ;;
			--app-port=*) port="${1#--app-port=}" ;;
			*)
				[ -z "$n" ] || usage
				n="$1"
				;;
			esac
			shift
		done
		with_lock up "$n" ${port:+--app-port "$port"}
		cmd_up "$n" "$port"
		;;
	down | purge)
		[ $# -le 1 ] || usage
		with_lock "$CMD"
		"cmd_$CMD"
		;;
	env) cmd_env ;;
	stop-sshd | start-sshd)
		[ $# -eq 1 ] || usage
		with_lock "$CMD" "$1"
		"cmd_${CMD//-/_}" "$1"
		;;
	exec) cmd_exec "$@" ;;
	*) usage ;;
	esac
}

main "$@"

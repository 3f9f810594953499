# shellcheck shell=bash disable=SC2034
# Shared environment for the project's scripts: where tools live, which node and pulumi to use.
# Sourced, never run. Every path is derived from the checkout, so two clones never share state.

PROJECT_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TOOLS_DIR="$PROJECT_ROOT/.tools"
TOOLS_BIN="$TOOLS_DIR/bin"

# Versions this project pins. The npm SDKs pin the plugin versions (package.json "pulumi" fields).
PULUMI_CLI_VERSION="v3.274.1"
# The language host is built from the newest module that still carries it as a tagged package
# (sdk/v3 v3.68.0); see README "Toolchain" for why the current one cannot be fetched here.
PULUMI_LANGUAGE_NODEJS_VERSION="v3.68.0"
COMMAND_PLUGIN_VERSION="1.2.1"
NODE_VERSION="22.23.3"
NODE_MIN_MAJOR=22

export PULUMI_SKIP_UPDATE_CHECK=true
# Type errors are caught by `npm test` (tsc --noEmit); each `pulumi up` saves ~2 s of ts-node checking.
# (infra/tsconfig.json says the same to any `pulumi`.)
export PULUMI_NODEJS_TRANSPILE_ONLY="${PULUMI_NODEJS_TRANSPILE_ONLY:-true}"
export PULUMI_SKIP_CONFIRMATIONS=true
# Node's compile cache (Node >= 22.1): V8 keeps the compiled code of every module it loads, per file
# content, so the next start of the Pulumi program (the SDK, TypeScript, ts-node, this program) and
# of every script skips compiling it: about 0.15 s of each no-op `pulumi up`.
export NODE_COMPILE_CACHE="${NODE_COMPILE_CACHE:-$TOOLS_DIR/node-compile-cache}"

log_step() { printf '==> %s\n' "$*" >&2; }
die() {
	printf 'error: %s\n' "$*" >&2
	exit 1
}

# Every step's output goes to a log of its own here; the terminal gets one line per step.
LOG_DIR="$TOOLS_DIR/logs"
now_ms() { date +%s%3N; }
seconds_since() { awk -v d="$(($(now_ms) - $1))" 'BEGIN{printf "%.1f", d/1000}'; }

# heartbeat NAME LOG T0: every 30 s, one line with the elapsed time and the log's last line.
# Its sleep holds no output descriptor of the caller: a killed heartbeat never keeps a pipe open.
heartbeat() {
	local name="$1" log="$2" t0="$3" last
	while sleep 30 >/dev/null 2>&1; do
		last="$(tail -n 1 "$log" 2>/dev/null | tr -d '\r' | cut -c1-90)"
		printf '    %-28s ... %ss so far: %s\n' "$name" "$(seconds_since "$t0")" "${last:-working}" >&2
	done
}

# run_step NAME CMD...: runs CMD (a command or function) with stdin closed and its output in
# .tools/logs/NAME.log; prints NAME and its duration, or on failure NAME, the log's last 30
# lines and its path, then exits.
run_step() {
	local name="$1" slug log t0 rc hb
	shift
	slug="$(printf '%s' "$name" | tr -c 'A-Za-z0-9._-' '-' | tr -s '-')"
	mkdir -p "$LOG_DIR"
	log="$LOG_DIR/$slug.log"
	printf '# %s %s\n' "$(date -u +%FT%TZ)" "$name" >"$log"
	t0="$(now_ms)"
	heartbeat "$name" "$log" "$t0" &
	hb=$!
	rc=0
	# In the background and then waited for: a subshell on the left of || would run without set -e.
	("$@") </dev/null >>"$log" 2>&1 &
	wait "$!" || rc=$?
	kill "$hb" 2>/dev/null || true
	wait "$hb" 2>/dev/null || true
	if [ "$rc" -ne 0 ]; then
		printf '    %-28s FAILED after %ss (exit %d)\n' "$name" "$(seconds_since "$t0")" "$rc" >&2
		printf -- '--- last 30 lines of %s\n' "$log" >&2
		tail -n 30 "$log" >&2
		printf -- '--- step "%s" failed; full log: %s\n' "$name" "$log" >&2
		exit 1
	fi
	printf '    %-28s %6ss\n' "$name" "$(seconds_since "$t0")" >&2
}

# node_arch prints the npm package suffix of this machine's Node binary.
node_arch() {
	case "$(uname -m)" in
	x86_64 | amd64) echo "linux-x64" ;;
	aarch64 | arm64) echo "linux-arm64" ;;
	*) die "unsupported CPU $(uname -m): install Node $NODE_MIN_MAJOR or newer yourself" ;;
	esac
}

# project_node_dir is where setup puts Node when the machine's is older than NODE_MIN_MAJOR.
project_node_dir() { echo "$TOOLS_DIR/node/node_modules/node-$(node_arch)/bin"; }

node_major() { "${1:-node}" -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0; }

# use_project_node puts a Node >= NODE_MIN_MAJOR first on PATH when one is available.
use_project_node() {
	local dir
	dir="$(project_node_dir)"
	if [ -x "$dir/node" ]; then
		PATH="$dir:$PATH"
	fi
	export PATH
}

# use_project_pulumi selects the project-built toolchain when there is one; otherwise the
# user's own `pulumi` on PATH is used as is (with the user's own PULUMI_HOME and plugins).
use_project_pulumi() {
	if [ -x "$TOOLS_BIN/pulumi" ]; then
		PATH="$TOOLS_BIN:$PATH"
		# Project-built plugins stay in the checkout: they never shadow a user's own plugin cache.
		export PULUMI_HOME="$TOOLS_DIR/pulumi-home"
		# Nothing can be downloaded on the machines this toolchain is built for.
		export PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION=true
	fi
	export PATH
	# The embedded default: a file state backend inside the checkout. PULUMI_BACKEND_URL wins.
	if [ -z "${PULUMI_BACKEND_URL:-}" ]; then
		mkdir -p "$PROJECT_ROOT/.state"
		export PULUMI_BACKEND_URL="file://$PROJECT_ROOT/.state"
	fi
}

# stack_from_args prints the stack named by -s/--stack in the arguments, if any.
stack_from_args() {
	local prev=""
	for a in "$@"; do
		case "$prev" in
		-s | --stack)
			echo "$a"
			return
			;;
		esac
		case "$a" in
		--stack=*)
			echo "${a#--stack=}"
			return
			;;
		esac
		prev="$a"
	done
}

# The `local` stack's secrets are encrypted with a fixed passphrase: it only ever holds the
# throwaway VPS's key. Staging and production use the team's own secrets provider.
LOCAL_STACK_PASSPHRASE="local-vps-only-not-a-secret"

# quiet_system_nginx [PREFIX...]: Debian's nginx package enables and starts a system nginx (port 80,
# its default site). The project runs only nginx of its own (the local fleet's balancer, with its
# own config and pid file): right after installing the package, that system service is stopped and
# disabled. PREFIX is how to run as root (e.g. sudo -n).
quiet_system_nginx() {
	if [ -d /run/systemd/system ] && command -v systemctl >/dev/null; then
		"$@" systemctl disable --now nginx.service >/dev/null 2>&1 || true
	elif [ -x /etc/init.d/nginx ]; then
		"$@" /etc/init.d/nginx stop >/dev/null 2>&1 || true
	fi
}

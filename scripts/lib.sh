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
export PULUMI_NODEJS_TRANSPILE_ONLY="${PULUMI_NODEJS_TRANSPILE_ONLY:-true}"
export PULUMI_SKIP_CONFIRMATIONS=true

log_step() { printf '==> %s\n' "$*" >&2; }
die() {
	printf 'error: %s\n' "$*" >&2
	exit 1
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

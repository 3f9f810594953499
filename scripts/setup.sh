#!/usr/bin/env bash
# npm run setup: everything `pulumi up` needs here. Idempotent; a second run takes seconds.
#   1. Node >= 22 for the project (the npm registry publishes Node binaries as packages)
#   2. the project's npm dependencies
#   3. the Pulumi toolchain: the user's own `pulumi` when there is one (official plugins are
#      then installed the official way), otherwise the CLI, the nodejs language host and the
#      command provider built from Go modules into .tools/bin.
# Flags: --build-toolchain  build from Go modules even when a `pulumi` is on PATH.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

FORCE_BUILD=false
for a in "$@"; do
	case "$a" in
	--build-toolchain) FORCE_BUILD=true ;;
	*) die "unknown flag $a (known: --build-toolchain)" ;;
	esac
done

step() { run_step "$@"; }

# The Debian packages the project needs, each with the file that shows it is installed.
# openssh-server and -client: the local VPS; shellcheck: the script tests; util-linux: flock,
# setsid, runuser; procps: pkill (fault tests); postgresql: examples/backend's PostgreSQL test and
# the local fleet's database; nginx and its stream module: the local fleet's balancer.
missing_packages() {
	[ -x /usr/sbin/sshd ] || echo openssh-server
	{ command -v ssh && command -v ssh-keygen; } >/dev/null || echo openssh-client
	command -v shellcheck >/dev/null || echo shellcheck
	{ command -v flock && command -v setsid && { [ -x /usr/sbin/runuser ] || command -v runuser; }; } >/dev/null || echo util-linux
	command -v pkill >/dev/null || echo procps
	compgen -G '/usr/lib/postgresql/*/bin/pg_ctl' >/dev/null || echo postgresql
	[ -x /usr/sbin/nginx ] || echo nginx
	[ -f /usr/lib/nginx/modules/ngx_stream_module.so ] || echo libnginx-mod-stream
}

apt_install() {
	"$@" apt-get update
	DEBIAN_FRONTEND=noninteractive "$@" apt-get install -y --no-install-recommends "${MISSING[@]}"
}

# ensure_system_packages installs what is missing with apt-get, as root or through sudo, or stops
# at once (before any long step) naming every missing package and the one command that installs them.
ensure_system_packages() {
	mapfile -t MISSING < <(missing_packages)
	[ ${#MISSING[@]} -gt 0 ] || return 0
	local how=()
	if [ "$(id -u)" != 0 ]; then
		if command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
			how=(sudo -n)
		else
			die "missing Debian packages: ${MISSING[*]}. Install them (as root, or with sudo), then run this again:
    sudo apt-get install -y --no-install-recommends ${MISSING[*]}"
		fi
	fi
	command -v apt-get >/dev/null ||
		die "missing packages: ${MISSING[*]}, and no apt-get here: install their equivalents with this system's package manager"
	log_step "installing Debian packages: ${MISSING[*]}"
	step "apt-get install" apt_install "${how[@]}"
	if [[ " ${MISSING[*]} " == *" nginx "* ]]; then
		quiet_system_nginx "${how[@]}"
	fi
	local still
	still="$(missing_packages | tr '\n' ' ')"
	[ -z "$still" ] || die "apt-get finished, but these are still missing: $still(see $LOG_DIR/apt-get-install.log)"
}

ensure_node() {
	if [ "$(node_major node)" -ge "$NODE_MIN_MAJOR" ]; then
		return
	fi
	local dir
	dir="$(project_node_dir)"
	if [ -x "$dir/node" ] && [ "$(node_major "$dir/node")" -ge "$NODE_MIN_MAJOR" ]; then
		return
	fi
	command -v npm >/dev/null || die "neither Node $NODE_MIN_MAJOR+ nor npm found: install Node.js $NODE_MIN_MAJOR LTS (https://nodejs.org)"
	log_step "machine Node is $(node -v 2>/dev/null || echo missing); installing Node $NODE_VERSION for this project into .tools/node"
	mkdir -p "$TOOLS_DIR/node"
	npm install --no-save --no-audit --no-fund --prefix "$TOOLS_DIR/node" "node-$(node_arch)@$NODE_VERSION"
}

ensure_npm_deps() {
	local dir="$1"
	local marker="$dir/node_modules/.package-lock.json"
	if [ -f "$marker" ] && [ "$marker" -nt "$dir/package-lock.json" ] && [ "$marker" -nt "$dir/package.json" ]; then
		return
	fi
	log_step "installing npm dependencies in ${dir#"$PROJECT_ROOT"/}"
	# --ignore-scripts: @pulumi/command's install script would try to download the plugin.
	(cd "$dir" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)
	touch "$marker"
}

source_hash() {
	(cd "$PROJECT_ROOT/tools/$1" && find . -maxdepth 1 \( -name '*.go' -o -name go.mod -o -name go.sum \) -print0 |
		sort -z | xargs -0 cat | sha256sum | cut -c1-16)
}

# go_build NAME PACKAGE LDFLAGS [OUTDIR]: builds tools/NAME's PACKAGE into OUTDIR/NAME (default
# .tools/bin) when its sources or version changed. Go's caches (GOMODCACHE, GOCACHE) keep a rebuild fast.
go_build() {
	local name="$1" pkg="$2" ldflags="$3" out="${4:-$TOOLS_BIN}"
	local stamp="$out/.$name.stamp" want
	want="$(source_hash "$name") $ldflags"
	if [ -x "$out/$name" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
		return
	fi
	log_step "building $name from Go modules (first time: minutes)"
	mkdir -p "$out"
	# The Terraform-bridged providers generate their schema (embedded in the binary) first.
	if [ -f "$PROJECT_ROOT/tools/$name/tfgen.go" ]; then
		(cd "$PROJECT_ROOT/tools/$name" && GOFLAGS=-mod=readonly go generate .)
	fi
	(cd "$PROJECT_ROOT/tools/$name" && GOFLAGS=-mod=readonly go build -v -trimpath -ldflags "-s -w $ldflags" \
		-o "$out/$name.tmp" "$pkg")
	mv "$out/$name.tmp" "$out/$name"
	echo "$want" >"$stamp"
}

build_cli() {
	go_build pulumi github.com/pulumi/pulumi/pkg/v3/cmd/pulumi \
		"-X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=$PULUMI_CLI_VERSION"
}
build_language_host() {
	go_build pulumi-language-nodejs github.com/pulumi/pulumi/sdk/v3/nodejs/cmd/pulumi-language-nodejs \
		"-X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=$PULUMI_LANGUAGE_NODEJS_VERSION"
}
build_command_provider() {
	# Not in .tools/bin: the engine would take a plugin on PATH over the plugin cache, with a warning.
	go_build pulumi-resource-command . "-X main.Version=$COMMAND_PLUGIN_VERSION" "$TOOLS_DIR/plugins"
}
# random and github: the upstream Terraform providers bridged with pulumi-terraform-bridge (the
# official provider modules are not served here; see README, Toolchain), at the SDKs' plugin versions.
build_bridged_provider() {
	go_build "pulumi-resource-$1" . "-X main.Version=$2" "$TOOLS_DIR/plugins"
}

# install_built_plugin NAME VERSION: registers a built provider in the project's plugin cache.
install_built_plugin() {
	local name="$1" version="$2" bin="$TOOLS_DIR/plugins/pulumi-resource-$1"
	local dir="$PULUMI_HOME/plugins/resource-$name-v$version"
	if [ -x "$dir/pulumi-resource-$name" ] && cmp -s "$bin" "$dir/pulumi-resource-$name"; then
		return
	fi
	"$TOOLS_BIN/pulumi" plugin install resource "$name" "$version" --file "$bin" --reinstall >/dev/null
}

# plugin_hosts_reachable: whether the hosts the official plugins come from answer within 5 s
# (`pulumi plugin install` retries for half a minute before it gives up on a closed network).
plugin_hosts_reachable() {
	node -e 'Promise.any(["https://get.pulumi.com/", "https://api.github.com/"].map((u) =>
		fetch(u, { method: "HEAD", signal: AbortSignal.timeout(5000) }))).then(() => process.exit(0), () => process.exit(1))'
}

# install_official_plugin NAME VERSION: the official way, for a user with their own pulumi.
install_official_plugin() {
	local name="$1" version="$2"
	if pulumi plugin ls 2>/dev/null | awk '{print $1, $3}' | grep -qx "$name $version"; then
		return
	fi
	plugin_hosts_reachable ||
		die "the $name $version plugin is not installed and get.pulumi.com does not answer from here; on a machine without internet run: npm run setup -- --build-toolchain"
	pulumi plugin install resource "$name" "$version" ||
		die "could not install the $name $version plugin; on a machine without internet run: npm run setup -- --build-toolchain"
}

sdk_plugin_version() {
	node -p "require('$PROJECT_ROOT/node_modules/@pulumi/$1/package.json').pulumi.version"
}

main() {
	local t0
	t0="$(now_ms)"
	log_step "setup in $PROJECT_ROOT (step logs: ${LOG_DIR#"$PROJECT_ROOT"/}/)"
	ensure_system_packages
	step "node >= $NODE_MIN_MAJOR" ensure_node
	use_project_node
	step "npm dependencies" ensure_npm_deps "$PROJECT_ROOT"
	[ "$(sdk_plugin_version command)" = "$COMMAND_PLUGIN_VERSION" ] ||
		die "@pulumi/command asks for plugin $(sdk_plugin_version command) but setup builds $COMMAND_PLUGIN_VERSION: update COMMAND_PLUGIN_VERSION in scripts/lib.sh"

	RANDOM_VERSION="$(sdk_plugin_version random)"
	GITHUB_VERSION="$(sdk_plugin_version github)"
	local user_pulumi=""
	if [ ! -x "$TOOLS_BIN/pulumi" ] && ! $FORCE_BUILD; then
		user_pulumi="$(command -v pulumi || true)"
	fi
	if [ -n "$user_pulumi" ]; then
		log_step "using $user_pulumi ($(pulumi version)); installing plugins the official way"
		step "plugin command $COMMAND_PLUGIN_VERSION" install_official_plugin command "$COMMAND_PLUGIN_VERSION"
		step "plugin random $RANDOM_VERSION" install_official_plugin random "$RANDOM_VERSION"
		step "plugin github $GITHUB_VERSION" install_official_plugin github "$GITHUB_VERSION"
	else
		command -v go >/dev/null || die "no pulumi CLI and no Go toolchain found. Install Pulumi the official way \
(https://www.pulumi.com/docs/iac/download-install/) and run npm run setup again, or install Go 1.26+ to build it here."
		step "pulumi CLI $PULUMI_CLI_VERSION" build_cli
		step "language host nodejs" build_language_host
		step "command provider $COMMAND_PLUGIN_VERSION" build_command_provider
		step "random provider $RANDOM_VERSION" build_bridged_provider random "$RANDOM_VERSION"
		step "github provider $GITHUB_VERSION" build_bridged_provider github "$GITHUB_VERSION"
		use_project_pulumi
		step "plugin cache" install_built_plugin command "$COMMAND_PLUGIN_VERSION"
		step "plugin cache random" install_built_plugin random "$RANDOM_VERSION"
		step "plugin cache github" install_built_plugin github "$GITHUB_VERSION"
	fi
	printf '    %-28s %6ss\n' "setup total" "$(seconds_since "$t0")" >&2
}

main

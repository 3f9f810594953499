// npm run doctor -- --stack S: what each host of the stack needs, checked over the stack's own
// connection, each problem with its fix: the tools a release uses on PATH in a non-interactive SSH
// session (the same check and words as the release script's require_tools), Node's version, the
// deploy root's owner and free space, the clock against this machine's, and that PM2 comes back
// after a reboot (`pm2 startup` for the deploy user), with the exact one-time root command.
// Exits 1 when a host has a problem. The remote script and the reading of its answer are pure.
import { Layout, layout } from "../infra/paths";
import { quote } from "../infra/shell";
import { hostsOf, openStack, rootOf, parseFlags, runCli, sshToStack, UsageError } from "./stacks";

/** What a release runs on the VPS (release.lib.sh require_tools checks the same list). */
export const REQUIRED_TOOLS = ["bash", "node", "pm2", "npm", "tar", "gzip", "sha256sum", "flock", "setsid"] as const;
export const MIN_NODE_MAJOR = 18;
/** Free space on the deploy root below which a release may not fit (MB). */
export const MIN_FREE_MB = 1024;
/** Clock skew that makes times in revisions.log and leases misleading (seconds). */
export const MAX_SKEW = 60;

/** The remote script: one `KEY value` line per fact. Pure. */
export function doctorScript(l: Layout): string {
  return [
    `for t in ${REQUIRED_TOOLS.join(" ")}; do if command -v "$t" >/dev/null 2>&1; then echo "TOOL $t $(command -v "$t")"; else echo "TOOL $t"; fi; done`,
    `echo "USER $(id -un) $HOME"`,
    `echo "NODE $(node -v 2>/dev/null || true)"`,
    `echo "PM2BIN $(command -v pm2 2>/dev/null || true) $(command -v node 2>/dev/null || true)"`,
    `echo "CLOCK $(date +%s)"`,
    `if [ -e ${quote(l.root)} ]; then echo "ROOT $(stat -c %U ${quote(l.root)}) $(df -Pk ${quote(l.root)} | awk 'NR == 2 { print $4 }')"; ` +
      `else echo "ROOT - $(df -Pk "$(dirname ${quote(l.root)})" 2>/dev/null | awk 'NR == 2 { print $4 }')"; fi`,
    // pm2 startup writes a systemd unit pm2-USER (or an rc script elsewhere); a crontab @reboot resurrect also does.
    `u="$(id -un)"; if [ -f "/etc/systemd/system/pm2-$u.service" ] || [ -f "/lib/systemd/system/pm2-$u.service" ] || ` +
      `[ -f "/etc/init.d/pm2-$u" ] || crontab -l 2>/dev/null | grep -q '@reboot.*pm2 resurrect'; then echo "STARTUP yes"; else echo "STARTUP no"; fi`,
  ].join("\n");
}

/** A tool the release needs that `user`'s non-interactive SSH sessions do not find, with its fix (release.lib.sh require_tools says the same). */
export function notOnPath(tool: string, user: string): string {
  return `${tool} is not on PATH for ${user} in non-interactive SSH sessions (for node and pm2: put the PATH line at the top of ~/.bashrc)` +
    (tool === "flock" || tool === "setsid" ? "; it is in util-linux: apt-get install util-linux" : tool === "pm2" ? "; npm install -g pm2" : "");
}

/** The problems in a host's answer, each with its fix; none when the host is ready. Pure. */
export function diagnose(answer: string, opts: { root: string; localClock: number }): string[] {
  const problems: string[] = [];
  const facts = new Map<string, string[]>();
  for (const line of answer.split("\n")) {
    const [key, ...rest] = line.trim().split(" ");
    if (key) facts.set(key === "TOOL" ? `TOOL ${rest[0]}` : key, rest);
  }
  const [user = "?", home = "?"] = facts.get("USER") ?? [];
  for (const t of REQUIRED_TOOLS) {
    const found = facts.get(`TOOL ${t}`);
    if (found && found.length < 2) problems.push(notOnPath(t, user));
  }
  const node = (facts.get("NODE") ?? [])[0] ?? "";
  const major = Number(/^v(\d+)/.exec(node)?.[1] ?? 0);
  if (node && major < MIN_NODE_MAJOR) problems.push(`node ${node} is too old: the deploy needs Node ${MIN_NODE_MAJOR} or newer (22 recommended)`);
  const clock = Number((facts.get("CLOCK") ?? [])[0] ?? NaN);
  if (Number.isFinite(clock) && Math.abs(clock - opts.localClock) > MAX_SKEW) {
    problems.push(`the clock is ${Math.round(clock - opts.localClock)} s off this machine's: enable NTP (timedatectl set-ntp true, as root)`);
  }
  const [owner = "", freeKb = ""] = facts.get("ROOT") ?? [];
  if (owner && owner !== "-" && owner !== user) {
    problems.push(`${opts.root} belongs to ${owner}, not to ${user}: as root, chown -R ${user} ${opts.root}`);
  }
  if (freeKb && Number(freeKb) / 1024 < MIN_FREE_MB) {
    problems.push(`only ${Math.round(Number(freeKb) / 1024)} MB free on ${opts.root} (a release needs room for two copies of itself; keep at least ${MIN_FREE_MB} MB): free space, or lower app:keepReleases`);
  }
  if ((facts.get("STARTUP") ?? [])[0] === "no") {
    const [pm2 = "pm2", nodeBin = ""] = facts.get("PM2BIN") ?? [];
    const nodeDir = nodeBin ? nodeBin.replace(/\/node$/, "") : "";
    problems.push(`PM2 does not come back after a reboot: pm2 startup was not run for ${user}. Once, as root: ` +
      `env PATH=$PATH${nodeDir ? `:${nodeDir}` : ""} ${pm2} startup systemd -u ${user} --hp ${home}` +
      ` (then, as ${user}, pm2 save; every release saves PM2's list)`);
  }
  return problems;
}

async function main(): Promise<void> {
  const f = parseFlags(process.argv.slice(2), { values: ["stack"] });
  if (typeof f.stack !== "string") throw new UsageError("--stack is required (npm run doctor -- --stack staging)");
  const stack = await openStack(f.stack);
  const root = await rootOf(stack);
  let bad = false;
  for (const h of await hostsOf(stack)) {
    const r = await sshToStack(stack, doctorScript(layout(root)), h);
    const problems = r.status === 0 ? diagnose(r.stdout, { root, localClock: Math.round(Date.now() / 1000) })
      : [`ssh to ${h.label} failed: ${(r.stderr || r.error?.message || "").trim()} (check vps:host, vps:port, vps:user and the host key)`];
    console.log(`host ${h.label}: ${problems.length === 0 ? "ready" : `${problems.length} problem(s)`}`);
    for (const p of problems) console.log(`  ! ${p}`);
    bad ||= problems.length > 0;
  }
  if (bad) process.exitCode = 1;
}

if (require.main === module) runCli(main);

// Shared by rollback, releases and promote: open a stack of this project through the Automation
// API with the project's CLI (never PulumiCommand.install, which downloads), and reach its VPS.
import { LocalWorkspace, PulumiCommand, Stack } from "@pulumi/pulumi/automation";
import { spawn, spawnSync, SpawnSyncReturns } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import type { Provenance } from "../infra/config";
import { readingState } from "../infra/live";
import { quote } from "../infra/shell";
import { knownHostsLine, sshArgs } from "../infra/ssh";
import { isHealthy } from "../infra/scripts/deploy-helper";

export const projectRoot = path.resolve(__dirname, "..");

/** Thrown for a user error: printed as `error: message`, without a stack trace. */
export class UsageError extends Error {}

/** Parses `--name value` and `--flag` arguments; unknown names are refused. */
export function parseFlags(argv: string[], known: { values: string[]; flags?: string[] }): Record<string, string | true> {
  const out: Record<string, string | true> = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const m = /^--([a-z-]+)(?:=(.*))?$/.exec(a);
    if (!m) throw new UsageError(`unexpected argument ${JSON.stringify(a)}`);
    const [, name, inline] = m;
    if (known.flags?.includes(name)) {
      out[name] = true;
    } else if (known.values.includes(name)) {
      const v = inline ?? argv[++i];
      if (v === undefined || v.startsWith("--")) throw new UsageError(`--${name} needs a value`);
      out[name] = v;
    } else {
      throw new UsageError(`unknown option --${name} (known: ${[...known.values, ...(known.flags ?? [])].map((k) => `--${k}`).join(", ")})`);
    }
  }
  return out;
}

/** The project's CLI: .tools/bin/pulumi when setup built it, else the user's own on PATH. */
async function projectCli(): Promise<PulumiCommand> {
  const built = path.join(projectRoot, ".tools");
  return existsSync(path.join(built, "bin", "pulumi"))
    ? PulumiCommand.get({ root: built, skipVersionCheck: true })
    : PulumiCommand.get({ skipVersionCheck: true });
}

/**
 * The stack's config (`pulumi config --json`). Like every read of a stack's state or config through
 * the CLI here, through readingState (infra/live.ts): tried again when it lands in a checkpoint
 * save of an `up` running at the same time.
 */
export function configOf(stack: Stack): ReturnType<Stack["getAllConfig"]> {
  return readingState(() => stack.getAllConfig());
}

export async function openStack(name: string): Promise<Stack> {
  if ((name === "local" || name === "local-fleet") && !process.env.PULUMI_CONFIG_PASSPHRASE && !process.env.PULUMI_CONFIG_PASSPHRASE_FILE) {
    // Same rule as scripts/pulumi.sh: a fixed passphrase only for the throwaway local stack.
    process.env.PULUMI_CONFIG_PASSPHRASE = "local-vps-only-not-a-secret";
  }
  const ws = await LocalWorkspace.create({ workDir: projectRoot, pulumiCommand: await projectCli() });
  const stacks = await readingState(() => ws.listStacks());
  if (!stacks.some((s) => s.name === name || s.name.endsWith(`/${name}`))) {
    throw new UsageError(`no stack ${JSON.stringify(name)} in this backend (have: ${stacks.map((s) => s.name).join(", ") || "none"})`);
  }
  return Stack.select(name, ws);
}

export async function outputsOf(stack: Stack): Promise<Record<string, string>> {
  const out = await readingState(() => stack.outputs());
  // Strings as they are; objects and lists (provenance, migrations) as JSON text.
  return Object.fromEntries(Object.entries(out).map(([k, v]) =>
    [k, typeof v.value === "string" ? v.value : v.value === undefined ? "" : JSON.stringify(v.value)]));
}

/**
 * Points the stack at a release (`{ release: ID }` or `{ artifact: PATH }`; the two keys are
 * exclusive), records its provenance (app:provenance) and runs `pulumi up`. If the up fails, the
 * keys are put back as they were: the stack still records, and the VPS still serves, the old release.
 */
export async function upWithRelease(
  stack: Stack, target: { release: string } | { artifact: string }, message: string, provenance?: Provenance,
): Promise<void> {
  const keys = ["app:artifact", "app:release", "app:provenance"];
  const before = await configOf(stack);
  const restore = async () => {
    for (const key of keys) {
      const v = before[key];
      if (v === undefined) await stack.removeConfig(key);
      else await stack.setConfig(key, { value: v.value, secret: v.secret });
    }
  };
  const [set, unset] = "release" in target
    ? [{ key: "app:release", value: target.release }, "app:artifact"]
    : [{ key: "app:artifact", value: target.artifact }, "app:release"];
  await stack.removeConfig(unset);
  await stack.setConfig(set.key, { value: set.value });
  // Where the release came from; the program records it only while it names the release deployed.
  if (provenance) await stack.setConfig("app:provenance", { value: JSON.stringify(provenance) });
  else await stack.removeConfig("app:provenance");
  try {
    await stack.up({ onOutput: (out) => process.stdout.write(out), message });
  } catch (e) {
    await restore();
    throw e;
  }
}

/** One host of a stack: its vps:host, or an entry of its vps:hosts (a fleet). */
export interface StackHost {
  host: string;
  port: string;
  hostKey: string;
  /** `host:port`, as the stack's `hosts` output names it. */
  label: string;
  /** Whether the stack is a fleet (vps:hosts): its records are per host, in the `hosts` output. */
  fleet: boolean;
}

/**
 * What the stack records for one host: a fleet's from its `hosts` output (keyed by host:port), a
 * single VPS's from the top-level outputs. Keyed on the stack's config, not on which outputs are
 * present: a single-VPS stack's `hosts` output is `{}`.
 */
export function recordedFor(out: Record<string, string>, h: StackHost): { releaseId: string; previousReleaseId: string } {
  if (!h.fleet) return { releaseId: out.releaseId ?? "", previousReleaseId: out.previousReleaseId ?? "" };
  let hosts: Record<string, { releaseId?: unknown; previousReleaseId?: unknown } | undefined> = {};
  try {
    hosts = out.hosts ? (JSON.parse(out.hosts) as typeof hosts) ?? {} : {};
  } catch {
    // Not JSON: nothing recorded that can be read; the host reads as having no record.
  }
  const own = hosts[h.label];
  return {
    releaseId: typeof own?.releaseId === "string" ? own.releaseId : "",
    previousReleaseId: typeof own?.previousReleaseId === "string" ? own.previousReleaseId : "",
  };
}

/** The stack's hosts from its config, the primary first (a fleet's primary migrates and answers for it). */
export async function hostsOf(stack: Stack): Promise<StackHost[]> {
  const cfg = await configOf(stack);
  const fleet = cfg["vps:hosts"]?.value;
  if (!fleet) {
    const host = cfg["vps:host"]?.value ?? "";
    const port = cfg["vps:port"]?.value ?? "22";
    return [{ host, port, hostKey: cfg["vps:hostKey"]?.value ?? "", label: `${host}:${port}`, fleet: false }];
  }
  let list: { host?: unknown; port?: unknown; hostKey?: unknown; primary?: unknown }[];
  try {
    list = JSON.parse(fleet) as typeof list;
  } catch {
    throw new UsageError("the stack's vps:hosts is not a JSON list (pulumi preview names the problem)");
  }
  const hosts = list.map((h) => {
    const host = String(h.host ?? "");
    const port = String(h.port ?? "22");
    return { host, port, hostKey: String(h.hostKey ?? ""), label: `${host}:${port}`, fleet: true, primary: h.primary === true };
  });
  const primary = Math.max(0, hosts.findIndex((h) => h.primary));
  return [hosts[primary], ...hosts.filter((_, i) => i !== primary)].map(({ primary: _p, ...h }) => h);
}

/** The stack's deploy root (vps:root). */
export async function rootOf(stack: Stack): Promise<string> {
  const root = (await configOf(stack))["vps:root"]?.value;
  if (!root) throw new UsageError(`stack ${stack.name} has no vps:root (npm run pulumi -- config set -s ${stack.name} vps:root PATH)`);
  return root;
}

/** The host `--host` names (its `host:port` or its address) among the stack's hosts. */
export function pickHost(hosts: StackHost[], wanted: string, stackName: string): StackHost {
  const host = hosts.find((h) => h.label === wanted || h.host === wanted);
  if (!host) throw new UsageError(`--host ${wanted}: not a host of ${stackName} (${hosts.map((h) => h.label).join(", ")})`);
  return host;
}

/** The stack's connection as files in a 0600 temp folder, for one ssh call; removed afterwards. */
async function withConnection<T>(stack: Stack, host: StackHost | undefined, fn: (args: (script: string) => string[]) => Promise<T> | T): Promise<T> {
  const cfg = await configOf(stack);
  const get = (k: string) => cfg[k]?.value;
  const to = host ?? (await hostsOf(stack))[0];
  const dir = mkdtempSync(path.join(tmpdir(), "vps-ssh-"));
  try {
    const key = path.join(dir, "key");
    const known = path.join(dir, "known_hosts");
    // OpenSSH refuses a key file without its final newline, which `config set` strips.
    writeFileSync(key, `${(get("vps:privateKey") ?? "").trimEnd()}\n`, { mode: 0o600 });
    writeFileSync(known, knownHostsLine(to.host, to.port, to.hostKey));
    return await fn((script) => sshArgs({ user: get("vps:user") ?? "", host: to.host, port: to.port, keyFile: key, knownHosts: known }, script));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * Runs `script` on the stack's VPS (on a fleet: on `host`, by default the primary) with the stack's
 * own connection config (key in a 0600 temp file, the host key pinned).
 */
export function sshToStack(stack: Stack, script: string, host?: StackHost): Promise<SpawnSyncReturns<string>> {
  return withConnection(stack, host, (args) => spawnSync("ssh", args(script), { encoding: "utf8" }));
}

/** The same, with the terminal attached (a stream, a command's own output); resolves to its exit status. */
export function sshToStackAttached(stack: Stack, script: string, host?: StackHost): Promise<number> {
  return withConnection(stack, host, (args) => new Promise<number>((resolve) => {
    const child = spawn("ssh", args(script), { stdio: "inherit" });
    // Ctrl-C (or a kill) ends ssh, and with it the remote command; this process waits for that.
    const forward = (sig: NodeJS.Signals) => child.kill(sig);
    process.on("SIGINT", forward).on("SIGTERM", forward);
    child.on("exit", (code, signal) => {
      process.off("SIGINT", forward).off("SIGTERM", forward);
      resolve(code ?? (signal === "SIGINT" ? 130 : 143));
    });
  }));
}

/** The shell line run on the VPS: one GET with Node's fetch, printing `STATUS BODY` (0 when unreachable). */
export function probeScript(url: string): string {
  const js = 'fetch(process.argv[1]).then(async r => console.log(r.status + " " + (await r.text()).slice(0, 500)))' +
    '.catch(e => console.log("0 " + e.message))';
  return `node -e ${quote(js)} ${quote(url)}`;
}

/** Whether a `STATUS BODY` answer is healthy for `releaseId`: the one health rule (deploy-helper.js isHealthy). */
export function healthy(answer: string, releaseId: string): boolean {
  const space = answer.indexOf(" ");
  const status = Number(space === -1 ? answer : answer.slice(0, space));
  return isHealthy(status, space === -1 ? "" : answer.slice(space + 1), releaseId);
}

/** Asks `url` on the stack's VPS (it is on the VPS's loopback): `STATUS BODY`, `0 ssh: ...` when unreachable. */
export async function askHealth(stack: Stack, url: string, host?: StackHost): Promise<string> {
  const r = await sshToStack(stack, probeScript(url), host);
  return r.stdout.trim() || `0 ssh: ${r.stderr.trim()}`;
}

/**
 * Asks `url` on every host of the stack: the first answer that is not healthy for `releaseId`,
 * prefixed with its host on a fleet, or the primary's healthy answer.
 */
export async function askHealthEverywhere(stack: Stack, url: string, releaseId: string): Promise<string> {
  const hosts = await hostsOf(stack);
  const answers = await Promise.all(hosts.map((h) => askHealth(stack, url, h)));
  const bad = answers.findIndex((a) => !healthy(a, releaseId));
  if (bad === -1) return answers[0];
  return hosts.length === 1 ? answers[bad] : `${answers[bad]} (host ${hosts[bad].label})`;
}

/** Runs main, printing a UsageError as one line and exiting 2. */
export function runCli(main: () => Promise<void>): void {
  main().catch((e: unknown) => {
    if (e instanceof UsageError) {
      console.error(`error: ${e.message}`);
      process.exit(2);
    }
    console.error(e instanceof Error ? e.message : e);
    process.exit(1);
  });
}

// The local-VPS and stack driver that the end-to-end tests, the bench and the scripts share: the
// local VPS, Pulumi stacks in a throwaway state backend, artifacts made from examples/backend, meters.
import { ChildProcess, execFileSync, spawn, spawnSync, SpawnSyncReturns } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { get as httpGet } from "node:http";
import { AddressInfo, createServer, Socket } from "node:net";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { packDirectory, releaseIdOf, sha256File } from "../infra/artifact";
import { sshArgs } from "../infra/ssh";
import { packageApp } from "../scripts/package";

export const projectRoot = path.resolve(__dirname, "..");

export interface Vps {
  host: string;
  port: number;
  user: string;
  keyFile: string;
  privateKey: string;
  hostKey: string;
  root: string;
  knownHosts: string;
  /** The local VPS's state folder (sshd's config, pid file and keys). */
  stateDir: string;
}

/** Starts the local VPS (idempotent) without touching the `local` stack, and returns its connection. */
export function localVps(): Vps {
  const up = run("bash", ["scripts/local-vps.sh", "up"], { env: { LOCAL_VPS_NO_STACK: "1" } });
  if (up.status !== 0) throw new Error(`local-vps up failed:\n${up.stdout}\n${up.stderr}`);
  const env = run("bash", ["scripts/local-vps.sh", "env"]);
  const vars: Record<string, string> = {};
  for (const line of env.stdout.split("\n")) {
    const m = /^([A-Z_]+)=(.*)$/.exec(line);
    if (m) vars[m[1]] = m[2].replace(/^\$?'(.*)'$/, "$1").replace(/\\ /g, " ");
  }
  return {
    host: vars.VPS_HOST,
    port: Number(vars.VPS_PORT),
    user: vars.VPS_USER,
    keyFile: vars.VPS_KEY_FILE,
    privateKey: readFileSync(vars.VPS_KEY_FILE, "utf8"),
    hostKey: vars.VPS_HOST_KEY,
    root: vars.VPS_ROOT,
    knownHosts: vars.VPS_KNOWN_HOSTS,
    stateDir: vars.VPS_STATE_DIR,
  };
}

/** The local fleet (scripts/local-fleet.sh): hosts in network namespaces, PostgreSQL and a balancer. */
export interface Fleet {
  user: string;
  keyFile: string;
  privateKey: string;
  root: string;
  /** The balancer in front of every host's app port, on loopback. */
  lbUrl: string;
  databaseUrl: string;
  stateDir: string;
  hosts: { host: string; port: number; hostKey: string }[];
}

/** Starts the local fleet of `n` hosts (idempotent) without touching the `local-fleet` stack. */
export function localFleet(n: number, appPort: number): Fleet {
  const up = run("bash", ["scripts/local-fleet.sh", "up", String(n), "--app-port", String(appPort)], { env: { LOCAL_FLEET_NO_STACK: "1" } });
  if (up.status !== 0) throw new Error(`local-fleet up failed:\n${up.stdout}\n${up.stderr}`);
  const vars = shellVars(run("bash", ["scripts/local-fleet.sh", "env"]).stdout);
  const count = Number(vars.FLEET_HOSTS);
  return {
    user: vars.FLEET_USER,
    keyFile: vars.FLEET_KEY_FILE,
    privateKey: readFileSync(vars.FLEET_KEY_FILE, "utf8"),
    root: vars.FLEET_ROOT,
    lbUrl: vars.FLEET_LB_URL,
    databaseUrl: vars.FLEET_DATABASE_URL,
    stateDir: vars.FLEET_STATE_DIR,
    hosts: Array.from({ length: count }, (_, i) => ({ host: vars[`FLEET_HOST_${i + 1}`], port: 22, hostKey: vars[`FLEET_HOST_KEY_${i + 1}`] })),
  };
}

/** One host of the fleet as a Vps (for sshRun). */
export function fleetHost(fleet: Fleet, i: number): Vps {
  const h = fleet.hosts[i];
  const knownHosts = path.join(fleet.stateDir, `known_hosts.${i + 1}`);
  writeFileSync(knownHosts, `${h.host} ${h.hostKey}\n`);
  return { ...h, user: fleet.user, keyFile: fleet.keyFile, privateKey: fleet.privateKey, root: fleet.root, knownHosts, stateDir: fleet.stateDir };
}

/** `NAME=value` lines as printed by the local VPS scripts' `env` (values %q-quoted). */
function shellVars(text: string): Record<string, string> {
  const vars: Record<string, string> = {};
  for (const line of text.split("\n")) {
    const m = /^([A-Z0-9_]+)=(.*)$/.exec(line);
    if (m) vars[m[1]] = m[2].replace(/^\$?'(.*)'$/, "$1").replace(/\\(.)/g, "$1");
  }
  return vars;
}

/** Runs a command on the local VPS as the deploy user. */
export function sshRun(vps: Vps, script: string, input?: string): SpawnSyncReturns<string> {
  return run("ssh", sshArgs(vps, script), { input });
}

export function run(
  cmd: string, args: string[], opts: { cwd?: string; env?: Record<string, string>; input?: string } = {},
): SpawnSyncReturns<string> {
  return spawnSync(cmd, args, {
    cwd: opts.cwd ?? projectRoot,
    env: { ...process.env, ...opts.env },
    input: opts.input,
    encoding: "utf8",
    maxBuffer: 64 * 1024 * 1024,
  });
}

/** A stack of a Pulumi program in its own file backend, with a throwaway passphrase. */
export class TestStack {
  readonly backend: string;
  readonly name: string;
  /**
   * `prefix` must start with "e2e-": Pulumi.e2e-*.yaml files are git-ignored. The name gets a random
   * suffix. Stacks that must see each other (promotion) share a `backend` folder.
   */
  constructor(readonly programDir: string, prefix: string, backend?: string) {
    this.backend = backend ?? mkdtempSync(path.join(tmpdir(), "vps-release-e2e-"));
    this.name = `${prefix}-${randomBytes(3).toString("hex")}`;
    const r = this.pulumi(["stack", "init", this.name]);
    if (r.status !== 0) throw new Error(`stack init failed: ${r.stderr}`);
  }

  /** The environment of every CLI call: this stack's backend and its throwaway passphrase. */
  private get env(): Record<string, string> {
    return { PULUMI_BACKEND_URL: `file://${this.backend}`, PULUMI_CONFIG_PASSPHRASE: "e2e-test-passphrase", PULUMI_STACK: "" };
  }

  pulumi(args: string[], input?: string): SpawnSyncReturns<string> {
    return run("bash", ["scripts/pulumi.sh", "-C", this.programDir, ...args], { env: this.env, input });
  }

  /** `plaintext`: a value whose key looks secret to Pulumi (app:generatedSecrets) but is not. */
  setConfig(key: string, value: string, opts: { secret?: boolean; plaintext?: boolean } = {}): void {
    const args = ["config", "set", "-s", this.name, key, ...(opts.plaintext ? ["--plaintext"] : [])];
    const r = opts.secret
      ? this.pulumi([...args, "--secret"], value)
      : this.pulumi([...args, "--", value]);
    if (r.status !== 0) throw new Error(`config set ${key} failed: ${r.stderr}`);
  }

  /**
   * Points the stack at the local VPS with a deploy root and a PM2 app of its own (default: named
   * after the stack) listening on `port`.
   */
  useVps(vps: Vps, port: number, opts: { root?: string; app?: string } = {}): void {
    this.setVps(vps);
    this.setConfig("vps:root", opts.root ?? `${vps.root}-${this.name}`);
    this.setConfig("app:name", opts.app ?? this.name);
    this.setConfig("app:port", String(port));
  }

  setVps(vps: Vps, overrides: Partial<Record<"hostKey", string>> = {}): void {
    this.setConfig("vps:host", vps.host);
    this.setConfig("vps:port", String(vps.port));
    this.setConfig("vps:user", vps.user);
    this.setConfig("vps:hostKey", overrides.hostKey ?? vps.hostKey);
    this.setConfig("vps:privateKey", vps.privateKey, { secret: true });
  }

  up(extra: string[] = []): SpawnSyncReturns<string> {
    return this.pulumi(["up", "-s", this.name, "--yes", "--skip-preview", "--non-interactive", ...extra]);
  }

  /** `pulumi up` in the background: resolves when it ends, so a test can act while it runs. */
  upAsync(extra: string[] = []): Promise<{ status: number | null; stdout: string; stderr: string }> {
    return this.pulumiAsync(["up", "-s", this.name, "--yes", "--skip-preview", "--non-interactive", ...extra]);
  }

  /**
   * The project's CLI without blocking this process: needed when this process also serves
   * something the program calls (the GitHub API stand-in).
   */
  pulumiAsync(args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
    const child = spawn("bash", ["scripts/pulumi.sh", "-C", this.programDir, ...args], {
      cwd: projectRoot,
      env: { ...process.env, ...this.env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (d: string) => (stdout += d));
    child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d));
    return new Promise((resolve) => child.on("close", (status) => resolve({ status, stdout, stderr })));
  }

  preview(extra: string[] = []): SpawnSyncReturns<string> {
    return this.pulumi(["preview", "-s", this.name, "--non-interactive", ...extra]);
  }

  /** Removes the stack and its Pulumi.<stack>.yaml; the VPS is left as it is. */
  remove(): void {
    this.pulumi(["stack", "rm", "-s", this.name, "--force", "--yes"]);
    rmSync(this.backend, { recursive: true, force: true });
    rmSync(path.join(this.programDir, `Pulumi.${this.name}.yaml`), { force: true });
  }

  outputs(): Record<string, unknown> {
    const r = this.pulumi(["stack", "output", "-s", this.name, "--json", "--show-secrets"]);
    if (r.status !== 0) throw new Error(`stack output failed: ${r.stderr}`);
    return JSON.parse(r.stdout) as Record<string, unknown>;
  }
}

/** A free TCP port on loopback. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.on("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address() as AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

/** GET a URL; resolves with status and parsed JSON body (or the raw text). */
export function getJson(url: string): Promise<{ status: number; body: unknown }> {
  return new Promise((resolve, reject) => {
    const req = httpGet(url, { timeout: 3000, agent: false }, (res) => {
      let text = "";
      res.setEncoding("utf8");
      res.on("data", (d) => (text += d));
      res.on("end", () => {
        let body: unknown = text;
        try {
          body = JSON.parse(text);
        } catch {
          // not JSON: keep the text
        }
        resolve({ status: res.statusCode ?? 0, body });
      });
    });
    req.on("timeout", () => req.destroy(new Error("timeout")));
    req.on("error", reject);
  });
}

export interface LoadStats {
  ok: number;
  failed: number;
  errors: Record<string, number>;
  releases: Record<string, number>;
  firstFailureAt: number | null;
}

/** Meters still running; each is killed when the test process exits, whatever a test did. */
const meters = new Set<ChildProcess>();
process.on("exit", () => {
  for (const child of meters) child.kill("SIGKILL");
});

/**
 * Starts a measuring script (`scripts/node.sh SCRIPT URL`) that prints `ready`, runs until SIGTERM,
 * then prints its result as one JSON line; stop() returns that result.
 * While it runs it keeps no handle of the test process alive (unref): a test that throws before its
 * stop() must never leave the suite waiting for the meter (issue 13).
 */
export async function startMeter<T>(script: string, url: string): Promise<{ stop: () => Promise<T> }> {
  const child = spawn("bash", ["scripts/node.sh", script, url], { cwd: projectRoot, stdio: ["ignore", "pipe", "inherit"] });
  meters.add(child);
  let out = "";
  child.stdout.setEncoding("utf8");
  await new Promise<void>((resolve, reject) => {
    child.stdout.on("data", (d: string) => {
      out += d;
      if (out.includes("ready\n")) resolve();
    });
    child.on("exit", () => reject(new Error(`${script} exited early: ${out}`)));
  });
  child.unref();
  (child.stdout as Socket).unref();
  let stopped: Promise<T> | undefined;
  return {
    stop: () => stopped ??= new Promise((resolve) => {
      child.ref();
      (child.stdout as Socket).ref();
      child.on("exit", () => {
        meters.delete(child);
        resolve(JSON.parse(out.trim().split("\n").pop() as string) as T);
      });
      child.kill("SIGTERM");
    }),
  };
}

/** Starts the load client (test/support/load-client.ts) against `url`; stop() returns its counts. */
export async function startLoad(url: string): Promise<{ stop: () => Promise<LoadStats> }> {
  const load = await startMeter<LoadStats>("test/support/load-client.ts", url);
  // Let it reach a steady rate before the deploy starts.
  await new Promise((r) => setTimeout(r, 300));
  return load;
}

/**
 * examples/backend packaged for real (A), extracted, and variants of it: copies changed by an edit
 * and packed again (each a new release id).
 */
export class Artifacts {
  readonly work = mkdtempSync(path.join(tmpdir(), "e2e-artifacts-"));
  readonly a: { file: string; id: string; sha256: string };
  readonly extracted: string;

  /** withNodeModules: A brings its production node_modules (npm run package -- --with-node-modules). */
  constructor(opts: { withNodeModules?: boolean } = {}) {
    const appDir = process.env.E2E_BACKEND_DIR ?? path.join(projectRoot, "examples", "backend");
    const packaged = packageApp({ appDir, out: path.join(this.work, "a.tar.gz"), withNodeModules: opts.withNodeModules });
    this.a = { file: packaged.path, id: packaged.releaseId, sha256: packaged.sha256 };
    this.extracted = path.join(this.work, "a");
    mkdirSync(this.extracted);
    execFileSync("tar", ["-xzf", this.a.file, "-C", this.extracted]);
  }

  /** Packs `tree` (an extracted artifact) into work/NAME.tar.gz. */
  pack(tree: string, name: string): { file: string; id: string } {
    const file = path.join(this.work, `${name}.tar.gz`);
    writeFileSync(file, packDirectory({ root: tree, entries: readdirSync(tree).sort() }));
    return { file, id: releaseIdOf(sha256File(file)) };
  }

  /** A copy of A changed by `edit` (which gets the copy's folder). */
  variant(name: string, edit: (dir: string) => void): { file: string; id: string } {
    const dir = path.join(this.work, name);
    execFileSync("cp", ["-a", this.extracted, dir]);
    edit(dir);
    return this.pack(dir, name);
  }

  remove(): void {
    rmSync(this.work, { recursive: true, force: true });
  }
}

/**
 * A stack of the real program on the local VPS, as most end-to-end tests want it: a deploy root,
 * PM2 app and port of its own, examples/backend's artifacts, a 20 s health timeout. remove() takes
 * the app, the root, the stack and the artifacts away again.
 */
export async function stackOnLocalVps(prefix: string, opts: { withNodeModules?: boolean } = {}): Promise<{
  vps: Vps; stack: TestStack; artifacts: Artifacts; root: string; health: string;
  live: () => Promise<string | undefined>; remove: () => void;
}> {
  const vps = localVps();
  const artifacts = new Artifacts(opts);
  const stack = new TestStack(projectRoot, prefix);
  const root = `${vps.root}-${stack.name}`;
  const port = await freePort();
  const health = `http://127.0.0.1:${port}/health`;
  stack.useVps(vps, port, { root });
  stack.setConfig("app:healthTimeout", "20");
  return {
    vps, stack, artifacts, root, health,
    live: async () => ((await getJson(health)).body as { release?: string }).release,
    remove: () => {
      sshRun(vps, `pm2 delete ${stack.name} >/dev/null 2>&1; pm2 save --force >/dev/null 2>&1; rm -rf ${root}`);
      stack.remove();
      artifacts.remove();
    },
  };
}

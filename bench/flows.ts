// The three ways to deploy that the bench compares, behind one interface: ours (`pulumi up` with
// app:artifact / app:release), the seed's bash script, and Capistrano (bench/capistrano.ts).
import { spawnSync, SpawnSyncReturns } from "node:child_process";
import { randomBytes } from "node:crypto";
import * as path from "node:path";
import { projectRoot, sshRun, TestStack, Vps } from "../driver/local";
import { Variant } from "./artifacts";
import { FlowName } from "./report";
import { sha256File } from "../infra/artifact";
import { layersOf } from "../infra/layers";
import { activationRan, onlyAppLayerUploaded, parseReleaseOutput, stepSeconds, StepTiming } from "../infra/protocol";
import { parseStepLines } from "./steps";

/** What ssh says when the connection never got to run anything. */
export const SSH_UNREACHABLE = /Connection refused|kex_exchange_identification|Connection closed by .* port \d+\s*$/m;

/** What one command of a flow took. */
export interface Outcome {
  wall: number;
  steps: Record<string, number>;
  uploaded: number;
}

export interface Flow {
  readonly name: FlowName;
  /** PM2 app name and deploy root on the VPS (bench-<flow>-<random>). */
  readonly app: string;
  readonly root: string;
  readonly port: number;
  setup(): void;
  /** Deploys a release; throws when the flow fails. */
  deploy(v: Variant): Outcome;
  /** Back to the release before the live one, the flow's own way. */
  rollback(): Outcome;
  /** Deploys a release that crashes at start, and whatever the flow needs until it serves again. */
  deployCrashing(v: Variant): Promise<Outcome>;
  teardown(): void;
}

export const healthUrl = (f: Flow) => `http://127.0.0.1:${f.port}/health`;

export function newName(flow: FlowName): string {
  return `bench-${flow}-${randomBytes(3).toString("hex")}`;
}

/** Runs a command and times it. */
export function timedRun(cmd: string, args: string[], opts: { cwd?: string; env?: Record<string, string> } = {}): { wall: number; r: SpawnSyncReturns<string> } {
  const t0 = process.hrtime.bigint();
  const r = spawnSync(cmd, args, { cwd: opts.cwd ?? projectRoot, env: { ...process.env, ...opts.env }, encoding: "utf8", maxBuffer: 256 * 1024 * 1024 });
  return { wall: Number(process.hrtime.bigint() - t0) / 1e9, r };
}

export function failure(what: string, r: SpawnSyncReturns<string>): Error {
  const tail = (s: string) => s.trimEnd().split("\n").slice(-30).join("\n");
  return new Error(`${what} failed (exit ${r.status ?? r.signal}):\n${tail(r.stdout ?? "")}\n${tail(r.stderr ?? "")}`);
}

/** Removes a flow's PM2 app and deploy root: only what this bench created. */
export function removeApp(vps: Vps, app: string, root: string): void {
  const script = `pm2 delete ${app} >/dev/null 2>&1; pm2 save --force >/dev/null 2>&1; rm -rf ${root}`;
  for (let attempt = 1; attempt <= 3; attempt++) {
    // The shared VPS's sshd may be restarting (another user's local:down/up): wait and try again.
    if (sshRun(vps, script).status === 0) return;
    spawnSync("sleep", ["3"]);
  }
  console.error(`  could not remove the PM2 app ${app} and ${root} from the VPS; on it run: ${script}`);
}

/** Ours: a Pulumi stack of this program (TestStack: its own file backend), one `pulumi up` per command. */
export class OursFlow implements Flow {
  readonly name = "ours" as const;
  readonly app = newName("ours");
  readonly root: string;
  private stack?: TestStack;
  private readonly onVps = new Set<string>();
  private readonly live: string[] = [];

  constructor(private readonly vps: Vps, readonly port: number) {
    this.root = `/home/${vps.user}/${this.app}`;
  }

  setup(): void {
    const stack = new TestStack(projectRoot, "e2e-bench");
    this.stack = stack;
    stack.useVps(this.vps, this.port, { root: this.root, app: this.app });
  }

  /** The stack's name, for the engine floor (a no-op `up`). */
  get stackName(): string {
    return this.s.name;
  }

  private get s(): TestStack {
    if (!this.stack) throw new Error("ours: setup() first");
    return this.stack;
  }

  private target(key: "app:artifact" | "app:release", value: string): void {
    const other = key === "app:artifact" ? "app:release" : "app:artifact";
    this.s.pulumi(["config", "rm", "-s", this.s.name, other]);
    this.s.setConfig(key, value);
  }

  private up(what: string, expectFailure = false): Outcome & { ok: boolean; text: string } {
    const t0 = process.hrtime.bigint();
    const r = this.s.up();
    const wall = Number(process.hrtime.bigint() - t0) / 1e9;
    if (r.status !== 0 && !expectFailure) throw failure(`ours: ${what}`, r);
    return { wall, steps: this.stepsOf(r), uploaded: 0, ok: r.status === 0, text: `${r.stdout}\n${r.stderr}` };
  }

  /**
   * The release's steps, from the two sources both command providers fill the same way
   * (infra/protocol.ts): a failed up's error text, or a successful one's `releaseSteps` output
   * (the official provider shows the lines of a successful run only as passing status lines).
   */
  private stepsOf(r: { status: number | null; stdout: string; stderr: string }): Record<string, number> {
    const fromLog = parseReleaseOutput(`${r.stdout}\n${r.stderr}`);
    if (r.status !== 0 || !activationRan(r.stdout)) {
      return stepSeconds(fromLog.steps);
    }
    const steps = this.s.outputs().releaseSteps as StepTiming[] | undefined;
    return stepSeconds(steps ?? fromLog.steps);
  }

  /**
   * What the up sent: nothing for a release the VPS has; its app layer when the release script
   * says only that came (infra/layers.ts); else the whole artifact.
   */
  private uploadedBy(v: Variant, text: string): number {
    if (this.onVps.has(v.id)) return 0;
    if (!onlyAppLayerUploaded(text)) return v.bytes;
    return layersOf(v.file, sha256File(v.file))?.appBytes ?? v.bytes;
  }

  deploy(v: Variant): Outcome {
    this.target("app:artifact", v.file);
    const { text, ...o } = this.up(`pulumi up of release ${v.name}`);
    o.uploaded = this.uploadedBy(v, text);
    this.onVps.add(v.id);
    if (this.live[this.live.length - 1] !== v.id) this.live.push(v.id);
    return o;
  }

  rollback(): Outcome {
    const to = this.live[this.live.length - 2];
    if (!to) throw new Error("ours: no previous release to roll back to");
    this.target("app:release", to);
    const { text: _text, ...o } = this.up(`pulumi up with app:release=${to}`);
    this.live.push(to);
    return o;
  }

  async deployCrashing(v: Variant): Promise<Outcome> {
    this.target("app:artifact", v.file);
    // Refused at preflight: the live release never stops serving, so there is nothing to recover.
    const { text, ...o } = this.up(`pulumi up of the crashing release ${v.name}`, true);
    if (o.ok) throw new Error(`ours: the crashing release ${v.name} was not refused`);
    o.uploaded = this.uploadedBy(v, text);
    this.onVps.add(v.id);
    return o;
  }

  teardown(): void {
    removeApp(this.vps, this.app, this.root);
    this.stack?.remove();
  }
}

/** The seed's script (bench/baselines/seed-deploy.sh, seed-rollback.sh). */
export class SeedFlow implements Flow {
  readonly name = "seed" as const;
  readonly app = newName("seed");
  readonly root: string;

  constructor(private readonly vps: Vps, readonly port: number) {
    this.root = `/home/${vps.user}/${this.app}`;
  }

  private env(): Record<string, string> {
    return {
      SEED_HOST: this.vps.host, SEED_SSH_PORT: String(this.vps.port), SEED_USER: this.vps.user, SEED_KEY: this.vps.keyFile,
      SEED_KNOWN_HOSTS: this.vps.knownHosts, SEED_ROOT: this.root, SEED_APP: this.app, SEED_APP_PORT: String(this.port),
    };
  }

  private script(name: string, args: string[], expectFailure = false): Outcome & { ok: boolean } {
    const run = () => timedRun("bash", [path.join(projectRoot, "bench", "baselines", name), ...args], { env: this.env() });
    let { wall, r } = run();
    if (r.status === 255 && SSH_UNREACHABLE.test(r.stderr)) {
      // The shared local VPS's sshd was restarting (another user's local:down/up): nothing ran, try once more.
      console.error(`  seed: ${name}: the VPS refused the SSH connection; trying again in 3 s`);
      spawnSync("sleep", ["3"]);
      const again = run();
      wall += again.wall;
      r = again.r;
    }
    if (r.status !== 0 && !expectFailure) throw failure(`seed: ${name}`, r);
    return { wall, steps: parseStepLines(r.stdout), uploaded: 0, ok: r.status === 0 };
  }

  /** What the seed's README asks for once, by hand: the app folder and its .env. */
  setup(): void {
    const env = `DATABASE_URL="file:${this.root}/shared/app.db"\n`;
    const r = sshRun(this.vps, `mkdir -p ${this.root}/current ${this.root}/shared && cat > ${this.root}/current/.env && chmod 600 ${this.root}/current/.env`, env);
    if (r.status !== 0) throw failure("seed: setup", r);
  }

  deploy(v: Variant): Outcome {
    const o = this.script("seed-deploy.sh", [v.file]);
    o.uploaded = v.bytes;
    return o;
  }

  rollback(): Outcome {
    return this.script("seed-rollback.sh", []);
  }

  async deployCrashing(v: Variant): Promise<Outcome> {
    // The health check after the reload fails (10 s, then 5 tries); then the manual option.
    const d = this.script("seed-deploy.sh", [v.file], true);
    if (d.ok) throw new Error(`seed: the crashing release ${v.name} passed the health check`);
    const rb = this.rollback();
    return { wall: d.wall + rb.wall, steps: mergeSteps(d.steps, rb.steps, "rollback:"), uploaded: v.bytes };
  }

  teardown(): void {
    removeApp(this.vps, this.app, this.root);
  }
}

/** Both sets of steps; the second one's names get a prefix. */
export function mergeSteps(a: Record<string, number>, b: Record<string, number>, prefix: string): Record<string, number> {
  return { ...a, ...Object.fromEntries(Object.entries(b).map(([k, v]) => [`${prefix}${k}`, v])) };
}

// Capistrano 3 as a bench flow: `cap bench deploy` / `cap bench deploy:rollback` with
// bench/baselines/capistrano, from a local bare git repository the VPS user reads (file://). Each
// release's unpacked artifact (dist/ included: the VPS does not build) is committed and pushed to
// `main` before its deploy. cap runs here, as the SSH user of the VPS, with the VPS's key.
import { execFileSync, spawnSync } from "node:child_process";
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import * as path from "node:path";
import { getJson, projectRoot, Vps } from "../driver/local";
import { Variant, VariantName } from "./artifacts";
import { failure, Flow, healthUrl, mergeSteps, newName, Outcome, removeApp, timedRun } from "./flows";
import { parseCapTasks } from "./steps";

const CAP_DIR = path.join(projectRoot, "bench", "baselines", "capistrano");
export const CAP_PACKAGES = ["capistrano", "ruby-ed25519", "ruby-bcrypt-pbkdf"];

/**
 * Makes sure `cap` and the gems for ed25519 keys are there: installs the Debian packages when
 * running as root with apt-get, else throws naming them.
 */
export function ensureCapistrano(log: (line: string) => void): void {
  const ok = () => spawnSync("ruby", ["-e", 'require "capistrano/all"; require "ed25519"; require "bcrypt_pbkdf"'], { stdio: "ignore" }).status === 0 &&
    spawnSync("cap", ["--version"], { stdio: "ignore" }).status === 0;
  if (ok()) return;
  const hint = `the Capistrano baseline needs the Debian packages ${CAP_PACKAGES.join(" ")} (apt-get install -y ${CAP_PACKAGES.join(" ")}), or run the bench with --flows ours,seed`;
  if (process.getuid?.() !== 0 || spawnSync("apt-get", ["--version"], { stdio: "ignore" }).status !== 0) throw new Error(hint);
  log(`installing ${CAP_PACKAGES.join(" ")} (apt-get) ...`);
  const r = spawnSync("apt-get", ["install", "-y", "-q", ...CAP_PACKAGES], { env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" }, encoding: "utf8" });
  if (r.status !== 0 || !ok()) throw new Error(`${hint}\napt-get said:\n${r.stdout}\n${r.stderr}`);
}

export class CapistranoFlow implements Flow {
  readonly name = "cap" as const;
  readonly app = newName("cap");
  readonly root: string;
  /** The bare repository the VPS clones (owned by the VPS user: git refuses another owner's repository). */
  private readonly repo: string;
  /** Where the commits are made (root's), with each release's tree as the work tree. */
  private readonly gitDir: string;
  private readonly gitConfig: string;
  private readonly commits = new Map<VariantName, string>();

  constructor(private readonly vps: Vps, readonly port: number, private readonly work: string) {
    this.root = `/home/${vps.user}/${this.app}`;
    this.repo = `/tmp/${this.app}-repo.git`;
    this.gitDir = path.join(work, `${this.app}-commits`, ".git");
    this.gitConfig = path.join(work, `${this.app}.gitconfig`);
  }

  private git(args: string[], cwd = this.work): string {
    return execFileSync("git", [`--git-dir=${this.gitDir}`, ...args], {
      cwd,
      encoding: "utf8",
      maxBuffer: 64 * 1024 * 1024,
      // Our own global config: pushing into the VPS user's repository needs safe.directory.
      env: { ...process.env, GIT_CONFIG_GLOBAL: this.gitConfig, GIT_AUTHOR_NAME: "bench", GIT_AUTHOR_EMAIL: "bench@localhost", GIT_COMMITTER_NAME: "bench", GIT_COMMITTER_EMAIL: "bench@localhost" },
    });
  }

  setup(): void {
    mkdirSync(this.work, { recursive: true });
    writeFileSync(this.gitConfig, "[safe]\n\tdirectory = *\n[init]\n\tdefaultBranch = main\n");
    execFileSync("git", ["init", "-q", "--bare", this.repo], { env: { ...process.env, GIT_CONFIG_GLOBAL: this.gitConfig } });
    execFileSync("git", ["init", "-q", path.dirname(this.gitDir)], { env: { ...process.env, GIT_CONFIG_GLOBAL: this.gitConfig } });
    execFileSync("chown", ["-R", `${this.vps.user}:`, this.repo]);
  }

  private env(): Record<string, string> {
    return {
      CAP_HOST: this.vps.host, CAP_SSH_PORT: String(this.vps.port), CAP_USER: this.vps.user, CAP_KEY: this.vps.keyFile,
      CAP_KNOWN_HOSTS: this.vps.knownHosts, CAP_ROOT: this.root, CAP_APP: this.app, CAP_APP_PORT: String(this.port),
      CAP_REPO: `file://${this.repo}`, CAP_LOG: path.join(this.work, `${this.app}.log`),
    };
  }

  private cap(task: string): Outcome {
    const { wall, r } = timedRun("cap", ["bench", task], { cwd: CAP_DIR, env: this.env() });
    if (r.status !== 0) throw failure(`cap bench ${task}`, r);
    return { wall, steps: parseCapTasks(r.stdout), uploaded: 0 };
  }

  /**
   * Commits the release's tree (once) and points `main` at it. Returns the bytes the push added to
   * the repository: the objects the VPS's mirror does not have yet, which its next fetch transfers.
   */
  private publish(v: Variant): number {
    let sha = this.commits.get(v.name);
    if (!sha) {
      this.git([`--work-tree=${v.tree}`, "add", "-A", "."], v.tree);
      this.git(["commit", "-q", "--allow-empty", "-m", `release ${v.name}`]);
      sha = this.git(["rev-parse", "HEAD"]).trim();
      this.commits.set(v.name, sha);
    }
    const before = duBytes(path.join(this.repo, "objects"));
    this.git(["push", "-q", "--force", this.repo, `${sha}:refs/heads/main`]);
    execFileSync("chown", ["-R", `${this.vps.user}:`, this.repo]);
    return Math.max(0, duBytes(path.join(this.repo, "objects")) - before);
  }

  deploy(v: Variant): Outcome {
    const uploaded = this.publish(v);
    return { ...this.cap("deploy"), uploaded };
  }

  rollback(): Outcome {
    return this.cap("deploy:rollback");
  }

  async deployCrashing(v: Variant): Promise<Outcome> {
    // Capistrano reports success: pm2 startOrReload exits 0 with crashing workers. The bench then
    // does what the user would, at once: check /health (5 tries, 1 s apart), then roll back.
    const uploaded = this.publish(v);
    const d = this.cap("deploy");
    const t0 = process.hrtime.bigint();
    let healthy = false;
    for (let i = 0; i < 5 && !healthy; i++) {
      if (i > 0) await new Promise((r) => setTimeout(r, 1000));
      healthy = await getJson(healthUrl(this)).then((x) => x.status === 200, () => false);
    }
    const check = Number(process.hrtime.bigint() - t0) / 1e9;
    if (healthy) throw new Error(`cap: the crashing release ${v.name} answered healthy`);
    const rb = this.rollback();
    return { wall: d.wall + check + rb.wall, steps: mergeSteps(d.steps, rb.steps, "rollback:"), uploaded };
  }

  teardown(): void {
    removeApp(this.vps, this.app, this.root);
    rmSync(this.repo, { recursive: true, force: true });
    rmSync(path.dirname(this.gitDir), { recursive: true, force: true });
  }
}

function duBytes(dir: string): number {
  return Number(execFileSync("du", ["-sb", dir], { encoding: "utf8" }).split("\t")[0]);
}

// `npm run package -- APP_DIR [OUT] [--with-node-modules]`: build a backend into a release artifact.
// The same sources give the same bytes (see infra/artifact.ts), so an unchanged build keeps its release id.
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { assertSafeArchive, migrationNames, packDirectory, releaseIdOf, sha256Of } from "../infra/artifact";
import { remember } from "../infra/inspectionCache";
import { layersOf } from "../infra/layers";
import { reproducibleTransform } from "./reproducible";

export const PROJECT_ROOT = path.resolve(__dirname, "..");
export const USAGE = "usage: npm run package -- [APP_DIR] [OUT] [--with-node-modules] (APP_DIR defaults to package.json's vpsRelease.backend)";

/**
 * The backend's folder, relative to the project root: package.json's `vpsRelease.backend`, the one
 * setting the workflows, `npm run package` and the messages use (README "Use it for your backend").
 */
export function backendFolder(projectRoot = PROJECT_ROOT): string {
  const file = path.join(projectRoot, "package.json");
  const pkg = JSON.parse(fs.readFileSync(file, "utf8")) as { vpsRelease?: { backend?: unknown } };
  const folder = pkg.vpsRelease?.backend;
  if (typeof folder !== "string" || folder.trim() === "" || path.isAbsolute(folder) || folder.split(/[\\/]/).includes("..")) {
    throw new PackageError(`${file}: vpsRelease.backend must name the backend's folder inside the project, e.g. "backend" ` +
      `(got ${JSON.stringify(folder)}); set it: npm pkg set vpsRelease.backend=backend`);
  }
  return folder.replace(/\/+$/, "");
}
/**
 * Packed when present, beside dist/ and package.json. prisma.config.* is where Prisma 6.x reads the
 * schema and migrations paths from, so `prisma migrate deploy` in the release needs it.
 */
export const OPTIONAL_ENTRIES = ["package-lock.json", "prisma", ...["ts", "mts", "cts", "js", "mjs", "cjs"].map((ext) => `prisma.config.${ext}`)];
/** Lines of a failed command's output shown in the error. */
const TAIL_LINES = 40;

export interface PackageOptions {
  /** The backend's folder: a package.json whose "build" script writes dist/. */
  appDir: string;
  /** Where the tarball goes. Default `<projectRoot>/.artifacts/<package name>-<release id>.tar.gz`. */
  out?: string;
  /** Also pack production node_modules, installed by `npm ci --omit=dev` in a scratch copy. Default false. */
  withNodeModules?: boolean;
  /** Folder of the default `out`. Default PROJECT_ROOT. */
  projectRoot?: string;
  /** Receives one line per step. Default: nothing is logged. */
  log?: (line: string) => void;
}

export interface PackageResult {
  /** Absolute path of the tarball. */
  path: string;
  size: number;
  sha256: string;
  releaseId: string;
}

export interface CliArgs {
  appDir: string;
  out?: string;
  withNodeModules: boolean;
}

/** An expected failure: its message says what is wrong and how to fix it. */
export class PackageError extends Error {
  override name = "PackageError";
}

/**
 * Leaves local databases and env files out of prisma/: a dev SQLite file would ship to production and
 * change the release id whenever it changes; secrets belong in the VPS's shared .env.
 */
export function excludedFromArtifact(archivePath: string): boolean {
  return /^prisma\/(.*\/)?([^/]+\.db(-journal|-wal|-shm)?|\.env(\.[^/]*)?)$/.test(archivePath);
}

/** Installs, generates the Prisma client, builds, and packs APP_DIR into a reproducible tarball. */
export function packageApp(opts: PackageOptions): PackageResult {
  const log = opts.log ?? ((): void => {});
  const appDir = path.resolve(opts.appDir);
  const pkg = readPackageJson(appDir);
  const env = commandEnv();
  const hasLock = fs.existsSync(path.join(appDir, "package-lock.json")) || fs.existsSync(path.join(appDir, "npm-shrinkwrap.json"));

  const install = hasLock ? ["ci"] : ["install"];
  run(log, "installing dependencies", "npm", [...install, "--no-audit", "--no-fund"], appDir, env);
  if (OPTIONAL_ENTRIES.some((f) => f.startsWith("prisma") && fs.existsSync(path.join(appDir, f)))) {
    // Why: without a DATABASE_URL, Prisma 6 cannot read the schema's datasource and falls back to
    // downloading its native engine; generate never connects, so a dummy local file is enough.
    const prismaEnv = { ...env, DATABASE_URL: env.DATABASE_URL || "file:./package-generate.db" };
    run(log, "generating the Prisma client", "npx", ["--no", "prisma", "generate"], appDir, prismaEnv);
  }
  // A stale file from an earlier build would ship too, and make the same sources give other bytes.
  fs.rmSync(path.join(appDir, "dist"), { recursive: true, force: true });
  run(log, "building", "npm", ["run", "build"], appDir, env);
  if (!isDir(path.join(appDir, "dist"))) {
    throw new PackageError(`npm run build in ${appDir} did not write ${path.join(appDir, "dist")}: make the "build" script of package.json compile the app to dist/ (e.g. "tsc -p tsconfig.json" with "outDir": "dist")`);
  }

  const entries = ["dist", "package.json", ...OPTIONAL_ENTRIES.filter((f) => fs.existsSync(path.join(appDir, f)))];
  log(`==> packing ${entries.join(", ")}${opts.withNodeModules ? ", node_modules (production)" : ""}`);
  const tarball = opts.withNodeModules ? packWithProductionModules(appDir, entries, env, log)
    : packDirectory({ root: appDir, entries, exclude: excludedFromArtifact, transform: reproducibleTransform(appDir) });
  const inspected = assertSafeArchive(tarball);

  const sha256 = sha256Of(tarball);
  const releaseId = releaseIdOf(sha256);
  const out = path.resolve(opts.out ?? path.join(opts.projectRoot ?? PROJECT_ROOT, ".artifacts", `${artifactName(pkg.name, appDir)}-${releaseId}.tar.gz`));
  fs.mkdirSync(path.dirname(out), { recursive: true });
  const partial = `${out}.partial-${process.pid}`;
  fs.writeFileSync(partial, tarball);
  fs.renameSync(partial, out);
  // The inspection just made is the one the first up of this artifact would make here again
  // (infra/inputs.ts checkArtifact: gunzip and walk, 1-2.5 s for 63 MB): remembered per sha256.
  remember(sha256, { migrations: migrationNames(inspected) });
  if (opts.withNodeModules) {
    // Split now, while it is at hand: the first up of it on this machine then finds its layers cached.
    log("==> splitting the artifact into its layers (node_modules digest, app layer)");
    layersOf(out, sha256);
  }
  return { path: out, size: tarball.length, sha256, releaseId };
}

/** The `key: value` lines and the final JSON line that the CLI prints. */
export function formatResult(r: PackageResult): string {
  const json = JSON.stringify({ path: r.path, size: r.size, sha256: r.sha256, releaseId: r.releaseId });
  return `path: ${r.path}\nsize: ${r.size}\nsha256: ${r.sha256}\nreleaseId: ${r.releaseId}\n${json}\n`;
}

export function parseArgs(argv: string[], defaultAppDir?: () => string): CliArgs {
  const positional: string[] = [];
  let withNodeModules = false;
  for (const arg of argv) {
    if (arg === "--with-node-modules") withNodeModules = true;
    else if (arg.startsWith("-")) throw new PackageError(`unknown option ${arg}\n${USAGE}`);
    else positional.push(arg);
  }
  if (positional.length === 0 && defaultAppDir) return { appDir: defaultAppDir(), out: undefined, withNodeModules };
  if (positional.length < 1 || positional.length > 2) throw new PackageError(`expected APP_DIR and an optional OUT, got ${positional.length} arguments\n${USAGE}`);
  return { appDir: positional[0], out: positional[1], withNodeModules };
}

/** The CLI: relative paths are taken from where `npm run` was started (INIT_CWD). Returns the exit code. */
export function main(argv: string[], cwd = process.env.INIT_CWD || process.cwd()): number {
  if (argv.includes("--help") || argv.includes("-h")) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  try {
    // No APP_DIR: the project's backend folder (package.json vpsRelease.backend), from the project root.
    const args = parseArgs(argv, () => path.join(PROJECT_ROOT, backendFolder()));
    const result = packageApp({
      appDir: path.resolve(cwd, args.appDir),
      out: args.out === undefined ? undefined : path.resolve(cwd, args.out),
      withNodeModules: args.withNodeModules,
      log: (line) => process.stderr.write(`${line}\n`),
    });
    process.stdout.write(formatResult(result));
    return 0;
  } catch (err) {
    process.stderr.write(`error: ${err instanceof PackageError ? err.message : err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    return 1;
  }
}

function readPackageJson(appDir: string): { name?: string; scripts?: Record<string, string> } {
  if (!isDir(appDir)) throw new PackageError(`APP_DIR ${appDir} does not exist or is not a folder: pass the backend's folder, e.g. npm run package -- ${safeBackendFolder()}`);
  const file = path.join(appDir, "package.json");
  if (!fs.existsSync(file)) throw new PackageError(`no package.json in ${appDir}: APP_DIR must be a Node app's folder (run npm init there, or pass the right folder)`);
  let pkg: unknown;
  try {
    pkg = JSON.parse(fs.readFileSync(file, "utf8"));
  } catch (err) {
    throw new PackageError(`${file} is not valid JSON (${(err as Error).message}): fix it`);
  }
  if (typeof pkg !== "object" || pkg === null) throw new PackageError(`${file} must hold a JSON object`);
  const { name, scripts } = pkg as { name?: unknown; scripts?: unknown };
  const build = typeof scripts === "object" && scripts !== null ? (scripts as Record<string, unknown>).build : undefined;
  if (typeof build !== "string" || build.trim() === "") {
    throw new PackageError(`${file} has no "build" script: add one that compiles the app to dist/, e.g. "scripts": { "build": "tsc -p tsconfig.json" }`);
  }
  return { name: typeof name === "string" ? name : undefined, scripts: scripts as Record<string, string> };
}

/** `@scope/name` -> `scope-name`; the folder's name when package.json has none. */
function artifactName(name: string | undefined, appDir: string): string {
  const base = (name ?? path.basename(appDir)).replace(/^@/, "").replace(/[^A-Za-z0-9._-]+/g, "-").replace(/^[.-]+/, "");
  return base || "app";
}

function isDir(p: string): boolean {
  try {
    return fs.statSync(p).isDirectory();
  } catch {
    return false;
  }
}

/** The environment of npm: without what an outer `npm run` set for its own script, quiet. */
function commandEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (/^npm_(package_|lifecycle_)/.test(k) || k === "npm_config_local_prefix" || k === "INIT_CWD") continue;
    env[k] = v;
  }
  return { ...env, npm_config_update_notifier: "false", npm_config_fund: "false", npm_config_audit: "false" };
}

/** Runs a command with stdout and stderr merged; on failure, throws with the tail of the output. */
function run(log: (line: string) => void, step: string, cmd: string, args: string[], cwd: string, env: NodeJS.ProcessEnv): void {
  const shown = `${cmd} ${args.join(" ")}`;
  log(`==> ${step}: ${shown} (in ${cwd})`);
  const r = spawnSync("sh", ["-c", 'exec "$@" 2>&1', "sh", cmd, ...args], { cwd, env, encoding: "utf8", maxBuffer: 512 * 1024 * 1024, stdio: ["ignore", "pipe", "pipe"] });
  if (r.error) throw new PackageError(`${step} failed in ${cwd}: could not run ${shown} (${r.error.message})`);
  if (r.status === 127 && /not found/.test(r.stdout)) throw new PackageError(`${step} failed in ${cwd}: ${cmd} is not on PATH (npm run setup installs Node and npm)`);
  if (r.status !== 0) {
    const lines = r.stdout.trimEnd().split("\n");
    const tail = lines.slice(-TAIL_LINES).join("\n");
    throw new PackageError(`${step} failed in ${cwd}: \`${shown}\` exited with ${r.status ?? r.signal}; last ${Math.min(lines.length, TAIL_LINES)} lines of its output:\n${tail}`);
  }
}

/**
 * Installs production dependencies in a scratch copy of the app (APP_DIR keeps its dev
 * node_modules) and packs that copy. The scratch folder's path depends only on APP_DIR, so tools
 * that write their install path into node_modules give the same bytes on the next run.
 */
function packWithProductionModules(appDir: string, entries: string[], env: NodeJS.ProcessEnv, log: (line: string) => void): Buffer {
  const stage = path.join(os.tmpdir(), "vps-release-package", createHash("sha256").update(appDir).digest("hex").slice(0, 12));
  fs.rmSync(stage, { recursive: true, force: true });
  fs.mkdirSync(stage, { recursive: true });
  try {
    const copy = (name: string): void => {
      if (!fs.existsSync(path.join(appDir, name))) return;
      fs.cpSync(path.join(appDir, name), path.join(stage, name), {
        recursive: true,
        verbatimSymlinks: true,
        filter: (src) => !excludedFromArtifact(path.relative(appDir, src).split(path.sep).join("/")),
      });
    };
    for (const name of [...entries, ".npmrc"]) copy(name);
    const hasLock = entries.includes("package-lock.json") || fs.existsSync(path.join(stage, "npm-shrinkwrap.json"));
    run(log, "installing production dependencies", "npm", [hasLock ? "ci" : "install", "--omit=dev", "--no-audit", "--no-fund"], stage, env);
    const modules = path.join(stage, "node_modules");
    fs.mkdirSync(modules, { recursive: true });
    // The Prisma client generated in APP_DIR replaces whatever a postinstall generated here: the
    // generated code records the folder it was generated in, and this one is a scratch folder.
    const generated = path.join(appDir, "node_modules", ".prisma");
    if (fs.existsSync(generated)) {
      fs.rmSync(path.join(modules, ".prisma"), { recursive: true, force: true });
      fs.cpSync(generated, path.join(modules, ".prisma"), { recursive: true, verbatimSymlinks: true });
    }
    return packDirectory({ root: stage, entries: [...entries, "node_modules"], exclude: excludedFromArtifact,
      transform: reproducibleTransform(appDir, stage) });
  } finally {
    fs.rmSync(stage, { recursive: true, force: true });
  }
}

if (require.main === module) process.exitCode = main(process.argv.slice(2));

/** The backend folder for a message: the setting, or its placeholder when it is unset. */
function safeBackendFolder(): string {
  try {
    return backendFolder();
  } catch {
    return "backend";
  }
}

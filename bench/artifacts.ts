// The bench's artifacts, built from a copy of examples/backend (never the folder itself: another
// run or test may be building there). Per kind, four releases:
//   A  the packaged app               B  A with one line added to dist/server.js
//   C  B plus a small dependency (package.json and package-lock.json change; node_modules too when packed)
//   X  B that throws at start (a release that crashes before it listens)
import { execFileSync } from "node:child_process";
import { cpSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, unlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { assertSafeArchiveFile, migrationNames, packDirectory, releaseIdOf, sha256File } from "../infra/artifact";
import { remember } from "../infra/inspectionCache";
import { layersOf } from "../infra/layers";
import { projectRoot } from "../driver/local";
import { packageApp } from "../scripts/package";
import { ArtifactInfo, ArtifactKind } from "./report";

export const VARIANTS = ["A", "B", "C", "X"] as const;
export type VariantName = (typeof VARIANTS)[number];

export interface Variant {
  name: VariantName;
  /** The release tarball. */
  file: string;
  bytes: number;
  id: string;
  /** Its contents, unpacked (Capistrano commits this tree). */
  tree: string;
}

export interface ArtifactSet {
  kind: ArtifactKind;
  info: ArtifactInfo;
  variants: Record<VariantName, Variant>;
}

/** The dependency that release C adds: small, no dependencies of its own, not in the app's tree. */
export const ADDED_DEPENDENCY = "kleur@4.1.5";

const SOURCES = ["package.json", "package-lock.json", "prisma", "prisma.config.ts", "src", "tsconfig.json"];

/** Copies examples/backend's sources (no node_modules, dist or generated client) to a fixed scratch folder. */
export function copyBackend(): string {
  // A fixed path: Prisma writes the build folder into the generated client, so the ids stay the same run to run.
  const dir = path.join(tmpdir(), "vps-release-bench", "backend");
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const from = path.join(projectRoot, "examples", "backend");
  for (const name of SOURCES) {
    cpSync(path.join(from, name), path.join(dir, name), {
      recursive: true,
      filter: (src) => !src.split(path.sep).includes("generated") && !/\.db(-journal)?$/.test(src),
    });
  }
  return dir;
}

export function buildArtifacts(work: string, appDir: string, kind: ArtifactKind, log: (line: string) => void): ArtifactSet {
  const dir = path.join(work, kind);
  mkdirSync(dir, { recursive: true });
  log(`packaging examples/backend (${kind === "big" ? "with" : "without"} production node_modules) ...`);
  const a = packageApp({ appDir, out: path.join(dir, "A.tar.gz"), withNodeModules: kind === "big" });
  const treeA = path.join(dir, "A");
  mkdirSync(treeA);
  execFileSync("tar", ["-xzf", a.path, "-C", treeA]);

  const variant = (name: VariantName, from: string, edit: (tree: string) => void, hardLinks: boolean): Variant => {
    const tree = path.join(dir, name);
    // Hard links when only files that are replaced (never written in place) change.
    execFileSync("cp", [hardLinks ? "-al" : "-a", from, tree]);
    edit(tree);
    const file = path.join(dir, `${name}.tar.gz`);
    writeFileSync(file, packDirectory({ root: tree, entries: readdirSync(tree).sort() }));
    const sha256 = sha256File(file);
    // As npm run package does: its inspection remembered and, with node_modules, its layers split now.
    remember(sha256, { migrations: migrationNames(assertSafeArchiveFile(file)) });
    if (kind === "big") layersOf(file, sha256);
    return { name, file, bytes: statSync(file).size, id: releaseIdOf(sha256), tree };
  };
  const server = (tree: string) => path.join(tree, "dist", "server.js");
  const b = variant("B", treeA, (t) => replaceFile(server(t), `${readFileSync(server(t), "utf8")}\n// bench release B\n`), true);
  log(`release C: adding ${ADDED_DEPENDENCY} ...`);
  const c = variant("C", b.tree, (t) => {
    const args = kind === "big" ? ["--omit=dev"] : ["--package-lock-only"];
    execFileSync("npm", ["install", ...args, "--ignore-scripts", "--no-audit", "--no-fund", "--loglevel=error", ADDED_DEPENDENCY], { cwd: t, stdio: "inherit" });
  }, false);
  const x = variant("X", b.tree, (t) => replaceFile(server(t), `throw new Error("crash at start (bench release X)");\n${readFileSync(server(t), "utf8")}`), true);
  return {
    kind,
    info: {
      label: kind === "big" ? "examples/backend with its production node_modules in the artifact" : "examples/backend (production node_modules installed on the VPS)",
      bytes: a.size,
      nodeModulesBytes: kind === "big" ? duBytes(path.join(treeA, "node_modules")) : null,
    },
    variants: { A: { name: "A", file: a.path, bytes: a.size, id: a.releaseId, tree: treeA }, B: b, C: c, X: x },
  };
}

/** Writes a new file in place of a (maybe hard-linked) one, leaving the other links as they were. */
function replaceFile(file: string, text: string): void {
  unlinkSync(file);
  writeFileSync(file, text);
}

function duBytes(dir: string): number {
  return Number(execFileSync("du", ["-sb", dir], { encoding: "utf8" }).split("\t")[0]);
}

// An artifact split in two layers, so a release whose dependencies a kept release already has on
// the VPS sends only the rest (issue 18): the deps digest names its top-level node_modules (the
// records of scripts/deploy-helper.js treeDigest, which the VPS computes from a release's folder),
// and the app layer is a tar.gz of every other entry. Computed in one streaming pass per artifact
// sha256 and kept under cacheRoot()/layers. No layers (the whole artifact goes, as before) when the
// artifact has no node_modules folder, or one the split could not reproduce exactly: a repeated path
// under it, a hard link across the layers, a symlink outside it that leads into it, a
// node_modules/.cache (run-time caches the VPS leaves out of the digest: deploy-helper.js).
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import * as zlib from "node:zlib";
import { sha256File } from "./artifact";
import { cacheRoot } from "./cacheRoot";
import { TREE_CACHE, treeDigest, treeRecord } from "./scripts/deploy-helper";
import { ArchiveEntry, BLOCK, gunzipFile, padding, TarReader, tarHeaders } from "./tar";

export interface Layers {
  /** treeDigest of the artifact's node_modules. */
  depsDigest: string;
  /** The app layer: a tar.gz of every entry outside node_modules. */
  appPath: string;
  appSha256: string;
  appBytes: number;
}

const DEPS = "node_modules";
const DEPS_CACHE = `${DEPS}/${TREE_CACHE}`;
/** Bumped when the split changes: older cache entries are then ignored. */
const VERSION = 1;
/** Artifacts whose layers stay cached. */
const KEEP = 8;

/** The layers of the artifact `file` (sha256 `sha256`), from the cache or split now; undefined: send it whole. */
export function layersOf(file: string, sha256: string, dir = path.join(cacheRoot(), "layers")): Layers | undefined {
  const meta = path.join(dir, `v${VERSION}-${sha256}.json`);
  const app = path.join(dir, `v${VERSION}-${sha256}.app.tar.gz`);
  try {
    const known = JSON.parse(fs.readFileSync(meta, "utf8")) as { none?: boolean; depsDigest?: string; appSha256?: string };
    if (known.none) return undefined;
    if (typeof known.depsDigest === "string" && known.appSha256 && fs.existsSync(app) && sha256File(app) === known.appSha256) {
      return { depsDigest: known.depsDigest, appPath: app, appSha256: known.appSha256, appBytes: fs.statSync(app).size };
    }
  } catch {
    // not cached (or unreadable): split now
  }
  let split;
  try {
    split = splitArtifact(file);
  } catch {
    return undefined; // unreadable now: sent whole, and nothing cached
  }
  try {
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    if (split) writeAtomically(app, split.app);
    writeAtomically(meta, Buffer.from(JSON.stringify(split ? { depsDigest: split.depsDigest, appSha256: sha256Hex(split.app) } : { none: true })));
    prune(dir);
  } catch {
    return undefined; // no cache, no layers: the whole artifact goes
  }
  return split ? { depsDigest: split.depsDigest, appPath: app, appSha256: sha256Hex(split.app), appBytes: split.app.length } : undefined;
}

/**
 * The split itself, in memory for the app layer only (node_modules is hashed, never held); undefined
 * when the artifact is to be sent whole; throws when it cannot be read.
 */
export function splitArtifact(file: string): { depsDigest: string; app: Buffer } | undefined {
  const records: ReturnType<typeof treeRecord>[] = [];
  const seen = new Set<string>();
  const dirs = new Set<string>();
  const files = new Map<string, { x: string; sha: string }>();
  const appPaths = new Set<string>();
  const appChunks: Buffer[] = [];
  let refused = false;
  let current: { entry: ArchiveEntry; rel: string; hash?: ReturnType<typeof createHash>; appSize: number } | undefined;

  const finish = () => {
    if (!current) return;
    const { entry, rel, hash } = current;
    if (hash) {
      const sha = hash.digest("hex");
      const x = entry.mode & 0o100 ? "x" : "-";
      files.set(rel, { x, sha });
      records.push(treeRecord("f", rel, [x, sha]));
    } else if (current.appSize !== entry.size) {
      refused = true;
    } else if (entry.type === "file") {
      appChunks.push(Buffer.alloc(padding(entry.size)));
    }
    current = undefined;
  };
  const reader = new TarReader(Number.MAX_SAFE_INTEGER, {
    onEntry: (entry) => {
      finish();
      if (refused) return;
      const rel = normal(entry.path);
      const deps = rel === DEPS || rel.startsWith(`${DEPS}/`);
      if (!deps) {
        // Outside node_modules: into the app layer as it was (a hard link into node_modules, or a
        // symlink that leads there, would tie the layers together: no split).
        const target = entry.type === "symlink" ? path.posix.normalize(path.posix.join(path.posix.dirname(rel), entry.linkpath)) : "";
        const linked = entry.type === "hardlink" ? normal(entry.linkpath) : "";
        if ([target, linked].some((t) => t === DEPS || t.startsWith(`${DEPS}/`))) refused = true;
        appPaths.add(rel);
        appChunks.push(...tarHeaders({ ...entry, mode: entry.mode & 0o7777 }));
        current = { entry, rel, appSize: 0 };
        return;
      }
      if (seen.has(rel) || (rel === DEPS && entry.type !== "directory") || rel === DEPS_CACHE || rel.startsWith(`${DEPS_CACHE}/`)) {
        refused = true;
        return;
      }
      seen.add(rel);
      const parts = rel.split("/");
      for (let i = 1; i < parts.length; i++) dirs.add(parts.slice(0, i).join("/"));
      switch (entry.type) {
        case "directory":
          dirs.add(rel);
          break;
        case "file":
          current = { entry, rel, hash: createHash("sha256"), appSize: 0 };
          break;
        case "symlink":
          records.push(treeRecord("l", rel, [entry.linkpath]));
          break;
        case "hardlink": {
          const target = files.get(normal(entry.linkpath));
          if (!target) refused = true;
          else {
            files.set(rel, target);
            records.push(treeRecord("f", rel, [target.x, target.sha]));
          }
          break;
        }
        default:
          refused = true;
      }
    },
    onData: (data) => {
      if (!current || refused) return;
      if (current.hash) current.hash.update(data);
      else {
        appChunks.push(Buffer.from(data));
        current.appSize += data.length;
      }
    },
  });
  const problem = gunzipFile(file, (out) => {
    if (!reader.done) reader.push(out);
  }, Number.MAX_SAFE_INTEGER);
  reader.end();
  finish();
  if (problem || reader.problem) throw new Error(`${file}: ${problem ?? reader.problem}`);
  if (refused || !dirs.has(DEPS)) return undefined;
  // A path that is a folder and also a file, link or symlink (one entry replacing another on
  // extraction): no split.
  if (records.some((r) => dirs.has(r.path))) return undefined;
  for (const d of dirs) records.push(treeRecord("d", d));
  if (appPaths.size === 0) return undefined;
  appChunks.push(Buffer.alloc(2 * BLOCK));
  const gz = zlib.gzipSync(Buffer.concat(appChunks), { level: 6 });
  gz.writeUInt32LE(0, 4);
  gz[9] = 3;
  return { depsDigest: treeDigest(records), app: gz };
}

/** An entry path as extraction places it: no `./`, no empty components, no trailing `/`. */
function normal(p: string): string {
  return p.split("/").filter((c) => c !== "" && c !== ".").join("/");
}

function sha256Hex(b: Buffer): string {
  return createHash("sha256").update(b).digest("hex");
}

function writeAtomically(file: string, data: Buffer): void {
  const tmp = `${file}.${process.pid}`;
  fs.writeFileSync(tmp, data, { mode: 0o600 });
  fs.renameSync(tmp, file);
}

/** Keeps the newest KEEP artifacts' layers. */
function prune(dir: string): void {
  const metas = fs.readdirSync(dir).filter((n) => n.endsWith(".json"))
    .map((n) => ({ n, t: fs.statSync(path.join(dir, n)).mtimeMs })).sort((a, b) => b.t - a.t);
  for (const { n } of metas.slice(KEEP)) {
    for (const f of [n, n.replace(/\.json$/, ".app.tar.gz")]) fs.rmSync(path.join(dir, f), { force: true });
  }
}

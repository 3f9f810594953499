// Release artifacts: hash them, pack them reproducibly, and the release-archive rules they must keep
// before anything trusts them (the tar format itself is tar.ts). Pure Node: no Pulumi, so the
// packaging CLI and the tests use it as is.
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import * as zlib from "node:zlib";
import { ArchiveEntry, BLOCK, gunzipBuffer, gunzipFile, padding, TarReader, tarHeaders } from "./tar";

export type { ArchiveEntry, EntryType } from "./tar";

/** Entries an archive may hold before inspectArchive refuses it (InspectOptions.maxEntries). */
export const DEFAULT_MAX_ENTRIES = 200_000;
/** Bytes an archive may hold once gunzipped before inspectArchive refuses it (InspectOptions.maxBytes). */
export const DEFAULT_MAX_BYTES = 4 * 1024 ** 3;

/** What a release archive must satisfy; inspectArchive checks each, the VPS side may reuse them. */
export const ARCHIVE_RULES = [
  "every entry path is relative (no leading /)",
  "no entry path has a .. component",
  "no device files or FIFOs (tar types 3, 4, 6; `tar -tv` modes starting with c, b or p)",
  "only files, folders, symlinks and hard links (tar types 0, 5, 2, 1; PAX and GNU long names allowed)",
  "symlinks and hard links resolve inside the archive root, also through other symlinks in it",
  "package.json is a file at the root",
  `at most ${DEFAULT_MAX_ENTRIES} entries`,
] as const;
/** Matches an entry path that is absolute or has a `..` component. */
export const UNSAFE_PATH = /^\/|(^|\/)\.\.(\/|$)/;
/** Tar type flags that are refused outright: character device, block device, FIFO. */
export const REFUSED_TYPEFLAGS: readonly string[] = ["3", "4", "6"];
/** Matches the mode column of a `tar -tv` line for a refused type (c, b, p), e.g. `crw-r--r--`. */
export const REFUSED_TAR_TV_MODE = /^[cbp]/;

export interface InspectResult {
  entries: ArchiveEntry[];
  /** One line per problem, each naming the entry (or `archive:` for the whole); empty when safe. */
  problems: string[];
}

export interface InspectOptions {
  /** Refuse an archive with more entries than this. Default DEFAULT_MAX_ENTRIES. */
  maxEntries?: number;
  /** Refuse an archive whose tar stream is bigger than this. Default DEFAULT_MAX_BYTES. */
  maxBytes?: number;
}

export interface PackOptions {
  /** Folder the entries are read from; archive paths are relative to it. */
  root: string;
  /** Top-level names under root to include (files or folders, recursively); each must exist. */
  entries: string[];
  /** Leaves out an archive path (`/`-separated, relative to root) and, for a folder, all under it. */
  exclude?: (archivePath: string) => boolean;
  /** Rewrites a file's content before it is packed; null leaves the file out (scripts/reproducible.ts). */
  transform?: (archivePath: string, data: Buffer) => Buffer | null;
}

export function sha256Of(data: Buffer): string {
  return createHash("sha256").update(data).digest("hex");
}

/** Hex sha256 of a file, read in chunks. */
export function sha256File(file: string): string {
  const hash = createHash("sha256");
  const chunk = Buffer.alloc(1 << 20);
  const fd = fs.openSync(file, "r");
  try {
    for (let n = fs.readSync(fd, chunk); n > 0; n = fs.readSync(fd, chunk)) hash.update(chunk.subarray(0, n));
  } finally {
    fs.closeSync(fd);
  }
  return hash.digest("hex");
}

/** The release id of an artifact: the first 12 hex digits of its sha256. */
export function releaseIdOf(sha256: string): string {
  if (!/^[0-9a-f]{64}$/.test(sha256)) throw new Error(`releaseIdOf: expected a lowercase hex sha256 (64 digits), got ${JSON.stringify(sha256)}`);
  return sha256.slice(0, 12);
}

export function isReleaseId(s: string): boolean {
  return /^[0-9a-f]{12}$/.test(s);
}

// ---- packing ----


/**
 * A gzip'd ustar archive of `entries` under `root` whose bytes depend only on the paths, contents,
 * executable bits and symlink targets: entries sorted bytewise by path (a folder before its
 * contents), mtime 0, owner 0:0 with no names, modes 0755/0644, gzip level 9 with no name, mtime 0
 * and OS byte 3. Throws on a missing entry, a special file, or a symlink that leaves the archive.
 */
export function packDirectory(opts: PackOptions): Buffer {
  const root = path.resolve(opts.root);
  const items: { path: string; key: Buffer; abs: string; stat: fs.Stats }[] = [];
  const walk = (rel: string): void => {
    if (opts.exclude?.(rel)) return;
    const abs = path.join(root, ...rel.split("/"));
    const stat = fs.lstatSync(abs);
    items.push({ path: rel, key: Buffer.from(rel), abs, stat });
    if (stat.isDirectory()) for (const child of fs.readdirSync(abs)) walk(`${rel}/${child}`);
  };
  for (const name of opts.entries) {
    if (!name || name === "." || name === ".." || name.includes("/") || name.includes(path.sep)) {
      throw new Error(`packDirectory: entries must be top-level names under ${root}, got ${JSON.stringify(name)}`);
    }
    if (!fs.existsSync(path.join(root, name)) && !isSymlink(path.join(root, name))) {
      throw new Error(`packDirectory: ${path.join(root, name)} does not exist`);
    }
    walk(name);
  }
  items.sort((a, b) => Buffer.compare(a.key, b.key));

  const entries: ArchiveEntry[] = [];
  const chunks: Buffer[] = [];
  for (const item of items) {
    const { stat } = item;
    const base = { mtime: 0, uid: 0, gid: 0, size: 0, linkpath: "" };
    let entry: ArchiveEntry;
    let data: Buffer | undefined;
    if (stat.isDirectory()) {
      entry = { ...base, path: `${item.path}/`, type: "directory", typeflag: "5", mode: 0o755 };
    } else if (stat.isFile()) {
      const read = fs.readFileSync(item.abs);
      const transformed = opts.transform ? opts.transform(item.path, read) : read;
      if (transformed === null) continue;
      data = transformed;
      entry = { ...base, path: item.path, type: "file", typeflag: "0", mode: stat.mode & 0o111 ? 0o755 : 0o644, size: data.length };
    } else if (stat.isSymbolicLink()) {
      entry = { ...base, path: item.path, type: "symlink", typeflag: "2", mode: 0o777, linkpath: fs.readlinkSync(item.abs) };
    } else {
      throw new Error(`packDirectory: ${item.abs} is a ${specialKind(stat)}: only files, folders and symlinks can be packed`);
    }
    entries.push(entry);
    chunks.push(...tarHeaders(entry));
    if (data) chunks.push(data, Buffer.alloc(padding(data.length)));
  }
  const problems = checkEntries(entries, false);
  if (problems.length) throw new Error(`packDirectory: refusing to pack ${root}:\n${problems.map((p) => `  - ${p}`).join("\n")}`);
  chunks.push(Buffer.alloc(2 * BLOCK));
  const gz = zlib.gzipSync(Buffer.concat(chunks), { level: 9, windowBits: 15, memLevel: 8, strategy: zlib.constants.Z_DEFAULT_STRATEGY });
  gz.writeUInt32LE(0, 4); // mtime: already 0 from zlib, pinned so it never depends on it
  gz[9] = 3; // OS byte: Unix on every platform, so a Windows build gives the same bytes
  return gz;
}

function isSymlink(p: string): boolean {
  try {
    return fs.lstatSync(p).isSymbolicLink();
  } catch {
    return false;
  }
}

function specialKind(stat: fs.Stats): string {
  if (stat.isFIFO()) return "FIFO";
  if (stat.isSocket()) return "socket";
  if (stat.isCharacterDevice()) return "character device";
  if (stat.isBlockDevice()) return "block device";
  return "special file";
}

// ---- inspecting ----

/** Reads a gzip'd tar and lists every rule it breaks (see ARCHIVE_RULES); never throws. */
export function inspectArchive(buf: Buffer, options: InspectOptions = {}): InspectResult {
  if (buf.length < 2 || buf[0] !== 0x1f || buf[1] !== 0x8b) return { entries: [], problems: ["archive: not a gzip file"] };
  return inspectWith((onOutput, maxBytes) => gunzipBuffer(buf, onOutput, maxBytes), options);
}

/**
 * inspectArchive of a file, streamed: memory stays flat whatever the archive unpacks to (a 28 MB
 * gzip of 6 GiB of zeros is refused at maxBytes without holding any of it).
 */
export function inspectArchiveFile(file: string, options: InspectOptions = {}): InspectResult {
  const head = Buffer.alloc(2);
  const fd = fs.openSync(file, "r");
  try {
    if (fs.readSync(fd, head, 0, 2, 0) < 2 || head[0] !== 0x1f || head[1] !== 0x8b) return { entries: [], problems: ["archive: not a gzip file"] };
  } finally {
    fs.closeSync(fd);
  }
  return inspectWith((onOutput, maxBytes) => gunzipFile(file, onOutput, maxBytes), options);
}

type Gunzip = (onOutput: (out: Buffer) => void, maxBytes: number) => string | undefined;

function inspectWith(gunzip: Gunzip, options: InspectOptions): InspectResult {
  const reader = new TarReader(options.maxEntries ?? DEFAULT_MAX_ENTRIES);
  // The whole stream is gunzipped (and counted against maxBytes) even after the end-of-archive
  // block: what follows it would still be unpacked by the VPS's gzip.
  const gzipProblem = gunzip((out) => {
    if (!reader.done) reader.push(out);
  }, options.maxBytes ?? DEFAULT_MAX_BYTES);
  if (gzipProblem) return { entries: reader.entries, problems: [gzipProblem] };
  reader.end();
  const problems = reader.problem ? [reader.problem] : [];
  problems.push(...checkEntries(reader.entries, true));
  return { entries: reader.entries, problems };
}

/** Throws an Error listing every problem of the archive; returns its entries when it is safe. */
export function assertSafeArchive(buf: Buffer, options: InspectOptions = {}): ArchiveEntry[] {
  return entriesOrThrow(inspectArchive(buf, options));
}

/** assertSafeArchive of a file, in constant memory. */
export function assertSafeArchiveFile(file: string, options: InspectOptions = {}): ArchiveEntry[] {
  return entriesOrThrow(inspectArchiveFile(file, options));
}

function entriesOrThrow({ entries, problems }: InspectResult): ArchiveEntry[] {
  if (problems.length) throw new Error(`unsafe release archive (${problems.length} problem${problems.length > 1 ? "s" : ""}):\n${problems.map((p) => `  - ${p}`).join("\n")}`);
  return entries;
}

function q(name: string): string {
  return JSON.stringify(name);
}

function components(p: string): string[] {
  return p.split("/").filter((c) => c !== "" && c !== ".");
}

/**
 * Follows `parts` from the archive root the way the kernel would once extracted, through the
 * archive's own symlinks: "outside" as soon as it climbs above the root or meets an absolute target.
 */
function resolve(parts: string[], symlinks: Map<string, string>): "inside" | "outside" | "loop" {
  const queue = [...parts];
  const at: string[] = [];
  let hops = 0;
  while (queue.length) {
    const part = queue.shift() as string;
    if (part === "" || part === ".") continue;
    if (part === "..") {
      if (!at.length) return "outside";
      at.pop();
      continue;
    }
    at.push(part);
    const target = symlinks.get(at.join("/"));
    if (target === undefined) continue;
    if (++hops > 40) return "loop";
    if (target.startsWith("/")) return "outside";
    at.pop();
    queue.unshift(...target.split("/"));
  }
  return "inside";
}

function checkEntries(entries: ArchiveEntry[], requirePackageJson: boolean): string[] {
  const problems: string[] = [];
  const symlinks = new Map<string, string>();
  for (const e of entries) if (e.type === "symlink") symlinks.set(components(e.path).join("/"), e.linkpath);
  for (const e of entries) {
    const name = q(e.path);
    const parts = components(e.path);
    const unsafePath = e.path.startsWith("/") || parts.includes("..");
    if (e.path.startsWith("/")) problems.push(`entry ${name}: absolute path`);
    if (parts.includes("..")) problems.push(`entry ${name}: has a ".." component`);
    if (!parts.length && (e.path === "" || e.type !== "directory")) problems.push(`entry ${name}: empty path (only the root folder may be "./")`);
    switch (e.type) {
      case "character-device":
      case "block-device":
      case "fifo":
        problems.push(`entry ${name}: is a ${e.type.replace("-", " ")} (tar type ${e.typeflag})`);
        break;
      case "unsupported":
        problems.push(`entry ${name}: unsupported tar entry type ${q(e.typeflag)}`);
        break;
      case "symlink": {
        const verdict = e.linkpath.startsWith("/") ? "outside" : resolve([...parts.slice(0, -1), ...e.linkpath.split("/")], symlinks);
        if (e.linkpath === "") problems.push(`entry ${name}: symlink with an empty target`);
        else if (verdict !== "inside") problems.push(`entry ${name}: symlink to ${q(e.linkpath)} ${verdict === "loop" ? "loops" : "points outside the archive"}`);
        break;
      }
      case "hardlink": {
        const target = components(e.linkpath);
        const bad = e.linkpath.startsWith("/") || target.includes("..") || !target.length || resolve(target, symlinks) !== "inside";
        if (bad) problems.push(`entry ${name}: hard link to ${q(e.linkpath)} points outside the archive`);
        break;
      }
      case "file":
      case "directory":
        break;
      default: {
        const never: never = e.type;
        throw new Error(`unknown entry type ${String(never)}`);
      }
    }
    if (!unsafePath && parts.length > 1 && resolve(parts.slice(0, -1), symlinks) === "outside") {
      problems.push(`entry ${name}: is written through a symlink that points outside the archive`);
    }
  }
  if (requirePackageJson && !entries.some((e) => e.type === "file" && components(e.path).join("/") === "package.json")) {
    problems.push("archive: no package.json at the root");
  }
  return problems;
}

/**
 * The Prisma migrations an archive carries: the folder names of `.../migrations/NAME/migration.sql`
 * entries, sorted and without duplicates (a project may keep one folder per provider).
 */
export function migrationNames(entries: readonly ArchiveEntry[]): string[] {
  const names = new Set<string>();
  for (const e of entries) {
    const m = /(?:^|\/)migrations\/([^/]+)\/migration\.sql$/.exec(e.path.replace(/^\.\//, ""));
    if (m && e.type === "file") names.add(m[1]);
  }
  return [...names].sort();
}

// Release artifacts: hash them, pack them reproducibly, and inspect them before anything trusts them.
// Pure Node: no Pulumi, so the packaging CLI and the tests use it as is.
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import * as zlib from "node:zlib";

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

export type EntryType = "file" | "directory" | "symlink" | "hardlink" | "character-device" | "block-device" | "fifo" | "unsupported";

export interface ArchiveEntry {
  /** Path as stored, after ustar prefix, PAX and GNU long names (folders usually end in `/`). */
  path: string;
  type: EntryType;
  /** The tar type flag as stored ("0" for a NUL flag). */
  typeflag: string;
  mode: number;
  size: number;
  /** Target of a symlink or hard link; "" for other entries. */
  linkpath: string;
  mtime: number;
  uid: number;
  gid: number;
}

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

const BLOCK = 512;
const TYPE_NAMES: Record<string, EntryType> = {
  "0": "file", "7": "file", "1": "hardlink", "2": "symlink", "3": "character-device", "4": "block-device", "5": "directory", "6": "fifo",
};

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

function padding(size: number): number {
  return (BLOCK - (size % BLOCK)) % BLOCK;
}

/** The header blocks of one entry: a PAX 'x' header first when the path or target is too long for ustar. */
function tarHeaders(entry: ArchiveEntry): Buffer[] {
  const pax: string[] = [];
  const name = Buffer.from(entry.path);
  let prefix: Buffer = Buffer.alloc(0);
  let short: Buffer = name;
  if (name.length > 100) {
    const split = splitUstarName(name);
    if (split) [prefix, short] = split;
    else {
      pax.push(paxRecord("path", entry.path));
      short = name.subarray(0, 100);
    }
  }
  let link = Buffer.from(entry.linkpath);
  if (link.length > 100) {
    pax.push(paxRecord("linkpath", entry.linkpath));
    link = link.subarray(0, 100);
  }
  const out: Buffer[] = [];
  if (pax.length) {
    const body = Buffer.from(pax.join(""));
    out.push(ustarHeader(Buffer.from("././@PaxHeader"), Buffer.alloc(0), "x", 0o644, body.length, Buffer.alloc(0)));
    out.push(body, Buffer.alloc(padding(body.length)));
  }
  out.push(ustarHeader(short, prefix, entry.typeflag, entry.mode, entry.size, link));
  return out;
}

/** Splits a long path at a `/` into a ustar prefix (<= 155 bytes) and name (<= 100 bytes), longest prefix first. */
function splitUstarName(name: Buffer): [Buffer, Buffer] | undefined {
  for (let i = Math.min(155, name.length - 1); i > 0; i--) {
    if (name[i] === 0x2f && name.length - i - 1 <= 100 && name.length - i - 1 > 0) return [name.subarray(0, i), name.subarray(i + 1)];
  }
  return undefined;
}

function paxRecord(key: string, value: string): string {
  const body = ` ${key}=${value}\n`;
  const n = Buffer.byteLength(body);
  let digits = 1;
  while (String(n + digits).length > digits) digits++;
  return `${n + digits}${body}`;
}

function ustarHeader(name: Buffer, prefix: Buffer, typeflag: string, mode: number, size: number, link: Buffer): Buffer {
  const h = Buffer.alloc(BLOCK);
  name.copy(h, 0);
  writeOctal(h, 100, 8, mode);
  writeOctal(h, 108, 8, 0); // uid
  writeOctal(h, 116, 8, 0); // gid
  writeOctal(h, 124, 12, size);
  writeOctal(h, 136, 12, 0); // mtime
  h.write(typeflag, 156, "latin1");
  link.copy(h, 157);
  h.write("ustar\u000000", 257, "latin1");
  writeOctal(h, 329, 8, 0); // devmajor
  writeOctal(h, 337, 8, 0); // devminor
  prefix.copy(h, 345);
  h.fill(0x20, 148, 156);
  let sum = 0;
  for (const byte of h) sum += byte;
  h.write(`${sum.toString(8).padStart(6, "0")}\u0000 `, 148, "latin1");
  return h;
}

function writeOctal(h: Buffer, offset: number, length: number, value: number): void {
  const digits = value.toString(8).padStart(length - 1, "0");
  if (digits.length > length - 1) throw new Error(`packDirectory: ${value} does not fit a ${length}-byte tar field (files are limited to 8 GiB)`);
  h.write(`${digits}\u0000`, offset, "latin1");
}

// ---- inspecting ----

/** Reads a gzip'd tar and lists every rule it breaks (see ARCHIVE_RULES); never throws. */
export function inspectArchive(buf: Buffer, options: InspectOptions = {}): InspectResult {
  const maxEntries = options.maxEntries ?? DEFAULT_MAX_ENTRIES;
  const maxBytes = options.maxBytes ?? DEFAULT_MAX_BYTES;
  const entries: ArchiveEntry[] = [];
  if (buf.length < 2 || buf[0] !== 0x1f || buf[1] !== 0x8b) return { entries, problems: ["archive: not a gzip file"] };
  let tar: Buffer;
  try {
    tar = zlib.gunzipSync(buf, { maxOutputLength: maxBytes });
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    const why = e.code === "ERR_BUFFER_TOO_LARGE" ? `more than ${maxBytes} bytes once gunzipped` : `truncated or corrupt gzip (${e.message})`;
    return { entries, problems: [`archive: ${why}`] };
  }
  const problems = parseTar(tar, maxEntries, entries);
  problems.push(...checkEntries(entries, true));
  return { entries, problems };
}

/** Throws an Error listing every problem of the archive; returns its entries when it is safe. */
export function assertSafeArchive(buf: Buffer, options: InspectOptions = {}): ArchiveEntry[] {
  const { entries, problems } = inspectArchive(buf, options);
  if (problems.length) throw new Error(`unsafe release archive (${problems.length} problem${problems.length > 1 ? "s" : ""}):\n${problems.map((p) => `  - ${p}`).join("\n")}`);
  return entries;
}

function parseTar(tar: Buffer, maxEntries: number, entries: ArchiveEntry[]): string[] {
  let pax: Map<string, string> = new Map();
  let longName: string | undefined;
  let longLink: string | undefined;
  for (let off = 0; off + BLOCK <= tar.length; ) {
    const h = tar.subarray(off, off + BLOCK);
    if (h.every((b) => b === 0)) return [];
    const stored = readNumber(h, 148, 8);
    if (stored === undefined || !checksumMatches(h, stored)) return [`archive: corrupt tar header at byte ${off} (bad checksum)`];
    const typeflag = h[156] === 0 ? "0" : String.fromCharCode(h[156]);
    const ustar = h.toString("latin1", 257, 265) === "ustar\u000000";
    const rawName = cString(h, 0, 100);
    const name = pax.get("path") ?? longName ?? (ustar && h[345] !== 0 ? `${cString(h, 345, 155)}/${rawName}` : rawName);
    const isMeta = ["x", "g", "L", "K"].includes(typeflag);
    const size = !isMeta && pax.has("size") ? Number(pax.get("size")) : readNumber(h, 124, 12);
    if (size === undefined || !Number.isSafeInteger(size) || size < 0) return [`entry ${q(name)}: corrupt tar header (bad size)`];
    const start = off + BLOCK;
    if (start + size > tar.length) return [`entry ${q(name)}: truncated (${size} bytes announced, ${tar.length - start} left)`];
    const data = tar.subarray(start, start + size);
    off = start + size + padding(size);
    if (typeflag === "x" || typeflag === "g") {
      const records = parsePax(data);
      if (!records) return [`archive: corrupt PAX header at byte ${start - BLOCK}`];
      if (typeflag === "x") pax = records;
      else if (records.has("path") || records.has("linkpath")) return [`archive: a global PAX header sets ${records.has("path") ? "path" : "linkpath"} for every entry`];
      continue;
    }
    if (typeflag === "L" || typeflag === "K") {
      const value = cString(data, 0, data.length);
      if (typeflag === "L") longName = value;
      else longLink = value;
      continue;
    }
    if (entries.length >= maxEntries) return [`archive: more than ${maxEntries} entries (refused at ${q(name)})`];
    const type = TYPE_NAMES[typeflag] ?? "unsupported";
    entries.push({
      path: name,
      type,
      typeflag,
      mode: readNumber(h, 100, 8) ?? 0,
      size,
      linkpath: pax.get("linkpath") ?? longLink ?? cString(h, 157, 100),
      mtime: readNumber(h, 136, 12) ?? 0,
      uid: readNumber(h, 108, 8) ?? 0,
      gid: readNumber(h, 116, 8) ?? 0,
    });
    // Why: tar implementations disagree on whether links and folders carry data; refuse the ambiguity.
    if (type !== "file" && type !== "unsupported" && size > 0) return [`entry ${q(name)}: a ${type} entry announces ${size} bytes of data`];
    pax = new Map();
    longName = undefined;
    longLink = undefined;
  }
  return ["archive: truncated tar (no end-of-archive block)"];
}

function checksumMatches(h: Buffer, stored: number): boolean {
  let unsigned = 0;
  let signed = 0;
  for (let i = 0; i < BLOCK; i++) {
    const b = i >= 148 && i < 156 ? 0x20 : h[i];
    unsigned += b;
    signed += b > 127 ? b - 256 : b;
  }
  return stored === unsigned || stored === signed;
}

/** An octal field, or GNU base-256 when the top bit is set; undefined when unreadable. */
function readNumber(h: Buffer, offset: number, length: number): number | undefined {
  if (h[offset] & 0x80) {
    if (h[offset] === 0xff) return undefined;
    let n = h[offset] & 0x7f;
    for (let i = 1; i < length; i++) n = n * 256 + h[offset + i];
    return n;
  }
  const text = h.toString("latin1", offset, offset + length).replace(/[\0 ]+$/, "").replace(/^ +/, "");
  if (text === "") return 0;
  return /^[0-7]+$/.test(text) ? parseInt(text, 8) : undefined;
}

function cString(b: Buffer, offset: number, length: number): string {
  const end = b.indexOf(0, offset);
  return b.toString("utf8", offset, end === -1 || end > offset + length ? offset + length : end);
}

function parsePax(data: Buffer): Map<string, string> | undefined {
  const records = new Map<string, string>();
  for (let off = 0; off < data.length; ) {
    if (data[off] === 0) break;
    const space = data.indexOf(0x20, off);
    const len = Number(data.toString("latin1", off, space));
    if (space === -1 || !Number.isSafeInteger(len) || len <= space - off || off + len > data.length || data[off + len - 1] !== 0x0a) return undefined;
    const record = data.toString("utf8", space + 1, off + len - 1);
    const eq = record.indexOf("=");
    if (eq <= 0) return undefined;
    records.set(record.slice(0, eq), record.slice(eq + 1));
    off += len;
  }
  return records;
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

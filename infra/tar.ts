// The tar format, both ways: ustar headers (with PAX records for long names) for the packer, and a
// streaming reader of a gzip'd tar that holds one header at a time, never the archive: inspecting
// a gzip bomb costs the same memory as inspecting a small release (issue 16). The release-archive
// rules themselves are in artifact.ts. Pure Node.
import { Worker } from "node:worker_threads";
import * as zlib from "node:zlib";

export const BLOCK = 512;

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

export const TYPE_NAMES: Record<string, EntryType> = {
  "0": "file", "7": "file", "1": "hardlink", "2": "symlink", "3": "character-device", "4": "block-device", "5": "directory", "6": "fifo",
};

export function padding(size: number): number {
  return (BLOCK - (size % BLOCK)) % BLOCK;
}

const q = (name: string) => JSON.stringify(name);

// ---- writing ----

/** The header blocks of one entry: a PAX 'x' header first when the path or target is too long for ustar. */
export function tarHeaders(entry: ArchiveEntry): Buffer[] {
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
  out.push(ustarHeader(short, prefix, entry.typeflag, entry.mode, entry.size, link, entry.mtime));
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

function ustarHeader(name: Buffer, prefix: Buffer, typeflag: string, mode: number, size: number, link: Buffer, mtime = 0): Buffer {
  const h = Buffer.alloc(BLOCK);
  name.copy(h, 0);
  writeOctal(h, 100, 8, mode);
  writeOctal(h, 108, 8, 0); // uid
  writeOctal(h, 116, 8, 0); // gid
  writeOctal(h, 124, 12, size);
  writeOctal(h, 136, 12, mtime);
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

// ---- reading ----

/** PAX and GNU long-name records are read into memory; anything bigger is refused. */
const MAX_META_BYTES = 1 << 20;

export interface TarHooks {
  onEntry?: (entry: ArchiveEntry) => void;
  onData?: (data: Buffer) => void;
}

/**
 * A tar stream read chunk by chunk: entries are collected, file data is skipped, and reading stops
 * at the end-of-archive block or the first problem. Memory: one header, or one PAX/long-name record.
 */
export class TarReader {
  readonly entries: ArchiveEntry[] = [];
  /** The first problem, once found; reading stops there. */
  problem?: string;
  /** The end-of-archive block was read. */
  ended = false;
  private offset = 0; // stream offset of the next byte
  private skip = 0; // bytes of data and padding still to skip
  private dataEnd = 0; // stream offset where the current entry's data ends (padding excluded)
  private current?: { name: string; size: number; start: number };
  private need = BLOCK; // bytes wanted into `pending`
  private pending: Buffer[] = [];
  private pendingLength = 0;
  private meta?: { typeflag: string; name: string };
  private pax = new Map<string, string>();
  private longName?: string;
  private longLink?: string;

  /**
   * `onEntry` sees each entry once its header is read, then `onData` its data, chunk by chunk, until
   * the next entry (infra/layers.ts splits an artifact this way).
   */
  constructor(private readonly maxEntries: number, private readonly hooks: TarHooks = {}) {}

  get done(): boolean {
    return this.ended || this.problem !== undefined;
  }

  push(chunk: Buffer): void {
    let off = 0;
    while (off < chunk.length && !this.done) {
      if (this.skip > 0) {
        const n = Math.min(this.skip, chunk.length - off);
        if (this.hooks.onData && this.offset < this.dataEnd) {
          this.hooks.onData(chunk.subarray(off, off + Math.min(n, this.dataEnd - this.offset)));
        }
        this.skip -= n;
        off += n;
        this.offset += n;
        if (this.skip === 0) this.current = undefined;
        continue;
      }
      const n = Math.min(this.need - this.pendingLength, chunk.length - off);
      this.pending.push(chunk.subarray(off, off + n));
      this.pendingLength += n;
      off += n;
      this.offset += n;
      if (this.pendingLength === this.need) {
        const block = this.pending.length === 1 ? this.pending[0] : Buffer.concat(this.pending);
        this.pending = [];
        this.pendingLength = 0;
        if (this.meta) this.onMeta(block);
        else this.onHeader(block, this.offset - BLOCK);
      }
    }
  }

  /** The stream is over: a cut entry or a missing end-of-archive block is a problem. */
  end(): void {
    if (this.done) return;
    if (this.current && this.offset < this.dataEnd) {
      const { name, size, start } = this.current;
      if (!this.meta) this.entries.pop();
      this.problem = `entry ${q(name)}: truncated (${size} bytes announced, ${this.offset - start} left)`;
      return;
    }
    this.problem = "archive: truncated tar (no end-of-archive block)";
  }

  private onHeader(h: Buffer, at: number): void {
    if (h.every((b) => b === 0)) {
      this.ended = true;
      return;
    }
    const stored = readNumber(h, 148, 8);
    if (stored === undefined || !checksumMatches(h, stored)) {
      this.problem = `archive: corrupt tar header at byte ${at} (bad checksum)`;
      return;
    }
    const typeflag = h[156] === 0 ? "0" : String.fromCharCode(h[156]);
    const ustar = h.toString("latin1", 257, 265) === "ustar\u000000";
    const rawName = cString(h, 0, 100);
    const name = this.pax.get("path") ?? this.longName ?? (ustar && h[345] !== 0 ? `${cString(h, 345, 155)}/${rawName}` : rawName);
    const isMeta = ["x", "g", "L", "K"].includes(typeflag);
    const size = !isMeta && this.pax.has("size") ? Number(this.pax.get("size")) : readNumber(h, 124, 12);
    if (size === undefined || !Number.isSafeInteger(size) || size < 0) {
      this.problem = `entry ${q(name)}: corrupt tar header (bad size)`;
      return;
    }
    const start = at + BLOCK;
    this.current = { name, size, start };
    this.dataEnd = start + size;
    if (isMeta) {
      if (size > MAX_META_BYTES) {
        this.problem = `entry ${q(name)}: a ${size}-byte PAX or long-name record (limit ${MAX_META_BYTES})`;
        return;
      }
      this.meta = { typeflag, name };
      this.need = size + padding(size);
      if (this.need === 0) this.onMeta(Buffer.alloc(0));
      return;
    }
    if (this.entries.length >= this.maxEntries) {
      this.problem = `archive: more than ${this.maxEntries} entries (refused at ${q(name)})`;
      return;
    }
    const type = TYPE_NAMES[typeflag] ?? "unsupported";
    this.entries.push({
      path: name,
      type,
      typeflag,
      mode: readNumber(h, 100, 8) ?? 0,
      size,
      linkpath: this.pax.get("linkpath") ?? this.longLink ?? cString(h, 157, 100),
      mtime: readNumber(h, 136, 12) ?? 0,
      uid: readNumber(h, 108, 8) ?? 0,
      gid: readNumber(h, 116, 8) ?? 0,
    });
    // Why: tar implementations disagree on whether links and folders carry data; refuse the ambiguity.
    if (type !== "file" && type !== "unsupported" && size > 0) {
      this.problem = `entry ${q(name)}: a ${type} entry announces ${size} bytes of data`;
      return;
    }
    this.pax = new Map();
    this.longName = undefined;
    this.longLink = undefined;
    this.hooks.onEntry?.(this.entries[this.entries.length - 1]);
    this.skip = size + padding(size);
    if (this.skip === 0) this.current = undefined;
  }

  private onMeta(block: Buffer): void {
    const meta = this.meta as { typeflag: string; name: string };
    const size = (this.current as { size: number }).size;
    const start = (this.current as { start: number }).start;
    this.meta = undefined;
    this.current = undefined;
    this.need = BLOCK;
    const data = block.subarray(0, size);
    if (meta.typeflag === "x" || meta.typeflag === "g") {
      const records = parsePax(data);
      if (!records) {
        this.problem = `archive: corrupt PAX header at byte ${start - BLOCK}`;
        return;
      }
      if (meta.typeflag === "x") this.pax = records;
      else if (records.has("path") || records.has("linkpath")) {
        this.problem = `archive: a global PAX header sets ${records.has("path") ? "path" : "linkpath"} for every entry`;
      }
      return;
    }
    const value = cString(data, 0, data.length);
    if (meta.typeflag === "L") this.longName = value;
    else this.longLink = value;
  }
}

/**
 * Gunzips a file synchronously in bounded memory, handing each output chunk (at most 1 MB) to
 * `onOutput`; stops with a problem when the output passes `maxBytes` or the gzip is corrupt.
 * Node has no public synchronous streaming gunzip, and the Pulumi program must decide before it
 * registers any resource: so a worker thread streams the file through zlib into a ring of SLOTS
 * shared chunks while this thread takes them in turn (Atomics.wait): the two overlap, so a large
 * artifact costs about its gunzip, not its gunzip plus its parsing.
 */
export function gunzipFile(file: string, onOutput: (out: Buffer) => void, maxBytes: number): string | undefined {
  const sab = new SharedArrayBuffer(CTRL_BYTES + SLOTS * CHUNK);
  const ctrl = new Int32Array(sab, 0, CTRL_BYTES / 4);
  const worker = new Worker(GUNZIP_WORKER, { eval: true, workerData: { sab, file, chunk: CHUNK, slots: SLOTS, ctrlBytes: CTRL_BYTES } });
  worker.unref();
  let total = 0;
  try {
    for (let taken = 0; ; taken++) {
      // Wait until the worker has filled slot number `taken`.
      while (Atomics.load(ctrl, FILLED) === taken) Atomics.wait(ctrl, FILLED, taken);
      const slot = taken % SLOTS;
      const kind = ctrl[KIND + slot];
      const n = ctrl[SIZE + slot];
      const data = Buffer.from(sab, CTRL_BYTES + slot * CHUNK, n);
      if (kind === END) return undefined;
      if (kind === FAILED) return `archive: truncated or corrupt gzip (${data.toString("utf8")})`;
      total += n;
      if (total > maxBytes) return `archive: more than ${maxBytes} bytes once gunzipped`;
      onOutput(Buffer.from(data));
      Atomics.store(ctrl, TAKEN, taken + 1);
      Atomics.notify(ctrl, TAKEN);
    }
  } finally {
    void worker.terminate();
  }
}

/** gunzipFile of a buffer in memory (the packer's own archives): the same output, in one chunk. */
export function gunzipBuffer(buf: Buffer, onOutput: (out: Buffer) => void, maxBytes: number): string | undefined {
  let out: Buffer;
  try {
    out = zlib.gunzipSync(buf, { maxOutputLength: maxBytes });
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    return e.code === "ERR_BUFFER_TOO_LARGE" ? `archive: more than ${maxBytes} bytes once gunzipped` : `archive: truncated or corrupt gzip (${e.message})`;
  }
  onOutput(out);
  return undefined;
}

const CHUNK = 1 << 20;
const SLOTS = 4;
// The control words: how many slots the worker filled, how many this thread took, then per slot
// its kind (DATA, END, FAILED: the message in its data) and its size.
const FILLED = 0;
const TAKEN = 1;
const KIND = 2;
const SIZE = KIND + SLOTS;
const CTRL_BYTES = 4 * (SIZE + SLOTS);
const DATA = 1;
const END = 2;
const FAILED = 3;

/** The worker of gunzipFile, plain JS (it runs under ts-node and tsx alike). */
const GUNZIP_WORKER = `
const { workerData } = require("worker_threads");
const fs = require("fs");
const zlib = require("zlib");
const { sab, file, chunk, slots, ctrlBytes } = workerData;
const ctrl = new Int32Array(sab, 0, ctrlBytes / 4);
let filled = 0;
let fill = 0;
const slotData = (i) => new Uint8Array(sab, ctrlBytes + (i % slots) * chunk, chunk);
let data = slotData(0);
// publish KIND: slot number \`filled\` holds \`fill\` bytes; then waits until the next slot is free.
const publish = (kind) => {
  const slot = filled % slots;
  ctrl[${KIND} + slot] = kind;
  ctrl[${SIZE} + slot] = fill;
  Atomics.store(ctrl, ${FILLED}, ++filled);
  Atomics.notify(ctrl, ${FILLED});
  for (let t = Atomics.load(ctrl, ${TAKEN}); filled - t >= slots; t = Atomics.load(ctrl, ${TAKEN})) Atomics.wait(ctrl, ${TAKEN}, t);
  fill = 0;
  data = slotData(filled);
};
let done = false;
const gunzip = zlib.createGunzip({ chunkSize: 256 * 1024 });
gunzip.on("data", (out) => {
  for (let off = 0; off < out.length;) {
    const n = Math.min(chunk - fill, out.length - off);
    data.set(out.subarray(off, off + n), fill);
    fill += n;
    off += n;
    if (fill === chunk) publish(${DATA});
  }
});
gunzip.on("end", () => {
  if (fill > 0) publish(${DATA});
  done = true;
  publish(${END});
});
const fail = (e) => {
  if (done) return;
  done = true;
  const msg = Buffer.from(String((e && e.message) || e)).subarray(0, chunk);
  data.set(msg);
  fill = msg.length;
  publish(${FAILED});
};
gunzip.on("error", fail);
const input = fs.createReadStream(file, { highWaterMark: 256 * 1024 });
input.on("error", fail);
input.pipe(gunzip);
`;

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

import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, describe, it } from "node:test";
import * as zlib from "node:zlib";
import {
  ARCHIVE_RULES,
  assertSafeArchive,
  inspectArchive,
  isReleaseId,
  migrationNames,
  packDirectory,
  releaseIdOf,
  sha256File,
  sha256Of,
  UNSAFE_PATH,
} from "./artifact";

const tmpRoot = fs.mkdtempSync(path.join(os.tmpdir(), "artifact-test-"));
after(() => fs.rmSync(tmpRoot, { recursive: true, force: true }));
let counter = 0;
const tmp = (label: string): string => fs.mkdtempSync(path.join(tmpRoot, `${label}-${counter++}-`));

// Long enough to need the ustar prefix field (> 100 bytes in all, every part short).
const DEEP = `dist/${"deep-folder-name/".repeat(8)}module.js`;
// One component of 120 bytes: no ustar split exists, so it needs a PAX path record.
const WIDE = `dist/${"w".repeat(120)}.js`;
const LONG_TARGET = `${"deep-folder-name/".repeat(8)}module.js`;
const ENTRIES = ["dist", "package.json", "package-lock.json", "prisma"];

/** A small app tree: files, an executable, internal symlinks, an empty folder, long paths. */
function makeTree(dir = tmp("tree")): string {
  const write = (rel: string, body: string, mode = 0o644): void => {
    fs.mkdirSync(path.dirname(path.join(dir, rel)), { recursive: true });
    fs.writeFileSync(path.join(dir, rel), body);
    fs.chmodSync(path.join(dir, rel), mode);
  };
  write("package.json", '{"name":"tiny","version":"1.0.0"}\n');
  write("package-lock.json", '{"lockfileVersion":3}\n');
  write("dist/server.js", "console.log('hi');\n");
  write("dist/bin/run.sh", "#!/bin/sh\necho run\n", 0o755);
  write("dist/a-b.js", "1\n");
  write(DEEP, "deep\n");
  write(WIDE, "wide\n");
  write("prisma/schema.prisma", "// schema\n");
  fs.mkdirSync(path.join(dir, "dist/empty"));
  fs.symlinkSync("./server.js", path.join(dir, "dist/link"));
  fs.symlinkSync(LONG_TARGET, path.join(dir, "dist/long-link"));
  fs.writeFileSync(path.join(dir, "not-packed.txt"), "left out\n");
  return dir;
}

function walkFiles(dir: string, rel = ""): string[] {
  return fs.readdirSync(path.join(dir, rel)).flatMap((name) => {
    const r = rel ? `${rel}/${name}` : name;
    const st = fs.lstatSync(path.join(dir, r));
    return st.isDirectory() ? [r, ...walkFiles(dir, r)] : [r];
  });
}

function tar(args: string[], cwd?: string): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync("tar", args, { cwd, encoding: "utf8", env: { ...process.env, TZ: "UTC", LC_ALL: "C" } });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe("hashes and release ids", () => {
  it("releaseIdOf takes the first 12 hex digits and isReleaseId checks the shape", () => {
    const sha = sha256Of(Buffer.from("x"));
    assert.equal(releaseIdOf(sha), sha.slice(0, 12));
    assert.ok(isReleaseId(releaseIdOf(sha)));
    for (const bad of ["", "abc", "ABCDEF012345", "0123456789abc", "../../etc/x", "0123456789ag"]) assert.equal(isReleaseId(bad), false, bad);
    assert.throws(() => releaseIdOf("not-a-sha"), /64 digits/);
  });

  it("sha256File matches the hash of the bytes", () => {
    const file = path.join(tmp("sha"), "f");
    fs.writeFileSync(file, Buffer.alloc(3 << 20, 7));
    assert.equal(sha256File(file), sha256Of(fs.readFileSync(file)));
  });
});

describe("migrationNames", () => {
  it("names the folders of migrations/NAME/migration.sql files, sorted, once each", () => {
    const e = (p: string, type: "file" | "directory" = "file") =>
      ({ path: p, type, typeflag: "0", mode: 0o644, size: 0, linkpath: "", mtime: 0, uid: 0, gid: 0 });
    assert.deepEqual(migrationNames([
      e("prisma/postgresql/migrations/2_b/migration.sql"), e("prisma/sqlite/migrations/2_b/migration.sql"),
      e("./prisma/migrations/1_a/migration.sql"), e("prisma/migrations/migration_lock.toml"),
      e("prisma/migrations/3_c/", "directory"), e("node_modules/x/migrations/9_z/readme.md"),
    ]), ["1_a", "2_b"]);
  });
});

describe("packDirectory", () => {
  const tree = makeTree();
  const packed = packDirectory({ root: tree, entries: ENTRIES });

  it("gives the same bytes twice, and for a copy of the tree elsewhere", () => {
    assert.ok(packDirectory({ root: tree, entries: ENTRIES }).equals(packed));
    const copy = makeTree();
    assert.equal(sha256Of(packDirectory({ root: copy, entries: ENTRIES })), sha256Of(packed));
  });

  it("ignores mtimes and ownership", () => {
    const copy = makeTree();
    for (const rel of walkFiles(copy)) {
      const p = path.join(copy, rel);
      if (process.getuid?.() === 0) fs.lchownSync(p, 1234, 5678);
      if (!fs.lstatSync(p).isSymbolicLink()) fs.utimesSync(p, new Date(2001, 1, 1), new Date(2011, 1, 1 + counter));
    }
    assert.ok(packDirectory({ root: copy, entries: ENTRIES }).equals(packed));
  });

  it("changes the sha when one byte of content changes", () => {
    const copy = makeTree();
    fs.writeFileSync(path.join(copy, "dist/server.js"), "console.log('hI');\n");
    assert.notEqual(sha256Of(packDirectory({ root: copy, entries: ENTRIES })), sha256Of(packed));
  });

  it("writes a gzip header with no name, mtime 0, OS Unix", () => {
    assert.deepEqual([...packed.subarray(0, 4)], [0x1f, 0x8b, 8, 0]); // magic, deflate, no flags (no FNAME)
    assert.equal(packed.readUInt32LE(4), 0);
    assert.equal(packed[9], 3);
  });

  it("sorts entries bytewise, folders first, owner 0:0, mtime 0, modes 0755/0644", () => {
    const { entries, problems } = inspectArchive(packed);
    assert.deepEqual(problems, []);
    const paths = entries.map((e) => e.path.replace(/\/$/, ""));
    const sorted = [...paths].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
    assert.deepEqual(paths, sorted);
    assert.ok(paths.indexOf("dist") < paths.indexOf("dist/a-b.js"));
    assert.ok(!paths.includes("not-packed.txt"));
    for (const e of entries) {
      assert.equal(e.mtime, 0);
      assert.equal(e.uid, 0);
      assert.equal(e.gid, 0);
    }
    const byPath = new Map(entries.map((e) => [e.path, e]));
    assert.equal(byPath.get("dist/bin/run.sh")?.mode, 0o755);
    assert.equal(byPath.get("dist/server.js")?.mode, 0o644);
    assert.equal(byPath.get("dist/empty/")?.type, "directory");
    assert.equal(byPath.get("dist/empty/")?.mode, 0o755);
    assert.equal(byPath.get("dist/link")?.type, "symlink");
    assert.equal(byPath.get("dist/link")?.linkpath, "./server.js");
  });

  it("keeps long paths and long link targets (ustar prefix and PAX)", () => {
    const { entries } = inspectArchive(packed);
    const byPath = new Map(entries.map((e) => [e.path, e]));
    assert.ok(Buffer.byteLength(DEEP) > 100 && Buffer.byteLength(WIDE) > 100 && Buffer.byteLength(LONG_TARGET) > 100);
    assert.equal(byPath.get(DEEP)?.size, 5);
    assert.equal(byPath.get(WIDE)?.size, 5);
    assert.equal(byPath.get("dist/long-link")?.linkpath, LONG_TARGET);
  });

  it("extracts with GNU tar to the same files, modes and links", () => {
    const archive = path.join(tmp("gnu"), "a.tar.gz");
    fs.writeFileSync(archive, packed);
    const out = tmp("extract");
    const x = tar(["-xzf", archive, "-C", out, "--no-same-owner"]);
    assert.equal(x.status, 0, x.stderr);
    assert.equal(x.stderr, "");
    const expected = walkFiles(tree).filter((r) => r !== "not-packed.txt").sort();
    assert.deepEqual(walkFiles(out).sort(), expected);
    for (const rel of expected) {
      const a = fs.lstatSync(path.join(tree, rel));
      const b = fs.lstatSync(path.join(out, rel));
      assert.equal(b.isSymbolicLink(), a.isSymbolicLink(), rel);
      if (a.isSymbolicLink()) assert.equal(fs.readlinkSync(path.join(out, rel)), fs.readlinkSync(path.join(tree, rel)));
      else if (a.isFile()) {
        assert.ok(fs.readFileSync(path.join(out, rel)).equals(fs.readFileSync(path.join(tree, rel))), rel);
        assert.equal(b.mode & 0o111 ? 0o755 : 0o644, a.mode & 0o111 ? 0o755 : 0o644, rel);
      }
    }
    assert.equal(fs.statSync(path.join(out, "dist/bin/run.sh")).mode & 0o777, 0o755);
  });

  it("lists with tar -tvzf: 0/0 owners, 1970 times, the expected entries", () => {
    const archive = path.join(tmp("gnu"), "a.tar.gz");
    fs.writeFileSync(archive, packed);
    const t = tar(["-tvzf", archive, "--numeric-owner"], undefined);
    assert.equal(t.status, 0, t.stderr);
    const lines = t.stdout.trim().split("\n");
    assert.match(lines.find((l) => l.endsWith(" dist/")) ?? "", /^drwxr-xr-x 0\/0 +0 1970-01-01 00:00 dist\/$/);
    assert.match(lines.find((l) => l.endsWith(" dist/bin/run.sh")) ?? "", /^-rwxr-xr-x 0\/0 +19 1970-01-01 00:00 dist\/bin\/run\.sh$/);
    assert.match(lines.find((l) => l.includes(" dist/link ")) ?? "", /^lrwxrwxrwx 0\/0 +0 1970-01-01 00:00 dist\/link -> \.\/server\.js$/);
    const names = lines.map((l) => l.split(/ +/).slice(5).join(" ").replace(/ -> .*$/, ""));
    assert.ok(names.includes(DEEP) && names.includes(WIDE) && names.includes("package.json"));
    assert.equal(names.length, inspectArchive(packed).entries.length);
  });

  it("refuses symlinks that leave the tree", () => {
    for (const target of ["/etc/passwd", "../../outside", "../.."]) {
      const dir = makeTree();
      fs.symlinkSync(target, path.join(dir, "dist/escape"));
      assert.throws(() => packDirectory({ root: dir, entries: ENTRIES }), (e: Error) => e.message.includes('"dist/escape"') && e.message.includes(target), target);
    }
    const chained = makeTree();
    fs.mkdirSync(path.join(chained, "dist/d"));
    fs.symlinkSync("..", path.join(chained, "dist/d/up"));
    fs.symlinkSync("up/../..", path.join(chained, "dist/d/up2"));
    assert.throws(() => packDirectory({ root: chained, entries: ENTRIES }), /"dist\/d\/up2": symlink to "up\/..\/.." points outside/);
  });

  it("refuses special files, missing and non-top-level entries; honours exclude", () => {
    const dir = makeTree();
    const fifo = spawnSync("mkfifo", [path.join(dir, "dist/pipe")]);
    assert.equal(fifo.status, 0);
    assert.throws(() => packDirectory({ root: dir, entries: ENTRIES }), /dist\/pipe is a FIFO/);
    assert.ok(packDirectory({ root: dir, entries: ENTRIES, exclude: (p) => p === "dist/pipe" }).equals(packed));
    assert.throws(() => packDirectory({ root: dir, entries: ["nope"] }), /nope does not exist/);
    assert.throws(() => packDirectory({ root: dir, entries: ["dist/server.js"] }), /top-level names/);
    assert.throws(() => packDirectory({ root: dir, entries: [".."] }), /top-level names/);
  });
});

// ---- hostile archives, written header by header here so they do not depend on the packer ----

interface RawEntry {
  name: string;
  type?: string;
  data?: string;
  linkname?: string;
  mode?: number;
}

function field(h: Buffer, offset: number, length: number, value: number): void {
  h.write(`${value.toString(8).padStart(length - 1, "0")}\0`, offset, "latin1");
}

function rawHeader(e: RawEntry, size: number): Buffer {
  const h = Buffer.alloc(512);
  h.write(e.name, 0, 100, "utf8");
  field(h, 100, 8, e.mode ?? 0o644);
  field(h, 108, 8, 0);
  field(h, 116, 8, 0);
  field(h, 124, 12, size);
  field(h, 136, 12, 0);
  h.write(e.type ?? "0", 156, "latin1");
  h.write(e.linkname ?? "", 157, 100, "utf8");
  h.write("ustar\u000000", 257, "latin1");
  h.fill(" ", 148, 156);
  let sum = 0;
  for (const b of h) sum += b;
  h.write(`${sum.toString(8).padStart(6, "0")}\0 `, 148, "latin1");
  return h;
}

function rawTar(entries: RawEntry[], end = true): Buffer {
  const parts: Buffer[] = [];
  for (const e of entries) {
    const data = Buffer.from(e.data ?? "");
    parts.push(rawHeader(e, data.length), data, Buffer.alloc((512 - (data.length % 512)) % 512));
  }
  if (end) parts.push(Buffer.alloc(1024));
  return Buffer.concat(parts);
}

function paxRecord(key: string, value: string): string {
  const body = ` ${key}=${value}\n`;
  const n = body.length + 2; // two-digit lengths are enough here
  assert.ok(n < 100);
  return `${n}${body}`;
}

const gz = (entries: RawEntry[]): Buffer => zlib.gzipSync(rawTar(entries));
const PKG: RawEntry = { name: "package.json", data: "{}" };
const DIST: RawEntry = { name: "dist/", type: "5", mode: 0o755 };
const SERVER: RawEntry = { name: "dist/server.js", data: "x" };

function refused(buf: Buffer, ...expected: (string | RegExp)[]): void {
  const { problems } = inspectArchive(buf);
  assert.ok(problems.length > 0, "expected problems");
  for (const want of expected) {
    assert.ok(problems.some((p) => (typeof want === "string" ? p.includes(want) : want.test(p))), `no problem matches ${want}: ${JSON.stringify(problems)}`);
  }
  assert.throws(() => assertSafeArchive(buf), (e: Error) => problems.every((p) => e.message.includes(p)));
}

describe("inspectArchive", () => {
  it("passes a safe archive with an internal symlink", () => {
    const buf = gz([PKG, DIST, SERVER, { name: "dist/link", type: "2", linkname: "./server.js" }, { name: "dist/hard", type: "1", linkname: "dist/server.js" }]);
    assert.deepEqual(inspectArchive(buf).problems, []);
    const entries = assertSafeArchive(buf);
    assert.deepEqual(entries.map((e) => [e.path, e.type]), [["package.json", "file"], ["dist/", "directory"], ["dist/server.js", "file"], ["dist/link", "symlink"], ["dist/hard", "hardlink"]]);
  });

  it("accepts ./-prefixed entries (tar -C dir .)", () => {
    assert.deepEqual(inspectArchive(gz([{ name: "./", type: "5" }, { name: "./package.json", data: "{}" }])).problems, []);
  });

  it("refuses an absolute path", () => refused(gz([PKG, { name: "/etc/cron.d/x", data: "x" }]), 'entry "/etc/cron.d/x": absolute path'));
  it("refuses ../x", () => refused(gz([PKG, { name: "../x", data: "x" }]), 'entry "../x": has a ".." component'));
  it("refuses a/../../x", () => refused(gz([PKG, { name: "a/../../x", data: "x" }]), 'entry "a/../../x": has a ".." component'));
  it("refuses a symlink to /etc/passwd", () =>
    refused(gz([PKG, { name: "dist/pw", type: "2", linkname: "/etc/passwd" }]), 'entry "dist/pw": symlink to "/etc/passwd" points outside the archive'));
  it("refuses a symlink a -> ../../x", () => refused(gz([PKG, { name: "a", type: "2", linkname: "../../x" }]), 'entry "a": symlink to "../../x" points outside the archive'));
  it("refuses a symlink dist/up -> ../.. and what is written through it", () =>
    refused(gz([PKG, { name: "dist/up", type: "2", linkname: "../.." }, { name: "dist/up/x", data: "x" }]), 'entry "dist/up": symlink', 'entry "dist/up/x": is written through a symlink'));
  it("refuses a chain of symlinks that climbs out", () =>
    refused(gz([PKG, { name: "d/up", type: "2", linkname: ".." }, { name: "d/up2", type: "2", linkname: "up/.." }]), 'entry "d/up2": symlink to "up/.." points outside'));
  it("refuses a symlink loop", () => refused(gz([PKG, { name: "l1", type: "2", linkname: "l2" }, { name: "l2", type: "2", linkname: "l1" }]), 'entry "l1": symlink to "l2" loops'));
  it("refuses a hard link to outside", () => {
    refused(gz([PKG, { name: "h", type: "1", linkname: "/etc/shadow" }]), 'entry "h": hard link to "/etc/shadow" points outside');
    refused(gz([PKG, { name: "h", type: "1", linkname: "../../etc/shadow" }]), 'entry "h": hard link to "../../etc/shadow" points outside');
    refused(gz([PKG, { name: "etc", type: "2", linkname: "/etc" }, { name: "h", type: "1", linkname: "etc/shadow" }]), 'entry "h": hard link to "etc/shadow" points outside');
  });
  it("refuses a character device", () => refused(gz([PKG, { name: "dev/null", type: "3" }]), 'entry "dev/null": is a character device (tar type 3)'));
  it("refuses a block device", () => refused(gz([PKG, { name: "sda", type: "4" }]), 'entry "sda": is a block device (tar type 4)'));
  it("refuses a FIFO", () => refused(gz([PKG, { name: "dist/pipe", type: "6" }]), 'entry "dist/pipe": is a fifo (tar type 6)'));
  it("refuses unknown entry types", () => refused(gz([PKG, { name: "sparse", type: "S" }]), 'entry "sparse": unsupported tar entry type "S"'));
  it("refuses an archive without package.json at the root", () => {
    refused(gz([DIST, SERVER]), "archive: no package.json at the root");
    refused(gz([DIST, { name: "dist/package.json", data: "{}" }]), "archive: no package.json at the root");
    refused(gz([{ name: "package.json", type: "5" }]), "archive: no package.json at the root");
  });
  it("refuses a file that is not gzip", () => assert.deepEqual(inspectArchive(Buffer.from("just some text\n")).problems, ["archive: not a gzip file"]));
  it("refuses an empty file", () => refused(Buffer.alloc(0), "archive: not a gzip file"));
  it("refuses a truncated gzip", () => {
    const whole = gz([PKG, DIST, SERVER]);
    refused(whole.subarray(0, whole.length - 10), /^archive: truncated or corrupt gzip/);
  });
  it("refuses a truncated tar inside a valid gzip", () => {
    refused(zlib.gzipSync(rawTar([PKG, { name: "big", data: "x".repeat(2000) }]).subarray(0, 512 * 3)), 'entry "big": truncated');
    refused(zlib.gzipSync(rawTar([PKG], false)), "archive: truncated tar (no end-of-archive block)");
  });
  it("refuses a corrupt tar header", () => {
    const t = rawTar([PKG, SERVER]);
    t[1024 + 10] ^= 0xff;
    refused(zlib.gzipSync(t), "archive: corrupt tar header at byte 1024 (bad checksum)");
  });
  it("refuses more entries than the limit", () => {
    const many = gz([PKG, DIST, ...Array.from({ length: 10 }, (_, i) => ({ name: `dist/f${i}`, data: "x" }))]);
    assert.deepEqual(inspectArchive(many, { maxEntries: 12 }).problems, []);
    const { problems } = inspectArchive(many, { maxEntries: 5 });
    assert.deepEqual(problems, ['archive: more than 5 entries (refused at "dist/f3")']);
    assert.throws(() => assertSafeArchive(many, { maxEntries: 5 }), /more than 5 entries/);
  });
  it("refuses an archive bigger than maxBytes once gunzipped", () => {
    const { problems } = inspectArchive(gz([PKG, { name: "zeros", data: "\0".repeat(100_000) }]), { maxBytes: 50_000 });
    assert.deepEqual(problems, ["archive: more than 50000 bytes once gunzipped"]);
  });
  it("reads PAX and GNU long names and checks them", () => {
    const pax: RawEntry = { name: "PaxHeader", type: "x", data: paxRecord("path", "../evil.txt") };
    refused(gz([PKG, pax, { name: "harmless", data: "x" }]), 'entry "../evil.txt": has a ".." component');
    const paxLink: RawEntry = { name: "PaxHeader", type: "x", data: paxRecord("linkpath", "/etc/passwd") };
    refused(gz([PKG, paxLink, { name: "l", type: "2", linkname: "fine" }]), 'entry "l": symlink to "/etc/passwd"');
    refused(gz([PKG, { name: "././@LongLink", type: "L", data: "/abs/long\0" }, { name: "short", data: "x" }]), 'entry "/abs/long": absolute path');
    refused(gz([PKG, { name: "././@LongLink", type: "K", data: "../../../x\0" }, { name: "k", type: "2", linkname: "ok" }]), 'entry "k": symlink to "../../../x"');
    refused(gz([PKG, { name: "g", type: "g", data: paxRecord("path", "/etc/x.y") }, SERVER]), /global PAX header sets path/);
    refused(gz([PKG, { name: "PaxHeader", type: "x", data: "99 path=x\n" }, SERVER]), /corrupt PAX header/);
  });
  it("lists every problem in the error of assertSafeArchive", () => {
    const buf = gz([{ name: "/abs", data: "x" }, { name: "dist/pipe", type: "6" }]);
    assert.throws(() => assertSafeArchive(buf), (e: Error) => /3 problems/.test(e.message) && e.message.includes('"/abs"') && e.message.includes('"dist/pipe"') && e.message.includes("no package.json"));
  });
});

describe("shared rules", () => {
  it("UNSAFE_PATH matches absolute and .. paths only", () => {
    for (const bad of ["/x", "..", "../x", "a/..", "a/../b"]) assert.ok(UNSAFE_PATH.test(bad), bad);
    for (const ok of ["x", "a/b", "..a", "a/..b", "a../b", "./x"]) assert.ok(!UNSAFE_PATH.test(ok), ok);
    assert.ok(ARCHIVE_RULES.length >= 5);
  });
});

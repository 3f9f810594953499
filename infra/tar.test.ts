// The streaming reader: a file is inspected in chunks with the same verdicts as a buffer, and a gzip
// bomb is refused in constant memory (issue 16: it used to cost its unpacked size).
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { createWriteStream, mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { after, before, describe, it } from "node:test";
import * as zlib from "node:zlib";
import { inspectArchive, inspectArchiveFile } from "./artifact";
import { tarHeaders } from "./tar";

const entry = (p: string, size: number, typeflag = "0", linkpath = "") =>
  ({ path: p, type: "file" as const, typeflag, mode: 0o644, size, linkpath, mtime: 0, uid: 0, gid: 0 });
const pad = (n: number) => Buffer.alloc((512 - (n % 512)) % 512);
const tar = (...parts: Buffer[]) => Buffer.concat([...parts, Buffer.alloc(1024)]);
const file = (p: string, data: string) => Buffer.concat([...tarHeaders(entry(p, data.length)), Buffer.from(data), pad(data.length)]);

describe("streaming tar reader", () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(path.join(tmpdir(), "tar-"));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  const both = (name: string, gz: Buffer) => {
    const f = path.join(dir, `${name}.tgz`);
    writeFileSync(f, gz);
    return { fromBuffer: inspectArchive(gz), fromFile: inspectArchiveFile(f) };
  };

  for (const [name, gz] of [
    ["safe", zlib.gzipSync(tar(file("package.json", "{}"), file("dist/server.js", "x".repeat(70_000))))],
    ["absolute", zlib.gzipSync(tar(file("package.json", "{}"), file("/etc/x", "a")))],
    ["fifo", zlib.gzipSync(tar(file("package.json", "{}"), ...tarHeaders({ ...entry("p", 0, "6"), type: "fifo" })))],
    ["long name", zlib.gzipSync(tar(file("package.json", "{}"), file(`${"d/".repeat(120)}f`, "1")))],
    ["truncated entry", zlib.gzipSync(Buffer.concat([file("package.json", "{}"), ...tarHeaders(entry("big", 5000)), Buffer.alloc(100)]))],
    ["no end block", zlib.gzipSync(file("package.json", "{}"))],
    ["truncated gzip", zlib.gzipSync(tar(file("package.json", "{}"))).subarray(0, 30)],
  ] as const) {
    it(`reads a file in chunks as it reads a buffer: ${name}`, () => {
      const { fromBuffer, fromFile } = both(name.replace(/ /g, "-"), gz);
      assert.deepEqual(fromFile.problems.map((p) => p.replace(/\(.*\)$/, "")), fromBuffer.problems.map((p) => p.replace(/\(.*\)$/, "")));
      if (!name.startsWith("truncated gzip")) assert.deepEqual(fromFile.entries, fromBuffer.entries);
    });
  }

  it("refuses a gzip bomb in constant memory: 1.5 GiB of zeros, maxBytes 1 GiB, under 200 MB resident", async () => {
    const bomb = path.join(dir, "bomb.tgz");
    const size = 1.5 * 1024 ** 3;
    const zeros = Buffer.alloc(1 << 20);
    async function* content() {
      yield Buffer.concat(tarHeaders(entry("zeros", size)));
      for (let left = size / zeros.length; left > 0; left--) yield zeros;
    }
    await pipeline(Readable.from(content()), zlib.createGzip({ level: 1 }), createWriteStream(bomb));
    // Inspected in a process of its own, so that its peak resident memory is the inspection's.
    const script = `
      const { inspectArchiveFile } = require(${JSON.stringify(path.join(__dirname, "artifact.ts"))});
      const t0 = Date.now();
      const r = inspectArchiveFile(${JSON.stringify(bomb)}, { maxBytes: 1024 ** 3 });
      console.log(JSON.stringify({ problems: r.problems, ms: Date.now() - t0, maxRss: process.resourceUsage().maxRSS * 1024 }));
    `;
    const r = spawnSync(process.execPath, ["--import", "tsx", "-e", script], { encoding: "utf8", maxBuffer: 1 << 20 });
    assert.equal(r.status, 0, r.stderr);
    const got = JSON.parse(r.stdout.trim().split("\n").pop() as string) as { problems: string[]; ms: number; maxRss: number };
    console.log(`bomb: ${(statSync(bomb).size / 1e6).toFixed(1)} MB gzip refused in ${got.ms} ms, peak RSS ${(got.maxRss / 1e6).toFixed(0)} MB`);
    assert.deepEqual(got.problems, [`archive: more than ${1024 ** 3} bytes once gunzipped`]);
    assert.ok(got.maxRss < 200e6, `peak RSS ${got.maxRss}`);
  });
});

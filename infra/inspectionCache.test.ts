// The artifact inspection is remembered per sha256 (inspectionCache.ts): a good artifact is walked
// once, a refused one every time, and a damaged cache entry counts as none.
import assert from "node:assert/strict";
import * as fs from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import * as zlib from "node:zlib";
import { after, before, describe, it } from "node:test";
import { packDirectory, sha256File } from "./artifact";
import { cacheRoot } from "./cacheRoot";
import { recalled, remember } from "./inspectionCache";
import { checkArtifact } from "./inputs";

describe("inspection cache", () => {
  let tmp: string;
  let good: string;
  before(() => {
    tmp = fs.mkdtempSync(path.join(tmpdir(), "inspected-"));
    process.env.VPS_RELEASE_CACHE = path.join(tmp, "cache");
    const app = path.join(tmp, "app");
    fs.mkdirSync(path.join(app, "prisma/migrations/20250601120000_init"), { recursive: true });
    fs.writeFileSync(path.join(app, "prisma/migrations/20250601120000_init/migration.sql"), "CREATE TABLE t (id int);\n");
    fs.writeFileSync(path.join(app, "package.json"), "{}\n");
    good = path.join(tmp, "good.tar.gz");
    fs.writeFileSync(good, packDirectory({ root: app, entries: ["package.json", "prisma"] }));
  });
  after(() => {
    delete process.env.VPS_RELEASE_CACHE;
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  it("cacheRoot: VPS_RELEASE_CACHE, else XDG_CACHE_HOME, else ~/.cache", () => {
    assert.equal(cacheRoot({ VPS_RELEASE_CACHE: "/c" }), "/c");
    assert.equal(cacheRoot({ XDG_CACHE_HOME: "/x" }), "/x/vps-release");
    assert.match(cacheRoot({}), /\/\.cache\/vps-release$/);
  });

  it("remembers what a good artifact's inspection found, and answers from it the next time", () => {
    const sha = sha256File(good);
    assert.equal(recalled(sha), undefined);
    assert.deepEqual(checkArtifact(good).migrations, ["20250601120000_init"]);
    assert.deepEqual(recalled(sha), { migrations: ["20250601120000_init"] });
    // Proof that the second run reads the cache, not the archive: it returns what the entry says.
    remember(sha, { migrations: ["from-the-cache"] });
    assert.deepEqual(checkArtifact(good).migrations, ["from-the-cache"]);
    const [entry] = fs.readdirSync(path.join(cacheRoot(), "inspected"));
    assert.equal(fs.statSync(path.join(cacheRoot(), "inspected", entry)).mode & 0o777, 0o600);
    fs.writeFileSync(path.join(cacheRoot(), "inspected", entry), "{not json");
    assert.equal(recalled(sha), undefined);
    assert.deepEqual(checkArtifact(good).migrations, ["20250601120000_init"]);
  });

  it("never remembers a refused artifact: it is refused on every run", () => {
    const bad = path.join(tmp, "bad.tar.gz");
    fs.writeFileSync(bad, zlib.gzipSync(Buffer.alloc(1024)));
    for (let i = 0; i < 2; i++) assert.throws(() => checkArtifact(bad), /is refused/);
    assert.equal(recalled(sha256File(bad)), undefined);
  });
});

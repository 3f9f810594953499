// The artifact's two layers (layers.ts): the deps digest the client computes from the tar entries
// equals the one the VPS computes from the extracted folder (deploy-helper.js tree-digest), with
// symlinks, hard links and executable bits; the app layer is the rest, deterministic and
// re-extractable; and an artifact the split cannot reproduce is sent whole.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { after, before, describe, it } from "node:test";
import { packDirectory, sha256File } from "./artifact";
import { layersOf, splitArtifact } from "./layers";
import { treeDigest, treeRecordsOf } from "./scripts/deploy-helper";

const HELPER = path.join(__dirname, "scripts", "deploy-helper.js");

describe("artifact layers", () => {
  let tmp: string;
  let n = 0;
  before(() => {
    tmp = fs.mkdtempSync(path.join(tmpdir(), "layers-"));
  });
  after(() => fs.rmSync(tmp, { recursive: true, force: true }));

  /** A backend folder: package.json, dist/, and a node_modules with a bin symlink, an executable and a hard link. */
  const backend = (): string => {
    const dir = path.join(tmp, `app-${n++}`);
    fs.mkdirSync(path.join(dir, "dist"), { recursive: true });
    fs.mkdirSync(path.join(dir, "node_modules/.bin"), { recursive: true });
    fs.mkdirSync(path.join(dir, "node_modules/pkg/lib/empty"), { recursive: true });
    fs.writeFileSync(path.join(dir, "package.json"), "{\"name\":\"x\"}\n");
    fs.writeFileSync(path.join(dir, "dist/server.js"), "console.log('hi')\n");
    fs.writeFileSync(path.join(dir, "node_modules/pkg/index.js"), "module.exports = 1\n");
    fs.writeFileSync(path.join(dir, "node_modules/pkg/lib/cli.js"), "#!/usr/bin/env node\n", { mode: 0o755 });
    fs.linkSync(path.join(dir, "node_modules/pkg/index.js"), path.join(dir, "node_modules/pkg/same.js"));
    fs.symlinkSync("../pkg/lib/cli.js", path.join(dir, "node_modules/.bin/pkg"));
    return dir;
  };
  const extracted = (archive: string): string => {
    const out = path.join(tmp, `x-${n++}`);
    fs.mkdirSync(out);
    execFileSync("tar", ["-xzf", archive, "-C", out]);
    return out;
  };
  const vpsDigest = (dir: string): string =>
    execFileSync(process.execPath, [HELPER, "/nonexistent-ecosystem", "tree-digest", path.join(dir, "node_modules")], { encoding: "utf8" }).trim();

  for (const packer of ["GNU tar (hard links, ./ prefixes, real modes and times)", "packDirectory"]) {
    it(`the client's deps digest of a tar equals tree-digest of its extraction: ${packer}`, () => {
      const src = backend();
      const archive = path.join(tmp, `a-${n++}.tar.gz`);
      if (packer === "packDirectory") fs.writeFileSync(archive, packDirectory({ root: src, entries: ["dist", "node_modules", "package.json"] }));
      else execFileSync("tar", ["-czf", archive, "-C", src, "."]);
      const split = splitArtifact(archive);
      assert.ok(split, "an artifact with node_modules splits");
      const out = extracted(archive);
      assert.equal(split.depsDigest, vpsDigest(out));
      assert.equal(split.depsDigest, treeDigest(treeRecordsOf(out, "node_modules")));
      // The app layer holds everything else, and nothing under node_modules.
      const app = path.join(tmp, `app-${n++}.tar.gz`);
      fs.writeFileSync(app, split.app);
      const listed = execFileSync("tar", ["-tzf", app], { encoding: "utf8" }).split("\n").filter(Boolean);
      assert.ok(listed.some((l) => l.endsWith("dist/server.js")) && listed.some((l) => l.endsWith("package.json")), listed.join(","));
      assert.ok(!listed.some((l) => /(^|\/)node_modules(\/|$)/.test(l)), listed.join(","));
      const appOut = extracted(app);
      assert.equal(fs.readFileSync(path.join(appOut, "dist/server.js"), "utf8"), "console.log('hi')\n");
      // Deterministic: the same artifact, the same app layer.
      assert.ok(splitArtifact(archive)?.app.equals(split.app));
    });
  }

  it("a changed, re-moded or re-pointed file under node_modules changes the digest; a change outside it does not", () => {
    const digestOf = (mutate: (dir: string) => void): string => {
      const src = backend();
      mutate(src);
      const archive = path.join(tmp, `m-${n++}.tar.gz`);
      execFileSync("tar", ["-czf", archive, "-C", src, "."]);
      return (splitArtifact(archive) as { depsDigest: string }).depsDigest;
    };
    const base = digestOf(() => {});
    assert.equal(digestOf((d) => fs.writeFileSync(path.join(d, "dist/server.js"), "changed\n")), base);
    assert.notEqual(digestOf((d) => fs.writeFileSync(path.join(d, "node_modules/pkg/lib/cli.js"), "changed\n")), base);
    assert.notEqual(digestOf((d) => fs.chmodSync(path.join(d, "node_modules/pkg/index.js"), 0o755)), base);
    assert.notEqual(digestOf((d) => {
      fs.rmSync(path.join(d, "node_modules/.bin/pkg"));
      fs.symlinkSync("../pkg/index.js", path.join(d, "node_modules/.bin/pkg"));
    }), base);
    assert.notEqual(digestOf((d) => fs.mkdirSync(path.join(d, "node_modules/newdir"))), base);
  });

  it("the VPS's digest leaves out node_modules/.cache, where tools write caches while a release runs", () => {
    const dir = backend();
    const before = vpsDigest(dir);
    fs.mkdirSync(path.join(dir, "node_modules/.cache/jiti"), { recursive: true });
    fs.writeFileSync(path.join(dir, "node_modules/.cache/jiti/prisma.config.mjs"), "export default {}\n");
    assert.equal(vpsDigest(dir), before);
    fs.mkdirSync(path.join(dir, "node_modules/pkg/.cache"));
    assert.notEqual(vpsDigest(dir), before, "only the top-level .cache is a cache");
  });

  it("sends the whole artifact when there is no node_modules, or the layers would be tied together", () => {
    const cases: [string, (dir: string) => void][] = [
      ["no node_modules", (d) => fs.rmSync(path.join(d, "node_modules"), { recursive: true })],
      ["node_modules is a symlink", (d) => {
        fs.renameSync(path.join(d, "node_modules"), path.join(d, "deps"));
        fs.symlinkSync("deps", path.join(d, "node_modules"));
      }],
      ["a symlink outside node_modules leads into it", (d) => fs.symlinkSync("node_modules/pkg", path.join(d, "pkg"))],
      ["a hard link crosses the layers", (d) => fs.linkSync(path.join(d, "dist/server.js"), path.join(d, "node_modules/pkg/server.js"))],
      ["node_modules/.cache, which the VPS does not digest", (d) => fs.mkdirSync(path.join(d, "node_modules/.cache/tool"), { recursive: true })],
    ];
    for (const [name, mutate] of cases) {
      const src = backend();
      mutate(src);
      const archive = path.join(tmp, `r-${n++}.tar.gz`);
      execFileSync("tar", ["-czf", archive, "-C", src, "."]);
      assert.equal(splitArtifact(archive), undefined, name);
    }
  });

  it("layersOf caches the split per sha256, and a damaged cached layer is rebuilt", () => {
    const src = backend();
    const archive = path.join(tmp, `c-${n++}.tar.gz`);
    execFileSync("tar", ["-czf", archive, "-C", src, "."]);
    const sha = sha256File(archive);
    const cache = path.join(tmp, "cache");
    const first = layersOf(archive, sha, cache);
    assert.ok(first);
    assert.equal(sha256File(first.appPath), first.appSha256);
    fs.renameSync(archive, `${archive}.away`); // from the cache now: the artifact is not read again
    assert.deepEqual(layersOf(archive, sha, cache), first);
    fs.writeFileSync(first.appPath, "damaged");
    assert.equal(layersOf(archive, sha, cache), undefined, "damaged and the artifact unreadable: sent whole");
    fs.renameSync(`${archive}.away`, archive);
    assert.deepEqual(layersOf(archive, sha, cache), first, "rebuilt, byte for byte");
  });
});

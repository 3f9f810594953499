// The delta upload end to end (infra/layers.ts): an artifact that brings its node_modules is sent
// whole once; a later release with the same node_modules sends only its app layer and hard-links
// them from the kept release, checked against the artifact's tree digest while the release starts
// in preflight. node_modules changed on the VPS since then fail that release before anything is
// activated (step deps), and the next up sends it whole.
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import * as path from "node:path";
import { after, before, describe, it } from "node:test";
import { sshRun, stackOnLocalVps } from "../../driver/local";

function prependToServer(dir: string, line: string): void {
  const file = path.join(dir, "dist", "server.js");
  writeFileSync(file, `${line}\n${readFileSync(file, "utf8")}`);
}

describe("delta upload: only the app layer when the node_modules are a kept release's", { timeout: 15 * 60 * 1000 }, () => {
  let s: Awaited<ReturnType<typeof stackOnLocalVps>>;
  let b: { file: string; id: string };
  let c: { file: string; id: string };
  // A file inside node_modules, the same in every release here.
  let shared: string;
  const inode = (id: string) => sshRun(s.vps, `stat -c %i ${s.root}/releases/${id}/node_modules/${shared}`).stdout.trim();

  before(async () => {
    s = await stackOnLocalVps("e2e-layers", { withNodeModules: true });
    b = s.artifacts.variant("b", (dir) => prependToServer(dir, "// release b"));
    c = s.artifacts.variant("c", (dir) => prependToServer(dir, "// release c"));
    s.stack.setConfig("app:artifact", s.artifacts.a.file);
  });

  after(() => s?.remove());

  it("the first release brings its node_modules whole, and they are marked with their tree digest", async () => {
    const r = s.stack.up();
    assert.equal(r.status, 0, r.stdout + r.stderr);
    assert.doesNotMatch(r.stdout, /only the app layer/);
    assert.equal(await s.live(), s.artifacts.a.id);
    const a = s.artifacts.a.id;
    const ls = sshRun(s.vps, `test -s ${s.root}/releases/${a}/.deps-digest && echo marked; cd ${s.root}/releases/${a}/node_modules && find . -type f -name package.json | sort | head -1`);
    const [marked, file] = ls.stdout.trim().split("\n");
    assert.equal(marked, "marked", ls.stdout + ls.stderr);
    assert.ok(file, "the artifact brought no node_modules");
    shared = file.replace(/^\.\//, "");
  });

  it("a new release with the same node_modules uploads only its app layer and hard-links them", async () => {
    s.stack.setConfig("app:artifact", b.file);
    const r = s.stack.up();
    assert.equal(r.status, 0, r.stdout + r.stderr);
    assert.match(r.stdout, new RegExp(`only the app layer was uploaded; node_modules hard-linked from release ${s.artifacts.a.id}`));
    assert.equal(await s.live(), b.id);
    assert.equal(inode(b.id), inode(s.artifacts.a.id));
    const marks = sshRun(s.vps, `cat ${s.root}/releases/${s.artifacts.a.id}/.deps-digest ${s.root}/releases/${b.id}/.deps-digest`).stdout.trim().split("\n");
    assert.equal(marks.length, 2);
    assert.equal(marks[0], marks[1]);
  });

  it("the same artifact again changes nothing", () => {
    const p = s.stack.preview(["--expect-no-changes"]);
    assert.equal(p.status, 0, p.stdout + p.stderr);
  });

  it("node_modules changed on the VPS: the release fails before activation naming the kept release, and the next up sends it whole", async () => {
    // Written in place: every release that hard-links the file sees it.
    sshRun(s.vps, `echo ' ' >>${s.root}/releases/${b.id}/node_modules/${shared}`);
    s.stack.setConfig("app:artifact", c.file);
    const bad = s.stack.up();
    assert.notEqual(bad.status, 0, bad.stdout);
    const text = bad.stdout + bad.stderr;
    assert.match(text, new RegExp(`release ${c.id} failed at step deps`));
    assert.match(text, new RegExp(`release ${b.id}'s node_modules changed on the VPS since it was deployed`));
    assert.equal(await s.live(), b.id);
    const marks = sshRun(s.vps, `ls ${s.root}/releases/*/.deps-digest 2>/dev/null | wc -l; test -e ${s.root}/releases/${c.id} && echo staged || true`);
    assert.equal(marks.stdout.trim(), "0", "a release with changed node_modules is still a base");

    const r = s.stack.up();
    assert.equal(r.status, 0, r.stdout + r.stderr);
    assert.doesNotMatch(r.stdout, /only the app layer/);
    assert.equal(await s.live(), c.id);
    assert.notEqual(inode(c.id), inode(b.id));
    const own = sshRun(s.vps, `test -s ${s.root}/releases/${c.id}/.deps-digest && echo marked`);
    assert.equal(own.stdout.trim(), "marked");
  });
});

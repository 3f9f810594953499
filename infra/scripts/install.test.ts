// The install step of a release whose dependencies changed (release.lib.sh stage_install), for real
// with npm and the registry: starting from the previous release's node_modules (hard links) gives
// the same tree as a clean `npm ci --omit=dev`, and leaves the previous release's files byte for
// byte as they were.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { spawnSync } from "node:child_process";
import { cpSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { after, before, describe, it } from "node:test";
import { RELEASE_LIB } from "./release";

/** Every entry under `dir`: files by content hash and mode, links by target, folders by mode. */
function tree(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (rel: string) => {
    for (const name of readdirSync(path.join(dir, rel)).sort()) {
      const r = rel ? `${rel}/${name}` : name;
      const p = path.join(dir, r);
      const st = lstatSync(p);
      if (st.isSymbolicLink()) out[r] = `link ${readlinkSync(p)}`;
      else if (st.isDirectory()) {
        out[r] = `dir ${(st.mode & 0o777).toString(8)}`;
        walk(r);
      } else out[r] = `file ${(st.mode & 0o777).toString(8)} ${createHash("sha256").update(readFileSync(p)).digest("hex")}`;
    }
  };
  walk("");
  return out;
}

function npm(cwd: string, args: string[]): void {
  const r = spawnSync("npm", args, { cwd, encoding: "utf8" });
  assert.equal(r.status, 0, `npm ${args.join(" ")} in ${cwd}:\n${r.stdout}\n${r.stderr}`);
}

/** A release folder with a package.json of `deps` and its lockfile (made with npm, no install). */
function release(dir: string, deps: Record<string, string>, devDeps: Record<string, string> = {}): void {
  mkdirSync(dir, { recursive: true });
  writeFileSync(path.join(dir, "package.json"), JSON.stringify({ name: "app", version: "1.0.0", dependencies: deps, devDependencies: devDeps }, null, 2));
  npm(dir, ["install", "--package-lock-only", "--ignore-scripts", "--no-audit", "--no-fund"]);
}

function stageInstall(dir: string, prev: string): { status: number | null; out: string } {
  const r = spawnSync("bash", ["-c", `set -euo pipefail\nfail() { echo "error: $*" >&2; exit 1; }\n${RELEASE_LIB}\nstage_install "$1" "$2"`, "stage", dir, prev], { encoding: "utf8" });
  return { status: r.status, out: r.stdout + r.stderr };
}

describe("install with changed dependencies: the previous release's node_modules, reconciled", () => {
  let tmp: string;
  before(() => {
    tmp = mkdtempSync(path.join(tmpdir(), "install-"));
  });
  after(() => rmSync(tmp, { recursive: true, force: true }));

  it("gives the tree of a clean npm ci --omit=dev and leaves the previous release unchanged", () => {
    const a = path.join(tmp, "a");
    const b = path.join(tmp, "b");
    const clean = path.join(tmp, "clean");
    // Kept (is-number), upgraded (ms), added (escape-html), removed (depd), and a dev dependency.
    release(a, { ms: "2.1.2", "is-number": "7.0.0", depd: "2.0.0" }, { "escape-string-regexp": "4.0.0" });
    release(b, { ms: "2.1.3", "is-number": "7.0.0", "escape-html": "1.0.3" }, { "escape-string-regexp": "4.0.0" });
    assert.match(stageInstall(a, "").out, /install: npm ci --omit=dev/);
    const before = tree(path.join(a, "node_modules"));
    const lockBefore = readFileSync(path.join(b, "package-lock.json"), "utf8");
    cpSync(b, clean, { recursive: true });

    const r = stageInstall(b, a);
    assert.equal(r.status, 0, r.out);
    assert.match(r.out, /install: a's node_modules, reconciled with the new lockfile/);

    npm(clean, ["ci", "--omit=dev", "--ignore-scripts", "--no-audit", "--no-fund"]);
    const got = tree(path.join(b, "node_modules"));
    const want = tree(path.join(clean, "node_modules"));
    // Everything, npm's own record of the tree (node_modules/.package-lock.json) included, which
    // npm rewrites in place: without its copy in stage_install, the previous release's would change.
    assert.deepEqual(got, want);
    assert.ok(got["ms/package.json"] && !got["depd"] && got["escape-html/package.json"] && !got["escape-string-regexp"], JSON.stringify(Object.keys(got)));
    assert.deepEqual(tree(path.join(a, "node_modules")), before, "the previous release's node_modules changed");
    assert.equal(readFileSync(path.join(b, "package-lock.json"), "utf8"), lockBefore, "the lockfile changed");
  });

  it("a lockfile out of step with package.json fails as npm ci does, and the previous release stays as it was", () => {
    const a = path.join(tmp, "a");
    const c = path.join(tmp, "c");
    release(c, { ms: "2.1.3" });
    const pkg = JSON.parse(readFileSync(path.join(c, "package.json"), "utf8"));
    pkg.dependencies["is-number"] = "7.0.0"; // not in the lockfile
    writeFileSync(path.join(c, "package.json"), JSON.stringify(pkg));
    const before = tree(path.join(a, "node_modules"));
    const r = stageInstall(c, a);
    assert.notEqual(r.status, 0, r.out);
    // The dry-run runs alongside the reconciling install: its refusal drops the reconciled tree.
    assert.match(r.out, /install: the lockfile is out of step with package.json/);
    assert.match(r.out, /npm ci --omit=dev failed/);
    assert.match(r.out, /in sync/);
    assert.deepEqual(tree(path.join(a, "node_modules")), before);
  });
});

// The one backend-folder setting (package.json vpsRelease.backend): a project that keeps its
// backend in backend/, as the hand-written flow did, gets its artifact from the build workflow's own
// step (.github/scripts/package.sh, run with no folder) and from `npm run package`.
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { cpSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { after, describe, it } from "node:test";
import YAML from "yaml";

const projectRoot = path.resolve(__dirname, "..", "..");

describe("the backend folder setting in the workflows", { timeout: 10 * 60 * 1000 }, () => {
  const dir = mkdtempSync(path.join(tmpdir(), "backend-folder-"));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it("the build workflow packages the folder package.json names, and no workflow names examples/backend", () => {
    // The project as a team would copy it next to its own backend/.
    for (const p of ["scripts", "infra", ".github", "tsconfig.json"]) cpSync(path.join(projectRoot, p), path.join(dir, p), { recursive: true });
    for (const p of ["node_modules", ".tools"]) symlinkSync(path.join(projectRoot, p), path.join(dir, p));
    const pkg = JSON.parse(readFileSync(path.join(projectRoot, "package.json"), "utf8")) as Record<string, unknown>;
    writeFileSync(path.join(dir, "package.json"), JSON.stringify({ ...pkg, vpsRelease: { backend: "backend" } }, null, 2));
    cpSync(path.join(projectRoot, "examples", "backend"), path.join(dir, "backend"), {
      recursive: true, filter: (src) => !/[\\/](node_modules|dist|\.artifacts)$/.test(src),
    });
    // Its own version: the artifact must come from backend/, not from examples/backend.
    const appPkg = path.join(dir, "backend", "package.json");
    writeFileSync(appPkg, JSON.stringify({ ...JSON.parse(readFileSync(appPkg, "utf8")), version: "9.9.9-backend-folder" }, null, 2));

    const outputs = path.join(dir, "github-output");
    writeFileSync(outputs, "");
    const build = YAML.parse(readFileSync(path.join(dir, ".github", "workflows", "build.yml"), "utf8")) as {
      jobs: { build: { steps: { id?: string; run?: string }[] } };
    };
    const step = build.jobs.build.steps.find((s) => s.id === "package");
    assert.equal(step?.run, "bash .github/scripts/package.sh");
    const r = spawnSync("bash", ["-c", step!.run!], { cwd: dir, env: { ...process.env, GITHUB_OUTPUT: outputs, INIT_CWD: dir }, encoding: "utf8" });
    assert.equal(r.status, 0, r.stdout + r.stderr);
    const out = Object.fromEntries(readFileSync(outputs, "utf8").trim().split("\n").map((l) => l.split("=") as [string, string]));
    assert.match(out["release-id"], /^[0-9a-f]{12}$/);
    const listed = execFileSync("tar", ["-xzOf", path.join(dir, ".artifacts", out.artifact), "package.json"], { encoding: "utf8" });
    assert.equal(JSON.parse(listed).version, "9.9.9-backend-folder");

    for (const f of ["build.yml", "deploy.yml", "preview.yml", "release.yml", "operate.yml"]) {
      assert.doesNotMatch(readFileSync(path.join(projectRoot, ".github", "workflows", f), "utf8"), /examples\/backend/, `${f} names examples/backend`);
    }
  });
});

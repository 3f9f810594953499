// .github/scripts/release-summary.ts on real `pulumi up` logs of the local VPS (fixtures/: a first
// deploy, a new release, an up that changed nothing, a release refused at preflight).
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { describe, it } from "node:test";
import { parseUpLog, renderSummary } from "../../.github/scripts/release-summary";

const fixture = (name: string) => readFileSync(path.join(__dirname, "fixtures", `up-${name}.log`), "utf8");
const projectRoot = path.resolve(__dirname, "..", "..");

describe("parseUpLog", () => {
  it("reads each step once, in order, from the Diagnostics copy", () => {
    const log = parseUpLog(fixture("second"));
    assert.deepEqual(log.steps.map((s) => s.name),
      ["lock", "verify", "extract", "install", "link", "preflight", "switch", "reload", "health", "save", "prune"]);
    assert.deepEqual(log.steps.find((s) => s.name === "reload"), { name: "reload", seconds: 3.45 });
    assert.equal(log.result?.releaseId, "9b32264facc4");
    assert.equal(log.result?.previousReleaseId, "ff904bda03e2");
    assert.equal(log.plan, "ff904bda03e2 -> 9b32264facc4 (a new artifact; pulumi up)");
    assert.equal(log.healthy.length, 2, "preflight and live");
    assert.equal(log.healthy[1].url, "http://127.0.0.1:39221/health");
    assert.match(log.healthy[1].body, /"release":"9b32264facc4"/);
    assert.equal(log.failure, undefined);
    assert.deepEqual(log.errors, []);
  });

  it("reads a first deploy: install, backup and migrate, no previous release", () => {
    const log = parseUpLog(fixture("first"));
    assert.ok(["install", "backup", "migrate"].every((s) => log.steps.some((x) => x.name === s)));
    assert.equal(log.result?.releaseId, "ff904bda03e2");
    assert.equal(log.result?.previousReleaseId, "");
  });

  it("reads the live lines when the log was cut before Diagnostics", () => {
    const full = fixture("second");
    const log = parseUpLog(full.slice(0, full.indexOf("\nDiagnostics:\n")));
    assert.deepEqual(log.steps, parseUpLog(full).steps);
    assert.equal(log.result?.releaseId, "9b32264facc4");
    assert.equal(log.healthy.length, 2);
  });

  it("reads an up that changed nothing: no steps, no RESULT, the plan line", () => {
    const log = parseUpLog(fixture("noop"));
    assert.deepEqual(log.steps, []);
    assert.equal(log.result, undefined);
    assert.equal(log.plan, "ff904bda03e2 stays live");
  });

  it("reads a refused release: the failed step, its errors once each", () => {
    const log = parseUpLog(fixture("failed"));
    assert.deepEqual(log.failure, { releaseId: "9b32264facc4", step: "preflight" });
    assert.deepEqual(log.steps.map((s) => s.name), ["lock"]);
    assert.equal(log.errors.filter((e) => e.startsWith("health: ")).length, 1);
    assert.ok(log.errors.some((e) => /did not become healthy when started alone/.test(e)));
    assert.ok(log.errors.includes("error: update failed"));
  });
});

describe("renderSummary", () => {
  it("shows the release id, each step's duration with the total, and the health answers", () => {
    const md = renderSummary({ title: "Deploy staging", log: parseUpLog(fixture("second")), health: '200 {"status":"ok","release":"9b32264facc4"}\n' });
    assert.match(md, /^### Deploy staging\n/);
    assert.match(md, /\| result \| ✅ released \|/);
    assert.match(md, /\| release \| `9b32264facc4` \|/);
    assert.match(md, /\| previous release \| `ff904bda03e2` \|/);
    assert.match(md, /\| reload \| 3\.45 \|/);
    assert.match(md, /\| \*\*total on the VPS\*\* \| \*\*6\.27\*\* \|/);
    assert.match(md, /\| health \(release script\) \| `http:\/\/127\.0\.0\.1:39221\/health` after 0\.1s: `\{"status":"ok"/);
    assert.match(md, /\| health \(smoke check\) \| `200 \{"status":"ok","release":"9b32264facc4"\}` \|/);
  });

  it("takes the release from the stack outputs when the up changed nothing", () => {
    const md = renderSummary({ title: "t", log: parseUpLog(fixture("noop")), outputs: { releaseId: "ff904bda03e2", artifactSha256: "ff904bda" } });
    assert.match(md, /\| result \| ✅ no change \|/);
    assert.match(md, /\| release \| `ff904bda03e2` \|/);
    assert.doesNotMatch(md, /\| step \| seconds \|/);
  });

  it("shows a failure with its step and error lines", () => {
    const md = renderSummary({ title: "t", log: parseUpLog(fixture("failed")) });
    assert.match(md, /\| result \| ❌ failed at step preflight \|/);
    assert.match(md, /```\n(.*\n)*error: release 9b32264facc4 did not become healthy/);
  });

  it("with the official provider's log (the steps only on passing status lines), takes them from releaseSteps", () => {
    const log = [
      "Updating (staging):",
      " ++ command:remote:Command release-activate creating replacement (0s) [diff: ~stdin,triggers]",
      " ++ command:remote:Command release-activate created replacement (9s) [diff: ~stdin,triggers]",
      "Diagnostics:",
      "  pulumi:pulumi:Stack (vps-release-staging):",
      "    release: ff904bda03e2 -> 9b32264facc4 (a new artifact; pulumi up)",
      "",
      "Outputs:",
    ].join("\n");
    const steps = JSON.stringify([{ name: "lock", seconds: 0.01 }, { name: "reload", seconds: 3.45 }]);
    const md = renderSummary({ title: "t", log: parseUpLog(log), outputs: { releaseId: "9b32264facc4", releaseSteps: steps } });
    assert.match(md, /\| result \| ✅ released \|/);
    assert.match(md, /\| reload \| 3\.45 \|/);
    assert.match(md, /\| \*\*total on the VPS\*\* \| \*\*3\.46\*\* \|/);
  });

  it("keeps the tables whole when a value holds pipes, backticks or newlines", () => {
    const log = parseUpLog("Diagnostics:\n  x:\n    healthy after 0.1s: http://h/health {\"a\":\"x|`y`\"}\n\nOutputs:\n");
    const md = renderSummary({ title: "a | b", log, health: "200 line1\nline2 | `z`" });
    for (const row of md.split("\n").filter((l) => l.startsWith("| "))) {
      assert.equal(row.replace(/\\\|/g, "").split("|").length, 4, `row splits into two cells: ${row}`);
    }
    assert.match(md, /``200 line1 line2 \\\| `z```|`` 200 line1 line2 \\\| `z` ``/);
  });
});

describe("release-summary CLI", () => {
  it("prints Markdown for --log, --outputs and --health files, and tolerates a missing optional file", () => {
    const dir = mkdtempSync(path.join(tmpdir(), "summary-"));
    try {
      writeFileSync(path.join(dir, "up.log"), fixture("noop"));
      writeFileSync(path.join(dir, "outputs.json"), JSON.stringify({ releaseId: "ff904bda03e2", envHash: "[secret]" }));
      const r = spawnSync(process.execPath, ["--import", "tsx", ".github/scripts/release-summary.ts",
        "--log", path.join(dir, "up.log"), "--title", "Deploy staging", "--outputs", path.join(dir, "outputs.json"),
        "--health", path.join(dir, "missing.txt")], { cwd: projectRoot, encoding: "utf8" });
      assert.equal(r.status, 0, r.stderr);
      assert.match(r.stdout, /### Deploy staging/);
      assert.match(r.stdout, /\| release \| `ff904bda03e2` \|/);
      const bad = spawnSync(process.execPath, ["--import", "tsx", ".github/scripts/release-summary.ts", "--nope"], { cwd: projectRoot, encoding: "utf8" });
      assert.equal(bad.status, 2);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

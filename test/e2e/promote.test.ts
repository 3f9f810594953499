// Promotion between two stacks on the local VPS (two deploy roots standing for staging and
// production): the same bytes go to S2; a failed S1 update or other bytes are refused.
import assert from "node:assert/strict";
import { appendFileSync } from "node:fs";
import * as path from "node:path";
import { after, before, describe, it } from "node:test";
import { Artifacts, freePort, getJson, localVps, projectRoot, run, sshRun, TestStack, Vps } from "../../driver/local";

describe("promote between two stacks", { timeout: 10 * 60 * 1000 }, () => {
  let artifacts: Artifacts;
  let vps: Vps;
  let s1: TestStack;
  let s2: TestStack;
  let a = { path: "", releaseId: "", sha256: "" };
  const ports: Record<string, number> = {};

  const promote = (...args: string[]) => run("bash", ["scripts/node.sh", "ops/promote.ts", ...args], {
    env: { PULUMI_BACKEND_URL: `file://${s1.backend}`, PULUMI_CONFIG_PASSPHRASE: "e2e-test-passphrase" },
  });

  before(async () => {
    vps = localVps();
    artifacts = new Artifacts();
    a = { path: artifacts.a.file, releaseId: artifacts.a.id, sha256: artifacts.a.sha256 };
    s1 = new TestStack(projectRoot, "e2e-stg");
    s2 = new TestStack(projectRoot, "e2e-prd", s1.backend);
    for (const s of [s1, s2]) {
      ports[s.name] = await freePort();
      s.useVps(vps, ports[s.name]);
      s.setConfig("app:healthTimeout", "15");
      s.setConfig("app:instances", "1");
    }
    s1.setConfig("app:artifact", a.path);
  });

  after(() => {
    for (const s of [s1, s2]) {
      sshRun(vps, `pm2 delete ${s.name} >/dev/null 2>&1; rm -rf ${vps.root}-${s.name}`);
      s.remove();
    }
    sshRun(vps, "pm2 save --force >/dev/null 2>&1");
    artifacts.remove();
  });

  it("deploys to S2 exactly the release S1 runs", async () => {
    const up = s1.up();
    assert.equal(up.status, 0, up.stdout + up.stderr);
    const r = promote("--from", s1.name, "--to", s2.name);
    assert.equal(r.status, 0, r.stdout + r.stderr);
    const out = s2.outputs();
    assert.equal(out.releaseId, a.releaseId);
    assert.equal(out.artifactSha256, a.sha256);
    const health = await getJson(`http://127.0.0.1:${ports[s2.name]}/health`);
    assert.equal((health.body as { release: string }).release, a.releaseId);
    // Provenance: in S2's outputs and in its revisions.log.
    const p = out.provenance as Record<string, string>;
    assert.deepEqual({ ...p, activatedAt: "", requestedAt: "" },
      { source: "promote", fromStack: s1.name, releaseId: a.releaseId, artifactSha256: a.sha256, activatedAt: "", requestedAt: "" });
    assert.match(p.activatedAt, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    const log = sshRun(vps, `tail -n 1 ${vps.root}-${s2.name}/revisions.log`).stdout;
    const last = JSON.parse(log) as { releaseId: string; previousReleaseId: string; result: string; source: string };
    assert.deepEqual({ ...last, source: "" }, { ...last, releaseId: a.releaseId, previousReleaseId: "", result: "ok", source: "" });
    assert.match(last.source, new RegExp(`^promote from ${s1.name} sha256 ${a.sha256} requested \\S+Z$`));
    // Promoting again finds nothing to do.
    const again = promote("--from", s1.name, "--to", s2.name);
    assert.equal(again.status, 0, again.stdout + again.stderr);
    assert.match(again.stdout, /already runs .*; nothing to do/);
  });

  it("refuses other bytes than S1's", () => {
    const other = artifacts.variant("other", (d) => appendFileSync(path.join(d, "dist", "server.js"), "\n// other bytes\n")).file;
    const r = promote("--from", s1.name, "--to", s2.name, "--artifact", other);
    assert.equal(r.status, 2, r.stdout + r.stderr);
    assert.match(r.stderr, new RegExp(`has sha256 [0-9a-f]{64}, but ${s1.name} runs ${a.sha256}; refusing to promote other bytes`));
  });

  it("refuses when S1's last update failed", () => {
    s1.setConfig("app:release", "0123456789ab");
    s1.setConfig("app:artifact", "");
    const failed = s1.up();
    assert.notEqual(failed.status, 0);
    const r = promote("--from", s1.name, "--to", s2.name, "--artifact", a.path);
    assert.equal(r.status, 2, r.stdout + r.stderr);
    assert.match(r.stderr, new RegExp(`stack ${s1.name}'s last update failed`));
    assert.equal(s2.outputs().releaseId, a.releaseId);
  });
});

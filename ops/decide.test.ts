// The refusal rules of rollback and promote, over fake stacks: no SSH, no Automation API.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { migrationNote, parseBackups, planPromotion, planRestore, planRollback, releaseAt, StackView } from "./decide";

const A = "aaaaaaaaaaaa";
const B = "bbbbbbbbbbbb";
const C = "cccccccccccc";
const SHA = "ab".repeat(32);

const stack = (name: string, outputs: Record<string, string>, more: Partial<StackView> = {}): StackView => ({ name, outputs, ...more });

describe("planRollback", () => {
  const live = stack("prod", { releaseId: B, previousReleaseId: A }, { kept: async () => [A, B] });
  it("goes to the previous release by default", async () => {
    assert.deepEqual(await planRollback(live), { kind: "rollback", from: B, to: A });
  });
  it("goes to a kept release by id", async () => {
    assert.deepEqual(await planRollback({ ...live, kept: async () => [A, B, C] }, C), { kind: "rollback", from: B, to: C });
  });
  it("does nothing for the live release", async () => {
    assert.deepEqual(await planRollback(live, B), { kind: "nothing", message: `release ${B} is already live on prod; nothing to do` });
  });
  it("refuses an id that is not kept, listing the kept ones", async () => {
    await assert.rejects(planRollback(live, C), new RegExp(`release ${C} is not kept on the VPS of prod; kept: ${A}, ${B}`));
  });
  it("refuses without a previous release, and a malformed id", async () => {
    await assert.rejects(planRollback(stack("new", { releaseId: A })), /records no previous release; name one with --to ID/);
    await assert.rejects(planRollback(live, "nope"), /--to "nope": expected a release id/);
  });
});

describe("planPromotion", () => {
  const ok = { result: "succeeded", kind: "update", startTime: "t" };
  const from = (more: Partial<StackView> = {}) => stack("staging", { releaseId: A, artifactSha256: SHA, healthUrl: "http://127.0.0.1:3000/health" },
    { lastUpdate: async () => ok, health: async () => `200 {"release":"${A}"}`, ...more });
  const to = stack("production", { releaseId: B, artifactSha256: "cd".repeat(32) });
  const artifact = { path: "/a.tar.gz", sha256: SHA };

  it("promotes the bytes the source runs", async () => {
    assert.deepEqual(await planPromotion(from(), to, artifact), { kind: "promote", releaseId: A, sha256: SHA });
  });
  it("does nothing when the target runs them already", async () => {
    const same = stack("production", { releaseId: A, artifactSha256: SHA });
    assert.equal((await planPromotion(from(), same, artifact)).kind, "nothing");
  });
  it("refuses after a failed update of the source", async () => {
    await assert.rejects(planPromotion(from({ lastUpdate: async () => ({ ...ok, result: "failed" }) }), to, artifact),
      /staging's last update failed \(update, t\); promote only from a stack whose last update succeeded/);
  });
  it("refuses when the source is not healthy now", async () => {
    await assert.rejects(planPromotion(from({ health: async () => `200 {"release":"${C}"}` }), to, artifact), /is not healthy now/);
    await assert.rejects(planPromotion(from({ health: async () => "0 ssh: refused" }), to, artifact), /is not healthy now/);
  });
  it("refuses other bytes, and a missing tarball", async () => {
    await assert.rejects(planPromotion(from(), to, { path: "/b.tar.gz", sha256: "ef".repeat(32) }), /refusing to promote other bytes/);
    await assert.rejects(planPromotion(from(), to, { path: "/gone.tar.gz" }), /is not here \(\/gone\.tar\.gz\); pass it with --artifact PATH/);
  });
  it("refuses one stack for both ends, and a source without a release", async () => {
    await assert.rejects(planPromotion(from(), stack("staging", {}), artifact), /name the same stack/);
    await assert.rejects(planPromotion(stack("staging", {}), to, artifact), /records no release to promote/);
  });
});

describe("migrationNote", () => {
  it("names the live release's migrations that stay applied, and the target's that will run", () => {
    assert.equal(migrationNote({ id: A, migrations: ["1", "2"] }, { id: B, migrations: ["1", "2"] }), undefined);
    assert.match(migrationNote({ id: A, migrations: ["1"] }, { id: B, migrations: ["1", "2", "3"] }) ?? "",
      new RegExp(`^database: these migrations of ${B} stay applied .*expand/contract\\): 2, 3\\. To go back to the database before them: npm run restore$`));
    assert.match(migrationNote({ id: C, migrations: ["1", "4"] }, { id: B, migrations: ["1"] }) ?? "",
      new RegExp(`${C} carries migrations ${B} has not: 4 \\(they run before it goes live\\)`));
  });
});

describe("planRestore", () => {
  const t0 = Date.parse("2026-12-02T10:00:00Z") / 1000;
  const revisions = [
    { time: "2026-12-02T09:00:00Z", releaseId: A, result: "ok" },
    { time: "2026-12-02T10:00:05Z", releaseId: B, result: "ok" },
    { time: "2026-12-02T11:00:00Z", releaseId: C, result: "failed:migrate" },
  ];
  const backups = parseBackups([`${B}-20261202T100000Z.db ${t0}`, `${B}-20261202T100000Z.db-wal ${t0}`, `${C}-20261202T110000Z.db ${t0 + 3600}`]);
  it("lists each backup, newest first, with the release live when it was taken", () => {
    assert.deepEqual(backups.map((b) => b.name), [`${C}-20261202T110000Z.db`, `${B}-20261202T100000Z.db`]);
    assert.equal(releaseAt(backups[0], revisions), B);
    assert.equal(releaseAt(backups[1], revisions), A);
    const plan = planRestore(backups, revisions, [A, B], undefined, false);
    assert.deepEqual(plan.kind === "list" && plan.backups.map((b) => [b.matches, b.kept]), [[B, true], [A, true]]);
  });
  it("asks for --yes, saying what is lost; refuses a backup whose release is gone or unknown", () => {
    const ask = planRestore(backups, revisions, [A, B], `${B}-20261202T100000Z.db`, false);
    assert.equal(ask.kind, "confirm");
    assert.match(ask.kind === "confirm" ? ask.message : "", /the database goes back to 2026-12-02T10:00:00Z.*Everything written to it since 2026-12-02T10:00:00Z is lost.*release a{12}/);
    assert.equal(planRestore(backups, revisions, [A, B], `${B}-20261202T100000Z.db`, true).kind, "restore");
    assert.throws(() => planRestore(backups, revisions, [B], `${B}-20261202T100000Z.db`, true), /matches release a{12}, which is no longer kept/);
    assert.throws(() => planRestore(backups, revisions, [A, B], "nope.db", true), /no backup "nope\.db" on the VPS; there are: /);
  });
});

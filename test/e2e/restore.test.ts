// Data-safe restore end to end with SQLite on the local VPS (issue 17): a release with a new
// migration is backed up before it migrates; `npm run restore` lists that backup with the release
// it matches, says what a restore loses without --yes, and with --yes brings back the data from
// before the migration under the release that was live then. A rollback names the migrations that
// stay applied or will run.
import assert from "node:assert/strict";
import { mkdirSync, writeFileSync } from "node:fs";
import { request } from "node:http";
import * as path from "node:path";
import { after, before, describe, it } from "node:test";
import { Artifacts, getJson, run, sshRun, stackOnLocalVps, TestStack, Vps } from "../../driver/local";

const MIGRATION = "20260102000000_restore_note";

function post(url: string, body: unknown): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: "POST", agent: false, headers: { "content-type": "application/json" } }, (res) => {
      let text = "";
      res.setEncoding("utf8").on("data", (d: string) => (text += d));
      res.on("end", () => (res.statusCode === 201 ? resolve(201) : reject(new Error(`POST ${url}: ${res.statusCode} ${text}`))));
    });
    req.on("error", (e) => reject(new Error(`POST ${url}: ${e.message}`)));
    req.end(JSON.stringify(body));
  });
}

describe("restore a backup taken before a migration (SQLite)", { timeout: 10 * 60 * 1000 }, () => {
  let vps: Vps;
  let stack: TestStack;
  let root: string;
  let health: string;
  let artifacts: Artifacts;
  let remove = () => {};
  let env: Record<string, string>;
  let b: { file: string; id: string };
  const ops = (script: string, ...args: string[]) => run("bash", ["scripts/node.sh", `ops/${script}.ts`, "--stack", stack.name, ...args], { env });
  const titles = async () => ((await getJson(health.replace(/\/health$/, "/videos"))).body as { title: string }[]).map((v) => v.title).sort();
  const live = () => sshRun(vps, `basename "$(readlink ${root}/current)"`).stdout.trim();

  before(async () => {
    ({ vps, stack, root, health, artifacts, remove } = await stackOnLocalVps("e2e-restore"));
    env = { PULUMI_BACKEND_URL: `file://${stack.backend}`, PULUMI_CONFIG_PASSPHRASE: "e2e-test-passphrase" };
    stack.setConfig("app:artifact", artifacts.a.file);
    const r = stack.up();
    assert.equal(r.status, 0, r.stdout + r.stderr);
    assert.equal(await post(health.replace(/\/health$/, "/videos"), { title: "written before the backup" }), 201);
    b = artifacts.variant("b", (d) => {
      const dir = path.join(d, "prisma", "sqlite", "migrations", MIGRATION);
      mkdirSync(dir, { recursive: true });
      writeFileSync(path.join(dir, "migration.sql"), 'ALTER TABLE "Video" ADD COLUMN "restoreNote" TEXT;\n');
    });
    stack.setConfig("app:artifact", b.file);
    const r2 = stack.up();
    assert.equal(r2.status, 0, r2.stdout + r2.stderr);
    assert.equal(await post(health.replace(/\/health$/, "/videos"), { title: "written after the backup" }), 201);
  });
  after(() => remove());

  it("lists the backup with the release it matches; without --yes says what is lost and changes nothing", async () => {
    const list = ops("restore");
    assert.equal(list.status, 0, list.stdout + list.stderr);
    const name = new RegExp(`^(${b.id}-\\S+\\.db) +\\S+Z +${b.id} +${artifacts.a.id}$`, "m").exec(list.stdout)?.[1];
    assert.ok(name, list.stdout);
    const ask = ops("restore", "--backup", name);
    assert.equal(ask.status, 2, ask.stdout + ask.stderr);
    assert.match(ask.stdout, /Everything written to it since \S+ is lost/);
    assert.match(ask.stdout, /Nothing was changed/);
    assert.deepEqual(await titles(), ["written after the backup", "written before the backup"]);
  });

  it("with --yes: the data from before the migration, under the release live then; healthy", async () => {
    const name = new RegExp(`^(${b.id}-\\S+\\.db) `, "m").exec(ops("restore").stdout)?.[1] ?? "";
    const r = ops("restore", "--backup", name, "--yes");
    assert.equal(r.status, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /restore: .* stopped/);
    assert.match(r.stdout, new RegExp(`restored ${name.replace(/\./g, "\\.")}; release ${artifacts.a.id} answers: 200 `));
    assert.equal(live(), artifacts.a.id);
    assert.deepEqual(await titles(), ["written before the backup"]);
    const applied = sshRun(vps, `ls ${root}/shared/data`).stdout;
    assert.match(applied, /app\.db/);
  });

  it("a rollback names the migrations that will run (or stay applied)", () => {
    const r = ops("rollback", "--to", b.id);
    assert.equal(r.status, 0, r.stdout + r.stderr);
    assert.match(r.stdout, new RegExp(`database: ${b.id} carries migrations ${artifacts.a.id} has not: ${MIGRATION} \\(they run before it goes live\\)`));
    const back = ops("rollback", "--to", artifacts.a.id);
    assert.equal(back.status, 0, back.stdout + back.stderr);
    assert.match(back.stdout, new RegExp(`database: these migrations of ${b.id} stay applied .*: ${MIGRATION}\\. To go back to the database before them: npm run restore`));
  });
});

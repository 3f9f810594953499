// A fleet end to end (issue 15): three hosts, each an sshd with its own host key, home, Node and
// PM2 in a network namespace of its own, one PostgreSQL for all, nginx in front on loopback
// (scripts/local-fleet.sh); real `pulumi up` of the real program, load through the balancer.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import * as path from "node:path";
import { after, before, describe, it } from "node:test";
import { activationRan } from "../../infra/protocol";
import { Artifacts, Fleet, fleetHost, getJson, localFleet, LoadStats, run, sshRun, startLoad, TestStack, projectRoot } from "../../driver/local";

const APP_PORT = 3000;
const MIGRATION = "20260101000000_fleet_note";

// Network namespaces need root: elsewhere this file says so and runs nothing.
const root = process.getuid?.() === 0;

describe("a fleet of three hosts behind a balancer", { timeout: 30 * 60 * 1000, skip: root ? false : "needs root (network namespaces)" }, () => {
  let fleet: Fleet;
  let stack: TestStack;
  let artifacts: Artifacts;
  const host = (i: number) => fleetHost(fleet, i);
  const onHost = (i: number, script: string) => sshRun(host(i), script);
  const live = (i: number) => onHost(i, `basename "$(readlink ${fleet.root}/current)"`).stdout.trim();
  const lives = () => fleet.hosts.map((_, i) => live(i));
  const label = (i: number) => `${fleet.hosts[i].host}:22`;
  const served = (stats: LoadStats, what: string) => {
    console.log(`${what}: ${stats.ok} requests answered through the balancer, ${stats.failed} failed`);
    assert.equal(stats.failed, 0, `${what}: ${JSON.stringify(stats)}`);
    assert.ok(stats.ok > 10, `${what}: ${JSON.stringify(stats)}`);
  };
  const underLoad = async <T>(fn: () => T | Promise<T>): Promise<{ result: T; stats: LoadStats }> => {
    const load = await startLoad(`${fleet.lbUrl}/health`);
    try {
      const result = await fn();
      return { result, stats: await load.stop() };
    } finally {
      await load.stop();
    }
  };
  const hostsOut = () => stack.outputs().hosts as Record<string, { releaseId: string; previousReleaseId: string; primary: boolean; steps: { name: string }[] }>;
  const psql = (sql: string) => spawnSync("psql", [fleet.databaseUrl, "-At", "-c", sql], { encoding: "utf8" });
  const deploy = (a: { file: string }) => {
    stack.setConfig("app:artifact", a.file);
    return stack.up();
  };
  // A new release: A with one line more in its server (another release id).
  const edit = (name: string, change: (server: string) => string = (s) => `${s}\n// ${name}\n`) =>
    artifacts.variant(name, (d) => {
      const file = path.join(d, "dist", "server.js");
      writeFileSync(file, change(readFileSync(file, "utf8")));
    });

  before(() => {
    fleet = localFleet(3, APP_PORT);
    artifacts = new Artifacts();
    stack = new TestStack(projectRoot, "e2e-fleet");
    stack.setConfig("vps:hosts", JSON.stringify(fleet.hosts.map((h, i) => ({ host: h.host, hostKey: h.hostKey, ...(i === 0 ? { primary: true } : {}) }))));
    stack.setConfig("vps:user", fleet.user);
    stack.setConfig("vps:privateKey", fleet.privateKey, { secret: true });
    stack.setConfig("vps:root", fleet.root);
    stack.setConfig("app:name", "fleet-api");
    stack.setConfig("app:port", String(APP_PORT));
    stack.setConfig("app:healthTimeout", "20");
    stack.setConfig("app:healthSettle", "2");
    // The balancer reaches each host on its own address: the app listens on every interface.
    stack.setConfig("app:env", JSON.stringify({ DATABASE_URL: fleet.databaseUrl, HOST: "0.0.0.0" }), { secret: true });
    // Each run starts from empty hosts and an empty database.
    for (let i = 0; i < fleet.hosts.length; i++) onHost(i, `pm2 delete fleet-api >/dev/null 2>&1; pm2 save --force >/dev/null 2>&1; rm -rf ${fleet.root}`);
    psql("DROP SCHEMA public CASCADE; CREATE SCHEMA public;");
  });

  after(() => {
    for (let i = 0; i < fleet.hosts.length; i++) onHost(i, `pm2 delete fleet-api >/dev/null 2>&1; pm2 save --force >/dev/null 2>&1; rm -rf ${fleet.root}`);
    stack.remove();
    artifacts.remove();
  });

  it("first deploy to three hosts: every host live, migrated once on the primary, the balancer answers", async () => {
    const r = deploy(artifacts.a);
    assert.equal(r.status, 0, r.stdout + r.stderr);
    assert.deepEqual(lives(), [artifacts.a.id, artifacts.a.id, artifacts.a.id]);
    const out = stack.outputs();
    assert.equal(out.releaseId, artifacts.a.id);
    const hosts = hostsOut();
    assert.deepEqual(Object.keys(hosts).sort(), fleet.hosts.map((_, i) => label(i)).sort());
    assert.equal(hosts[label(0)].primary, true);
    assert.ok(hosts[label(0)].steps.some((s) => s.name === "migrate"), JSON.stringify(hosts[label(0)].steps));
    for (const i of [1, 2]) assert.ok(!hosts[label(i)].steps.some((s) => s.name === "migrate"), `host ${i + 1} migrated`);
    assert.equal(psql("SELECT count(*) FROM _prisma_migrations WHERE finished_at IS NOT NULL").stdout.trim(), "2");
    const answer = await getJson(`${fleet.lbUrl}/health`);
    assert.equal(answer.status, 200);
    assert.equal((answer.body as { release?: string }).release, artifacts.a.id);
  });

  it("the same artifact again changes nothing on any host", () => {
    const r = stack.up();
    assert.equal(r.status, 0, r.stdout + r.stderr);
    assert.ok(!activationRan(r.stdout), r.stdout);
    assert.doesNotMatch(r.stdout, /-stage (?:creat|updat|replac)/);
  });

  it("a new release with a migration, under load through the balancer: 0 failed, the migration ran exactly once", async () => {
    const b = artifacts.variant("b", (d) => {
      const dir = path.join(d, "prisma", "postgresql", "migrations", MIGRATION);
      mkdirSync(dir, { recursive: true });
      writeFileSync(path.join(dir, "migration.sql"), 'ALTER TABLE "Video" ADD COLUMN "fleetNote" TEXT;\n');
    });
    const { result: r, stats } = await underLoad(() => deploy(b));
    assert.equal(r.status, 0, r.stdout + r.stderr);
    served(stats, "release b on 3 hosts");
    assert.deepEqual(lives(), [b.id, b.id, b.id]);
    assert.equal(psql(`SELECT count(*) FROM _prisma_migrations WHERE migration_name = '${MIGRATION}'`).stdout.trim(), "1");
    const hosts = hostsOut();
    assert.deepEqual(fleet.hosts.map((_, i) => hosts[label(i)].steps.filter((s) => s.name === "migrate").length), [1, 0, 0]);
    assert.deepEqual(fleet.hosts.map((_, i) => hosts[label(i)].previousReleaseId), [artifacts.a.id, artifacts.a.id, artifacts.a.id]);
  });

  it("a release that fails preflight on one host only switches no host, 0 failed", async () => {
    const before = lives();
    // The release needs a file that hosts 1 and 2 have and host 3 lacks.
    for (const i of [0, 1]) onHost(i, "touch ~/fleet-marker");
    onHost(2, "rm -f ~/fleet-marker");
    const c = edit("c", (s) => `if (!require("fs").existsSync(require("os").homedir() + "/fleet-marker")) { console.error("no ~/fleet-marker"); process.exit(3); }\n${s}`);
    const { result: r, stats } = await underLoad(() => deploy(c));
    assert.notEqual(r.status, 0, "the up must fail");
    served(stats, "preflight refused on host 3");
    const text = r.stdout + r.stderr;
    assert.match(text, new RegExp(`release ${c.id} failed at step preflight on host ${fleet.hosts[2].host.replace(/\./g, "\\.")}:22`));
    assert.deepEqual(lives(), before, "a host switched");
    assert.doesNotMatch(text, /-publish (?:creat|updat|replac)/);
    // The next up, once host 3 has the file, converges.
    onHost(2, "touch ~/fleet-marker");
    const again = stack.up();
    assert.equal(again.status, 0, again.stdout + again.stderr);
    assert.deepEqual(lives(), [c.id, c.id, c.id]);
  });

  it("app:rollout 1 publishes host after host, each after the one before is healthy", () => {
    stack.setConfig("app:rollout", "1");
    const d = edit("d");
    const r = deploy(d);
    assert.equal(r.status, 0, r.stdout + r.stderr);
    assert.deepEqual(lives(), [d.id, d.id, d.id]);
    // The engine's lines: each host's publish is created before the next one starts.
    const lines = r.stdout.split("\n");
    const at = (i: number, what: "creating" | "created") =>
      lines.findIndex((l) => l.includes(`release-${fleet.hosts[i].host}-22-publish`) && new RegExp(`\\b${what}\\b`).test(l));
    for (const i of [0, 1]) {
      assert.ok(at(i, "created") >= 0 && at(i + 1, "creating") > at(i, "created"),
        `host ${i + 2} started publishing before host ${i + 1} was done:\n${lines.filter((l) => l.includes("-publish")).join("\n")}`);
    }
    assert.match(r.stdout, /publish batch 3 of 3/);
  });

  it("a host that fails after its switch reverts itself; later batches keep the previous release; the next up converges", async () => {
    const before = lives();
    // Healthy alone on a spare port (preflight), dead on the live port of a host with ~/fail-live.
    onHost(1, "touch ~/fail-live");
    const f = edit("f", (s) => `if (process.env.PORT === "${APP_PORT}" && require("fs").existsSync(require("os").homedir() + "/fail-live")) { console.error("fail-live"); process.exit(5); }\n${s}`);
    try {
      const { result: r, stats } = await underLoad(() => deploy(f));
      assert.notEqual(r.status, 0, "the up must fail");
      served(stats, "host 2 failing after its switch");
      const text = r.stdout + r.stderr;
      assert.match(text, new RegExp(`release ${f.id} failed at step \\w+ on host ${fleet.hosts[1].host.replace(/\./g, "\\.")}:22`));
      assert.match(text, /reverted: current -> /);
      assert.deepEqual(lives(), [f.id, before[1], before[2]], "host 1 runs the new release, host 2 reverted, host 3 never switched");
    } finally {
      onHost(1, "rm -f ~/fail-live");
    }
    const again = stack.up();
    assert.equal(again.status, 0, again.stdout + again.stderr);
    assert.deepEqual(lives(), [f.id, f.id, f.id]);
    stack.setConfig("app:rollout", "0");
  });

  it("a host whose sshd is down at stage time: no host switches, the up names it; the next up converges", async () => {
    const before = lives();
    const e = edit("e");
    assert.equal(run("bash", ["scripts/local-fleet.sh", "stop-sshd", "2"]).status, 0);
    let r;
    let stats: LoadStats;
    try {
      ({ result: r, stats } = await underLoad(() => deploy(e)));
    } finally {
      assert.equal(run("bash", ["scripts/local-fleet.sh", "start-sshd", "2"]).status, 0);
    }
    assert.notEqual(r.status, 0);
    served(stats, "host 2 unreachable at stage");
    assert.match(r.stdout + r.stderr, new RegExp(fleet.hosts[1].host.replace(/\./g, "\\.")));
    assert.deepEqual(lives(), before, "a host switched while host 2 was unreachable");
    const again = stack.up();
    assert.equal(again.status, 0, again.stdout + again.stderr);
    assert.deepEqual(lives(), [e.id, e.id, e.id]);
  });

  it("npm run rollback returns every host to the previous release under load, 0 failed", async () => {
    const target = String(stack.outputs().previousReleaseId);
    const rollback = () => run("bash", ["scripts/node.sh", "ops/rollback.ts", "--stack", stack.name], {
      env: { PULUMI_BACKEND_URL: `file://${stack.backend}`, PULUMI_CONFIG_PASSPHRASE: "e2e-test-passphrase" },
    });
    const { result: r, stats } = await underLoad(rollback);
    assert.equal(r.status, 0, r.stdout + r.stderr);
    served(stats, "rollback of the fleet");
    assert.deepEqual(lives(), [target, target, target]);
    const releases = run("bash", ["scripts/node.sh", "ops/releases.ts", "--stack", stack.name], {
      env: { PULUMI_BACKEND_URL: `file://${stack.backend}`, PULUMI_CONFIG_PASSPHRASE: "e2e-test-passphrase" },
    });
    assert.equal(releases.status, 0, releases.stderr);
    for (const i of [0, 1, 2]) assert.match(releases.stdout, new RegExp(`^host ${label(i).replace(/\./g, "\\.")}`, "m"));
    stack.setConfig("app:release", "");
  });

  it("pm2 kill on one host: the balancer keeps serving from the others", async () => {
    const { stats } = await underLoad(async () => {
      await new Promise((r) => setTimeout(r, 500));
      onHost(1, "pm2 kill >/dev/null 2>&1");
      await new Promise((r) => setTimeout(r, 3000));
    });
    served(stats, "host 2's PM2 killed");
    onHost(1, "pm2 resurrect >/dev/null 2>&1");
  });
});

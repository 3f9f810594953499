// Bad days, round two (issue 16), end to end on the local VPS with the load client running: a
// migrate command that is not Prisma's really runs (and its failure is refused), a release that
// dies seconds after it answers is refused in preflight, and an app that never sends PM2's 'ready'
// reloads without waiting listen_timeout per worker.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import * as path from "node:path";
import { after, before, describe, it } from "node:test";
import { Artifacts, LoadStats, sshRun, stackOnLocalVps, startLoad, TestStack, Vps } from "../../driver/local";

describe("bad days on the local VPS", { timeout: 15 * 60 * 1000 }, () => {
  let vps: Vps;
  let stack: TestStack;
  let root: string;
  let health: string;
  let artifacts: Artifacts;
  let live: () => Promise<string | undefined>;
  let remove = () => {};
  const served = (stats: LoadStats, what: string) => {
    console.log(`${what}: ${stats.ok} requests answered, ${stats.failed} failed`);
    assert.equal(stats.failed, 0, `${what}: ${JSON.stringify(stats)}`);
    assert.ok(stats.ok > 10, `${what}: ${JSON.stringify(stats)}`);
  };
  const edit = (name: string, change: (server: string) => string) =>
    artifacts.variant(name, (d) => {
      const file = path.join(d, "dist", "server.js");
      writeFileSync(file, change(readFileSync(file, "utf8")));
    });
  const underLoad = async <T>(fn: () => T): Promise<{ result: T; stats: LoadStats }> => {
    const load = await startLoad(health);
    try {
      const result = fn();
      return { result, stats: await load.stop() };
    } finally {
      await load.stop();
    }
  };
  const migrateRuns = () => Number(sshRun(vps, `wc -l < ${root}/shared/migrate-runs 2>/dev/null || echo 0`).stdout.trim());

  before(async () => {
    ({ vps, stack, root, health, artifacts, live, remove } = await stackOnLocalVps("e2e-badday"));
    stack.setConfig("app:healthSettle", "4");
    // A migrate command of the app's own (not Prisma's): it runs in the release with the app's env.
    stack.setConfig("app:migrate", `bash -c 'echo "$RELEASE_ID" >> ../../shared/migrate-runs'`);
    stack.setConfig("app:artifact", artifacts.a.file);
    const r = stack.up();
    assert.equal(r.status, 0, r.stdout + r.stderr);
  });

  after(() => remove());

  it("a migrate command that is not Prisma's runs for every new release, even with the same migration files", async () => {
    assert.equal(migrateRuns(), 1);
    const b = edit("b", (s) => `${s}\n// release b\n`);
    stack.setConfig("app:artifact", b.file);
    const { result: r, stats } = await underLoad(() => stack.up());
    assert.equal(r.status, 0, r.stdout + r.stderr);
    served(stats, "release b");
    assert.equal(migrateRuns(), 2, "the custom migrate command was skipped");
    assert.equal(await live(), b.id);
  });

  it("a failing migrate command is refused; the live release keeps serving", async () => {
    const before = await live();
    stack.setConfig("app:migrate", "bash -c 'echo migration broke >&2; exit 3'");
    const c = edit("c", (s) => `${s}\n// release c\n`);
    stack.setConfig("app:artifact", c.file);
    const { result: r, stats } = await underLoad(() => stack.up());
    assert.notEqual(r.status, 0);
    assert.match(r.stdout + r.stderr, /migration failed: bash -c 'echo migration broke >&2; exit 3'/);
    served(stats, "failed migration");
    assert.equal(await live(), before);
    stack.setConfig("app:migrate", "");
  });

  it("a release that dies 2 s after it answers is refused in preflight, with 0 failed requests", async () => {
    const before = await live();
    const dying = edit("dying", (s) => `setTimeout(() => process.exit(1), 2000);\n${s}`);
    stack.setConfig("app:artifact", dying.file);
    const { result: r, stats } = await underLoad(() => stack.up());
    const text = r.stdout + r.stderr;
    assert.notEqual(r.status, 0, text);
    assert.match(text, /the process exited \d+\.\ds after it answered healthy, within the 4s settle window \(app:healthSettle\)/);
    assert.match(text, new RegExp(`release ${dying.id} failed at step preflight`));
    served(stats, "dying release");
    assert.equal(await live(), before);
  });

  it("an app that never sends 'ready' reloads without waiting for it, with 0 failed requests", async () => {
    const readyless = edit("readyless", (s) => {
      assert.match(s, /process\.send\?\.\('ready'\)/, "examples/backend no longer sends ready this way");
      return s.replace(/process\.send\?\.\('ready'\);?/, "");
    });
    stack.setConfig("app:artifact", readyless.file);
    const { result: r, stats } = await underLoad(() => stack.up());
    assert.equal(r.status, 0, r.stdout + r.stderr);
    served(stats, "ready-less release");
    assert.equal(await live(), readyless.id);
    const steps = stack.outputs().releaseSteps as { name: string; seconds: number }[];
    const reload = steps.find((s) => s.name === "reload")?.seconds ?? NaN;
    console.log(`ready-less app, 2 workers: step reload ${reload}s`);
    // PM2 would wait listen_timeout (15 s) per worker for a 'ready' that never comes.
    assert.ok(reload < 15, `reload took ${reload}s: PM2 waited for 'ready'`);
    const log = sshRun(vps, `tail -n 60 ${root}/shared/logs/release.log`).stdout;
    assert.match(log, /ready: the app never sent 'ready' in preflight: the deploy's ready shim sends it for each worker as soon as it listens/);
  });

  it("an app with no signal handler of its own (it dies at once on PM2's SIGINT) reloads under load with 0 failed requests", async () => {
    // The app's own SIGINT/SIGTERM handlers are never registered: what most existing backends are.
    const noHandlers = (name: string) =>
      edit(name, (s) => `{ const on = process.on; process.on = function (ev, fn) { return ev === "SIGINT" || ev === "SIGTERM" ? process : on.call(process, ev, fn); }; }\n${s}\n// ${name}\n`);
    const bare = noHandlers("bare");
    stack.setConfig("app:artifact", bare.file);
    const r = stack.up();
    assert.equal(r.status, 0, r.stdout + r.stderr);
    // Its workers, stopped by the next reload: the workers' preload stops them gracefully.
    const next = noHandlers("bare2");
    stack.setConfig("app:artifact", next.file);
    const { result: r2, stats } = await underLoad(() => stack.up());
    assert.equal(r2.status, 0, r2.stdout + r2.stderr);
    served(stats, "reload of an app with no signal handler");
    assert.equal(await live(), next.id);
  });

  it("Ctrl-C in the middle of the release (also what a cancelled CI job sends first) converges: 0 failed, the next plain up records what the VPS serves", async () => {
    const e = edit("e", (s) => `${s}\n// release e\n`);
    stack.setConfig("app:artifact", e.file);
    const load = await startLoad(health);
    const running = stack.upAsync();
    const owner = `${root}/.deploy.lock.owner`;
    const t0 = Date.now();
    while (!sshRun(vps, `cat ${owner} 2>/dev/null`).stdout.includes(`release ${e.id}`)) {
      assert.ok(Date.now() - t0 < 120_000, "the release script never started");
      await new Promise((r) => setTimeout(r, 100));
    }
    // SIGINT to the CLI itself (scripts/pulumi.sh execs it), as a terminal's Ctrl-C sends it.
    spawnSync("pkill", ["-INT", "-f", `pulumi up -s ${stack.name} `]);
    const interrupted = await running;
    console.log(`interrupted up: exit ${interrupted.status}`);
    const again = stack.up();
    const stats = await load.stop();
    assert.equal(again.status, 0, again.stdout + again.stderr);
    served(stats, "interrupted up, then the next up");
    assert.equal(await live(), e.id);
    assert.equal(stack.outputs().releaseId, e.id);
    const p = stack.preview(["--expect-no-changes"]);
    assert.equal(p.status, 0, p.stdout + p.stderr);
  });

  it("an app that sends 'ready' is told so, and keeps wait_ready", async () => {
    const d = edit("d", (s) => `${s}\n// release d\n`);
    stack.setConfig("app:artifact", d.file);
    const r = stack.up();
    assert.equal(r.status, 0, r.stdout + r.stderr);
    const log = sshRun(vps, `tail -n 60 ${root}/shared/logs/release.log`).stdout;
    assert.match(log, /ready: the app sends 'ready' itself \(PM2 wait_ready\)/);
    const jlist = sshRun(vps, "pm2 jlist").stdout;
    const app = (JSON.parse(jlist) as { name: string; pm2_env: { wait_ready?: boolean; env?: Record<string, string> } }[]).find((p) => p.name === stack.name);
    assert.equal(app?.pm2_env.wait_ready, true);
    assert.equal(app?.pm2_env.env?.VPS_RELEASE_READY_SHIM, "0", "the shim stays out of an app that sends 'ready'");
  });
});

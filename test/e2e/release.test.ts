// The release pipeline end to end: real `pulumi up` of infra/ against the local VPS, with
// examples/backend packaged for real, and bad releases made from it (crash at start, health that
// never passes, a migration that fails). A load client runs through every switch.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { appendFileSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import * as path from "node:path";
import { after, before, describe, it } from "node:test";
import { Artifacts, freePort, getJson, localVps, projectRoot, run, startLoad, sshRun, TestStack, Vps } from "../../driver/local";

function prependToServer(dir: string, line: string): void {
  const file = path.join(dir, "dist", "server.js");
  writeFileSync(file, `${line}\n${readFileSync(file, "utf8")}`);
}

function findMigrationsDir(dir: string): string {
  const locks = execFileSync("find", [path.join(dir, "prisma"), "-name", "migration_lock.toml"], { encoding: "utf8" })
    .split("\n").filter((l) => l !== "");
  const lock = locks.find((l) => readFileSync(l, "utf8").includes("sqlite"));
  assert.ok(lock, "examples/backend has no prisma migrations folder");
  return path.dirname(lock);
}

describe("release pipeline on the local VPS", { timeout: 15 * 60 * 1000 }, () => {
  let vps: Vps;
  let stack: TestStack;
  let root: string;
  let appName: string;
  let port: number;
  let health: string;
  let artifacts: Artifacts;
  let a: { file: string; id: string };
  const variant = (name: string, edit: (dir: string) => void) => artifacts.variant(name, edit);

  const up = () => stack.up();
  const outputs = () => stack.outputs();
  const live = async () => (await getJson(health)).body as { release?: string; status?: string };

  before(async () => {
    vps = localVps();
    artifacts = new Artifacts();
    a = artifacts.a;
    stack = new TestStack(projectRoot, "e2e-release");
    root = `${vps.root}-${stack.name}`;
    appName = stack.name;
    port = await freePort();
    health = `http://127.0.0.1:${port}/health`;
    stack.useVps(vps, port, { root, app: appName });
    stack.setConfig("app:healthTimeout", "20");
    stack.setConfig("app:artifact", a.file);
    stack.setConfig("app:env", JSON.stringify({ GREETING: "it's \"quoted\" $(not run) `nor this`\nsecond line" }), { secret: true });
  });

  after(() => {
    sshRun(vps, `pm2 delete ${appName} >/dev/null 2>&1; pm2 save --force >/dev/null 2>&1; rm -rf ${root}`);
    stack?.remove();
    artifacts.remove();
  });

  it("first deploy: the release goes live and the stack records it", async () => {
    const r = up();
    assert.equal(r.status, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /step preflight/);
    const out = outputs();
    assert.equal(out.releaseId, a.id);
    assert.equal(out.previousReleaseId, "");
    assert.equal(out.releaseDir, `${root}/releases/${a.id}`);
    assert.equal(out.healthUrl, health);
    assert.equal((await live()).release, a.id);
    const ls = sshRun(vps, `readlink ${root}/current; stat -c '%a %U' ${root}/shared/.env; cat ${root}/releases/${a.id}/REVISION; readlink ${root}/releases/${a.id}/.env`);
    assert.equal(ls.stdout, `releases/${a.id}\n600 ${vps.user}\n${a.id}\n../../shared/.env\n`);
  });

  it("the same artifact again changes nothing and runs no remote command", () => {
    const p = stack.preview(["--expect-no-changes"]);
    assert.equal(p.status, 0, p.stdout + p.stderr);
    const r = up();
    assert.equal(r.status, 0, r.stdout + r.stderr);
    assert.doesNotMatch(r.stdout, /step lock|written:/);
    assert.match(r.stdout, /\d+ unchanged/);
  });

  let b = { file: "", id: "" };
  it("a new release with the same dependencies, under load: zero failed requests", async () => {
    b = variant("b", (d) => appendFileSync(path.join(d, "dist", "server.js"), "\n// release b\n"));
    stack.setConfig("app:artifact", b.file);
    const load = await startLoad(health);
    const r = up();
    const stats = await load.stop();
    assert.equal(r.status, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /reused its node_modules/);
    assert.equal(stats.failed, 0, JSON.stringify(stats));
    assert.ok(stats.ok > 20, JSON.stringify(stats));
    assert.ok((stats.releases[b.id] ?? 0) > 0, JSON.stringify(stats));
    assert.equal((await live()).release, b.id);
    assert.equal(outputs().previousReleaseId, a.id);
  });

  it("a preview names the release going live, the pending migration and the .env keys that change, never values", () => {
    const next = variant("preview-next", (d) => {
      appendFileSync(path.join(d, "dist", "server.js"), "\n// preview next\n");
      const m = path.join(findMigrationsDir(d), "20990102000000_add_note");
      mkdirSync(m);
      writeFileSync(path.join(m, "migration.sql"), "ALTER TABLE \"Video\" ADD COLUMN \"note\" TEXT;\n");
    });
    stack.setConfig("app:artifact", next.file);
    const env = { GREETING: "it's \"quoted\" $(not run) `nor this`\nsecond line", JWT_AUDIENCE: "preview-only value" };
    stack.setConfig("app:env", JSON.stringify(env), { secret: true });
    const p = stack.preview();
    stack.setConfig("app:artifact", b.file);
    stack.setConfig("app:env", JSON.stringify({ GREETING: env.GREETING }), { secret: true });
    const text = p.stdout + p.stderr;
    assert.equal(p.status, 0, text);
    assert.match(text, new RegExp(`release: ${b.id} -> ${next.id} \\(a new artifact; pulumi up\\)`));
    assert.match(text, /migrations: 1 pending, run before the switch after a backup: 20990102000000_add_note/);
    assert.match(text, /\.env: keys added: JWT_AUDIENCE/);
    assert.match(text, /ecosystem\.config\.js: unchanged/);
    assert.ok(!text.includes("preview-only value") && !text.includes("nor this"), "an app:env value in the preview");
    const back = stack.preview(["--expect-no-changes"]);
    assert.equal(back.status, 0, back.stdout + back.stderr);
    assert.match(back.stdout + back.stderr, new RegExp(`release: ${b.id} stays live`));
  });

  const refused: [string, string, (d: string) => void][] = [
    ["crashes at start", "preflight", (d) => prependToServer(d, 'throw new Error("crash at start (test)");')],
    ["never gets healthy", "preflight", (d) => prependToServer(d, 'process.env.HEALTH_FAIL = "1";')],
    ["has a failing migration", "migrate", (d) => {
      const m = path.join(findMigrationsDir(d), "20990101000000_broken");
      mkdirSync(m);
      writeFileSync(path.join(m, "migration.sql"), "THIS IS NOT SQL;\n");
    }],
  ];
  for (const [what, step, edit] of refused) {
    it(`a release that ${what} is refused at ${step}; the previous one keeps serving`, async () => {
      const bad = variant(`bad-${step}-${what.replace(/\W+/g, "-")}`, (d) => {
        appendFileSync(path.join(d, "dist", "server.js"), "\n// release b\n");
        edit(d);
      });
      stack.setConfig("app:artifact", bad.file);
      const load = await startLoad(health);
      const r = up();
      const stats = await load.stop();
      assert.notEqual(r.status, 0, "the up should fail");
      const text = r.stdout + r.stderr;
      assert.match(text, new RegExp(`release ${bad.id} failed at step ${step}`));
      assert.equal(stats.failed, 0, JSON.stringify(stats));
      assert.equal((await live()).release, b.id);
      assert.equal(outputs().releaseId, b.id);
    });
  }

  let c = { file: "", id: "" };
  it("the next good release deploys after the failures", async () => {
    c = variant("c", (d) => appendFileSync(path.join(d, "dist", "server.js"), "\n// release c\n"));
    stack.setConfig("app:artifact", c.file);
    const r = up();
    assert.equal(r.status, 0, r.stdout + r.stderr);
    assert.equal((await live()).release, c.id);
    assert.equal(outputs().previousReleaseId, b.id);
  });

  it("the app sees app:env values exactly, and RELEASE_ID", async () => {
    // What PM2 hands one live worker: in cluster mode the app's env travels in pm2_env (JSON).
    const r = sshRun(vps, `pid=$(pm2 jlist | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{const p=JSON.parse(s).find(a=>a.name===process.argv[1]&&a.pid);console.log(p?p.pid:"")})' ${appName}); ` +
      `node -e 'const e=Object.fromEntries(require("fs").readFileSync("/proc/"+process.argv[1]+"/environ","utf8").split("\\0").filter(Boolean).map(l=>[l.slice(0,l.indexOf("=")),l.slice(l.indexOf("=")+1)]));const p=e.pm2_env?JSON.parse(e.pm2_env):{};process.stdout.write(JSON.stringify(Object.assign({},e,p,p.env||{})))' "$pid"`);
    assert.equal(r.status, 0, r.stderr);
    const env = JSON.parse(r.stdout) as Record<string, string>;
    assert.equal(env.RELEASE_ID, c.id);
    assert.equal(env.NODE_ENV, "production");
    assert.equal(env.PORT, String(port));
    assert.equal(env.GREETING, "it's \"quoted\" $(not run) `nor this`\nsecond line");
    assert.equal((await live()).release, c.id);
  });

  it("pruning keeps app:keepReleases and never the live or the previous release", async () => {
    stack.setConfig("app:keepReleases", "2");
    const crash = variant("prune-crash", (d) => prependToServer(d, 'throw new Error("crash");'));
    stack.setConfig("app:artifact", crash.file);
    assert.notEqual(up().status, 0);
    const d = variant("d", (dir) => appendFileSync(path.join(dir, "dist", "server.js"), "\n// release d\n"));
    stack.setConfig("app:artifact", d.file);
    const r = up();
    assert.equal(r.status, 0, r.stdout + r.stderr);
    const kept = sshRun(vps, `ls ${root}/releases`).stdout.trim().split("\n").sort();
    assert.ok(kept.includes(d.id) && kept.includes(c.id), `kept: ${kept.join(" ")}`);
    assert.ok(!kept.includes(a.id) && !kept.includes(b.id), `kept: ${kept.join(" ")}`);
    c = d;
  });

  it("a second deploy waits for the VPS lock, then fails clearly", async () => {
    stack.setConfig("app:lockTimeout", "2");
    const e = variant("e", (d) => appendFileSync(path.join(d, "dist", "server.js"), "\n// release e\n"));
    stack.setConfig("app:artifact", e.file);
    // Another process holds the lock (in its own process group, so the whole holder can be stopped).
    sshRun(vps, `setsid bash -c 'echo $$ >${root}/holder.pid; exec flock ${root}/.deploy.lock sleep 60' </dev/null >/dev/null 2>&1 & sleep 0.5`);
    const r = up();
    sshRun(vps, `kill -- -$(cat ${root}/holder.pid)`);
    assert.notEqual(r.status, 0);
    assert.match(r.stdout + r.stderr, /another deploy holds .*\.deploy\.lock \(waited 2s; holder: not a deploy of this tool\)/);
    assert.equal((await live()).release, c.id);
    const again = up();
    assert.equal(again.status, 0, again.stdout + again.stderr);
    assert.equal((await live()).release, e.id);
  });

  it("state and output hold no plaintext private key or app:env value", () => {
    const exported = stack.pulumi(["stack", "export", "-s", stack.name]);
    assert.equal(exported.status, 0, exported.stderr);
    const keyBody = vps.privateKey.split("\n")[1];
    assert.ok(!exported.stdout.includes(keyBody), "private key in plaintext state");
    assert.ok(!exported.stdout.includes("nor this"), "app:env value in plaintext state");
    const again = stack.preview(["--diff"]);
    assert.ok(!(again.stdout + again.stderr).includes("nor this"), "app:env value in preview output");
  });

  const rollback = (...args: string[]) => run("bash", ["scripts/node.sh", "ops/rollback.ts", "--stack", stack.name, ...args], {
    env: { PULUMI_BACKEND_URL: `file://${stack.backend}`, PULUMI_CONFIG_PASSPHRASE: "e2e-test-passphrase" },
  });

  it("npm run rollback, under load: the previous release answers, zero failed requests, and it stays pinned", async () => {
    const before = outputs();
    const load = await startLoad(health);
    const r = rollback();
    const stats = await load.stop();
    assert.equal(r.status, 0, r.stdout + r.stderr);
    assert.equal(stats.failed, 0, JSON.stringify(stats));
    assert.equal((await live()).release, before.previousReleaseId);
    assert.equal(outputs().releaseId, before.previousReleaseId);
    assert.match(r.stdout, /The stack now pins app:release=/);
    assert.equal((outputs().provenance as { source: string }).source, "rollback");
    // The next ordinary up keeps the rolled-back release.
    const p = stack.preview(["--expect-no-changes"]);
    assert.equal(p.status, 0, p.stdout + p.stderr);
  });

  it("npm run rollback to an id that is not kept is refused, listing the kept ones", async () => {
    const r = rollback("--to", a.id);
    assert.equal(r.status, 2, r.stdout + r.stderr);
    assert.match(r.stderr, new RegExp(`error: release ${a.id} is not kept on the VPS of ${stack.name}; kept: [0-9a-f]{12}`));
    assert.notEqual((await live()).release, a.id);
  });

  it("pm2 kill then pm2 resurrect (a reboot) brings back the live release", async () => {
    const id = outputs().releaseId;
    sshRun(vps, "pm2 kill >/dev/null 2>&1");
    await assert.rejects(getJson(health));
    const r = sshRun(vps, "pm2 resurrect >/dev/null 2>&1");
    assert.equal(r.status, 0, r.stderr);
    let body: { release?: string } | undefined;
    for (let i = 0; i < 50 && body === undefined; i++) {
      body = await live().catch(() => undefined);
      if (body === undefined) await new Promise((res) => setTimeout(res, 200));
    }
    assert.equal(body?.release, id);
  });
});

// Faults on the local VPS, each with a load client running: sshd stopped during the upload, the SSH
// connection cut during the release script, ROOT's disk full during extract, the PM2 daemon killed
// during the reload, two `up`s of one stack at once, two stacks on one root. For each: what the user
// sees, that the live release keeps serving, that a half-done release is never activated, and that
// the next `up` recovers. Then hostile input refused before the VPS changes, and the secrets check.
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { appendFileSync, existsSync, readdirSync, readFileSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import * as path from "node:path";
import { after, before, describe, it } from "node:test";
import { Artifacts, freePort, getJson, LoadStats, localVps, projectRoot, startLoad, sshRun, TestStack, Vps } from "../../driver/local";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function waitFor(what: string, pred: () => boolean, timeoutMs = 60_000): Promise<void> {
  const t0 = Date.now();
  while (!pred()) {
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(25);
  }
}

const read = (file: string) => (existsSync(file) ? readFileSync(file, "utf8") : "");
/** The release.log lines of one release's run (the log is appended to by every run). */
const runLog = (log: string, id: string) => {
  const text = read(log);
  const at = text.lastIndexOf(`release ${id} (`);
  return at < 0 ? "" : text.slice(at);
};

/** Kills every SSH session of the deploy user (the connection drops; sshd itself keeps running). */
function cutSessions(vps: Vps): void {
  spawnSync("pkill", ["-KILL", "-f", `^sshd: ${vps.user}`]);
}

function stopSshd(vps: Vps): void {
  execFileSync("kill", [readFileSync(path.join(vps.stateDir, "sshd.pid"), "utf8").trim()]);
}

/** Pulumi's state lock files in a file backend. */
function lockFiles(backend: string): string[] {
  const dir = path.join(backend, ".pulumi", "locks");
  const out: string[] = [];
  const walk = (d: string) => {
    for (const e of existsSync(d) ? readdirSync(d, { withFileTypes: true }) : []) {
      if (e.isDirectory()) walk(path.join(d, e.name));
      else if (e.name.endsWith(".json")) out.push(path.join(d, e.name));
    }
  };
  walk(dir);
  return out;
}

const isRoot = process.getuid?.() === 0;

describe("faults: the live release keeps serving and the next up recovers", { timeout: 20 * 60 * 1000 }, () => {
  let vps: Vps;
  let artifacts: Artifacts;
  let stack: TestStack;
  let root: string;
  let health: string;
  let log: string;
  const printed: string[] = [];
  const SECRET_VALUE = "fault-suite-secret-$(not run)-`nor this`";

  const up = () => {
    const r = stack.up();
    printed.push(r.stdout, r.stderr);
    return r;
  };
  const upAsync = async (s = stack) => {
    const r = await s.upAsync();
    printed.push(r.stdout, r.stderr);
    return r;
  };
  const liveRelease = async () => ((await getJson(health)).body as { release?: string }).release;
  const outputs = () => stack.outputs() as Record<string, string>;
  const assertServedThrough = (stats: LoadStats, what: string) => {
    assert.equal(stats.failed, 0, `${what}: ${JSON.stringify(stats)}`);
    assert.ok(stats.ok > 10, `${what}: ${JSON.stringify(stats)}`);
  };
  const kept = () => sshRun(vps, `ls -A ${root}/releases`).stdout.trim().split("\n").filter(Boolean);
  const bump = (name: string) => artifacts.variant(name, (d) => appendFileSync(path.join(d, "dist", "server.js"), `\n// ${name}\n`));

  before(async () => {
    vps = localVps();
    artifacts = new Artifacts();
    stack = new TestStack(projectRoot, "e2e-faults");
    root = `${vps.root}-${stack.name}`;
    log = path.join(root, "shared", "logs", "release.log");
    const port = await freePort();
    health = `http://127.0.0.1:${port}/health`;
    stack.useVps(vps, port, { root });
    stack.setConfig("app:healthTimeout", "20");
    stack.setConfig("app:artifact", artifacts.a.file);
    stack.setConfig("app:env", JSON.stringify({ FAULT_SECRET: SECRET_VALUE }), { secret: true });
    const r = up();
    assert.equal(r.status, 0, r.stdout + r.stderr);
  });

  after(() => {
    localVps(); // sshd back, whatever a test did
    sshRun(vps, `pm2 delete ${stack.name} >/dev/null 2>&1; pm2 save --force >/dev/null 2>&1; rm -rf ${root}`);
    stack?.remove();
    artifacts?.remove();
  });

  it("sshd stopped during the upload: the up fails, nothing half-uploaded is activated, the next up uploads again", async () => {
    // 48 MB that does not compress, so the upload takes a moment.
    const big = artifacts.variant("big", (d) => writeFileSync(path.join(d, "dist", "blob.bin"), randomBytes(48_000_000)));
    const sha = execFileSync("sha256sum", [big.file], { encoding: "utf8" }).split(" ")[0];
    stack.setConfig("app:artifact", big.file);
    const before = await liveRelease();
    const load = await startLoad(health);
    const running = upAsync();
    // Both providers upload to this temporary name (the official one writes straight to remotePath).
    const incoming = path.join(root, ".incoming", `${sha}.upload`);
    const full = statSync(big.file).size;
    await waitFor("the upload to start", () => existsSync(incoming) && statSync(incoming).size > 0 && statSync(incoming).size < full);
    stopSshd(vps);
    cutSessions(vps);
    const r = await running;
    const stats = await load.stop();
    const text = r.stdout + r.stderr;
    assert.notEqual(r.status, 0, text);
    assert.match(text, /upload|sftp|ssh|connect|EOF/i);
    assertServedThrough(stats, "sshd stopped");
    assert.equal(await liveRelease(), before);
    assert.ok(!existsSync(path.join(root, "releases", big.id)), "a release folder for the cut upload");
    assert.equal(outputs().releaseId, before);

    localVps(); // sshd back on the same port
    const again = up();
    assert.equal(again.status, 0, again.stdout + again.stderr);
    assert.equal(await liveRelease(), big.id);
  });

  it("the SSH connection cut during the release script: the release finishes on the VPS, the next up records it", async () => {
    const before = outputs().releaseId;
    const next = bump("cut");
    stack.setConfig("app:artifact", next.file);
    const load = await startLoad(health);
    const running = upAsync();
    // Cut when the release is past extract and install, in preflight.
    await waitFor("the release to reach preflight", () => /step link/.test(runLog(log, next.id)));
    cutSessions(vps);
    const r = await running;
    const text = r.stdout + r.stderr;
    assert.notEqual(r.status, 0, text);
    // The script carries on without its client (tee -p, HUP ignored): it finishes and records it.
    await waitFor("the cut release to finish on the VPS", () => /RESULT |failed at step/.test(runLog(log, next.id)));
    const stats = await load.stop();
    assertServedThrough(stats, "SSH cut");
    assert.match(runLog(log, next.id), /RESULT \{"releaseId":"/);
    assert.equal(await liveRelease(), next.id);
    assert.equal(outputs().releaseId, before, "the failed up recorded the new release");

    const again = up();
    assert.equal(again.status, 0, again.stdout + again.stderr);
    assert.equal(outputs().releaseId, next.id);
    assert.equal(outputs().previousReleaseId, before);
    assert.equal(await liveRelease(), next.id);
  });

  it("the PM2 daemon killed during the reload: the app comes back, the VPS and the stack agree, other apps are restored", async () => {
    const next = bump("pm2-kill");
    stack.setConfig("app:artifact", next.file);
    const pm2Home = path.join(path.dirname(vps.root), "..", ".pm2");
    const appsBefore = sshRun(vps, "pm2 jlist").stdout;
    const others = (JSON.parse(appsBefore) as { name: string }[]).map((p) => p.name).filter((n) => n !== stack.name);
    const load = await startLoad(health);
    const running = upAsync();
    await waitFor("the reload to start", () => /step switch/.test(runLog(log, next.id)));
    execFileSync("kill", ["-KILL", readFileSync(path.join(pm2Home, "pm2.pid"), "utf8").trim()]);
    const r = await running;
    const stats = await load.stop();
    const text = r.stdout + r.stderr;
    // Either outcome is consistent: the release completed on a new daemon, or it reverted.
    const live = await liveRelease();
    assert.equal(live, outputs().releaseId, text);
    assert.equal(live, r.status === 0 ? next.id : outputs().releaseId);
    assert.match(runLog(log, next.id), /the PM2 daemon was started anew during this release/);
    const appsAfter = (JSON.parse(sshRun(vps, "pm2 jlist").stdout) as { name: string }[]).map((p) => p.name);
    for (const name of others) assert.ok(appsAfter.includes(name), `app ${name} was not brought back (have ${appsAfter.join(", ")})`);
    // Killing PM2 stops every worker: requests fail until the new daemon serves; count, do not hide.
    console.log(`pm2 killed mid-reload: ${stats.failed} failed of ${stats.ok + stats.failed} requests; up ${r.status === 0 ? "succeeded" : "failed"}`);

    const again = up();
    assert.equal(again.status, 0, again.stdout + again.stderr);
    assert.equal(await liveRelease(), next.id);
  });

  it("two ups of one stack at once: the state lock refuses the second, the first deploys", async () => {
    const next = bump("state-lock");
    stack.setConfig("app:artifact", next.file);
    const load = await startLoad(health);
    // The second starts once the first holds Pulumi's state lock (a lock file in the backend):
    // started together, each would see the other's lock and both would be refused.
    const first = upAsync();
    await waitFor("the first up's state lock", () => lockFiles(stack.backend).length > 0, 120_000);
    const [r1, r2] = await Promise.all([first, upAsync()]);
    const stats = await load.stop();
    const results = [r1, r2];
    const ok = results.filter((r) => r.status === 0);
    const refused = results.filter((r) => r.status !== 0);
    assert.equal(ok.length, 1, results.map((r) => r.stdout + r.stderr).join("\n----\n"));
    assert.match(refused[0].stdout + refused[0].stderr, /locked/i);
    assertServedThrough(stats, "state lock");
    assert.equal(await liveRelease(), next.id);
    assert.equal(outputs().releaseId, next.id);
  });

  it("two stacks deploying to one root at once: the other stack is refused before it writes anything", async () => {
    const other = new TestStack(projectRoot, "e2e-intruder");
    try {
      other.useVps(vps, await freePort(), { root, app: stack.name });
      other.setConfig("app:env", JSON.stringify({ INTRUDER: "x" }), { secret: true });
      const theirs = bump("intruder");
      other.setConfig("app:artifact", theirs.file);
      const ours = bump("owner");
      stack.setConfig("app:artifact", ours.file);
      const envBefore = read(path.join(root, "shared", ".env"));
      const load = await startLoad(health);
      const [mine, intruder] = await Promise.all([upAsync(), upAsync(other)]);
      const stats = await load.stop();
      assert.equal(mine.status, 0, mine.stdout + mine.stderr);
      assert.notEqual(intruder.status, 0);
      assert.match(intruder.stdout + intruder.stderr,
        new RegExp(`is the deploy root of stack vps-release/${stack.name}, not of vps-release/${other.name}; two stacks must not share one vps:root`));
      assertServedThrough(stats, "two stacks");
      assert.equal(read(path.join(root, "shared", ".env")), envBefore);
      assert.ok(!kept().includes(theirs.id), "the other stack's release was extracted");
      assert.equal(await liveRelease(), ours.id);
    } finally {
      other.remove();
    }
  });

  it("hostile input is refused before anything changes on the VPS", async () => {
    const listing = () => sshRun(vps, `cd ${root} && find . -path ./shared/logs -prune -o -printf '%p %s %T@\\n' | sort`).stdout;
    const before = listing();
    const cases: [string, () => void, RegExp][] = [
      ["a symlink out of the release", () => {
        // Packed with tar: the project's own packer refuses to write such an archive.
        const dir = path.join(artifacts.work, "symlink-out");
        execFileSync("cp", ["-a", artifacts.extracted, dir]);
        symlinkSync("/etc/passwd", path.join(dir, "dist", "passwd"));
        const file = `${dir}.tar.gz`;
        execFileSync("tar", ["-czf", file, "-C", dir, "."]);
        stack.setConfig("app:artifact", file);
      }, /app:artifact: [\s\S]* is refused: [\s\S]*dist\/passwd[\s\S]*outside/],
      ["not gzip", () => {
        const file = path.join(artifacts.work, "not-gzip.tar.gz");
        writeFileSync(file, "just text");
        stack.setConfig("app:artifact", file);
      }, /app:artifact: [\s\S]* is refused: [\s\S]*gzip/],
      ["an app:env key that is not a variable name", () => {
        stack.setConfig("app:artifact", artifacts.a.file);
        stack.setConfig("app:env", JSON.stringify({ "BAD-NAME": "x", FAULT_SECRET: SECRET_VALUE }), { secret: true });
      }, /app:env: "BAD-NAME" is not a valid variable name/],
    ];
    const live = outputs().releaseId;
    for (const [what, arrange, expected] of cases) {
      arrange();
      const r = up();
      assert.notEqual(r.status, 0, what);
      assert.match(r.stdout + r.stderr, expected, what);
    }
    stack.setConfig("app:env", JSON.stringify({ FAULT_SECRET: SECRET_VALUE }), { secret: true });
    assert.equal(listing(), before, "the VPS changed");
    assert.equal(await liveRelease(), live);
  });

  it("secrets: no plaintext key or app:env value in state or in any line printed; .env is 0600 and the deploy user's", () => {
    const exported = stack.pulumi(["stack", "export", "-s", stack.name]);
    assert.equal(exported.status, 0, exported.stderr);
    const keyBody = vps.privateKey.split("\n")[1];
    for (const [where, text] of [["stack export", exported.stdout], ["pulumi up output", printed.join("\n")]]) {
      assert.ok(!text.includes(keyBody), `private key in ${where}`);
      assert.ok(!text.includes("fault-suite-secret"), `app:env value in ${where}`);
    }
    const st = sshRun(vps, `stat -c '%a %U' ${root}/shared/.env`).stdout.trim();
    assert.equal(st, `600 ${vps.user}`);
  });
});

describe("fault: ROOT's disk full during extract", { timeout: 10 * 60 * 1000, skip: isRoot ? false : "needs root to mount a small tmpfs" }, () => {
  let vps: Vps;
  let artifacts: Artifacts;
  let stack: TestStack;
  let root: string;
  let health: string;

  before(async () => {
    vps = localVps();
    artifacts = new Artifacts();
    stack = new TestStack(projectRoot, "e2e-diskfull");
    root = `${vps.root}-${stack.name}`;
    sshRun(vps, `mkdir -p ${root}`);
    const uid = execFileSync("id", ["-u", vps.user], { encoding: "utf8" }).trim();
    const gid = execFileSync("id", ["-g", vps.user], { encoding: "utf8" }).trim();
    execFileSync("mount", ["-t", "tmpfs", "-o", `size=1g,mode=0755,uid=${uid},gid=${gid}`, "tmpfs", root]);
    const port = await freePort();
    health = `http://127.0.0.1:${port}/health`;
    stack.useVps(vps, port, { root });
    stack.setConfig("app:instances", "1");
    stack.setConfig("app:healthTimeout", "20");
    stack.setConfig("app:artifact", artifacts.a.file);
    const r = stack.up();
    assert.equal(r.status, 0, r.stdout + r.stderr);
  });

  after(() => {
    sshRun(vps, `pm2 delete ${stack.name} >/dev/null 2>&1; pm2 save --force >/dev/null 2>&1`);
    spawnSync("umount", [root]);
    sshRun(vps, `rm -rf ${root}`);
    stack?.remove();
    artifacts?.remove();
  });

  it("the extract fails with the space left and the fix named; the live release serves; after freeing space the next up deploys", async () => {
    const used = Number(execFileSync("df", ["--output=used", "-B1", root], { encoding: "utf8" }).split("\n")[1].trim());
    // 24 MB left; the new release unpacks 64 MB of zeros (a small upload).
    execFileSync("mount", ["-o", `remount,size=${used + 24 * 1024 * 1024}`, root]);
    const big = artifacts.variant("zeros", (d) => writeFileSync(path.join(d, "dist", "zeros.bin"), Buffer.alloc(64 * 1024 * 1024)));
    stack.setConfig("app:artifact", big.file);
    const live = artifacts.a.id;
    const load = await startLoad(health);
    const r = stack.up();
    const stats = await load.stop();
    const text = r.stdout + r.stderr;
    assert.notEqual(r.status, 0, text);
    assert.match(text, /extract failed; nothing was activated\. Space left on .*free space on the VPS \(df -h .*\), then run pulumi up again/);
    assert.equal(stats.failed, 0, JSON.stringify(stats));
    assert.equal(((await getJson(health)).body as { release?: string }).release, live);
    const releases = sshRun(vps, `ls -A ${root}/releases`).stdout.trim().split("\n");
    assert.deepEqual(releases, [live], "a half-extracted release was left behind");

    execFileSync("mount", ["-o", "remount,size=1g", root]);
    const again = stack.up();
    assert.equal(again.status, 0, again.stdout + again.stderr);
    assert.equal(((await getJson(health)).body as { release?: string }).release, big.id);
  });
});

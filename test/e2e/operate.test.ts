// Day-2 commands end to end on the local VPS (issue 17): status with drift, logs (--follow streams
// and stops), exec (the app's environment, the exit status passed through).
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { writeFileSync } from "node:fs";
import { createServer } from "node:http";
import { AddressInfo } from "node:net";
import * as path from "node:path";
import { after, before, describe, it } from "node:test";
import { Artifacts, run, sshRun, stackOnLocalVps, TestStack, Vps } from "../../driver/local";

describe("status, logs and exec on the local VPS", { timeout: 10 * 60 * 1000 }, () => {
  let vps: Vps;
  let stack: TestStack;
  let root: string;
  let artifacts: Artifacts;
  let remove = () => {};
  let env: Record<string, string>;
  const ops = (script: string, ...args: string[]) => run("bash", ["scripts/node.sh", `ops/${script}.ts`, "--stack", stack.name, ...args], { env });

  before(async () => {
    ({ vps, stack, root, artifacts, remove } = await stackOnLocalVps("e2e-operate"));
    env = { PULUMI_BACKEND_URL: `file://${stack.backend}`, PULUMI_CONFIG_PASSPHRASE: "e2e-test-passphrase" };
    stack.setConfig("app:env", JSON.stringify({ OPERATE_TOKEN: "tok-$(not-expanded)" }), { secret: true });
    stack.setConfig("app:artifact", artifacts.a.file);
    const r = stack.up();
    assert.equal(r.status, 0, r.stdout + r.stderr);
  });
  after(() => remove());

  it("status: healthy and in step, then drift after a hand-made switch, non-zero, with the command that converges", () => {
    const ok = ops("status");
    assert.equal(ok.status, 0, ok.stdout + ok.stderr);
    assert.match(ok.stdout, new RegExp(`release {3}live ${artifacts.a.id}, recorded ${artifacts.a.id}\\n`));
    assert.match(ok.stdout, /health {4}ok in \d+ ms: 200 /);
    assert.match(ok.stdout, /^ {12}\d+ +online /m);
    const json = JSON.parse(ops("status", "--json").stdout) as { hosts: { live: string; processes: unknown[] }[] };
    assert.equal(json.hosts[0].live, artifacts.a.id);
    assert.equal(json.hosts[0].processes.length, 2);

    // By hand, as someone on the VPS would: another folder made live without the tool.
    sshRun(vps, `cp -a ${root}/releases/${artifacts.a.id} ${root}/releases/0000handmade && ln -sfn releases/0000handmade ${root}/current`);
    try {
      const drift = ops("status");
      assert.equal(drift.status, 1, drift.stdout + drift.stderr);
      assert.match(drift.stdout, /DRIFT/);
      const converge = new RegExp(`! drift: .* runs 0000handmade but the stack records ${artifacts.a.id} .*: npm run pulumi -- up -s ${stack.name} --replace '([^']+)'$`, "m").exec(drift.stdout);
      assert.ok(converge, drift.stdout);
      // The command it names converges: the recorded release is live again.
      const up = stack.pulumi(["up", "-s", stack.name, "--yes", "--skip-preview", "--non-interactive", "--replace", converge[1]]);
      assert.equal(up.status, 0, up.stdout + up.stderr);
      assert.equal(sshRun(vps, `basename "$(readlink ${root}/current)"`).stdout.trim(), artifacts.a.id);
    } finally {
      sshRun(vps, `rm -rf ${root}/releases/0000handmade`);
    }
    const after = ops("status");
    assert.equal(after.status, 0, after.stdout + after.stderr);
  });

  it("exec: runs in the live release with the app's environment and passes the exit status through", () => {
    const r = ops("exec", "--", "sh", "-c", 'echo "$OPERATE_TOKEN $RELEASE_ID $NODE_ENV $(basename "$PWD")"; exit 7');
    assert.equal(r.status, 7, r.stderr);
    assert.equal(r.stdout.trim(), `tok-$(not-expanded) ${artifacts.a.id} production ${artifacts.a.id}`);
  });

  it("logs: the last lines, the release log, and --follow streams new lines until stopped", async () => {
    const rel = ops("logs", "--release", "--lines", "200");
    assert.equal(rel.status, 0, rel.stderr);
    assert.match(rel.stdout, new RegExp(`release ${artifacts.a.id} \\(deploy, pulumi up\\)`));
    const child = spawn("bash", ["scripts/node.sh", "ops/logs.ts", "--stack", stack.name, "--follow", "--lines", "0"],
      { env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    child.stdout.setEncoding("utf8").on("data", (d: string) => (out += d));
    try {
      // The command needs a few seconds to open the stack: a line a second until one shows up.
      const deadline = Date.now() + 45_000;
      for (let n = 1; !out.includes("follow-marker-") && Date.now() < deadline; n++) {
        sshRun(vps, `echo follow-marker-${n} >> ${root}/shared/logs/out.log`);
        await new Promise((r) => setTimeout(r, 1000));
      }
      assert.match(out, /follow-marker-\d+/);
    } finally {
      child.kill("SIGINT");
    }
    const code = await new Promise<number | null>((r) => {
      const stuck = setTimeout(() => {
        child.kill("SIGKILL");
        r(null);
      }, 10_000);
      child.on("exit", (c, sig) => {
        clearTimeout(stuck);
        r(c ?? (sig ? 128 : null));
      });
    });
    assert.notEqual(code, null, "logs --follow did not stop within 10 s of Ctrl-C");
  });

  it("notify: one message for a good deploy and one for a refused one, from the VPS, with no secret in them", async () => {
    const got: { url: string; body: Record<string, unknown> }[] = [];
    const hook = createServer((q, res) => {
      let body = "";
      q.on("data", (d) => (body += d)).on("end", () => {
        got.push({ url: q.url ?? "", body: JSON.parse(body) as Record<string, unknown> });
        res.end("ok");
      });
    });
    await new Promise<void>((r) => hook.listen(0, "127.0.0.1", r));
    try {
      const url = `http://127.0.0.1:${(hook.address() as AddressInfo).port}/hook/notify-secret-token`;
      stack.setConfig("app:notify", url, { secret: true });
      const good = artifacts.variant("notify-good", (d) => writeFileSync(path.join(d, "dist", "extra.txt"), "x"));
      stack.setConfig("app:artifact", good.file);
      const r1 = await stack.upAsync();
      assert.equal(r1.status, 0, r1.stdout + r1.stderr);
      const crash = artifacts.variant("notify-crash", (d) => writeFileSync(path.join(d, "dist", "server.js"), "console.error('boom at start'); process.exit(4);\n"));
      stack.setConfig("app:artifact", crash.file);
      const r2 = await stack.upAsync();
      assert.notEqual(r2.status, 0);
      assert.equal(got.length, 2, JSON.stringify(got));
      assert.equal(got[0].url, "/hook/notify-secret-token");
      assert.deepEqual([got[0].body.result, got[0].body.releaseId, got[0].body.previousReleaseId], ["ok", good.id, artifacts.a.id]);
      assert.deepEqual([got[1].body.result, got[1].body.failedStep, got[1].body.releaseId], ["failed:preflight", "preflight", crash.id]);
      assert.match(String(got[1].body.logTail), /boom at start/);
      assert.match(String(got[1].body.text), new RegExp(`failed at step preflight; ${good.id} keeps serving`));
      const everything = JSON.stringify(got) + r1.stdout + r1.stderr + r2.stdout + r2.stderr + stack.pulumi(["stack", "export", "-s", stack.name]).stdout +
        sshRun(vps, `cat ${root}/shared/logs/release.log`).stdout;
      assert.ok(!everything.includes("tok-$(not-expanded)"), "an app:env value was sent or logged");
      assert.ok(!(r1.stdout + r2.stdout + sshRun(vps, `cat ${root}/shared/logs/*.log`).stdout + stack.pulumi(["stack", "export", "-s", stack.name]).stdout)
        .includes("notify-secret-token"), "the webhook URL is in a log or in plaintext state");
      assert.equal(sshRun(vps, `stat -c %a ${root}/shared/.notify-url`).stdout.trim(), "600");
    } finally {
      hook.close();
      stack.setConfig("app:artifact", artifacts.a.file);
    }
  });

  it("doctor: a missing pm2 startup and a missing tool, each with its fix; exit 1", () => {
    // The local VPS has no init system of its own: pm2 startup was never run there.
    const bin = "$HOME/.vps-node/node_modules/.bin";
    sshRun(vps, `mv ${bin}/pm2 ${bin}/pm2.hidden`);
    let r;
    try {
      r = ops("doctor");
    } finally {
      sshRun(vps, `mv ${bin}/pm2.hidden ${bin}/pm2`);
    }
    assert.equal(r.status, 1, r.stdout + r.stderr);
    assert.match(r.stdout, /^host 127\.0\.0\.1:\d+: \d+ problem\(s\)$/m);
    assert.match(r.stdout, new RegExp(`! pm2 is not on PATH for ${vps.user} in non-interactive SSH sessions .*npm install -g pm2`));
    assert.match(r.stdout, new RegExp(`! PM2 does not come back after a reboot: pm2 startup was not run for ${vps.user}\\. Once, as root: env PATH=`));
  });

  it("pulumi destroy stops and removes the app from PM2, gives up the root, and keeps releases and data", () => {
    // Last: it takes this stack's app down (after() removes what is left).
    const d = stack.pulumi(["destroy", "-s", stack.name, "--yes", "--skip-preview", "--non-interactive"]);
    assert.equal(d.status, 0, d.stdout + d.stderr);
    assert.match(d.stdout, /pm2: stopped and removed /);
    assert.match(d.stdout, new RegExp(`to remove them for good, on the VPS: rm -rf ${root.replace(/[.]/g, "\\.")}`));
    const jlist = sshRun(vps, "pm2 jlist").stdout;
    assert.ok(!jlist.includes(`"name":"${stack.name}"`), "the app still runs under PM2");
    const left = sshRun(vps, `ls ${root}/releases; test -d ${root}/shared/data && echo data; test -e ${root}/.stack || echo unclaimed`).stdout;
    assert.match(left, new RegExp(`^${artifacts.a.id}$`, "m"), "the releases were removed");
    assert.match(left, /^data\nunclaimed\n$/m);
  });
});


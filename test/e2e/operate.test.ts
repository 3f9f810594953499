// Day-2 commands end to end on the local VPS (issue 17): status with drift, logs (--follow streams
// and stops), exec (the app's environment, the exit status passed through).
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
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
      assert.match(drift.stdout, new RegExp(`! drift: .* runs 0000handmade but the stack records ${artifacts.a.id} .*npm run rollback -- --stack ${stack.name} --to ${artifacts.a.id}`));
    } finally {
      sshRun(vps, `ln -sfn releases/${artifacts.a.id} ${root}/current && rm -rf ${root}/releases/0000handmade`);
    }
    assert.equal(ops("status").status, 0);
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

  it("pulumi destroy stops and removes the app from PM2, gives up the root, and keeps releases and data", () => {
    // Last: it takes this stack's app down (after() removes what is left).
    const d = stack.pulumi(["destroy", "-s", stack.name, "--yes", "--skip-preview", "--non-interactive"]);
    assert.equal(d.status, 0, d.stdout + d.stderr);
    assert.match(d.stdout, /pm2: stopped and removed /);
    assert.match(d.stdout, new RegExp(`to remove them for good, on the VPS: rm -rf ${root.replace(/[.]/g, "\\.")}`));
    const jlist = sshRun(vps, "pm2 jlist").stdout;
    assert.ok(!jlist.includes(`"name":"${stack.name}"`), "the app still runs under PM2");
    const left = sshRun(vps, `ls ${root}/releases; test -d ${root}/shared/data && echo data; test -e ${root}/.stack || echo unclaimed`).stdout;
    assert.match(left, new RegExp(`${artifacts.a.id}\\ndata\\nunclaimed`));
  });
});


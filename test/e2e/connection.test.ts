// What the official command provider makes visible, end to end on the local VPS (issue 13): the
// first preview of a new stack with a generated secret, a preview after an app:env change, a
// connection change onto a wiped VPS, and an upload that went missing between two ups.
import assert from "node:assert/strict";
import { appendFileSync } from "node:fs";
import * as path from "node:path";
import { after, before, describe, it } from "node:test";
import { Artifacts, sshRun, stackOnLocalVps, TestStack, Vps } from "../../driver/local";

describe("official provider behaviours on the local VPS", { timeout: 15 * 60 * 1000 }, () => {
  let vps: Vps;
  let stack: TestStack;
  let root: string;
  let artifacts: Artifacts;
  let live: () => Promise<string | undefined>;
  let remove = () => {};
  const ok = (r: { status: number | null; stdout: string; stderr: string }, what: string) =>
    assert.equal(r.status, 0, `${what}:\n${r.stdout}\n${r.stderr}`);

  before(async () => {
    ({ vps, stack, root, artifacts, live, remove } = await stackOnLocalVps("e2e-conn"));
    stack.setConfig("app:artifact", artifacts.a.file);
    stack.setConfig("app:env", JSON.stringify({ GREETING: "hello" }), { secret: true });
    stack.setConfig("app:generatedSecrets", JSON.stringify(["JWT_SECRET"]), { plaintext: true });
  });

  after(() => remove());

  it("previews a new stack whose .env holds a secret not generated yet, then deploys it", async () => {
    const p = stack.preview();
    ok(p, "first preview");
    assert.doesNotMatch(p.stdout + p.stderr, /malformed secret/);
    ok(stack.up(), "first up");
    assert.equal(await live(), artifacts.a.id);
    ok(stack.preview(["--expect-no-changes"]), "preview after the up");
  });

  it("previews and applies an app:env change: the live release is re-activated with the new value", async () => {
    stack.setConfig("app:env", JSON.stringify({ GREETING: "hello again" }), { secret: true });
    const p = stack.preview();
    ok(p, "preview after an app:env change");
    assert.doesNotMatch(p.stdout + p.stderr, /hello again/, "a value in the preview");
    ok(stack.up(), "up after the app:env change");
    const env = sshRun(vps, `pm2 jlist | node -e 'const l=JSON.parse(require("fs").readFileSync(0,"utf8")); const a=l.find((p)=>p.name===process.argv[1]); console.log((a.pm2_env.env || {}).GREETING || a.pm2_env.GREETING)' ${stack.name}`);
    assert.equal(env.stdout.trim(), "hello again", env.stderr);
  });

  it("a connection change onto a wiped VPS uploads and deploys again", async () => {
    sshRun(vps, `pm2 delete ${stack.name} >/dev/null 2>&1; pm2 save --force >/dev/null 2>&1; rm -rf ${root}`);
    // The same machine under another name: a new connection, as a rebuilt server would be.
    stack.setConfig("vps:host", "localhost");
    const r = stack.up();
    ok(r, "up after the connection change");
    assert.equal(await live(), artifacts.a.id);
    assert.equal(sshRun(vps, `cat ${root}/releases/${artifacts.a.id}/REVISION`).stdout.trim(), artifacts.a.id);
    ok(stack.preview(["--expect-no-changes"]), "preview after the converging up");
  });

  it("an upload that went missing after a failed up is sent again by the next up", async () => {
    const b = artifacts.variant("b", (d) => appendFileSync(path.join(d, "dist", "server.js"), "\n// release b\n"));
    stack.setConfig("app:artifact", b.file);
    stack.setConfig("app:lockTimeout", "2");
    // Another process holds the VPS lock: the upload lands, the activation fails at the lock.
    sshRun(vps, `setsid bash -c 'echo $$ >${root}/holder.pid; exec flock ${root}/.deploy.lock sleep 60' </dev/null >/dev/null 2>&1 & sleep 0.5`);
    const failed = stack.up();
    sshRun(vps, `kill -- -$(cat ${root}/holder.pid)`);
    assert.notEqual(failed.status, 0, "the up should fail at the lock");
    assert.equal(await live(), artifacts.a.id);
    // The upload is gone (a cleaned folder, a wiped disk): the state still records it.
    sshRun(vps, `rm -f ${root}/.incoming/*`);
    const again = stack.up();
    ok(again, "the next up");
    assert.equal(await live(), b.id);
    ok(stack.preview(["--expect-no-changes"]), "preview after the healing up");
  });
});

// The toolchain end to end: a real `pulumi up` runs a remote command on the local VPS over SSH,
// with the VPS's host key pinned; a host that shows another key is refused.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import * as path from "node:path";
import { after, before, describe, it } from "node:test";
import { localVps, TestStack, Vps } from "../../driver/local";

const program = path.join(__dirname, "fixtures", "remote-echo");

describe("toolchain: pulumi up over SSH", () => {
  let vps: Vps;
  const stacks: TestStack[] = [];
  const newStack = (prefix: string) => {
    const s = new TestStack(program, prefix);
    stacks.push(s);
    return s;
  };
  before(() => {
    vps = localVps();
  });
  after(() => stacks.forEach((s) => s.remove()));

  it("runs a remote command as the deploy user with the pinned host key", () => {
    const stack = newStack("e2e-echo");
    stack.setVps(vps);
    const up = stack.up();
    assert.equal(up.status, 0, up.stdout + up.stderr);
    const out = stack.outputs();
    assert.match(String(out.stdout), new RegExp(`^whoami=${vps.user} node=v\\d+\\.`));
    // The same inputs again: nothing to do.
    const again = stack.preview(["--expect-no-changes"]);
    assert.equal(again.status, 0, again.stdout + again.stderr);
  });

  it("refuses a host that shows another key", () => {
    const stack = newStack("e2e-echo-wrong-key");
    const other = execFileSync("bash", ["-c",
      "d=$(mktemp -d) && ssh-keygen -q -t ed25519 -N '' -f $d/k && cut -d' ' -f1,2 $d/k.pub && rm -r $d"],
    { encoding: "utf8" }).trim();
    stack.setVps(vps, { hostKey: other });
    const up = stack.up();
    assert.notEqual(up.status, 0);
    const text = up.stdout + up.stderr;
    // The official provider's text (x/crypto/ssh): `ssh: handshake failed: ssh: host key mismatch`,
    // without fingerprints; the README says how to compare them (ssh-keyscan | ssh-keygen -lf -).
    assert.match(text, /host key mismatch/);
    // The private key never appears in what the user sees.
    const keyBody = readFileSync(vps.keyFile, "utf8").split("\n")[1];
    assert.ok(!text.includes(keyBody), "private key leaked into the output");
  });
});

// infra/live.ts against the real engine and a file state backend: the program reads its own stack's
// outputs while that stack's update saves its checkpoint. A file backend rewrites the checkpoint's
// sidecar (.json.attrs) in place, so a bare read can fail with "failed to load checkpoint: EOF";
// as a StackReference that failed a whole `up` in CI. The retried read must never fail. The ops
// commands (status during an up) read the same state through the CLI, and retry the same way.
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import * as path from "node:path";
import { after, describe, it } from "node:test";
import { projectRoot, TestStack } from "../../driver/local";
import { CHECKPOINT_BEING_SAVED } from "../../infra/live";
import { configOf, openStack, outputsOf } from "../../ops/stacks";

const program = path.join(__dirname, "fixtures", "self-read");

interface Stats {
  reads: number;
  failed: number;
  errors: string[];
  retries: number;
  bare: number;
  bareFailed: number;
  saves: number;
}

describe("reading the stack's own outputs during its update", () => {
  const stacks: TestStack[] = [];
  after(() => stacks.forEach((s) => s.remove()));

  it("never fails while the checkpoint is being saved, on a first up and on the next", (t) => {
    const stack = new TestStack(program, "e2e-self-read");
    stacks.push(stack);
    for (const run of ["1", "2"]) {
      stack.setConfig("self-read:run", run);
      const up = stack.up();
      assert.equal(up.status, 0, up.stdout + up.stderr);
      const stats = stack.outputs().stats as Stats;
      t.diagnostic(`up ${run}: ${stats.reads} retried reads, ${stats.retries} retries, ${stats.failed} failed; ` +
        `bare reads beside them: ${stats.bareFailed} of ${stats.bare} failed; ${stats.saves} checkpoint saves`);
      assert.ok(stats.reads > 20 && stats.saves > 20, `the reads overlapped the saves: ${JSON.stringify(stats)}`);
      assert.deepEqual(stats.errors, [], "a retried read failed");
      assert.equal(stats.failed, 0);
    }
  });

  it("the ops commands' reads through the CLI are tried again while the checkpoint's sidecar is mid-save", async () => {
    const stack = new TestStack(projectRoot, "e2e-self-read-ops");
    stacks.push(stack);
    stack.setConfig("app:name", "mid-save");
    Object.assign(process.env, { PULUMI_BACKEND_URL: `file://${stack.backend}`, PULUMI_CONFIG_PASSPHRASE: "e2e-test-passphrase" });
    const attrs = path.join(stack.backend, ".pulumi", "stacks", "vps-release", `${stack.name}.json.attrs`);
    const saved = readFileSync(attrs);
    // The sidecar as a save leaves it between its create and its write, for 0.7 s.
    const midSave = async <T>(read: () => Promise<T>): Promise<T> => {
      writeFileSync(attrs, "");
      const restore = setTimeout(() => writeFileSync(attrs, saved), 700);
      try {
        return await read();
      } finally {
        clearTimeout(restore);
        writeFileSync(attrs, saved);
      }
    };
    writeFileSync(attrs, "");
    for (const args of [["stack", "output", "--json"], ["config", "--json"], ["stack", "ls", "--json"]]) {
      const bare = stack.pulumi([...args, "-s", stack.name]);
      assert.notEqual(bare.status, 0, `${args.join(" ")} read a sidecar caught mid-save`);
      assert.match(bare.stderr, CHECKPOINT_BEING_SAVED, `the text the retry is keyed on, from pulumi ${args.join(" ")}`);
    }
    writeFileSync(attrs, saved);
    const opened = await midSave(() => openStack(stack.name));
    assert.deepEqual(await midSave(() => outputsOf(opened)), {});
    assert.equal((await midSave(() => configOf(opened)))["app:name"]?.value, "mid-save");
  });
});

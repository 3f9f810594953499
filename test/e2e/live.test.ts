// infra/live.ts against the real engine and a file state backend: the program reads its own stack's
// outputs while that stack's update saves its checkpoint. A file backend rewrites the checkpoint's
// sidecar (.json.attrs) in place, so a bare read can fail with "failed to load checkpoint: EOF";
// as a StackReference that failed a whole `up` in CI. The retried read must never fail.
import assert from "node:assert/strict";
import * as path from "node:path";
import { after, describe, it } from "node:test";
import { TestStack } from "../../driver/local";

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
});

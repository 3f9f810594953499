import assert from "node:assert/strict";
import { test } from "node:test";

test("stackTraces: importing it drops a prepareStackTrace hook (ts-node's source maps), so stacks are V8's own", async () => {
  const errors: { prepareStackTrace?: unknown } = Error;
  const before = errors.prepareStackTrace;
  errors.prepareStackTrace = () => "mapped";
  try {
    assert.equal(new Error("x").stack, "mapped");
    await import("./stackTraces");
    assert.equal(errors.prepareStackTrace, undefined);
    assert.match(String(new Error("x").stack), /^Error: x\n\s+at /);
  } finally {
    if (before === undefined) delete errors.prepareStackTrace;
    else errors.prepareStackTrace = before;
  }
});

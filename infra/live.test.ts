import assert from "node:assert/strict";
import { before, describe, it } from "node:test";
import * as pulumi from "@pulumi/pulumi";
import { CHECKPOINT_BEING_SAVED, Invoke, liveStack, READ_ATTEMPTS, readingState, readRecorded, recordedFrom } from "./live";

const secret = (value: unknown) => ({ [pulumi.runtime.specialSigKey]: pulumi.runtime.specialSecretSig, value });
const EOF = "failed to load checkpoint: EOF";

/** An invoke that fails `failures` times with `message`, then answers `answer`; records its calls. */
function flaky(failures: number, answer: Record<string, unknown>, message = EOF) {
  const calls: { token: string; args: Record<string, unknown> }[] = [];
  const invoke: Invoke = async (token, args) => {
    calls.push({ token, args });
    if (calls.length <= failures) throw new Error(`invocation of ${token} returned an error: ${message}`);
    return answer;
  };
  return { invoke, calls };
}

function valueOf<T>(o: pulumi.Output<T>): Promise<T> {
  return new Promise((resolve) => o.apply((v) => {
    resolve(v);
    return v;
  }));
}

describe("reading what the stack recorded", () => {
  it("reads through the engine's readStackOutputs, retrying a checkpoint caught mid-save", async () => {
    const { invoke, calls } = flaky(2, { outputs: { releaseId: "aaaaaaaaaaaa" }, secretOutputNames: [] });
    const pauses: number[] = [];
    const r = await readRecorded("organization/p/s", invoke, async (ms) => {
      pauses.push(ms);
    });
    assert.deepEqual(r.values, { releaseId: "aaaaaaaaaaaa" });
    assert.deepEqual(calls.map((c) => c.token), Array(3).fill("pulumi:pulumi:readStackOutputs"));
    assert.deepEqual(calls[0].args, { name: "organization/p/s" });
    assert.deepEqual(pauses, [100, 200]);
  });

  it("gives up after its tries on a save that never ends, at once on any other error, naming the stack, the cause and what to do", async () => {
    for (const [message, tries, paused] of [[EOF, READ_ATTEMPTS, 3100], ["blob (key \".pulumi/stacks/p/s.json\") (code=NotFound)", 1, 0]] as const) {
      const { invoke, calls } = flaky(Infinity, {}, message);
      const pauses: number[] = [];
      await assert.rejects(readRecorded("organization/p/s", invoke, async (ms) => {
        pauses.push(ms);
      }), (e: Error) => {
        assert.ok(e instanceof pulumi.RunError, "a RunError: shown without a stack trace");
        assert.equal(e.message, `could not read what stack organization/p/s recorded last time: invocation of pulumi:pulumi:readStackOutputs returned an error: ${message}. ` +
          "Run pulumi again; if it fails the same way, check that its state backend (PULUMI_BACKEND_URL) is readable");
        return true;
      });
      assert.equal(calls.length, tries, message);
      assert.equal(pauses.reduce((a, b) => a + b, 0), paused, message);
    }
  });

  it("takes the secret wrappers off, nested ones too, and keeps which outputs were secret", () => {
    const r = recordedFrom({
      outputs: {
        envHash: secret("h"),
        hosts: { "10.0.0.1:22": { releaseId: "a", steps: [secret("s")] } },
        envKeys: ["A", "B"],
        releaseId: "a",
      },
      secretOutputNames: ["envHash", "hosts"],
    });
    assert.deepEqual(r.values, { envHash: "h", hosts: { "10.0.0.1:22": { releaseId: "a", steps: ["s"] } }, envKeys: ["A", "B"], releaseId: "a" });
    assert.deepEqual(r.secret, ["envHash", "hosts"]);
    // An engine that marks the value but not the name: still secret.
    assert.deepEqual(recordedFrom({ outputs: { envHash: secret("h") } }).secret, ["envHash"]);
  });

  it("reads a new stack (no outputs, no answer) as empty", () => {
    assert.deepEqual(recordedFrom({ outputs: {}, secretOutputNames: [] }), { values: {}, secret: [] });
    assert.deepEqual(recordedFrom(undefined), { values: {}, secret: [] });
  });
});

describe("a read that lands in a checkpoint save", () => {
  const noPause = async () => undefined;
  const failing = (messages: string[], answer = "read") => {
    let calls = 0;
    return { read: async () => (calls < messages.length ? Promise.reject(new Error(messages[calls++])) : (calls++, answer)), calls: () => calls };
  };

  it("is told by the texts the engine and the CLI fail with, and nothing else", () => {
    for (const text of [
      "invocation of pulumi:pulumi:readStackOutputs returned an error: failed to load checkpoint: EOF",
      "code: 255\n stdout: \n stderr: error: failed to load checkpoint: unexpected EOF\n",
      "code: 255\n stdout: \n stderr: error: EOF\n",
    ]) assert.match(text, CHECKPOINT_BEING_SAVED);
    for (const text of [
      "error: incorrect passphrase",
      "error: no stack named 'prod' found",
      "error: failed to load checkpoint: unexpected end of JSON input",
      "error: EOF while reading the artifact",
    ]) assert.doesNotMatch(text, CHECKPOINT_BEING_SAVED);
  });

  it("is tried again while it fails so, and any other error is thrown at once", async () => {
    const twice = failing(["stderr: error: EOF", "failed to load checkpoint: EOF"]);
    assert.equal(await readingState(twice.read, noPause), "read");
    assert.equal(twice.calls(), 3);
    const wrong = failing(["error: incorrect passphrase"]);
    await assert.rejects(readingState(wrong.read, noPause), /incorrect passphrase/);
    assert.equal(wrong.calls(), 1);
    const stuck = failing(Array(10).fill("failed to load checkpoint: EOF"));
    await assert.rejects(readingState(stuck.read, noPause), /failed to load checkpoint: EOF/);
    assert.equal(stuck.calls(), READ_ATTEMPTS);
  });
});

describe("liveStack under Pulumi mocks", () => {
  before(async () => {
    await pulumi.runtime.setMocks({ newResource: (a) => ({ id: a.name, state: a.inputs }), call: () => ({}) }, "p", "s", false, "organization");
  });

  it("reads once per run, names this stack, and keeps secret outputs secret", async () => {
    const { invoke, calls } = flaky(1, { outputs: { releaseId: "a", envHash: secret("h") }, secretOutputNames: ["envHash"] });
    const live = liveStack(invoke);
    const id = live.getOutput("releaseId");
    const hash = live.getOutput("envHash");
    assert.equal(await valueOf(id), "a");
    assert.equal(await valueOf(hash), "h");
    assert.equal(await valueOf(live.getOutput("missing")), undefined);
    assert.equal(await pulumi.isSecret(id), false);
    assert.equal(await pulumi.isSecret(hash), true);
    assert.equal(calls.length, 2, "one failed read, one good: shared by every getOutput");
    assert.deepEqual(calls[0].args, { name: "organization/p/s" });
  });
});

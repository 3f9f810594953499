// The remote protocol's parser, on the two sources both command providers fill the same way: a
// command's stdout, and the error text of a failed command (`...: running "CMD":\n<output>`).
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { onlyAppLayerUploaded, parseReleaseOutput, parseReleaseResult, stepSeconds } from "./protocol";
import { RELEASE_COMMAND } from "./scripts/release";

const ok = [
  "release 0123456789ab (deploy, pulumi up) by stack p/s at 2026-12-01T10:00:00Z",
  "step lock         0.01s",
  "step verify       0.20s",
  "healthy after 0.51s: http://127.0.0.1:41234/health {\"status\":\"ok\"}",
  "step preflight    1.70s",
  'RESULT {"releaseId":"0123456789ab","previousReleaseId":"","artifactSha256":"ab","activatedAt":"t","migrations":[],' +
    '"steps":[{"name":"lock","seconds":0.01},{"name":"verify","seconds":0.2},{"name":"preflight","seconds":1.7}]}',
].join("\n");

describe("remote protocol", () => {
  it("reads a successful run's stdout: steps in order, health, RESULT with its steps", () => {
    const out = parseReleaseOutput(ok);
    assert.deepEqual(out.steps.map((s) => s.name), ["lock", "verify", "preflight"]);
    assert.equal(out.healthy[0].url, "http://127.0.0.1:41234/health");
    assert.deepEqual(out.result?.steps, out.steps);
    assert.equal(parseReleaseResult(ok)?.releaseId, "0123456789ab");
    assert.deepEqual(stepSeconds(out.steps), { lock: 0.01, verify: 0.2, preflight: 1.7 });
  });

  it("reads a failed run from a provider's error text, without the quoted command", () => {
    const error = [
      `    error: Process exited with status 1: running ${JSON.stringify(RELEASE_COMMAND)}:`,
      "    step lock         0.01s",
      "    error: release 0123456789ab did not become healthy when started alone on port 41234; nothing live was touched",
      "    release 0123456789ab failed at step preflight (exit 1)",
    ].join("\n");
    const out = parseReleaseOutput(error);
    assert.deepEqual(out.failure, { releaseId: "0123456789ab", step: "preflight" });
    assert.deepEqual(out.steps.map((s) => s.name), ["lock"]);
    assert.deepEqual(out.errors, [
      "error: Process exited with status 1",
      "error: release 0123456789ab did not become healthy when started alone on port 41234; nothing live was touched",
    ]);
    assert.equal(out.result, undefined);
  });

  it("counts a line once when a CLI prints it live and again in full", () => {
    const live = " ~  command:remote:Command release-activate updating (3s); healthy after 0.51s: http://127.0.0.1:41234/health {\"sta";
    const out = parseReleaseOutput(`${live}\n${ok}\n${ok}`);
    assert.equal(out.healthy.length, 1);
    assert.equal(out.healthy[0].body, "{\"status\":\"ok\"}");
    assert.equal(out.steps.length, 3);
  });

  it("reads the steps from RESULT when no step line is there", () => {
    const only = ok.split("\n").filter((l) => l.startsWith("RESULT ")).join("\n");
    assert.deepEqual(parseReleaseOutput(only).steps.map((s) => s.name), ["lock", "verify", "preflight"]);
  });

  it("tells a release that came as its app layer, as a line, a status line or a diagnostic", () => {
    const line = "install: only the app layer was uploaded; node_modules hard-linked from release aaaa11112222, the artifact's own tree (digest checked)";
    assert.ok(onlyAppLayerUploaded(line));
    assert.ok(onlyAppLayerUploaded(`   ++ command:remote:Command release-activate creating replacement (1s) [diff: ~stdin]; ${line}`));
    assert.ok(onlyAppLayerUploaded(`step verify 0.03s\n      ${line}\n`));
    assert.ok(!onlyAppLayerUploaded("install: the artifact brings node_modules"));
    assert.ok(!onlyAppLayerUploaded("error: only the app layer of release aaaa11112222 was uploaded, and no kept release has its node_modules"));
  });
});

import assert from "node:assert/strict";
import { test } from "node:test";
import { parseCapTasks, parseStepLines, sumSteps } from "./steps";

test("parseStepLines counts only the Diagnostics summary of a pulumi up", () => {
  const out = [
    "    step lock         0.01s", "    step install     13.30s",
    "Diagnostics:", "  command:remote:Command (release):", "    step lock         0.01s", "    step install     13.33s",
    "    step reload       3.31s",
  ].join("\n");
  assert.deepEqual(parseStepLines(out), { lock: 0.01, install: 13.33, reload: 3.31 });
});

test("parseStepLines reads the seed's lines and sums repeated steps", () => {
  assert.deepEqual(parseStepLines("step install     16.43s\nadded 150 packages\nstep install 1.00s\nstep health 10.45s\n"), { install: 17.43, health: 10.45 });
});

test("parseCapTasks sums each task's commands and drops the deploy: namespace", () => {
  const out = [
    "00:00 git:check", "      01 git ls-remote file:///tmp/r.git HEAD", "    ✔ 01 vpsdeploy@127.0.0.1 0.101s",
    "00:02 app:install", "      01 npm ci --omit=dev", "      01 added 150 packages in 23s", "    ✔ 01 vpsdeploy@127.0.0.1 23.443s",
    "00:31 deploy:symlink:release", "    ✔ 01 vpsdeploy@127.0.0.1 0.049s", "    ✔ 02 vpsdeploy@127.0.0.1 0.056s",
  ].join("\n");
  assert.deepEqual(parseCapTasks(out), { "git:check": 0.1, "app:install": 23.44, "symlink:release": 0.11 });
});

test("sumSteps", () => {
  assert.equal(sumSteps({ a: 1.111, b: 2.222 }), 3.33);
  assert.equal(sumSteps({}), 0);
});

// The project's own shell scripts: each parses and passes shellcheck.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readdirSync } from "node:fs";
import * as path from "node:path";
import { describe, it } from "node:test";

const root = path.resolve(__dirname, "..");
const scripts = [
  ...readdirSync(path.join(root, "scripts")).filter((f) => f.endsWith(".sh")).map((f) => `scripts/${f}`),
  ".ci/run",
];

describe("project shell scripts", () => {
  for (const file of scripts) {
    it(`${file} passes bash -n and shellcheck`, () => {
      const syntax = spawnSync("bash", ["-n", file], { cwd: root, encoding: "utf8" });
      assert.equal(syntax.status, 0, syntax.stderr);
      const lint = spawnSync("shellcheck", ["-x", file], { cwd: root, encoding: "utf8" });
      assert.equal(lint.status, 0, lint.stdout + lint.stderr);
    });
  }
});

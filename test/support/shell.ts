// Checks a generated script the way the style guide asks: bash -n, then shellcheck.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";

export function assertValidBash(text: string, label: string): void {
  const syntax = spawnSync("bash", ["-n"], { input: text, encoding: "utf8" });
  assert.equal(syntax.status, 0, `${label}: bash -n: ${syntax.stderr}`);
  const lint = spawnSync("shellcheck", ["--shell=bash", "-"], { input: text, encoding: "utf8" });
  assert.equal(lint.status, 0, `${label}: shellcheck:\n${lint.stdout}${lint.stderr}`);
}

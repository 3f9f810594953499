import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { describe, it } from "node:test";
import { assignments, quote, script } from "./shell";

describe("quote", () => {
  it("leaves plain words alone", () => {
    assert.equal(quote("/home/deploy/apps/api"), "/home/deploy/apps/api");
    assert.equal(quote(3000), "3000");
  });
  it("single-quotes everything else", () => {
    assert.equal(quote(""), "''");
    assert.equal(quote("a b"), "'a b'");
    assert.equal(quote("it's"), `'it'\\''s'`);
    assert.equal(quote("$(rm -rf /)"), "'$(rm -rf /)'");
  });
  it("round-trips hostile values through bash", () => {
    for (const v of ["it's", "$(id)", "`id`", "a\nb", "\\", "'\"'", "*", "-n", "~root", "a;b|c&d"]) {
      const r = spawnSync("bash", ["-c", `printf %s ${quote(v)}`], { encoding: "utf8" });
      assert.equal(r.stdout, v);
    }
  });
});

describe("assignments and script", () => {
  it("quotes values and refuses bad names", () => {
    assert.equal(assignments({ A: "x y", B: 2 }), "A='x y'\nB=2");
    assert.throws(() => assignments({ "a-b": "x" }), /not a shell variable name/);
  });
  it("starts with strict mode and ends with a newline", () => {
    assert.equal(script("echo hi"), "#!/usr/bin/env bash\n# shellcheck disable=SC2016\nset -euo pipefail\necho hi\n");
  });
});

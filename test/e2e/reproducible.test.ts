// The same commit packs the same bytes in any folder (issue 16): examples/backend copied into two
// folders of different paths and depths, each packaged for real (npm ci, prisma generate, tsc).
import assert from "node:assert/strict";
import { cpSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { after, describe, it } from "node:test";
import { projectRoot } from "../../driver/local";
import { packageApp } from "../../scripts/package";

describe("path-independent artifacts", { timeout: 10 * 60 * 1000 }, () => {
  const work = mkdtempSync(path.join(tmpdir(), "repro-"));
  after(() => rmSync(work, { recursive: true, force: true }));

  it("examples/backend packed in two folders gives one sha256", () => {
    const src = path.join(projectRoot, "examples", "backend");
    const skip = new Set(["node_modules", "dist", "generated"]);
    const copy = (to: string) => {
      mkdirSync(path.dirname(to), { recursive: true });
      cpSync(src, to, { recursive: true, filter: (p) => !skip.has(path.basename(p)) && !/\.db(-journal)?$/.test(p) });
      return packageApp({ appDir: to, out: `${to}.tar.gz` });
    };
    const one = copy(path.join(work, "a", "backend"));
    const two = copy(path.join(work, "some", "much", "deeper", "checkout", "backend"));
    assert.equal(one.sha256, two.sha256, `${one.releaseId} in one folder, ${two.releaseId} in the other`);
  });
});

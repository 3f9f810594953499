// A small file snapshot: the first run (or UPDATE_SNAPSHOTS=1) writes it, later runs compare.
import assert from "node:assert/strict";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import * as path from "node:path";

export function matchSnapshot(dir: string, name: string, actual: string): void {
  const file = path.join(dir, "__snapshots__", `${name}.snap`);
  if (process.env.UPDATE_SNAPSHOTS === "1" || !existsSync(file)) {
    mkdirSync(path.dirname(file), { recursive: true });
    writeFileSync(file, actual);
    return;
  }
  assert.equal(actual, readFileSync(file, "utf8"), `snapshot ${name} differs (UPDATE_SNAPSHOTS=1 npm test -- --unit to accept)`);
}

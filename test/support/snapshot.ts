// A small file snapshot: UPDATE_SNAPSHOTS=1 writes it, every other run compares; a missing one fails.
import assert from "node:assert/strict";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import * as path from "node:path";

export function matchSnapshot(dir: string, name: string, actual: string): void {
  const file = path.join(dir, "__snapshots__", `${name}.snap`);
  if (process.env.UPDATE_SNAPSHOTS === "1") {
    mkdirSync(path.dirname(file), { recursive: true });
    writeFileSync(file, actual);
    return;
  }
  assert.ok(existsSync(file), `snapshot ${name} is missing: ${file} (UPDATE_SNAPSHOTS=1 npm test -- --unit writes it)`);
  assert.equal(actual, readFileSync(file, "utf8"), `snapshot ${name} differs (UPDATE_SNAPSHOTS=1 npm test -- --unit to accept)`);
}

// What an artifact's inspection found, remembered per sha256, so a no-op `up` or a preview of an
// artifact already inspected hashes it but does not gunzip and walk it again. The key also holds
// the archive rules' version, so a change to the rules inspects again. A cache that cannot be read
// or written is no cache: the artifact is inspected as if it were new. Only what this machine found
// is kept here; the VPS checks every entry again before it extracts anything.
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { ARCHIVE_RULES, DEFAULT_MAX_BYTES, DEFAULT_MAX_ENTRIES } from "./artifact";
import { cacheRoot } from "./cacheRoot";

const RULES_KEY = createHash("sha256").update(JSON.stringify([ARCHIVE_RULES, DEFAULT_MAX_ENTRIES, DEFAULT_MAX_BYTES, 1])).digest("hex").slice(0, 12);

export interface Inspection {
  /** The Prisma migrations the artifact carries (folder names). */
  migrations: string[];
}

const fileFor = (sha256: string, dir: string) => path.join(dir, "inspected", `${RULES_KEY}-${sha256}.json`);

/** The inspection of the artifact with this sha256 that passed, if one is remembered. */
export function recalled(sha256: string, dir = cacheRoot()): Inspection | undefined {
  try {
    const x = JSON.parse(fs.readFileSync(fileFor(sha256, dir), "utf8")) as Inspection;
    return Array.isArray(x.migrations) && x.migrations.every((m) => typeof m === "string") ? { migrations: x.migrations } : undefined;
  } catch {
    return undefined;
  }
}

/** Remembers an inspection that passed; never fails. */
export function remember(sha256: string, x: Inspection, dir = cacheRoot()): void {
  const file = fileFor(sha256, dir);
  try {
    fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
    const tmp = `${file}.${process.pid}`;
    fs.writeFileSync(tmp, JSON.stringify({ migrations: x.migrations }), { mode: 0o600 });
    fs.renameSync(tmp, file);
  } catch {
    // best effort: the next run inspects again
  }
}

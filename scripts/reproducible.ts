// What makes the same sources give the same artifact bytes in any folder, on any machine, beyond
// what packDirectory already fixes (entry order, times, owners): Prisma's generated client.
//   - It records the absolute paths of the folder it was generated in (its output folder and the
//     schema file): a clone elsewhere would make other bytes (issue 16). They become relative to
//     the app folder.
//   - It writes the generator's `config` block in an order that changes from run to run (seen with
//     Prisma 6.19: `moduleFormat, engineType` one run, `engineType, moduleFormat` the next). The
//     keys are sorted; the file's source map, which encodes the old order, is left out.
// Only files that carry Prisma's marker are touched; everything else is packed as it is.
import * as fs from "node:fs";
import * as path from "node:path";

/** Every generated Prisma client (`prisma-client` and `prisma-client-js` generators) has it. */
const PRISMA_CLIENT_MARKER = '"inlineSchemaHash"';
const SOURCE_MAP_COMMENT = /\n\/\/# sourceMappingURL=[^\n]*\n?$/;

export type Transform = (archivePath: string, data: Buffer) => Buffer | null;

/** A packDirectory transform for an app built in `appDir`, packed from `root` (default appDir). */
export function reproducibleTransform(appDir: string, root = appDir): Transform {
  const isPrismaClient = (text: string) => text.includes(PRISMA_CLIENT_MARKER);
  return (archivePath, data) => {
    if (archivePath.endsWith(".js.map")) {
      const js = path.join(root, ...archivePath.slice(0, -".map".length).split("/"));
      return fs.existsSync(js) && isPrismaClient(fs.readFileSync(js, "utf8")) ? null : data;
    }
    if (!/\.(c|m)?(j|t)s$/.test(archivePath)) return data;
    const text = data.toString("utf8");
    if (!isPrismaClient(text)) return data;
    return Buffer.from(normalizePrismaClient(text, appDir), "utf8");
  };
}

/** The text of a generated Prisma client file, independent of its folder and of the run. */
export function normalizePrismaClient(text: string, appDir: string): string {
  const abs = path.resolve(appDir);
  const relative = text.split(`"${abs}/`).join('"').split(`"${abs}"`).join('"."');
  return relative
    .replace(/("config": \{)([^{}]*)(\})/g, (_all, open: string, body: string, close: string) => `${open}${sortFlatObject(body)}${close}`)
    .replace(SOURCE_MAP_COMMENT, "\n");
}

/** `\n  "b": "x",\n  "a": "y"\n` -> the same lines, sorted by key, commas where they belong. */
function sortFlatObject(body: string): string {
  const lines = body.split("\n");
  const pairs = lines.map((l) => /^(\s*)("(?:[^"\\]|\\.)*"\s*:\s*.*?),?\s*$/.exec(l)).filter((m) => m !== null);
  if (pairs.length < 2 || pairs.length !== lines.filter((l) => l.trim() !== "").length) return body;
  const indent = pairs[0][1];
  const sorted = pairs.map((m) => m[2]).sort();
  const last = lines[lines.length - 1];
  return `\n${sorted.map((p, i) => `${indent}${p}${i < sorted.length - 1 ? "," : ""}`).join("\n")}\n${last.trim() === "" ? last : ""}`;
}

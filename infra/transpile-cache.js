// @ts-check
// ts-node's transpiler for this program (infra/tsconfig.json: "ts-node".transpiler): TypeScript's
// own transpileModule, with each file's output kept on disk per source text, so an `up` whose
// program did not change compiles nothing. Transpiling the program's files cost about 0.3 s of a
// 2.1 s no-op `up` on the bench machine; a hit is one file read.
//
// The key is everything the output depends on: TypeScript's version, the compiler options ts-node
// resolved, the file name (it is in the source map) and the source text. An entry is written
// whole (a temp file renamed into place) and only when the file had no syntax errors; an entry
// that cannot be read or written is no worse than no cache.
"use strict";
const crypto = require("node:crypto");
const fs = require("node:fs");
const path = require("node:path");
const { cacheRoot } = require("./cacheRoot");

/**
 * @param {{ service: { config: { options: import("typescript").CompilerOptions },
 *   projectLocalResolveHelper: (name: string, relative: boolean) => string } }} options
 */
function create(options) {
  /** @type {typeof import("typescript")} */
  const ts = require(options.service.projectLocalResolveHelper("typescript", true));
  const compilerOptions = options.service.config.options;
  const dir = path.join(cacheRoot(), "transpiled");
  const base = crypto.createHash("sha256").update(JSON.stringify([ts.version, compilerOptions])).digest("hex");
  return {
    /** @param {string} input @param {{ fileName: string }} where */
    transpile(input, { fileName }) {
      const key = crypto.createHash("sha256").update(`${base}\0${fileName}\0${input}`).digest("hex");
      const file = path.join(dir, `${key}.json`);
      try {
        return JSON.parse(fs.readFileSync(file, "utf8"));
      } catch {
        // not cached yet, or unreadable: transpile
      }
      const out = ts.transpileModule(input, { fileName, compilerOptions, reportDiagnostics: true });
      const result = { outputText: out.outputText, sourceMapText: out.sourceMapText };
      if (out.diagnostics && out.diagnostics.length > 0) return { ...result, diagnostics: out.diagnostics };
      try {
        fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
        const tmp = `${file}.${process.pid}.tmp`;
        fs.writeFileSync(tmp, JSON.stringify(result), { mode: 0o600 });
        fs.renameSync(tmp, file);
      } catch {
        // a read-only checkout: no cache
      }
      return result;
    },
  };
}

module.exports = { create };

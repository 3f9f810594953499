// The program's transpiler (transpile-cache.js): TypeScript's output, kept per source text, and
// wired through infra/tsconfig.json the way @pulumi/pulumi's runner registers ts-node.
import assert from "node:assert/strict";
import * as fs from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { after, before, describe, it } from "node:test";
import * as tsnode from "ts-node";
import * as ts from "typescript";
import { create } from "./transpile-cache";

const service = (options: ts.CompilerOptions) => ({
  service: { config: { options }, projectLocalResolveHelper: (name: string) => require.resolve(name) },
});
const CJS: ts.CompilerOptions = { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022, sourceMap: true };

describe("transpile cache", () => {
  let tmp: string;
  let cache: string;
  const entries = () => (fs.existsSync(cache) ? fs.readdirSync(cache).filter((f) => f.endsWith(".json")) : []);
  before(() => {
    tmp = fs.mkdtempSync(path.join(tmpdir(), "transpiled-"));
    process.env.VPS_RELEASE_CACHE = tmp;
    cache = path.join(tmp, "transpiled");
  });
  after(() => {
    delete process.env.VPS_RELEASE_CACHE;
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  it("gives TypeScript's own output, and the second time reads it from its entry (0600)", () => {
    const src = "import * as fs from 'node:fs';\nexport const n: number = fs.constants.F_OK;\n";
    const want = ts.transpileModule(src, { fileName: "/p/a.ts", compilerOptions: CJS });
    const first = create(service(CJS)).transpile(src, { fileName: "/p/a.ts" });
    assert.equal(first.outputText, want.outputText);
    assert.equal(first.sourceMapText, want.sourceMapText);
    const [entry] = entries();
    assert.equal(fs.statSync(path.join(cache, entry)).mode & 0o777, 0o600);
    // Mark the entry: a hit returns what the entry holds, without transpiling.
    fs.writeFileSync(path.join(cache, entry), JSON.stringify({ outputText: "MARK", sourceMapText: "{}" }));
    assert.equal(create(service(CJS)).transpile(src, { fileName: "/p/a.ts" }).outputText, "MARK");
  });

  it("keys on the source text, the file name and the compiler options", () => {
    fs.rmSync(cache, { recursive: true, force: true });
    const t = create(service(CJS));
    t.transpile("export const a = 1;\n", { fileName: "/p/a.ts" });
    t.transpile("export const a = 2;\n", { fileName: "/p/a.ts" });
    t.transpile("export const a = 1;\n", { fileName: "/p/b.ts" });
    const esm = create(service({ ...CJS, module: ts.ModuleKind.ES2022 })).transpile("export const a = 1;\n", { fileName: "/p/a.ts" });
    assert.equal(entries().length, 4);
    assert.doesNotMatch(esm.outputText, /exports\.a/);
  });

  it("reports a syntax error and keeps nothing for it", () => {
    fs.rmSync(cache, { recursive: true, force: true });
    const r = create(service(CJS)).transpile("export const = ;\n", { fileName: "/p/bad.ts" });
    assert.ok((r as { diagnostics?: unknown[] }).diagnostics?.length);
    assert.deepEqual(entries(), []);
  });

  it("a damaged entry or an unwritable folder is no cache, never a failure", () => {
    fs.rmSync(cache, { recursive: true, force: true });
    const src = "export const b = 3;\n";
    create(service(CJS)).transpile(src, { fileName: "/p/c.ts" });
    fs.writeFileSync(path.join(cache, entries()[0]), "{not json");
    assert.match(create(service(CJS)).transpile(src, { fileName: "/p/c.ts" }).outputText, /exports\.b = 3/);
    fs.rmSync(cache, { recursive: true, force: true });
    fs.writeFileSync(cache, "a file where the folder should be");
    assert.match(create(service(CJS)).transpile(src, { fileName: "/p/c.ts" }).outputText, /exports\.b = 3/);
    fs.rmSync(cache);
  });

  it("is the transpiler ts-node uses when registered the way the Pulumi SDK registers it", () => {
    // @pulumi/pulumi's cmd/run: the working directory is infra/, `project: "tsconfig.json"`, the
    // transpileOnly it got from PULUMI_NODEJS_TRANSPILE_ONLY (unset here), and its own
    // compilerOptions defaults under this file's.
    fs.rmSync(cache, { recursive: true, force: true });
    const cwd = process.cwd();
    process.chdir(__dirname);
    try {
      const own = ts.parseConfigFileTextToJson("tsconfig.json", fs.readFileSync("tsconfig.json", "utf8")).config.compilerOptions;
      const svc = tsnode.create({
        compiler: "typescript",
        transpileOnly: undefined,
        project: "tsconfig.json",
        skipProject: false,
        compilerOptions: { target: "ES2020", module: "nodenext", moduleResolution: "nodenext", sourceMap: "true", ...own },
      });
      const out = svc.compile("export const x: number = 1;\n", path.join(__dirname, "probe.ts"));
      assert.match(out, /exports\.x = 1/);
      assert.equal(entries().length, 1, "ts-node did not go through transpile-cache.js");
    } finally {
      process.chdir(cwd);
    }
  });
});

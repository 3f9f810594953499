import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, describe, it } from "node:test";
import { inspectArchive, sha256File } from "../infra/artifact";
import { backendFolder, excludedFromArtifact, formatResult, packageApp, PackageError, parseArgs, PROJECT_ROOT } from "./package";
import { recalled } from "../infra/inspectionCache";

const tmpRoot = fs.mkdtempSync(path.join(os.tmpdir(), "package-test-"));
after(() => fs.rmSync(tmpRoot, { recursive: true, force: true }));
let counter = 0;
const tmp = (label: string): string => fs.mkdtempSync(path.join(tmpRoot, `${label}-${counter++}-`));

const COPY_BUILD = "node -e \"require('fs').mkdirSync('dist',{recursive:true});require('fs').copyFileSync('src/server.js','dist/server.js')\"";

interface AppSpec {
  server?: string;
  build?: string | null;
  lock?: boolean;
  extra?: Record<string, string>;
  pkg?: Record<string, unknown>;
}

/** A tiny app with no dependencies: its build copies src/server.js to dist/server.js. */
function makeApp(spec: AppSpec = {}, dir = tmp("app")): string {
  const pkg = { name: "tiny-app", version: "1.0.0", private: true, scripts: spec.build === null ? {} : { build: spec.build ?? COPY_BUILD }, ...spec.pkg };
  fs.writeFileSync(path.join(dir, "package.json"), `${JSON.stringify(pkg, null, 2)}\n`);
  if (spec.lock !== false) {
    const lock = { name: "tiny-app", version: "1.0.0", lockfileVersion: 3, requires: true, packages: { "": { name: "tiny-app", version: "1.0.0" } } };
    fs.writeFileSync(path.join(dir, "package-lock.json"), `${JSON.stringify(lock, null, 2)}\n`);
  }
  fs.mkdirSync(path.join(dir, "src"));
  fs.writeFileSync(path.join(dir, "src/server.js"), spec.server ?? "require('http').createServer((q, s) => s.end('ok')).listen(process.env.PORT);\n");
  for (const [rel, body] of Object.entries(spec.extra ?? {})) {
    fs.mkdirSync(path.dirname(path.join(dir, rel)), { recursive: true });
    fs.writeFileSync(path.join(dir, rel), body);
  }
  return dir;
}

function entryPaths(file: string): string[] {
  const { entries, problems } = inspectArchive(fs.readFileSync(file));
  assert.deepEqual(problems, []);
  return entries.map((e) => e.path);
}

function packageError(opts: Parameters<typeof packageApp>[0], ...want: (string | RegExp)[]): void {
  assert.throws(
    () => packageApp(opts),
    (e: Error) => {
      assert.ok(e instanceof PackageError, `not a PackageError: ${e.stack}`);
      for (const w of want) assert.ok(typeof w === "string" ? e.message.includes(w) : w.test(e.message), `message lacks ${w}:\n${e.message}`);
      return true;
    },
  );
}

describe("packageApp", () => {
  it("packs the same bytes from two clean copies, into the default .artifacts path", () => {
    const root = tmp("project");
    const lines: string[] = [];
    const a = packageApp({ appDir: makeApp(), projectRoot: root, log: (l) => lines.push(l) });
    const b = packageApp({ appDir: makeApp(), out: path.join(tmp("out"), "nested/b.tar.gz") });
    assert.equal(a.sha256, b.sha256);
    assert.equal(a.releaseId, a.sha256.slice(0, 12));
    assert.equal(a.path, path.join(root, ".artifacts", `tiny-app-${a.releaseId}.tar.gz`));
    assert.equal(sha256File(a.path), a.sha256);
    assert.equal(fs.statSync(a.path).size, a.size);
    assert.ok(fs.readFileSync(a.path).equals(fs.readFileSync(b.path)));
    assert.deepEqual(entryPaths(a.path), ["dist/", "dist/server.js", "package-lock.json", "package.json"]);
    assert.ok(lines.some((l) => l.includes("npm ci")) && lines.some((l) => l.includes("npm run build")), lines.join("\n"));
    // Its inspection is remembered: the first up of it here does not gunzip and walk it again.
    assert.deepEqual(recalled(a.sha256), { migrations: [] });
  });

  it("gives another sha when one byte of a source changes", () => {
    const out = tmp("out");
    const a = packageApp({ appDir: makeApp({ server: "console.log(1);\n" }), out: path.join(out, "a.tar.gz") });
    const b = packageApp({ appDir: makeApp({ server: "console.log(2);\n" }), out: path.join(out, "b.tar.gz") });
    assert.notEqual(a.sha256, b.sha256);
  });

  it("rebuilds dist/ from scratch, so a stale file never ships", () => {
    const app = makeApp();
    fs.mkdirSync(path.join(app, "dist"));
    fs.writeFileSync(path.join(app, "dist/stale.js"), "old\n");
    const r = packageApp({ appDir: app, out: path.join(tmp("out"), "a.tar.gz") });
    assert.ok(!entryPaths(r.path).includes("dist/stale.js"));
  });

  it("packs prisma/ without local databases or env files, and runs npm install without a lockfile", () => {
    const app = makeApp({
      lock: false,
      extra: { "prisma.config.ts": "export default {};\n", "prisma/migrations/0_init/migration.sql": "-- init\n", "prisma/dev.db": "db", "prisma/dev.db-journal": "j", "prisma/.env": "SECRET=1\n" },
    });
    // prisma generate is replaced by a stub so the test needs no Prisma: npx finds it in node_modules/.bin.
    fs.mkdirSync(path.join(app, "node_modules/.bin"), { recursive: true });
    fs.writeFileSync(path.join(app, "node_modules/.bin/prisma"), "#!/bin/sh\necho \"stub prisma $* DATABASE_URL=$DATABASE_URL\" > prisma-ran.txt\n", { mode: 0o755 });
    const r = packageApp({ appDir: app, out: path.join(tmp("out"), "a.tar.gz") });
    const paths = entryPaths(r.path);
    assert.ok(paths.includes("package-lock.json"), "npm install wrote a lockfile");
    assert.ok(paths.includes("prisma/migrations/0_init/migration.sql") && paths.includes("prisma.config.ts"), paths.join("\n"));
    assert.ok(!paths.some((p) => /\.db|\.env/.test(p)), paths.join("\n"));
    const ran = fs.readFileSync(path.join(app, "prisma-ran.txt"), "utf8");
    assert.match(ran, /^stub prisma generate DATABASE_URL=\S+/);
    if (!process.env.DATABASE_URL) assert.match(ran, /DATABASE_URL=file:\.\/package-generate\.db$/m);
  });

  it("with node_modules: production dependencies only, installed off to the side", () => {
    const app = makeAppWithDeps();
    const r = packageApp({ appDir: app, out: path.join(tmp("out"), "a.tar.gz"), withNodeModules: true });
    const paths = entryPaths(r.path);
    assert.ok(paths.includes("node_modules/prod-dep/index.js"), paths.join("\n"));
    assert.ok(!paths.some((p) => p.startsWith("node_modules/dev-dep")), paths.join("\n"));
    assert.ok(fs.existsSync(path.join(app, "node_modules/dev-dep/index.js")), "APP_DIR keeps its dev dependencies");
    const again = packageApp({ appDir: makeAppWithDeps(), out: path.join(tmp("out"), "b.tar.gz"), withNodeModules: true });
    assert.equal(again.sha256, r.sha256);
    const without = packageApp({ appDir: makeAppWithDeps(), out: path.join(tmp("out"), "c.tar.gz") });
    assert.ok(!entryPaths(without.path).some((p) => p.startsWith("node_modules")));
  });

  it("fails clearly when APP_DIR does not exist", () => packageError({ appDir: path.join(tmpRoot, "nope") }, path.join(tmpRoot, "nope"), "does not exist", "npm run package -- examples/backend"));
  it("fails clearly without package.json", () => {
    const dir = tmp("empty");
    packageError({ appDir: dir }, `no package.json in ${dir}`);
  });
  it("fails clearly on a broken package.json", () => {
    const dir = tmp("broken");
    fs.writeFileSync(path.join(dir, "package.json"), "{ nope");
    packageError({ appDir: dir }, "is not valid JSON");
  });
  it("fails clearly without a build script", () => {
    const app = makeApp({ build: null });
    packageError({ appDir: app }, path.join(app, "package.json"), 'has no "build" script', '"build": "tsc -p tsconfig.json"');
  });
  it("fails with the tail of the output when the build fails", () => {
    const app = makeApp({ build: "node -e \"for (let i = 0; i < 100; i++) console.log('line ' + i); console.error('boom: tsc error'); process.exit(3)\"" });
    packageError({ appDir: app }, `building failed in ${app}`, "`npm run build` exited with", "boom: tsc error", "line 99");
    assert.throws(() => packageApp({ appDir: app }), (e: Error) => !e.message.includes("line 10\n"));
  });
  it("fails clearly when the build writes no dist/", () => {
    const app = makeApp({ build: "node -e \"0\"" });
    packageError({ appDir: app }, "did not write", "dist");
  });
  it("fails with the tail of the output when npm ci fails", () => {
    const app = makeApp();
    fs.writeFileSync(path.join(app, "package-lock.json"), "{ not json");
    packageError({ appDir: app }, "installing dependencies failed", "`npm ci");
  });
});

/** An app with one production and one dev dependency, both local tarballs so nothing is downloaded. */
function makeAppWithDeps(): string {
  const app = makeApp({ pkg: { dependencies: { "prod-dep": "file:vendor/prod-dep-1.0.0.tgz" }, devDependencies: { "dev-dep": "file:vendor/dev-dep-1.0.0.tgz" } }, lock: false });
  fs.mkdirSync(path.join(app, "vendor"));
  for (const name of ["prod-dep", "dev-dep"]) {
    const src = tmp(name);
    fs.writeFileSync(path.join(src, "package.json"), JSON.stringify({ name, version: "1.0.0", main: "index.js" }));
    fs.writeFileSync(path.join(src, "index.js"), `module.exports = ${JSON.stringify(name)};\n`);
    const pack = spawnSync("npm", ["pack", "--pack-destination", path.join(app, "vendor"), src], { encoding: "utf8", cwd: src });
    assert.equal(pack.status, 0, pack.stderr);
  }
  const install = spawnSync("npm", ["install", "--no-audit", "--no-fund"], { cwd: app, encoding: "utf8" });
  assert.equal(install.status, 0, install.stderr);
  fs.rmSync(path.join(app, "node_modules"), { recursive: true, force: true });
  return app;
}

describe("package CLI", () => {
  it("parses APP_DIR, OUT and --with-node-modules", () => {
    assert.deepEqual(parseArgs(["app"]), { appDir: "app", out: undefined, withNodeModules: false });
    assert.deepEqual(parseArgs(["--with-node-modules", "app", "o.tgz"]), { appDir: "app", out: "o.tgz", withNodeModules: true });
    assert.throws(() => parseArgs([]), /usage: npm run package -- \[APP_DIR\]/);
    // No APP_DIR: the project's backend folder setting.
    assert.deepEqual(parseArgs([], () => "/p/backend"), { appDir: "/p/backend", out: undefined, withNodeModules: false });
    assert.throws(() => parseArgs(["a", "b", "c"]), /usage/);
    assert.throws(() => parseArgs(["a", "--nope"]), /unknown option --nope/);
  });

  it("formats key: value lines and a final JSON line", () => {
    const text = formatResult({ path: "/x/a.tar.gz", size: 10, sha256: "ab".repeat(32), releaseId: "ab".repeat(6) });
    const lines = text.trimEnd().split("\n");
    assert.deepEqual(lines.slice(0, 4), ["path: /x/a.tar.gz", "size: 10", `sha256: ${"ab".repeat(32)}`, `releaseId: ${"ab".repeat(6)}`]);
    assert.deepEqual(JSON.parse(lines[4]), { path: "/x/a.tar.gz", size: 10, sha256: "ab".repeat(32), releaseId: "ab".repeat(6) });
  });

  it("leaves prisma databases and env files out, and nothing else", () => {
    for (const p of ["prisma/dev.db", "prisma/a/b.db-wal", "prisma/.env", "prisma/.env.local"]) assert.ok(excludedFromArtifact(p), p);
    for (const p of ["prisma/schema.prisma", "dist/x.db", "prisma/migrations/1/migration.sql", "prisma/db.ts", "package.json"]) assert.ok(!excludedFromArtifact(p), p);
  });

  it("runs through npm run package, relative paths from where it was started", () => {
    const app = makeApp();
    const cwd = path.dirname(app);
    const r = spawnSync("npm", ["--prefix", PROJECT_ROOT, "run", "--silent", "package", "--", path.basename(app), "out/r.tar.gz"], { cwd, encoding: "utf8" });
    assert.equal(r.status, 0, r.stderr);
    const lines = r.stdout.trimEnd().split("\n");
    const json = JSON.parse(lines[lines.length - 1]) as { path: string; size: number; sha256: string; releaseId: string };
    assert.equal(json.path, path.join(cwd, "out/r.tar.gz"));
    assert.equal(sha256File(json.path), json.sha256);
    assert.ok(lines.includes(`releaseId: ${json.releaseId}`) && lines.includes(`size: ${json.size}`));
    assert.match(r.stderr, /==> building: npm run build/);
  });

  it("exits non-zero with an error line on failure", () => {
    const r = spawnSync("bash", [path.join(PROJECT_ROOT, "scripts/node.sh"), path.join(PROJECT_ROOT, "scripts/package.ts"), path.join(tmpRoot, "missing")], { encoding: "utf8" });
    assert.equal(r.status, 1);
    assert.match(r.stderr, /^error: APP_DIR .*missing does not exist/m);
    assert.equal(r.stdout, "");
  });
});

describe("the backend folder setting (package.json vpsRelease.backend)", () => {
  it("is this project's examples/backend, and refuses a missing, absolute or escaping one with the fix", () => {
    assert.equal(backendFolder(), "examples/backend");
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "backend-setting-"));
    try {
      for (const [value, ok] of [["backend/", "backend"], [undefined, null], ["/abs", null], ["../up", null]] as const) {
        fs.writeFileSync(path.join(dir, "package.json"), JSON.stringify(value === undefined ? {} : { vpsRelease: { backend: value } }));
        if (ok) assert.equal(backendFolder(dir), ok);
        else assert.throws(() => backendFolder(dir), /vpsRelease\.backend must name the backend's folder inside the project.*npm pkg set vpsRelease\.backend=backend/);
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});


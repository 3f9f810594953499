// Every script builder: exact text for short ones, snapshots for whole scripts, and each generated
// script through bash -n and shellcheck. The risky parts run for real in a temp dir.
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { describe, it } from "node:test";
import { assertValidBash } from "../../test/support/shell";
import { matchSnapshot } from "../../test/support/snapshot";
import { layout } from "../paths";
import { DEPLOY_HELPER, renderEcosystem } from "./ecosystem";
import { parseEnvFile, renderEnvFile } from "./env";
import { appRegistrationScripts, layoutScript, writeFileScript } from "./hostFiles";
import { parseDepsBase, parseReleaseResult } from "../protocol";
import { depsBaseScript, ReleaseInput, releaseScript } from "./release";

const ROOT = "/home/deploy/htdocs/api.example.com";
const common = {
  root: ROOT, stack: "vps-release/production", releaseId: "0123456789ab", appName: "blue-video-backend", script: "dist/server.js", port: 3000,
  healthPath: "/health", healthTimeout: 60, healthSettle: 5, keepReleases: 5, migrate: "npx prisma migrate deploy",
  backup: "auto", lockTimeout: 120, source: "pulumi up",
};
const deploy: ReleaseInput = { kind: "deploy", ...common, sha256: "ab".repeat(32), incoming: `${ROOT}/.incoming/x.upload` };
const activate: ReleaseInput = { kind: "activate", ...common };

describe("release script", () => {
  it("deploy: bash -n, shellcheck, and a snapshot of the generated header (the body is a file)", () => {
    const text = releaseScript(deploy);
    assertValidBash(text, "release deploy");
    const bodyStart = text.indexOf("# shellcheck shell=bash\n");
    assert.ok(bodyStart > 0, "the body follows the header");
    matchSnapshot(__dirname, "release-deploy-header", text.slice(0, bodyStart));
  });
  it("deploy with layers: the app layer's names and digests in the header", () => {
    const text = releaseScript({ ...deploy, layers: { depsDigest: "cd".repeat(32), appSha256: "ef".repeat(32) } });
    assertValidBash(text, "release deploy with layers");
    assert.match(text, new RegExp(`^DEPS_DIGEST=${"cd".repeat(32)}$`, "m"));
    assert.match(text, new RegExp(`^APP_SHA256=${"ef".repeat(32)}$`, "m"));
    assert.match(text, new RegExp(`^APP_INCOMING=${ROOT}/.incoming/${"ab".repeat(32)}.app.upload$`, "m"));
  });
  it("the upload's query: valid bash; `deps-base ID` for a kept release with the digest, else none", () => {
    const tmp = mkdtempSync(path.join(tmpdir(), "query-"));
    try {
      const digest = "cd".repeat(32);
      const run = () => parseDepsBase(execFileSync("bash", ["-c", depsBaseScript(`${tmp}/root`, digest)], { encoding: "utf8" }));
      assertValidBash(depsBaseScript(ROOT, digest), "deps-base query");
      assert.equal(run(), undefined, "no root yet");
      for (const [id, mark] of [["aaaaaaaaaaaa", digest], ["bbbbbbbbbbbb", "ee".repeat(32)], ["cccccccccccc", digest]]) {
        mkdirSync(`${tmp}/root/releases/${id}/node_modules`, { recursive: true });
        writeFileSync(`${tmp}/root/releases/${id}/.deps-digest`, `${mark}\n`);
      }
      utimesSync(`${tmp}/root/releases/cccccccccccc/.deps-digest`, new Date(2000, 1, 1), new Date(2000, 1, 1));
      assert.equal(run(), "aaaaaaaaaaaa", "the newest with the digest");
      rmSync(`${tmp}/root/releases/aaaaaaaaaaaa/node_modules`, { recursive: true });
      assert.equal(run(), "cccccccccccc", "one without node_modules is no base");
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  });
  it("activate: skips upload, verify, extract and install", () => {
    const text = releaseScript(activate);
    assertValidBash(text, "release activate");
    assert.match(text, /^MODE=activate$/m);
    assert.match(text, /^SHA256=''$/m);
  });
  it("carries hostile values as data", () => {
    const text = releaseScript({ ...deploy, migrate: "echo \"$(id)\" `id` it's; rm -rf /", source: "a'b\nc" });
    assertValidBash(text, "release hostile");
    assert.ok(text.includes(`MIGRATE='echo "$(id)" \`id\` it'\\''s; rm -rf /'`));
  });
  it("parses the RESULT line", () => {
    assert.deepEqual(parseReleaseResult("step x 1s\nRESULT {\"releaseId\":\"a\",\"previousReleaseId\":\"\",\"artifactSha256\":\"s\"}\n"),
      { releaseId: "a", previousReleaseId: "", artifactSha256: "s" });
    assert.equal(parseReleaseResult("no result"), undefined);
  });
});

describe("layout and file scripts", () => {
  it("layout: exact header, valid bash, idempotent for real", () => {
    const tmp = mkdtempSync(path.join(tmpdir(), "layout-"));
    try {
      const text = layoutScript(layout(`${tmp}/root`), "p/one");
      assertValidBash(text, "layout");
      matchSnapshot(__dirname, "layout", layoutScript(layout(ROOT), "vps-release/production"));
      for (let i = 0; i < 2; i++) {
        const r = spawnSync("bash", ["-c", text], { encoding: "utf8" });
        assert.equal(r.status, 0, r.stderr);
      }
      assert.equal(statSync(`${tmp}/root/shared`).mode & 0o777, 0o750);
      assert.equal(statSync(`${tmp}/root/backups`).mode & 0o777, 0o700);
      assert.equal(readFileSync(`${tmp}/root/.stack`, "utf8"), "p/one\n");
      // Another stack is refused on this root, before it changes anything, with the fix named.
      const other = spawnSync("bash", ["-c", layoutScript(layout(`${tmp}/root`), "p/two")], { encoding: "utf8" });
      assert.equal(other.status, 1);
      assert.match(other.stderr, /is the deploy root of stack p\/one, not of p\/two; two stacks must not share one vps:root/);
      const write = spawnSync("bash", ["-c", writeFileScript(`${tmp}/root/shared/.env`, "600", ".env", { root: `${tmp}/root`, stack: "p/two" })],
        { input: "A=\"1\"\n", encoding: "utf8" });
      assert.equal(write.status, 1);
      assert.ok(!existsSync(`${tmp}/root/shared/.env`), "the other stack's .env was written");
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  });
  it("app registration: destroy stops the app and keeps the data, only for the current registration", () => {
    const tmp = mkdtempSync(path.join(tmpdir(), "reg-"));
    try {
      const l = layout(`${tmp}/root`);
      const run = (text: string) => spawnSync("bash", ["-c", text], {
        encoding: "utf8", env: { ...process.env, PATH: `${tmp}/bin:${process.env.PATH}` },
      });
      mkdirSync(`${tmp}/bin`);
      // A fake pm2 that records its calls and knows the app.
      writeFileSync(`${tmp}/bin/pm2`, `#!/usr/bin/env bash\necho "pm2 $*" >>${tmp}/calls\n`);
      chmodSync(`${tmp}/bin/pm2`, 0o755);
      assert.equal(run(layoutScript(l, "p/one")).status, 0);
      mkdirSync(`${l.releases}/aaaaaaaaaaaa`);
      const old = appRegistrationScripts(l, "api", "p/one", "token-old");
      const now = appRegistrationScripts(l, "api", "p/one", "token-new");
      for (const t of [old.create, old.delete, now.create]) assertValidBash(t, "registration");
      assert.equal(run(old.create).status, 0);
      assert.equal(run(now.create).status, 0);
      // The replaced registration's delete (Pulumi runs it after the new one's create) stops nothing.
      const replaced = run(old.delete);
      assert.equal(replaced.status, 0, replaced.stderr);
      assert.match(replaced.stdout, /this registration was replaced by a newer one; the app keeps running/);
      assert.ok(!existsSync(`${tmp}/calls`), "pm2 was called");
      const destroy = run(now.delete);
      assert.equal(destroy.status, 0, destroy.stderr);
      assert.equal(readFileSync(`${tmp}/calls`, "utf8"), "pm2 describe api\npm2 delete api\npm2 save --force\n");
      assert.match(destroy.stdout, /pm2: stopped and removed api, and saved PM2's list/);
      assert.match(destroy.stdout, /released .* from stack p\/one/);
      assert.match(destroy.stdout, /with 1 release\(s\), shared\/ \(the \.env, data, logs\), backups\/ and revisions\.log/);
      assert.match(destroy.stdout, new RegExp(`to remove them for good, on the VPS: rm -rf ${tmp}/root`));
      assert.ok(existsSync(`${l.releases}/aaaaaaaaaaaa`) && existsSync(l.data) && !existsSync(l.stackClaim));
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  });
  it("writeFile: stdin to a 0600 file, atomically, content never in the script", () => {
    const tmp = mkdtempSync(path.join(tmpdir(), "wf-"));
    try {
      const text = writeFileScript(`${tmp}/shared/.env`, "600", ".env", { root: tmp, stack: "p/one" }, "keys: A B");
      assertValidBash(text, "writeFile");
      assert.equal(text.split("\n")[3], "# keys: A B");
      const content = renderEnvFile({ A: "x'y", B: "$(id)\n`id`" });
      const r = spawnSync("bash", ["-c", text], { input: content, encoding: "utf8" });
      assert.equal(r.status, 0, r.stderr);
      assert.equal(readFileSync(`${tmp}/shared/.env`, "utf8"), content);
      assert.equal(statSync(`${tmp}/shared/.env`).mode & 0o777, 0o600);
      assert.ok(!r.stdout.includes("x'y"));
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  });
});

describe("env file", () => {
  it("round-trips every value exactly", () => {
    const env = { Q: `'"`, SUB: "$(id)", TICK: "`id`", NL: "a\nb\r\n", BS: "\\n", EQ: "a=b", EMPTY: "", U: "é☃" };
    const text = renderEnvFile(env);
    assert.equal(text.split("\n").length, Object.keys(env).length + 1);
    assert.deepEqual(parseEnvFile(text), env);
  });
  it("sorts keys and refuses bad names", () => {
    assert.equal(renderEnvFile({ B: "1", A: "2" }), 'A="2"\nB="1"\n');
    assert.throws(() => renderEnvFile({ "A B": "1" }), /not a variable name/);
  });
});

describe("ecosystem file", () => {
  const input = { root: ROOT, name: "blue-video-backend", script: "dist/server.js", port: 3000, instances: 2 };
  it("snapshot", () => matchSnapshot(__dirname, "ecosystem", renderEcosystem(input)));
  it("loads in node with the deploy helper: cluster mode, cwd through current, env from .env and REVISION", () => {
    const tmp = mkdtempSync(path.join(tmpdir(), "eco-"));
    try {
      const root = `${tmp}/root`;
      spawnSync("bash", ["-c", layoutScript(layout(root), "p/s")]);
      spawnSync("bash", ["-c", `mkdir -p ${root}/releases/abc && echo abc > ${root}/releases/abc/REVISION && ln -s releases/abc ${root}/current`]);
      writeFileSync(`${root}/shared/.env`, renderEnvFile({ SECRET: "a\"b\nc", DATABASE_URL: "file:/custom.db" }));
      writeFileSync(layout(root).helper, DEPLOY_HELPER);
      const file = `${root}/shared/ecosystem.config.js`;
      writeFileSync(file, renderEcosystem({ ...input, root, name: "it's \"app\"" }));
      const r = spawnSync(process.execPath, ["-e", `console.log(JSON.stringify(require(${JSON.stringify(file)}).apps[0]))`], { encoding: "utf8" });
      assert.equal(r.status, 0, r.stderr);
      const app = JSON.parse(r.stdout);
      assert.equal(app.name, "it's \"app\"");
      assert.equal(app.exec_mode, "cluster");
      assert.equal(app.instances, 2);
      assert.equal(app.cwd, `${root}/current`);
      assert.equal(app.out_file, `${root}/shared/logs/out.log`);
      // No .sends-ready in the release: the ready shim, preloaded, sends 'ready' for the app.
      assert.deepEqual(app.env, { DATABASE_URL: "file:/custom.db", SECRET: "a\"b\nc", PORT: "3000", NODE_ENV: "production", RELEASE_ID: "abc",
        VPS_RELEASE_READY_SHIM: "1" });
      assert.equal(app.wait_ready, true);
      assert.deepEqual(app.node_args, ["--require", layout(root).readyShim]);
      const exec = spawnSync(process.execPath, [layout(root).helper, file, "exec", `${root}/releases/abc`, "4000", "--", "bash", "-c", "printf '%s|%s|%s' \"$PORT\" \"$RELEASE_ID\" \"$SECRET\""], { encoding: "utf8" });
      assert.equal(exec.stdout, "4000|abc|a\"b\nc");
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  });
});

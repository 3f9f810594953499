// The release's phases run for real in a temp dir: release.lib.sh sourced with the layout of
// paths.ts, the real deploy helper, and a fake `pm2` on PATH that records its calls. The whole
// release script then runs twice end to end: a release that goes live, and one whose live health
// check fails after the switch and is reverted.
import assert from "node:assert/strict";
import { execFileSync, spawn, spawnSync } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readlinkSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { after, before, describe, it } from "node:test";
import * as zlib from "node:zlib";
import { DEFAULT_MAX_ENTRIES, packDirectory, sha256Of } from "../artifact";
import { incomingArtifact, layout, layoutVars, verifiedAppLayer, verifiedArtifact } from "../paths";
import { assignments, quote } from "../shell";
import { DEPLOY_HELPER, renderEcosystem } from "./ecosystem";
import { layoutScript } from "./hostFiles";
import { splitArtifact } from "../layers";
import { DEPS_BASE, FleetPhase, RELEASE_LIB, releaseScript } from "./release";

const FAKE_PM2 = `#!/usr/bin/env bash
echo "pm2 $*" >>"$PM2_CALLS"
if [ "$1" = jlist ]; then cat "\${PM2_JLIST:-/dev/null}"; fi
exit "\${PM2_EXIT:-0}"
`;

interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
}

describe("release phases (release.lib.sh), for real in a temp dir", () => {
  let tmp: string;
  let root: string;
  let l: ReturnType<typeof layout>;
  let env: NodeJS.ProcessEnv;
  const calls = () => (existsSync(`${tmp}/pm2-calls`) ? readFileSync(`${tmp}/pm2-calls`, "utf8") : "");

  /** Runs `body` after sourcing the library with the layout and a few settings. */
  const phase = (body: string, extra: Record<string, string> = {}): Run => {
    const text = [
      "set -euo pipefail",
      assignments({ ...layoutVars(l), HEALTH_PATH: "/health", MAX_ENTRIES: DEFAULT_MAX_ENTRIES, ...extra }),
      RELEASE_LIB,
      DEPS_BASE,
      body,
    ].join("\n");
    const r = spawnSync("bash", ["-c", text], { env, encoding: "utf8" });
    return { status: r.status, stdout: r.stdout, stderr: r.stderr };
  };

  before(() => {
    tmp = mkdtempSync(path.join(tmpdir(), "phases-"));
    root = path.join(tmp, "root");
    l = layout(root);
    mkdirSync(`${tmp}/bin`);
    writeFileSync(`${tmp}/bin/pm2`, FAKE_PM2);
    chmodSync(`${tmp}/bin/pm2`, 0o755);
    env = { ...process.env, PATH: `${tmp}/bin:${process.env.PATH}`, PM2_CALLS: `${tmp}/pm2-calls`, PM2_HOME: `${tmp}/pm2-home` };
    execFileSync("bash", ["-c", layoutScript(l, "p/s")], { env });
    writeFileSync(l.helper, DEPLOY_HELPER);
    writeFileSync(l.ecosystem, renderEcosystem({ root, name: "app", script: "dist/server.js", port: 3000, instances: 1 }));
  });
  after(() => rmSync(tmp, { recursive: true, force: true }));

  describe("lock", () => {
    it("a second holder waits, then fails naming the first", () => {
      const held = spawnSync("bash", ["-c", `set -e; exec 8>>${l.lockFile}; flock 8; echo "pid 1 release aaa" >${l.lockOwner}; ` +
        `${phaseCommand(l)} lock_acquire "$LOCK_FILE" "$LOCK_OWNER" 1 "pid 2"`], { env, encoding: "utf8" });
      assert.equal(held.status, 1);
      assert.match(held.stderr, /^error: another deploy holds .*\.deploy\.lock \(waited 1s; holder: pid 1 release aaa\); wait for it to finish/m);
      const free = phase(`lock_acquire "$LOCK_FILE" "$LOCK_OWNER" 1 "pid 3 release bbb"; cat "$LOCK_OWNER"; lock_release "$LOCK_OWNER"; wc -c <"$LOCK_OWNER"`);
      assert.equal(free.status, 0, free.stderr);
      assert.equal(free.stdout, "pid 3 release bbb\n0\n");
    });
  });

  describe("lease (a fleet host, across the phases of one update)", () => {
    const take = (key: string, stack: string, timeout = 1) =>
      phase(`exec 9>>"$LOCK_FILE"; flock 9; lease_take "$LEASE_FILE" ${key} ${stack} 0123456789ab stage 600 ${timeout}; cat "$LEASE_FILE"`,
        { HOST_LABEL: "10.0.0.12:22" });
    it("another stack's lease is waited for, then refused naming it; this stack's own is taken over; an expired one goes", () => {
      rmSync(l.leaseFile, { force: true });
      const first = take("k1", "p/one");
      assert.equal(first.status, 0, first.stderr);
      assert.match(first.stdout, /^k1 p\/one 0123456789ab \d+ stage \d{4}-/);
      const other = take("k2", "p/two", 2);
      assert.equal(other.status, 1);
      assert.match(other.stderr, /error: 10\.0\.0\.12:22 is leased by stack p\/one for release 0123456789ab until \S+Z \(its fleet update is under way; waited 2s\)/);
      const again = take("k3", "p/one");
      assert.equal(again.status, 0, again.stderr);
      assert.match(again.stdout, /lease: taking over this stack's lease from an update that did not finish \(release 0123456789ab\)/);
      writeFileSync(l.leaseFile, "k9 p/one 0123456789ab 1 stage 2020-01-01T00:00:00Z\n");
      const expired = take("k4", "p/two");
      assert.equal(expired.status, 0, expired.stderr);
      assert.match(expired.stdout, /^k4 p\/two /m);
    });
    it("lease_drop ends only the caller's own lease", () => {
      writeFileSync(l.leaseFile, "k5 p/one 0123456789ab 9999999999 stage x\n");
      assert.equal(phase(`lease_drop "$LEASE_FILE" other; [ -f "$LEASE_FILE" ]`).status, 0);
      assert.equal(phase(`lease_drop "$LEASE_FILE" k5; [ ! -e "$LEASE_FILE" ]`).status, 0);
    });
  });

  describe("stage: verify", () => {
    const upload = (name: string, bytes: Buffer) => {
      const sha = sha256Of(bytes);
      writeFileSync(incomingArtifact(root, sha), bytes);
      return sha;
    };
    const verify = (sha: string) => phase(`stage_verify ${incomingArtifact(root, sha)} ${verifiedArtifact(root, sha)} ${sha}`);

    it("renames a good upload once its sha256 holds", () => {
      const sha = upload("good", goodArchive(tmp, "good"));
      const r = verify(sha);
      assert.equal(r.status, 0, r.stderr);
      assert.ok(existsSync(verifiedArtifact(root, sha)) && !existsSync(incomingArtifact(root, sha)));
    });

    it("removes an upload whose sha256 is not the artifact's (a cut upload)", () => {
      const bytes = goodArchive(tmp, "cut");
      const sha = sha256Of(bytes);
      writeFileSync(incomingArtifact(root, sha), bytes.subarray(0, bytes.length >> 1));
      const r = verify(sha);
      assert.equal(r.status, 1);
      assert.match(r.stderr, /error: sha256 of the uploaded .* expected .* \(a cut or corrupt upload, now removed\)/);
      assert.ok(!existsSync(incomingArtifact(root, sha)));
    });

    it("refuses a missing upload, saying the next up sends it again", () => {
      const r = verify("f".repeat(64));
      assert.equal(r.status, 1);
      assert.match(r.stderr, /is missing \(a new or wiped VPS\?\); run pulumi up again: it uploads the artifact anew/);
    });

    it("names the broken layer: not gzip, or a gzip that holds no tar", () => {
      const notGzip = verify(upload("text", Buffer.from("not an archive\n")));
      assert.equal(notGzip.status, 1);
      assert.match(notGzip.stderr, /error: .* is not a valid gzip file/);
      const notTar = verify(upload("gz", zlib.gzipSync(Buffer.from("x".repeat(1500)))));
      assert.equal(notTar.status, 1);
      assert.match(notTar.stderr, /error: .* is not a readable tar archive/);
      const cut = goodArchive(tmp, "truncated");
      const truncated = verify(upload("truncated", cut.subarray(0, cut.length - 20)));
      assert.equal(truncated.status, 1);
      assert.match(truncated.stderr, /error: .* is not a valid gzip file/);
    });

    for (const [what, make, expected] of [
      ["an absolute path", (d: string) => tarWith(d, ["-P", "-czf", "a.tgz", "/etc/hostname"]), /entry \/etc\/hostname: absolute path/],
      ["a .. component", (d: string) => tarWith(d, ["-czf", "a.tgz", "--transform", "s,^,x/../../,", "package.json"]), /: \.\. component/],
      ["a FIFO", (d: string) => { execFileSync("mkfifo", [path.join(d, "fifo")]); return tarWith(d, ["-czf", "a.tgz", "fifo"]); }, /type p \(devices, FIFOs and sockets are refused\)/],
    ] as const) {
      it(`refuses an archive with ${what}, fed straight to the VPS-side check`, () => {
        const d = mkdtempSync(path.join(tmp, "hostile-"));
        writeFileSync(path.join(d, "package.json"), "{}");
        const sha = upload(what, make(d));
        const r = verify(sha);
        assert.equal(r.status, 1, r.stdout);
        assert.match(r.stderr, /error: unsafe archive, refused before anything was activated/);
        assert.match(r.stderr, expected);
      });
    }
  });

  describe("stage: extract and link", () => {
    it("extracts, links the shared .env, writes REVISION and renames in one step", () => {
      const bytes = goodArchive(tmp, "linked");
      const sha = sha256Of(bytes);
      writeFileSync(verifiedArtifact(root, sha), bytes);
      const r = phase(`stage_extract ${verifiedArtifact(root, sha)} "$RELEASES/.tmp-x" "$ROOT" && stage_link "$RELEASES/.tmp-x" "$RELEASES/aaaaaaaaaaaa" aaaaaaaaaaaa ${sha}`);
      assert.equal(r.status, 0, r.stderr);
      const dir = `${l.releases}/aaaaaaaaaaaa`;
      assert.equal(readFileSync(`${dir}/REVISION`, "utf8"), "aaaaaaaaaaaa\n");
      assert.equal(readlinkSync(`${dir}/.env`), "../../shared/.env");
      assert.equal(readlinkSync(`${dir}/logs`), "../../shared/logs");
      assert.equal(readFileSync(`${dir}/.artifact-sha256`, "utf8").trim(), sha);
      assert.ok(!existsSync(`${l.releases}/.tmp-x`));
    });

    it("refuses a link that points outside the release and removes what it extracted", () => {
      const d = mkdtempSync(path.join(tmp, "link-"));
      writeFileSync(path.join(d, "package.json"), "{}");
      symlinkSync("../../../../etc/passwd", path.join(d, "escape"));
      const bytes = tarWith(d, ["-czf", "a.tgz", "package.json", "escape"]);
      writeFileSync(`${tmp}/escape.tgz`, bytes);
      const r = phase(`stage_extract ${tmp}/escape.tgz "$RELEASES/.tmp-escape" "$ROOT"`);
      assert.equal(r.status, 1);
      assert.match(r.stderr, /error: unsafe archive: link escape points outside the release/);
      assert.ok(!existsSync(`${l.releases}/.tmp-escape`));
    });
  });

  describe("stage: only the app layer, node_modules from a kept release (infra/layers.ts)", () => {
    it("marks a release whose node_modules match, hard-links them into the next, and fails once when they changed", () => {
      const d = path.join(tmp, "layered");
      mkdirSync(path.join(d, "dist"), { recursive: true });
      mkdirSync(path.join(d, "node_modules/pkg/.bin"), { recursive: true });
      writeFileSync(path.join(d, "package.json"), "{}");
      writeFileSync(path.join(d, "dist/server.js"), "");
      writeFileSync(path.join(d, "node_modules/pkg/index.js"), "module.exports = 1;\n");
      writeFileSync(path.join(d, "node_modules/pkg/cli.js"), "#!/usr/bin/env node\n", { mode: 0o755 });
      symlinkSync("../cli.js", path.join(d, "node_modules/pkg/.bin/cli"));
      const bytes = tarWith(d, ["-czf", "a.tgz", "package.json", "dist", "node_modules"]);
      const sha = sha256Of(bytes);
      writeFileSync(`${tmp}/layered.tgz`, bytes);
      const split = splitArtifact(`${tmp}/layered.tgz`);
      assert.ok(split);
      const digest = split.depsDigest;
      // The tree digest as the release script takes it: a job in the background (deps_digest_start).
      const digestOf = (id: string) => `deps_digest_start "$RELEASES/${id}" "$RELEASES/.digest-${id}" & wait $!; ` +
        `got="$(cat "$RELEASES/.digest-${id}")"; rm -f "$RELEASES/.digest-${id}"; deps_verify "$RELEASES/${id}" ${digest} "$got"`;
      // The whole artifact: extracted, linked as release A, marked once its digest matches.
      const whole = phase(`stage_extract ${tmp}/layered.tgz "$RELEASES/.tmp-a" "$ROOT" && ` +
        `stage_link "$RELEASES/.tmp-a" "$RELEASES/aaaa11112222" aaaa11112222 ${sha} && ${digestOf("aaaa11112222")}`);
      assert.equal(whole.status, 0, whole.stderr);
      assert.equal(readFileSync(`${l.releases}/aaaa11112222/.deps-digest`, "utf8").trim(), digest);
      assert.equal(phase(`deps_base "$RELEASES" ${digest}`).stdout.trim(), "aaaa11112222");
      // Only the app layer: extracted, node_modules hard-linked from A, unverified until the digest
      // matches, then a base itself.
      writeFileSync(verifiedAppLayer(root, sha), split.app);
      const delta = phase(`stage_extract ${verifiedAppLayer(root, sha)} "$RELEASES/.tmp-b" "$ROOT" && stage_deps "$RELEASES/.tmp-b" "$RELEASES/aaaa11112222" ${digest} && ` +
        `stage_link "$RELEASES/.tmp-b" "$RELEASES/bbbb11112222" bbbb11112222 ${sha} && cat "$RELEASES/bbbb11112222/.deps-unverified" && ${digestOf("bbbb11112222")}`);
      assert.equal(delta.status, 0, delta.stderr);
      assert.match(delta.stdout, /install: only the app layer was uploaded; node_modules hard-linked from release aaaa11112222/);
      assert.match(delta.stdout, new RegExp(`^aaaa11112222 ${digest}$`, "m"));
      assert.match(delta.stdout, /node_modules hard-linked from release aaaa11112222 are the artifact's own tree \(digest checked\)/);
      assert.ok(!existsSync(`${l.releases}/bbbb11112222/.deps-unverified`));
      assert.equal(readFileSync(`${l.releases}/bbbb11112222/.deps-digest`, "utf8").trim(), digest);
      assert.equal(statSync(`${l.releases}/bbbb11112222/node_modules/pkg/index.js`).ino, statSync(`${l.releases}/aaaa11112222/node_modules/pkg/index.js`).ino);
      assert.equal(readlinkSync(`${l.releases}/bbbb11112222/node_modules/pkg/.bin/cli`), "../cli.js");
      assert.ok(statSync(`${l.releases}/bbbb11112222/node_modules/pkg/cli.js`).mode & 0o100);
      // A later run with no artifact digest of its own (a rollback to B) still checks B against its marker.
      writeFileSync(`${l.releases}/bbbb11112222/.deps-unverified`, `aaaa11112222 ${digest}\n`);
      const rollback = phase(`deps_verify "$RELEASES/bbbb11112222" "" "$(tree_digest "$RELEASES/bbbb11112222/node_modules")"`);
      assert.equal(rollback.status, 0, rollback.stderr);
      assert.ok(!existsSync(`${l.releases}/bbbb11112222/.deps-unverified`));
      // A's node_modules changed on the VPS: the check fails, naming A; no release is a base any
      // more, and the new release's folder is gone (it never went live), so the next up stages it whole.
      writeFileSync(`${l.releases}/aaaa11112222/node_modules/pkg/added.js`, "");
      const changed = phase(`stage_extract ${verifiedAppLayer(root, sha)} "$RELEASES/.tmp-c" "$ROOT" && stage_deps "$RELEASES/.tmp-c" "$RELEASES/aaaa11112222" ${digest} && ` +
        `stage_link "$RELEASES/.tmp-c" "$RELEASES/cccc11112222" cccc11112222 ${sha} && ${digestOf("cccc11112222")}`);
      assert.equal(changed.status, 1);
      assert.match(changed.stderr, /error: release aaaa11112222's node_modules changed on the VPS since it was deployed .* run pulumi up again: it uploads the whole artifact/);
      assert.ok(!existsSync(`${l.releases}/aaaa11112222/.deps-digest`));
      assert.ok(!existsSync(`${l.releases}/bbbb11112222/.deps-digest`));
      assert.ok(!existsSync(`${l.releases}/cccc11112222`));
      assert.equal(phase(`deps_base "$RELEASES" ${digest}`).stdout.trim(), "");
      // A whole artifact whose node_modules do not match the digest is not marked.
      const unmarked = phase(`stage_extract ${tmp}/layered.tgz "$RELEASES/.tmp-d" "$ROOT" && ` +
        `deps_verify "$RELEASES/.tmp-d" ${"0".repeat(64)} "$(tree_digest "$RELEASES/.tmp-d/node_modules")"`);
      assert.equal(unmarked.status, 0, unmarked.stderr);
      assert.match(unmarked.stdout, /differ from the artifact's tree digest/);
      assert.ok(!existsSync(`${l.releases}/.tmp-d/.deps-digest`));
      rmSync(`${l.releases}/.tmp-d`, { recursive: true, force: true });
      rmSync(`${l.releases}/bbbb11112222`, { recursive: true });
      rmSync(`${l.releases}/aaaa11112222`, { recursive: true });
    });
  });

  describe("migrate: skipped only when provably nothing is pending", () => {
    const release = (id: string, migrations: Record<string, string>, migrated: boolean) => {
      const dir = `${l.releases}/${id}`;
      rmSync(dir, { recursive: true, force: true });
      mkdirSync(dir, { recursive: true });
      for (const [name, sql] of Object.entries(migrations)) {
        mkdirSync(`${dir}/prisma/migrations/${name}`, { recursive: true });
        writeFileSync(`${dir}/prisma/migrations/${name}/migration.sql`, sql);
      }
      if (migrated) writeFileSync(`${dir}/.migrated`, "");
      return dir;
    };
    const pending = (cmd: string, a: string, b: string) => phase(`if migrate_pending ${JSON.stringify(cmd)} "${a}" "${b}"; then echo run; else echo skip; fi`).stdout.trim();

    it("prisma migrate deploy with the live release's migrations: skip; with a new one: run", () => {
      const prev = release("p00000000001", { "1_init": "create table a;" }, true);
      assert.equal(pending("npx prisma migrate deploy", release("n00000000001", { "1_init": "create table a;" }, false), prev), "skip");
      assert.equal(pending("npx prisma migrate deploy", release("n00000000002", { "1_init": "create table a;", "2_b": "alter" }, false), prev), "run");
    });
    it("any other migrate command runs on every new release (issue 16)", () => {
      const prev = release("p00000000002", {}, true);
      assert.equal(pending("node dist/migrate.js", release("n00000000003", {}, false), prev), "run");
    });
    it("no migration files at all prove nothing: prisma migrate deploy runs", () => {
      const prev = release("p00000000003", {}, true);
      assert.equal(pending("npx prisma migrate deploy", release("n00000000004", {}, false), prev), "run");
    });
    it("a release that migrated already, or an empty command: skip", () => {
      assert.equal(pending("node dist/migrate.js", release("n00000000005", {}, true), ""), "skip");
      assert.equal(pending("", release("n00000000006", {}, false), ""), "skip");
    });
  });

  describe("takeover of a root deployed the old way", () => {
    const oldRoot = () => {
      const r = path.join(tmp, `old-${Math.random().toString(16).slice(2, 8)}`);
      const ol = layout(r);
      execFileSync("bash", ["-c", layoutScript(ol, "p/s")], { env });
      writeFileSync(ol.helper, DEPLOY_HELPER);
      writeFileSync(ol.ecosystem, renderEcosystem({ root: r, name: "app", script: "dist/server.js", port: 3000, instances: 1 }));
      mkdirSync(path.join(ol.current, "dist"), { recursive: true });
      writeFileSync(path.join(ol.current, "dist", "server.js"), "// the old build\n");
      writeFileSync(path.join(ol.current, ".env"), 'DATABASE_URL="file:/srv/old.db"\nexport GREETING=hello # from the old flow\n');
      return ol;
    };
    const jlist = (mode: string, cwd: string, before = "") => {
      const f = path.join(tmp, "jlist.json");
      writeFileSync(f, before + JSON.stringify([{ name: "app", pm2_env: { exec_mode: mode, pm_cwd: cwd } }]));
      return f;
    };
    const outOfDate = "\n>>>> In-memory PM2 is out-of-date, do:\n>>>> $ pm2 update\nIn memory PM2 version: 5.4.3\nLocal PM2 version: 6.0.14\n\n";
    const run = (ol: ReturnType<typeof layout>, jl: string) => {
      const text = ["set -euo pipefail", assignments({ ...layoutVars(ol), HEALTH_PATH: "/health", MAX_ENTRIES: DEFAULT_MAX_ENTRIES }), RELEASE_LIB,
        `takeover "$ROOT" "$CURRENT" "$RELEASES" app`].join("\n");
      return spawnSync("bash", ["-c", text], { env: { ...env, PM2_JLIST: jl }, encoding: "utf8" });
    };

    it("keeps current/ whole as a release never pruned, carries its .env, and links current to it", () => {
      const ol = oldRoot();
      const r = run(ol, jlist("cluster_mode", ol.current));
      assert.equal(r.status, 0, r.stderr);
      const id = readlinkSync(ol.current).replace("releases/", "");
      assert.match(id, /^[0-9a-f]{12}$/);
      const kept = `${ol.releases}/${id}`;
      assert.equal(readFileSync(`${kept}/dist/server.js`, "utf8"), "// the old build\n");
      assert.equal(readFileSync(`${kept}/REVISION`, "utf8").trim(), id);
      assert.ok(existsSync(`${kept}/.keep`) && existsSync(`${kept}/.migrated`));
      assert.equal(readFileSync(ol.takeoverEnv, "utf8"), 'DATABASE_URL="file:/srv/old.db"\nGREETING="hello"\n');
      assert.equal(statSync(ol.takeoverEnv).mode & 0o777, 0o600);
      assert.match(r.stdout, /takeover: carried .*\.env.*: DATABASE_URL GREETING \(names only/);
      assert.equal(JSON.parse(readFileSync(ol.revisionsLog, "utf8").trim()).result, "takeover");
      // prune keeps it however old it is
      const p = spawnSync("bash", ["-c", ["set -euo pipefail", assignments(layoutVars(ol)), RELEASE_LIB,
        `prune "$RELEASES" 1 aaaaaaaaaaaa bbbbbbbbbbbb "$INCOMING_DIR"`].join("\n")], { env, encoding: "utf8" });
      assert.equal(p.status, 0, p.stderr);
      assert.ok(existsSync(kept));
    });

    it("refuses an app PM2 runs in fork mode, or from another folder, changing nothing", () => {
      for (const [mode, cwd, expected] of [
        ["fork_mode", "", /PM2 runs app in fork_mode .*cannot switch to without a restart\. Nothing was changed/],
        ["cluster_mode", "/srv/elsewhere", /PM2 runs an app named app from \/srv\/elsewhere, not from .*; nothing was changed/],
      ] as const) {
        for (const before of ["", outOfDate]) {
          const ol = oldRoot();
          const r = run(ol, jlist(mode, cwd || ol.current, before));
          assert.equal(r.status, 1, r.stdout);
          assert.match(r.stderr, expected);
          assert.ok(!existsSync(ol.takeoverEnv));
          assert.equal(readFileSync(path.join(ol.current, "dist", "server.js"), "utf8"), "// the old build\n");
          assert.throws(() => readlinkSync(ol.current), "current is still the folder");
        }
      }
    });

    it("refuses, changing nothing, when PM2's process list cannot be read", () => {
      const ol = oldRoot();
      const f = path.join(tmp, "jlist-garbage.txt");
      writeFileSync(f, "[PM2][ERROR] Permission denied\n");
      const r = run(ol, f);
      assert.equal(r.status, 1, r.stdout);
      assert.match(r.stderr, /pm2 jlist printed no process list/);
      assert.match(r.stderr, /takeover: could not read PM2's process list; nothing was changed\. Run pm2 jlist on the VPS/);
      assert.ok(!existsSync(ol.takeoverEnv));
      assert.throws(() => readlinkSync(ol.current), "current is still the folder");
    });
  });

  describe("migrate and its backup, for real", () => {
    it("runs the command in the release with the app's environment, then marks it migrated", () => {
      const dir = `${l.releases}/m00000000001`;
      mkdirSync(dir, { recursive: true });
      writeFileSync(`${dir}/REVISION`, "m00000000001\n");
      const r = phase(`migrate ${quote("bash -c 'echo \"$RELEASE_ID $NODE_ENV\" > migrated-by.txt'")} "${dir}" "$MIGRATE_LOG"`);
      assert.equal(r.status, 0, r.stderr);
      assert.equal(readFileSync(`${dir}/migrated-by.txt`, "utf8"), "m00000000001 production\n");
      assert.ok(existsSync(`${dir}/.migrated`));
    });
    it("a failing command fails the phase, naming the command and the log; nothing is marked migrated", () => {
      const dir = `${l.releases}/m00000000002`;
      mkdirSync(dir, { recursive: true });
      const r = phase(`migrate ${quote("bash -c 'echo broken >&2; exit 3'")} "${dir}" "$MIGRATE_LOG"`);
      assert.equal(r.status, 1);
      assert.match(r.stderr, /error: migration failed: bash -c 'echo broken >&2; exit 3' \(output in .*migrate\.log\)/);
      assert.ok(!existsSync(`${dir}/.migrated`));
      assert.match(readFileSync(l.migrateLog, "utf8"), /broken/);
    });
    it("backup auto copies the SQLite database the app's DATABASE_URL names, and keeps twice KEEP", () => {
      const db = path.join(tmp, "app.db");
      writeFileSync(db, "sqlite bytes");
      writeFileSync(l.sharedEnv, `DATABASE_URL=${JSON.stringify(`file:${db}`)}\n`);
      const dir = `${l.releases}/m00000000003`;
      mkdirSync(dir, { recursive: true });
      for (let i = 0; i < 3; i++) {
        const r = phase(`backup auto "$BACKUPS" b0000000000${i} "${dir}" 1`);
        assert.equal(r.status, 0, r.stderr);
        assert.match(r.stdout, /^backup: .*app\.db -> .*\.db$/m);
      }
      const kept = execFileSync("ls", [l.backups], { encoding: "utf8" }).trim().split("\n");
      assert.equal(kept.length, 2, kept.join(" "));
      assert.equal(readFileSync(path.join(l.backups, kept[kept.length - 1]), "utf8"), "sqlite bytes");
      rmSync(l.sharedEnv, { force: true });
    });
  });

  describe("finish: prune", () => {
    it("keeps the newest KEEP releases, and always the live and the previous one", () => {
      const ids = ["r01", "r02", "r03", "r04", "r05"].map((id) => id.padEnd(12, "0"));
      rmSync(l.releases, { recursive: true, force: true });
      mkdirSync(l.releases);
      ids.forEach((id, i) => {
        mkdirSync(`${l.releases}/${id}`);
        execFileSync("touch", ["-d", `2026-01-0${i + 1}`, `${l.releases}/${id}`]);
      });
      // r01 (oldest) is the previous one: kept although older than the newest two.
      const r = phase(`prune "$RELEASES" 2 ${ids[4]} ${ids[0]} "$INCOMING_DIR"`);
      assert.equal(r.status, 0, r.stderr);
      assert.deepEqual(execFileSync("ls", [l.releases], { encoding: "utf8" }).trim().split("\n"), [ids[0], ids[3], ids[4]]);
      assert.match(r.stdout, /pruned release r0200/);
    });
  });

  describe("revert", () => {
    it("points current back at the previous release and reloads it", () => {
      for (const id of ["old000000000", "new000000000"]) mkdirSync(`${l.releases}/${id}`, { recursive: true });
      phase(`point_current "$ROOT" "$CURRENT" new000000000`);
      rmSync(`${tmp}/pm2-calls`, { force: true });
      const r = phase(`revert "$ROOT" "$CURRENT" "$RELEASES" old000000000 "$ECOSYSTEM" app "$PM2_LOG"`);
      assert.equal(r.status, 0, r.stderr);
      assert.equal(readlinkSync(l.current), "releases/old000000000");
      assert.match(r.stderr, /reverted: current -> old000000000, reloaded/);
      assert.equal(calls(), `pm2 startOrReload ${l.ecosystem} --only app --update-env\n`);
    });
    it("with no previous release, stops the app", () => {
      rmSync(`${tmp}/pm2-calls`, { force: true });
      const r = phase(`revert "$ROOT" "$CURRENT" "$RELEASES" "" "$ECOSYSTEM" app "$PM2_LOG"`);
      assert.equal(r.status, 0, r.stderr);
      assert.ok(!existsSync(l.current));
      assert.equal(calls(), "pm2 delete app\n");
    });
  });

  describe("the whole release script, with a fake pm2", () => {
    // Asynchronous: the live app's stand-in is served by this process, which must not block.
    const deploy = (id: string, bytes: Buffer, port: number, fleet?: FleetPhase): Promise<Run> => {
      const sha = sha256Of(bytes);
      if (!fleet || fleet.phase === "stage") writeFileSync(incomingArtifact(root, sha), bytes);
      const text = releaseScript({
        kind: "deploy", root, stack: "p/s", releaseId: id, appName: "app", script: "dist/server.js", port,
        healthPath: "/health", healthTimeout: 2, healthSettle: 1, keepReleases: 5, migrate: "", backup: "", lockTimeout: 5, source: "pulumi up",
        sha256: sha, incoming: incomingArtifact(root, sha), ...(fleet ? { fleet } : {}),
      });
      const file = path.join(tmp, `release-${id}-${fleet?.phase ?? "all"}.sh`);
      writeFileSync(file, text);
      return new Promise((resolve) => {
        const child = spawn("bash", [file], { env, stdio: ["ignore", "pipe", "pipe"] });
        let stdout = "";
        let stderr = "";
        child.stdout.setEncoding("utf8").on("data", (d: string) => (stdout += d));
        child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d));
        child.on("close", (status) => resolve({ status, stdout, stderr }));
      });
    };

    it("takes a release live: preflight on a spare port, switch, reload, health, record, RESULT", async () => {
      rmSync(l.current, { force: true });
      const live = await serveHealth("liveaaaaaaaa");
      try {
        const r = await deploy("liveaaaaaaaa", appArchive(tmp, "liveaaaaaaaa"), live.port);
        assert.equal(r.status, 0, r.stdout + r.stderr);
        assert.match(r.stdout, /^step preflight\s+[\d.]+s$/m);
        assert.match(r.stdout, /^RESULT \{"releaseId":"liveaaaaaaaa","previousReleaseId":""/m);
        assert.equal(readlinkSync(l.current), "releases/liveaaaaaaaa");
        assert.match(calls(), /pm2 startOrReload .* --only app --update-env/);
        const last = readFileSync(l.revisionsLog, "utf8").trim().split("\n").pop() as string;
        assert.deepEqual({ ...JSON.parse(last), time: "t" }, { time: "t", releaseId: "liveaaaaaaaa", previousReleaseId: "", result: "ok", source: "pulumi up" });
        // It went live and answered healthy there: a later rollback to it needs no settle window.
        assert.ok(existsSync(path.join(l.releases, "liveaaaaaaaa", ".served")));
        const settle = phase(`settle_for ${quote(path.join(l.releases, "liveaaaaaaaa"))} 5`);
        assert.equal(settle.stdout.trim(), "0");
        assert.match(settle.stderr, /preflight: liveaaaaaaaa went live before with this \.env and ecosystem: no settle window this time/);
        // Another .env: the window again.
        const envBefore = existsSync(l.sharedEnv) ? readFileSync(l.sharedEnv) : undefined;
        writeFileSync(l.sharedEnv, "CHANGED=1\n");
        assert.equal(phase(`settle_for ${quote(path.join(l.releases, "liveaaaaaaaa"))} 5`).stdout.trim(), "5");
        if (envBefore === undefined) rmSync(l.sharedEnv);
        else writeFileSync(l.sharedEnv, envBefore);
      } finally {
        live.close();
      }
    });

    it("reverts after the switch when the live health check fails: current back, failure recorded", async () => {
      // The live port keeps answering as the old release: the new one never shows up there.
      const live = await serveHealth("liveaaaaaaaa");
      try {
        rmSync(`${tmp}/pm2-calls`, { force: true });
        const r = await deploy("nextbbbbbbbb", appArchive(tmp, "nextbbbbbbbb"), live.port);
        assert.equal(r.status, 1, r.stdout + r.stderr);
        assert.match(r.stderr, /error: the live app did not answer healthy as release nextbbbbbbbb/);
        assert.match(r.stderr, /release nextbbbbbbbb failed at step health \(exit 1\)/);
        assert.match(r.stderr, /reverted: current -> liveaaaaaaaa, reloaded/);
        assert.equal(readlinkSync(l.current), "releases/liveaaaaaaaa");
        assert.equal(calls().split("\n").filter((c) => c.startsWith("pm2 startOrReload")).length, 2, calls());
        const last = JSON.parse(readFileSync(l.revisionsLog, "utf8").trim().split("\n").pop() as string);
        assert.equal(last.result, "failed:health");
        assert.equal(last.previousReleaseId, "liveaaaaaaaa");
        assert.ok(!existsSync(path.join(l.releases, "nextbbbbbbbb", ".served")), "a reverted release counts as served");
        assert.equal(phase(`settle_for ${quote(path.join(l.releases, "nextbbbbbbbb"))} 5`).stdout.trim(), "5");
      } finally {
        live.close();
      }
    });

    it("a fleet host's phases, one command each: stage and preflight touch nothing live, publish needs the preflight", async () => {
      const live = await serveHealth("fleetccccccc");
      const fleet = (phase: FleetPhase["phase"]): FleetPhase => ({ phase, host: "10.0.0.12:22", leaseKey: "key1", leaseTtl: 600 });
      const bytes = appArchive(tmp, "fleetccccccc");
      try {
        const before = readlinkSync(l.current);
        const early = await deploy("fleetccccccc", bytes, live.port, fleet("publish"));
        assert.equal(early.status, 1);
        assert.match(early.stderr, /error: release fleetccccccc is not staged on 10\.0\.0\.12:22/);
        assert.match(early.stderr, /release fleetccccccc failed at step lock on host 10\.0\.0\.12:22 \(exit 1\)/);
        const stage = await deploy("fleetccccccc", bytes, live.port, fleet("stage"));
        assert.equal(stage.status, 0, stage.stdout + stage.stderr);
        assert.match(stage.stdout, /^PHASE \{"phases":"stage","releaseId":"fleetccccccc","host":"10\.0\.0\.12:22","steps":\[\{"name":"lock"/m);
        assert.match(readFileSync(l.leaseFile, "utf8"), /^key1 p\/s fleetccccccc \d+ stage /);
        assert.equal(readlinkSync(l.current), before);
        const unchecked = await deploy("fleetccccccc", bytes, live.port, fleet("publish"));
        assert.equal(unchecked.status, 1);
        assert.match(unchecked.stderr, /has not passed preflight on 10\.0\.0\.12:22/);
        assert.equal(existsSync(l.leaseFile), false, "a failed phase ends the host's lease");
        const pre = await deploy("fleetccccccc", bytes, live.port, fleet("preflight"));
        assert.equal(pre.status, 0, pre.stdout + pre.stderr);
        assert.match(pre.stdout, /^step preflight\s+[\d.]+s$/m);
        assert.equal(readlinkSync(l.current), before);
        const pub = await deploy("fleetccccccc", bytes, live.port, fleet("publish"));
        assert.equal(pub.status, 0, pub.stdout + pub.stderr);
        assert.match(pub.stdout, /^RESULT \{"releaseId":"fleetccccccc"/m);
        assert.equal(readlinkSync(l.current), "releases/fleetccccccc");
        assert.equal(existsSync(l.leaseFile), false, "publish ends the lease");
      } finally {
        live.close();
      }
    });
  });
});

/** `bash -c` text that sources the library with the layout (for a phase run under a lock held by the caller). */
function phaseCommand(l: ReturnType<typeof layout>): string {
  const file = path.join(path.dirname(l.root), "lib.sh");
  writeFileSync(file, [assignments(layoutVars(l)), RELEASE_LIB].join("\n"));
  return `source ${file};`;
}

/** tar run in `dir` with `args` (the archive is a.tgz there); its bytes. */
function tarWith(dir: string, args: string[]): Buffer {
  execFileSync("tar", args, { cwd: dir, stdio: ["ignore", "ignore", "ignore"] });
  return readFileSync(path.join(dir, "a.tgz"));
}

/** A minimal valid artifact. */
function goodArchive(tmp: string, name: string): Buffer {
  const d = path.join(tmp, `good-${name}`);
  mkdirSync(path.join(d, "dist"), { recursive: true });
  writeFileSync(path.join(d, "package.json"), `{"name":"${name}"}`);
  writeFileSync(path.join(d, "dist", "server.js"), "");
  return packDirectory({ root: d, entries: ["dist", "package.json"] });
}

/** An artifact whose server answers /health with its release id on PORT, and brings (empty) node_modules. */
function appArchive(tmp: string, id: string): Buffer {
  const d = path.join(tmp, `app-${id}`);
  mkdirSync(path.join(d, "dist"), { recursive: true });
  mkdirSync(path.join(d, "node_modules"), { recursive: true });
  writeFileSync(path.join(d, "package.json"), "{}");
  writeFileSync(path.join(d, "dist", "server.js"), `require("http").createServer((q, s) => s.end(JSON.stringify({ release: process.env.RELEASE_ID })))` +
    `.listen(Number(process.env.PORT), "127.0.0.1");\n`);
  return packDirectory({ root: d, entries: ["dist", "node_modules", "package.json"] });
}

/** A stand-in for the live app: answers /health as release `id`. */
async function serveHealth(id: string): Promise<{ port: number; close: () => void }> {
  const http = await import("node:http");
  const srv = http.createServer((_q, s) => s.end(JSON.stringify({ release: id })));
  await new Promise<void>((r) => srv.listen(0, "127.0.0.1", r));
  const port = (srv.address() as { port: number }).port;
  return { port, close: () => srv.close() };
}

// npm run status's pure parts: the remote script is valid bash, and the answer is read into drift,
// health, processes and their problems, each with its fix.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { describe, it } from "node:test";
import { layout } from "../infra/paths";
import { assertValidBash } from "../test/support/shell";
import { parseStatus, renderStatus, statusScript } from "./status";

const A = "aaaaaaaaaaaa";
const B = "bbbbbbbbbbbb";
const now = Date.parse("2026-12-02T10:00:00Z");
const answer = (live: string, health = `200 12 {"status":"ok","release":"${live}"}`) => [
  `LIVE ${live}`,
  `PM2 {"pid":101,"status":"online","uptime":${now - 60_000},"restarts":1,"cpu":3,"memory":${64 * 2 ** 20}}`,
  `PM2 {"pid":102,"status":"errored","uptime":${now - 5_000},"restarts":7,"cpu":0,"memory":0}`,
  `HEALTH ${health}`,
  "DISK 2048000 4096000",
  "LEASE k1 p/prod bbbbbbbbbbbb 1800000000 stage 2026-12-02T09:59:00Z",
  `REV {"time":"2026-12-02T09:00:00Z","releaseId":"${A}","previousReleaseId":"","result":"ok","source":"pulumi up"}`,
  `REV {"time":"2026-12-02T09:30:00Z","releaseId":"${B}","previousReleaseId":"${A}","result":"failed:health","source":"pulumi up"}`,
].join("\n");

describe("npm run status", () => {
  it("its remote script passes bash -n and shellcheck", () => {
    assertValidBash(statusScript(layout("/srv/api"), "api's app", "http://127.0.0.1:3000/health"), "status");
  });

  // statusScript run here with a `pm2` on PATH that prints TEXT for jlist (none: no pm2 at all, only
  // node and the system's tools on PATH), read by parseStatus.
  const statusWithPm2 = (text: string | undefined) => {
    const dir = mkdtempSync(path.join(tmpdir(), "status-"));
    try {
      writeFileSync(path.join(dir, "list"), text ?? "");
      if (text !== undefined) {
        writeFileSync(path.join(dir, "pm2"), `#!/usr/bin/env bash\ncat ${JSON.stringify(path.join(dir, "list"))}\n`);
        chmodSync(path.join(dir, "pm2"), 0o755);
      }
      const PATH = text !== undefined ? `${dir}:${process.env.PATH}` : `${dir}:${path.dirname(process.execPath)}:/usr/bin:/bin`;
      assert.equal(spawnSync("bash", ["-c", "command -v pm2"], { env: { PATH } }).status === 0, text !== undefined, "pm2 on PATH as the test means");
      const r = spawnSync("bash", ["-c", statusScript(layout(path.join(dir, "root")), "api", "http://127.0.0.1:9/health")],
        { encoding: "utf8", env: { ...process.env, PATH } });
      return { s: parseStatus("h:22", r.stdout, "", "prod", now), out: r.stdout + r.stderr };
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  };

  it("its remote script reads PM2's list when PM2 prints a version warning around it", () => {
    const proc = { name: "api", pid: 4242, pm2_env: { status: "online", pm_uptime: now - 1000, restart_time: 0 }, monit: { cpu: 1, memory: 2 ** 20 } };
    const warning = "\n>>>> In-memory PM2 is out-of-date, do:\n>>>> $ pm2 update\nIn memory PM2 version: 5.4.3\nLocal PM2 version: 6.0.14\n\n";
    const { s, out } = statusWithPm2(`${warning}${JSON.stringify([proc, { ...proc, name: "other" }])}${warning}`);
    assert.deepEqual(s.processes.map((p) => p.pid), [4242], out);
    assert.equal(s.pm2Error, "");
  });

  it("says so when PM2's list cannot be read, instead of 'no process'", () => {
    const { s, out } = statusWithPm2("[PM2][ERROR] Permission denied\n");
    assert.deepEqual(s.processes, [], out);
    assert.ok(s.problems.some((p) => /^pm2: could not read PM2's process list on h:22 \(pm2 jlist printed no process list: .*Permission denied.*\); run pm2 jlist there/.test(p)), s.problems.join("\n"));
    assert.ok(!s.problems.some((p) => /no process of the app runs/.test(p)));
  });

  it("says so when pm2 is not on PATH over SSH, in doctor's words, with the fix", () => {
    const { s, out } = statusWithPm2(undefined);
    assert.deepEqual(s.processes, [], out);
    assert.ok(s.problems.some((p) => /^pm2: h:22: pm2 is not on PATH for \S+ in non-interactive SSH sessions \(for node and pm2: put the PATH line at the top of ~\/\.bashrc\); npm install -g pm2$/.test(p)), s.problems.join("\n"));
    assert.ok(!s.problems.some((p) => /no process of the app runs/.test(p)));
  });

  it("reads processes, health, disk, the holder and the activations, newest first", () => {
    const s = parseStatus("10.0.0.11:22", answer(A), A, "prod", now);
    assert.equal(s.drift, false);
    assert.deepEqual(s.processes[0], { pid: 101, status: "online", uptimeSeconds: 60, restarts: 1, cpu: 3, memoryMb: 64 });
    assert.deepEqual(s.health, { answer: `200 {"status":"ok","release":"${A}"}`, ms: 12, ok: true });
    assert.deepEqual(s.disk, { availableMb: 2000, totalMb: 4000 });
    assert.match(s.holder, /^lease: k1 p\/prod/);
    assert.deepEqual(s.activations.map((r) => r.releaseId), [B, A]);
    assert.deepEqual(s.problems, ["pm2: 1 of 2 processes are not online (errored)"]);
    assert.match(renderStatus(s), /^ {2}pm2 {7}pid/m);
  });

  it("calls out drift with the command that converges, and an unhealthy answer", () => {
    const s = parseStatus("10.0.0.11:22", answer(B, "503 40 {\"status\":\"down\"}"), A, "prod", now);
    assert.equal(s.drift, true);
    assert.match(s.problems[0], new RegExp(`^drift: 10\\.0\\.0\\.11:22 runs ${B} but the stack records ${A} .*: npm run pulumi -- up -s prod --replace 'urn:pulumi:prod::vps-release::vps:deploy:Release\\$command:remote:Command::release-activate'$`));
    assert.match(s.problems[1], /^unhealthy: 10\.0\.0\.11:22 answers 503/);
    assert.match(renderStatus(s), /DRIFT/);
  });
});

describe("the command that converges a drifted host", () => {
  it("replaces the activation, or on a fleet the host's preflight and publish", async () => {
    const { convergeCommand } = await import("./status");
    assert.equal(convergeCommand("org/vps-release/prod", "10.0.0.12:22"),
      "npm run pulumi -- up -s prod --replace 'urn:pulumi:prod::vps-release::vps:deploy:FleetRelease$command:remote:Command::release-10.0.0.12-22-preflight' " +
      "--replace 'urn:pulumi:prod::vps-release::vps:deploy:FleetRelease$command:remote:Command::release-10.0.0.12-22-publish'");
  });
});

describe("npm run logs and npm run exec: their remote commands", () => {
  it("pass bash -n and shellcheck, and quote every argument as data", async () => {
    const { logsScript } = await import("./logs");
    const { execScript } = await import("./exec");
    assertValidBash(logsScript("/srv/api/shared/logs/out.log", 100, true), "logs");
    const text = execScript("/srv/api", ["sh", "-c", "echo \"$DATABASE_URL\"; exit 3", "it's $(id)"]);
    // Single-quoted `$` is the point here (data, not expansion), as in every generated script's header.
    assertValidBash(`# shellcheck disable=SC2016\n${text}`, "exec");
    assert.match(text, /exec "\$dir" -- sh -c 'echo "\$DATABASE_URL"; exit 3' 'it'\\''s \$\(id\)'$/);
  });
});

describe("npm run restore: its remote script", () => {
  it("passes bash -n and shellcheck, with the SQLite copy or an app:restore command", async () => {
    const { restoreScript } = await import("./restore");
    assertValidBash(`# shellcheck disable=SC2016\n${restoreScript("/srv/api", "api", "aaaaaaaaaaaa-1.db", "bbbbbbbbbbbb", "", 120)}`, "restore");
    const pg = restoreScript("/srv/api", "api", "b.dump", "bbbbbbbbbbbb", "pg_restore --clean -d \"$DATABASE_URL\" \"$BACKUP_FILE\"", 120);
    assertValidBash(`# shellcheck disable=SC2016\n${pg}`, "restore pg");
    assert.match(pg, /BACKUP_FILE=\/srv\/api\/backups\/b\.dump node /);
  });
});

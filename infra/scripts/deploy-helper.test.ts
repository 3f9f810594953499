// The deploy helper (deploy-helper.js) against a local HTTP server: the health rule, the poll's
// deadline and last status, a watched process that exits; and the revisions.log reader.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createServer, Server } from "node:http";
import { AddressInfo } from "node:net";
import { after, before, describe, it } from "node:test";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { concurrentReload, formatRevision, isHealthy, parsePm2List, notification, parseRevisions, pollHealth, previousOf } from "./deploy-helper";

describe("deploy helper", () => {
  let srv: Server;
  let base: string;
  let answer: { status: number; body: string } = { status: 200, body: "{}" };
  before(async () => {
    srv = createServer((_q, s) => {
      s.statusCode = answer.status;
      s.end(answer.body);
    });
    await new Promise<void>((r) => srv.listen(0, "127.0.0.1", r));
    base = `http://127.0.0.1:${(srv.address() as AddressInfo).port}`;
  });
  after(() => srv.close());

  it("reads pm2 jlist's process list around the lines PM2 prints before or after it", () => {
    const list = [{ name: "api", pm2_env: { exec_mode: "cluster_mode", pm_cwd: "/srv/api/current" } }];
    const json = JSON.stringify(list);
    // PM2's CLI prints its version warning asynchronously (lib/binaries/CLI.js beginCommandProcessing):
    // before or after the list, which jlist writes without a newline.
    const outOfDate = "\n>>>> In-memory PM2 is out-of-date, do:\n>>>> $ pm2 update\nIn memory PM2 version: 5.4.3\nLocal PM2 version: 6.0.14\n\n";
    const spawning = "[PM2] Spawning PM2 daemon with pm2_home=/home/deploy/.pm2\n[PM2] PM2 Successfully daemonized\n";
    for (const text of [json, `${json}\n`, outOfDate + json, json + outOfDate, spawning + json, spawning + outOfDate + json]) {
      assert.deepEqual(parsePm2List(text), list, JSON.stringify(text));
    }
    assert.deepEqual(parsePm2List(""), []);
    assert.deepEqual(parsePm2List("[]"), []);
    assert.throws(() => parsePm2List("[PM2][ERROR] Daemon not launched\n"), /pm2 jlist printed no process list: .*Daemon not launched/);
    assert.throws(() => parsePm2List('{"not":"a list"}'), /no process list/);
  });

  it("the health rule: 200, and a JSON release, when there is one, naming the release", () => {
    assert.equal(isHealthy(200, '{"release":"abc"}', "abc"), true);
    assert.equal(isHealthy(200, '{"status":"ok"}', "abc"), true);
    assert.equal(isHealthy(200, "OK", "abc"), true);
    assert.equal(isHealthy(200, '{"release":"old"}', "abc"), false);
    assert.equal(isHealthy(200, '{"release":"old"}', ""), true);
    assert.equal(isHealthy(503, '{"release":"abc"}', "abc"), false);
  });

  it("polls until healthy and says after how long, with the body", async () => {
    answer = { status: 200, body: '{"release":"abc"}' };
    const r = await pollHealth({ url: `${base}/health`, want: "abc", seconds: 2 });
    assert.equal(r.ok, true);
    assert.match(r.line, /^healthy after \d+\.\ds: http:\/\/127\.0\.0\.1:\d+\/health \{"release":"abc"\}$/);
  });

  it("gives up at the deadline, naming the time waited and the last answer", async () => {
    answer = { status: 200, body: '{"release":"old"}' };
    const t0 = Date.now();
    const r = await pollHealth({ url: `${base}/health`, want: "abc", seconds: 0.5, intervalMs: 50 });
    assert.equal(r.ok, false);
    assert.ok(Date.now() - t0 < 2000);
    assert.match(r.line, /: not healthy after 0\.5s; waited 0\.\ds; last: status 200, body "\{\\"release\\":\\"old\\"\}" \(want release "abc"\)$/);
  });

  it("stops as soon as the watched process has exited", async () => {
    const child = spawn("true");
    await new Promise((r) => child.on("exit", r));
    const r = await pollHealth({ url: "http://127.0.0.1:1/health", want: "abc", seconds: 30, pid: child.pid });
    assert.equal(r.ok, false);
    assert.match(r.line, /the process exited before it became healthy; waited 0\.\ds; last: connect ECONNREFUSED/);
  });

  it("counts a zombie as exited: the release script reaps its preflight run only when it waits for it", async () => {
    // bash starts a short sleep, then becomes a long sleep that never reaps it: a zombie.
    const parent = spawn("bash", ["-c", "sleep 0.2 & echo $!; exec sleep 10"], { stdio: ["ignore", "pipe", "ignore"] });
    const pid = await new Promise<number>((resolve) => parent.stdout.once("data", (d: Buffer) => resolve(Number(d.toString().trim()))));
    try {
      const t0 = Date.now();
      const r = await pollHealth({ url: "http://127.0.0.1:1/health", want: "abc", seconds: 8, pid });
      assert.equal(r.ok, false);
      assert.match(r.line, /the process exited before it became healthy/);
      assert.ok(Date.now() - t0 < 3000, `took ${Date.now() - t0} ms: the zombie counted as alive`);
    } finally {
      parent.kill();
    }
  });


  it("a process that resets connections on its way out, within the settle window, is reported as exited", async () => {
    // Answers healthy once, then resets every connection and exits 300 ms later: the poll sees a
    // reset before the exit, as with a release that calls process.exit while serving.
    const app = [
      "let n = 0;",
      "const srv = require('http').createServer((q, s) => {",
      "  if (n++ === 0) { s.end('{\"release\":\"abc\"}'); setTimeout(() => process.exit(1), 300); return; }",
      "  q.socket.destroy();",
      "});",
      "srv.listen(0, '127.0.0.1', () => console.log(srv.address().port));",
    ].join("\n");
    const child = spawn(process.execPath, ["-e", app], { stdio: ["ignore", "pipe", "ignore"] });
    const port = await new Promise<number>((resolve) => child.stdout.once("data", (d: Buffer) => resolve(Number(d.toString().trim()))));
    try {
      const r = await pollHealth({ url: `http://127.0.0.1:${port}/health`, want: "abc", seconds: 5, settle: 3, pid: child.pid });
      assert.equal(r.ok, false);
      assert.match(r.line, /the process exited \d+\.\ds after it answered healthy, within the 3s settle window \(app:healthSettle\)/);
    } finally {
      child.kill();
    }
  });
  it("reads revisions.log in both formats, and finds what a release replaced", () => {
    const text = [
      "2026-11-01T10:00:00Z\taaaaaaaaaaaa\t-\tok\tpulumi up",
      "2026-11-02T10:00:00Z\tbbbbbbbbbbbb\taaaaaaaaaaaa\tok\tpulumi up",
      formatRevision({ time: "2026-11-03T10:00:00Z", releaseId: "bbbbbbbbbbbb", previousReleaseId: "aaaaaaaaaaaa", result: "ok", source: "env change" }),
      formatRevision({ time: "2026-11-04T10:00:00Z", releaseId: "cccccccccccc", previousReleaseId: "bbbbbbbbbbbb", result: "failed:health", source: 'a "quoted"\tsource' }),
      '{"time":"cut by a full di',
    ].join("\n");
    const r = parseRevisions(text);
    assert.equal(r.length, 4);
    assert.deepEqual(r[0], { time: "2026-11-01T10:00:00Z", releaseId: "aaaaaaaaaaaa", previousReleaseId: "", result: "ok", source: "pulumi up" });
    assert.equal(r[3].source, 'a "quoted"\tsource');
    assert.equal(previousOf(r, "bbbbbbbbbbbb"), "aaaaaaaaaaaa");
    assert.equal(previousOf(r, "cccccccccccc"), "", "a failed activation replaced nothing");
  });

  it("notification: Slack's text and every field; a failure names the step and carries its log's tail", () => {
    const f = { stack: "p/prod", host: "", releaseId: "bbbbbbbbbbbb", previousReleaseId: "aaaaaaaaaaaa", source: "pulumi up", result: "ok",
      steps: [{ name: "verify", seconds: 0.5 }, { name: "switch", seconds: 1.25 }] };
    const ok = notification(f, "ignored");
    assert.equal(ok.text, "p/prod: release bbbbbbbbbbbb is live (previous aaaaaaaaaaaa; pulumi up; 1.75 s)");
    assert.equal(ok.seconds, 1.75);
    assert.equal("logTail" in ok, false);
    const bad = notification({ ...f, host: "10.0.0.12:22", result: "failed:preflight" }, "Error: boom");
    assert.equal(bad.failedStep, "preflight");
    assert.equal(bad.text, "p/prod on 10.0.0.12:22: release bbbbbbbbbbbb failed at step preflight; aaaaaaaaaaaa keeps serving (pulumi up)\n```\nError: boom\n```");
  });

  it("notify posts the message to the URL in the file, never prints the URL, and never fails", async () => {
    const tmp = mkdtempSync(path.join(tmpdir(), "notify-"));
    const got: string[] = [];
    const hook = createServer((q, s) => {
      let body = "";
      q.on("data", (d) => (body += d)).on("end", () => {
        got.push(`${q.url} ${body}`);
        s.end("ok");
      });
    });
    await new Promise<void>((r) => hook.listen(0, "127.0.0.1", r));
    try {
      const helper = path.join(__dirname, "deploy-helper.js");
      const urlFile = path.join(tmp, "url");
      writeFileSync(urlFile, `http://127.0.0.1:${(hook.address() as AddressInfo).port}/hook/secret-token\n`);
      writeFileSync(path.join(tmp, "log"), "line 1\nline 2\n");
      // STACK HOST ID PREV SOURCE RESULT STEPS_JSON, as release.lib.sh notify passes them.
      const fields = ["p/s", "", "b", "a", "pulumi up", "failed:migrate", "[]"];
      const r = await new Promise<{ code: number | null; out: string }>((resolve) => {
        const child = spawn("node", [helper, "/nonexistent", "notify", urlFile, path.join(tmp, "log"), ...fields], { stdio: ["ignore", "pipe", "pipe"] });
        let out = "";
        child.stdout.on("data", (d) => (out += d));
        child.stderr.on("data", (d) => (out += d));
        child.on("exit", (code) => resolve({ code, out }));
      });
      assert.equal(r.code, 0);
      assert.equal(r.out.trim(), "notify: sent (HTTP 200)");
      assert.equal(got.length, 1);
      assert.match(got[0], /^\/hook\/secret-token \{"text":"p\/s: release b failed at step migrate; a keeps serving/);
      assert.match(got[0], /"logTail":"line 1\\nline 2"/);
      // Unreachable: a warning, exit 0. No file: nothing at all.
      writeFileSync(urlFile, "http://127.0.0.1:9/nothing-listens\n");
      const down = spawnSync("node", [helper, "/nonexistent", "notify", urlFile, "", ...fields], { encoding: "utf8" });
      assert.equal(down.status, 0);
      assert.match(down.stdout, /^warning: notify: could not reach the webhook .*; the deploy is not affected/);
      assert.ok(!down.stdout.includes("nothing-listens"));
      const none = spawnSync("node", [helper, "/nonexistent", "notify", path.join(tmp, "absent"), "", ...fields], { encoding: "utf8" });
      assert.equal(none.status, 0);
      assert.equal(none.stdout, "");
    } finally {
      hook.close();
      rmSync(tmp, { recursive: true, force: true });
    }
  });
  describe("concurrentReload (pm2-reload: PM2's reload, both workers of a two-worker app at once)", () => {
    type Call = { action: string; name: unknown; envs: Record<string, unknown> };
    // A stand-in for PM2's _operate that records its calls and answers after `ms`, and a client that
    // knows the app's ids: the wiring only; the real reload runs in the e2e tests against PM2.
    const fake = (ids: unknown[], ms = 20) => {
      const calls: Call[] = [];
      let running = 0;
      let most = 0;
      const operate = function (action: string, name: unknown, envs: Record<string, unknown>, cb?: (e: unknown, r: unknown) => void) {
        calls.push({ action, name, envs });
        running++;
        most = Math.max(most, running);
        setTimeout(() => {
          running--;
          cb?.(null, [{ pm_id: name }]);
        }, ms);
      };
      const self = { Client: { getProcessIdByName: (_n: string, _f: boolean, cb: (e: unknown, ids: unknown[]) => void) => cb(null, ids) } };
      return { calls, operate, self, most: () => most };
    };
    const run = (f: ReturnType<typeof fake>, action: string, name: unknown, envs: Record<string, unknown> = {}, conf = {}) =>
      new Promise<{ err: unknown; ret: unknown }>((resolve) => {
        const patched = concurrentReload(f.operate, () => conf);
        patched.call(f.self, action, name, envs, (err: unknown, ret: unknown) => resolve({ err, ret }));
      });

    it("reloads the two workers at once, each by its numeric id, with its own copy of the env and the module conf merged", async () => {
      const f = fake([0, 1]);
      const envs = { updateEnv: true, current_conf: { x: 1 } };
      const { err, ret } = await run(f, "reloadProcessId", "api", envs, { extra: "y" });
      assert.equal(err, null);
      assert.deepEqual(f.calls.map((c) => c.name), [0, 1]);
      assert.equal(f.most(), 2);
      assert.notEqual(f.calls[0]!.envs, f.calls[1]!.envs);
      assert.deepEqual(f.calls[0]!.envs, { ...envs, extra: "y" });
      assert.deepEqual(ret, [{ pm_id: 0 }, { pm_id: 1 }]);
    });

    it("leaves everything else to PM2 as it is: other actions, one worker, three or more, ids by name 'all'", async () => {
      for (const [action, name, ids] of [["restartProcessId", "api", [0, 1]], ["reloadProcessId", "api", [0]],
        ["reloadProcessId", "api", [0, 1, 2]], ["reloadProcessId", "all", [0, 1]], ["reloadProcessId", "api", ["0", "1"]]] as const) {
        const f = fake([...ids]);
        await run(f, action, name);
        assert.deepEqual(f.calls.map((c) => [c.action, c.name]), [[action, name]], `${action} ${name} ${ids.join(",")}`);
      }
    });

    it("reports a failed worker after both have finished", async () => {
      const f = fake([0, 1]);
      const operate = function (action: string, name: unknown, envs: Record<string, unknown>, cb?: (e: unknown, r: unknown) => void) {
        f.operate(action, name, envs, (_e, r) => cb?.(name === 0 ? new Error("worker 0") : null, r));
      };
      const { err, ret } = await new Promise<{ err: unknown; ret: unknown }>((resolve) =>
        concurrentReload(operate).call(f.self, "reloadProcessId", "api", {}, (e: unknown, r: unknown) => resolve({ err: e, ret: r })));
      assert.equal((err as Error).message, "worker 0");
      assert.equal((ret as unknown[]).length, 2);
    });

    it("pm2-reload runs the pm2 on PATH as it is when that is not a link into a pm2 package", () => {
      const dir = mkdtempSync(path.join(tmpdir(), "pm2-shim-"));
      try {
        const shim = path.join(dir, "pm2");
        writeFileSync(shim, '#!/bin/sh\necho "shim $*"\nexit 3\n', { mode: 0o755 });
        const r = spawnSync(process.execPath, [path.join(__dirname, "deploy-helper.js"), "eco.js", "pm2-reload", shim, "api"], { encoding: "utf8" });
        assert.equal(r.status, 3);
        assert.equal(r.stdout.trim(), "shim startOrReload eco.js --only api --update-env");
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  });
});


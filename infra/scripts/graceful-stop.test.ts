// The workers' preload (ecosystem.ts WORKER_PRELOAD, with graceful-stop.js) in a real Node cluster,
// the way PM2 runs the app: a primary, two workers, SIGINT to one of them as PM2's reload sends it,
// under load and with requests in flight.
import assert from "node:assert/strict";
import { ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { request } from "node:http";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { after, before, describe, it } from "node:test";
import { freePort, startLoad } from "../../driver/local";
import { WORKER_PRELOAD } from "./ecosystem";

// The app: no signal handler unless APP_MODE=handler; /slow?ms=N answers after N ms.
const CLUSTER = `
const cluster = require("cluster");
if (cluster.isPrimary) {
  cluster.setupPrimary({ execArgv: process.env.PRELOAD ? ["--require", process.env.PRELOAD] : [] });
  const workers = [cluster.fork(), cluster.fork()];
  let n = 0;
  cluster.on("listening", () => { if (++n === 2) console.log(JSON.stringify({ ready: workers.map((w) => w.process.pid) })); });
  cluster.on("exit", (w, code, signal) => console.log(JSON.stringify({ exit: w.process.pid, code, signal })));
} else {
  if (process.env.APP_MODE === "handler") process.on("SIGINT", () => console.log(JSON.stringify({ handled: process.pid })));
  require("http").createServer((req, res) => {
    const ms = Number(new URL(req.url, "http://x").searchParams.get("ms") ?? "5");
    setTimeout(() => res.end(JSON.stringify({ release: "x", pid: process.pid })), ms);
  }).listen(Number(process.env.PORT), "127.0.0.1");
}
`;

interface Cluster {
  child: ChildProcess;
  pids: number[];
  events: Record<string, unknown>[];
  exited: (pid: number, ms: number) => Promise<Record<string, unknown> | undefined>;
}

describe("the graceful stop the workers preload", () => {
  let dir: string;
  const clusters: ChildProcess[] = [];
  before(() => {
    dir = mkdtempSync(path.join(tmpdir(), "graceful-stop-"));
    writeFileSync(path.join(dir, "preload.js"), WORKER_PRELOAD);
    writeFileSync(path.join(dir, "cluster.js"), CLUSTER);
  });
  after(() => {
    for (const c of clusters) c.kill("SIGKILL");
    rmSync(dir, { recursive: true, force: true });
  });

  const start = async (port: number, env: Record<string, string>): Promise<Cluster> => {
    const child = spawn(process.execPath, [path.join(dir, "cluster.js")], {
      env: { ...process.env, PORT: String(port), ...env }, stdio: ["ignore", "pipe", "inherit"],
    });
    clusters.push(child);
    const events: Record<string, unknown>[] = [];
    let buf = "";
    child.stdout!.setEncoding("utf8").on("data", (d: string) => {
      buf += d;
      for (let i; (i = buf.indexOf("\n")) >= 0; buf = buf.slice(i + 1)) events.push(JSON.parse(buf.slice(0, i)));
    });
    const until = async <T>(find: () => T | undefined, ms: number) => {
      for (const t0 = Date.now(); Date.now() - t0 < ms; await new Promise((r) => setTimeout(r, 20))) {
        const found = find();
        if (found !== undefined) return found;
      }
      return undefined;
    };
    const ready = await until(() => events.find((e) => e.ready), 10_000);
    assert.ok(ready, "the cluster never listened");
    return { child, pids: ready.ready as number[], events, exited: (pid, ms) => until(() => events.find((e) => e.exit === pid), ms) };
  };

  const slow = (port: number, ms: number) =>
    new Promise<number | string>((resolve) => {
      const req = request({ host: "127.0.0.1", port, path: `/slow?ms=${ms}`, agent: false, timeout: 10_000 }, (res) => {
        res.resume();
        res.on("end", () => resolve(res.statusCode ?? 0));
      });
      req.on("error", (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message));
      req.end();
    });

  // With and without the preload: what an app with no handler costs on a reload, and what it keeps.
  const stopOneUnderLoad = async (preload: boolean) => {
    const port = await freePort();
    const c = await start(port, preload ? { PRELOAD: path.join(dir, "preload.js") } : {});
    const load = await startLoad(`http://127.0.0.1:${port}/health`);
    // Round robin: two of these four are on the worker that gets the signal.
    const inFlight = [0, 1, 2, 3].map(() => slow(port, 600));
    await new Promise((r) => setTimeout(r, 200));
    const t0 = Date.now();
    process.kill(c.pids[0], "SIGINT");
    const exit = await c.exited(c.pids[0], 12_000);
    const seconds = (Date.now() - t0) / 1000;
    await new Promise((r) => setTimeout(r, 500));
    const stats = await load.stop();
    c.child.kill("SIGKILL");
    return { exit, seconds, stats, slow: await Promise.all(inFlight) };
  };

  it("an app with no handler of its own: a worker stopped under load answers what it holds and dies by the signal, 0 failed", async () => {
    const without = await stopOneUnderLoad(false);
    console.log(`without the preload: ${without.stats.failed} failed (${JSON.stringify(without.stats.errors)}), in-flight requests ${JSON.stringify(without.slow)}`);
    assert.ok(without.slow.some((s) => s !== 200), "the harm this guards against did not show: the test no longer exercises it");
    const r = await stopOneUnderLoad(true);
    console.log(`with the preload: ${r.stats.ok} answered, ${r.stats.failed} failed; the worker died ${r.seconds.toFixed(2)} s after SIGINT`);
    assert.deepEqual(r.slow, [200, 200, 200, 200], "a request in flight on the stopped worker failed");
    assert.equal(r.stats.failed, 0, JSON.stringify(r.stats));
    assert.ok(r.stats.ok > 20, JSON.stringify(r.stats));
    assert.equal(r.exit?.signal, "SIGINT", JSON.stringify(r.exit));
  });

  it("an app with its own handler is left to it; a second signal ends a stop at once", async () => {
    const port = await freePort();
    const own = await start(port, { PRELOAD: path.join(dir, "preload.js"), APP_MODE: "handler" });
    process.kill(own.pids[0], "SIGINT");
    assert.equal(await own.exited(own.pids[0], 1500), undefined, "the preload stopped a worker whose app handles SIGINT");
    assert.ok(own.events.some((e) => e.handled === own.pids[0]), "the app's handler did not run");
    own.child.kill("SIGKILL");

    const port2 = await freePort();
    const c = await start(port2, { PRELOAD: path.join(dir, "preload.js") });
    const held = [0, 1].map(() => slow(port2, 5000));
    await new Promise((r) => setTimeout(r, 200));
    process.kill(c.pids[0], "SIGINT");
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(c.events.find((e) => e.exit === c.pids[0]), undefined, "the first SIGINT did not wait for the request in flight");
    process.kill(c.pids[0], "SIGINT");
    const exit = await c.exited(c.pids[0], 1000);
    assert.equal(exit?.signal, "SIGINT", "a second SIGINT did not end the stop at once");
    c.child.kill("SIGKILL");
    await Promise.all(held);
  });

  it("outside a cluster worker (the preflight run, a script) SIGINT does what it always did", async () => {
    const child = spawn(process.execPath, ["--require", path.join(dir, "preload.js"), "-e",
      "require('http').createServer(() => {}).listen(0, '127.0.0.1', () => console.log('up'))"], { stdio: ["ignore", "pipe", "inherit"] });
    clusters.push(child);
    await new Promise<void>((r) => child.stdout!.once("data", () => r()));
    const t0 = Date.now();
    child.kill("SIGINT");
    const signal = await new Promise((r) => child.once("exit", (_c, s) => r(s)));
    assert.equal(signal, "SIGINT");
    assert.ok(Date.now() - t0 < 1000, `it took ${Date.now() - t0} ms`);
  });
});

// A steady load client, run as its own process during a deploy: half the requests on keep-alive
// connections, half on fresh ones. On SIGTERM (or after --seconds) it prints one JSON line:
// {"ok":N,"failed":N,"errors":{...},"releases":{"id":count},"firstFailureAt":ms|null}
import * as http from "node:http";

const url = new URL(process.argv[2] ?? "http://127.0.0.1:3000/health");
const seconds = Number(process.argv[3] ?? "0");
const concurrency = 4;
const started = Date.now();
const stats = { ok: 0, failed: 0, errors: {} as Record<string, number>, releases: {} as Record<string, number>, firstFailureAt: null as number | null };
const keepAlive = new http.Agent({ keepAlive: true, maxSockets: concurrency });
let stopping = false;

function fail(why: string) {
  stats.failed++;
  stats.errors[why] = (stats.errors[why] ?? 0) + 1;
  stats.firstFailureAt ??= Date.now() - started;
}

function one(agent: http.Agent | false): Promise<void> {
  return new Promise((resolve) => {
    const req = http.get(url, { agent, timeout: 5000 }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (d) => (body += d));
      res.on("end", () => {
        if (res.statusCode === 200) {
          stats.ok++;
          try {
            const r = String((JSON.parse(body) as { release?: unknown }).release);
            stats.releases[r] = (stats.releases[r] ?? 0) + 1;
          } catch {
            stats.releases["?"] = (stats.releases["?"] ?? 0) + 1;
          }
        } else fail(`status ${res.statusCode}`);
        resolve();
      });
      res.on("error", (e) => {
        fail(e.message);
        resolve();
      });
    });
    req.on("timeout", () => req.destroy(new Error("timeout")));
    req.on("error", (e) => {
      fail((e as NodeJS.ErrnoException).code ?? e.message);
      resolve();
    });
  });
}

async function worker(i: number) {
  while (!stopping) {
    await one(i % 2 === 0 ? keepAlive : false);
    await new Promise((r) => setTimeout(r, 5));
  }
}

function finish() {
  stopping = true;
  setTimeout(() => {
    process.stdout.write(JSON.stringify(stats) + "\n");
    process.exit(0);
  }, 200);
}

process.on("SIGTERM", finish);
process.on("SIGINT", finish);
if (seconds > 0) setTimeout(finish, seconds * 1000);
process.stdout.write("ready\n");
for (let i = 0; i < concurrency; i++) void worker(i);

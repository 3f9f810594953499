// Downtime probe, run as its own process during a bench scenario (the bench blocks while a deploy
// runs): one GET on a fresh connection every 100 ms. On SIGTERM it prints one JSON line:
// {"probes":N,"failed":N,"downtime":S,"down":bool} where downtime is the longest span, in seconds,
// from a failed probe's start to the next probe that succeeded (or to the end, and then down=true).
import * as http from "node:http";

const url = new URL(process.argv[2] ?? "http://127.0.0.1:3000/health");
const INTERVAL_MS = 100;
let probes = 0;
let failed = 0;
let downSince: number | null = null;
let longest = 0;
let stopping = false;

function probe(): Promise<boolean> {
  return new Promise((resolve) => {
    const req = http.get(url, { agent: false, timeout: 1000 }, (res) => {
      res.resume();
      res.on("end", () => resolve(res.statusCode === 200));
      res.on("error", () => resolve(false));
    });
    req.on("timeout", () => req.destroy(new Error("timeout")));
    req.on("error", () => resolve(false));
  });
}

async function loop() {
  while (!stopping) {
    const t = Date.now();
    const ok = await probe();
    probes++;
    if (ok) {
      if (downSince !== null) longest = Math.max(longest, t - downSince);
      downSince = null;
    } else {
      failed++;
      downSince ??= t;
    }
    await new Promise((r) => setTimeout(r, Math.max(0, INTERVAL_MS - (Date.now() - t))));
  }
}

function finish() {
  stopping = true;
  const down = downSince !== null;
  if (downSince !== null) longest = Math.max(longest, Date.now() - downSince);
  process.stdout.write(JSON.stringify({ probes, failed, downtime: longest / 1000, down }) + "\n");
  process.exit(0);
}

process.on("SIGTERM", finish);
process.on("SIGINT", finish);
process.stdout.write("ready\n");
void loop();

// The fleet scenario of the bench (npm run bench -- --fleet): a new release to 3 hosts against the
// same to 1 host, with the same program and machinery (vps:hosts with three entries or one), on the
// local fleet (scripts/local-fleet.sh). Wall time of `pulumi up`, and the VPS time of its slowest
// host (the sum of that host's step seconds, from the stack's `hosts` output). It only measures.
import { readFileSync, writeFileSync } from "node:fs";
import * as path from "node:path";
import { Artifacts, Fleet, fleetHost, localFleet, projectRoot, sshRun, TestStack } from "../driver/local";

export interface FleetSample {
  hosts: number;
  wall: number;
  vps: number;
}

const APP_PORT = 3000;

/** Runs `runs` new releases on a 3-host and a 1-host stack, alternately; returns every sample. */
export async function fleetBench(runs: number, log: (line: string) => void): Promise<FleetSample[]> {
  const fleet = localFleet(3, APP_PORT);
  const artifacts = new Artifacts();
  const samples: FleetSample[] = [];
  const stacks = [3, 1].map((n) => ({ n, stack: stackOn(fleet, n) }));
  try {
    let i = 0;
    const next = () => artifacts.variant(`r${i++}`, (d) => {
      const file = path.join(d, "dist", "server.js");
      writeFileSync(file, `${readFileSync(file, "utf8")}\n// bench release ${i}\n`);
    });
    for (const { n, stack } of stacks) {
      log(`  fleet ${n} host(s): first deploy ...`);
      up(stack, next().file);
    }
    for (let run = 1; run <= runs; run++) {
      for (const { n, stack } of stacks) {
        const a = next();
        const t0 = process.hrtime.bigint();
        up(stack, a.file);
        const wall = Number(process.hrtime.bigint() - t0) / 1e9;
        const hosts = stack.outputs().hosts as Record<string, { steps: { seconds: number }[] }>;
        const vps = Math.max(...Object.values(hosts).map((h) => h.steps.reduce((s, x) => s + x.seconds, 0)));
        samples.push({ hosts: n, wall, vps });
        log(`  run ${run}/${runs}, fleet ${n} host(s): new release ${wall.toFixed(2)} s wall, ${vps.toFixed(2)} s VPS (slowest host)`);
      }
    }
  } finally {
    for (const { n, stack } of stacks) {
      for (let h = 0; h < n; h++) sshRun(fleetHost(fleet, h), `pm2 delete ${stack.name} >/dev/null 2>&1; pm2 save --force >/dev/null 2>&1; rm -rf ${fleet.root}-${stack.name}`);
      stack.remove();
    }
    artifacts.remove();
  }
  return samples;
}

/** The Markdown table: per host count, min / median / max of wall and VPS seconds, and 3 vs 1. */
export function renderFleetTable(samples: FleetSample[]): string {
  const stats = (xs: number[]) => {
    const s = [...xs].sort((a, b) => a - b);
    return { min: s[0], median: s[Math.floor((s.length - 1) / 2)], max: s[s.length - 1] };
  };
  const cell = (xs: number[]) => {
    const { min, median, max } = stats(xs);
    return `${median.toFixed(2)} (${min.toFixed(2)}–${max.toFixed(2)})`;
  };
  const of = (n: number) => samples.filter((x) => x.hosts === n);
  const lines = [
    "| new release | wall s, median (min–max) | VPS s, slowest host |",
    "| --- | --- | --- |",
    ...[1, 3].filter((n) => of(n).length > 0).map((n) => `| ${n} host${n > 1 ? "s" : ""} | ${cell(of(n).map((x) => x.wall))} | ${cell(of(n).map((x) => x.vps))} |`),
  ];
  if (of(1).length > 0 && of(3).length > 0) {
    const ratio = stats(of(3).map((x) => x.wall)).median / stats(of(1).map((x) => x.wall)).median;
    lines.push("", `3 hosts / 1 host, median wall: ${ratio.toFixed(2)}× (goal: at most 1.3×)`);
  }
  return lines.join("\n");
}

function stackOn(fleet: Fleet, n: number): TestStack {
  const stack = new TestStack(projectRoot, `e2e-benchfleet${n}`);
  stack.setConfig("vps:hosts", JSON.stringify(fleet.hosts.slice(0, n).map((h) => ({ host: h.host, hostKey: h.hostKey }))));
  stack.setConfig("vps:user", fleet.user);
  stack.setConfig("vps:privateKey", fleet.privateKey, { secret: true });
  stack.setConfig("vps:root", `${fleet.root}-${stack.name}`);
  stack.setConfig("app:name", stack.name);
  // The 1-host stack shares host 1 with the 3-host one: another port.
  stack.setConfig("app:port", String(n === 3 ? APP_PORT : APP_PORT + 1));
  stack.setConfig("app:env", JSON.stringify({ DATABASE_URL: fleet.databaseUrl, HOST: "0.0.0.0" }), { secret: true });
  return stack;
}

function up(stack: TestStack, artifact: string): void {
  stack.setConfig("app:artifact", artifact);
  const r = stack.up();
  if (r.status !== 0) throw new Error(`pulumi up of ${stack.name} failed:\n${(r.stdout + r.stderr).slice(-3000)}`);
}

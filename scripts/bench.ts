// npm run bench [-- --runs N]: deploy figures on the local VPS with examples/backend. It only
// measures and prints (a Markdown table, and JSON under bench/results/); nothing here asserts.
//   first deploy · no-op up (the Pulumi engine's floor: an up with nothing to do) · new release
//   with unchanged dependencies · activating a kept release (rollback)
// For each: wall time of `pulumi up`, seconds spent on the VPS (the release script's step lines),
// and the VPS seconds before the health check.
import { execFileSync } from "node:child_process";
import { appendFileSync, cpSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { cpus, tmpdir, totalmem } from "node:os";
import * as path from "node:path";
import { packDirectory, releaseIdOf, sha256File } from "../infra/artifact";
import { freePort, localVps, projectRoot, sshRun, TestStack } from "../test/e2e/harness";
import { packageApp } from "./package";
import { parseFlags, runCli } from "./stacks";

interface Sample {
  wall: number;
  vps: number;
  beforeHealth: number;
  steps: Record<string, number>;
}

/** Sums the `step NAME 1.23s` lines of one `pulumi up` (each line is printed twice: live and in the summary). */
export function parseSteps(out: string): Record<string, number> {
  const steps: Record<string, number> = {};
  const section = out.includes("Diagnostics:") ? out.slice(out.indexOf("Diagnostics:")) : out;
  for (const m of section.matchAll(/^\s*step (\w+)\s+([\d.]+)s$/gm)) steps[m[1]] = (steps[m[1]] ?? 0) + Number(m[2]);
  return steps;
}

function timed(fn: () => { status: number | null; stdout: string; stderr: string }, label: string): Sample {
  const t0 = process.hrtime.bigint();
  const r = fn();
  const wall = Number(process.hrtime.bigint() - t0) / 1e9;
  if (r.status !== 0) throw new Error(`${label} failed:\n${r.stdout}\n${r.stderr}`);
  const steps = parseSteps(r.stdout);
  const vps = Object.values(steps).reduce((a, b) => a + b, 0);
  const beforeHealth = Object.entries(steps).filter(([k]) => !["health", "save", "prune"].includes(k))
    .reduce((a, [, v]) => a + v, 0);
  return { wall, vps, beforeHealth, steps };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function main(): Promise<void> {
  const f = parseFlags(process.argv.slice(2), { values: ["runs"] });
  const runs = Number(f.runs ?? 3);
  const vps = localVps();
  const work = mkdtempSync(path.join(tmpdir(), "bench-"));
  console.error("packaging examples/backend ...");
  const a = packageApp({ appDir: path.join(projectRoot, "examples", "backend"), out: path.join(work, "a.tar.gz") });
  const tree = path.join(work, "a");
  mkdirSync(tree);
  execFileSync("tar", ["-xzf", a.path, "-C", tree]);
  const variant = (n: number) => {
    const dir = path.join(work, `v${n}`);
    cpSync(tree, dir, { recursive: true, verbatimSymlinks: true });
    appendFileSync(path.join(dir, "dist", "server.js"), `\n// bench variant ${n}\n`);
    const file = path.join(work, `v${n}.tar.gz`);
    writeFileSync(file, packDirectory({ root: dir, entries: readdirSync(dir).sort() }));
    return { file, id: releaseIdOf(sha256File(file)) };
  };

  const results: Record<string, Sample[]> = { first: [], noop: [], newRelease: [], activate: [] };
  const floors = { sshRoundTrip: [] as number[], pm2Reload: [] as number[] };
  const wallOf = (fn: () => void) => {
    const t0 = process.hrtime.bigint();
    fn();
    return Number(process.hrtime.bigint() - t0) / 1e9;
  };
  for (let run = 1; run <= runs; run++) {
    console.error(`run ${run}/${runs}`);
    const stack = new TestStack(projectRoot, "e2e-bench");
    const root = `${vps.root}-${stack.name}`;
    try {
      stack.setVps(vps);
      stack.setConfig("vps:root", root);
      stack.setConfig("app:name", stack.name);
      stack.setConfig("app:port", String(await freePort()));
      stack.setConfig("app:artifact", a.path);
      results.first.push(timed(() => stack.up(), "first deploy"));
      results.noop.push(timed(() => stack.up(), "no-op up"));
      const v = variant(run);
      stack.setConfig("app:artifact", v.file);
      results.newRelease.push(timed(() => stack.up(), "new release"));
      stack.setConfig("app:artifact", "");
      stack.setConfig("app:release", a.releaseId);
      results.activate.push(timed(() => stack.up(), "activate kept release"));
      floors.sshRoundTrip.push(wallOf(() => sshRun(vps, "true")));
      floors.pm2Reload.push(wallOf(() => sshRun(vps, `pm2 reload ${stack.name} >/dev/null 2>&1`)));
    } finally {
      sshRun(vps, `pm2 delete ${stack.name} >/dev/null 2>&1; pm2 save --force >/dev/null 2>&1; rm -rf ${root}`);
      stack.remove();
    }
  }
  rmSync(work, { recursive: true, force: true });

  const labels: Record<string, string> = {
    first: "first deploy",
    noop: "no-op `up` (engine floor)",
    newRelease: "new release, same dependencies",
    activate: "activate a kept release (rollback)",
  };
  const fmt = (n: number) => n.toFixed(2);
  const lines = [
    `Machine: ${cpus().length} × ${cpus()[0]?.model.trim()}, ${Math.round(totalmem() / 2 ** 30)} GiB; ` +
      `local VPS on loopback; examples/backend (${a.size} bytes); median of ${runs} runs.`,
    "",
    "| scenario | wall s | VPS s | VPS s before health | slowest steps |",
    "| --- | ---: | ---: | ---: | --- |",
  ];
  for (const [key, samples] of Object.entries(results)) {
    const mid = samples.find((s) => s.wall === median(samples.map((x) => x.wall))) ?? samples[0];
    const slow = Object.entries(mid.steps).sort((x, y) => y[1] - x[1]).slice(0, 3).map(([k, v]) => `${k} ${fmt(v)}`).join(", ");
    lines.push(`| ${labels[key]} | ${fmt(median(samples.map((s) => s.wall)))} | ${fmt(median(samples.map((s) => s.vps)))} | ` +
      `${fmt(median(samples.map((s) => s.beforeHealth)))} | ${slow || "no remote work"} |`);
  }
  lines.push("", `Floors (median): one SSH round trip (a new connection, \`ssh true\`) ${fmt(median(floors.sshRoundTrip))} s; ` +
    `\`pm2 reload\` of the app alone (2 cluster workers, each started and drained in turn) ${fmt(median(floors.pm2Reload))} s; ` +
    `the Pulumi engine with nothing to do is the no-op row.`);
  const table = lines.join("\n");
  console.log(table);
  const dir = path.join(projectRoot, "bench", "results");
  mkdirSync(dir, { recursive: true });
  const stamp = new Date().toISOString().replace(/[:.]/g, "-");
  writeFileSync(path.join(dir, `deploy-${stamp}.json`), JSON.stringify({ runs, artifactBytes: a.size, results, floors }, null, 2));
  writeFileSync(path.join(dir, "deploy-latest.md"), table + "\n");
}

if (require.main === module) runCli(main);

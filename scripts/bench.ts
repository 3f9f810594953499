// npm run bench [-- --runs N] [--flows ours,seed,cap] [--artifacts small,big] [--publish]
// npm run bench -- --fleet [--runs N]: the fleet scenario instead (bench/fleet.ts): a new release to
// 3 hosts against 1 host on the local fleet (root only: network namespaces).
// Deploy figures on the local VPS, side by side with what users would do instead: the seed's bash
// script (bench/baselines/seed-*.sh) and Capistrano 3 (bench/baselines/capistrano). It only
// measures and reports: a Markdown table, JSON and an SVG chart under bench/results/ (with
// --publish, the chart is also copied to bench/chart.svg for the README). Nothing here asserts.
//
// Per run, per artifact (examples/backend as is, and with its production node_modules packed), per
// flow, one sequence on a fresh app: first deploy (A) · no-op (A again) · new release with the same
// dependencies (B) · new release with changed dependencies (C) · rollback to the previous release
// (B) · a release that crashes at start (X), until the app serves again. Everything but the first
// deploy runs under a steady load (test/support/load-client.ts) and a downtime probe. Each run
// also times an empty Pulumi program's no-op `up` (bench/engineFloor.ts), the engine's own floor:
// quiet before the run, and under the same load right after ours' no-op row.
import { execFileSync } from "node:child_process";
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { cpus, loadavg, release, tmpdir, totalmem } from "node:os";
import * as path from "node:path";
import { ArtifactSet, buildArtifacts, copyBackend } from "../bench/artifacts";
import { CapistranoFlow, ensureCapistrano } from "../bench/capistrano";
import { renderChart } from "../bench/chart";
import { EngineFloor } from "../bench/engineFloor";
import { fleetBench, renderFleetTable } from "../bench/fleet";
import { Flow, healthUrl, OursFlow, Outcome, SeedFlow } from "../bench/flows";
import { underLoad } from "../bench/load";
import { ARTIFACTS, ArtifactKind, BenchResults, FLOWS, FlowName, renderReport, Sample, ScenarioKey } from "../bench/report";
import { freePort, localVps, projectRoot, sshRun, Vps } from "../driver/local";
import { parseFlags, runCli, UsageError } from "../ops/stacks";

const log = (line: string) => console.error(line);

function listFlag<T extends string>(value: string | true | undefined, all: readonly T[], name: string): T[] {
  if (value === undefined) return [...all];
  const got = String(value).split(",").map((s) => s.trim()).filter(Boolean);
  const bad = got.filter((g) => !(all as readonly string[]).includes(g));
  if (bad.length > 0 || got.length === 0) throw new UsageError(`--${name}: expected a comma-separated list of ${all.join(", ")}, got ${JSON.stringify(value)}`);
  return all.filter((a) => got.includes(a));
}

function wallOf(fn: () => unknown): number {
  const t0 = process.hrtime.bigint();
  fn();
  return Number(process.hrtime.bigint() - t0) / 1e9;
}

async function makeFlow(name: FlowName, vps: Vps, work: string): Promise<Flow> {
  const port = await freePort();
  switch (name) {
    case "ours":
      return new OursFlow(vps, port);
    case "seed":
      return new SeedFlow(vps, port);
    case "cap":
      return new CapistranoFlow(vps, port, path.join(work, "cap"));
    default: {
      const never: never = name;
      throw new Error(`unknown flow ${String(never)}`);
    }
  }
}

/** One flow's whole sequence on one artifact; each scenario's sample goes to `record`. */
async function sequence(flow: Flow, set: ArtifactSet, vps: Vps, record: (s: ScenarioKey, x: Sample) => void, floors: BenchResults["floors"], floor?: EngineFloor): Promise<void> {
  const v = set.variants;
  const url = healthUrl(flow);
  const loaded = async (scenario: ScenarioKey, action: () => Outcome | Promise<Outcome>) => {
    log(`  ${flow.name} ${set.kind}: ${scenario} ...`);
    const { value, load } = await underLoad(url, action);
    record(scenario, { ...value, failed: load.failed, requests: load.requests, downtime: load.downtime });
    log(`  ${flow.name} ${set.kind}: ${scenario} ${value.wall.toFixed(2)} s, ${load.failed}/${load.requests} failed, down ${load.downtime.toFixed(1)} s${load.down ? " (still down at the end)" : ""}`);
  };
  flow.setup();
  try {
    log(`  ${flow.name} ${set.kind}: first ...`);
    const first = flow.deploy(v.A);
    record("first", { ...first, failed: null, requests: null, downtime: null });
    log(`  ${flow.name} ${set.kind}: first ${first.wall.toFixed(2)} s`);
    await loaded("noop", () => flow.deploy(v.A));
    if (flow.name === "ours" && floor) {
      // The engine's floor under the same load as the no-op row just measured.
      const { value } = await underLoad(url, () => floor.measure());
      (floors.emptyProgramLoaded ??= []).push(value);
      log(`  ${flow.name} ${set.kind}: an empty Pulumi program's no-op up under the same load ${value.toFixed(2)} s`);
    }
    await loaded("sameDeps", () => flow.deploy(v.B));
    await loaded("changedDeps", () => flow.deploy(v.C));
    await loaded("rollback", () => flow.rollback());
    await loaded("crash", () => flow.deployCrashing(v.X));
    if (flow.name === "ours") {
      floors.sshRoundTrip.push(wallOf(() => sshRun(vps, "true")));
      floors.pm2Reload.push(wallOf(() => sshRun(vps, `pm2 reload ${flow.app} >/dev/null 2>&1`)));
    }
  } finally {
    flow.teardown();
  }
}

function machine(): string {
  const c = cpus();
  return `${c.length} × ${c[0]?.model.trim() ?? "CPU"}, ${Math.round(totalmem() / 2 ** 30)} GiB, Linux ${release()}; ` +
    `local VPS (sshd) on loopback; load average ${loadavg()[0].toFixed(2)} at the start`;
}

function write(results: BenchResults, stamp: string, publish: boolean): string {
  const dir = path.join(projectRoot, "bench", "results");
  mkdirSync(dir, { recursive: true });
  const table = renderReport(results);
  writeFileSync(path.join(dir, `deploy-${stamp}.json`), JSON.stringify(results, null, 2) + "\n");
  writeFileSync(path.join(dir, "deploy-latest.md"), table + "\n");
  writeFileSync(path.join(dir, "chart.svg"), renderChart(results));
  if (publish) copyFileSync(path.join(dir, "chart.svg"), path.join(projectRoot, "bench", "chart.svg"));
  return table;
}

async function main(): Promise<void> {
  const f = parseFlags(process.argv.slice(2), { values: ["runs", "flows", "artifacts"], flags: ["publish", "fleet"] });
  const runs = Number(f.runs ?? 3);
  if (!Number.isInteger(runs) || runs < 1) throw new UsageError(`--runs: expected a whole number >= 1, got ${JSON.stringify(f.runs)}`);
  if (f.fleet === true) {
    const t0 = Date.now();
    log(`fleet scenario, ${runs} run(s); ${machine()}`);
    const table = renderFleetTable(await fleetBench(runs, log));
    const dir = path.join(projectRoot, "bench", "results");
    mkdirSync(dir, { recursive: true });
    writeFileSync(path.join(dir, "fleet-latest.md"), `${table}\n`);
    console.log(table);
    log(`fleet bench took ${((Date.now() - t0) / 60000).toFixed(1)} min; table in bench/results/fleet-latest.md`);
    return;
  }
  const flows = listFlag(f.flows, FLOWS, "flows");
  const kinds = listFlag(f.artifacts, ARTIFACTS, "artifacts");
  const started = Date.now();
  if (flows.includes("cap")) ensureCapistrano(log);
  const vps = localVps();
  const work = mkdtempSync(path.join(tmpdir(), "bench-"));
  const stamp = new Date().toISOString().replace(/[:.]/g, "-");
  const results: BenchResults = { date: new Date().toISOString().slice(0, 10), machine: machine(), runs, artifacts: {}, samples: {}, floors: { sshRoundTrip: [], pm2Reload: [], emptyProgram: [], emptyProgramLoaded: [] }, failures: [] };
  let floor: EngineFloor | undefined;
  try {
    if (flows.includes("ours")) floor = new EngineFloor();
    const appDir = copyBackend();
    const sets = {} as Record<ArtifactKind, ArtifactSet>;
    for (const kind of kinds) {
      sets[kind] = buildArtifacts(work, appDir, kind, log);
      results.artifacts[kind] = sets[kind].info;
    }
    for (let run = 1; run <= runs; run++) {
      if (floor) {
        const s = floor.measure();
        results.floors.emptyProgram.push(s);
        log(`run ${run}/${runs}: an empty Pulumi program's no-op up ${s.toFixed(2)} s`);
      }
      for (const kind of kinds) {
        for (const name of flows) {
          log(`run ${run}/${runs}, ${kind} artifact, ${name}`);
          const flow = await makeFlow(name, vps, work);
          const record = (s: ScenarioKey, x: Sample) => {
            const byScenario = (results.samples[kind] ??= {});
            ((byScenario[s] ??= {})[name] ??= []).push(x);
          };
          try {
            await sequence(flow, sets[kind], vps, record, results.floors, floor);
          } catch (err) {
            // One flow failing must not hide the others' figures: it is reported with them.
            const message = `run ${run}, ${kind}, ${name}: ${(err as Error).message}`;
            results.failures.push(message.split("\n").slice(0, 12).join("\n"));
            log(`FAILED ${message}`);
          }
          write(results, stamp, false);
        }
      }
    }
  } finally {
    floor?.remove();
    rmSync(work, { recursive: true, force: true });
    try {
      execFileSync("rm", ["-rf", path.join(tmpdir(), "vps-release-bench")]);
    } catch {
      // best effort: a scratch folder
    }
  }
  const table = write(results, stamp, f.publish === true);
  console.log(table);
  if (results.failures.length > 0) console.log(`\nFailures:\n${results.failures.map((x) => `- ${x}`).join("\n")}`);
  log(`bench took ${((Date.now() - started) / 60000).toFixed(1)} min; results in bench/results/ (deploy-${stamp}.json, deploy-latest.md, chart.svg)`);
}

if (require.main === module) runCli(main);

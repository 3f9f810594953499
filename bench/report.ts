// The bench's results and the Markdown tables made from them. Pure: no I/O.
import { round2, sumSteps } from "./steps";

export const FLOWS = ["ours", "seed", "cap"] as const;
export type FlowName = (typeof FLOWS)[number];
export const FLOW_LABELS: Record<FlowName, string> = { ours: "ours", seed: "seed script", cap: "Capistrano" };

export const SCENARIOS = ["first", "noop", "sameDeps", "changedDeps", "rollback", "crash"] as const;
export type ScenarioKey = (typeof SCENARIOS)[number];
export const SCENARIO_LABELS: Record<ScenarioKey, string> = {
  first: "first deploy",
  noop: "no-op `up` (same artifact again)",
  sameDeps: "new release, same dependencies",
  changedDeps: "new release, changed dependencies",
  rollback: "rollback to the previous release",
  crash: "release that crashes at start, until serving again",
};

export const ARTIFACTS = ["small", "big"] as const;
export type ArtifactKind = (typeof ARTIFACTS)[number];

/** One flow doing one scenario once. */
export interface Sample {
  /** Seconds from the command's start to its end (for the crash scenario: every command of the recovery). */
  wall: number;
  /** Seconds per step on the VPS, as the flow reports them. */
  steps: Record<string, number>;
  /** Bytes sent to the VPS; for Capistrano the git pack of the objects the VPS's mirror lacks. */
  uploaded: number;
  /** Requests of the load client that failed; null when no load ran (first deploy). */
  failed: number | null;
  /** Requests of the load client in all. */
  requests: number | null;
  /** Longest time the app did not serve (seconds, from the probe); null when no load ran. */
  downtime: number | null;
}

export interface BenchResults {
  date: string;
  machine: string;
  runs: number;
  artifacts: Partial<Record<ArtifactKind, ArtifactInfo>>;
  samples: Partial<Record<ArtifactKind, Partial<Record<ScenarioKey, Partial<Record<FlowName, Sample[]>>>>>>;
  /**
   * sshRoundTrip: `ssh true` on a new connection; pm2Reload: one reload over SSH; emptyProgram: the
   * no-op `up` of an empty TypeScript Pulumi program with the same CLI, language host and backend
   * (the engine's own floor), quiet, before each run; emptyProgramLoaded: the same, right after
   * ours' no-op row and under the same load, which is what that row is measured against.
   */
  floors: { sshRoundTrip: number[]; pm2Reload: number[]; emptyProgram: number[]; emptyProgramLoaded?: number[] };
  /** Sequences that stopped on an error: which run, artifact and flow, and the error. */
  failures: string[];
}

export interface ArtifactInfo {
  label: string;
  /** Size of release A's tarball. */
  bytes: number;
  /** Production node_modules packed in the artifact; null when each release installs them on the VPS. */
  nodeModulesBytes: number | null;
}

export interface Summary {
  /** Median wall seconds, and the fastest and slowest of the samples. */
  wall: number;
  wallMin: number;
  wallMax: number;
  /** How many samples. */
  n: number;
  vps: number;
  /** The steps of the sample with the median wall time. */
  steps: Record<string, number>;
  uploaded: number;
  failed: number | null;
  downtime: number | null;
}

/** The median (the upper one of an even count). */
export function median(xs: number[]): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

function medianOrNull(xs: (number | null)[]): number | null {
  const known = xs.filter((x): x is number => x !== null);
  return known.length === 0 ? null : median(known);
}

export function summarize(samples: Sample[]): Summary {
  const walls = samples.map((s) => s.wall);
  const wall = median(walls);
  const mid = samples.find((s) => s.wall === wall) ?? samples[0];
  return {
    wall: round2(wall),
    wallMin: round2(Math.min(...walls)),
    wallMax: round2(Math.max(...walls)),
    n: samples.length,
    vps: round2(median(samples.map((s) => sumSteps(s.steps)))),
    steps: mid.steps,
    uploaded: median(samples.map((s) => s.uploaded)),
    failed: medianOrNull(samples.map((s) => s.failed)),
    downtime: medianOrNull(samples.map((s) => s.downtime)),
  };
}

/** ours ÷ baseline, as `0.42×`; `–` when either side is missing or the baseline is 0. */
export function ratio(ours: number | undefined, base: number | undefined): string {
  if (ours === undefined || base === undefined || !(base > 0)) return "–";
  return `${(ours / base).toFixed(2)}×`;
}

export function formatBytes(n: number): string {
  if (n === 0) return "0";
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(n < 10 * 1024 ? 1 : 0)} KB`;
  return `${(n / (1024 * 1024)).toFixed(1)} MB`;
}

const fmt = (n: number) => n.toFixed(2);

/** A wall time cell: the median, and with more than one sample its spread: `9.50 (9.10–9.90)`. */
export function wallCell(x: Summary): string {
  return x.n > 1 ? `${fmt(x.wall)} (${fmt(x.wallMin)}–${fmt(x.wallMax)})` : fmt(x.wall);
}
const triple = (xs: string[]) => xs.join(" / ");

/** The top steps of a summary, slowest first: `install 13.33, migrate 1.92`. */
export function slowestSteps(steps: Record<string, number>, n = 3): string {
  const top = Object.entries(steps).filter(([, v]) => v >= 0.005).sort((a, b) => b[1] - a[1]).slice(0, n);
  return top.length === 0 ? "no remote work" : top.map(([k, v]) => `${k} ${fmt(v)}`).join(", ");
}

/** Summaries per artifact, scenario and flow; missing cells are left out. */
export function summaries(r: BenchResults): Partial<Record<ArtifactKind, Partial<Record<ScenarioKey, Partial<Record<FlowName, Summary>>>>>> {
  const out: ReturnType<typeof summaries> = {};
  for (const a of ARTIFACTS) {
    const byScenario = r.samples[a];
    if (!byScenario) continue;
    out[a] = {};
    for (const s of SCENARIOS) {
      const byFlow = byScenario[s];
      if (!byFlow) continue;
      const row: Partial<Record<FlowName, Summary>> = {};
      for (const f of FLOWS) {
        const xs = byFlow[f];
        if (xs && xs.length > 0) row[f] = summarize(xs);
      }
      out[a]![s] = row;
    }
  }
  return out;
}

/** The Markdown the bench prints and the README shows: per artifact a summary table and a steps table. */
export function renderReport(r: BenchResults): string {
  const sums = summaries(r);
  const flows = FLOWS.filter((f) => ARTIFACTS.some((a) => SCENARIOS.some((s) => sums[a]?.[s]?.[f])));
  const cell = (x: Summary | undefined, pick: (s: Summary) => string) => (x ? pick(x) : "–");
  const lines: string[] = [
    `Machine: ${r.machine}. ${r.date}; median of ${r.runs} run${r.runs === 1 ? "" : "s"}. Columns list ${triple(flows.map((f) => FLOW_LABELS[f]))}.`,
  ];
  for (const a of ARTIFACTS) {
    const info = r.artifacts[a];
    const rows = sums[a];
    if (!info || !rows) continue;
    const baselines = flows.filter((f) => f !== "ours");
    lines.push(
      "",
      `**${info.label}**: artifact ${formatBytes(info.bytes)}` +
        (info.nodeModulesBytes === null ? "." : `, of which production node_modules ${formatBytes(info.nodeModulesBytes)} unpacked.`),
      "",
      `| scenario | wall s, median${r.runs > 1 ? " (min–max)" : ""} | ${baselines.map((b) => `ours ÷ ${FLOW_LABELS[b]}`).join(" | ")} | VPS s | uploaded | failed requests | downtime s |`,
      `| --- | ---: | ${baselines.map(() => "---:").join(" | ")} | ---: | ---: | ---: | ---: |`,
    );
    for (const s of SCENARIOS) {
      const row = rows[s];
      if (!row) continue;
      lines.push(`| ${SCENARIO_LABELS[s]} | ${triple(flows.map((f) => cell(row[f], wallCell)))} | ` +
        `${baselines.map((b) => ratio(row.ours?.wall, row[b]?.wall)).join(" | ")} | ` +
        `${triple(flows.map((f) => cell(row[f], (x) => fmt(x.vps))))} | ` +
        `${triple(flows.map((f) => cell(row[f], (x) => formatBytes(x.uploaded))))} | ` +
        `${triple(flows.map((f) => cell(row[f], (x) => (x.failed === null ? "–" : String(x.failed)))))} | ` +
        `${triple(flows.map((f) => cell(row[f], (x) => (x.downtime === null ? "–" : x.downtime.toFixed(1)))))} |`);
    }
    lines.push("", `Slowest VPS steps (${info.label}):`, "", `| scenario | ${flows.map((f) => FLOW_LABELS[f]).join(" | ")} |`,
      `| --- | ${flows.map(() => "---").join(" | ")} |`);
    for (const s of SCENARIOS) {
      const row = rows[s];
      if (!row) continue;
      lines.push(`| ${SCENARIO_LABELS[s]} | ${flows.map((f) => cell(row[f], (x) => slowestSteps(x.steps))).join(" | ")} |`);
    }
  }
  const noop = ARTIFACTS.map((a) => sums[a]?.noop?.ours?.wall).find((x) => x !== undefined);
  const medianOf = (xs: number[] | undefined) => (xs && xs.length ? median(xs) : undefined);
  const quiet = medianOf(r.floors.emptyProgram);
  const loaded = medianOf(r.floors.emptyProgramLoaded);
  const secs = (x: number | undefined) => (x === undefined ? "–" : `${fmt(x)} s`);
  lines.push("", `Floors (median): an empty Pulumi program's \`up\` with nothing to do ${secs(quiet)} quiet` +
    (loaded === undefined ? "" : `, ${secs(loaded)} under the bench's load (right after ours' no-op row)`) +
    ` (the same CLI, language host and backend; ours, the no-op row: ${secs(noop)}, ${ratio(noop, loaded ?? quiet)}` +
    `${loaded === undefined ? "" : " of the loaded one"}, goal at most 1.2×); ` +
    `one SSH round trip (a new connection, \`ssh true\`) ${secs(medianOf(r.floors.sshRoundTrip))}; ` +
    `PM2's own \`pm2 reload\` of the app (2 cluster workers, each started and drained in turn, over SSH; ours reloads the two at once) ` +
    `${secs(medianOf(r.floors.pm2Reload))}.`);
  if (r.failures.length > 0) lines.push("", `Sequences that failed (their other figures are above): ${r.failures.map((x) => x.split("\n")[0]).join("; ")}.`);
  return lines.join("\n");
}

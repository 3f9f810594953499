// Turns the log of a `pulumi up` (or of npm run promote / rollback, which print the up's output)
// into a Markdown job summary: the release id, each release step's duration, and the health answer.
//   node --import tsx .github/scripts/release-summary.ts --log up.log [--title TEXT]
//        [--outputs outputs.json] [--health health.txt] >> "$GITHUB_STEP_SUMMARY"
// --outputs: `pulumi stack output --json` (the release id, and the steps of a release whose lines
// the log does not hold);
// --health: the smoke check's answer. The release script's lines: infra/protocol.ts.
import { existsSync, readFileSync } from "node:fs";
import { activationRan, parseReleaseOutput, ReleaseOutput, StepTiming } from "../../infra/protocol";

export interface ReleaseLog extends ReleaseOutput {
  /** The program's one-line account of the release (`release: A -> B (...)`, `release: A stays live`). */
  plan?: string;
  /** Whether this up ran the release command (created, updated or replaced it). */
  ran: boolean;
}

/**
 * Reads an up's log through the remote protocol's parser (infra/protocol.ts). The release's own
 * lines are in the log when it failed (the provider's error text carries them) or when the provider
 * printed them as diagnostics; the official provider shows a successful run's lines only as
 * passing status lines, so a successful release's steps come from the `releaseSteps` output.
 */
export function parseUpLog(log: string): ReleaseLog {
  const text = log.replace(/\r\n/g, "\n").replace(/\x1b\[[0-9;]*m/g, "");
  const plan = /^\s*release: (.*)$/m.exec(text)?.[1].trim();
  return { ...parseReleaseOutput(text), plan, ran: activationRan(text) };
}

export interface SummaryInput {
  title: string;
  log: ReleaseLog;
  /** `pulumi stack output --json`, flattened to strings. */
  outputs?: Record<string, string>;
  /** The smoke check's answer, e.g. `200 {"status":"ok",...}`. */
  health?: string;
}

export function renderSummary({ title, log, outputs = {}, health }: SummaryInput): string {
  const failed = log.failure !== undefined || log.errors.length > 0;
  const steps = log.steps.length || !log.ran || failed ? log.steps : stepsOf(outputs.releaseSteps);
  const releaseId = log.result?.releaseId ?? log.failure?.releaseId ?? outputs.releaseId ?? "";
  const rows: [string, string][] = [];
  rows.push(["result", failed ? `❌ failed${log.failure ? ` at step ${log.failure.step}` : ""}` : log.ran ? "✅ released" : "✅ no change"]);
  if (releaseId) rows.push(["release", code(releaseId)]);
  const previous = log.result?.previousReleaseId ?? outputs.previousReleaseId;
  if (previous) rows.push(["previous release", code(previous)]);
  const sha = log.result?.artifactSha256 ?? outputs.artifactSha256;
  if (sha) rows.push(["artifact sha256", code(sha)]);
  if (log.plan) rows.push(["plan", cell(log.plan)]);
  const live = log.healthy[log.healthy.length - 1];
  if (live) rows.push(["health (release script)", `${code(live.url)} after ${live.after}: ${code(live.body)}`]);
  if (health !== undefined) rows.push(["health (smoke check)", code(health.trim())]);

  const md = [`### ${cell(title)}`, "", "| | |", "| --- | --- |", ...rows.map(([k, v]) => `| ${k} | ${v} |`), ""];
  if (steps.length) {
    const total = steps.reduce((a, s) => a + s.seconds, 0);
    md.push("| step | seconds |", "| --- | ---: |", ...steps.map((s) => `| ${s.name} | ${s.seconds.toFixed(2)} |`),
      `| **total on the VPS** | **${total.toFixed(2)}** |`, "");
  }
  if (log.errors.length) md.push("```", ...log.errors.map((l) => l.replace(/```/g, "'''")), "```", "");
  return `${md.join("\n")}\n`;
}

/** The `releaseSteps` stack output (flattened to JSON text by flatten()). */
function stepsOf(json: string | undefined): StepTiming[] {
  if (!json) return [];
  try {
    const v = JSON.parse(json) as unknown;
    return Array.isArray(v) ? (v as StepTiming[]).filter((s) => typeof s?.name === "string" && typeof s?.seconds === "number") : [];
  } catch {
    return [];
  }
}

/** Text for a table cell: no line breaks, pipes escaped. */
function cell(text: string): string {
  return text.replace(/\s*\n\s*/g, " ").replace(/\|/g, "\\|");
}

/** An inline code span that survives backticks and pipes in the text (GFM: pipes escaped even in code). */
function code(text: string): string {
  const t = cell(text);
  const fence = "`".repeat(Math.max(0, ...(t.match(/`+/g) ?? []).map((r) => r.length)) + 1);
  const pad = t.startsWith("`") || t.endsWith("`") ? " " : "";
  return `${fence}${pad}${t}${pad}${fence}`;
}

function flatten(outputs: unknown): Record<string, string> {
  if (typeof outputs !== "object" || outputs === null) return {};
  return Object.fromEntries(Object.entries(outputs).map(([k, v]) => [k, typeof v === "string" ? v : JSON.stringify(v)]));
}

export function main(argv: string[]): number {
  const args: Record<string, string> = {};
  for (let i = 0; i < argv.length; i += 2) {
    const m = /^--(log|title|outputs|health)$/.exec(argv[i]);
    if (!m || argv[i + 1] === undefined) {
      process.stderr.write(`usage: release-summary.ts --log FILE [--title TEXT] [--outputs FILE] [--health FILE]\n`);
      return 2;
    }
    args[m[1]] = argv[i + 1];
  }
  if (!args.log) {
    process.stderr.write("release-summary.ts: --log FILE is required\n");
    return 2;
  }
  // A missing optional file is a step that did not run (the up failed before it): summarise the rest.
  const read = (file: string | undefined) => (file && existsSync(file) ? readFileSync(file, "utf8") : undefined);
  const outputsText = read(args.outputs);
  process.stdout.write(renderSummary({
    title: args.title ?? "pulumi up",
    log: parseUpLog(read(args.log) ?? ""),
    outputs: outputsText?.trim() ? flatten(JSON.parse(outputsText)) : undefined,
    health: read(args.health),
  }));
  return 0;
}

if (require.main === module) process.exitCode = main(process.argv.slice(2));

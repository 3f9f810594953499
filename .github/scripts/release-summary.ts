// Turns the log of a `pulumi up` (or of npm run promote / rollback, which print the up's output)
// into a Markdown job summary: the release id, each release step's duration, and the health answer.
//   node --import tsx .github/scripts/release-summary.ts --log up.log [--title TEXT]
//        [--outputs outputs.json] [--health health.txt] >> "$GITHUB_STEP_SUMMARY"
// --outputs: `pulumi stack output --json` (for an up that changed nothing, which prints no RESULT);
// --health: the smoke check's answer. The release script's lines are documented in
// infra/scripts/release.body.sh: `step NAME 1.23s`, `healthy after 0.5s: URL BODY`, `RESULT {json}`.
import { existsSync, readFileSync } from "node:fs";

export interface ReleaseLog {
  /** Release steps in the order they ran, with seconds. */
  steps: { name: string; seconds: number }[];
  /** Every `healthy after` line: the preflight's first, then the live one. */
  healthy: { after: string; url: string; body: string }[];
  /** The release script's RESULT, when it ran to the end. */
  result?: { releaseId: string; previousReleaseId?: string; artifactSha256?: string } & Record<string, unknown>;
  /** `release ID failed at step STEP (exit N)`, when it failed. */
  failure?: { releaseId: string; step: string };
  /** Lines starting with `error:` or naming a failed health check, de-duplicated, in order. */
  errors: string[];
  /** The program's one-line account of the release (`release: A -> B (...)`, `release: A stays live`). */
  plan?: string;
}

/**
 * Reads the release script's lines. Pulumi prints each line twice (live, after the resource's
 * status, and again under Diagnostics); the Diagnostics copy is whole, so it is used when present.
 */
export function parseUpLog(log: string): ReleaseLog {
  const text = log.replace(/\r\n/g, "\n").replace(/\x1b\[[0-9;]*m/g, "");
  const start = text.indexOf("\nDiagnostics:\n");
  const section = start === -1 ? text : text.slice(start, sectionEnd(text, start));
  // Without Diagnostics (a cut log), live lines carry the resource and its status first:
  // ` ++ command:remote:Command release-activate creating replacement (2s) [diff: ~create]; step lock 0.02s`.
  const live = /^\s*\S+\s+command:remote:Command \S+ [^(]*\(\d+(?:\.\d+)?s\)(?: \[[^\]]*\];)? /;
  const lines = section.split("\n").map((l) => (start === -1 ? l.replace(live, "") : l).trim());
  const out: ReleaseLog = { steps: [], healthy: [], errors: [] };
  const seenErrors = new Set<string>();
  const seenSteps = new Set<string>();
  for (const line of lines) {
    let m: RegExpExecArray | null;
    if ((m = /^step (\w+)\s+([\d.]+)s$/.exec(line))) {
      // A cut log repeats nothing, but a live line may show twice: keep the first of each step.
      if (start === -1 && seenSteps.has(m[1])) continue;
      seenSteps.add(m[1]);
      out.steps.push({ name: m[1], seconds: Number(m[2]) });
    } else if ((m = /^healthy after ([\d.]+s): (\S+) (.*)$/.exec(line))) {
      out.healthy.push({ after: m[1], url: m[2], body: m[3] });
    } else if ((m = /^RESULT (\{.*\})$/.exec(line))) {
      out.result = JSON.parse(m[1]) as ReleaseLog["result"];
    } else if ((m = /^release ([0-9a-f]{12}) failed at step (\w+)/.exec(line))) {
      out.failure = { releaseId: m[1], step: m[2] };
    } else if ((m = /^release: (.*)$/.exec(line)) && out.plan === undefined) {
      out.plan = m[1];
    } else if (/^error: |^health: .*not healthy/.test(line) && !seenErrors.has(line)) {
      seenErrors.add(line);
      out.errors.push(line);
    }
  }
  return out;
}

/** Where the Diagnostics section ends: the Outputs or Resources heading after it. */
function sectionEnd(text: string, from: number): number {
  const ends = ["\nOutputs:\n", "\nResources:\n"].map((h) => text.indexOf(h, from)).filter((i) => i !== -1);
  return ends.length ? Math.min(...ends) : text.length;
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
  const releaseId = log.result?.releaseId ?? log.failure?.releaseId ?? outputs.releaseId ?? "";
  const rows: [string, string][] = [];
  rows.push(["result", failed ? `❌ failed${log.failure ? ` at step ${log.failure.step}` : ""}` : log.steps.length ? "✅ released" : "✅ no change"]);
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
  if (log.steps.length) {
    const total = log.steps.reduce((a, s) => a + s.seconds, 0);
    md.push("| step | seconds |", "| --- | ---: |", ...log.steps.map((s) => `| ${s.name} | ${s.seconds.toFixed(2)} |`),
      `| **total on the VPS** | **${total.toFixed(2)}** |`, "");
  }
  if (log.errors.length) md.push("```", ...log.errors.map((l) => l.replace(/```/g, "'''")), "```", "");
  return `${md.join("\n")}\n`;
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

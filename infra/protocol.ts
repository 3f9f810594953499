// The remote output protocol: the lines the release script prints (infra/scripts/release.body.sh),
// parsed here and nowhere else, for the Release component, the CI job summary and the bench.
//   step NAME 1.23s                          a step finished, with its duration
//   healthy after 0.51s: URL BODY             a health check passed (preflight first, then live)
//   release ID failed at step STEP (exit N)   the release failed; the live release keeps serving
//   error: TEXT                               why
//   RESULT {json}                             the last line of a release that went live (ReleaseResult)
//   PHASE {json}                              the last line of a fleet phase short of publish (PhaseResult)
//   deps-base ID|none                         the upload's query: a kept release that has the artifact's node_modules
//   install: only the app layer was uploaded; ...   the release came as its app layer (infra/layers.ts)
// Both command providers (the official one and tools/pulumi-resource-command) fill the same two
// sources with these lines: the command's stdout output when it succeeds, and the error text
// (`...: running "CMD":\n<stdout and stderr>`) when it fails. How a CLI prints progress differs
// between them (status lines vs. diagnostics), so nothing here depends on that.

/** One step of the release sequence and how long it took on the VPS. */
export interface StepTiming {
  name: string;
  seconds: number;
}

/** The fields of the script's last line, `RESULT {json}`. */
export interface ReleaseResult {
  releaseId: string;
  previousReleaseId: string;
  artifactSha256: string;
  /** When the release went live (UTC, from the VPS clock). */
  activatedAt: string;
  /** The Prisma migrations the live release carries (folder names, sorted). */
  migrations: string[];
  /** The steps that ran, in order (absent in the RESULT of releases made before this field). */
  steps?: StepTiming[];
}

export interface ReleaseOutput {
  /** Steps in the order they ran; each step once. */
  steps: StepTiming[];
  /** Every `healthy after` line: the preflight's first, then the live one. */
  healthy: { after: string; url: string; body: string }[];
  /** The RESULT, when the release ran to the end. */
  result?: ReleaseResult;
  /** `release ID failed at step STEP`, when it failed. */
  failure?: { releaseId: string; step: string };
  /** `error:` lines and failed health checks, de-duplicated, in order. */
  errors: string[];
}

/** The fields of a fleet phase's last line, `PHASE {json}`, for the phases before publish. */
export interface PhaseResult {
  phases: string;
  releaseId: string;
  host: string;
  steps: StepTiming[];
}

export function parsePhaseResult(stdout: string): PhaseResult | undefined {
  const line = stdout.split("\n").map((l) => l.trim()).reverse().find((l) => l.startsWith("PHASE {"));
  return line === undefined ? undefined : (JSON.parse(line.slice("PHASE ".length)) as PhaseResult);
}

/** Whether a release's output says only its app layer was uploaded (release.lib.sh stage_deps). */
export function onlyAppLayerUploaded(text: string): boolean {
  return /(?:^|\s)install: only the app layer was uploaded;/m.test(text);
}

/** The release id in a `deps-base` line (the upload's query, scripts/release.ts depsBaseScript); undefined for none. */
export function parseDepsBase(stdout: string): string | undefined {
  const m = /^deps-base ([0-9a-f]{12})$/m.exec(stdout.trim());
  return m ? m[1] : undefined;
}

const RESULT_PREFIX = "RESULT ";

export function parseReleaseResult(stdout: string): ReleaseResult | undefined {
  const line = stdout.split("\n").map((l) => l.trim()).reverse().find((l) => l.startsWith(RESULT_PREFIX));
  return line === undefined ? undefined : (JSON.parse(line.slice(RESULT_PREFIX.length)) as ReleaseResult);
}

/**
 * Reads the protocol's lines from any text that holds them: a command's stdout, a provider's error
 * text, a whole `pulumi up` log. A line may carry a prefix before the protocol word (a CLI's
 * resource column, `error:` of a diagnostic); the same line printed twice counts once.
 */
export function parseReleaseOutput(text: string): ReleaseOutput {
  const out: ReleaseOutput = { steps: [], healthy: [], errors: [] };
  const seenSteps = new Set<string>();
  const seenErrors = new Set<string>();
  const seenHealthy = new Map<string, ReleaseOutput["healthy"][number]>();
  const clean = text.replace(/\r\n/g, "\n").replace(/\x1b\[[0-9;]*m/g, "");
  for (const raw of clean.split("\n")) {
    const line = raw.trim();
    let m: RegExpExecArray | null;
    if ((m = /(?:^|\s)step (\w+)\s+([\d.]+)s$/.exec(line))) {
      if (seenSteps.has(m[1])) continue;
      seenSteps.add(m[1]);
      out.steps.push({ name: m[1], seconds: Number(m[2]) });
    } else if ((m = /(?:^|\s)healthy after ([\d.]+s): (\S+) (.*)$/.exec(line))) {
      // The same line again (a CLI prints a line cut to its width live, then whole): keep the longer.
      const key = `${m[1]} ${m[2]}`;
      const seen = seenHealthy.get(key);
      if (seen) {
        if (m[3].length > seen.body.length) seen.body = m[3];
        continue;
      }
      const h = { after: m[1], url: m[2], body: m[3] };
      seenHealthy.set(key, h);
      out.healthy.push(h);
    } else if ((m = /(?:^|\s)RESULT (\{.*\})$/.exec(line))) {
      out.result = JSON.parse(m[1]) as ReleaseResult;
    } else if ((m = /(?:^|\s)release ([0-9a-f]{12}) failed at step (\w+)/.exec(line))) {
      out.failure ??= { releaseId: m[1], step: m[2] };
    } else if ((m = /(?:^|\s)(error: .*|health: .*not healthy.*)$/.exec(line))) {
      // A provider's error quotes the command it ran (`...: running "CMD":`); the command is noise here.
      const e = m[1].replace(/^error: (?:error: )+/, "error: ").replace(/: running ".*$/, "");
      if (seenErrors.has(e)) continue;
      seenErrors.add(e);
      out.errors.push(e);
    }
  }
  if (out.result?.steps && out.steps.length === 0) out.steps = out.result.steps;
  return out;
}

/** Seconds per step name (a step that ran twice is summed). */
export function stepSeconds(steps: StepTiming[]): Record<string, number> {
  const byName: Record<string, number> = {};
  for (const s of steps) byName[s.name] = Math.round(((byName[s.name] ?? 0) + s.seconds) * 100) / 100;
  return byName;
}

/**
 * Whether a `pulumi up` log shows the release command run (created, updated or replaced): the
 * engine's own resource lines, which both providers produce alike. An up that changed nothing has none.
 * On a fleet, a host's publish command is its activation.
 */
export function activationRan(log: string): boolean {
  return /command:remote:Command \S*-(?:activate|publish) (?:\*\*)?(?:creat|updat|replac)/.test(log);
}

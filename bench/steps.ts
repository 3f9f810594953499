// Seconds per step from the output of each flow. Pure.

/**
 * Sums `step NAME 1.23s` lines, as the seed baseline prints them (a step that runs twice counts
 * twice). Our release's steps come from the remote protocol instead (infra/protocol.ts, in flows.ts).
 * Where a log holds a Diagnostics summary (a `pulumi up` that printed them twice), only it counts.
 */
export function parseStepLines(out: string): Record<string, number> {
  const steps: Record<string, number> = {};
  const section = out.includes("Diagnostics:") ? out.slice(out.indexOf("Diagnostics:")) : out;
  for (const m of section.matchAll(/^\s*step (\w+)\s+([\d.]+)s$/gm)) steps[m[1]] = round2((steps[m[1]] ?? 0) + Number(m[2]));
  return steps;
}

/**
 * Sums, per Capistrano task, the durations of its remote commands from Capistrano's default
 * (airbrussh) output: a `00:12 app:install` line opens a task, `✔ 01 user@host 23.443s` closes a
 * command. The task's namespace is dropped when it is `deploy` (deploy:symlink:release -> symlink:release).
 */
export function parseCapTasks(out: string): Record<string, number> {
  const steps: Record<string, number> = {};
  let task = "";
  for (const line of out.split("\n")) {
    const t = /^\d\d:\d\d (\S+)\s*$/.exec(line);
    if (t) {
      task = t[1].replace(/^deploy:/, "");
      continue;
    }
    const c = /^\s*✔ \d+ \S+ ([\d.]+)s\s*$/.exec(line);
    if (c && task) steps[task] = round2((steps[task] ?? 0) + Number(c[1]));
  }
  return steps;
}

export function sumSteps(steps: Record<string, number>): number {
  return round2(Object.values(steps).reduce((a, b) => a + b, 0));
}

export function round2(n: number): number {
  return Math.round(n * 100) / 100;
}

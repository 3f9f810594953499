// The SVG chart of the bench: per artifact and scenario, each flow's wall time and failed requests
// as horizontal bars. Pure, no dependency: results in, SVG text out.
import { ARTIFACTS, BenchResults, FLOW_LABELS, FLOWS, FlowName, SCENARIOS, ScenarioKey, summaries } from "./report";

const SHORT: Record<ScenarioKey, string> = {
  first: "first deploy",
  noop: "no-op up",
  sameDeps: "new release, same deps",
  changedDeps: "new release, changed deps",
  rollback: "rollback",
  crash: "crashing release + recovery",
};
const COLORS: Record<FlowName, string> = { ours: "#2b6cb0", seed: "#c05621", cap: "#6b7280" };

const WIDTH = 900;
const LABEL_W = 190;
const WALL_X = 200;
const WALL_W = 300;
const FAIL_X = 560;
const FAIL_W = 200;
const BAR_H = 11;
const BAR_GAP = 3;

export function escapeXml(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
}

/** Bar length for failed requests: log scale, so 3 and 30,000 both show; 0 draws nothing. */
export function logLength(n: number, max: number, width: number): number {
  if (n <= 0 || max <= 0) return 0;
  return Math.max(1, (Math.log10(1 + n) / Math.log10(1 + max)) * width);
}

export function renderChart(r: BenchResults): string {
  const sums = summaries(r);
  const flows = FLOWS.filter((f) => ARTIFACTS.some((a) => SCENARIOS.some((s) => sums[a]?.[s]?.[f])));
  const all = ARTIFACTS.flatMap((a) => SCENARIOS.flatMap((s) => flows.map((f) => sums[a]?.[s]?.[f]))).filter((x) => x !== undefined);
  const maxWall = Math.max(1, ...all.map((x) => x.wallMax));
  const maxFailed = Math.max(1, ...all.map((x) => x.failed ?? 0));
  const body: string[] = [];
  let y = 20;
  const text = (x: number, yy: number, s: string, extra = "") => body.push(`<text x="${x.toFixed(1)}" y="${yy.toFixed(1)}"${extra}>${escapeXml(s)}</text>`);

  text(10, y, `Deploy benchmark, ${r.date}: ${r.machine.split(";")[0]}; median of ${r.runs} run${r.runs === 1 ? "" : "s"}`, ' font-weight="bold"');
  y += 22;
  let lx = 10;
  for (const f of flows) {
    body.push(`<rect x="${lx}" y="${y - 10}" width="12" height="12" fill="${COLORS[f]}"/>`);
    text(lx + 17, y, FLOW_LABELS[f]);
    lx += 30 + FLOW_LABELS[f].length * 7;
  }
  y += 20;
  const axisTop = y - 12;
  text(WALL_X, y, "wall time, seconds: median, whisker min–max", ' fill="#444"');
  text(FAIL_X, y, "failed requests under load (log scale)", ' fill="#444"');
  y += 16;

  for (const a of ARTIFACTS) {
    const rows = sums[a];
    const info = r.artifacts[a];
    if (!rows || !info) continue;
    y += 10;
    text(10, y, info.label, ' font-weight="bold"');
    y += 8;
    for (const s of SCENARIOS) {
      const row = rows[s];
      if (!row) continue;
      const present = flows.filter((f) => row[f]);
      const groupH = present.length * (BAR_H + BAR_GAP);
      text(LABEL_W, y + groupH / 2 + 4, SHORT[s], ' text-anchor="end"');
      for (const f of present) {
        const x = row[f]!;
        const w = (x.wall / maxWall) * WALL_W;
        body.push(`<rect x="${WALL_X}" y="${y}" width="${w.toFixed(1)}" height="${BAR_H}" fill="${COLORS[f]}"><title>${escapeXml(`${FLOW_LABELS[f]}: ${x.wall.toFixed(2)} s`)}</title></rect>`);
        let labelX = WALL_X + w + 4;
        if (x.n > 1 && x.wallMax > x.wallMin) {
          // The spread: a whisker from the fastest to the slowest run, across the median's bar.
          const x0 = WALL_X + (x.wallMin / maxWall) * WALL_W;
          const x1 = WALL_X + (x.wallMax / maxWall) * WALL_W;
          const mid = y + BAR_H / 2;
          body.push(`<path d="M${x0.toFixed(1)} ${mid}H${x1.toFixed(1)}M${x0.toFixed(1)} ${y + 2}V${y + BAR_H - 2}M${x1.toFixed(1)} ${y + 2}V${y + BAR_H - 2}" stroke="#111" stroke-width="1" fill="none">` +
            `<title>${escapeXml(`${FLOW_LABELS[f]}: ${x.wallMin.toFixed(2)}–${x.wallMax.toFixed(2)} s over ${x.n} runs`)}</title></path>`);
          labelX = Math.max(labelX, x1 + 4);
        }
        text(labelX, y + BAR_H - 2, x.wall.toFixed(1), ' font-size="10"');
        if (x.failed === null) {
          text(FAIL_X, y + BAR_H - 2, "no load (nothing served yet)", ' font-size="10" fill="#888"');
        } else {
          const fw = logLength(x.failed, maxFailed, FAIL_W);
          if (fw > 0) body.push(`<rect x="${FAIL_X}" y="${y}" width="${fw.toFixed(1)}" height="${BAR_H}" fill="${COLORS[f]}"><title>${escapeXml(`${FLOW_LABELS[f]}: ${x.failed} failed`)}</title></rect>`);
          const down = x.downtime !== null && x.downtime > 0 ? `, down ${x.downtime.toFixed(1)} s` : "";
          text(FAIL_X + fw + 4, y + BAR_H - 2, `${x.failed}${down}`, ' font-size="10"');
        }
        y += BAR_H + BAR_GAP;
      }
      y += 8;
    }
  }
  const height = Math.ceil(y + 10);
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" viewBox="0 0 ${WIDTH} ${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="${WIDTH}" height="${height}" fill="#fff"/>`,
    `<line x1="${WALL_X}" y1="${axisTop}" x2="${WALL_X}" y2="${height - 10}" stroke="#ccc"/>`,
    `<line x1="${FAIL_X}" y1="${axisTop}" x2="${FAIL_X}" y2="${height - 10}" stroke="#ccc"/>`,
    ...body,
    "</svg>",
    "",
  ].join("\n");
}

import assert from "node:assert/strict";
import { test } from "node:test";
import { results, sample } from "./fixtures";
import { formatBytes, median, ratio, renderReport, slowestSteps, summarize } from "./report";

test("median takes the middle (the upper one of an even count)", () => {
  assert.equal(median([3, 1, 2]), 2);
  assert.equal(median([4, 1, 3, 2]), 3);
  assert.ok(Number.isNaN(median([])));
});

test("ratio is ours ÷ baseline, and – without a baseline", () => {
  assert.equal(ratio(2, 8), "0.25×");
  assert.equal(ratio(2, undefined), "–");
  assert.equal(ratio(undefined, 3), "–");
  assert.equal(ratio(2, 0), "–");
});

test("formatBytes", () => {
  assert.equal(formatBytes(0), "0");
  assert.equal(formatBytes(38448), "38 KB");
  assert.equal(formatBytes(2048), "2.0 KB");
  assert.equal(formatBytes(66172385), "63.1 MB");
});

test("summarize keeps the steps of the median sample and medians of the rest", () => {
  const s = summarize([sample(10, { failed: 3 }), sample(30, { failed: 1 }), sample(20, { failed: 2, steps: { x: 1 } })]);
  assert.equal(s.wall, 20);
  assert.deepEqual(s.steps, { x: 1 });
  assert.equal(s.failed, 2);
  assert.equal(summarize([sample(1, { failed: null })]).failed, null);
});

test("slowestSteps lists the top three, or says there was no remote work", () => {
  assert.equal(slowestSteps({ a: 1, b: 3, c: 2, d: 0.5 }), "b 3.00, c 2.00, a 1.00");
  assert.equal(slowestSteps({}), "no remote work");
});

test("renderReport: one row per scenario, flows as a / b / c, ratios and floors", () => {
  const md = renderReport(results());
  assert.match(md, /^Machine: 2 × Test CPU\. 2026-11-25; median of 3 runs\. Columns list ours \/ seed script \/ Capistrano\./);
  assert.match(md, /\| first deploy \| 20\.00 \/ 40\.00 \/ – \| 0\.50× \| – \| 11\.00 \/ 21\.00 \/ – \| 1\.0 KB \/ 1\.0 KB \/ – \|/);
  assert.match(md, /\| release that crashes at start, until serving again \| 5\.00 \/ 60\.00 \/ 30\.00 \| 0\.08× \| 0\.17× \|.* \| 0 \/ 5000 \/ 800 \| 0\.0 \/ 42\.5 \/ 12\.0 \|/);
  assert.match(md, /one SSH round trip \(a new connection, `ssh true`\) 0\.30 s/);
  assert.match(md, /`pm2 reload` of the app .* 3\.50 s/);
  assert.doesNotMatch(md, /\| no-op/);
  assert.doesNotMatch(md, /failed \(their/);
});

test("renderReport names the sequences that failed", () => {
  const r = results();
  r.failures.push("run 1, small, cap: cap bench deploy failed (exit 1):\nlots of output");
  assert.match(renderReport(r), /Sequences that failed \(their other figures are above\): run 1, small, cap: cap bench deploy failed \(exit 1\):\.$/);
});

test("renderReport: with several runs each wall cell shows the median and the spread", () => {
  const r = results();
  r.samples.small!.noop = { ours: [sample(4.2), sample(3.9), sample(4.6)], seed: [sample(1)] };
  const md = renderReport(r);
  assert.match(md, /\| scenario \| wall s, median \(min–max\) \|/);
  assert.match(md, /\| no-op `up` \(same artifact again\) \| 4\.20 \(3\.90–4\.60\) \/ 1\.00 \/ – \| 4\.20× \|/);
});

test("renderReport: the engine floor, an empty program's no-op up, against ours", () => {
  const r = results();
  r.samples.small!.noop = { ours: [sample(2.4)] };
  r.floors.emptyProgram = [2.1, 2.0, 2.2];
  assert.match(renderReport(r), /an empty Pulumi program's `up` with nothing to do 2\.10 s quiet \(the same CLI, language host and backend; ours, the no-op row: 2\.40 s, 1\.14×, goal at most 1\.2×\)/);
  r.floors.emptyProgram = [];
  assert.match(renderReport(r), /nothing to do – quiet \(the same CLI, language host and backend; ours, the no-op row: 2\.40 s, –, goal/);
  // Measured under the same load as the no-op row: ours is set against that one.
  r.floors.emptyProgram = [1.0];
  r.floors.emptyProgramLoaded = [2.0, 2.2, 1.9];
  assert.match(renderReport(r), /nothing to do 1\.00 s quiet, 2\.00 s under the bench's load \(right after ours' no-op row\) \(the same CLI, language host and backend; ours, the no-op row: 2\.40 s, 1\.20× of the loaded one, goal at most 1\.2×\)/);
});

import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { test } from "node:test";
import { escapeXml, logLength, renderChart } from "./chart";
import { results, sample } from "./fixtures";

test("logLength: 0 draws nothing, the maximum the full width, small counts stay visible", () => {
  assert.equal(logLength(0, 5000, 250), 0);
  assert.equal(logLength(5000, 5000, 250), 250);
  assert.ok(logLength(1, 5000, 250) >= 1);
  assert.ok(logLength(50, 5000, 250) > logLength(5, 5000, 250));
});

test("escapeXml", () => {
  assert.equal(escapeXml(`a<b & "c">`), "a&lt;b &amp; &quot;c&quot;&gt;");
});

test("renderChart: a bar per flow and scenario, labelled values, well-formed XML", () => {
  const svg = renderChart(results());
  assert.match(svg, /^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg" width="900" height="\d+"/);
  assert.equal((svg.match(/<title>ours: /g) ?? []).length, 2); // wall time of both scenarios; 0 failed draws no bar
  assert.match(svg, /<title>seed script: 5000 failed<\/title>/);
  assert.match(svg, />5000, down 42\.5 s</);
  assert.match(svg, />no load \(nothing served yet\)</);
  assert.match(svg, />crashing release \+ recovery</);
  const xmllint = spawnSync("xmllint", ["--noout", "-"], { input: svg, encoding: "utf8" });
  if (xmllint.error === undefined) assert.equal(xmllint.status, 0, xmllint.stderr);
});

test("renderChart: a whisker from the fastest to the slowest run when there are several", () => {
  const r = results();
  r.samples.small!.noop = { ours: [sample(4), sample(3), sample(6)] };
  const svg = renderChart(r);
  assert.equal((svg.match(/<path d="M/g) ?? []).length, 1);
  assert.match(svg, /<title>ours: 3\.00–6\.00 s over 3 runs<\/title>/);
});

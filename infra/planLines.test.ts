import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ecosystemLine, envLine, hostLines, migrationsLine, provenanceFor, releaseLine, sourceOf } from "./planLines";

const A = "aaaaaaaaaaaa";
const B = "bbbbbbbbbbbb";
const next = { releaseId: B, migrations: ["1_init", "2_duration", "3_note"], source: "pulumi up" };

describe("preview lines", () => {
  it("name the release going live: first deploy, old -> new, kept release, unchanged", () => {
    assert.equal(releaseLine({}, next), `release: (none) -> ${B} (first deploy, a new artifact; pulumi up)`);
    assert.equal(releaseLine({ releaseId: A }, next), `release: ${A} -> ${B} (a new artifact; pulumi up)`);
    assert.equal(releaseLine({ releaseId: A }, { releaseId: B, source: "rollback requested T" }),
      `release: ${A} -> ${B} (a release kept on the VPS; rollback requested T)`);
    assert.equal(releaseLine({ releaseId: B }, next), `release: ${B} stays live`);
  });

  it("list the migrations the artifact carries that the live release lacks", () => {
    assert.equal(migrationsLine({ releaseId: A, migrations: ["1_init", "2_duration"] }, next),
      "migrations: 1 pending, run before the switch after a backup: 3_note");
    assert.equal(migrationsLine({ releaseId: A, migrations: next.migrations }, next),
      `migrations: none pending (the live release ${A} has them all)`);
    assert.equal(migrationsLine({ releaseId: A }, next),
      "migrations: the artifact carries 3: 1_init, 2_duration, 3_note (pending ones run before the switch)");
    assert.match(migrationsLine({ releaseId: A }, { releaseId: B, source: "x" }) ?? "", /kept release/);
    assert.equal(migrationsLine({ releaseId: B, migrations: [] }, next), undefined);
  });

  it("tell ecosystem and .env changes by key names and hashes, never values", () => {
    assert.equal(ecosystemLine({ ecosystemHash: "h1" }, "h1"), "ecosystem.config.js: unchanged");
    assert.match(ecosystemLine({ ecosystemHash: "h1" }, "h2"), /changes/);
    assert.equal(ecosystemLine({}, "h2"), "ecosystem.config.js: written");
    assert.equal(envLine({ envKeys: ["A", "B"], envHash: "x" }, ["B", "C"], "y"),
      ".env: keys added: C; keys removed: A (the live release is reloaded with it)");
    assert.equal(envLine({ envKeys: ["A"], envHash: "x" }, ["A"], "y"),
      ".env: values change (keys unchanged; values are never shown) (the live release is reloaded with it)");
    assert.equal(envLine({ envKeys: ["A"], envHash: "x" }, ["A"], "x"), ".env: unchanged");
    assert.equal(envLine({}, [], "x"), ".env: written with keys (none)");
  });

  it("record where a release came from, and ignore a provenance of another release", () => {
    const p = { kind: "promote" as const, releaseId: B, fromStack: "staging", artifactSha256: "c".repeat(64), requestedAt: "T" };
    assert.equal(sourceOf(undefined), "pulumi up");
    assert.equal(sourceOf(p), `promote from staging sha256 ${"c".repeat(64)} requested T`);
    assert.equal(sourceOf({ kind: "rollback", releaseId: B, requestedAt: "T" }), "rollback requested T");
    assert.equal(provenanceFor(p, B), p);
    assert.equal(provenanceFor(p, A), undefined);
  });

  it("a fleet: one line per host, what it runs and what it will, with its publish batch", () => {
    const hs = ["10.0.0.11:22", "10.0.0.12:22", "10.0.0.13:22"];
    assert.deepEqual(hostLines({ [hs[0]]: { releaseId: A }, [hs[1]]: { releaseId: B } }, hs, next, 2), [
      `host 10.0.0.11:22: ${A} -> ${B} (publish batch 1 of 2)`,
      `host 10.0.0.12:22: ${B} stays live (publish batch 1 of 2)`,
      `host 10.0.0.13:22: (none) -> ${B} (publish batch 2 of 2)`,
    ]);
    assert.deepEqual(hostLines(undefined, hs.slice(0, 1), next, 0), [`host 10.0.0.11:22: (none) -> ${B} (publish batch 1 of 1)`]);
  });
});


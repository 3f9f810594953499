// What the ops commands read from a stack's outputs for one host: a single VPS's from the
// top-level outputs (its `hosts` output is {}), a fleet host's from `hosts`, keyed by host:port.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { recordedFor, StackHost } from "./stacks";

const A = "aaaaaaaaaaaa";
const B = "bbbbbbbbbbbb";
const one: StackHost = { host: "127.0.0.1", port: "2222", hostKey: "", label: "127.0.0.1:2222", fleet: false };
const fleetHost = (label: string): StackHost => ({ host: label.split(":")[0], port: "22", hostKey: "", label, fleet: true });

describe("recordedFor", () => {
  it("reads a single VPS's record from the top-level outputs, whatever the hosts output holds", () => {
    for (const hosts of ["{}", "", undefined]) {
      const out: Record<string, string> = { releaseId: A, previousReleaseId: B, ...(hosts === undefined ? {} : { hosts }) };
      assert.deepEqual(recordedFor(out, one), { releaseId: A, previousReleaseId: B });
    }
  });

  it("reads a fleet host's record from the hosts output by host:port, not the top-level one", () => {
    const out = {
      releaseId: A, previousReleaseId: B,
      hosts: JSON.stringify({ "10.0.0.1:22": { releaseId: B, previousReleaseId: A }, "10.0.0.2:22": { releaseId: A } }),
    };
    assert.deepEqual(recordedFor(out, fleetHost("10.0.0.1:22")), { releaseId: B, previousReleaseId: A });
    assert.deepEqual(recordedFor(out, fleetHost("10.0.0.2:22")), { releaseId: A, previousReleaseId: "" });
  });

  it("a fleet host with no record (a new host, no up yet, unreadable output) reads as none", () => {
    for (const hosts of ["{}", "", "not json", "null", JSON.stringify({ "10.0.0.9:22": { releaseId: A } })]) {
      assert.deepEqual(recordedFor({ releaseId: A, hosts }, fleetHost("10.0.0.1:22")), { releaseId: "", previousReleaseId: "" });
    }
  });
});

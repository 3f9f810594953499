import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { renderFleetTable } from "./fleet";

describe("fleet bench table", () => {
  it("prints min / median / max per host count and the 3-to-1 ratio of the medians", () => {
    const t = renderFleetTable([
      { hosts: 3, wall: 12, vps: 8 }, { hosts: 1, wall: 10, vps: 7 },
      { hosts: 3, wall: 13, vps: 9 }, { hosts: 1, wall: 11, vps: 7.5 },
      { hosts: 3, wall: 15, vps: 9.5 }, { hosts: 1, wall: 9, vps: 6 },
    ]);
    assert.match(t, /^\| 1 host \| 10\.00 \(9\.00–11\.00\) \| 7\.00 \(6\.00–7\.50\) \|$/m);
    assert.match(t, /^\| 3 hosts \| 13\.00 \(12\.00–15\.00\) \| 9\.00 \(8\.00–9\.50\) \|$/m);
    assert.match(t, /3 hosts \/ 1 host, median wall: 1\.30× \(goal: at most 1\.3×\)/);
  });
});

// Results for the unit tests of the report and the chart.
import { BenchResults, Sample } from "./report";

export const sample = (wall: number, extra: Partial<Sample> = {}): Sample => ({ wall, steps: { install: wall / 2, reload: 1 }, uploaded: 1000, failed: 0, requests: 100, downtime: 0, ...extra });

export function results(): BenchResults {
  return {
    date: "2026-11-25",
    machine: "2 × Test CPU",
    runs: 3,
    artifacts: { small: { label: "small app", bytes: 38448, nodeModulesBytes: null } },
    samples: {
      small: {
        first: { ours: [sample(20, { failed: null, requests: null, downtime: null })], seed: [sample(40, { failed: null, requests: null, downtime: null })] },
        crash: { ours: [sample(5)], seed: [sample(60, { failed: 5000, downtime: 42.5 })], cap: [sample(30, { failed: 800, downtime: 12 })] },
      },
    },
    floors: { sshRoundTrip: [0.3, 0.2, 0.4], pm2Reload: [3.5], emptyProgram: [] },
    failures: [],
  };
}

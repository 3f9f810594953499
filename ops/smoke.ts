// Smoke check of a deployed stack: its `healthUrl` output is on the VPS's loopback, so it is asked
// on the VPS over SSH with the stack's own connection config; on a fleet, on every host.
//   node --import tsx ops/smoke.ts --stack staging [--timeout 30]
// Prints `STATUS BODY` and exits 0 only for a 200 whose JSON `release` (when present) is the
// stack's `releaseId`; retries until --timeout seconds (default 30).
import { askHealthEverywhere, healthy, openStack, outputsOf, parseFlags, runCli, UsageError } from "./stacks";

async function main(): Promise<void> {
  const f = parseFlags(process.argv.slice(2), { values: ["stack", "timeout"] });
  if (typeof f.stack !== "string") throw new UsageError("--stack is required");
  const timeout = Number(f.timeout ?? 30);
  if (!Number.isFinite(timeout) || timeout < 0) throw new UsageError(`--timeout: expected seconds, got ${JSON.stringify(f.timeout)}`);
  const stack = await openStack(f.stack);
  const out = await outputsOf(stack);
  if (!out.healthUrl || !out.releaseId) throw new UsageError(`stack ${f.stack} records no release (outputs healthUrl, releaseId)`);

  const deadline = Date.now() + timeout * 1000;
  let answer = "";
  for (;;) {
    answer = await askHealthEverywhere(stack, out.healthUrl, out.releaseId);
    if (healthy(answer, out.releaseId) || Date.now() >= deadline) break;
    await new Promise((resolve) => setTimeout(resolve, 2000));
  }
  console.log(answer);
  if (!healthy(answer, out.releaseId)) {
    throw new Error(`${f.stack}: ${out.healthUrl} on the VPS is not healthy for release ${out.releaseId} after ${timeout}s: ${answer}`);
  }
}

if (require.main === module) runCli(main);

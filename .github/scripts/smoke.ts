// Smoke check of a deployed stack: its `healthUrl` output is on the VPS's loopback, so it is asked
// on the VPS over SSH with the stack's own connection config.
//   node --import tsx .github/scripts/smoke.ts --stack staging [--timeout 30]
// Prints `STATUS BODY` and exits 0 only for a 200 whose JSON `release` (when present) is the
// stack's `releaseId`; retries until --timeout seconds (default 30).
import { quote } from "../../infra/shell";
import { openStack, outputsOf, parseFlags, runCli, sshToStack, UsageError } from "../../scripts/stacks";

/** The shell line run on the VPS: one GET with Node's fetch, printing `STATUS BODY` (0 when unreachable). */
export function probeScript(url: string): string {
  const js = 'fetch(process.argv[1]).then(async r => console.log(r.status + " " + (await r.text()).slice(0, 500)))' +
    '.catch(e => console.log("0 " + e.message))';
  return `node -e ${quote(js)} ${quote(url)}`;
}

/** Whether an answer is healthy for `releaseId`: 200, and a JSON `release`, if any, naming it. */
export function healthy(answer: string, releaseId: string): boolean {
  const space = answer.indexOf(" ");
  const status = space === -1 ? answer : answer.slice(0, space);
  if (status !== "200") return false;
  let release: unknown;
  try {
    release = (JSON.parse(answer.slice(space + 1)) as { release?: unknown }).release;
  } catch {
    return true; // a 200 that is not JSON: the app's health path need not answer JSON
  }
  return release === undefined || release === releaseId;
}

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
    const r = await sshToStack(stack, probeScript(out.healthUrl));
    answer = r.stdout.trim() || `0 ssh: ${r.stderr.trim()}`;
    if (healthy(answer, out.releaseId) || Date.now() >= deadline) break;
    await new Promise((resolve) => setTimeout(resolve, 2000));
  }
  console.log(answer);
  if (!healthy(answer, out.releaseId)) {
    throw new Error(`${f.stack}: ${out.healthUrl} on the VPS is not healthy for release ${out.releaseId} after ${timeout}s: ${answer}`);
  }
}

if (require.main === module) runCli(main);

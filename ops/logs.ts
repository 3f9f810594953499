// npm run logs -- --stack S [--lines N] [--follow] [--err] [--release] [--host HOST:PORT]: the app's
// output (shared/logs/out.log, or err.log with --err), or with --release the release runs' own log
// (shared/logs/release.log), from the stack's VPS; on a fleet, every host in turn (or --host).
// --follow streams until Ctrl-C (one host: the primary, or --host).
import { layout } from "../infra/paths";
import { quote } from "../infra/shell";
import { hostsOf, openStack, pickHost, rootOf, parseFlags, runCli, sshToStackAttached, UsageError } from "./stacks";

/** The remote command: the last N lines of one log, then (follow) everything it gets. Pure. */
export function logsScript(file: string, lines: number, follow: boolean): string {
  return `if [ ! -f ${quote(file)} ]; then echo ${quote(`no ${file} on this host yet`)} >&2; exit 1; fi; ` +
    `exec tail -n ${lines}${follow ? " -F" : ""} ${quote(file)}`;
}

async function main(): Promise<void> {
  const f = parseFlags(process.argv.slice(2), { values: ["stack", "lines", "host"], flags: ["follow", "err", "release"] });
  if (typeof f.stack !== "string") throw new UsageError("--stack is required (npm run logs -- --stack staging [--lines 100] [--follow] [--err] [--release])");
  const lines = Number(f.lines ?? 100);
  if (!Number.isInteger(lines) || lines < 0) throw new UsageError(`--lines: expected a whole number, got ${JSON.stringify(f.lines)}`);
  if (f.err === true && f.release === true) throw new UsageError("--err and --release name different logs; pick one");
  const stack = await openStack(f.stack);
  const l = layout(await rootOf(stack));
  const file = f.release === true ? l.releaseLog : f.err === true ? l.errLog : l.outLog;
  let hosts = await hostsOf(stack);
  if (typeof f.host === "string") hosts = [pickHost(hosts, f.host, f.stack)];
  if (f.follow === true) hosts = hosts.slice(0, 1);
  let rc = 0;
  for (const h of hosts) {
    if (hosts.length > 1) console.log(`==> host ${h.label}: ${file}`);
    rc = (await sshToStackAttached(stack, logsScript(file, lines, f.follow === true), h)) || rc;
  }
  process.exitCode = rc;
}

if (require.main === module) runCli(main);

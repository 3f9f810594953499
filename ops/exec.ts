// npm run exec -- --stack S [--host HOST:PORT] -- CMD ARGS...: runs CMD in the live release's folder
// on the stack's VPS (a fleet's primary, or --host) with the app's environment: the shared .env,
// PORT, NODE_ENV and RELEASE_ID, as the deploy helper gives the app. Each argument is quoted through
// the one quoting function; CMD's exit status is this command's.
import { layout } from "../infra/paths";
import { quote } from "../infra/shell";
import { hostsOf, openStack, pickHost, rootOf, parseFlags, runCli, sshToStackAttached, UsageError } from "./stacks";

/** The remote command. Pure. */
export function execScript(root: string, argv: string[]): string {
  const l = layout(root);
  return `[ -L ${quote(l.current)} ] || { echo ${quote(`no live release: ${l.current} is not a link`)} >&2; exit 1; }; ` +
    `dir="$(readlink -f ${quote(l.current)})" && exec node ${quote(l.helper)} ${quote(l.ecosystem)} exec "$dir" -- ${argv.map(quote).join(" ")}`;
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const sep = argv.indexOf("--");
  if (sep === -1 || sep === argv.length - 1) throw new UsageError("usage: npm run exec -- --stack S [--host HOST:PORT] -- CMD ARGS... (e.g. -- npx prisma migrate status)");
  const f = parseFlags(argv.slice(0, sep), { values: ["stack", "host"] });
  if (typeof f.stack !== "string") throw new UsageError("--stack is required");
  const stack = await openStack(f.stack);
  const root = await rootOf(stack);
  const hosts = await hostsOf(stack);
  const host = typeof f.host === "string" ? pickHost(hosts, f.host, f.stack) : hosts[0];
  process.exitCode = await sshToStackAttached(stack, execScript(root, argv.slice(sep + 1)), host);
}

if (require.main === module) runCli(main);

// npm run releases -- --stack S: the releases kept on the stack's VPS, newest first, with their
// last activation (time, result) from revisions.log and the live and previous marks.
import { Stack } from "@pulumi/pulumi/automation";
import { layout } from "../infra/paths";
import { parseRevisions } from "../infra/scripts/deploy-helper";
import { quote } from "../infra/shell";
import { hostsOf, openStack, recordedFor, rootOf, outputsOf, parseFlags, runCli, sshToStack, StackHost, UsageError } from "./stacks";

/** The ids kept on every host of the stack (a fleet activates only what each host has). */
export async function keptEverywhere(stack: Stack): Promise<string[]> {
  const hosts = await hostsOf(stack);
  const each = await Promise.all(hosts.map(async (h) => new Set((await keptReleases(stack, h)).map((r) => r.id))));
  return [...each[0]].filter((id) => each.every((kept) => kept.has(id)));
}

export interface KeptRelease {
  id: string;
  /** Last activation recorded in revisions.log: time and result, if any. */
  time?: string;
  result?: string;
  /** Who asked for it: pulumi up, rollback, or promote from STACK with the artifact's sha256. */
  source?: string;
  live: boolean;
}

/** Lists releases/ on the VPS (complete ones: with REVISION), joined with revisions.log. */
export async function keptReleases(stack: Stack, host?: StackHost): Promise<KeptRelease[]> {
  const l = layout(await rootOf(stack));
  const r = await sshToStack(stack, `cd ${quote(l.releases)} 2>/dev/null || exit 0; ` +
    `for d in */REVISION; do [ -f "$d" ] && printf 'R %s %s\\n' "$(dirname "$d")" "$(stat -c %Y "$(dirname "$d")")"; done; ` +
    `printf 'L %s\\n' "$(basename "$(readlink ${quote(l.current)} 2>/dev/null)")"; sed 's/^/H /' ${quote(l.revisionsLog)} 2>/dev/null || true`, host);
  if (r.status !== 0) throw new Error(`could not list releases on ${host ? `host ${host.label}` : "the VPS"}: ${r.stderr || r.error?.message}`);
  const releases: { id: string; mtime: number }[] = [];
  let live = "";
  const history: string[] = [];
  for (const line of r.stdout.split("\n")) {
    if (line.startsWith("R ")) {
      const [, id, mtime] = line.split(" ");
      releases.push({ id, mtime: Number(mtime) });
    } else if (line.startsWith("L ")) {
      live = line.slice(2).trim();
    } else if (line.startsWith("H ")) {
      history.push(line.slice(2));
    }
  }
  const last = new Map(parseRevisions(history.join("\n")).map((h) => [h.releaseId, h] as const));
  return releases
    .sort((a, b) => b.mtime - a.mtime)
    .map(({ id }) => {
      const h = last.get(id);
      return { id, live: id === live, ...(h ? { time: h.time, result: h.result, source: h.source } : {}) };
    });
}

/** The Prisma migrations (folder names) each of `ids` carries on the host, sorted. */
export async function migrationsOf(stack: Stack, ids: string[], host?: StackHost): Promise<Record<string, string[]>> {
  const l = layout(await rootOf(stack));
  const r = await sshToStack(stack, `cd ${quote(l.releases)} 2>/dev/null || exit 0; for id in ${ids.map(quote).join(" ")}; do ` +
    `[ -d "$id" ] && find "$id" -path "$id/node_modules" -prune -o -type f -path '*/migrations/*/migration.sql' -print; done; true`, host);
  const out: Record<string, string[]> = Object.fromEntries(ids.map((id) => [id, []]));
  for (const line of r.stdout.split("\n")) {
    const parts = line.split("/");
    if (parts.length >= 3 && out[parts[0]] && !out[parts[0]].includes(parts[parts.length - 2])) out[parts[0]].push(parts[parts.length - 2]);
  }
  for (const id of ids) out[id].sort();
  return out;
}

async function main(): Promise<void> {
  const f = parseFlags(process.argv.slice(2), { values: ["stack"] });
  if (typeof f.stack !== "string") throw new UsageError("--stack is required (npm run releases -- --stack staging)");
  const stack = await openStack(f.stack);
  const out = await outputsOf(stack);
  const hosts = await hostsOf(stack);
  // A fleet: one section per host, the primary first, with what the stack records for it.
  for (const h of hosts) {
    const kept = await keptReleases(stack, h);
    const previous = recordedFor(out, h).previousReleaseId;
    if (hosts.length > 1) console.log(`host ${h.label}${h === hosts[0] ? " (primary)" : ""}`);
    console.log("release       mark      last activation        result  source");
    for (const r of kept) {
      const mark = r.live ? "live" : r.id === previous ? "previous" : "";
      console.log(`${r.id}  ${mark.padEnd(8)}  ${(r.time ?? "-").padEnd(21)}  ${(r.result ?? "-").padEnd(6)}  ${r.source ?? "-"}`);
    }
  }
}

if (require.main === module) runCli(main);

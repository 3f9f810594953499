// The decisions of npm run rollback and npm run promote, over a view of a stack: what it records,
// its last update, what its VPS keeps and answers. Pure of the Automation API, so each rule is
// unit-tested over a fake stack (decide.test.ts); rollback.ts and promote.ts only gather the view
// and act on the decision.
import { isReleaseId } from "../infra/artifact";
import { healthy, UsageError } from "./stacks";

/** What a command needs to know of a stack; each remote question is asked only when a rule needs it. */
export interface StackView {
  name: string;
  /** Its outputs, as text (ops/stacks.ts outputsOf). */
  outputs: Record<string, string>;
  /** Its last update, if any. */
  lastUpdate?: () => Promise<{ result: string; kind: string; startTime: Date | string } | undefined>;
  /** The release ids its VPS keeps (on a fleet, every host). */
  kept?: () => Promise<string[]>;
  /** Whether the stack deploys to several hosts (vps:hosts). */
  fleet?: boolean;
  /** Its health URL asked on its VPS: `STATUS BODY`. */
  health?: () => Promise<string>;
}

export type RollbackPlan = { kind: "nothing"; message: string } | { kind: "rollback"; from: string; to: string };

/** Where `npm run rollback -- --stack S [--to ID]` goes: the previous release, or ID, if kept. */
export async function planRollback(s: StackView, to?: string): Promise<RollbackPlan> {
  const target = to ?? s.outputs.previousReleaseId;
  if (!target) {
    throw new UsageError(`stack ${s.name} records no previous release; name one with --to ID (npm run releases -- --stack ${s.name})`);
  }
  if (!isReleaseId(target)) throw new UsageError(`--to ${JSON.stringify(target)}: expected a release id, 12 lowercase hex digits`);
  if (target === s.outputs.releaseId) return { kind: "nothing", message: `release ${target} is already live on ${s.name}; nothing to do` };
  const kept = s.kept ? await s.kept() : [];
  if (!kept.includes(target)) {
    throw new UsageError(`release ${target} is not kept on the VPS of ${s.name}${s.fleet ? " (on every host of the fleet)" : ""}; kept: ${kept.join(", ") || "none"}`);
  }
  return { kind: "rollback", from: s.outputs.releaseId ?? "", to: target };
}

export type PromotePlan = { kind: "nothing"; message: string } | { kind: "promote"; releaseId: string; sha256: string };

/**
 * Whether `npm run promote -- --from S1 --to S2` may deploy `artifact` (its path and sha256, or
 * none found) to S2: S1 records a release, its last update succeeded, it is healthy now, and the
 * tarball is the one S1 runs; nothing to do when S2 runs it already.
 */
export async function planPromotion(from: StackView, to: StackView, artifact: { path: string; sha256?: string }): Promise<PromotePlan> {
  if (from.name === to.name) throw new UsageError("--from and --to name the same stack");
  const id = from.outputs.releaseId;
  if (!id) throw new UsageError(`stack ${from.name} records no release to promote`);
  const last = from.lastUpdate ? await from.lastUpdate() : undefined;
  if (!last || last.result !== "succeeded") {
    throw new UsageError(`stack ${from.name}'s last update ${last ? `${last.result} (${last.kind}, ${last.startTime})` : "is missing"}; ` +
      `promote only from a stack whose last update succeeded (fix it with pulumi up -s ${from.name}, or roll it back)`);
  }
  const answer = from.health ? await from.health() : "0 not asked";
  if (!healthy(answer, id)) {
    throw new UsageError(`stack ${from.name}'s release ${id} is not healthy now (${from.outputs.healthUrl}: ${answer}); not promoting`);
  }
  if (!artifact.sha256) {
    throw new UsageError(`the tarball of ${from.name}'s release ${id} is not here${artifact.path ? ` (${artifact.path})` : ""}; ` +
      `pass it with --artifact PATH (the one CI built and deployed to ${from.name})`);
  }
  if (artifact.sha256 !== from.outputs.artifactSha256) {
    throw new UsageError(`${artifact.path} has sha256 ${artifact.sha256}, but ${from.name} runs ${from.outputs.artifactSha256}; refusing to promote other bytes`);
  }
  if (to.outputs.releaseId === id && to.outputs.artifactSha256 === artifact.sha256) {
    return { kind: "nothing", message: `${to.name} already runs ${id} (sha256 ${artifact.sha256}); nothing to do` };
  }
  return { kind: "promote", releaseId: id, sha256: artifact.sha256 };
}

/**
 * What a rollback to `target` does to the database, from the migrations each release carries: the
 * live release's newer ones stay applied (a rollback never reverts a schema; they must be
 * backward compatible: expand first, contract in a later release), and the target's own missing
 * ones run before it goes live. Undefined when both carry the same.
 */
export function migrationNote(target: { id: string; migrations: string[] }, live: { id: string; migrations: string[] }): string | undefined {
  const stay = live.migrations.filter((m) => !target.migrations.includes(m));
  const run = target.migrations.filter((m) => !live.migrations.includes(m));
  const parts: string[] = [];
  if (stay.length > 0) {
    parts.push(`these migrations of ${live.id} stay applied (${target.id} runs on the newer schema, so they must keep it ` +
      `working: expand/contract): ${stay.join(", ")}. To go back to the database before them: npm run restore`);
  }
  if (run.length > 0) parts.push(`${target.id} carries migrations ${live.id} has not: ${run.join(", ")} (they run before it goes live)`);
  return parts.length === 0 ? undefined : `database: ${parts.join("; ")}`;
}

/** A backup in backups/, taken before release `before` migrated. */
export interface Backup {
  name: string;
  /** The release that was about to migrate (the name's prefix). */
  before: string;
  /** When it was taken (seconds since the epoch). */
  time: number;
}

/** backups/ listed as `NAME MTIME` lines: the databases (a SQLite -wal belongs to its .db). Pure. */
export function parseBackups(lines: string[]): Backup[] {
  return lines.map((l) => l.trim().split(" ")).filter(([name, t]) => name && t && !/-wal$|-shm$/.test(name))
    .map(([name, t]) => ({ name, before: /^([0-9a-f]{12})-/.exec(name)?.[1] ?? "", time: Number(t) }))
    .sort((a, b) => b.time - a.time);
}

/** The release that was live when `b` was taken: the last activation that went live before it. */
export function releaseAt(b: Backup, revisions: { time: string; releaseId: string; result: string }[]): string {
  let live = "";
  for (const r of revisions) {
    if (Date.parse(r.time) / 1000 > b.time + 1) break;
    if (r.result === "ok" || r.result === "takeover") live = r.releaseId;
  }
  return live;
}

export type RestorePlan =
  | { kind: "list"; backups: (Backup & { matches: string; kept: boolean })[] }
  | { kind: "confirm" | "restore"; backup: Backup; release: string; message: string };

/**
 * `npm run restore -- --stack S [--backup NAME] [--yes]`: the backups with the release each matches;
 * for NAME, what a restore loses, and only with --yes the restore itself.
 */
export function planRestore(backups: Backup[], revisions: { time: string; releaseId: string; result: string }[], kept: string[],
  name: string | undefined, yes: boolean): RestorePlan {
  const listed = backups.map((b) => {
    const matches = releaseAt(b, revisions);
    return { ...b, matches, kept: kept.includes(matches) };
  });
  if (name === undefined) return { kind: "list", backups: listed };
  const b = listed.find((x) => x.name === name);
  if (!b) throw new UsageError(`no backup ${JSON.stringify(name)} on the VPS; there are: ${backups.map((x) => x.name).join(", ") || "none"}`);
  if (!b.matches) throw new UsageError(`no release was live when ${name} was taken (revisions.log has none before it); nothing matches it`);
  if (!b.kept) {
    throw new UsageError(`${name} matches release ${b.matches}, which is no longer kept on the VPS; restoring it under a newer release is not safe`);
  }
  const when = new Date(b.time * 1000).toISOString().replace(/\.\d+Z$/, "Z");
  const message = `restore ${name}: the database goes back to ${when}, taken before release ${b.before} migrated. ` +
    `Everything written to it since ${when} is lost. The app is stopped for the copy, then release ${b.matches}, ` +
    `the one live when the backup was taken, is activated.`;
  return { kind: yes ? "restore" : "confirm", backup: b, release: b.matches, message };
}

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

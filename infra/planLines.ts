// What a reviewer reads in `pulumi preview` (and `up`): the release going live, whether the PM2
// ecosystem or the .env keys change, and the migrations the new artifact brings. Pure: the live
// stack's last outputs and the planned values in, lines out. Never a value of app:env.
import type { Provenance } from "./config";

/** The stack's last outputs, read back from its own state (live.ts; absent on a new stack). */
export interface LiveOutputs {
  releaseId?: string;
  ecosystemHash?: string;
  envKeys?: string[];
  /** Secret in state; compared, never printed. */
  envHash?: string;
  migrations?: string[];
  /** A fleet: what each host runs, keyed by `host:port`. */
  hosts?: Record<string, { releaseId?: string }>;
}

export interface PlannedRelease {
  releaseId: string;
  /** The Prisma migrations the artifact carries; undefined when activating a release kept on the VPS. */
  migrations?: string[];
  source: string;
}

export function releaseLine(live: LiveOutputs, next: PlannedRelease): string {
  const how = next.migrations === undefined ? "a release kept on the VPS" : "a new artifact";
  if (!live.releaseId) return `release: (none) -> ${next.releaseId} (first deploy, ${how}; ${next.source})`;
  if (live.releaseId === next.releaseId) return `release: ${next.releaseId} stays live`;
  return `release: ${live.releaseId} -> ${next.releaseId} (${how}; ${next.source})`;
}

/**
 * A fleet: one line per host, what it runs now (the stack's `hosts` output) and what it will run;
 * a host the stack has not deployed yet says so.
 */
export function hostLines(live: LiveOutputs["hosts"], hosts: string[], next: PlannedRelease,
  rollout: number): string[] {
  const size = rollout > 0 ? rollout : hosts.length;
  return hosts.map((h, i) => {
    const now = live?.[h]?.releaseId;
    const batch = Math.floor(i / size) + 1;
    const what = now === next.releaseId ? `${next.releaseId} stays live` : `${now ?? "(none)"} -> ${next.releaseId}`;
    return `host ${h}: ${what} (publish batch ${batch} of ${Math.ceil(hosts.length / size)})`;
  });
}

export function ecosystemLine(live: LiveOutputs, plannedHash: string): string {
  if (live.ecosystemHash === undefined) return "ecosystem.config.js: written";
  return live.ecosystemHash === plannedHash ? "ecosystem.config.js: unchanged"
    : "ecosystem.config.js: changes (the live release is reloaded with it)";
}

/** Key names only. A change of values alone is told from the secret hashes, never shown. */
export function envLine(live: LiveOutputs, keys: string[], plannedHash: string): string {
  const names = (ks: string[]) => (ks.length === 0 ? "(none)" : ks.join(", "));
  if (live.envKeys === undefined) return `.env: written with keys ${names(keys)}`;
  const added = keys.filter((k) => !live.envKeys!.includes(k));
  const removed = live.envKeys.filter((k) => !keys.includes(k));
  const parts: string[] = [];
  if (added.length > 0) parts.push(`keys added: ${names(added)}`);
  if (removed.length > 0) parts.push(`keys removed: ${names(removed)}`);
  if (parts.length === 0 && live.envHash !== undefined && live.envHash !== plannedHash) {
    parts.push("values change (keys unchanged; values are never shown)");
  }
  return parts.length === 0 ? ".env: unchanged" : `.env: ${parts.join("; ")} (the live release is reloaded with it)`;
}

export function migrationsLine(live: LiveOutputs, next: PlannedRelease): string | undefined {
  if (live.releaseId === next.releaseId) return undefined;
  if (next.migrations === undefined) {
    return "migrations: none run for a kept release that already migrated (a newer database schema stays as it is)";
  }
  if (live.migrations === undefined) {
    return next.migrations.length === 0 ? "migrations: the artifact carries none"
      : `migrations: the artifact carries ${next.migrations.length}: ${next.migrations.join(", ")} (pending ones run before the switch)`;
  }
  const pending = next.migrations.filter((m) => !live.migrations!.includes(m));
  return pending.length === 0 ? `migrations: none pending (the live release ${live.releaseId} has them all)`
    : `migrations: ${pending.length} pending, run before the switch after a backup: ${pending.join(", ")}`;
}

/** What revisions.log records as the activation's source. */
export function sourceOf(provenance: Provenance | undefined): string {
  if (!provenance) return "pulumi up";
  if (provenance.kind === "rollback") return `rollback requested ${provenance.requestedAt}`;
  return `promote from ${provenance.fromStack ?? "?"} sha256 ${provenance.artifactSha256 ?? "?"} requested ${provenance.requestedAt}`;
}

/** The provenance that applies to the release being deployed: a stale one (another id) is ignored. */
export function provenanceFor(provenance: Provenance | undefined, releaseId: string): Provenance | undefined {
  return provenance?.releaseId === releaseId ? provenance : undefined;
}

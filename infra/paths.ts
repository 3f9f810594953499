// The VPS layout (DESIGN.md "On the VPS") as pure functions of the deploy root.
import * as path from "node:path";

export interface Layout {
  root: string;
  releases: string;
  shared: string;
  sharedEnv: string;
  /** The .env a root deployed the old way had in current/, carried over by the takeover (under shared/.env). */
  takeoverEnv: string;
  ecosystem: string;
  /** shared/bin/deploy-helper.js: the release's Node side (scripts/deploy-helper.js). */
  helper: string;
  /** shared/bin/ready-shim.js: the app's workers preload it (scripts/ecosystem.ts WORKER_PRELOAD). */
  readyShim: string;
  logs: string;
  /** Every release run's output (tee). */
  releaseLog: string;
  preflightLog: string;
  migrateLog: string;
  /** pm2 startOrReload's output. */
  pm2Log: string;
  outLog: string;
  errLog: string;
  data: string;
  backups: string;
  incoming: string;
  current: string;
  revisionsLog: string;
  lockFile: string;
  /** Who holds the lock: written by the release that holds it, emptied when it ends. */
  lockOwner: string;
  /** A fleet host's lease, held from its stage to its publish (release.lib.sh lease_take). */
  leaseFile: string;
  /** The project/stack that owns the root. */
  stackClaim: string;
  /** app:notify's webhook URL (a secret, 0600); empty: no messages. */
  notifyUrl: string;
  /** Which registration of the PM2 app is current: `pulumi destroy` stops the app only for that one. */
  appOwner: string;
}

export function layout(root: string): Layout {
  const j = (...parts: string[]) => path.posix.join(root, ...parts);
  return {
    root,
    releases: j("releases"),
    shared: j("shared"),
    sharedEnv: j("shared", ".env"),
    takeoverEnv: j("shared", ".env.takeover"),
    ecosystem: j("shared", "ecosystem.config.js"),
    helper: j("shared", "bin", "deploy-helper.js"),
    readyShim: j("shared", "bin", "ready-shim.js"),
    logs: j("shared", "logs"),
    releaseLog: j("shared", "logs", "release.log"),
    preflightLog: j("shared", "logs", "preflight.log"),
    migrateLog: j("shared", "logs", "migrate.log"),
    pm2Log: j("shared", "logs", "pm2-apply.log"),
    outLog: j("shared", "logs", "out.log"),
    errLog: j("shared", "logs", "err.log"),
    data: j("shared", "data"),
    backups: j("backups"),
    incoming: j(".incoming"),
    current: j("current"),
    revisionsLog: j("revisions.log"),
    lockFile: j(".deploy.lock"),
    lockOwner: j(".deploy.lock.owner"),
    leaseFile: j(".deploy.lease"),
    stackClaim: j(".stack"),
    appOwner: j("shared", ".pm2-app-owner"),
    notifyUrl: j("shared", ".notify-url"),
  };
}

/**
 * The layout as shell assignments for a remote script's header (RELEASES=..., ECOSYSTEM=...): the
 * scripts spell no VPS path of their own.
 */
export function layoutVars(l: Layout): Record<string, string> {
  return {
    ROOT: l.root,
    RELEASES: l.releases,
    SHARED: l.shared,
    SHARED_ENV: l.sharedEnv,
    TAKEOVER_ENV: l.takeoverEnv,
    ECOSYSTEM: l.ecosystem,
    HELPER: l.helper,
    LOGS: l.logs,
    OUT_LOG: l.outLog,
    ERR_LOG: l.errLog,
    RELEASE_LOG: l.releaseLog,
    PREFLIGHT_LOG: l.preflightLog,
    MIGRATE_LOG: l.migrateLog,
    PM2_LOG: l.pm2Log,
    DATA: l.data,
    BACKUPS: l.backups,
    INCOMING_DIR: l.incoming,
    CURRENT: l.current,
    REVISIONS: l.revisionsLog,
    LOCK_FILE: l.lockFile,
    LOCK_OWNER: l.lockOwner,
    LEASE_FILE: l.leaseFile,
    STACK_CLAIM: l.stackClaim,
    APP_OWNER: l.appOwner,
    NOTIFY_URL: l.notifyUrl,
  };
}

export function releaseDir(root: string, id: string): string {
  return path.posix.join(root, "releases", id);
}

/**
 * Where a tarball is uploaded: a temporary name, because a provider may write straight to it (the
 * official CopyToRemote does) and a cut upload must never look complete. The release script checks
 * the sha256 and only then renames it to verifiedArtifact().
 */
export function incomingArtifact(root: string, sha256: string): string {
  return path.posix.join(root, ".incoming", `${sha256}.upload`);
}

/** An uploaded tarball whose sha256 the release script has checked. */
export function verifiedArtifact(root: string, sha256: string): string {
  return path.posix.join(root, ".incoming", `${sha256}.tar.gz`);
}

/**
 * Where the app layer of an artifact is uploaded when a kept release has its node_modules
 * (infra/layers.ts): the same temporary-name rule as incomingArtifact.
 */
export function incomingAppLayer(root: string, sha256: string): string {
  return path.posix.join(root, ".incoming", `${sha256}.app.upload`);
}

/** An uploaded app layer whose sha256 the release script has checked. */
export function verifiedAppLayer(root: string, sha256: string): string {
  return path.posix.join(root, ".incoming", `${sha256}.app.tar.gz`);
}

// The VPS layout (DESIGN.md "On the VPS") as pure functions of the deploy root.
import * as path from "node:path";

export interface Layout {
  root: string;
  releases: string;
  shared: string;
  sharedEnv: string;
  ecosystem: string;
  logs: string;
  outLog: string;
  errLog: string;
  data: string;
  backups: string;
  incoming: string;
  current: string;
  revisionsLog: string;
  lockFile: string;
}

export function layout(root: string): Layout {
  const j = (...parts: string[]) => path.posix.join(root, ...parts);
  return {
    root,
    releases: j("releases"),
    shared: j("shared"),
    sharedEnv: j("shared", ".env"),
    ecosystem: j("shared", "ecosystem.config.js"),
    logs: j("shared", "logs"),
    outLog: j("shared", "logs", "out.log"),
    errLog: j("shared", "logs", "err.log"),
    data: j("shared", "data"),
    backups: j("backups"),
    incoming: j(".incoming"),
    current: j("current"),
    revisionsLog: j("revisions.log"),
    lockFile: j(".deploy.lock"),
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

// Turns validated config into what the components take: the SSH connection and the checked artifact.
import * as pulumi from "@pulumi/pulumi";
import { existsSync, statSync } from "node:fs";
import { assertSafeArchiveFile, migrationNames, releaseIdOf, sha256File } from "./artifact";
import { AppConfig, VpsConfig } from "./config";
import { recalled, remember } from "./inspectionCache";
import { Layers, layersOf } from "./layers";

/** The connection every remote command uses: key auth, host key pinned, the key as a secret. */
export function connectionFor(vps: VpsConfig) {
  return {
    host: vps.host,
    port: vps.port,
    user: vps.user,
    privateKey: pulumi.secret(vps.privateKey),
    hostKey: vps.hostKey,
    perDialTimeout: 15,
    dialErrorLimit: 3,
  };
}

/** Where a connection leads, as the upload is keyed on it: `user@host:port hostKey`. */
export function connectionTarget(vps: VpsConfig): string {
  return `${vps.user}@${vps.host}:${vps.port} ${vps.hostKey}`;
}

export interface CheckedArtifact {
  path: string;
  sha256: string;
  releaseId: string;
  /** The Prisma migrations the artifact carries (folder names), for the preview. */
  migrations: string[];
  /** Its node_modules and the rest apart (layers.ts); none: it is always uploaded whole. */
  layers?: Layers;
}

/**
 * Hashes and inspects the release tarball before anything touches the VPS: a missing file, a file
 * that is not a gzip tarball, or an unsafe entry fails the preview with the entry named.
 */
export function checkArtifact(file: string): CheckedArtifact {
  if (!existsSync(file) || !statSync(file).isFile()) {
    throw new pulumi.RunError(`app:artifact: ${file} does not exist (npm run package, which builds the backend folder of package.json vpsRelease.backend, ` +
      "then pulumi config set app:artifact PATH)");
  }
  const sha256 = sha256File(file);
  const known = recalled(sha256);
  if (known) return withLayers({ path: file, sha256, releaseId: releaseIdOf(sha256), migrations: known.migrations });
  let entries;
  try {
    // In chunks: memory stays flat however big the archive is, or unpacks to.
    entries = assertSafeArchiveFile(file);
  } catch (e) {
    throw new pulumi.RunError(`app:artifact: ${file} is refused: ${(e as Error).message}`);
  }
  if (sha256File(file) !== sha256) {
    throw new pulumi.RunError(`app:artifact: ${file} changed while it was read (is npm run package still writing it?); run pulumi again once it is done`);
  }
  const migrations = migrationNames(entries);
  remember(sha256, { migrations });
  return withLayers({ path: file, sha256, releaseId: releaseIdOf(sha256), migrations });
}

function withLayers(a: CheckedArtifact): CheckedArtifact {
  const layers = layersOf(a.path, a.sha256);
  return layers ? { ...a, layers } : a;
}

/** What this update takes live: a new artifact (uploaded, then deployed) or a release already on the VPS. */
export type ReleaseTarget =
  | { kind: "deploy"; releaseId: string; artifact: CheckedArtifact }
  | { kind: "activate"; releaseId: string };

/** app:artifact (checked) or app:release; config.ts has already refused both or neither. */
export function releaseTarget(app: Pick<AppConfig, "artifact" | "release">): ReleaseTarget {
  if (app.artifact !== undefined) {
    const artifact = checkArtifact(app.artifact);
    return { kind: "deploy", releaseId: artifact.releaseId, artifact };
  }
  if (app.release !== undefined) return { kind: "activate", releaseId: app.release };
  throw new pulumi.RunError("app:artifact or app:release: one is required (pulumi config set app:artifact PATH)");
}

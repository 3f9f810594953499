// The release script (DESIGN.md "The release sequence"): one bash script, run over SSH, that
// takes a release live or leaves the previous one serving. Pure: typed input -> shell text.
// Only the header carries values (each through quote()): the release's settings and the layout of
// infra/paths.ts; the phases (release.lib.sh) and their order (release.main.sh) are fixed text.
import { readFileSync } from "node:fs";
import * as path from "node:path";
import { DEFAULT_MAX_ENTRIES } from "../artifact";
import type { AppConfig } from "../config";
import { incomingAppLayer, layout, layoutVars, verifiedAppLayer, verifiedArtifact } from "../paths";
import { assignments, script, usedBy } from "../shell";
import { CLAIM_ROOT } from "./hostFiles";

/** The release's settings: the app's (config.ts AppConfig, documented there) and where it runs. */
type Common = Pick<AppConfig, "script" | "port" | "healthPath" | "healthTimeout" | "healthSettle" | "keepReleases" |
  "migrate" | "backup" | "lockTimeout"> & {
  /** Deploy root. */
  root: string;
  /** PROJECT/STACK that owns the deploy root. */
  stack: string;
  /** Release id (12 hex digits). */
  releaseId: string;
  /** PM2 app name. */
  appName: string;
  /** Free text recorded in revisions.log (who asked for this activation: up, rollback, promotion). */
  source: string;
  /**
   * One phase of a fleet's release on one host, in a command of its own (infra/components/fleet.ts);
   * unset, the whole sequence in one command (a single VPS).
   */
  fleet?: FleetPhase;
};

/** The phases of the release sequence (release.main.sh), in order. */
export const PHASES = ["stage", "migrate", "preflight", "publish"] as const;
export type Phase = (typeof PHASES)[number];

export interface FleetPhase {
  phase: Phase;
  /** `host:port`, in the script's messages. */
  host: string;
  /** Names the update in the host's lease: the same for every phase of one update on that host. */
  leaseKey: string;
  /** Seconds the lease lasts; every phase renews it. */
  leaseTtl: number;
}

/** How long a fleet host's lease lasts without a phase renewing it: a crashed update blocks no longer. */
export const LEASE_TTL = 1800;

/** Deploy a new artifact that was uploaded to `incoming`. */
export interface DeployInput extends Common {
  kind: "deploy";
  /** Full sha256 of the tarball. */
  sha256: string;
  /** Where the tarball was uploaded (paths.incomingArtifact: a temporary name). */
  incoming: string;
  /**
   * The artifact's layers (infra/layers.ts), when it has them: the upload may then be the app layer
   * only (to paths.incomingAppLayer), the node_modules hard-linked from a kept release whose
   * `.deps-digest` is `depsDigest`.
   */
  layers?: { depsDigest: string; appSha256: string };
}

/** Activate a release that is already on the VPS (rollback, promotion, or an env/ecosystem change). */
export interface ActivateInput extends Common {
  kind: "activate";
}

export type ReleaseInput = DeployInput | ActivateInput;

/**
 * The remote command of a release: it only saves its stdin (the release script) to a temporary file
 * and runs it. So the command text stays a line long, and a provider's error text, which quotes the
 * command before the output (`...: running "CMD":`), stays readable.
 */
export const RELEASE_COMMAND = `f="$(mktemp "\${TMPDIR:-/tmp}/vps-release.XXXXXX")" && cat >"$f" && exec bash "$f"`;

export function releaseScript(input: ReleaseInput): string {
  const l = layout(input.root);
  const noLayers = { DEPS_DIGEST: "", APP_SHA256: "", APP_INCOMING: "", APP_VERIFIED: "" };
  let mode: { MODE: string; SHA256: string; INCOMING: string; VERIFIED: string } & typeof noLayers;
  switch (input.kind) {
    case "deploy": {
      const ly = input.layers;
      mode = {
        MODE: "deploy", SHA256: input.sha256, INCOMING: input.incoming, VERIFIED: verifiedArtifact(input.root, input.sha256),
        ...(ly
          ? {
            DEPS_DIGEST: ly.depsDigest, APP_SHA256: ly.appSha256,
            APP_INCOMING: incomingAppLayer(input.root, input.sha256), APP_VERIFIED: verifiedAppLayer(input.root, input.sha256),
          }
          : noLayers),
      };
      break;
    }
    case "activate":
      mode = { MODE: "activate", SHA256: "", INCOMING: "", VERIFIED: "", ...noLayers };
      break;
    default: {
      const never: never = input;
      throw new Error(`unknown release kind ${JSON.stringify(never)}`);
    }
  }
  const main = RELEASE_MAIN.replace("# @CLAIM_ROOT@", CLAIM_ROOT);
  return script(
    assignments({
      ...usedBy(layoutVars(l), RELEASE_LIB, main),
      STACK: input.stack,
      RELEASE_ID: input.releaseId,
      ...mode,
      APP_NAME: input.appName,
      APP_SCRIPT: input.script,
      APP_PORT: input.port,
      HEALTH_PATH: input.healthPath,
      HEALTH_TIMEOUT: input.healthTimeout,
      HEALTH_SETTLE: input.healthSettle,
      KEEP_RELEASES: input.keepReleases,
      MIGRATE: input.migrate,
      BACKUP: input.backup,
      LOCK_TIMEOUT: input.lockTimeout,
      SOURCE: input.source,
      MAX_ENTRIES: DEFAULT_MAX_ENTRIES,
      PHASES: input.fleet ? input.fleet.phase : PHASES.join(" "),
      HOST_LABEL: input.fleet?.host ?? "",
      LEASE_KEY: input.fleet?.leaseKey ?? "",
      LEASE_TTL: input.fleet?.leaseTtl ?? 0,
    }),
    RELEASE_LIB,
    DEPS_BASE,
    main,
  );
}

/**
 * The upload's query (components/release.ts uploadArtifact): prints `deps-base ID` for the newest
 * kept release whose node_modules are the tree `depsDigest` names (release.lib.sh deps_base), else
 * `deps-base none` (protocol.ts parseDepsBase). Reads only; a root not made yet has none.
 */
export function depsBaseScript(root: string, depsDigest: string): string {
  const body = `base="$(deps_base "$RELEASES" "$DEPS_DIGEST")"\necho "deps-base \${base:-none}"`;
  return script(assignments({ RELEASES: layout(root).releases, DEPS_DIGEST: depsDigest }), DEPS_BASE, body);
}

/** The phases (release.lib.sh) and their order (release.main.sh): files, so they read and lint as shell. */
export const RELEASE_LIB = readFileSync(path.join(__dirname, "release.lib.sh"), "utf8");
const RELEASE_MAIN = readFileSync(path.join(__dirname, "release.main.sh"), "utf8");
export const DEPS_BASE = readFileSync(path.join(__dirname, "deps-base.sh"), "utf8");

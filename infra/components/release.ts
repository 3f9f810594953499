import * as command from "@pulumi/command";
import * as pulumi from "@pulumi/pulumi";
import type { AppConfig, Provenance } from "../config";
import { incomingArtifact, releaseDir } from "../paths";
import { sourceOf } from "../planLines";
import { parseReleaseResult, StepTiming } from "../protocol";
import { RELEASE_COMMAND, releaseScript } from "../scripts/release";

export interface ReleaseArgs {
  /** SSH connection to the VPS. */
  connection: command.types.input.remote.ConnectionArgs;
  /** Deploy root. */
  root: string;
  /** PROJECT/STACK that owns the deploy root. */
  stack: string;
  /**
   * What goes live: a tarball to upload and deploy, or a release already on the VPS to activate.
   * The release id is the first 12 hex digits of the artifact's sha256.
   */
  target: { kind: "deploy"; releaseId: string; artifact: { path: string; sha256: string } } | { kind: "activate"; releaseId: string };
  /** The app settings the release script needs (see AppConfig for each field and its default). */
  app: Pick<AppConfig, "name" | "script" | "port" | "healthPath" | "healthTimeout" | "healthSettle" | "keepReleases" | "migrate" |
    "backup" | "lockTimeout">;
  /**
   * Where the connection leads (`user@host:port hostKey`): a new one uploads the artifact again, as
   * the official CopyToRemote re-uploads only when its source or remotePath changes.
   */
  connectionTarget: string;
  /**
   * Keys the upload together with the artifact's sha256: stable once the release is live, new on
   * every `up` until then, so an upload that went missing (a wiped VPS) is sent again (live.ts uploadTokenFor).
   */
  uploadToken: pulumi.Input<string>;
  /** Re-activate the release when the ecosystem file changes. */
  ecosystemHash: pulumi.Input<string>;
  /** Re-activate the release when the shared .env is written anew (SharedEnv.version; not secret). */
  envVersion: pulumi.Input<string>;
  /** Why this release goes live (promotion, rollback); none for an ordinary `pulumi up`. */
  provenance?: Provenance;
}

/** Outputs `provenance`: where the live release came from and when it went live. */
export interface ReleaseProvenance {
  source: "pulumi up" | "promote" | "rollback";
  releaseId: string;
  artifactSha256: string;
  activatedAt: string;
  fromStack?: string;
  requestedAt?: string;
}

/**
 * The release: the upload (CopyToRemote) and the activation (a remote Command running the
 * release script), both keyed by the artifact's hash. A new id replaces them: the new one is
 * created first and there is no delete command, so a failed activation leaves the previous
 * release live and recorded in the stack.
 */
export class Release extends pulumi.ComponentResource {
  readonly releaseId: pulumi.Output<string>;
  readonly previousReleaseId: pulumi.Output<string>;
  readonly artifactSha256: pulumi.Output<string>;
  readonly releaseDir: pulumi.Output<string>;
  readonly healthUrl: pulumi.Output<string>;
  readonly migrations: pulumi.Output<string[]>;
  readonly provenance: pulumi.Output<ReleaseProvenance>;
  /** The steps of the last activation on the VPS, with seconds (the remote protocol's RESULT). */
  readonly steps: pulumi.Output<StepTiming[]>;
  /** The token the live release's upload was keyed on (read back by the next `up`). */
  readonly uploadToken: pulumi.Output<string>;

  constructor(name: string, args: ReleaseArgs, opts?: pulumi.ComponentResourceOptions) {
    super("vps:deploy:Release", name, {}, opts);
    const common = {
      root: args.root,
      stack: args.stack,
      releaseId: args.target.releaseId,
      appName: args.app.name,
      script: args.app.script,
      port: args.app.port,
      healthPath: args.app.healthPath,
      healthTimeout: args.app.healthTimeout,
      healthSettle: args.app.healthSettle,
      keepReleases: args.app.keepReleases,
      migrate: args.app.migrate,
      backup: args.app.backup,
      lockTimeout: args.app.lockTimeout,
      source: sourceOf(args.provenance),
    };
    let upload: command.remote.CopyToRemote | undefined;
    let script: string;
    const t = args.target;
    switch (t.kind) {
      case "deploy": {
        const incoming = incomingArtifact(args.root, t.artifact.sha256);
        upload = new command.remote.CopyToRemote(`${name}-upload`, {
          connection: args.connection,
          source: new pulumi.asset.FileAsset(t.artifact.path),
          remotePath: incoming,
          triggers: [t.artifact.sha256, args.connectionTarget, args.uploadToken],
        }, { parent: this });
        script = releaseScript({ kind: "deploy", ...common, sha256: t.artifact.sha256, incoming });
        break;
      }
      case "activate":
        script = releaseScript({ kind: "activate", ...common });
        break;
      default: {
        const never: never = t;
        throw new Error(`unknown release target ${JSON.stringify(never)}`);
      }
    }
    const activate = new command.remote.Command(`${name}-activate`, {
      connection: args.connection,
      create: RELEASE_COMMAND,
      stdin: script,
      triggers: [args.target.releaseId, args.ecosystemHash, args.envVersion],
      addPreviousOutputInEnv: false,
      logging: "stdoutAndStderr",
    }, { parent: this, dependsOn: upload ? [upload] : [] });

    const result = pulumi.unsecret(activate.stdout).apply((out) => {
      const r = parseReleaseResult(out);
      if (!r) throw new Error(`the release script printed no RESULT line:\n${out}`);
      return r;
    });
    this.releaseId = result.apply((r) => r.releaseId);
    this.previousReleaseId = result.apply((r) => r.previousReleaseId);
    this.artifactSha256 = result.apply((r) => r.artifactSha256);
    this.releaseDir = pulumi.output(releaseDir(args.root, args.target.releaseId));
    this.healthUrl = pulumi.output(`http://127.0.0.1:${args.app.port}${args.app.healthPath}`);
    this.migrations = result.apply((r) => r.migrations ?? []);
    this.steps = result.apply((r) => r.steps ?? []);
    this.uploadToken = pulumi.output(args.uploadToken);
    const p = args.provenance;
    this.provenance = result.apply((r): ReleaseProvenance => ({
      source: p?.kind ?? "pulumi up",
      releaseId: r.releaseId,
      artifactSha256: r.artifactSha256,
      activatedAt: r.activatedAt,
      ...(p?.fromStack ? { fromStack: p.fromStack } : {}),
      ...(p ? { requestedAt: p.requestedAt } : {}),
    }));
    this.registerOutputs({
      releaseId: this.releaseId,
      previousReleaseId: this.previousReleaseId,
      artifactSha256: this.artifactSha256,
      releaseDir: this.releaseDir,
      healthUrl: this.healthUrl,
      migrations: this.migrations,
      provenance: this.provenance,
      steps: this.steps,
      uploadToken: this.uploadToken,
    });
  }
}

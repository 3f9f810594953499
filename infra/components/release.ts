import * as command from "@pulumi/command";
import * as pulumi from "@pulumi/pulumi";
import type { AppConfig, Provenance } from "../config";
import type { Layers } from "../layers";
import { incomingAppLayer, incomingArtifact, releaseDir } from "../paths";
import { sourceOf } from "../planLines";
import { parseDepsBase, parseReleaseResult, ReleaseResult, StepTiming } from "../protocol";
import { depsBaseScript, FleetPhase, RELEASE_COMMAND, ReleaseInput, releaseScript } from "../scripts/release";

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
  target: { kind: "deploy"; releaseId: string; artifact: { path: string; sha256: string; layers?: Layers } } |
    { kind: "activate"; releaseId: string };
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
    const t = args.target;
    const upload = uploadArtifact(`${name}-upload`, this, args);
    const script = releaseScript(scriptInput(args));
    const activate = releaseCommand(`${name}-activate`, this, args.connection, script,
      [args.target.releaseId, args.ecosystemHash, args.envVersion], upload ? [upload] : []);

    const result = resultOf(activate);
    this.releaseId = result.apply((r) => r.releaseId);
    this.previousReleaseId = result.apply((r) => r.previousReleaseId);
    this.artifactSha256 = result.apply((r) => r.artifactSha256);
    this.releaseDir = pulumi.output(releaseDir(args.root, t.releaseId));
    this.healthUrl = pulumi.output(`http://127.0.0.1:${args.app.port}${args.app.healthPath}`);
    this.migrations = result.apply((r) => r.migrations ?? []);
    this.steps = result.apply((r) => r.steps ?? []);
    this.uploadToken = pulumi.output(args.uploadToken);
    this.provenance = result.apply((r) => provenanceOf(r, args.provenance));
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

/** What every release command of a stack shares: where it runs and the app's settings. */
export type ReleaseSettings = Pick<ReleaseArgs, "root" | "stack" | "target" | "app" | "provenance">;

/** The release script's input for `settings`: a deploy of the uploaded artifact, or an activation. */
export function scriptInput(settings: ReleaseSettings, fleet?: FleetPhase): ReleaseInput {
  const a = settings.app;
  const common = {
    root: settings.root,
    stack: settings.stack,
    releaseId: settings.target.releaseId,
    appName: a.name,
    script: a.script,
    port: a.port,
    healthPath: a.healthPath,
    healthTimeout: a.healthTimeout,
    healthSettle: a.healthSettle,
    keepReleases: a.keepReleases,
    migrate: a.migrate,
    backup: a.backup,
    lockTimeout: a.lockTimeout,
    source: sourceOf(settings.provenance),
    ...(fleet ? { fleet } : {}),
  };
  const t = settings.target;
  switch (t.kind) {
    case "deploy":
      return {
        kind: "deploy", ...common, sha256: t.artifact.sha256, incoming: incomingArtifact(settings.root, t.artifact.sha256),
        ...(t.artifact.layers ? { layers: { depsDigest: t.artifact.layers.depsDigest, appSha256: t.artifact.layers.appSha256 } } : {}),
      };
    case "activate":
      return { kind: "activate", ...common };
    default: {
      const never: never = t;
      throw new Error(`unknown release target ${JSON.stringify(never)}`);
    }
  }
}

/**
 * The artifact's upload to one host (CopyToRemote to a temporary name), keyed on its sha256, where
 * the connection leads and the upload token; none when the target is a release kept on the VPS.
 * An artifact with layers (layers.ts) asks the host first, keyed alike (so a no-op `up` asks
 * nothing): when a kept release there has the same node_modules, only the app layer is sent.
 */
export function uploadArtifact(name: string, parent: pulumi.Resource, args: Pick<ReleaseArgs, "connection" | "root" | "target" |
  "connectionTarget" | "uploadToken">): command.remote.CopyToRemote | undefined {
  const t = args.target;
  if (t.kind !== "deploy") return undefined;
  const triggers = [t.artifact.sha256, args.connectionTarget, args.uploadToken];
  const whole = { source: new pulumi.asset.FileAsset(t.artifact.path), remotePath: incomingArtifact(args.root, t.artifact.sha256) };
  const layers = t.artifact.layers;
  let what: pulumi.Output<typeof whole> | typeof whole = whole;
  if (layers) {
    const query = new command.remote.Command(`${name}-query`, {
      connection: args.connection,
      create: RELEASE_COMMAND,
      stdin: depsBaseScript(args.root, layers.depsDigest),
      triggers,
      addPreviousOutputInEnv: false,
    }, { parent });
    what = pulumi.unsecret(query.stdout).apply((out) => (parseDepsBase(out) === undefined ? whole
      : { source: new pulumi.asset.FileAsset(layers.appPath), remotePath: incomingAppLayer(args.root, t.artifact.sha256) }));
  }
  const chosen = pulumi.output(what);
  return new command.remote.CopyToRemote(name, {
    connection: args.connection,
    source: chosen.apply((w) => w.source),
    remotePath: chosen.apply((w) => w.remotePath),
    triggers,
  }, { parent });
}

/**
 * A remote command that runs a release script (on stdin, RELEASE_COMMAND), re-run when a trigger
 * changes. There is no delete command: a replaced one leaves the VPS as it is.
 */
export function releaseCommand(name: string, parent: pulumi.Resource, connection: ReleaseArgs["connection"],
  script: pulumi.Input<string>, triggers: pulumi.Input<string>[], dependsOn: pulumi.Resource[]): command.remote.Command {
  return new command.remote.Command(name, {
    connection,
    create: RELEASE_COMMAND,
    stdin: script,
    triggers,
    addPreviousOutputInEnv: false,
    logging: "stdoutAndStderr",
  }, { parent, dependsOn });
}

/** The RESULT line of a release command that went live (the remote protocol). */
export function resultOf(cmd: command.remote.Command): pulumi.Output<ReleaseResult> {
  return pulumi.unsecret(cmd.stdout).apply((out) => {
    const r = parseReleaseResult(out);
    if (!r) throw new Error(`the release script printed no RESULT line:\n${out}`);
    return r;
  });
}

export function provenanceOf(r: ReleaseResult, p: Provenance | undefined): ReleaseProvenance {
  return {
    source: p?.kind ?? "pulumi up",
    releaseId: r.releaseId,
    artifactSha256: r.artifactSha256,
    activatedAt: r.activatedAt,
    ...(p?.fromStack ? { fromStack: p.fromStack } : {}),
    ...(p ? { requestedAt: p.requestedAt } : {}),
  };
}

import * as command from "@pulumi/command";
import * as pulumi from "@pulumi/pulumi";
import { createHash } from "node:crypto";
import { releaseDir } from "../paths";
import { parsePhaseResult, ReleaseResult, StepTiming } from "../protocol";
import { LEASE_TTL, Phase, releaseScript } from "../scripts/release";
import {
  provenanceOf, ReleaseArgs, releaseCommand, ReleaseProvenance, ReleaseSettings, resultOf, scriptInput, uploadArtifact,
} from "./release";

/** One host of the fleet, with what its own files and connection give the release. */
export interface FleetHost {
  /** `host:port`: names the host in outputs, messages and resource names. */
  label: string;
  /** The host that migrates (once per release, after every host staged). */
  primary: boolean;
  connection: ReleaseArgs["connection"];
  /** Where the connection leads (inputs.connectionTarget); a new one uploads again. */
  connectionTarget: string;
  /** This host's upload token (live.uploadTokenFor). */
  uploadToken: pulumi.Input<string>;
  /** This host's ecosystem file and .env write: a change re-runs this host's phases. */
  ecosystemHash: pulumi.Input<string>;
  envVersion: pulumi.Input<string>;
  /** What this host's stage waits for: its layout, ecosystem and .env. */
  dependsOn: pulumi.Resource[];
}

export interface FleetReleaseArgs extends ReleaseSettings {
  hosts: FleetHost[];
  /** Hosts that switch at once (config app:rollout; 0: all). */
  rollout: number;
}

/** What a host runs after an up: in the stack's `hosts` output, keyed by label. */
export interface HostRelease {
  releaseId: string;
  previousReleaseId: string;
  primary: boolean;
  /** Every phase's steps on this host, in order. */
  steps: StepTiming[];
  uploadToken: string;
}

/** The hosts in publish order, `rollout` at a time (0: one batch of all). Pure. */
export function batches<T>(hosts: T[], rollout: number): T[][] {
  const size = rollout > 0 ? rollout : hosts.length;
  const out: T[][] = [];
  for (let i = 0; i < hosts.length; i += size) out.push(hosts.slice(i, i + size));
  return out;
}

/** A host's part of a resource name: `10.0.0.11:22` -> `10.0.0.11-22`. */
export function hostSlug(label: string): string {
  return label.replace(/[^A-Za-z0-9.-]+/g, "-").replace(/^-+|-+$/g, "");
}

/**
 * A release on several hosts, each phase a remote command of its own, ordered by the Pulumi engine:
 * upload and stage on every host in parallel (nothing live is touched); migrate once, on the
 * primary, after every host staged; preflight on every host in parallel; then publish (switch,
 * reload, health, save, record, prune) batch by batch, each batch after the one before it is
 * healthy. A host refused at stage or preflight stops the update before any host switches (the
 * engine runs no command that depends on a failed one); a host that fails after its switch reverts
 * itself, and the hosts of later batches keep the previous release. Each host holds a lease from
 * its stage to its publish (release.lib.sh lease_take).
 */
export class FleetRelease extends pulumi.ComponentResource {
  /** The release every host runs ("" while they differ: never after a successful up). */
  readonly releaseId: pulumi.Output<string>;
  /** The primary's previous release. */
  readonly previousReleaseId: pulumi.Output<string>;
  readonly artifactSha256: pulumi.Output<string>;
  readonly releaseDir: pulumi.Output<string>;
  readonly healthUrl: pulumi.Output<string>;
  readonly migrations: pulumi.Output<string[]>;
  readonly provenance: pulumi.Output<ReleaseProvenance>;
  /** The primary's steps, every phase in order. */
  readonly steps: pulumi.Output<StepTiming[]>;
  readonly hosts: pulumi.Output<Record<string, HostRelease>>;

  constructor(name: string, args: FleetReleaseArgs, opts?: pulumi.ComponentResourceOptions) {
    super("vps:deploy:FleetRelease", name, {}, opts);
    const id = args.target.releaseId;
    const primary = args.hosts.find((h) => h.primary) ?? args.hosts[0];

    // Each host's phases are keyed alike: the release, and that host's ecosystem and .env.
    const triggersOf = (h: FleetHost): pulumi.Input<string>[] => [id, h.ecosystemHash, h.envVersion];
    const leaseKeyOf = (h: FleetHost) => pulumi.all([h.ecosystemHash, h.envVersion]).apply(([eco, env]) =>
      createHash("sha256").update(`${args.stack}\n${id}\n${h.label}\n${eco}\n${env}`).digest("hex").slice(0, 16));
    const phaseOn = (h: FleetHost, phase: Phase, cmdName: string, triggers: pulumi.Input<string>[], dependsOn: pulumi.Resource[]) =>
      releaseCommand(cmdName, this, h.connection,
        leaseKeyOf(h).apply((leaseKey) => releaseScript(scriptInput(args, { phase, host: h.label, leaseKey, leaseTtl: LEASE_TTL }))),
        triggers, dependsOn);

    const stages = new Map<FleetHost, command.remote.Command>();
    for (const h of args.hosts) {
      const slug = hostSlug(h.label);
      const upload = uploadArtifact(`${name}-${slug}-upload`, this, { ...args, ...h });
      stages.set(h, phaseOn(h, "stage", `${name}-${slug}-stage`, triggersOf(h), [...h.dependsOn, ...(upload ? [upload] : [])]));
    }
    // Once, on the primary, when every host has the release staged; re-run for a new release or .env there.
    const migrate = phaseOn(primary, "migrate", `${name}-migrate`, [id, primary.envVersion], [...stages.values()]);
    const preflights = args.hosts.map((h) => phaseOn(h, "preflight", `${name}-${hostSlug(h.label)}-preflight`, triggersOf(h), [migrate]));

    const publishes = new Map<FleetHost, command.remote.Command>();
    let before: pulumi.Resource[] = preflights;
    for (const batch of batches(args.hosts, args.rollout)) {
      const cmds = batch.map((h) => {
        const c = phaseOn(h, "publish", `${name}-${hostSlug(h.label)}-publish`, triggersOf(h), before);
        publishes.set(h, c);
        return c;
      });
      before = [...preflights, ...cmds];
    }

    const phaseSteps = (c: command.remote.Command) => pulumi.unsecret(c.stdout).apply((out) => parsePhaseResult(out)?.steps ?? []);
    const hostResults = args.hosts.map((h) => pulumi.all([
      resultOf(publishes.get(h)!), phaseSteps(stages.get(h)!), h.primary ? phaseSteps(migrate) : pulumi.output([]),
      phaseSteps(preflights[args.hosts.indexOf(h)]), pulumi.output(h.uploadToken),
    ]).apply(([r, stage, mig, pre, uploadToken]): [string, HostRelease, ReleaseResult] => [h.label, {
      releaseId: r.releaseId,
      previousReleaseId: r.previousReleaseId,
      primary: h.primary,
      steps: [...stage, ...mig, ...pre, ...(r.steps ?? [])],
      uploadToken,
    }, r]));
    const all = pulumi.all(hostResults);
    const primaryResult = all.apply((rs) => rs.find(([label]) => label === primary.label)!);

    this.hosts = all.apply((rs) => Object.fromEntries(rs.map(([label, hr]) => [label, hr])));
    this.releaseId = all.apply((rs) => (rs.every(([, hr]) => hr.releaseId === rs[0][1].releaseId) ? rs[0][1].releaseId : ""));
    this.previousReleaseId = primaryResult.apply(([, hr]) => hr.previousReleaseId);
    this.artifactSha256 = primaryResult.apply(([, , r]) => r.artifactSha256);
    this.releaseDir = pulumi.output(releaseDir(args.root, id));
    this.healthUrl = pulumi.output(`http://127.0.0.1:${args.app.port}${args.app.healthPath}`);
    this.migrations = primaryResult.apply(([, , r]) => r.migrations ?? []);
    this.steps = primaryResult.apply(([, hr]) => hr.steps);
    this.provenance = primaryResult.apply(([, , r]) => provenanceOf(r, args.provenance));
    this.registerOutputs({
      releaseId: this.releaseId,
      previousReleaseId: this.previousReleaseId,
      hosts: this.hosts,
    });
  }
}

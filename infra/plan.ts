import * as pulumi from "@pulumi/pulumi";
import type { LiveStack } from "./live";
import { ecosystemLine, envLine, hostLines, LiveOutputs, migrationsLine, PlannedRelease, releaseLine } from "./planLines";

export interface PlanArgs {
  release: PlannedRelease;
  ecosystemHash: string;
  envKeys: pulumi.Input<string[]>;
  /** Secret. */
  envHash: pulumi.Input<string>;
  /** A fleet: its hosts (`host:port`) in publish order, and how many switch at once. */
  fleet?: { hosts: string[]; rollout: number };
}

/**
 * Prints what this update does, for `pulumi preview` readers: the stack's last outputs (`live`,
 * from live.ts) against the planned values. Each line is printed on its own,
 * so a value unknown in a preview (a generated secret) only silences its own line.
 */
export function announcePlan(live: LiveStack, args: PlanArgs): void {
  const out = <T>(key: keyof LiveOutputs) => live.getOutput(key) as pulumi.Output<T | undefined>;
  const say = (line: string | undefined) => {
    if (line) void pulumi.log.info(line);
  };
  pulumi.all([out<string>("releaseId"), out<string[]>("migrations")]).apply(([releaseId, migrations]) => {
    const prev: LiveOutputs = { releaseId, migrations };
    say(releaseLine(prev, args.release));
    say(migrationsLine(prev, args.release));
  });
  const fleet = args.fleet;
  if (fleet) {
    out<Record<string, { releaseId?: string }>>("hosts").apply((hosts) => {
      for (const line of hostLines(hosts, fleet.hosts, args.release, fleet.rollout)) say(line);
    });
  }
  out<string>("ecosystemHash").apply((ecosystemHash) => say(ecosystemLine({ ecosystemHash }, args.ecosystemHash)));
  pulumi.all([out<string[]>("envKeys"), out<string>("envHash"), args.envKeys, args.envHash])
    .apply(([envKeys, envHash, keys, planned]) => say(envLine({ envKeys, envHash }, keys, planned)));
}

// What the stack recorded last time, read through a StackReference to the stack itself: the
// preview compares against it (plan.ts), and the upload is keyed on it (uploadTokenFor).
import * as pulumi from "@pulumi/pulumi";

export function liveOutputs(): pulumi.StackReference {
  return new pulumi.StackReference("live-outputs", {
    name: `${pulumi.getOrganization()}/${pulumi.getProject()}/${pulumi.getStack()}`,
  });
}

/**
 * The token the upload of `releaseId` is keyed on. Once that release is live, the token its upload
 * was made with (the stack's `uploadToken` output, "" for stacks made before it): nothing changes.
 * Until then, a new one on every `up`: an upload that is in the state but gone from the VPS (a
 * wiped or rebuilt server, a cleaned folder) is sent again by the next `up`, never stuck.
 */
export function uploadTokenFor(live: pulumi.StackReference, releaseId: string, fleetHost?: string): pulumi.Output<string> {
  const recorded: pulumi.Output<unknown[]> = fleetHost === undefined
    ? pulumi.all([live.getOutput("releaseId"), live.getOutput("uploadToken")])
    // A fleet keys each host's upload on what that host runs (the stack's `hosts` output).
    : live.getOutput("hosts").apply((hosts) => {
      const h = (hosts as Record<string, { releaseId?: unknown; uploadToken?: unknown }> | undefined)?.[fleetHost];
      return [h?.releaseId, h?.uploadToken];
    });
  return recorded.apply(([liveId, token]) =>
    liveId === releaseId ? (typeof token === "string" ? token : "") : `pending ${new Date().toISOString()}`);
}

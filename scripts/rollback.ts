// npm run rollback -- --stack S [--to ID]: activate the stack's previous release, or release ID.
// The stack then pins app:release=ID, so the next ordinary `pulumi up` keeps the rolled-back
// release instead of redeploying the artifact that was rolled back; deploying again is explicit
// (`pulumi config rm app:release`, then set app:artifact).
import { isReleaseId } from "../infra/artifact";
import { keptReleases } from "./releases";
import { openStack, outputsOf, parseFlags, runCli, upWithRelease, UsageError } from "./stacks";

async function main(): Promise<void> {
  const f = parseFlags(process.argv.slice(2), { values: ["stack", "to"] });
  const name = f.stack;
  if (typeof name !== "string") throw new UsageError("--stack is required (npm run rollback -- --stack staging [--to ID])");
  const stack = await openStack(name);
  const out = await outputsOf(stack);
  const target = typeof f.to === "string" ? f.to : out.previousReleaseId;
  if (!target) {
    throw new UsageError(`stack ${name} records no previous release; name one with --to ID (npm run releases -- --stack ${name})`);
  }
  if (!isReleaseId(target)) throw new UsageError(`--to ${JSON.stringify(target)}: expected a release id, 12 lowercase hex digits`);
  if (target === out.releaseId) {
    console.log(`release ${target} is already live on ${name}; nothing to do`);
    return;
  }
  const kept = await keptReleases(stack);
  if (!kept.some((r) => r.id === target)) {
    throw new UsageError(`release ${target} is not kept on the VPS of ${name}; kept: ${kept.map((r) => r.id).join(", ") || "none"}`);
  }

  console.log(`rolling back ${name}: ${out.releaseId || "(none)"} -> ${target}`);
  await upWithRelease(stack, { release: target }, `rollback to ${target}`,
    { kind: "rollback", releaseId: target, requestedAt: new Date().toISOString() });
  const now = await outputsOf(stack);
  console.log(`rolled back ${name}: ${now.releaseId} is live (previous ${now.previousReleaseId || "-"}).`);
  console.log(`The stack now pins app:release=${target}; to deploy an artifact again: ` +
    `npm run pulumi -- config rm -s ${name} app:release, then set app:artifact.`);
}

runCli(main);

// npm run rollback -- --stack S [--to ID]: activate the stack's previous release, or release ID.
// The stack then pins app:release=ID, so the next ordinary `pulumi up` keeps the rolled-back
// release instead of redeploying the artifact that was rolled back; deploying again is explicit
// (`pulumi config rm app:release`, then set app:artifact).
import { migrationNote, planRollback } from "./decide";
import { keptEverywhere, migrationsOf } from "./releases";
import { hostsOf, openStack, outputsOf, parseFlags, runCli, upWithRelease, UsageError } from "./stacks";

async function main(): Promise<void> {
  const f = parseFlags(process.argv.slice(2), { values: ["stack", "to"] });
  const name = f.stack;
  if (typeof name !== "string") throw new UsageError("--stack is required (npm run rollback -- --stack staging [--to ID])");
  const stack = await openStack(name);
  const plan = await planRollback({
    name,
    outputs: await outputsOf(stack),
    kept: () => keptEverywhere(stack),
    fleet: (await hostsOf(stack))[0].fleet,
  }, typeof f.to === "string" ? f.to : undefined);
  if (plan.kind === "nothing") {
    console.log(plan.message);
    return;
  }
  console.log(`rolling back ${name}: ${plan.from || "(none)"} -> ${plan.to}`);
  if (plan.from) {
    const m = await migrationsOf(stack, [plan.to, plan.from]);
    const note = migrationNote({ id: plan.to, migrations: m[plan.to] }, { id: plan.from, migrations: m[plan.from] });
    if (note) console.log(note);
  }
  await upWithRelease(stack, { release: plan.to }, `rollback to ${plan.to}`,
    { kind: "rollback", releaseId: plan.to, requestedAt: new Date().toISOString() });
  const now = await outputsOf(stack);
  console.log(`rolled back ${name}: ${now.releaseId} is live (previous ${now.previousReleaseId || "-"}).`);
  console.log(`The stack now pins app:release=${plan.to}; to deploy an artifact again: ` +
    `npm run pulumi -- config rm -s ${name} app:release, then set app:artifact.`);
}

runCli(main);

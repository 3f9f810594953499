// npm run promote -- --from S1 --to S2 [--artifact PATH]: deploy to S2 byte for byte what S1 runs.
// Refused when S1's last update did not succeed, when S1's release is not healthy now, or when the
// artifact's sha256 differs from the one S1 recorded (ops/decide.ts). S2 gets the same tarball
// through an ordinary `up` of S2.
import * as path from "node:path";
import { existsSync } from "node:fs";
import { sha256File } from "../infra/artifact";
import { readingState } from "../infra/live";
import { planPromotion } from "./decide";
import { askHealthEverywhere, configOf, openStack, outputsOf, parseFlags, projectRoot, runCli, upWithRelease, UsageError } from "./stacks";

async function main(): Promise<void> {
  const f = parseFlags(process.argv.slice(2), { values: ["from", "to", "artifact"] });
  if (typeof f.from !== "string" || typeof f.to !== "string") {
    throw new UsageError("--from and --to are required (npm run promote -- --from staging --to production)");
  }
  if (f.from === f.to) throw new UsageError("--from and --to name the same stack");
  const s1 = await openStack(f.from);
  const out1 = await outputsOf(s1);
  const cfg1 = await configOf(s1);
  const artifactPath = typeof f.artifact === "string" ? path.resolve(process.env.INIT_CWD ?? process.cwd(), f.artifact)
    : cfg1["app:artifact"]?.value ? path.resolve(projectRoot, cfg1["app:artifact"].value) : "";
  const s2 = await openStack(f.to);
  const plan = await planPromotion(
    { name: f.from, outputs: out1, lastUpdate: async () => (await readingState(() => s1.history(1)))[0], health: () => askHealthEverywhere(s1, out1.healthUrl, out1.releaseId) },
    { name: f.to, outputs: await outputsOf(s2) },
    { path: artifactPath, sha256: artifactPath && existsSync(artifactPath) ? sha256File(artifactPath) : undefined },
  );
  if (plan.kind === "nothing") {
    console.log(plan.message);
    return;
  }
  console.log(`promoting ${plan.releaseId} (sha256 ${plan.sha256}) from ${f.from} to ${f.to}`);
  await upWithRelease(s2, { artifact: artifactPath }, `promote ${plan.releaseId} from ${f.from}`, {
    kind: "promote", releaseId: plan.releaseId, fromStack: f.from, artifactSha256: plan.sha256, requestedAt: new Date().toISOString(),
  });
  const out2 = await outputsOf(s2);
  console.log(`promoted: ${f.to} runs ${out2.releaseId}, the same bytes as ${f.from} (sha256 ${out2.artifactSha256}).`);
  console.log(`provenance: ${out2.provenance}`);
}

runCli(main);

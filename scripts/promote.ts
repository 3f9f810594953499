// npm run promote -- --from S1 --to S2 [--artifact PATH]: deploy to S2 byte for byte what S1 runs.
// Refused when S1's last update did not succeed, when S1's release is not healthy now, or when the
// artifact's sha256 differs from the one S1 recorded. S2 gets the same tarball through an
// ordinary `up` of S2.
import * as path from "node:path";
import { existsSync } from "node:fs";
import { sha256File } from "../infra/artifact";
import { askHealth, healthy, openStack, outputsOf, parseFlags, projectRoot, runCli, upWithRelease, UsageError } from "./stacks";

async function main(): Promise<void> {
  const f = parseFlags(process.argv.slice(2), { values: ["from", "to", "artifact"] });
  if (typeof f.from !== "string" || typeof f.to !== "string") {
    throw new UsageError("--from and --to are required (npm run promote -- --from staging --to production)");
  }
  if (f.from === f.to) throw new UsageError("--from and --to name the same stack");
  const s1 = await openStack(f.from);
  const out1 = await outputsOf(s1);
  if (!out1.releaseId) throw new UsageError(`stack ${f.from} records no release to promote`);

  const [last] = await s1.history(1);
  if (!last || last.result !== "succeeded") {
    throw new UsageError(`stack ${f.from}'s last update ${last ? `${last.result} (${last.kind}, ${last.startTime})` : "is missing"}; ` +
      `promote only from a stack whose last update succeeded (fix it with pulumi up -s ${f.from}, or roll it back)`);
  }

  const answer = await askHealth(s1, out1.healthUrl);
  if (!healthy(answer, out1.releaseId)) {
    throw new UsageError(`stack ${f.from}'s release ${out1.releaseId} is not healthy now (${out1.healthUrl}: ${answer}); not promoting`);
  }

  const cfg1 = await s1.getAllConfig();
  const artifactPath = typeof f.artifact === "string" ? path.resolve(process.env.INIT_CWD ?? process.cwd(), f.artifact)
    : cfg1["app:artifact"]?.value ? path.resolve(projectRoot, cfg1["app:artifact"].value) : "";
  if (!artifactPath || !existsSync(artifactPath)) {
    throw new UsageError(`the tarball of ${f.from}'s release ${out1.releaseId} is not here` +
      `${artifactPath ? ` (${artifactPath})` : ""}; pass it with --artifact PATH (the one CI built and deployed to ${f.from})`);
  }
  const sha = sha256File(artifactPath);
  if (sha !== out1.artifactSha256) {
    throw new UsageError(`${artifactPath} has sha256 ${sha}, but ${f.from} runs ${out1.artifactSha256}; refusing to promote other bytes`);
  }

  const s2 = await openStack(f.to);
  const before2 = await outputsOf(s2);
  if (before2.releaseId === out1.releaseId && before2.artifactSha256 === sha) {
    console.log(`${f.to} already runs ${out1.releaseId} (sha256 ${sha}); nothing to do`);
    return;
  }
  console.log(`promoting ${out1.releaseId} (sha256 ${sha}) from ${f.from} to ${f.to}`);
  await upWithRelease(s2, { artifact: artifactPath }, `promote ${out1.releaseId} from ${f.from}`, {
    kind: "promote", releaseId: out1.releaseId, fromStack: f.from, artifactSha256: sha, requestedAt: new Date().toISOString(),
  });
  const out2 = await outputsOf(s2);
  console.log(`promoted: ${f.to} runs ${out2.releaseId}, the same bytes as ${f.from} (sha256 ${out2.artifactSha256}).`);
  console.log(`provenance: ${out2.provenance}`);
}

runCli(main);

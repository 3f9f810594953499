// Wiring only: config in, components, outputs.
import * as pulumi from "@pulumi/pulumi";
import * as path from "node:path";
import { GeneratedSecrets } from "./components/generatedSecrets";
import { GithubSecrets } from "./components/githubSecrets";
import { HostLayout } from "./components/hostLayout";
import { announcePlan } from "./plan";
import { liveOutputs, uploadTokenFor } from "./live";
import { Pm2Ecosystem } from "./components/pm2Ecosystem";
import { Release } from "./components/release";
import { SharedEnv } from "./components/sharedEnv";
import { readStackConfig } from "./config";
import { layout } from "./paths";
import { provenanceFor, sourceOf } from "./planLines";
import { connectionFor, connectionTarget, releaseTarget } from "./inputs";

const projectRoot = path.resolve(__dirname, "..");
const cfg = readStackConfig(projectRoot);
const target = releaseTarget(cfg.app);
const id = target.releaseId;
const connection = connectionFor(cfg.vps);
const stack = `${pulumi.getProject()}/${pulumi.getStack()}`;
const origin = provenanceFor(cfg.app.provenance, id);
const live = liveOutputs();

const host = new HostLayout("host", { connection, layout: layout(cfg.vps.root), stack });
const ecosystem = new Pm2Ecosystem("pm2", {
  connection,
  ecosystem: {
    root: cfg.vps.root,
    name: cfg.app.name,
    script: cfg.app.script,
    port: cfg.app.port,
    instances: cfg.app.instances,
  },
  stack,
}, { dependsOn: [host] });
const generated = cfg.app.generatedSecrets.length === 0 ? undefined
  : new GeneratedSecrets("generated", { names: cfg.app.generatedSecrets });
const appEnv = generated ? pulumi.all([cfg.app.env, generated.values]).apply(([e, g]) => ({ ...e, ...g })) : cfg.app.env;
const env = new SharedEnv("env", { connection, root: cfg.vps.root, env: appEnv, stack }, { dependsOn: [host] });
const release = new Release("release", {
  connection,
  root: cfg.vps.root,
  stack,
  target,
  app: cfg.app,
  connectionTarget: connectionTarget(cfg.vps),
  uploadToken: uploadTokenFor(live, id),
  ecosystemHash: ecosystem.contentHash,
  envVersion: env.version,
  provenance: origin,
}, { dependsOn: [ecosystem, env] });

announcePlan(live, {
  release: { releaseId: id, migrations: target.kind === "deploy" ? target.artifact.migrations : undefined, source: sourceOf(origin) },
  ecosystemHash: ecosystem.plannedHash,
  envKeys: env.keys,
  envHash: env.plannedHash,
});

if (cfg.ci.repository) {
  new GithubSecrets("github", {
    repository: cfg.ci.repository,
    environment: pulumi.getStack(),
    secrets: {
      VPS_HOST: cfg.vps.host,
      VPS_PORT: String(cfg.vps.port),
      VPS_USER: cfg.vps.user,
      VPS_SSH_KEY: cfg.vps.privateKey,
      VPS_HOST_KEY: cfg.vps.hostKey,
      ...cfg.ci.secrets,
    },
    token: cfg.ci.githubToken,
    baseUrl: cfg.ci.githubApiUrl,
  });
}

export const releaseId = release.releaseId;
export const previousReleaseId = release.previousReleaseId;
export const releaseDir = release.releaseDir;
export const artifactSha256 = release.artifactSha256;
export const healthUrl = release.healthUrl;
export const migrations = release.migrations;
export const provenance = release.provenance;
// The last activation's steps on the VPS, and what the next up keys the upload on (live.ts).
export const releaseSteps = release.steps;
export const uploadToken = release.uploadToken;
// Read back by the next preview (infra/plan.ts): key names, and hashes to compare.
export const ecosystemHash = ecosystem.contentHash;
export const envKeys = env.keys;
export const envHash = env.contentHash;

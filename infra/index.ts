// Wiring only: config in, components, outputs.
import "./stackTraces";
import * as pulumi from "@pulumi/pulumi";
import * as path from "node:path";
import { GeneratedSecrets } from "./components/generatedSecrets";
import { GithubSecrets } from "./components/githubSecrets";
import { HostLayout } from "./components/hostLayout";
import { announcePlan } from "./plan";
import { liveStack, uploadTokenFor } from "./live";
import { Pm2Ecosystem } from "./components/pm2Ecosystem";
import { FleetRelease, hostSlug } from "./components/fleet";
import { Notifier } from "./components/notifier";
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
const stack = `${pulumi.getProject()}/${pulumi.getStack()}`;
const origin = provenanceFor(cfg.app.provenance, id);
const live = liveStack();
const generated = cfg.app.generatedSecrets.length === 0 ? undefined
  : new GeneratedSecrets("generated", { names: cfg.app.generatedSecrets });
const appEnv = generated ? pulumi.all([cfg.app.env, generated.values]).apply(([e, g]) => ({ ...e, ...g })) : cfg.app.env;

// Each host's own files: one VPS keeps the names it always had; a fleet's carry the host.
const perHost = cfg.vps.hosts.map((h) => {
  const label = `${h.host}:${h.port}`;
  const suffix = cfg.vps.fleet ? `-${hostSlug(label)}` : "";
  const vps = { ...cfg.vps, ...h };
  const connection = connectionFor(vps);
  const host = new HostLayout(`host${suffix}`, { connection, layout: layout(cfg.vps.root), stack });
  const ecosystem = new Pm2Ecosystem(`pm2${suffix}`, {
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
  const env = new SharedEnv(`env${suffix}`, { connection, root: cfg.vps.root, env: appEnv, stack }, { dependsOn: [host] });
  const notifier = new Notifier(`notify${suffix}`, { connection, root: cfg.vps.root, stack, url: cfg.app.notify }, { dependsOn: [host] });
  return { label, primary: h.primary, connection, connectionTarget: connectionTarget(vps), ecosystem, env, notifier };
});
const settings = { root: cfg.vps.root, stack, target, app: cfg.app, provenance: origin };
const release = cfg.vps.fleet
  ? new FleetRelease("release", {
    ...settings,
    rollout: cfg.app.rollout,
    hosts: perHost.map((h) => ({
      label: h.label,
      primary: h.primary,
      connection: h.connection,
      connectionTarget: h.connectionTarget,
      uploadToken: uploadTokenFor(live, id, h.label),
      ecosystemHash: h.ecosystem.contentHash,
      envVersion: h.env.version,
      dependsOn: [h.ecosystem, h.env, h.notifier],
    })),
  })
  : new Release("release", {
    ...settings,
    connection: perHost[0].connection,
    connectionTarget: perHost[0].connectionTarget,
    uploadToken: uploadTokenFor(live, id),
    ecosystemHash: perHost[0].ecosystem.contentHash,
    envVersion: perHost[0].env.version,
  }, { dependsOn: [perHost[0].ecosystem, perHost[0].env, perHost[0].notifier] });
const { ecosystem, env } = perHost[0];

announcePlan(live, {
  release: { releaseId: id, migrations: target.kind === "deploy" ? target.artifact.migrations : undefined, source: sourceOf(origin) },
  ecosystemHash: ecosystem.plannedHash,
  envKeys: env.keys,
  envHash: env.plannedHash,
  fleet: cfg.vps.fleet ? { hosts: perHost.map((h) => h.label), rollout: cfg.app.rollout } : undefined,
});

if (cfg.ci.repository) {
  new GithubSecrets("github", {
    repository: cfg.ci.repository,
    environment: pulumi.getStack(),
    secrets: {
      ...(cfg.vps.fleet
        ? { VPS_HOSTS: JSON.stringify(cfg.vps.hosts.map(({ host, port, hostKey, primary }) => ({ host, port, hostKey, primary }))) }
        : { VPS_HOST: cfg.vps.host, VPS_PORT: String(cfg.vps.port), VPS_HOST_KEY: cfg.vps.hostKey }),
      VPS_USER: cfg.vps.user,
      VPS_SSH_KEY: cfg.vps.privateKey,
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
// Empty rather than undefined where they do not apply (a fleet's uploadToken, one VPS's hosts):
// Pulumi warns on every up about an undefined output; live.ts reads both alike.
export const uploadToken = release instanceof Release ? release.uploadToken : "";
// A fleet: what each host runs (release, previous, steps, upload token), keyed by host:port.
export const hosts = release instanceof FleetRelease ? release.hosts : {};
// Read back by the next preview (infra/plan.ts): key names, and hashes to compare.
export const ecosystemHash = ecosystem.contentHash;
export const envKeys = env.keys;
export const envHash = env.contentHash;

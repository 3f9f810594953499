// Wiring only: config in, components, outputs.
import * as path from "node:path";
import { HostLayout } from "./components/hostLayout";
import { Pm2Ecosystem } from "./components/pm2Ecosystem";
import { Release } from "./components/release";
import { SharedEnv } from "./components/sharedEnv";
import { readStackConfig } from "./config";
import { layout } from "./paths";
import { checkArtifact, connectionFor } from "./stack";

const projectRoot = path.resolve(__dirname, "..");
const cfg = readStackConfig(projectRoot);
const artifact = cfg.app.artifact === undefined ? undefined : checkArtifact(cfg.app.artifact);
const id = artifact?.releaseId ?? (cfg.app.release as string);
const connection = connectionFor(cfg.vps);

const host = new HostLayout("host", { connection, layout: layout(cfg.vps.root) });
const ecosystem = new Pm2Ecosystem("pm2", {
  connection,
  ecosystem: {
    root: cfg.vps.root,
    name: cfg.app.name,
    script: cfg.app.script,
    port: cfg.app.port,
    instances: cfg.app.instances,
  },
}, { dependsOn: [host] });
const env = new SharedEnv("env", { connection, root: cfg.vps.root, env: cfg.app.env }, { dependsOn: [host] });
const release = new Release("release", {
  connection,
  root: cfg.vps.root,
  releaseId: id,
  artifact,
  app: cfg.app,
  ecosystemHash: ecosystem.contentHash,
  envHash: env.contentHash,
}, { dependsOn: [ecosystem, env] });

export const releaseId = release.releaseId;
export const previousReleaseId = release.previousReleaseId;
export const releaseDir = release.releaseDir;
export const artifactSha256 = release.artifactSha256;
export const healthUrl = release.healthUrl;

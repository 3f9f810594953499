// GitHub environment secrets and generated app secrets, for real: the bridged github provider
// writes the workflows' secrets to a local stand-in of GitHub's REST API (test/support/github-api.ts),
// which opens each sealed box with the environment's private key; the random provider generates
// JWT_SECRET, which reaches the app and stays the same across releases.
import assert from "node:assert/strict";
import { appendFileSync } from "node:fs";
import * as path from "node:path";
import { after, before, describe, it } from "node:test";
import { GithubApi, startGithubApi } from "../support/github-api";
import { Artifacts, freePort, localVps, projectRoot, sshRun, TestStack, Vps } from "../../driver/local";

describe("GitHub secrets and generated app secrets", { timeout: 10 * 60 * 1000 }, () => {
  let vps: Vps;
  let api: GithubApi;
  let artifacts: Artifacts;
  let stack: TestStack;
  let root: string;
  const TOKEN = "stand-in-token-not-a-real-one";
  const PASSPHRASE = "ci-passphrase-'quoted' $(not run)\nsecond line";

  /** The app's environment as PM2 hands it to a live worker. */
  const appEnv = (): Record<string, string> => {
    const r = sshRun(vps, "pm2 jlist");
    assert.equal(r.status, 0, r.stderr);
    const app = (JSON.parse(r.stdout) as { name: string; pm2_env: Record<string, unknown> }[]).find((p) => p.name === stack.name);
    assert.ok(app, `no PM2 app ${stack.name}`);
    return { ...(app.pm2_env.env as Record<string, string>), ...(app.pm2_env as Record<string, string>) };
  };

  before(async () => {
    vps = localVps();
    artifacts = new Artifacts();
    stack = new TestStack(projectRoot, "e2e-github");
    api = await startGithubApi({ owner: "acme", repo: "api", environments: [stack.name], token: TOKEN });
    root = `${vps.root}-${stack.name}`;
    stack.useVps(vps, await freePort(), { root });
    stack.setConfig("app:instances", "1");
    stack.setConfig("app:artifact", artifacts.a.file);
    stack.setConfig("app:generatedSecrets", '["JWT_SECRET"]', { plaintext: true });
    stack.setConfig("ci:repository", "acme/api");
    stack.setConfig("ci:githubApiUrl", api.url);
    stack.setConfig("ci:githubToken", TOKEN, { secret: true });
    stack.setConfig("ci:secrets", JSON.stringify({ PULUMI_CONFIG_PASSPHRASE: PASSPHRASE, PULUMI_BACKEND_URL: "s3://state-bucket" }), { secret: true });
  });

  after(async () => {
    sshRun(vps, `pm2 delete ${stack.name} >/dev/null 2>&1; pm2 save --force >/dev/null 2>&1; rm -rf ${root}`);
    stack?.remove();
    artifacts?.remove();
    await api?.close();
  });

  let jwt = "";
  // Async: the stand-in answers from this process, so a blocking spawnSync would deadlock it.
  it("writes every workflow secret to the stack's GitHub environment, sealed, exactly", async () => {
    const r = await stack.upAsync();
    assert.equal(r.status, 0, r.stdout + r.stderr);
    const got = Object.fromEntries(api.secrets(stack.name));
    assert.deepEqual(Object.keys(got).sort(),
      ["PULUMI_BACKEND_URL", "PULUMI_CONFIG_PASSPHRASE", "VPS_HOST", "VPS_HOST_KEY", "VPS_PORT", "VPS_SSH_KEY", "VPS_USER"]);
    assert.equal(got.VPS_HOST, vps.host);
    assert.equal(got.VPS_PORT, String(vps.port));
    assert.equal(got.VPS_USER, vps.user);
    assert.equal(got.VPS_HOST_KEY, vps.hostKey);
    assert.equal(got.VPS_SSH_KEY.trim(), vps.privateKey.trim());
    assert.equal(got.PULUMI_CONFIG_PASSPHRASE, PASSPHRASE);
    assert.equal(got.PULUMI_BACKEND_URL, "s3://state-bucket");
    assert.ok(api.requests.some((q) => q.method === "PUT" && q.path.includes(`/environments/${stack.name}/secrets/VPS_SSH_KEY`)));
  });

  it("generates JWT_SECRET once: it reaches the app and survives a new release", async () => {
    jwt = appEnv().JWT_SECRET;
    assert.match(jwt ?? "", /^[A-Za-z0-9]{48}$/);
    const b = artifacts.variant("b", (d) => appendFileSync(path.join(d, "dist", "server.js"), "\n// release b\n"));
    stack.setConfig("app:artifact", b.file);
    const r = await stack.upAsync();
    assert.equal(r.status, 0, r.stdout + r.stderr);
    assert.equal(appEnv().RELEASE_ID, b.id);
    assert.equal(appEnv().JWT_SECRET, jwt);
  });

  it("keeps the generated value, the CI secrets and the token out of state and output", async () => {
    assert.ok(jwt, "the generated JWT_SECRET of the test before is needed to look for it");
    const exported = stack.pulumi(["stack", "export", "-s", stack.name]);
    assert.equal(exported.status, 0, exported.stderr);
    for (const secret of [jwt, "ci-passphrase", TOKEN, vps.privateKey.split("\n")[1]]) {
      assert.ok(!exported.stdout.includes(secret), "a secret in plaintext state");
    }
    const p = await stack.pulumiAsync(["preview", "-s", stack.name, "--non-interactive", "--expect-no-changes", "--diff"]);
    assert.equal(p.status, 0, p.stdout + p.stderr);
    assert.ok(!(p.stdout + p.stderr).includes(jwt), "the generated secret in the preview");
  });
});

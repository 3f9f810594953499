// Taking over a VPS deployed the old way (issue 16): a root set up and deployed by the seed's own
// script (bench/baselines/seed-deploy.sh: current/ a real folder, .env inside, PM2 running the app
// from it), then the first `pulumi up` of a stack pointed at it, under load, and a rollback to it.
import assert from "node:assert/strict";
import { appendFileSync } from "node:fs";
import * as path from "node:path";
import { after, before, describe, it } from "node:test";
import { Artifacts, freePort, getJson, localVps, projectRoot, run, sshRun, startLoad, TestStack, Vps } from "../../driver/local";

describe("takeover of a root deployed the old way", { timeout: 15 * 60 * 1000 }, () => {
  let vps: Vps;
  let stack: TestStack;
  let root: string;
  let port: number;
  let health: string;
  let artifacts: Artifacts;
  const app = () => stack.name;
  const live = async () => ((await getJson(health)).body as { release?: string }).release;
  const pm2Env = () => {
    const list = JSON.parse(sshRun(vps, "pm2 jlist").stdout) as { name: string; pm2_env: Record<string, unknown> & { env?: Record<string, string> } }[];
    const p = list.find((x) => x.name === app());
    return { ...(p?.pm2_env.env ?? {}), ...(p?.pm2_env as Record<string, string>) };
  };

  before(async () => {
    vps = localVps();
    artifacts = new Artifacts();
    stack = new TestStack(projectRoot, "e2e-takeover");
    root = `/home/${vps.user}/seed-${stack.name}`;
    port = await freePort();
    health = `http://127.0.0.1:${port}/health`;
    // What the seed's README asks for once, by hand, then its deploy script.
    const dotenv = `DATABASE_URL="file:${root}/shared/app.db"\nGREETING=from-the-old-flow\nexport OLD_ONLY='kept'\n`;
    const setup = sshRun(vps, `mkdir -p ${root}/current ${root}/shared && cat > ${root}/current/.env && chmod 600 ${root}/current/.env`, dotenv);
    assert.equal(setup.status, 0, setup.stderr);
    const seed = run("bash", [path.join(projectRoot, "bench", "baselines", "seed-deploy.sh"), artifacts.a.file], {
      env: {
        SEED_HOST: vps.host, SEED_SSH_PORT: String(vps.port), SEED_USER: vps.user, SEED_KEY: vps.keyFile,
        SEED_KNOWN_HOSTS: vps.knownHosts, SEED_ROOT: root, SEED_APP: stack.name, SEED_APP_PORT: String(port),
      },
    });
    assert.equal(seed.status, 0, seed.stdout + seed.stderr);
    assert.equal((await getJson(health)).status, 200, "the seed's deploy serves");
    assert.equal(sshRun(vps, `test -d ${root}/current && ! test -L ${root}/current && echo folder`).stdout.trim(), "folder");
    stack.useVps(vps, port, { root, app: stack.name });
    stack.setConfig("app:healthTimeout", "30");
    stack.setConfig("app:env", JSON.stringify({ GREETING: "from-app-env" }), { secret: true });
  });

  after(() => {
    sshRun(vps, `pm2 delete ${stack.name} >/dev/null 2>&1; pm2 save --force >/dev/null 2>&1; rm -rf ${root}`);
    stack?.remove();
    artifacts?.remove();
  });

  let takenOver = "";
  it("the first pulumi up takes it over under load: 0 failed, the old folder kept as a release, its .env carried", async () => {
    const b = artifacts.variant("b", (d) => appendFileSync(path.join(d, "dist", "server.js"), "\n// release b\n"));
    stack.setConfig("app:artifact", b.file);
    const load = await startLoad(health);
    const r = stack.up();
    const stats = await load.stop();
    const text = r.stdout + r.stderr;
    console.log(`takeover under load: ${stats.ok} requests answered, ${stats.failed} failed`);
    assert.equal(r.status, 0, text);
    assert.equal(stats.failed, 0, JSON.stringify(stats));
    assert.ok(stats.ok > 10, JSON.stringify(stats));
    assert.equal(await live(), b.id);
    assert.equal(sshRun(vps, `readlink ${root}/current`).stdout.trim(), `releases/${b.id}`);
    const out = stack.outputs();
    takenOver = String(out.previousReleaseId);
    assert.match(takenOver, /^[0-9a-f]{12}$/);
    const kept = sshRun(vps, `cat ${root}/releases/${takenOver}/REVISION; test -f ${root}/releases/${takenOver}/.keep && echo keep; test -f ${root}/releases/${takenOver}/.env && echo env`).stdout;
    assert.equal(kept, `${takenOver}\nkeep\nenv\n`);
    const log = sshRun(vps, `cat ${root}/shared/logs/release.log`).stdout;
    assert.match(log, /takeover: carried .*current\/\.env.*: DATABASE_URL GREETING OLD_ONLY \(names only/);
    assert.match(log, new RegExp(`takeover: .*kept whole as release ${takenOver}`));
    const env = pm2Env();
    assert.equal(env.OLD_ONLY, "kept", "a key only the old .env had");
    assert.equal(env.GREETING, "from-app-env", "app:env wins over the old .env");
    assert.equal(env.DATABASE_URL, `file:${root}/shared/app.db`);
    const p = stack.preview(["--expect-no-changes"]);
    assert.equal(p.status, 0, p.stdout + p.stderr);
  });

  it("npm run rollback returns to the taken-over release, under load, 0 failed", async () => {
    const load = await startLoad(health);
    const r = run("bash", ["scripts/node.sh", "ops/rollback.ts", "--stack", stack.name, "--to", takenOver], {
      env: { PULUMI_BACKEND_URL: `file://${stack.backend}`, PULUMI_CONFIG_PASSPHRASE: "e2e-test-passphrase" },
    });
    const stats = await load.stop();
    console.log(`rollback to the taken-over release: ${stats.ok} requests answered, ${stats.failed} failed`);
    assert.equal(r.status, 0, r.stdout + r.stderr);
    assert.equal(stats.failed, 0, JSON.stringify(stats));
    assert.equal(await live(), takenOver);
    assert.equal(sshRun(vps, `readlink ${root}/current`).stdout.trim(), `releases/${takenOver}`);
  });
});

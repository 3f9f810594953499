// The wiring under Pulumi mocks: which resources exist, their inputs, their order, and that no
// secret reaches any script text. Real behaviour is covered end to end; this is the wiring.
import assert from "node:assert/strict";
import { before, describe, it } from "node:test";
import * as pulumi from "@pulumi/pulumi";
import { generateTestKey } from "../../test/support/keys";

interface Recorded {
  type: string;
  name: string;
  inputs: Record<string, unknown>;
  dependsOn: string[];
}
const recorded: Recorded[] = [];
const deps = new Map<string, string[]>();

const SECRET_KEY = generateTestKey().privateKey;
/** A line from the middle of the key: it must appear in no script text. */
const KEY_BODY = SECRET_KEY.split("\n")[1];
const SECRET_VALUE = "env-secret-value-$(id)";

/** The value of an Output (Output.promise is internal to the SDK). */
function valueOf<T>(o: pulumi.Output<T>): Promise<T> {
  return new Promise((resolve) => o.apply((v) => {
    resolve(v);
    return v;
  }));
}

async function names(d: pulumi.Input<pulumi.Input<pulumi.Resource>[]> | pulumi.Input<pulumi.Resource> | undefined) {
  const list = await valueOf(pulumi.output(d ?? []) as pulumi.Output<unknown>);
  const arr = (Array.isArray(list) ? list : [list]) as pulumi.Resource[];
  return Promise.all(arr.map(async (r) => (await valueOf(r.urn)).split("::").pop() as string));
}

before(async () => {
  await pulumi.runtime.setMocks({
    newResource: (args) => {
      const state = { ...args.inputs };
      if (args.type === "random:index/randomPassword:RandomPassword") state.result = `generated-${args.name}`;
      if (args.type === "command:remote:Command") {
        state.stdout = args.name === "release-activate" || args.name.endsWith("-publish")
          ? 'RESULT {"releaseId":"0123456789ab","previousReleaseId":"ba9876543210","artifactSha256":"ab","steps":[{"name":"switch","seconds":0.1}]}'
          : /-(stage|migrate|preflight)$/.test(args.name)
            ? `PHASE {"phases":"x","releaseId":"0123456789ab","host":"h","steps":[{"name":"${args.name.split("-").pop()}","seconds":1}]}`
            : "ok";
      }
      recorded.push({ type: args.type, name: args.name, inputs: args.inputs, dependsOn: [] });
      return { id: `${args.name}-id`, state };
    },
    call: () => ({}),
  }, "vps-release", "test", false);
});

// Records each resource's dependsOn; passed to the components, it applies to their children too.
const capture: pulumi.ResourceTransformation = (args) => {
  deps.set(args.name, []);
  void names(args.opts.dependsOn).then((n) => deps.set(args.name, n));
  return undefined;
};

/** Mocks hand secret inputs over wrapped in Pulumi's secret signature; this unwraps them. */
function plain(v: unknown): unknown {
  const SIG = "4dabf18193072939515e22adb298388d";
  if (v !== null && typeof v === "object" && (v as Record<string, unknown>)[SIG] === "1b47061264138c4ac30d75fd1eb44270") {
    return plain((v as Record<string, unknown>).value);
  }
  return Array.isArray(v) ? v.map(plain) : v;
}

function isSecret(v: unknown): boolean {
  return v !== null && typeof v === "object" && "4dabf18193072939515e22adb298388d" in (v as object);
}

function find(name: string): Recorded {
  const r = recorded.find((x) => x.name === name);
  assert.ok(r, `no resource ${name}; have ${recorded.map((x) => x.name).join(", ")}`);
  return r;
}

describe("components under mocks", () => {
  const connection = {
    host: "127.0.0.1", port: 2222, user: "deploy", privateKey: pulumi.secret(SECRET_KEY), hostKey: "ssh-ed25519 AAAA",
  };
  const app = {
    name: "api", script: "dist/server.js", port: 3000, healthPath: "/health", healthTimeout: 60, healthSettle: 5, keepReleases: 5,
    migrate: "npx prisma migrate deploy", backup: "auto", lockTimeout: 120,
  };
  let outputs: Record<string, pulumi.Output<string>>;
  let generatedValues: pulumi.Output<Record<string, string>>;

  before(async () => {
    const { HostLayout } = await import("./hostLayout");
    const { Pm2Ecosystem } = await import("./pm2Ecosystem");
    const { SharedEnv } = await import("./sharedEnv");
    const { Release } = await import("./release");
    const { layout } = await import("../paths");
    const root = "/srv/api";
    const host = new HostLayout("host", { connection, layout: layout(root), stack: "p/s" }, { transformations: [capture] });
    const eco = new Pm2Ecosystem("pm2", { connection, ecosystem: { root, name: "api", script: "dist/server.js", port: 3000, instances: 2 }, stack: "p/s" }, { dependsOn: [host], transformations: [capture] });
    const env = new SharedEnv("env", { connection, root, env: { TOKEN: SECRET_VALUE, DATABASE_URL: "file:/srv/db" }, stack: "p/s" }, { dependsOn: [host], transformations: [capture] });
    const release = new Release("release", {
      connection, root, stack: "p/s", app,
      target: { kind: "deploy", releaseId: "0123456789ab", artifact: { path: "/tmp/a.tar.gz", sha256: "0123456789ab" + "c".repeat(52) } },
      connectionTarget: "deploy@203.0.113.10:22 ssh-ed25519 AAAAhost", uploadToken: "token-1",
      ecosystemHash: eco.contentHash, envVersion: env.version,
    }, { dependsOn: [eco, env], transformations: [capture] });
    const { GeneratedSecrets } = await import("./generatedSecrets");
    const { GithubSecrets } = await import("./githubSecrets");
    const generated = new GeneratedSecrets("generated", { names: ["JWT_SECRET", "COOKIE_KEY"] });
    generatedValues = generated.values;
    new GithubSecrets("github", {
      repository: "acme/api", environment: "production", baseUrl: "http://127.0.0.1:9/",
      secrets: { VPS_HOST: "203.0.113.10", VPS_SSH_KEY: SECRET_KEY, PULUMI_CONFIG_PASSPHRASE: SECRET_VALUE },
    });
    outputs = { releaseId: release.releaseId, previousReleaseId: release.previousReleaseId, healthUrl: release.healthUrl, releaseDir: release.releaseDir };
    await Promise.all(Object.values(outputs).map(valueOf));
    await new Promise((r) => setTimeout(r, 50));
  });

  it("creates the layout, the two files, the upload and the activation", () => {
    for (const n of ["host-folders", "pm2-file", "env-file", "release-upload", "release-activate"]) find(n);
    assert.equal(find("release-upload").type, "command:remote:CopyToRemote");
  });

  it("keys the upload and the activation on the artifact's hash", () => {
    const sha = "0123456789ab" + "c".repeat(52);
    // A new connection target or upload token uploads again (the official CopyToRemote re-uploads
    // only when its source or remotePath changes; triggers replace it).
    assert.deepEqual(find("release-upload").inputs.triggers, [sha, "deploy@203.0.113.10:22 ssh-ed25519 AAAAhost", "token-1"]);
    // A temporary name: a cut upload never looks like a complete one.
    assert.equal(find("release-upload").inputs.remotePath, `/srv/api/.incoming/${sha}.upload`);
    const triggers = plain(find("release-activate").inputs.triggers) as unknown[];
    assert.equal(triggers[0], "0123456789ab");
    assert.equal(triggers.length, 3);
  });

  it("keeps every trigger plain: a secret unknown in a preview is refused by the official provider", () => {
    for (const r of recorded) {
      if (r.inputs.triggers === undefined) continue;
      assert.ok(!isSecret(r.inputs.triggers), `${r.name}.triggers must not be secret`);
      for (const t of r.inputs.triggers as unknown[]) assert.ok(!isSecret(t), `${r.name}: a trigger is secret`);
    }
  });

  it("runs the release script from stdin with a one-line command", () => {
    const activate = find("release-activate");
    assert.ok(!String(activate.inputs.create).includes("\n"), "the command is one line");
    assert.ok(String(activate.inputs.create).length < 120);
    assert.match(String(activate.inputs.stdin), /^RELEASE_ID=0123456789ab$/m);
  });

  it("passes the private key only as a secret", () => {
    const conn = find("release-activate").inputs.connection;
    assert.ok(isSecret(conn), "connection must be a secret");
  });

  it("has no delete command on release resources; the app's registration has the one destroy runs", () => {
    assert.equal(find("release-activate").inputs.delete, undefined);
    assert.match(String(find("pm2-app").inputs.delete), /pm2 delete "\$APP_NAME"/);
    assert.deepEqual(deps.get("pm2-app"), ["pm2-file"]);
  });

  it("orders the release after the ecosystem and the .env, and those after the layout", () => {
    assert.deepEqual(deps.get("release")?.sort(), ["env", "pm2"]);
    assert.deepEqual(deps.get("pm2"), ["host"]);
    assert.deepEqual(deps.get("env"), ["host"]);
    assert.deepEqual(deps.get("release-activate"), ["release-upload"]);
  });

  it("sends the .env on stdin and names only its keys in the script", () => {
    const env = find("env-file");
    assert.match(String(env.inputs.create), /^# keys: DATABASE_URL TOKEN$/m);
    assert.ok(isSecret(env.inputs.stdin), "stdin must be a secret");
    assert.ok(String(plain(env.inputs.stdin)).includes("TOKEN="));
  });

  it("puts no secret in any script text", () => {
    for (const r of recorded) {
      for (const field of ["create", "update", "delete"]) {
        const text = String(plain(r.inputs[field]) ?? "");
        assert.ok(!text.includes(SECRET_VALUE), `${r.name}.${field} holds an app:env value`);
        assert.ok(!text.includes(KEY_BODY), `${r.name}.${field} holds the private key`);
      }
    }
  });

  it("exports the release outputs", async () => {
    assert.equal(await valueOf(outputs.releaseId), "0123456789ab");
    assert.equal(await valueOf(outputs.previousReleaseId), "ba9876543210");
    assert.equal(await valueOf(outputs.healthUrl), "http://127.0.0.1:3000/health");
    assert.equal(await valueOf(outputs.releaseDir), "/srv/api/releases/0123456789ab");
  });

  it("generates one RandomPassword per app:generatedSecrets name, letters and digits, as a secret", async () => {
    for (const n of ["JWT_SECRET", "COOKIE_KEY"]) {
      const r = find(n);
      assert.equal(r.type, "random:index/randomPassword:RandomPassword");
      assert.deepEqual({ length: r.inputs.length, special: r.inputs.special }, { length: 48, special: false });
    }
    assert.ok(pulumi.Output.isInstance(generatedValues));
    assert.equal(await generatedValues.isSecret, true);
    assert.deepEqual(await valueOf(generatedValues), { JWT_SECRET: "generated-JWT_SECRET", COOKIE_KEY: "generated-COOKIE_KEY" });
  });

  it("writes one GitHub environment secret per name, through a provider for the owner, values as secrets", () => {
    const provider = find("github-provider");
    assert.equal(provider.type, "pulumi:providers:github");
    assert.equal(provider.inputs.owner, "acme");
    assert.equal(provider.inputs.baseUrl, "http://127.0.0.1:9/");
    for (const n of ["PULUMI_CONFIG_PASSPHRASE", "VPS_HOST", "VPS_SSH_KEY"]) {
      const r = find(`github-${n}`);
      assert.equal(r.type, "github:index/actionsEnvironmentSecret:ActionsEnvironmentSecret");
      assert.deepEqual({ repository: r.inputs.repository, environment: r.inputs.environment, secretName: r.inputs.secretName },
        { repository: "api", environment: "production", secretName: n });
      assert.ok(isSecret(r.inputs.plaintextValue), `${n} must be a secret`);
    }
    assert.equal(plain(find("github-VPS_SSH_KEY").inputs.plaintextValue), SECRET_KEY);
  });
});

describe("a fleet under mocks (FleetRelease)", () => {
  const hosts = ["10.0.0.11:22", "10.0.0.12:22", "10.0.0.13:2222"];
  const slugs = ["10.0.0.11-22", "10.0.0.12-22", "10.0.0.13-2222"];
  let fleetHosts: pulumi.Output<Record<string, { releaseId: string; primary: boolean; steps: { name: string }[] }>>;
  let fleetId: pulumi.Output<string>;

  before(async () => {
    const { FleetRelease } = await import("./fleet");
    const app = {
      name: "api", script: "dist/server.js", port: 3000, healthPath: "/health", healthTimeout: 60, healthSettle: 5, keepReleases: 5,
      migrate: "npx prisma migrate deploy", backup: "auto", lockTimeout: 120,
    };
    const fleet = new FleetRelease("fleet", {
      root: "/srv/api", stack: "p/s", app, rollout: 1,
      target: { kind: "deploy", releaseId: "0123456789ab", artifact: { path: "/tmp/a.tar.gz", sha256: "0123456789ab" + "c".repeat(52) } },
      hosts: hosts.map((label, i) => ({
        label, primary: i === 1,
        connection: { host: label.split(":")[0], port: Number(label.split(":")[1]), user: "deploy", privateKey: pulumi.secret(SECRET_KEY), hostKey: "ssh-ed25519 AAAA" },
        connectionTarget: `deploy@${label} ssh-ed25519 AAAA`, uploadToken: `token-${i}`, ecosystemHash: "eco", envVersion: `env-${i}`, dependsOn: [],
      })),
    }, { transformations: [capture] });
    fleetHosts = fleet.hosts;
    fleetId = fleet.releaseId;
    await valueOf(fleetHosts);
    await new Promise((r) => setTimeout(r, 50));
  });

  it("uploads, stages, preflights and publishes on every host, and migrates once, on the primary", () => {
    for (const slug of slugs) for (const p of ["upload", "stage", "preflight", "publish"]) find(`fleet-${slug}-${p}`);
    assert.equal(recorded.filter((r) => r.name.startsWith("fleet-") && r.name.endsWith("migrate")).length, 1);
    const migrate = String(find("fleet-migrate").inputs.stdin);
    assert.match(migrate, /^PHASES=migrate$/m);
    assert.match(migrate, /^HOST_LABEL=10\.0\.0\.12:22$/m);
    for (const [i, slug] of slugs.entries()) {
      for (const p of ["stage", "preflight", "publish"]) {
        const text = String(find(`fleet-${slug}-${p}`).inputs.stdin);
        assert.match(text, new RegExp(`^PHASES=${p}$`, "m"));
        assert.match(text, new RegExp(`^HOST_LABEL=${hosts[i].replace(/\./g, "\\.")}$`, "m"));
        assert.match(text, /^LEASE_KEY=[0-9a-f]{16}$/m);
      }
    }
  });

  it("orders the phases: migrate after every stage, preflight after migrate, publish in batches of app:rollout", () => {
    const sorted = (n: string) => [...(deps.get(n) ?? [])].sort();
    assert.deepEqual(sorted("fleet-migrate"), slugs.map((s) => `fleet-${s}-stage`).sort());
    for (const s of slugs) assert.deepEqual(sorted(`fleet-${s}-preflight`), ["fleet-migrate"]);
    const preflights = slugs.map((s) => `fleet-${s}-preflight`);
    assert.deepEqual(sorted(`fleet-${slugs[0]}-publish`), [...preflights].sort());
    assert.deepEqual(sorted(`fleet-${slugs[1]}-publish`), [...preflights, `fleet-${slugs[0]}-publish`].sort());
    assert.deepEqual(sorted(`fleet-${slugs[2]}-publish`), [...preflights, `fleet-${slugs[1]}-publish`].sort());
    assert.deepEqual(sorted(`fleet-${slugs[0]}-stage`), [`fleet-${slugs[0]}-upload`]);
  });

  it("keys each host's phases on the release and that host's ecosystem and .env; the lease key is the same for all three", () => {
    const key = (n: string) => /^LEASE_KEY=(\w+)$/m.exec(String(find(n).inputs.stdin))?.[1];
    for (const [i, s] of slugs.entries()) {
      for (const p of ["stage", "preflight", "publish"]) assert.deepEqual(plain(find(`fleet-${s}-${p}`).inputs.triggers), ["0123456789ab", "eco", `env-${i}`]);
      assert.equal(key(`fleet-${s}-stage`), key(`fleet-${s}-publish`));
    }
    assert.notEqual(key(`fleet-${slugs[0]}-stage`), key(`fleet-${slugs[1]}-stage`));
    assert.deepEqual(plain(find("fleet-migrate").inputs.triggers), ["0123456789ab", "env-1"]);
  });

  it("outputs each host's release and steps, and the fleet's release id", async () => {
    const h = await valueOf(fleetHosts);
    assert.deepEqual(Object.keys(h), hosts);
    assert.equal(h[hosts[1]].primary, true);
    assert.deepEqual(h[hosts[1]].steps.map((s) => s.name), ["stage", "migrate", "preflight", "switch"]);
    assert.deepEqual(h[hosts[0]].steps.map((s) => s.name), ["stage", "preflight", "switch"]);
    assert.equal(await valueOf(fleetId), "0123456789ab");
  });
});


import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { generateTestKey } from "../test/support/keys";
import { ConfigError, DEFAULTS, parseConfig } from "./config";

const KEY = generateTestKey().privateKey;
const good: Record<string, string> = {
  "vps:host": "203.0.113.10",
  "vps:user": "deploy",
  "vps:privateKey": KEY,
  "vps:hostKey": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHd1 comment",
  "vps:root": "/home/deploy/apps/api",
  "app:artifact": "build/release.tar.gz",
};

function parse(over: Record<string, string | undefined>) {
  const raw = { ...good, ...over };
  return parseConfig((k) => raw[k], "/project");
}

function problems(over: Record<string, string | undefined>): string[] {
  try {
    parse(over);
  } catch (e) {
    assert.ok(e instanceof ConfigError);
    return e.problems;
  }
  assert.fail("expected a ConfigError");
}

describe("parseConfig", () => {
  it("applies every default", () => {
    const c = parse({});
    assert.deepEqual(c.vps, {
      host: "203.0.113.10", port: 22, user: "deploy", privateKey: KEY,
      hostKey: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHd1", root: "/home/deploy/apps/api",
      hosts: [{ host: "203.0.113.10", port: 22, hostKey: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHd1", primary: true }],
      fleet: false,
    });
    assert.deepEqual(c.app, {
      name: DEFAULTS.appName, artifact: "/project/build/release.tar.gz", release: undefined,
      script: "dist/server.js", port: 3000, instances: 2, healthPath: "/health", healthTimeout: 60, healthSettle: 5,
      keepReleases: 5, migrate: "npx prisma migrate deploy", backup: "auto", restore: "", lockTimeout: 120, env: {}, notify: undefined, rollout: 0,
      provenance: undefined, generatedSecrets: [],
    });
    assert.deepEqual(c.ci, { repository: undefined, secrets: {}, githubToken: undefined, githubApiUrl: undefined });
  });

  it("reads every key", () => {
    const c = parse({
      "vps:port": "2222", "app:name": "api", "app:artifact": "/abs/a.tar.gz", "app:script": "build/main.js",
      "app:port": "8080", "app:instances": "4", "app:healthPath": "/healthz?deep=1", "app:healthTimeout": "90",
      "app:keepReleases": "3", "app:migrate": "", "app:backup": "", "app:lockTimeout": "5", "app:healthSettle": "0",
      "app:env": JSON.stringify({ DATABASE_URL: "file:/x.db", N: 3, TRICKY: "a'b\"c $(x) `y`\nz" }),
    });
    assert.equal(c.vps.port, 2222);
    assert.equal(c.app.artifact, "/abs/a.tar.gz");
    assert.equal(c.app.migrate, "");
    assert.equal(c.app.healthSettle, 0);
    assert.deepEqual(c.app.env, { DATABASE_URL: "file:/x.db", N: "3", TRICKY: "a'b\"c $(x) `y`\nz" });
  });

  it("takes app:release instead of app:artifact", () => {
    const c = parse({ "app:artifact": undefined, "app:release": "0123456789ab" });
    assert.equal(c.app.release, "0123456789ab");
    assert.equal(c.app.artifact, undefined);
  });

  it("reports every problem at once, each with its key and fix", () => {
    const p = problems({ "vps:host": undefined, "vps:port": "80a", "app:instances": "0", "app:healthPath": "health" });
    assert.deepEqual(p, [
      "vps:host: required, not set (pulumi config set vps:host 203.0.113.10)",
      'vps:port: expected an integer 1-65535, got "80a" (pulumi config set vps:port 22)',
      'app:instances: expected an integer 1-64, got "0" (pulumi config set app:instances 2)',
      'app:healthPath: expected a URL path starting with /, got "health" (pulumi config set app:healthPath /health)',
    ]);
  });

  const cases: [string, Record<string, string | undefined>, RegExp][] = [
    ["port out of range", { "vps:port": "70000" }, /^vps:port: expected an integer 1-65535, got "70000"/],
    ["empty user", { "vps:user": "" }, /^vps:user: required, not set \(pulumi config set vps:user deploy\)$/],
    ["bad user", { "vps:user": "de ploy" }, /^vps:user: expected a Unix user name/],
    ["host with a space", { "vps:host": "a b" }, /^vps:host: expected a host name or IP address/],
    ["private key that is not a key", { "vps:privateKey": "hunter2" }, /^vps:privateKey: expected a PEM or OpenSSH private key .*--secret vps:privateKey/],
    ["missing private key", { "vps:privateKey": undefined }, /^vps:privateKey: required, not set \(pulumi config set --secret vps:privateKey < FILE\)$/],
    ["host key of one word", { "vps:hostKey": "AAAAC3Nza" }, /^vps:hostKey: expected one public key line.*ssh-keyscan/],
    ["host key of unknown type", { "vps:hostKey": "ssh-foo AAAA" }, /^vps:hostKey: expected one public key line/],
    ["relative root", { "vps:root": "apps/api" }, /^vps:root: expected an absolute, normalized path/],
    ["root /", { "vps:root": "/" }, /^vps:root: expected an absolute/],
    ["root with ..", { "vps:root": "/home/../etc" }, /^vps:root: expected an absolute/],
    ["root with a quote", { "vps:root": "/home/it's" }, /^vps:root: expected an absolute/],
    ["bad app name", { "app:name": "my app" }, /^app:name: expected letters, digits/],
    ["both artifact and release", { "app:release": "0123456789ab" }, /^app:artifact and app:release are both set; they are exclusive/],
    ["neither artifact nor release", { "app:artifact": undefined }, /^app:artifact or app:release: one is required/],
    ["release id not hex", { "app:artifact": undefined, "app:release": "v1.2" }, /^app:release: expected a release id, 12 lowercase hex digits, got "v1.2"/],
    ["script outside the release", { "app:script": "../x.js" }, /^app:script: expected a relative path inside the release/],
    ["keepReleases below 2", { "app:keepReleases": "1" }, /^app:keepReleases: expected an integer 2-100, got "1"/],
    ["healthTimeout not a number", { "app:healthTimeout": "soon" }, /^app:healthTimeout: expected an integer 1-3600/],
    ["healthSettle negative", { "app:healthSettle": "-1" }, /^app:healthSettle: expected an integer 0-600/],
    ["negative lockTimeout", { "app:lockTimeout": "-1" }, /^app:lockTimeout: expected an integer 0-3600/],
    ["multi-line migrate", { "app:migrate": "a\nb" }, /^app:migrate: expected one line/],
    ["env not an object", { "app:env": "[1]" }, /^app:env: expected an object of NAME: value/],
    ["env not JSON", { "app:env": "A=1" }, /^app:env: expected an object of NAME: value/],
    ["env key not a name", { "app:env": '{"1A":"x"}' }, /^app:env: "1A" is not a valid variable name/],
    ["env key with a dash", { "app:env": '{"A-B":"x"}' }, /^app:env: "A-B" is not a valid variable name/],
    ["env PORT", { "app:env": '{"PORT":"1"}' }, /^app:env: PORT is reserved, set app:port instead/],
    ["env RELEASE_ID", { "app:env": '{"RELEASE_ID":"1"}' }, /^app:env: RELEASE_ID is reserved, the deploy sets it/],
    ["env value an object", { "app:env": '{"A":{"b":1}}' }, /^app:env.A: expected a string value/],
  ];
  for (const [name, over, want] of cases) {
    it(`refuses ${name}`, () => {
      const p = problems(over);
      assert.equal(p.length, 1, p.join("\n"));
      assert.match(p[0], want);
    });
  }

  it("reads app:provenance (written by promote and rollback) and refuses a malformed one", () => {
    const p = { kind: "promote", releaseId: "0123456789ab", fromStack: "staging", artifactSha256: "ab".repeat(32),
      requestedAt: "2026-11-25T10:00:00.000Z" };
    assert.deepEqual(parse({ "app:provenance": JSON.stringify(p) }).app.provenance, p);
    assert.equal(parse({ "app:provenance": "" }).app.provenance, undefined);
    for (const bad of ["not json", JSON.stringify({ ...p, kind: "deploy" }), JSON.stringify({ ...p, releaseId: "x" }),
      JSON.stringify({ ...p, fromStack: "a b" }), JSON.stringify({ ...p, requestedAt: "yesterday" })]) {
      const [problem] = problems({ "app:provenance": bad });
      assert.match(problem, /^app:provenance: expected .*pulumi config rm app:provenance\)$/);
    }
  });

  it("reads app:generatedSecrets and ci:*, and refuses bad names, clashes and URLs", () => {
    const c = parse({
      "app:generatedSecrets": '["JWT_SECRET","COOKIE_KEY","JWT_SECRET"]', "ci:repository": "acme/api",
      "ci:secrets": JSON.stringify({ PULUMI_CONFIG_PASSPHRASE: "pp" }), "ci:githubToken": "t", "ci:githubApiUrl": "http://127.0.0.1:1/",
    });
    assert.deepEqual(c.app.generatedSecrets, ["JWT_SECRET", "COOKIE_KEY"]);
    assert.deepEqual(c.ci, { repository: "acme/api", secrets: { PULUMI_CONFIG_PASSPHRASE: "pp" }, githubToken: "t", githubApiUrl: "http://127.0.0.1:1/" });
    assert.deepEqual(parse({ "app:generatedSecrets": "A, B" }).app.generatedSecrets, ["A", "B"]);
    const p = problems({
      "app:generatedSecrets": '["OK", "bad-name", "PORT", "DUP"]', "app:env": JSON.stringify({ DUP: "x" }),
      "ci:repository": "not a repo", "ci:secrets": JSON.stringify({ GITHUB_TOKEN: "x", N: 1 }), "ci:githubApiUrl": "ftp://x",
    });
    const want = [/^app:generatedSecrets: "bad-name" is not a valid variable name/, /^app:generatedSecrets: DUP is also set in app:env/,
      /^app:generatedSecrets: PORT is reserved/, /^ci:repository: expected owner\/name/, /^ci:secrets: "GITHUB_TOKEN" is not a valid GitHub secret name/,
      /^ci:secrets\.N: expected a string value \(values are never shown\)/, /^ci:githubApiUrl: expected an http\(s\) URL/];
    for (const re of want) assert.ok(p.some((x) => re.test(x)), `${re} not in:\n${p.join("\n")}`);
  });

  it("never echoes a secret value", () => {
    const secret = "s3cr3t-value-xyz";
    const p = problems({ "vps:privateKey": secret, "app:env": JSON.stringify({ A: { secret } }) });
    for (const line of p) assert.ok(!line.includes(secret), line);
  });

  it("app:notify: an http(s) URL, refused without echoing it", () => {
    assert.equal(parse({ "app:notify": "https://hooks.example.com/T0/B0/secret-token" }).app.notify, "https://hooks.example.com/T0/B0/secret-token");
    const p = problems({ "app:notify": "not a url secret-token" });
    assert.match(p[0], /^app:notify: expected an http\(s\) URL/);
    assert.ok(!p[0].includes("secret-token"));
  });

  describe("vps:hosts (a fleet)", () => {
    const K1 = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHd1";
    const K2 = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHd2";
    const fleet = (hosts: unknown, over: Record<string, string | undefined> = {}) =>
      ({ "vps:host": undefined, "vps:hostKey": undefined, "vps:hosts": JSON.stringify(hosts), ...over });

    it("reads the hosts, the first one primary by default, and app:rollout", () => {
      const c = parse(fleet([{ host: "10.0.0.11", hostKey: `${K1} c1` }, { host: "10.0.0.12", port: 2222, hostKey: K2 }],
        { "app:rollout": "1" }));
      assert.equal(c.vps.fleet, true);
      assert.deepEqual(c.vps.hosts, [
        { host: "10.0.0.11", port: 22, hostKey: K1, primary: true },
        { host: "10.0.0.12", port: 2222, hostKey: K2, primary: false },
      ]);
      assert.equal(c.vps.host, "10.0.0.11");
      assert.equal(c.app.rollout, 1);
    });

    it("takes the host that says primary: true", () => {
      const c = parse(fleet([{ host: "10.0.0.11", hostKey: K1 }, { host: "10.0.0.12", hostKey: K2, primary: true }]));
      assert.deepEqual(c.vps.hosts.map((h) => h.primary), [false, true]);
      assert.equal(c.vps.host, "10.0.0.12");
    });

    it("names every bad entry by its index, all at once", () => {
      const p = problems(fleet([
        { host: "10.0.0.11" },
        { host: "bad host!", hostKey: "nope" },
        { host: "10.0.0.13", hostKey: K2, port: 0, user: "x" },
        { host: "10.0.0.11", hostKey: K1 },
        "10.0.0.15",
      ]));
      const has = (re: RegExp) => assert.ok(p.some((x) => re.test(x)), `expected ${re} in:\n${p.join("\n")}`);
      has(/^vps:hosts\[0\]\.hostKey: required: every host's key is pinned \(ssh-keyscan -t ed25519 10\.0\.0\.11/);
      has(/^vps:hosts\[1\]\.host: expected a host name or IP address/);
      has(/^vps:hosts\[1\]\.hostKey: expected one public key line/);
      has(/^vps:hosts\[2\]\.port: expected an integer 1-65535/);
      has(/^vps:hosts\[2\]\.user: unknown field/);
      has(/^vps:hosts\[3\]: 10\.0\.0\.11:22 is also vps:hosts\[0\]/);
      has(/^vps:hosts\[4\]: expected an object/);
    });

    it("refuses vps:host with vps:hosts, two primaries, an empty list, bad JSON and a bad rollout", () => {
      const p = problems(fleet([{ host: "10.0.0.11", hostKey: K1, primary: true }, { host: "10.0.0.12", hostKey: K2, primary: true }],
        { "vps:host": "203.0.113.10", "app:rollout": "-1" }));
      assert.ok(p.some((x) => x.startsWith("vps:host and vps:hosts are both set")), p.join("\n"));
      assert.ok(p.some((x) => x.startsWith("vps:hosts: [0], [1] all say primary: true")), p.join("\n"));
      assert.ok(p.some((x) => x.startsWith("app:rollout: expected an integer 0-1000")), p.join("\n"));
      assert.match(problems({ ...fleet([]) })[0], /^vps:hosts: expected a non-empty JSON list/);
      assert.match(problems({ "vps:host": undefined, "vps:hostKey": undefined, "vps:hosts": "[{" })[0], /^vps:hosts: expected a JSON list/);
    });
  });
});


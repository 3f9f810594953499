// .github/scripts/configure-stack.sh against a real stack in a throwaway file backend: each
// VPS_* variable lands in its config key, the private key as a secret that matches byte for byte
// what `config set --secret vps:privateKey < file` stores, and nothing secret is printed.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { after, before, describe, it } from "node:test";
import { generateTestKey } from "../support/keys";

const projectRoot = path.resolve(__dirname, "..", "..");

describe("configure-stack.sh", () => {
  const backend = mkdtempSync(path.join(tmpdir(), "configure-stack-"));
  // Pulumi.e2e-*.yaml is git-ignored.
  const stack = `e2e-cfg-${randomBytes(3).toString("hex")}`;
  const env = { ...process.env, PULUMI_BACKEND_URL: `file://${backend}`, PULUMI_CONFIG_PASSPHRASE: "configure-stack-test", PULUMI_STACK: "" };
  const pulumi = (args: string[], input?: string) =>
    spawnSync("bash", ["scripts/pulumi.sh", ...args], { cwd: projectRoot, env, input, encoding: "utf8" });
  const get = (key: string) => {
    const r = pulumi(["config", "get", "-s", stack, key]);
    assert.equal(r.status, 0, r.stderr);
    return r.stdout.replace(/\n$/, "");
  };
  const configure = (vars: Record<string, string>, prefix?: string) =>
    spawnSync("bash", [".github/scripts/configure-stack.sh", stack, ...(prefix ? [prefix] : [])],
      { cwd: projectRoot, env: { ...env, ...vars }, encoding: "utf8" });

  before(() => {
    const r = pulumi(["stack", "init", stack]);
    assert.equal(r.status, 0, r.stderr);
  });
  after(() => {
    pulumi(["stack", "rm", "-s", stack, "--force", "--yes"]);
    rmSync(backend, { recursive: true, force: true });
    rmSync(path.join(projectRoot, `Pulumi.${stack}.yaml`), { force: true });
  });

  it("sets every key from VPS_*, the private key as a secret, and prints no value", () => {
    const key = generateTestKey();
    const vars = {
      VPS_HOST: "203.0.113.7", VPS_PORT: "2222", VPS_USER: "deploy",
      VPS_HOST_KEY: key.publicKey, VPS_SSH_KEY: key.privateKey,
    };
    const r = configure(vars);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(get("vps:host"), "203.0.113.7");
    assert.equal(get("vps:port"), "2222");
    assert.equal(get("vps:user"), "deploy");
    assert.equal(get("vps:hostKey"), key.publicKey);

    // The same bytes as the README's `config set --secret vps:privateKey < key file`.
    const reference = `e2e-ref-${randomBytes(3).toString("hex")}`;
    assert.equal(pulumi(["stack", "init", reference]).status, 0);
    try {
      assert.equal(pulumi(["config", "set", "-s", reference, "--secret", "vps:privateKey"], key.privateKey).status, 0);
      const r2 = pulumi(["config", "get", "-s", reference, "vps:privateKey"]);
      assert.equal(get("vps:privateKey"), r2.stdout.replace(/\n$/, ""));
    } finally {
      pulumi(["stack", "rm", "-s", reference, "--force", "--yes"]);
      rmSync(path.join(projectRoot, `Pulumi.${reference}.yaml`), { force: true });
    }
    assert.match(get("vps:privateKey"), /\n.+\n/, "multi-line key kept");

    const file = readFileSync(path.join(projectRoot, `Pulumi.${stack}.yaml`), "utf8");
    assert.match(file, /vps:privateKey:\n\s+secure: /);
    const keyBody = key.privateKey.split("\n")[1];
    assert.ok(!file.includes(keyBody), "the private key is in the stack file in plaintext");
    assert.ok(!(r.stdout + r.stderr).includes(keyBody), "the private key was printed");
  });

  it("keeps a key whose variable is empty, and reads PREFIXed variables", () => {
    const r = configure({ VPS_HOST: "", VPS_PORT: "", VPS_USER: "", VPS_HOST_KEY: "", VPS_SSH_KEY: "", STAGING_VPS_USER: "other" }, "STAGING_");
    assert.equal(r.status, 0, r.stderr);
    assert.equal(get("vps:host"), "203.0.113.7");
    assert.equal(get("vps:user"), "other");
    assert.match(r.stdout, /vps:privateKey: STAGING_VPS_SSH_KEY is empty; kept/);
  });

  it("sets vps:hosts from VPS_HOSTS (a fleet's JSON list)", () => {
    const hosts = JSON.stringify([{ host: "10.0.0.11", hostKey: "ssh-ed25519 AAAA1" }, { host: "10.0.0.12", port: 2222, hostKey: "ssh-ed25519 AAAA2" }]);
    const r = configure({ VPS_HOSTS: hosts });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /vps:hosts set from VPS_HOSTS/);
    assert.deepEqual(JSON.parse(get("vps:hosts")), JSON.parse(hosts));
  });
});


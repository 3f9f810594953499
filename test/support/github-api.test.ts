// The GitHub API stand-in decrypts exactly what a client sealed the way the provider does
// (crypto_box_seal to the environment's public key), serves both URL forms, and logs no value.
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { after, before, describe, it } from "node:test";
import sodium = require("libsodium-wrappers");
import { GithubApi, startGithubApi } from "./github-api";
import { generateTestKey } from "./keys";

const owner = "octo";
const repo = "vps-release";

async function call(api: GithubApi, method: string, route: string, body?: unknown, token = "test-token") {
  const res = await fetch(new URL(route, api.url), {
    method,
    headers: { Authorization: `Bearer ${token}`, Accept: "application/vnd.github+json", "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, body: text === "" ? undefined : (JSON.parse(text) as Record<string, unknown>) };
}

/** What the provider does: base64(crypto_box_seal(value, base64-decoded public key)). */
function seal(value: string, publicKeyB64: string): string {
  return Buffer.from(sodium.crypto_box_seal(Buffer.from(value, "utf8"), Buffer.from(publicKeyB64, "base64"))).toString("base64");
}

describe("GitHub API stand-in", () => {
  let api: GithubApi;
  before(async () => {
    await sodium.ready;
    api = await startGithubApi({ owner, repo, environments: ["staging", "production", "pr preview"], token: "test-token" });
  });
  after(() => api.close());

  it("serves the repository, with and without the /api/v3/ prefix the provider adds to a base URL", async () => {
    for (const prefix of ["api/v3/", ""]) {
      const r = await call(api, "GET", `${prefix}repos/${owner}/${repo}`);
      assert.equal(r.status, 200);
      assert.equal(r.body?.id, api.repoId);
      assert.equal(r.body?.full_name, `${owner}/${repo}`);
      assert.equal((await call(api, "GET", `${prefix}repositories/${api.repoId}`)).body?.name, repo);
    }
    assert.equal(api.apiUrl, `${api.url}api/v3/`);
    assert.equal((await call(api, "GET", `api/v3/repos/${owner}/other`)).status, 404);
  });

  it("answers the provider's configure step: /user, /orgs/{owner} (404 for a user), /rate_limit", async () => {
    assert.equal((await call(api, "GET", "api/v3/user")).body?.login, owner);
    assert.equal((await call(api, "GET", `api/v3/orgs/${owner}`)).status, 404);
    assert.equal((await call(api, "GET", "api/v3/rate_limit")).status, 200);
  });

  it("refuses a request without the token", async () => {
    assert.equal((await call(api, "GET", `api/v3/repos/${owner}/${repo}`, undefined, "wrong")).status, 401);
  });

  it("serves each environment and one X25519 public key per environment, under both route forms", async () => {
    assert.equal((await call(api, "GET", `api/v3/repos/${owner}/${repo}/environments/staging`)).body?.name, "staging");
    assert.equal((await call(api, "GET", `api/v3/repos/${owner}/${repo}/environments/pr%20preview`)).body?.name, "pr preview");
    assert.equal((await call(api, "GET", `api/v3/repos/${owner}/${repo}/environments/nope`)).status, 404);
    const byId = await call(api, "GET", `api/v3/repositories/${api.repoId}/environments/staging/secrets/public-key`);
    const byName = await call(api, "GET", `api/v3/repos/${owner}/${repo}/environments/staging/secrets/public-key`);
    assert.deepEqual(byId.body, byName.body);
    assert.deepEqual(byId.body, { key_id: api.publicKey("staging").keyId, key: api.publicKey("staging").key });
    assert.equal(Buffer.from(String(byId.body?.key), "base64").length, 32);
    assert.notEqual(api.publicKey("production").key, api.publicKey("staging").key);
  });

  it("decrypts each PUT exactly: quotes, newlines, unicode, and a multi-line private key", async () => {
    const { key, keyId } = api.publicKey("staging");
    const values: Record<string, string> = {
      PLAIN: "hunter2",
      QUOTES: `it's "quoted" \`and\` $(not run) \\ back\\slash`,
      NEWLINES: "line one\nline two\r\n\ttabbed\n",
      UNICODE: "pässwörd ✓ 秘密",
      VPS_SSH_KEY: generateTestKey().privateKey,
      EMPTY: "",
    };
    for (const [name, value] of Object.entries(values)) {
      const r = await call(api, "PUT", `api/v3/repositories/${api.repoId}/environments/staging/secrets/${name}`,
        { encrypted_value: seal(value, key), key_id: keyId });
      assert.equal(r.status, 201, `${name}: ${JSON.stringify(r.body)}`);
    }
    assert.match(values.VPS_SSH_KEY, /\n.*\n/, "the generated key spans lines");
    assert.deepEqual(Object.fromEntries(api.secrets("staging")), values);
    assert.equal(api.secrets("production").size, 0);

    const log = JSON.stringify(api.requests);
    for (const value of Object.values(values).filter((v) => v.length > 3)) {
      assert.ok(!log.includes(value) && !log.includes(JSON.stringify(value).slice(1, -1)), "a value reached the request log");
    }
  });

  it("updates (204), reads, lists and deletes a secret, by repository id or by owner/repo", async () => {
    const { key, keyId } = api.publicKey("production");
    for (const base of [`api/v3/repositories/${api.repoId}`, `repos/${owner}/${repo}`]) {
      const url = `${base}/environments/production/secrets/TOKEN`;
      assert.equal((await call(api, "PUT", url, { encrypted_value: seal("one", key), key_id: keyId })).status, 201);
      const first = await call(api, "GET", url);
      assert.equal(first.status, 200);
      assert.equal(first.body?.name, "TOKEN");
      assert.match(String(first.body?.created_at), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
      assert.equal((await call(api, "PUT", url, { encrypted_value: seal("two", key), key_id: keyId })).status, 204);
      assert.equal(api.secrets("production").get("TOKEN"), "two");
      const list = await call(api, "GET", `${base}/environments/production/secrets`);
      assert.deepEqual((list.body?.secrets as { name: string }[]).map((s) => s.name), ["TOKEN"]);
      assert.equal((await call(api, "DELETE", url)).status, 204);
      assert.equal((await call(api, "GET", url)).status, 404);
      assert.equal(api.secrets("production").has("TOKEN"), false);
    }
  });

  it("refuses a wrong key_id, a box sealed to another environment's key, and a value that is no sealed box", async () => {
    const url = `api/v3/repositories/${api.repoId}/environments/staging/secrets/BAD`;
    const staging = api.publicKey("staging");
    const production = api.publicKey("production");
    assert.equal((await call(api, "PUT", url, { encrypted_value: seal("x", staging.key), key_id: production.keyId })).status, 422);
    assert.equal((await call(api, "PUT", url, { encrypted_value: seal("x", production.key), key_id: staging.keyId })).status, 422);
    assert.equal((await call(api, "PUT", url, { encrypted_value: Buffer.from("not a box").toString("base64"), key_id: staging.keyId })).status, 422);
    assert.equal(api.secrets("staging").has("BAD"), false);
  });

  it("records method, path and status of each request", async () => {
    const seen = api.requests.map((r) => `${r.method} ${r.path} ${r.status}`);
    assert.ok(seen.includes(`GET /api/v3/repos/${owner}/${repo} 200`));
    assert.ok(seen.includes(`PUT /api/v3/repositories/${api.repoId}/environments/staging/secrets/PLAIN 201`));
    assert.ok(seen.includes(`DELETE /repos/${owner}/${repo}/environments/production/secrets/TOKEN 204`));
    for (const r of api.requests) assert.deepEqual(Object.keys(r).sort(), ["method", "path", "status"]);
  });

  it("opens a box sealed by Go's box.SealAnonymous, the function the provider calls", async (t) => {
    const go = goWithCrypto();
    if (!go) {
      t.skip("no go toolchain, or golang.org/x/crypto is not in the Go module cache");
      return;
    }
    const { key, keyId } = api.publicKey("staging");
    const value = `from go: "quoted"\nsecond line\n${generateTestKey().privateKey}`;
    const sealed = await sealWithGo(go, value, key);
    const r = await call(api, "PUT", `api/v3/repositories/${api.repoId}/environments/staging/secrets/FROM_GO`,
      { encrypted_value: sealed, key_id: keyId });
    assert.equal(r.status, 201, JSON.stringify(r.body));
    assert.equal(api.secrets("staging").get("FROM_GO"), value);
  });
});

interface GoCrypto {
  modCache: string;
  version: string;
}

/** The Go toolchain and the newest golang.org/x/crypto already in its module cache, if any. */
function goWithCrypto(): GoCrypto | undefined {
  const env = spawnSync("go", ["env", "GOMODCACHE"], { encoding: "utf8" });
  if (env.status !== 0) return undefined;
  const modCache = env.stdout.trim();
  const dir = path.join(modCache, "golang.org", "x");
  if (!existsSync(dir)) return undefined;
  const versions = readdirSync(dir).filter((d) => /^crypto@v\d+\.\d+\.\d+$/.test(d)).map((d) => d.slice("crypto@".length));
  const num = (v: string) => v.slice(1).split(".").map(Number);
  versions.sort((a, b) => num(a).reduce((acc, x, i) => acc || x - num(b)[i], 0));
  return versions.length ? { modCache, version: versions[versions.length - 1] } : undefined;
}

/**
 * Seals `value` with nacl/box.SealAnonymous, offline (the module cache is the proxy). Asynchronous on
 * purpose: the stand-in serves from this process, and a `go run` that blocked the event loop for the
 * seconds a cold compile takes let the server's keep-alive timer close a pooled socket just as the
 * next request reused it (ECONNRESET).
 */
async function sealWithGo(go: GoCrypto, value: string, publicKeyB64: string): Promise<string> {
  const dir = mkdtempSync(path.join(tmpdir(), "seal-go-"));
  try {
    writeFileSync(path.join(dir, "go.mod"), `module sealtest\n\ngo 1.21\n\nrequire golang.org/x/crypto ${go.version}\n`);
    writeFileSync(path.join(dir, "main.go"), `package main

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"io"
	"os"

	"golang.org/x/crypto/nacl/box"
)

func main() {
	pk, err := base64.StdEncoding.DecodeString(os.Args[1])
	if err != nil {
		panic(err)
	}
	var key [32]byte
	copy(key[:], pk)
	plain, err := io.ReadAll(os.Stdin)
	if err != nil {
		panic(err)
	}
	out, err := box.SealAnonymous(nil, plain, &key, rand.Reader)
	if err != nil {
		panic(err)
	}
	fmt.Print(base64.StdEncoding.EncodeToString(out))
}
`);
    const r = await runWithInput("go", ["run", ".", publicKeyB64], value, {
      cwd: dir,
      env: {
        ...process.env,
        GOFLAGS: "-mod=mod",
        GOPROXY: `file://${path.join(go.modCache, "cache", "download")}`,
        GOSUMDB: "off",
        GOTOOLCHAIN: "local",
      },
    });
    assert.equal(r.status, 0, `go run failed:\n${r.stderr}`);
    return r.stdout;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function runWithInput(cmd: string, args: string[], input: string, opts: { cwd: string; env: NodeJS.ProcessEnv }) {
  return new Promise<{ status: number | null; stdout: string; stderr: string }>((resolve, reject) => {
    const child = spawn(cmd, args, { ...opts, stdio: ["pipe", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString("utf8")));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString("utf8")));
    child.on("error", reject);
    child.on("close", (status) => resolve({ status, stdout, stderr }));
    child.stdin.end(input);
  });
}

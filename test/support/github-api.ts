// A local stand-in of the part of GitHub's REST API that the Terraform GitHub provider (behind
// @pulumi/github) calls to manage `github_actions_environment_secret`: an HTTP server on 127.0.0.1
// with one real X25519 key pair per environment. Each PUT's sealed box is opened with the
// environment's private key, so a test can assert on exactly what the provider sent. The request
// log holds method and path only: never a value.
//
// Point the provider at `url` (github:baseUrl, or GITHUB_BASE_URL): for any base URL other than
// https://api.github.com/ the provider appends `api/v3/` (terraform-provider-github
// github/config.go, NewRESTClient), so every route is served with and without that prefix.
import { randomInt } from "node:crypto";
import { createServer, IncomingMessage, ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
// Why `import = require`: libsodium-wrappers fills its exports once loaded; a namespace import
// (`import * as`) would copy them before they exist.
import sodium = require("libsodium-wrappers");

export interface GithubApiOptions {
  /** Login of the repository's owner (a user, unless `ownerIsOrganization`). */
  owner: string;
  /** Repository name. */
  repo: string;
  /** Environments that exist; PUT /repos/{owner}/{repo}/environments/{name} adds more. */
  environments: string[];
  /** Numeric repository id the provider reads from GET /repos/{owner}/{repo}. Default: random. */
  repoId?: number;
  /** When set, every request must carry `Authorization: Bearer <token>` (or `token <token>`). */
  token?: string;
  /** GET /orgs/{owner} answers the organization instead of 404. Default false. */
  ownerIsOrganization?: boolean;
}

export interface RecordedRequest {
  method: string;
  /** The path as requested, prefix included; no query string, no body. */
  path: string;
  status: number;
}

export interface GithubApi {
  /** Base URL for the provider (`github:baseUrl`), with its trailing slash. */
  url: string;
  /** The REST root the provider derives from `url`: `${url}api/v3/`. */
  apiUrl: string;
  repoId: number;
  /** Every request so far, in order. */
  requests: RecordedRequest[];
  /** The decrypted secrets of an environment: name -> plaintext. */
  secrets(environment: string): Map<string, string>;
  /** The public key served for an environment (base64 of the raw 32 bytes) and its id. */
  publicKey(environment: string): { keyId: string; key: string };
  close(): Promise<void>;
}

interface StoredSecret {
  value: string;
  createdAt: string;
  updatedAt: string;
}

interface Environment {
  name: string;
  id: number;
  keyId: string;
  publicKey: Uint8Array;
  privateKey: Uint8Array;
  secrets: Map<string, StoredSecret>;
  createdAt: string;
}

class HttpError extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
  }
}

/** GitHub's timestamps: RFC 3339 in UTC, whole seconds. */
const timestamp = (): string => new Date().toISOString().replace(/\.\d+Z$/, "Z");

export async function startGithubApi(opts: GithubApiOptions): Promise<GithubApi> {
  await sodium.ready;
  const repoId = opts.repoId ?? randomInt(100_000, 999_999_999);
  const environments = new Map<string, Environment>();
  const addEnvironment = (name: string): Environment => {
    const keys = sodium.crypto_box_keypair();
    const env: Environment = {
      name,
      id: randomInt(1, 2 ** 31),
      keyId: String(randomInt(1, 2 ** 47)),
      publicKey: keys.publicKey,
      privateKey: keys.privateKey,
      secrets: new Map(),
      createdAt: timestamp(),
    };
    environments.set(name, env);
    return env;
  };
  for (const name of opts.environments) addEnvironment(name);

  const requests: RecordedRequest[] = [];
  const repoJson = () => ({
    id: repoId,
    node_id: `R_${repoId}`,
    name: opts.repo,
    full_name: `${opts.owner}/${opts.repo}`,
    private: true,
    owner: { login: opts.owner, id: 1, type: opts.ownerIsOrganization ? "Organization" : "User" },
    default_branch: "main",
    visibility: "private",
  });
  const environmentJson = (e: Environment) => ({
    id: e.id,
    node_id: `EN_${e.id}`,
    name: e.name,
    url: `/repos/${opts.owner}/${opts.repo}/environments/${encodeURIComponent(e.name)}`,
    created_at: e.createdAt,
    updated_at: e.createdAt,
    protection_rules: [],
    deployment_branch_policy: null,
  });
  const secretJson = (name: string, s: StoredSecret) => ({ name, created_at: s.createdAt, updated_at: s.updatedAt });

  const environment = (name: string): Environment => {
    const e = environments.get(name);
    if (!e) throw new HttpError(404, `no environment ${JSON.stringify(name)}`);
    return e;
  };
  const repoMatches = (owner: string, repo: string) => owner === opts.owner && repo === opts.repo;

  /** The environment-scoped routes, after `/repositories/{id}` or `/repos/{owner}/{repo}`. */
  const environmentRoute = async (method: string, rest: string[], req: IncomingMessage): Promise<[number, unknown]> => {
    // rest: ["environments", env, ...]
    if (rest.length === 1 && method === "GET") {
      const list = [...environments.values()].map(environmentJson);
      return [200, { total_count: list.length, environments: list }];
    }
    const name = decodeURIComponent(rest[1]);
    if (rest.length === 2) {
      if (method === "GET") return [200, environmentJson(environment(name))];
      if (method === "PUT") return [200, environmentJson(environments.get(name) ?? addEnvironment(name))];
      if (method === "DELETE") {
        environment(name);
        environments.delete(name);
        return [204, undefined];
      }
    }
    if (rest[2] !== "secrets") throw new HttpError(404, "not served by this stand-in");
    const env = environment(name);
    if (rest.length === 3 && method === "GET") {
      const list = [...env.secrets].map(([n, s]) => secretJson(n, s));
      return [200, { total_count: list.length, secrets: list }];
    }
    if (rest.length === 4 && rest[3] === "public-key" && method === "GET") {
      return [200, { key_id: env.keyId, key: Buffer.from(env.publicKey).toString("base64") }];
    }
    if (rest.length !== 4) throw new HttpError(404, "not served by this stand-in");
    const secretName = decodeURIComponent(rest[3]);
    const stored = env.secrets.get(secretName);
    switch (method) {
      case "GET":
        if (!stored) throw new HttpError(404, `no secret ${secretName} in ${name}`);
        return [200, secretJson(secretName, stored)];
      case "DELETE":
        if (!stored) throw new HttpError(404, `no secret ${secretName} in ${name}`);
        env.secrets.delete(secretName);
        return [204, undefined];
      case "PUT": {
        const body = await readJson(req);
        if (body.key_id !== env.keyId) {
          throw new HttpError(422, `key_id ${JSON.stringify(body.key_id)} is not the public key of ${name} (${env.keyId})`);
        }
        const value = openSealedBox(body.encrypted_value, env);
        const now = timestamp();
        env.secrets.set(secretName, { value, createdAt: stored?.createdAt ?? now, updatedAt: now });
        return [stored ? 204 : 201, stored ? undefined : {}];
      }
      default:
        throw new HttpError(405, `${method} is not served here`);
    }
  };

  const route = async (method: string, segments: string[], req: IncomingMessage): Promise<[number, unknown]> => {
    const [head, ...rest] = segments;
    if (head === "user" && rest.length === 0 && method === "GET") {
      return [200, { login: opts.owner, id: 1, type: "User" }];
    }
    if (head === "users" && rest.length === 1 && method === "GET" && rest[0] === opts.owner) {
      return [200, { login: opts.owner, id: 1, type: opts.ownerIsOrganization ? "Organization" : "User" }];
    }
    if (head === "orgs" && rest.length === 1 && method === "GET") {
      // The provider asks whether the owner is an organization and ignores a 404 (config.go, ConfigureOwner).
      if (opts.ownerIsOrganization && rest[0] === opts.owner) return [200, { login: opts.owner, id: 1 }];
      throw new HttpError(404, "Not Found");
    }
    if (head === "rate_limit" && rest.length === 0 && method === "GET") {
      const core = { limit: 5000, remaining: 5000, reset: Math.floor(Date.now() / 1000) + 3600, used: 0 };
      return [200, { resources: { core }, rate: core }];
    }
    if (head === "repos" && rest.length >= 2) {
      if (!repoMatches(rest[0], rest[1])) throw new HttpError(404, "Not Found");
      if (rest.length === 2 && method === "GET") return [200, repoJson()];
      if (rest[2] === "environments") return environmentRoute(method, rest.slice(2), req);
    }
    if (head === "repositories" && rest.length >= 1) {
      if (rest[0] !== String(repoId)) throw new HttpError(404, "Not Found");
      if (rest.length === 1 && method === "GET") return [200, repoJson()];
      if (rest[1] === "environments") return environmentRoute(method, rest.slice(1), req);
    }
    throw new HttpError(404, "not served by this stand-in");
  };

  const authorized = (req: IncomingMessage): boolean => {
    if (opts.token === undefined) return true;
    const auth = req.headers.authorization ?? "";
    return auth === `Bearer ${opts.token}` || auth === `token ${opts.token}`;
  };

  const server = createServer((req, res) => {
    const method = req.method ?? "GET";
    const pathname = new URL(req.url ?? "/", "http://127.0.0.1").pathname;
    const segments = pathname.split("/").filter((s) => s !== "");
    const withoutPrefix = segments[0] === "api" && segments[1] === "v3" ? segments.slice(2) : segments;
    const reply = (status: number, body: unknown) => {
      requests.push({ method, path: pathname, status });
      send(res, status, body);
    };
    if (!authorized(req)) {
      req.resume();
      reply(401, { message: "Bad credentials" });
      return;
    }
    route(method, withoutPrefix, req).then(
      ([status, body]) => reply(status, body),
      (e: unknown) => {
        if (e instanceof HttpError) reply(e.status, { message: e.message });
        else reply(500, { message: e instanceof Error ? e.message : String(e) });
      },
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  const url = `http://127.0.0.1:${port}/`;

  return {
    url,
    apiUrl: `${url}api/v3/`,
    repoId,
    requests,
    secrets: (name) => new Map([...environment(name).secrets].map(([n, s]) => [n, s.value])),
    publicKey: (name) => {
      const e = environment(name);
      return { keyId: e.keyId, key: Buffer.from(e.publicKey).toString("base64") };
    },
    close: () => new Promise<void>((resolve, reject) => {
      server.closeAllConnections();
      server.close((err) => (err ? reject(err) : resolve()));
    }),
  };
}

/** Opens a base64 libsodium sealed box (crypto_box_seal, Go's box.SealAnonymous) for `env`. */
function openSealedBox(encrypted: unknown, env: Environment): string {
  if (typeof encrypted !== "string" || encrypted === "") throw new HttpError(422, "encrypted_value is missing");
  const bytes = Buffer.from(encrypted, "base64");
  if (bytes.toString("base64") !== encrypted) throw new HttpError(422, "encrypted_value is not standard base64");
  try {
    return Buffer.from(sodium.crypto_box_seal_open(bytes, env.publicKey, env.privateKey)).toString("utf8");
  } catch {
    throw new HttpError(422, `encrypted_value is not a sealed box for the public key of ${env.name}`);
  }
}

async function readJson(req: IncomingMessage): Promise<Record<string, unknown>> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  let body: unknown;
  try {
    body = JSON.parse(Buffer.concat(chunks).toString("utf8"));
  } catch (e) {
    throw new HttpError(400, `Problems parsing JSON: ${(e as Error).message}`);
  }
  if (typeof body !== "object" || body === null) throw new HttpError(400, "Problems parsing JSON: not an object");
  return body as Record<string, unknown>;
}

function send(res: ServerResponse, status: number, body: unknown): void {
  const text = body === undefined ? "" : JSON.stringify(body);
  res.writeHead(status, {
    "Content-Type": "application/json; charset=utf-8",
    "Content-Length": Buffer.byteLength(text),
    "X-RateLimit-Limit": "5000",
    "X-RateLimit-Remaining": "4999",
    "X-RateLimit-Reset": String(Math.floor(Date.now() / 1000) + 3600),
  });
  res.end(text);
}

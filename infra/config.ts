// Stack config (DESIGN.md "Stack config"): parsed once, every error at once, each naming the key,
// what was wrong and the command that fixes it. parseConfig is pure; readConfig reads the stack.
import * as pulumi from "@pulumi/pulumi";
import * as path from "node:path";

/** One host of the stack: a single VPS (vps:host) or one entry of a fleet (vps:hosts). */
export interface VpsHost {
  /** Address. */
  host: string;
  /** SSH port. Default 22. */
  port: number;
  /** Its public host key, `type base64`; pinned. */
  hostKey: string;
  /** Where the fleet migrates, once per release (the first host unless one says `primary: true`). */
  primary: boolean;
}

/** Connection to the VPS (or the fleet: vps:hosts, sharing user, key and root). */
export interface VpsConfig {
  /** Address of the VPS; of a fleet, its primary's. Required unless vps:hosts is set. */
  host: string;
  /** SSH port. Default 22. */
  port: number;
  /** SSH user that owns the deploy root. Required. */
  user: string;
  /** That user's private key (secret; the caller wraps it with pulumi.secret). Required. */
  privateKey: string;
  /** The VPS's public host key, `type base64`; a host that shows another key is refused. Required. */
  hostKey: string;
  /** Deploy root, an absolute path. Required. */
  root: string;
  /** Every host, the primary marked: one for vps:host, each of vps:hosts in order. */
  hosts: VpsHost[];
  /** Whether vps:hosts is set (the phased fleet release) rather than vps:host. */
  fleet: boolean;
}

/** The app and how it is released. */
export interface AppConfig {
  /** PM2 app name. Default `blue-video-backend`. */
  name: string;
  /** Release tarball, absolute (resolved against the project root). Exclusive with `release`. */
  artifact?: string;
  /** Id of a release already on the VPS to activate (rollback, promotion). Exclusive with `artifact`. */
  release?: string;
  /** Entry file, relative to the release root. Default `dist/server.js`. */
  script: string;
  /** Passed to the app as PORT. Default 3000. */
  port: number;
  /** PM2 cluster instances. Default 2. */
  instances: number;
  /** Health path, checked at http://127.0.0.1:PORT/PATH. Default `/health`. */
  healthPath: string;
  /** Seconds the new release has to become healthy. Default 60. */
  healthTimeout: number;
  /**
   * Seconds the new release, started alone in preflight, must then stay healthy with its process
   * alive before anything live is touched: a release that dies seconds after it answers is refused
   * there. Default 5; 0 disables.
   */
  healthSettle: number;
  /** Releases kept on the VPS (the live one and the one before it are never pruned). Default 5. */
  keepReleases: number;
  /** Run in the new release before the switch; empty disables. Default `npx prisma migrate deploy`. */
  migrate: string;
  /**
   * Backup before migrating: `auto` (default) copies a SQLite database named by a `file:` DATABASE_URL
   * into backups/; empty disables; anything else is a command run in the release with BACKUP_DIR set.
   */
  backup: string;
  /**
   * `npm run restore`: the command that puts BACKUP_FILE (a backup app:backup made) back into the
   * database, run in the live release with the app's environment; empty (default) copies a SQLite
   * backup back itself.
   */
  restore: string;
  /** Seconds a deploy waits for another deploy's VPS lock before it fails. Default 120. */
  lockTimeout: number;
  /** Secret; keys and values become the app's environment and the shared `.env`. Default `{}`. */
  env: Record<string, string>;
  /**
   * Secret: a webhook URL (Slack-compatible incoming webhook, or any endpoint taking a JSON POST)
   * that gets one message per activation, sent from the VPS. Default none.
   */
  notify?: string;
  /**
   * A fleet: how many hosts switch at once, each batch only after the one before it is healthy.
   * Default 0, all at once. Ignored for a single host.
   */
  rollout: number;
  /** Written by `npm run promote` and `npm run rollback`, never by hand: why this release goes live. */
  provenance?: Provenance;
  /**
   * Variable names that get a generated random secret per stack (RandomPassword), stable across
   * releases, merged into the app's environment. Default none.
   */
  generatedSecrets: string[];
}

/** The GitHub Actions environment of this stack (the GithubSecrets component). */
export interface CiConfig {
  /** `owner/name`; unset disables the component. */
  repository?: string;
  /** Extra secrets for the workflows, e.g. PULUMI_BACKEND_URL, PULUMI_CONFIG_PASSPHRASE (secret). */
  secrets: Record<string, string>;
  /** A token that can write environment secrets (secret); else the provider reads GITHUB_TOKEN. */
  githubToken?: string;
  /** GitHub Enterprise (or a stand-in) base URL; default api.github.com. */
  githubApiUrl?: string;
}

/** Where a release came from (app:provenance). It applies only while `releaseId` is the release deployed. */
export interface Provenance {
  kind: "promote" | "rollback";
  releaseId: string;
  /** The stack the release was promoted from. */
  fromStack?: string;
  /** The artifact's sha256 in the source stack. */
  artifactSha256?: string;
  /** ISO time the promotion or rollback was asked for. */
  requestedAt: string;
}

export interface DeployConfig {
  vps: VpsConfig;
  app: AppConfig;
  ci: CiConfig;
}

export const DEFAULTS = {
  port: 22,
  appName: "blue-video-backend",
  script: "dist/server.js",
  appPort: 3000,
  instances: 2,
  healthPath: "/health",
  healthTimeout: 60,
  healthSettle: 5,
  keepReleases: 5,
  migrate: "npx prisma migrate deploy",
  backup: "auto",
  lockTimeout: 120,
  rollout: 0,
} as const;

/** Variables the deploy sets itself; app:env may not override them. */
export const RESERVED_ENV = ["PORT", "NODE_ENV", "RELEASE_ID"] as const;

const HOST_KEY_TYPES = [
  "ssh-ed25519", "ssh-rsa", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521",
  "sk-ssh-ed25519@openssh.com", "sk-ecdsa-sha2-nistp256@openssh.com",
];

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid stack config (${problems.length} problem${problems.length === 1 ? "" : "s"}):\n  ` +
      problems.join("\n  "));
    this.name = "ConfigError";
  }
}

/** Reads one raw config value by its full key (`vps:host`); undefined when unset. */
export type RawConfig = (key: string) => string | undefined;

/** The helpers every namespace's parser shares: each problem goes to `problems`, all reported at once. */
interface Reader {
  raw: RawConfig;
  problems: string[];
  bad: (key: string, what: string, got: string | undefined, fix: string) => void;
  set: (key: string, example: string) => string;
  required: (key: string, example: string, secret?: boolean) => string;
  integer: (key: string, def: number, min: number, max: number) => number;
}

function reader(raw: RawConfig): Reader {
  const problems: string[] = [];
  const set = (key: string, example: string) => `pulumi config set ${key} ${example}`;
  const bad = (key: string, what: string, got: string | undefined, fix: string) => {
    problems.push(`${key}: ${what}${got === undefined ? "" : `, got ${JSON.stringify(truncate(got))}`} (${fix})`);
  };
  const required = (key: string, example: string, secret = false): string => {
    const v = raw(key);
    if (v === undefined || v.trim() === "") {
      problems.push(`${key}: required, not set (${secret ? `pulumi config set --secret ${key} < FILE` : set(key, example)})`);
      return "";
    }
    return v;
  };
  const integer = (key: string, def: number, min: number, max: number): number => {
    const v = raw(key);
    if (v === undefined) return def;
    if (!/^\d+$/.test(v.trim()) || Number(v) < min || Number(v) > max) {
      bad(key, `expected an integer ${min}-${max}`, v, set(key, String(def)));
      return def;
    }
    return Number(v);
  };
  return { raw, problems, bad, set, required, integer };
}

/**
 * Parses and validates the whole stack config. Returns the config, or throws a ConfigError that
 * lists every problem of every namespace. `projectRoot` resolves a relative app:artifact.
 */
export function parseConfig(raw: RawConfig, projectRoot: string): DeployConfig {
  const r = reader(raw);
  const config = { vps: parseVps(r), app: parseApp(r, projectRoot), ci: parseCi(r) };
  if (r.problems.length > 0) throw new ConfigError(r.problems);
  return config;
}

/** vps:* */
function parseVps(r: Reader): VpsConfig {
  const { raw, problems, bad, set, required } = r;
  const hostsRaw = emptyToUndefined(raw("vps:hosts"));
  let hosts: VpsHost[];
  if (hostsRaw !== undefined) {
    for (const key of ["vps:host", "vps:hostKey", "vps:port"]) {
      if (emptyToUndefined(raw(key)) !== undefined) {
        problems.push(`${key} and vps:hosts are both set; they are exclusive (pulumi config rm ${key}: each entry of vps:hosts has its own)`);
      }
    }
    hosts = parseHosts(r, hostsRaw);
  } else {
    const host = required("vps:host", "203.0.113.10");
    if (host) checkHostName(r, "vps:host", host, set("vps:host", "203.0.113.10"));
    const port = r.integer("vps:port", DEFAULTS.port, 1, 65535);
    const hostKey = required("vps:hostKey", "'ssh-ed25519 AAAA...'");
    if (hostKey) checkHostKey(r, "vps:hostKey", hostKey, `ssh-keyscan -t ed25519 HOST, then ${set("vps:hostKey", "'ssh-ed25519 AAAA...'")}`);
    hosts = [{ host, port, hostKey: normalHostKey(hostKey), primary: true }];
  }
  const user = required("vps:user", "deploy");
  if (user && !/^[a-z_][a-z0-9_.-]*\$?$/i.test(user)) {
    bad("vps:user", "expected a Unix user name", user, set("vps:user", "deploy"));
  }
  const privateKey = required("vps:privateKey", "", true);
  if (privateKey && !looksLikePrivateKey(privateKey)) {
    // Never echo the value: it is a secret.
    problems.push("vps:privateKey: expected a PEM or OpenSSH private key file (a BEGIN line, base64, an END line) " +
      "(pulumi config set --secret vps:privateKey < ~/.ssh/id_ed25519)");
  }
  const root = required("vps:root", "/home/deploy/apps/api");
  if (root) {
    const normal = path.posix.normalize(root);
    if (!root.startsWith("/") || root === "/" || root.split("/").includes("..") || /[\s'"\\$`]/.test(root) ||
      normal !== root.replace(/\/+$/, "")) {
      bad("vps:root", "expected an absolute, normalized path other than / without spaces or quotes", root,
        set("vps:root", "/home/deploy/apps/api"));
    }
  }
  const primary = hosts.find((h) => h.primary) ?? hosts[0] ?? { host: "", port: DEFAULTS.port, hostKey: "", primary: true };
  return {
    host: primary.host, port: primary.port, user, privateKey, hostKey: primary.hostKey,
    root: root.replace(/\/+$/, ""), hosts, fleet: hostsRaw !== undefined,
  };
}

const HOSTS_EXAMPLE = `'[{"host":"10.0.0.11","hostKey":"ssh-ed25519 AAAA..."},{"host":"10.0.0.12","port":2222,"hostKey":"ssh-ed25519 AAAA..."}]'`;

/** vps:hosts: a JSON list of {host, port?, hostKey, primary?}; every bad entry named by its index. */
function parseHosts(r: Reader, text: string): VpsHost[] {
  const { problems } = r;
  const fix = `pulumi config set vps:hosts -- ${HOSTS_EXAMPLE}`;
  let list: unknown;
  try {
    list = JSON.parse(text);
  } catch {
    problems.push(`vps:hosts: expected a JSON list of {host, port?, hostKey, primary?} (${fix})`);
    return [];
  }
  if (!Array.isArray(list) || list.length === 0) {
    problems.push(`vps:hosts: expected a non-empty JSON list of {host, port?, hostKey, primary?} (${fix})`);
    return [];
  }
  const hosts: VpsHost[] = [];
  list.forEach((entry: unknown, i) => {
    const key = `vps:hosts[${i}]`;
    const fixEntry = `pulumi config set --path '${key}.host' 10.0.0.11; ssh-keyscan -t ed25519 HOST for '${key}.hostKey'`;
    if (entry === null || typeof entry !== "object" || Array.isArray(entry)) {
      problems.push(`${key}: expected an object {host, port?, hostKey, primary?}, got ${JSON.stringify(truncate(JSON.stringify(entry)))} (${fix})`);
      return;
    }
    const e = entry as Record<string, unknown>;
    for (const k of Object.keys(e)) {
      if (!["host", "port", "hostKey", "primary"].includes(k)) {
        problems.push(`${key}.${k}: unknown field; an entry has host, port, hostKey and primary (pulumi config rm --path '${key}.${k}')`);
      }
    }
    const host = typeof e.host === "string" ? e.host.trim() : "";
    if (!host) problems.push(`${key}.host: required, a host name or IP address (${fixEntry})`);
    else checkHostName(r, `${key}.host`, host, `pulumi config set --path '${key}.host' 10.0.0.11`);
    let port: number = DEFAULTS.port;
    if (e.port !== undefined) {
      const p = typeof e.port === "string" && /^\d+$/.test(e.port) ? Number(e.port) : e.port;
      if (typeof p !== "number" || !Number.isInteger(p) || p < 1 || p > 65535) {
        r.bad(`${key}.port`, "expected an integer 1-65535", String(e.port), `pulumi config set --path '${key}.port' 22`);
      } else {
        port = p;
      }
    }
    const hostKey = typeof e.hostKey === "string" ? e.hostKey : "";
    if (!hostKey.trim()) {
      problems.push(`${key}.hostKey: required: every host's key is pinned (ssh-keyscan -t ed25519 ${host || "HOST"}, then ` +
        `pulumi config set --path '${key}.hostKey' 'ssh-ed25519 AAAA...')`);
    } else {
      checkHostKey(r, `${key}.hostKey`, hostKey, `ssh-keyscan -t ed25519 ${host || "HOST"}, then pulumi config set --path '${key}.hostKey' 'ssh-ed25519 AAAA...'`);
    }
    if (e.primary !== undefined && typeof e.primary !== "boolean") {
      r.bad(`${key}.primary`, "expected true or false", String(e.primary), `pulumi config set --path '${key}.primary' true`);
    }
    hosts.push({ host, port, hostKey: normalHostKey(hostKey), primary: e.primary === true });
  });
  const seen = new Map<string, number>();
  hosts.forEach((h, i) => {
    const at = `${h.host}:${h.port}`;
    if (h.host && seen.has(at)) {
      problems.push(`vps:hosts[${i}]: ${at} is also vps:hosts[${seen.get(at)}]; list each host once (pulumi config rm --path 'vps:hosts[${i}]')`);
    } else {
      seen.set(at, i);
    }
  });
  const primaries = hosts.map((h, i) => (h.primary ? i : -1)).filter((i) => i >= 0);
  if (primaries.length > 1) {
    problems.push(`vps:hosts: ${primaries.map((i) => `[${i}]`).join(", ")} all say primary: true; one host migrates, mark only one ` +
      `(pulumi config rm --path 'vps:hosts[${primaries[1]}].primary')`);
  }
  if (primaries.length === 0 && hosts.length > 0) hosts[0].primary = true;
  return hosts;
}

function checkHostName(r: Reader, key: string, host: string, fix: string): void {
  if (!/^[A-Za-z0-9.:[\]-]+$/.test(host)) r.bad(key, "expected a host name or IP address", host, fix);
}

function checkHostKey(r: Reader, key: string, hostKey: string, fix: string): void {
  const parts = hostKey.trim().split(/\s+/);
  const ok = parts.length >= 2 && HOST_KEY_TYPES.includes(parts[0]) && /^[A-Za-z0-9+/]+={0,2}$/.test(parts[1]) &&
    !hostKey.trim().includes("\n");
  if (!ok) r.bad(key, "expected one public key line like \"ssh-ed25519 AAAA...\"", hostKey, fix);
}

function normalHostKey(hostKey: string): string {
  return hostKey.trim().split(/\s+/).slice(0, 2).join(" ");
}

/** app:* */
function parseApp({ raw, problems, bad, set, integer }: Reader, projectRoot: string): AppConfig {
  const name = raw("app:name") ?? DEFAULTS.appName;
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/.test(name)) {
    bad("app:name", "expected letters, digits, . _ - (at most 64)", name, set("app:name", DEFAULTS.appName));
  }
  const artifactRaw = emptyToUndefined(raw("app:artifact"));
  const release = emptyToUndefined(raw("app:release"));
  if (artifactRaw && release) {
    problems.push("app:artifact and app:release are both set; they are exclusive " +
      "(pulumi config rm app:release to deploy the artifact, or pulumi config rm app:artifact to activate the release)");
  } else if (!artifactRaw && !release) {
    problems.push("app:artifact or app:release: one is required (npm run package, which builds the backend folder of package.json vpsRelease.backend, then " +
      "pulumi config set app:artifact PATH; or pulumi config set app:release ID)");
  }
  if (release && !/^[0-9a-f]{12}$/.test(release)) {
    bad("app:release", "expected a release id, 12 lowercase hex digits", release, set("app:release", "0123456789ab"));
  }
  const script = raw("app:script") ?? DEFAULTS.script;
  if (script.startsWith("/") || script.split("/").includes("..") || script.trim() === "" || /[\s'"\\$`]/.test(script)) {
    bad("app:script", "expected a relative path inside the release, without spaces or quotes", script,
      set("app:script", DEFAULTS.script));
  }
  const appPort = integer("app:port", DEFAULTS.appPort, 1, 65535);
  const instances = integer("app:instances", DEFAULTS.instances, 1, 64);
  const healthPath = raw("app:healthPath") ?? DEFAULTS.healthPath;
  if (!/^\/[A-Za-z0-9._~!$&'()*+,;=:@%/?-]*$/.test(healthPath)) {
    bad("app:healthPath", "expected a URL path starting with /", healthPath, set("app:healthPath", DEFAULTS.healthPath));
  }
  const healthTimeout = integer("app:healthTimeout", DEFAULTS.healthTimeout, 1, 3600);
  const healthSettle = integer("app:healthSettle", DEFAULTS.healthSettle, 0, 600);
  const keepReleases = integer("app:keepReleases", DEFAULTS.keepReleases, 2, 100);
  const lockTimeout = integer("app:lockTimeout", DEFAULTS.lockTimeout, 0, 3600);
  const rollout = integer("app:rollout", DEFAULTS.rollout, 0, 1000);
  const notify = emptyToUndefined(raw("app:notify"));
  if (notify !== undefined && !/^https?:\/\/[^\s]+$/.test(notify)) {
    // Never echo the value: the URL is a secret.
    problems.push("app:notify: expected an http(s) URL (the value is not shown; pulumi config set --secret app:notify https://hooks.slack.com/services/...)");
  }
  const migrate = raw("app:migrate") ?? DEFAULTS.migrate;
  const backup = raw("app:backup") ?? DEFAULTS.backup;
  const restore = raw("app:restore") ?? "";
  for (const [key, v] of [["app:migrate", migrate], ["app:backup", backup], ["app:restore", restore]] as const) {
    if (v.includes("\n")) bad(key, "expected one line", v, set(key, `'${key === "app:migrate" ? DEFAULTS.migrate : "auto"}'`));
  }

  const env = parseStringMap("app:env", raw("app:env"), problems, { nameProblem: envNameProblem, coerce: true });
  const provenance = parseProvenance(raw("app:provenance"), problems);
  const generatedSecrets = parseNames("app:generatedSecrets", raw("app:generatedSecrets"), problems,
    "pulumi config set app:generatedSecrets '[\"JWT_SECRET\"]'");
  for (const n of generatedSecrets) {
    if (n in env) problems.push(`app:generatedSecrets: ${n} is also set in app:env; keep one (pulumi config rm --path 'app:env.${n}')`);
    if ((RESERVED_ENV as readonly string[]).includes(n)) problems.push(`app:generatedSecrets: ${n} is reserved, the deploy sets it`);
  }
  return {
    name,
    artifact: artifactRaw === undefined ? undefined : path.resolve(projectRoot, artifactRaw),
    release,
    script,
    port: appPort,
    instances,
    healthPath,
    healthTimeout,
    healthSettle,
    keepReleases,
    migrate,
    backup,
    restore,
    lockTimeout,
    env,
    notify,
    rollout,
    provenance,
    generatedSecrets,
  };
}

/** ci:* */
function parseCi({ raw, problems, bad, set }: Reader): CiConfig {
  const repository = emptyToUndefined(raw("ci:repository"));
  if (repository && !/^[A-Za-z0-9-]+\/[A-Za-z0-9_.-]+$/.test(repository)) {
    bad("ci:repository", "expected owner/name of a GitHub repository", repository, set("ci:repository", "acme/api"));
  }
  const ciSecrets = parseStringMap("ci:secrets", raw("ci:secrets"), problems, { nameProblem: githubSecretNameProblem });
  const githubApiUrl = emptyToUndefined(raw("ci:githubApiUrl"));
  if (githubApiUrl && !/^https?:\/\/[^\s]+$/.test(githubApiUrl)) {
    bad("ci:githubApiUrl", "expected an http(s) URL", githubApiUrl, set("ci:githubApiUrl", "https://github.example.com/"));
  }

  return { repository, secrets: ciSecrets, githubToken: emptyToUndefined(raw("ci:githubToken")), githubApiUrl };
}

/** A JSON list of variable names (or one comma-separated line). */
function parseNames(key: string, rawValue: string | undefined, problems: string[], fix: string): string[] {
  if (rawValue === undefined || rawValue.trim() === "") return [];
  let list: unknown;
  try {
    list = rawValue.trim().startsWith("[") ? JSON.parse(rawValue) : rawValue.split(",").map((x) => x.trim());
  } catch {
    problems.push(`${key}: expected a JSON list of variable names (${fix})`);
    return [];
  }
  if (!Array.isArray(list)) {
    problems.push(`${key}: expected a JSON list of variable names (${fix})`);
    return [];
  }
  const names: string[] = [];
  for (const n of list) {
    if (typeof n !== "string" || !VARIABLE_NAME.test(n)) {
      problems.push(`${key}: ${JSON.stringify(truncate(String(n)))} is not a valid variable name (${fix})`);
    } else if (!names.includes(n)) {
      names.push(n);
    }
  }
  return names;
}

function parseProvenance(rawValue: string | undefined, problems: string[]): Provenance | undefined {
  if (rawValue === undefined || rawValue.trim() === "") return undefined;
  const fix = "it is written by npm run promote and npm run rollback; pulumi config rm app:provenance";
  let p: Partial<Record<keyof Provenance, unknown>>;
  try {
    p = JSON.parse(rawValue) as typeof p;
  } catch {
    problems.push(`app:provenance: expected a JSON object (${fix})`);
    return undefined;
  }
  const str = (v: unknown, re: RegExp) => typeof v === "string" && re.test(v);
  const ok = p !== null && typeof p === "object" && (p.kind === "promote" || p.kind === "rollback") &&
    str(p.releaseId, /^[0-9a-f]{12}$/) && str(p.requestedAt, /^\d{4}-\d\d-\d\dT[\d:.]+Z$/) &&
    (p.fromStack === undefined || str(p.fromStack, /^[A-Za-z0-9_.\/-]{1,200}$/)) &&
    (p.artifactSha256 === undefined || str(p.artifactSha256, /^[0-9a-f]{64}$/));
  if (!ok) {
    problems.push(`app:provenance: expected {kind: promote|rollback, releaseId, requestedAt, fromStack?, artifactSha256?}, ` +
      `got ${JSON.stringify(truncate(rawValue))} (${fix})`);
    return undefined;
  }
  return p as Provenance;
}

/**
 * A secret object of NAME: string value (app:env, ci:secrets). `nameProblem` says why a name is
 * refused; values are never echoed.
 */
function parseStringMap(key: string, rawValue: string | undefined, problems: string[], opts: {
  nameProblem: (name: string) => string | undefined;
  /** Numbers and booleans are taken as their text (app:env). */
  coerce?: boolean;
}): Record<string, string> {
  const fix = (name: string) => `pulumi config set --secret --path '${key}.${name}' VALUE`;
  if (rawValue === undefined || rawValue.trim() === "") return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(rawValue);
  } catch {
    parsed = undefined;
  }
  if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed)) {
    problems.push(`${key}: expected an object of NAME: value (${fix("NAME")})`);
    return {};
  }
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(parsed as Record<string, unknown>)) {
    const why = opts.nameProblem(k);
    if (why) problems.push(`${key}: ${why} (pulumi config rm --path '${key}.${k}')`);
    else if (typeof v === "string") out[k] = v;
    else if (opts.coerce && (typeof v === "number" || typeof v === "boolean")) out[k] = String(v);
    else problems.push(`${key}.${k}: expected a string value (values are never shown) (${fix(k)})`);
  }
  return out;
}

const VARIABLE_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

function envNameProblem(k: string): string | undefined {
  if (!VARIABLE_NAME.test(k)) return `${JSON.stringify(truncate(k))} is not a valid variable name (letters, digits, _; not starting with a digit)`;
  if ((RESERVED_ENV as readonly string[]).includes(k)) return `${k} is reserved, ${k === "PORT" ? "set app:port instead" : "the deploy sets it"}`;
  return undefined;
}

function githubSecretNameProblem(k: string): string | undefined {
  return VARIABLE_NAME.test(k) && !/^GITHUB_/i.test(k) ? undefined
    : `${JSON.stringify(truncate(k))} is not a valid GitHub secret name (letters, digits, _; not GITHUB_*)`;
}

/** A PEM or OpenSSH private key: BEGIN and END armor lines around a body. */
function looksLikePrivateKey(text: string): boolean {
  const lines = text.trim().split(/\r?\n/);
  const armor = (word: "BEGIN" | "END", line: string | undefined) =>
    line !== undefined && new RegExp(`^-{5}${word} ([A-Z0-9]+ )?PRIVATE KEY-{5}$`).test(line);
  return lines.length >= 3 && armor("BEGIN", lines[0]) && armor("END", lines[lines.length - 1]);
}

function emptyToUndefined(v: string | undefined): string | undefined {
  return v === undefined || v.trim() === "" ? undefined : v.trim();
}

function truncate(s: string): string {
  return s.length > 80 ? `${s.slice(0, 77)}...` : s;
}

/**
 * Reads and validates the stack's config. Values are read raw (runtime.getConfig does not warn on
 * secrets) so that every key is checked before any resource exists; the caller wraps the secret
 * ones (vps:privateKey, app:env) with pulumi.secret.
 */
export function readStackConfig(projectRoot: string): DeployConfig {
  try {
    return parseConfig((key) => pulumi.runtime.getConfig(key), projectRoot);
  } catch (e) {
    // RunError: the message is shown as is, without a stack trace.
    if (e instanceof ConfigError) throw new pulumi.RunError(e.message);
    throw e;
  }
}

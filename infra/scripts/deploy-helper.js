// @ts-check
// The deploy helper: the Node side of the release on the VPS, shipped as shared/bin/deploy-helper.js
// (components/pm2Ecosystem.ts) and called by the release script (release.lib.sh). It is also a
// library: the ecosystem file takes the app's environment from it, and the TypeScript side takes
// the health rule and the revisions.log reader from it, so each exists once.
//   node deploy-helper.js ECOSYSTEM exec RELEASE_DIR [PORT] -- CMD...   CMD in RELEASE_DIR with the app's env
//   node deploy-helper.js ECOSYSTEM health URL RELEASE_ID SECONDS [PID [SETTLE]]  poll URL until healthy (isHealthy)
//   node deploy-helper.js ECOSYSTEM free-port                            a free TCP port on 127.0.0.1
//   node deploy-helper.js ECOSYSTEM sqlite-backup DIR PREFIX             copy a file: DATABASE_URL into DIR
//   node deploy-helper.js ECOSYSTEM record FILE ID PREV RESULT SOURCE    append an activation to revisions.log
//   node deploy-helper.js ECOSYSTEM previous-of FILE ID                  the release that ID last replaced
//   node deploy-helper.js ECOSYSTEM carry-env SRC DEST                    a dotenv file into the shared .env's format
//   node deploy-helper.js ECOSYSTEM pm2-app NAME < pm2-jlist.json          `MODE CWD` of a PM2 app, or `none`
//   node deploy-helper.js ECOSYSTEM notify URL_FILE LOG_FILE STACK HOST ID PREV SOURCE RESULT STEPS_JSON   the activation's message to app:notify
//   node deploy-helper.js ECOSYSTEM sqlite-restore FILE                  a sqlite-backup copy back as the database
//   node deploy-helper.js ECOSYSTEM pm2-reload PM2_BIN APP               pm2 startOrReload ECOSYSTEM --only APP --update-env
//   node deploy-helper.js ECOSYSTEM tree-digest DIR                      the digest of the tree under DIR (treeDigest)
// ECOSYSTEM is shared/ecosystem.config.js: its `settings` say where the shared .env is.
"use strict";
const fs = require("fs");
const path = require("path");

/**
 * @typedef {{ sharedEnv: string, takeoverEnv?: string, defaultDatabaseUrl: string, port: number }} Settings
 * @typedef {{ time: string, releaseId: string, previousReleaseId: string, result: string, source: string }} Revision
 */

/**
 * The shared .env holds NAME="json string" lines, so any value (quotes, $( ), backticks, newlines)
 * comes back exactly as configured.
 * @param {string} file
 * @returns {Record<string, string>}
 */
function readEnvFile(file) {
  let text = "";
  try {
    text = fs.readFileSync(file, "utf8");
  } catch (e) {
    if (/** @type {NodeJS.ErrnoException} */ (e).code !== "ENOENT") throw e;
  }
  /** @type {Record<string, string>} */
  const env = {};
  for (const line of text.split("\n")) {
    const m = /^([A-Za-z_][A-Za-z0-9_]*)=(".*")$/.exec(line);
    if (m) env[m[1]] = JSON.parse(m[2]);
  }
  return env;
}

/** @param {string} dir */
function releaseIdOf(dir) {
  try {
    return fs.readFileSync(path.join(dir, "REVISION"), "utf8").trim();
  } catch {
    return "";
  }
}

/**
 * The environment of the app's processes: what a takeover carried over from a root deployed the
 * old way, then the shared .env (app:env wins), then PORT, NODE_ENV and RELEASE_ID.
 * @param {Settings} s
 * @param {string} releaseDir
 * @param {number} [port]
 * @returns {Record<string, string>}
 */
function appEnv(s, releaseDir, port) {
  const carried = s.takeoverEnv ? readEnvFile(s.takeoverEnv) : {};
  return Object.assign({ DATABASE_URL: s.defaultDatabaseUrl }, carried, readEnvFile(s.sharedEnv), {
    PORT: String(port || s.port),
    NODE_ENV: "production",
    RELEASE_ID: releaseIdOf(releaseDir),
  });
}

/**
 * PM2's process list from the output of `pm2 jlist`: the one line that is a JSON array. PM2 can
 * print other lines before or after it on stdout ("[PM2] Spawning PM2 daemon" when no daemon ran;
 * ">>>> In-memory PM2 is out-of-date, do: $ pm2 update" when the CLI and the daemon differ in
 * version, printed asynchronously, so on either side). Empty output reads as no process; output
 * with no list throws. Self-contained: npm run status runs its source on the VPS (ops/status.ts).
 * @param {string} text
 * @returns {any[]}
 */
function parsePm2List(text) {
  if (text.trim() === "") return [];
  for (const line of text.split("\n")) {
    if (!line.trimStart().startsWith("[")) continue;
    try {
      const list = JSON.parse(line);
      if (Array.isArray(list)) return list;
    } catch {
      // a line like "[PM2] Spawning PM2 daemon": not the list
    }
  }
  throw new Error("pm2 jlist printed no process list: " + JSON.stringify(text.slice(0, 300)));
}

/**
 * The health rule, the one every check uses (preflight, the live check, promote, the smoke check,
 * the demo): status 200, and when the body is JSON with a `release` field, it names `want`.
 * @param {number} status
 * @param {string} body
 * @param {string} want the release id the answer must name; "" accepts any
 */
function isHealthy(status, body, want) {
  if (status !== 200) return false;
  /** @type {unknown} */
  let release;
  try {
    const parsed = JSON.parse(body);
    release = parsed !== null && typeof parsed === "object" ? parsed.release : undefined;
  } catch {
    release = undefined; // a 200 that is not JSON: the health path need not answer JSON
  }
  return release === undefined || release === null || !want || release === want;
}

/**
 * revisions.log: one JSON object a line (Revision). Lines of the tab-separated format that earlier
 * versions wrote (time, id, previous id or -, result, source) are read too.
 * @param {string} text
 * @returns {Revision[]}
 */
function parseRevisions(text) {
  /** @type {Revision[]} */
  const out = [];
  for (const line of text.split("\n")) {
    if (line.trim() === "") continue;
    if (line.startsWith("{")) {
      try {
        const r = JSON.parse(line);
        if (typeof r.releaseId === "string") {
          out.push({ time: String(r.time ?? ""), releaseId: r.releaseId, previousReleaseId: String(r.previousReleaseId ?? ""),
            result: String(r.result ?? ""), source: String(r.source ?? "") });
        }
      } catch {
        // a line cut by a full disk: skip it
      }
      continue;
    }
    const [time, releaseId, prev, result, source] = line.split("\t");
    if (releaseId) out.push({ time, releaseId, previousReleaseId: prev === "-" ? "" : (prev ?? ""), result: result ?? "", source: source ?? "" });
  }
  return out;
}

/** @param {Revision} r */
function formatRevision(r) {
  return JSON.stringify({ time: r.time, releaseId: r.releaseId, previousReleaseId: r.previousReleaseId, result: r.result, source: r.source });
}

/**
 * The release that `id` replaced when it last went live (for a re-activation of the live release,
 * whose previous stays the previous); "" when none is recorded.
 * @param {Revision[]} revisions
 * @param {string} id
 */
function previousOf(revisions, id) {
  let prev = "";
  for (const r of revisions) {
    if (r.releaseId === id && r.result === "ok" && r.previousReleaseId !== id) prev = r.previousReleaseId;
  }
  return prev;
}

/**
 * Whether process `pid` runs. A process that exited but was not reaped yet (a zombie: the release
 * script reaps its background preflight run only when it waits for it) counts as exited; signal 0
 * alone would call it alive.
 * @param {number} pid
 */
function processAlive(pid) {
  if (fs.existsSync("/proc/self")) {
    try {
      const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
      return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) !== "Z";
    } catch {
      return false; // no such process
    }
  }
  try {
    process.kill(pid, 0); // no /proc (not Linux): a zombie cannot be told from a live process
    return true;
  } catch {
    return false;
  }
}

/**
 * Polls `url` until isHealthy, or `seconds` pass, or process `pid` (when given) has exited.
 * With `settle` seconds, it then goes on polling: the answer must stay healthy, and the process
 * alive, that long (a release that dies seconds after it answers is refused). Resolves with the
 * lines to print: `healthy after 0.5s: URL BODY` (and `settled: ...`), or `health: URL: why;
 * waited Ns; last: ...` (then ok is false). `intervalMs` between attempts.
 * @param {{ url: string, want: string, seconds: number, pid?: number, settle?: number, intervalMs?: number }} o
 * @returns {Promise<{ ok: boolean, line: string }>}
 */
function pollHealth(o) {
  const http = require("http");
  const started = Date.now();
  const deadline = started + o.seconds * 1000;
  const waited = () => ((Date.now() - started) / 1000).toFixed(1) + "s";
  let last = "no answer yet";
  /** @type {{ line: string, until: number, graced?: boolean } | undefined} set once healthy, while settling */
  let settling;
  const alive = () => (o.pid ? processAlive(o.pid) : true);
  return new Promise((resolve) => {
    /** @param {string} why */
    const fail = (why) => resolve({ ok: false, line: `health: ${o.url}: ${why}; waited ${waited()}; last: ${last}` });
    const retry = () => {
      if (settling) {
        if (!alive()) return fail(`the process exited ${settledFor()} after it answered healthy, within the ${o.settle}s settle window (app:healthSettle)`);
        if (last !== "healthy") {
          // A process on its way out resets connections before it is gone: look again shortly, so
          // that a release that dies is reported as the exit it is, not as a failed request.
          if (!settling.graced) {
            settling.graced = true;
            return setTimeout(retry, 500);
          }
          return fail(`unhealthy ${settledFor()} after it answered healthy, within the ${o.settle}s settle window (app:healthSettle)`);
        }
        if (Date.now() >= settling.until) return resolve({ ok: true, line: `${settling.line}\nsettled: healthy and alive for ${o.settle}s` });
        return setTimeout(attempt, 250);
      }
      if (!alive()) return fail("the process exited before it became healthy");
      if (Date.now() >= deadline) return fail(`not healthy after ${o.seconds}s`);
      setTimeout(attempt, o.intervalMs ?? 100);
    };
    const settledFor = () => (settling ? ((Date.now() - (settling.until - (o.settle ?? 0) * 1000)) / 1000).toFixed(1) + "s" : "");
    const attempt = () => {
      const req = http.get(o.url, { timeout: 2000, headers: { connection: "close" } }, (res) => {
        let body = "";
        res.setEncoding("utf8");
        res.on("data", (d) => {
          if (body.length < 4096) body += d;
        });
        res.on("end", () => {
          const status = res.statusCode ?? 0;
          if (isHealthy(status, body, o.want)) {
            last = "healthy";
            if (settling) return retry();
            const line = `healthy after ${waited()}: ${o.url} ${body.slice(0, 300)}`;
            if (!o.settle) return resolve({ ok: true, line });
            settling = { line, until: Date.now() + o.settle * 1000 };
            return retry();
          }
          last = `status ${status}, body ${JSON.stringify(body.slice(0, 200))}` + (o.want ? ` (want release ${JSON.stringify(o.want)})` : "");
          retry();
        });
      });
      req.on("timeout", () => req.destroy(new Error("timed out after 2s")));
      req.on("error", (e) => {
        last = e.message;
        retry();
      });
    };
    attempt();
  });
}

/**
 * A .env of the usual dotenv kind (`KEY=value`, `export KEY=value`, single or double quotes, `#`
 * comments), as the hand-written deploys this project replaces keep in current/.env.
 * @param {string} text
 * @returns {Record<string, string>}
 */
function parseDotenv(text) {
  /** @type {Record<string, string>} */
  const env = {};
  for (const raw of text.split(/\r?\n/)) {
    const m = /^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)$/.exec(raw);
    if (!m) continue;
    let v = m[2].trim();
    const q = v[0];
    if ((q === '"' || q === "'") && v.length >= 2 && v.endsWith(q)) {
      v = v.slice(1, -1);
      if (q === '"') v = v.replace(/\\n/g, "\n").replace(/\\"/g, '"');
    } else {
      v = v.replace(/\s+#.*$/, "");
    }
    env[m[1]] = v;
  }
  return env;
}

/** The shared .env's format (NAME="json string" lines), the one readEnvFile reads. @param {Record<string, string>} env */
function formatEnvFile(env) {
  return Object.keys(env).sort().map((k) => `${k}=${JSON.stringify(env[k])}\n`).join("");
}

/**
 * The message of one activation for app:notify: Slack's incoming-webhook `text`, and every field
 * as JSON for any other receiver. Never a secret: ids, names, times, the failed step's log tail.
 * @param {{ stack: string, host: string, releaseId: string, previousReleaseId: string, source: string,
 *   result: string, steps: { name: string, seconds: number }[] }} f
 * @param {string} logTail
 */
function notification(f, logTail) {
  const ok = f.result === "ok";
  const failedStep = ok ? "" : f.result.replace(/^failed:/, "");
  const seconds = Math.round(f.steps.reduce((sum, s) => sum + s.seconds, 0) * 100) / 100;
  const where = `${f.stack}${f.host ? ` on ${f.host}` : ""}`;
  const text = ok
    ? `${where}: release ${f.releaseId} is live (previous ${f.previousReleaseId || "none"}; ${f.source}; ${seconds} s)`
    : `${where}: release ${f.releaseId} failed at step ${failedStep}; ${f.previousReleaseId || "no release"} keeps serving (${f.source})` +
      (logTail ? `\n\`\`\`\n${logTail}\n\`\`\`` : "");
  return { text, ...f, failedStep, seconds, ...(ok ? {} : { logTail }) };
}

/**
 * POSTs `body` as JSON to `url` within 10 s; resolves to what happened, never rejects: a failing
 * webhook never fails a deploy.
 * @param {string} url
 * @param {unknown} body
 */
async function sendNotification(url, body) {
  try {
    const r = await fetch(url, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body), signal: AbortSignal.timeout(10000) });
    return r.ok ? `notify: sent (HTTP ${r.status})` : `warning: notify: the webhook answered HTTP ${r.status}; the deploy is not affected`;
  } catch (e) {
    return `warning: notify: could not reach the webhook (${/** @type {Error} */ (e).message}); the deploy is not affected`;
  }
}

// --- tree digests -------------------------------------------------------------------------
// A release's dependencies (its node_modules) are named by one digest over the tree's records, so
// the client can compute it from the artifact's tar entries (infra/layers.ts) and the VPS from the
// folder a release holds (tree-digest), and a new release reuses a kept release's node_modules
// only when both agree. One record per entry, its path relative to the release root:
//   folder  d NUL path NUL
//   file    f NUL path NUL x|- NUL sha256 NUL      (x: the owner may execute it)
//   symlink l NUL path NUL target NUL
//   other   ? NUL path NUL                          (never in an artifact: it makes the digests differ)
// The digest is the sha256 of the records sorted bytewise by path. node_modules/.cache is not part
// of the tree: tools write their caches there while a release runs (jiti compiling Prisma's
// prisma.config.ts, babel-loader, ...), so the VPS leaves it out, and an artifact that brings one is
// sent whole (infra/layers.ts).

/**
 * @typedef {{ path: string, text: Buffer }} TreeRecord
 * @param {"d" | "f" | "l" | "?"} kind
 * @param {string} relPath
 * @param {string[]} [detail] f: [x|-, sha256]; l: [target]
 * @returns {TreeRecord}
 */
function treeRecord(kind, relPath, detail = []) {
  return { path: relPath, text: Buffer.from([kind, relPath, ...detail, ""].join("\0")) };
}

/** @param {TreeRecord[]} records @returns {string} */
function treeDigest(records) {
  const hash = require("crypto").createHash("sha256");
  const sorted = [...records].sort((a, b) => Buffer.compare(Buffer.from(a.path), Buffer.from(b.path)));
  for (const r of sorted) hash.update(r.text);
  return hash.digest("hex");
}

/** The read buffer of fileSha256, one for the process (a tree holds thousands of small files). */
const READ_CHUNK = Buffer.allocUnsafe(1 << 20);

/** @param {string} file @returns {string} */
function fileSha256(file) {
  const hash = require("crypto").createHash("sha256");
  const fd = fs.openSync(file, "r");
  const chunk = READ_CHUNK;
  try {
    for (let n = fs.readSync(fd, chunk); n > 0; n = fs.readSync(fd, chunk)) hash.update(chunk.subarray(0, n));
  } finally {
    fs.closeSync(fd);
  }
  return hash.digest("hex");
}

/** The folder under a tree's root that holds caches written at run time, never digested. */
const TREE_CACHE = ".cache";

/**
 * The records of ROOT/REL and everything under it but REL/.cache (REL, e.g. "node_modules", is the
 * records' path prefix). Files through their content, symlinks through their target, never followed.
 * @param {string} root @param {string} rel @returns {TreeRecord[]}
 */
function treeRecordsOf(root, rel) {
  /** @type {TreeRecord[]} */
  const out = [];
  /** @param {string} p */
  const walk = (p) => {
    const abs = path.join(root, p);
    const st = fs.lstatSync(abs);
    if (st.isDirectory()) {
      out.push(treeRecord("d", p));
      for (const name of fs.readdirSync(abs)) if (p !== rel || name !== TREE_CACHE) walk(`${p}/${name}`);
    } else if (st.isFile()) {
      out.push(treeRecord("f", p, [st.mode & 0o100 ? "x" : "-", fileSha256(abs)]));
    } else if (st.isSymbolicLink()) {
      out.push(treeRecord("l", p, [fs.readlinkSync(abs)]));
    } else {
      out.push(treeRecord("?", p));
    }
  };
  walk(rel);
  return out;
}

/**
 * PM2's `_operate` (lib/API.js), changed in one case: a reload of an app of two workers reloads
 * both at once. PM2 reloads an app of one or two workers one worker after the other (`if
 * (ids.length <= 2) concurrent_actions = 1`), and each waits for its new worker's 'ready' and then
 * for its old worker's exit; at once, by numeric id, each new worker is still ready before its old
 * one is stopped, so no request is dropped and the reload takes half the time. (Not by
 * `pm2 reload 0` from the CLI: it passes the id as a string, and the ready wait then matches no
 * worker and lasts listen_timeout.) Everything else, and anything not as expected, goes to PM2's own.
 * @param {(this: any, action: string, name: any, envs: any, cb?: (err: unknown, ret: unknown) => void) => any} operate
 * @param {(name: string) => Record<string, unknown>} [moduleConf] PM2's Modularizer.getAdditionalConf
 */
function concurrentReload(operate, moduleConf = () => ({})) {
  /** @this {any} @param {string} action @param {any} name @param {any} envs @param {(err: unknown, ret: unknown) => void} [cb] */
  return function (action, name, envs, cb) {
    const client = this && this.Client;
    if (action !== "reloadProcessId" || typeof name !== "string" || name === "all" || typeof cb !== "function" ||
      !client || typeof client.getProcessIdByName !== "function") {
      return operate.apply(this, [action, name, envs, cb]);
    }
    client.getProcessIdByName(name, false, (/** @type {unknown} */ err, /** @type {unknown} */ ids) => {
      if (err || !Array.isArray(ids) || ids.length !== 2 || !ids.every((id) => Number.isInteger(id))) {
        return operate.call(this, action, name, envs, cb);
      }
      const env = { ...(envs || {}), ...moduleConf(name) };
      let left = ids.length;
      /** @type {unknown} */
      let failed = null;
      /** @type {unknown[]} */
      let done = [];
      for (const id of ids) {
        operate.call(this, action, id, { ...env }, (/** @type {unknown} */ e, /** @type {unknown} */ ret) => {
          if (e && !failed) failed = e;
          if (Array.isArray(ret)) done = done.concat(ret);
          if (--left === 0) cb(failed, done);
        });
      }
    });
  };
}

/**
 * `pm2 startOrReload ECOSYSTEM --only APP --update-env`, run by the CLI of the pm2 on PATH (PM2_BIN)
 * in this process, with its reload made concurrent for two workers (concurrentReload). When
 * PM2_BIN is not a link into a pm2 package (a shim of some version manager), PM2's CLI runs as is.
 * @param {string} pm2Bin @param {string} ecosystem @param {string} app
 */
function pm2StartOrReload(pm2Bin, ecosystem, app) {
  const args = ["startOrReload", ecosystem, "--only", app, "--update-env"];
  let dir = "";
  let api = null;
  try {
    dir = path.dirname(path.dirname(fs.realpathSync(pm2Bin)));
    if (JSON.parse(fs.readFileSync(path.join(dir, "package.json"), "utf8")).name === "pm2") api = require(path.join(dir, "lib", "API.js"));
  } catch {
    // not a pm2 package (a version manager's shim): PM2's CLI runs as is, below
  }
  if (typeof api?.prototype?._operate !== "function" || !fs.existsSync(path.join(dir, "lib", "binaries", "CLI.js"))) {
    const r = require("child_process").spawnSync(pm2Bin, args, { stdio: "inherit" });
    process.exit(r.status ?? 1);
  }
  /** @type {(name: string) => Record<string, unknown>} */
  let moduleConf = () => ({});
  try {
    const modularizer = require(path.join(dir, "lib", "API", "Modules", "Modularizer.js"));
    if (typeof modularizer.getAdditionalConf === "function") moduleConf = (name) => modularizer.getAdditionalConf(name) || {};
  } catch {
    // an older layout: no module configuration merged, as for any app that is not a PM2 module
  }
  api.prototype._operate = concurrentReload(api.prototype._operate, moduleConf);
  process.argv = [process.argv[0], path.join(dir, "bin", "pm2"), ...args];
  require(path.join(dir, "lib", "binaries", "CLI.js"));
}

module.exports = { concurrentReload, parsePm2List, TREE_CACHE, treeRecord, treeDigest, treeRecordsOf, readEnvFile, appEnv, isHealthy, parseRevisions, formatRevision, previousOf, pollHealth, parseDotenv, formatEnvFile, notification };

// --- the command line ---------------------------------------------------------------------
const USAGE = "usage: node deploy-helper.js ECOSYSTEM exec RELEASE_DIR [PORT] -- CMD... | health URL RELEASE_ID SECONDS [PID [SETTLE]] | " +
  "free-port | sqlite-backup DIR PREFIX | record FILE ID PREV RESULT SOURCE | previous-of FILE ID | notify URL_FILE LOG_FILE STACK HOST ID PREV SOURCE RESULT STEPS_JSON | sqlite-restore FILE | tree-digest DIR | pm2-reload PM2_BIN APP";

/** @returns {never} */
function usage() {
  console.error(USAGE);
  process.exit(2);
}

/** @param {string} ecosystem @returns {Settings} */
function settingsOf(ecosystem) {
  const s = require(path.resolve(ecosystem)).settings;
  if (!s || typeof s.sharedEnv !== "string") {
    console.error(`${ecosystem} has no settings: it was written by another version; run pulumi up again`);
    process.exit(2);
  }
  return s;
}

/** Names the file `exec` creates when the command sends PM2's 'ready'. */
const READY_FILE_VAR = "VPS_RELEASE_READY_FILE";

/** @param {Settings} s @param {string[]} args */
function execCommand(s, args) {
  const sep = args.indexOf("--");
  if (sep < 1 || sep === args.length - 1) usage();
  const [dir, port] = args.slice(0, sep);
  const cmd = args.slice(sep + 1);
  // READY_FILE_VAR set: the command gets an IPC channel, as under PM2, and a `process.send('ready')`
  // (PM2's wait_ready contract) is recorded by creating that file.
  const readyFile = process.env[READY_FILE_VAR];
  const env = Object.assign({}, process.env, appEnv(s, dir, port ? Number(port) : 0));
  delete env[READY_FILE_VAR];
  const child = require("child_process").spawn(cmd[0], cmd.slice(1), {
    cwd: dir,
    env,
    stdio: readyFile ? ["inherit", "inherit", "inherit", "ipc"] : "inherit",
  });
  if (readyFile) {
    child.on("message", (m) => {
      if (m === "ready") fs.writeFileSync(readyFile, "");
    });
  }
  for (const sig of /** @type {const} */ (["SIGINT", "SIGTERM"])) process.on(sig, () => child.kill(sig));
  child.on("exit", (code, signal) => process.exit(code === null ? 128 + (signal === "SIGTERM" ? 15 : 2) : code));
  child.on("error", (e) => {
    console.error(`exec ${cmd[0]}: ${e.message}`);
    process.exit(127);
  });
}

function freePort() {
  const srv = require("net").createServer();
  srv.listen(0, "127.0.0.1", () => {
    const a = srv.address();
    console.log(a && typeof a === "object" ? a.port : 0);
    srv.close();
  });
}

/** @param {Settings} s @param {string} dir @param {string} prefix */
function sqliteBackup(s, dir, prefix) {
  const url = appEnv(s, "").DATABASE_URL || "";
  if (!url.startsWith("file:")) {
    console.log("backup: DATABASE_URL is not a SQLite file; nothing to copy");
    return;
  }
  const db = url.slice("file:".length).split("?")[0];
  if (!fs.existsSync(db)) {
    console.log(`backup: no database yet at ${db}`);
    return;
  }
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const stamp = new Date().toISOString().replace(/[-:]/g, "").replace(/\..*/, "Z");
  for (const suffix of ["", "-wal"]) {
    if (fs.existsSync(db + suffix)) fs.copyFileSync(db + suffix, path.join(dir, `${prefix}-${stamp}.db${suffix}`));
  }
  console.log(`backup: ${db} -> ${path.join(dir, `${prefix}-${stamp}.db`)}`);
}

/**
 * Puts a SQLite backup (sqliteBackup's FILE, and its FILE-wal when there is one) back as the
 * database DATABASE_URL names, each through a temporary file and a rename; a stale -wal or -shm of
 * the newer database goes. The app must be stopped meanwhile (ops/restore.ts stops it).
 * @param {Settings} s
 * @param {string} file
 */
function sqliteRestore(s, file) {
  const url = appEnv(s, "").DATABASE_URL || "";
  if (!url.startsWith("file:")) throw new Error("DATABASE_URL is not a SQLite file: set app:restore to the command that restores BACKUP_FILE");
  const db = url.slice("file:".length).split("?")[0];
  if (!fs.existsSync(file)) throw new Error(`no backup ${file}`);
  for (const suffix of ["", "-wal"]) {
    if (fs.existsSync(file + suffix)) {
      fs.copyFileSync(file + suffix, `${db}${suffix}.restore`);
      fs.renameSync(`${db}${suffix}.restore`, db + suffix);
    } else {
      fs.rmSync(db + suffix, { force: true });
    }
  }
  fs.rmSync(`${db}-shm`, { force: true });
  console.log(`restore: ${file} -> ${db}`);
}

/** @param {string} file */
function readRevisionsFile(file) {
  try {
    return parseRevisions(fs.readFileSync(file, "utf8"));
  } catch {
    return [];
  }
}

if (require.main === module) {
  const [ecosystem, cmd, ...args] = process.argv.slice(2);
  if (!ecosystem || !cmd) usage();
  switch (cmd) {
    case "exec":
      execCommand(settingsOf(ecosystem), args);
      break;
    case "health": {
      const [url, want, seconds, pid, settle] = args;
      if (!url || !seconds) usage();
      pollHealth({ url, want: want ?? "", seconds: Number(seconds), pid: pid ? Number(pid) : undefined, settle: settle ? Number(settle) : 0 }).then((r) => {
        (r.ok ? console.log : console.error)(r.line);
        process.exit(r.ok ? 0 : 1);
      });
      break;
    }
    case "free-port":
      freePort();
      break;
    case "sqlite-backup":
      if (!args[0] || !args[1]) usage();
      sqliteBackup(settingsOf(ecosystem), args[0], args[1]);
      break;
    case "record": {
      const [file, releaseId, previousReleaseId, result, source] = args;
      if (!file || !releaseId || result === undefined) usage();
      const time = new Date().toISOString().replace(/\.\d+Z$/, "Z");
      fs.appendFileSync(file, formatRevision({ time, releaseId, previousReleaseId: previousReleaseId ?? "", result, source: source ?? "" }) + "\n");
      break;
    }
    case "carry-env": {
      // carry-env SRC DEST: SRC (a dotenv file) in the shared .env's format into DEST (0600); prints the names.
      const [src, dest] = args;
      if (!src || !dest) usage();
      const env = parseDotenv(fs.readFileSync(src, "utf8"));
      fs.writeFileSync(dest, formatEnvFile(env), { mode: 0o600 });
      fs.chmodSync(dest, 0o600);
      console.log(Object.keys(env).sort().join(" ") || "(none)");
      break;
    }
    case "pm2-app": {
      // pm2-app NAME: `MODE CWD` of the PM2 app NAME (from pm2 jlist on stdin), or `none`.
      let list;
      try {
        list = parsePm2List(fs.readFileSync(0, "utf8"));
      } catch (e) {
        console.error(`error: ${/** @type {Error} */ (e).message}`);
        process.exit(1);
      }
      const app = list.find((p) => p && p.name === args[0]);
      console.log(app ? `${app.pm2_env?.exec_mode ?? "unknown"} ${app.pm2_env?.pm_cwd ?? ""}` : "none");
      break;
    }
    case "sqlite-restore":
      if (!args[0]) usage();
      try {
        sqliteRestore(settingsOf(ecosystem), args[0]);
      } catch (e) {
        console.error(`error: restore: ${/** @type {Error} */ (e).message}`);
        process.exit(1);
      }
      break;
    case "notify": {
      // notify URL_FILE LOG_FILE STACK HOST ID PREV SOURCE RESULT STEPS_JSON: nothing when URL_FILE is
      // absent or empty. The URL is never printed.
      const [urlFile, logFile, stack, host, releaseId, previousReleaseId, source, result, steps] = args;
      if (!urlFile || result === undefined) usage();
      let url = "";
      try {
        url = fs.readFileSync(urlFile, "utf8").trim();
      } catch {
        url = "";
      }
      if (!url) break;
      let tail = "";
      try {
        tail = logFile ? fs.readFileSync(logFile, "utf8").trimEnd().split("\n").slice(-20).join("\n") : "";
      } catch {
        tail = "";
      }
      const fields = { stack, host, releaseId, previousReleaseId, source, result, steps: JSON.parse(steps || "[]") };
      sendNotification(url, notification(fields, tail)).then((line) => console.log(line));
      break;
    }
    case "tree-digest": {
      // tree-digest DIR: the digest of DIR's tree, its records named from DIR's basename (node_modules/...).
      if (!args[0]) usage();
      const dir = path.resolve(args[0]);
      console.log(treeDigest(treeRecordsOf(path.dirname(dir), path.basename(dir))));
      break;
    }
    case "pm2-reload":
      // pm2-reload PM2_BIN APP: pm2 startOrReload ECOSYSTEM --only APP --update-env (pm2StartOrReload).
      if (!args[0] || !args[1]) usage();
      pm2StartOrReload(args[0], ecosystem, args[1]);
      break;
    case "previous-of":
      if (!args[0] || !args[1]) usage();
      console.log(previousOf(readRevisionsFile(args[0]), args[1]));
      break;
    default:
      usage();
  }
}

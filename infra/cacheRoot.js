// @ts-check
// This machine's cache folder, for the artifact inspections (inspectionCache.ts) and the program's
// transpiled files (transpile-cache.js). Plain JS: transpile-cache.js runs before TypeScript can.
"use strict";
const os = require("node:os");
const path = require("node:path");

/**
 * `$VPS_RELEASE_CACHE`, else `$XDG_CACHE_HOME/vps-release`, else `~/.cache/vps-release`.
 * @param {NodeJS.ProcessEnv} [env]
 * @returns {string}
 */
function cacheRoot(env = process.env) {
  if (env.VPS_RELEASE_CACHE) return env.VPS_RELEASE_CACHE;
  return path.join(env.XDG_CACHE_HOME || path.join(os.homedir(), ".cache"), "vps-release");
}

module.exports = { cacheRoot };

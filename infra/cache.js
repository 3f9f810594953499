// The folder this program keeps its caches in, on the machine that runs `pulumi`:
// `$VPS_RELEASE_CACHE`, else `$XDG_CACHE_HOME/vps-release`, else `~/.cache/vps-release`.
"use strict";
const os = require("node:os");
const path = require("node:path");

/** @param {NodeJS.ProcessEnv} [env] */
function cacheRoot(env = process.env) {
  if (env.VPS_RELEASE_CACHE) return env.VPS_RELEASE_CACHE;
  return path.join(env.XDG_CACHE_HOME || path.join(os.homedir(), ".cache"), "vps-release");
}

module.exports = { cacheRoot };

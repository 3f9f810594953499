// @ts-check
// The ready shim, shipped as shared/bin/ready-shim.js and preloaded into every worker of the app
// (the ecosystem's node_args: --require). PM2 waits, on every reload, for each new worker's
// `process.send('ready')` (wait_ready), and PM2 keeps an app's wait_ready from its first start
// whatever a later ecosystem says. An app that never sends 'ready' (most existing backends) would
// cost listen_timeout per worker on every reload. So, when the release's preflight saw the app send
// no 'ready' (the ecosystem sets VPS_RELEASE_READY_SHIM=1), the shim sends it for the app as soon as
// a server of the worker listens: cluster mode routes requests only to listening workers.
// An app that sends 'ready' itself gets nothing from the shim.
"use strict";
const net = require("net");

let sent = false;
const listen = net.Server.prototype.listen;
/** @this {net.Server} @param {...any} args */
net.Server.prototype.listen = function (...args) {
  this.once("listening", () => {
    // Read when it listens: PM2 puts the app's environment in place after the preload runs.
    if (sent || process.env.VPS_RELEASE_READY_SHIM !== "1" || typeof process.send !== "function") return;
    sent = true;
    process.send("ready");
  });
  return listen.apply(this, /** @type {any} */ (args));
};

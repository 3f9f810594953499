// @ts-check
// A graceful stop for apps that have none, shipped inside the workers' preload (ecosystem.ts
// WORKER_PRELOAD, shared/bin/ready-shim.js). PM2 stops a worker with SIGINT on every reload, stop
// and delete. A worker with no SIGINT handler of its own dies at once: the requests it is serving
// fail, its idle keep-alive connections are reset under their next request, and the connections
// PM2's cluster master was handing it at that moment are lost. Most existing backends have no
// handler. For them, in a cluster worker only, the first SIGINT (or SIGTERM):
//   1. stops every server of the worker from accepting (the master then hands new connections to the
//      other workers) and answers what arrives meanwhile with `Connection: close`;
//   2. after GRACE_MS closes the idle keep-alive connections, then every STEP_MS those that went idle;
//   3. once every connection is gone, or after MAX_MS (below PM2's kill_timeout), dies by the same
//      signal, as the app would have.
// An app with a handler of its own is left alone: its handler decides. A second signal kills at once.
"use strict";
const cluster = /** @type {import("cluster").Cluster} */ (/** @type {unknown} */ (require("cluster")));
const net = require("net");

const GRACE_MS = 1000;
const STEP_MS = 100;
const MAX_MS = 8000;

/** @type {Set<net.Server>} servers of this worker that listen. */
const servers = new Set();
const listen = net.Server.prototype.listen;
/** @this {net.Server} @param {...any} args */
net.Server.prototype.listen = function (...args) {
  this.once("listening", () => {
    servers.add(this);
    this.once("close", () => servers.delete(this));
  });
  return listen.apply(this, /** @type {any} */ (args));
};

/** @param {NodeJS.Signals} signal */
function die(signal) {
  process.removeAllListeners(signal);
  process.kill(process.pid, signal);
}

let stopping = false;
/** @param {NodeJS.Signals} signal */
function onSignal(signal) {
  if (process.listenerCount(signal) > 1) return; // the app's own handler decides
  if (stopping) return die(signal);
  stopping = true;
  const open = [...servers];
  if (open.length === 0) return die(signal);
  let left = open.length;
  const closed = () => {
    if (--left === 0) die(signal);
  };
  for (const server of open) {
    if (typeof (/** @type {any} */ (server).closeIdleConnections) === "function") {
      const http = /** @type {import("http").Server} */ (server);
      http.prependListener("request", (_req, res) => res.setHeader("Connection", "close"));
      const idle = () => {
        http.closeIdleConnections();
        setTimeout(idle, STEP_MS).unref();
      };
      setTimeout(idle, GRACE_MS).unref();
    }
    // net.Server#close: stop accepting; http.Server#close would also drop the idle connections now.
    net.Server.prototype.close.call(server, closed);
  }
  // Not unref'd: the worker stays until its connections are gone or this fires.
  setTimeout(() => die(signal), MAX_MS);
}

if (cluster.isWorker) {
  for (const signal of /** @type {NodeJS.Signals[]} */ (["SIGINT", "SIGTERM"])) process.on(signal, onSignal);
}

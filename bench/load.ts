// Runs a bench action under load: the project's load client (test/support/load-client.ts: keep-alive
// and fresh connections) counts failed requests, bench/probe.ts measures the longest time the app
// did not serve. After the action, the load keeps running until the app serves again (or 60 s).
import * as path from "node:path";
import { getJson, startLoad, startMeter } from "../driver/local";

export interface LoadResult {
  failed: number;
  requests: number;
  /** Longest span without service, seconds. */
  downtime: number;
  /** The app still did not serve when the load stopped. */
  down: boolean;
}

interface ProbeResult {
  probes: number;
  failed: number;
  downtime: number;
  down: boolean;
}

/** Polls url until it answers 200, up to `seconds`. */
export async function waitServing(url: string, seconds: number): Promise<boolean> {
  const deadline = Date.now() + seconds * 1000;
  while (Date.now() < deadline) {
    try {
      if ((await getJson(url)).status === 200) return true;
    } catch {
      // not serving yet
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  return false;
}

export async function underLoad<T>(url: string, action: () => T | Promise<T>): Promise<{ value: T; load: LoadResult }> {
  const load = await startLoad(url);
  const probe = await startMeter<ProbeResult>(path.join("bench", "probe.ts"), url);
  const stop = async (): Promise<LoadResult> => {
    const [l, p] = await Promise.all([load.stop(), probe.stop()]);
    return { failed: l.failed, requests: l.ok + l.failed, downtime: p.downtime, down: p.down };
  };
  let value: T;
  try {
    value = await action();
  } catch (err) {
    await stop();
    throw err;
  }
  await waitServing(url, 60);
  // A moment of steady serving, so the probe closes the span it saw.
  await new Promise((r) => setTimeout(r, 300));
  return { value, load: await stop() };
}

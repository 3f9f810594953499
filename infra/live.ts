// What the stack recorded last time (its outputs): the preview compares against it (plan.ts), and
// the upload is keyed on it (uploadTokenFor). Read from the state backend by the engine's builtin
// `pulumi:pulumi:readStackOutputs`, the read a StackReference makes, but as an invoke the program
// can retry. A file backend (file://, this project's default .state) rewrites the checkpoint's
// sidecar `<stack>.json.attrs` in place on every save (gocloud.dev fileblob setAttrs: create,
// then write), and this stack saves its checkpoint while its own program runs: a read that lands
// in between fails with "failed to load checkpoint: EOF". As a StackReference resource that read
// failed the whole `up` (CI saw it, one read in a few hundred).
import * as pulumi from "@pulumi/pulumi";

const READ = "pulumi:pulumi:readStackOutputs";
/** 6 tries, 0.1 s doubling between them: 3.1 s at most before the error. */
export const READ_ATTEMPTS = 6;
const FIRST_PAUSE_MS = 100;

export type Invoke = (token: string, args: Record<string, unknown>) => Promise<Record<string, unknown> | undefined>;

export interface Recorded {
  /** Each output's plain value. */
  values: Record<string, unknown>;
  /** The outputs the stack keeps secret (whole or in part), sorted. */
  secret: string[];
}

/** The stack's outputs as `getOutput(key)`, undefined for a key it does not have (a new stack). */
export interface LiveStack {
  getOutput(key: string): pulumi.Output<unknown>;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * What a read of a file backend's state fails with when it lands in a save of that stack's
 * checkpoint: "failed to load checkpoint: EOF" (the program's read, `pulumi stack output`,
 * `pulumi config`), or a bare "error: EOF" line (`pulumi stack ls`).
 */
export const CHECKPOINT_BEING_SAVED = /failed to load checkpoint: (unexpected )?EOF|(^|\s)error: (unexpected )?EOF$/m;

/**
 * `read()`, tried again while it fails with CHECKPOINT_BEING_SAVED: READ_ATTEMPTS tries in all,
 * 0.1 s doubling between them (3.1 s at most). Any other error, or the last, is thrown as it is.
 * The one rule for every read of a stack's state: the program's own (readRecorded) and the ops
 * commands' through the CLI (ops/stacks.ts).
 */
export async function readingState<T>(read: () => Promise<T>, pause: (ms: number) => Promise<void> = sleep): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await read();
    } catch (e) {
      const error = e instanceof Error ? e : new Error(String(e));
      if (attempt >= READ_ATTEMPTS || !CHECKPOINT_BEING_SAVED.test(error.message)) throw error;
      await pause(FIRST_PAUSE_MS * 2 ** (attempt - 1));
    }
  }
}

/** Reads what stack `name` recorded (readingState); a failure names the stack, the cause and what to do. */
export async function readRecorded(name: string, invoke: Invoke, pause?: (ms: number) => Promise<void>): Promise<Recorded> {
  try {
    return recordedFrom(await readingState(() => invoke(READ, { name }), pause));
  } catch (e) {
    throw new pulumi.RunError(`could not read what stack ${name} recorded last time: ` +
      `${(e as Error).message}. Run pulumi again; if it fails the same way, ` +
      `check that its state backend (PULUMI_BACKEND_URL) is readable`);
  }
}

/** The invoke's answer (`outputs`, `secretOutputNames`) as plain values and the names of secret ones. */
export function recordedFrom(got: Record<string, unknown> | undefined): Recorded {
  const outputs = (got?.outputs ?? {}) as Record<string, unknown>;
  const secret = new Set(Array.isArray(got?.secretOutputNames) ? got.secretOutputNames.map(String) : []);
  const values: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(outputs)) {
    const plain = unwrapSecrets(value);
    if (plain.secret) secret.add(key);
    values[key] = plain.value;
  }
  return { values, secret: [...secret].sort() };
}

/** A value with the SDK's secret wrappers (nested ones included) taken off, and whether it had any. */
function unwrapSecrets(value: unknown): { value: unknown; secret: boolean } {
  if (pulumi.runtime.isRpcSecret(value)) {
    return { value: unwrapSecrets(pulumi.runtime.unwrapRpcSecret(value)).value, secret: true };
  }
  if (Array.isArray(value)) {
    const items = value.map(unwrapSecrets);
    return { value: items.map((i) => i.value), secret: items.some((i) => i.secret) };
  }
  if (value !== null && typeof value === "object") {
    const entries = Object.entries(value).map(([k, v]) => [k, unwrapSecrets(v)] as const);
    return { value: Object.fromEntries(entries.map(([k, v]) => [k, v.value])), secret: entries.some(([, v]) => v.secret) };
  }
  return { value, secret: false };
}

/** This stack's last outputs, read once per run; a secret output stays secret. */
export function liveStack(invoke: Invoke = pulumi.runtime.invoke): LiveStack {
  const name = `${pulumi.getOrganization()}/${pulumi.getProject()}/${pulumi.getStack()}`;
  const recorded = readRecorded(name, invoke);
  return {
    getOutput: (key) => pulumi.output(recorded).apply((r) =>
      r.secret.includes(key) ? pulumi.secret(r.values[key]) : r.values[key]),
  };
}

/**
 * The token the upload of `releaseId` is keyed on. Once that release is live, the token its upload
 * was made with (the stack's `uploadToken` output, "" for stacks made before it): nothing changes.
 * Until then, a new one on every `up`: an upload that is in the state but gone from the VPS (a
 * wiped or rebuilt server, a cleaned folder) is sent again by the next `up`, never stuck.
 */
export function uploadTokenFor(live: LiveStack, releaseId: string, fleetHost?: string): pulumi.Output<string> {
  const recorded: pulumi.Output<unknown[]> = fleetHost === undefined
    ? pulumi.all([live.getOutput("releaseId"), live.getOutput("uploadToken")])
    // A fleet keys each host's upload on what that host runs (the stack's `hosts` output).
    : live.getOutput("hosts").apply((hosts) => {
      const h = (hosts as Record<string, { releaseId?: unknown; uploadToken?: unknown }> | undefined)?.[fleetHost];
      return [h?.releaseId, h?.uploadToken];
    });
  return recorded.apply(([liveId, token]) =>
    liveId === releaseId ? (typeof token === "string" ? token : "") : `pending ${new Date().toISOString()}`);
}

// Small remote scripts: the host layout, and writing a file from stdin atomically.
import { Layout, layout, layoutVars } from "../paths";
import { assignments, quote, script, usedBy } from "../shell";

/**
 * Shell text that claims the deploy root for one stack ($STACK_CLAIM, created atomically) and stops
 * the script when another stack deploys there: two stacks on one root would overwrite each other's
 * .env, ecosystem and live release. Expects $ROOT, $STACK_CLAIM and $STACK.
 */
export const CLAIM_ROOT = [
  `if [ -d "$ROOT" ]; then (set -C; echo "$STACK" >"$STACK_CLAIM") 2>/dev/null || true; fi`,
  `if [ -f "$STACK_CLAIM" ] && [ "$(cat "$STACK_CLAIM")" != "$STACK" ]; then`,
  `  echo "error: $ROOT is the deploy root of stack $(cat "$STACK_CLAIM"), not of $STACK; two stacks must not share one vps:root." \\`,
  `    "Give this stack its own (pulumi config set vps:root PATH), or, if stack $(cat "$STACK_CLAIM") is gone for good, remove $STACK_CLAIM on the VPS." >&2`,
  "  exit 1",
  "fi",
].join("\n");

/** Creates ROOT's folders with their modes; idempotent, never deletes anything. */
export function layoutScript(l: Layout, stack: string): string {
  const body = [
    `mkdir -p "$ROOT"`,
    CLAIM_ROOT,
    `mkdir -p "$RELEASES" "$SHARED" "$LOGS" "$DATA" "$BACKUPS" "$INCOMING_DIR" "$(dirname "$HELPER")"`,
    `chmod 755 "$RELEASES"`,
    `chmod 750 "$SHARED" "$LOGS"`,
    `chmod 700 "$DATA" "$BACKUPS" "$INCOMING_DIR"`,
    `touch "$REVISIONS" "$LOCK_FILE"`,
    `echo "layout ready: $ROOT"`,
  ];
  return script(assignments({ ...usedBy(layoutVars(l), ...body), STACK: stack }), ...body);
}

/** The line writeFileScript prints with `version: true`: `version: <16 hex digits>`. */
export const VERSION_PREFIX = "version: ";

export function parseWriteVersion(stdout: string): string {
  const line = stdout.split("\n").find((l) => l.startsWith(VERSION_PREFIX));
  return line === undefined ? "" : line.slice(VERSION_PREFIX.length).trim();
}

/**
 * Writes stdin to `target` through a temporary file and a rename, with `mode`, and prints its size
 * (never its content: the .env is a secret). Refused when `owner.root` belongs to another stack.
 */
export function writeFileScript(target: string, mode: "600" | "644", label: string, owner: { root: string; stack: string },
  note = "", opts: { version?: boolean } = {}): string {
  return script(
    note === "" ? "" : `# ${note.replace(/\n/g, " ")}`,
    assignments({ TARGET: target, MODE: mode, ROOT: owner.root, STACK_CLAIM: layout(owner.root).stackClaim, STACK: owner.stack }),
    CLAIM_ROOT,
    "umask 077",
    `mkdir -p "$(dirname "$TARGET")"`,
    `tmp="$TARGET.tmp.$$"`,
    `cat >"$tmp"`,
    `chmod "$MODE" "$tmp"`,
    `mv -f "$tmp" "$TARGET"`,
    `echo ${quote(label)}" written: $TARGET ($(wc -c <"$TARGET") bytes)"`,
    // A random id of this write, so that what depends on the file's content can be keyed on a value
    // that is neither secret nor derived from the content (see SharedEnv).
    opts.version ? `echo "${VERSION_PREFIX}$(od -An -N8 -tx1 /dev/urandom | tr -d ' \\n')"` : "",
  );
}

/**
 * The PM2 app's registration (Pm2Ecosystem's `app` command): `create` records TOKEN as the current
 * one; `delete`, run by `pulumi destroy`, stops and removes the app from PM2 (and saves PM2's list)
 * and gives up the root's claim, but only while TOKEN is still the current registration: a
 * registration replaced by a newer one (a renamed resource) leaves the app running. Releases,
 * shared data, the .env and backups stay; the script says what is left and how to remove it.
 */
export function appRegistrationScripts(l: Layout, app: string, stack: string, token: string): { create: string; delete: string } {
  const vars = (...body: string[]) => assignments({ ...usedBy(layoutVars(l), ...body), APP_NAME: app, STACK: stack, TOKEN: token });
  const create = [
    `mkdir -p "$(dirname "$APP_OWNER")"`,
    `echo "$TOKEN" >"$APP_OWNER.tmp" && mv -f "$APP_OWNER.tmp" "$APP_OWNER"`,
    `echo "pm2 app $APP_NAME on $ROOT registered to $STACK: pulumi destroy stops it and keeps releases, data and backups"`,
  ];
  const del = [
    `if [ "$(cat "$APP_OWNER" 2>/dev/null || true)" != "$TOKEN" ]; then`,
    `  echo "pm2 app $APP_NAME on $ROOT: this registration was replaced by a newer one; the app keeps running"`,
    "  exit 0",
    "fi",
    `if ! command -v pm2 >/dev/null; then`,
    `  echo "warning: pm2 is not on PATH for $(id -un); stop $APP_NAME by hand (pm2 delete $APP_NAME && pm2 save)" >&2`,
    `elif pm2 describe "$APP_NAME" >/dev/null 2>&1; then`,
    `  pm2 delete "$APP_NAME" >/dev/null && pm2 save --force >/dev/null`,
    `  echo "pm2: stopped and removed $APP_NAME, and saved PM2's list (a reboot will not bring it back)"`,
    "else",
    `  echo "pm2: $APP_NAME was not running"`,
    "fi",
    `rm -f "$APP_OWNER"`,
    `if [ "$(cat "$STACK_CLAIM" 2>/dev/null || true)" = "$STACK" ]; then rm -f "$STACK_CLAIM" && echo "released $ROOT from stack $STACK"; fi`,
    `echo "kept on $(hostname): $ROOT with $(find "$RELEASES" -mindepth 1 -maxdepth 1 -type d ! -name '.*' 2>/dev/null | wc -l) release(s), shared/ (the .env, data, logs), backups/ and revisions.log"`,
    `echo "to remove them for good, on the VPS: rm -rf $ROOT"`,
  ];
  return { create: script(vars(...create), ...create), delete: script(vars(...del), ...del) };
}

// Small remote scripts: the host layout, and writing a file from stdin atomically.
import { Layout } from "../paths";
import { assignments, quote, script } from "../shell";

/**
 * Shell text that claims the deploy root for one stack (ROOT/.stack, created atomically) and stops
 * the script when another stack deploys there: two stacks on one root would overwrite each other's
 * .env, ecosystem and live release. Expects $ROOT and $STACK.
 */
export const CLAIM_ROOT = [
  `if [ -d "$ROOT" ]; then (set -C; echo "$STACK" >"$ROOT/.stack") 2>/dev/null || true; fi`,
  `if [ -f "$ROOT/.stack" ] && [ "$(cat "$ROOT/.stack")" != "$STACK" ]; then`,
  `  echo "error: $ROOT is the deploy root of stack $(cat "$ROOT/.stack"), not of $STACK; two stacks must not share one vps:root." \\`,
  `    "Give this stack its own (pulumi config set vps:root PATH), or, if stack $(cat "$ROOT/.stack") is gone for good, remove $ROOT/.stack on the VPS." >&2`,
  "  exit 1",
  "fi",
].join("\n");

/** Creates ROOT's folders with their modes; idempotent, never deletes anything. */
export function layoutScript(l: Layout, stack: string): string {
  return script(
    assignments({ ROOT: l.root, STACK: stack }),
    `mkdir -p "$ROOT"`,
    CLAIM_ROOT,
    `cd "$ROOT"`,
    "mkdir -p releases shared shared/logs shared/data backups .incoming",
    "chmod 755 releases",
    "chmod 750 shared shared/logs",
    "chmod 700 shared/data backups .incoming",
    "touch revisions.log .deploy.lock",
    `echo "layout ready: $ROOT"`,
  );
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
    assignments({ TARGET: target, MODE: mode, ROOT: owner.root, STACK: owner.stack }),
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

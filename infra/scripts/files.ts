// Small remote scripts: the host layout, and writing a file from stdin atomically.
import { Layout } from "../paths";
import { assignments, quote, script } from "../shell";

/** Creates ROOT's folders with their modes; idempotent, never deletes anything. */
export function layoutScript(l: Layout): string {
  return script(
    assignments({ ROOT: l.root }),
    `mkdir -p "$ROOT"`,
    `cd "$ROOT"`,
    "mkdir -p releases shared shared/logs shared/data backups .incoming",
    "chmod 755 releases",
    "chmod 750 shared shared/logs",
    "chmod 700 shared/data backups .incoming",
    "touch revisions.log .deploy.lock",
    `echo "layout ready: $ROOT"`,
  );
}

/**
 * Writes stdin to `target` through a temporary file and a rename, with `mode`, and prints its size
 * (never its content: the .env is a secret).
 */
export function writeFileScript(target: string, mode: "600" | "644", label: string, note = ""): string {
  return script(
    note === "" ? "" : `# ${note.replace(/\n/g, " ")}`,
    assignments({ TARGET: target, MODE: mode }),
    "umask 077",
    `mkdir -p "$(dirname "$TARGET")"`,
    `tmp="$TARGET.tmp.$$"`,
    `cat >"$tmp"`,
    `chmod "$MODE" "$tmp"`,
    `mv -f "$tmp" "$TARGET"`,
    `echo ${quote(label)}" written: $TARGET ($(wc -c <"$TARGET") bytes)"`,
  );
}

// The one quoting function, and a few combinators. Every value interpolated into shell text goes
// through quote(); nothing else in the project builds shell strings by hand.

/** Quotes a value as one shell word: single quotes, with embedded single quotes as '\''. */
export function quote(value: string | number): string {
  const s = String(value);
  if (s !== "" && /^[A-Za-z0-9_@%+=:,./-]+$/.test(s)) return s;
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/** `NAME=value` lines for a script header; names must be shell identifiers. */
export function assignments(vars: Record<string, string | number>): string {
  return Object.entries(vars)
    .map(([name, value]) => {
      if (!/^[A-Z_][A-Z0-9_]*$/.test(name)) throw new Error(`not a shell variable name: ${name}`);
      return `${name}=${quote(value)}`;
    })
    .join("\n");
}

/**
 * A complete bash script: strict mode, then the given blocks, ending with a newline. SC2016 is off
 * because quote() single-quotes values that contain `$` on purpose: they are data.
 */
export function script(...blocks: string[]): string {
  return ["#!/usr/bin/env bash", "# shellcheck disable=SC2016", "set -euo pipefail", ...blocks.filter((b) => b !== "")]
    .join("\n") + "\n";
}

/** The variables of `vars` that `text` reads (`$NAME` or `${NAME`): a header carries nothing unused. */
export function usedBy<T extends Record<string, string | number>>(vars: T, ...texts: string[]): Partial<T> {
  const text = texts.join("\n");
  return Object.fromEntries(Object.entries(vars).filter(([name]) => new RegExp(`\\$\\{?${name}\\b`).test(text))) as Partial<T>;
}

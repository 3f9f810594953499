// shared/.env: NAME="json string" per line, sorted. JSON escaping keeps every value exact
// (quotes, $( ), backticks, newlines); the ecosystem file reads it back with JSON.parse.
// The text is a secret: it travels on stdin, never in a script.

export function renderEnvFile(env: Record<string, string>): string {
  return Object.keys(env)
    .sort()
    .map((k) => {
      if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(k)) throw new Error(`not a variable name: ${JSON.stringify(k)}`);
      return `${k}=${JSON.stringify(env[k])}\n`;
    })
    .join("");
}

/** Inverse of renderEnvFile (the same parse as the ecosystem file's readEnvFile). */
export function parseEnvFile(text: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const line of text.split("\n")) {
    const m = /^([A-Za-z_][A-Za-z0-9_]*)=(".*")$/.exec(line);
    if (m) env[m[1]] = JSON.parse(m[2]) as string;
  }
  return env;
}

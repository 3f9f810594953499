// The OpenSSH client arguments every TypeScript caller uses to reach a VPS (ops/ for a stack, the
// driver for the local VPS): key auth only, no prompt, the host key pinned through a known_hosts file.
export interface SshTarget {
  user: string;
  host: string;
  port: number | string;
  /** A private key file (mode 0600). */
  keyFile: string;
  /** A known_hosts file that holds the host's pinned key. */
  knownHosts: string;
}

export function sshArgs(t: SshTarget, script: string): string[] {
  return [
    "-q", "-i", t.keyFile, "-p", String(t.port), "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes",
    "-o", "StrictHostKeyChecking=yes", "-o", `UserKnownHostsFile=${t.knownHosts}`,
    `${t.user}@${t.host}`, script,
  ];
}

/** The known_hosts line that pins `hostKey` for host and port. */
export function knownHostsLine(host: string, port: number | string, hostKey: string): string {
  return `${String(port) === "22" ? host : `[${host}]:${port}`} ${hostKey}\n`;
}

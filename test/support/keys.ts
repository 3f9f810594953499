// Throwaway SSH keys for tests, generated at test time (no key is ever committed).
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";

export interface TestKey {
  /** The private key file's content (OpenSSH format). */
  privateKey: string;
  /** The public key as one `type base64` line. */
  publicKey: string;
}

export function generateTestKey(): TestKey {
  const dir = mkdtempSync(path.join(tmpdir(), "test-key-"));
  try {
    const file = path.join(dir, "key");
    execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", "test", "-f", file]);
    return {
      privateKey: readFileSync(file, "utf8"),
      publicKey: readFileSync(`${file}.pub`, "utf8").split(" ").slice(0, 2).join(" "),
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

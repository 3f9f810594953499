import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { knownHostsLine, sshArgs } from "./ssh";

describe("ssh client arguments", () => {
  it("key auth only, no prompt, the host key pinned", () => {
    assert.deepEqual(sshArgs({ user: "deploy", host: "203.0.113.7", port: 2222, keyFile: "/k", knownHosts: "/kh" }, "uptime"), [
      "-q", "-i", "/k", "-p", "2222", "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes",
      "-o", "StrictHostKeyChecking=yes", "-o", "UserKnownHostsFile=/kh", "deploy@203.0.113.7", "uptime",
    ]);
  });
  it("known_hosts names a non-default port in brackets", () => {
    assert.equal(knownHostsLine("h", 22, "ssh-ed25519 AAAA"), "h ssh-ed25519 AAAA\n");
    assert.equal(knownHostsLine("h", "2222", "ssh-ed25519 AAAA"), "[h]:2222 ssh-ed25519 AAAA\n");
  });
});

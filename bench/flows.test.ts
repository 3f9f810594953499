import assert from "node:assert/strict";
import { test } from "node:test";
import { mergeSteps, SSH_UNREACHABLE } from "./flows";

test("SSH_UNREACHABLE: a refused or dropped handshake, not a remote failure", () => {
  assert.match("ssh: connect to host 127.0.0.1 port 36481: Connection refused\n", SSH_UNREACHABLE);
  assert.match("kex_exchange_identification: read: Connection reset by peer\n", SSH_UNREACHABLE);
  assert.match("Connection closed by 127.0.0.1 port 36481\n", SSH_UNREACHABLE);
  assert.doesNotMatch("health check failed: http://127.0.0.1:3000/health; run seed-rollback.sh\n", SSH_UNREACHABLE);
});

test("mergeSteps prefixes the second set", () => {
  assert.deepEqual(mergeSteps({ install: 1, save: 2 }, { copy: 3, save: 4 }, "rollback:"), { install: 1, save: 2, "rollback:copy": 3, "rollback:save": 4 });
});

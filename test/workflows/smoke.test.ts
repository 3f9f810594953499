// The health probe the smoke check (ops/smoke.ts) and npm run promote run on the VPS
// (ops/stacks.ts), run for real here against a local server, and the rule that calls an answer healthy.
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { describe, it } from "node:test";
import { healthy, probeScript } from "../../ops/stacks";

describe("smoke check", () => {
  it("the probe prints STATUS BODY for a live URL and 0 with the reason for a dead one", async () => {
    const server = createServer((req, res) => {
      res.writeHead(req.url === "/health" ? 200 : 404, { "Content-Type": "application/json" });
      res.end(JSON.stringify({ status: "ok", release: "abcdef012345", note: "it's \"quoted\"" }));
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const { port } = server.address() as AddressInfo;
    try {
      const probe = (url: string) => new Promise<string>((resolve) => {
        // async: the server answers from this same process
        const child = spawn("bash", ["-c", probeScript(url)]);
        let out = "";
        child.stdout?.on("data", (d: Buffer) => (out += d.toString()));
        child.on("close", () => resolve(out.trim()));
      });
      assert.equal(await probe(`http://127.0.0.1:${port}/health`), `200 {"status":"ok","release":"abcdef012345","note":"it's \\"quoted\\""}`);
      assert.match(await probe(`http://127.0.0.1:${port}/nope`), /^404 /);
      server.close();
      assert.match(await probe(`http://127.0.0.1:${port}/health`), /^0 /);
    } finally {
      server.close();
    }
  });

  it("quotes a URL with shell metacharacters: it reaches node as one argument, nothing runs", () => {
    const url = "http://127.0.0.1:1/h'$(touch /tmp/smoke-pwned)`x` ; echo no";
    // `node` replaced by a function that prints its arguments, one per line.
    const r = spawnSync("bash", ["-c", `node() { printf '%s\\n' "$@"; }\n${probeScript(url)}`], { encoding: "utf8" });
    assert.equal(r.status, 0, r.stderr);
    const args = r.stdout.split("\n");
    assert.equal(args[0], "-e");
    assert.equal(args[2], url);
    assert.equal(existsSync("/tmp/smoke-pwned"), false);
  });

  it("calls a 200 healthy unless its JSON names another release", () => {
    assert.equal(healthy('200 {"status":"ok","release":"abcdef012345"}', "abcdef012345"), true);
    assert.equal(healthy('200 {"status":"ok"}', "abcdef012345"), true);
    assert.equal(healthy("200 OK", "abcdef012345"), true);
    assert.equal(healthy('200 {"release":"000000000000"}', "abcdef012345"), false);
    assert.equal(healthy('503 {"release":"abcdef012345"}', "abcdef012345"), false);
    assert.equal(healthy("0 connect ECONNREFUSED", "abcdef012345"), false);
    assert.equal(healthy("", "abcdef012345"), false);
  });
});

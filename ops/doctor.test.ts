// npm run doctor's pure parts: a valid remote script, every problem with its fix, and the same tool
// list and words as the release script's require_tools.
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { describe, it } from "node:test";
import { layout } from "../infra/paths";
import { RELEASE_LIB } from "../infra/scripts/release";
import { assertValidBash } from "../test/support/shell";
import { diagnose, doctorScript, REQUIRED_TOOLS } from "./doctor";

const now = 1_800_000_000;
const ready = [
  ...REQUIRED_TOOLS.map((t) => `TOOL ${t} /usr/bin/${t}`),
  "USER deploy /home/deploy", "NODE v22.23.3", "PM2BIN /home/deploy/.npm/bin/pm2 /home/deploy/.node/bin/node",
  `CLOCK ${now + 2}`, "ROOT deploy 5242880", "STARTUP yes",
].join("\n");
const opts = { root: "/srv/api", localClock: now };

describe("npm run doctor", () => {
  it("its remote script passes bash -n and shellcheck", () => assertValidBash(doctorScript(layout("/srv/api")), "doctor"));

  it("finds nothing wrong on a ready host", () => assert.deepEqual(diagnose(ready, opts), []));

  it("names each problem with its fix", () => {
    const answer = ready.replace("TOOL flock /usr/bin/flock", "TOOL flock").replace("TOOL pm2 /usr/bin/pm2", "TOOL pm2")
      .replace("NODE v22.23.3", "NODE v16.20.0").replace(`CLOCK ${now + 2}`, `CLOCK ${now + 300}`)
      .replace("ROOT deploy 5242880", "ROOT root 102400").replace("STARTUP yes", "STARTUP no");
    const p = diagnose(answer, opts);
    assert.deepEqual(p.map((x) => x.split(" ")[0]), ["pm2", "flock", "node", "the", "/srv/api", "only", "PM2"]);
    assert.match(p[1], /flock is not on PATH for deploy in non-interactive SSH sessions .*apt-get install util-linux/);
    assert.match(p[3], /the clock is 300 s off/);
    assert.match(p[4], /belongs to root, not to deploy: as root, chown -R deploy \/srv\/api/);
    assert.match(p[6], /^PM2 does not come back after a reboot: pm2 startup was not run for deploy\. Once, as root: env PATH=\$PATH:\/home\/deploy\/\.node\/bin \/home\/deploy\/\.npm\/bin\/pm2 startup systemd -u deploy --hp \/home\/deploy/);
  });

  it("says a missing tool in the same words as the release script", () => {
    // A PATH with `id` alone: node is the first tool missing.
    const bin = mkdtempSync(path.join(tmpdir(), "doctor-"));
    symlinkSync(execFileSync("bash", ["-c", "command -v id"], { encoding: "utf8" }).trim(), path.join(bin, "id"));
    const r = spawnSync("bash", ["-c", `${RELEASE_LIB}\nPATH=${bin}; require_tools`], { encoding: "utf8" });
    rmSync(bin, { recursive: true, force: true });
    assert.equal(r.status, 1);
    const fromRelease = r.stderr.replace(/^error: /, "").trim();
    const me = execFileSync("id", ["-un"], { encoding: "utf8" }).trim();
    const fromDoctor = diagnose(ready.replace("TOOL node /usr/bin/node", "TOOL node").replace("USER deploy", `USER ${me}`), opts)[0];
    assert.equal(fromDoctor, fromRelease);
    assert.deepEqual([...REQUIRED_TOOLS].slice(1), /for tool in ([a-z0-9 ]+); do/.exec(RELEASE_LIB)?.[1].split(" "));
  });
});

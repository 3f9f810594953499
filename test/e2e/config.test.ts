// Bad config fails `pulumi preview` with every problem named, before anything touches the VPS.
import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import { localVps, projectRoot, sshRun, TestStack } from "../../driver/local";

describe("bad stack config", () => {
  const vps = localVps();
  const stack = new TestStack(projectRoot, "e2e-config");
  const root = `${vps.root}-${stack.name}`;
  after(() => stack.remove());

  it("fails the preview with each key, what was wrong and the fix; the VPS is untouched", () => {
    stack.setVps(vps);
    stack.setConfig("vps:root", root);
    stack.setConfig("app:port", "80a");
    stack.setConfig("app:keepReleases", "1");
    stack.setConfig("app:env", JSON.stringify({ "BAD-NAME": "x", PORT: "1" }), { secret: true });
    const p = stack.preview();
    assert.notEqual(p.status, 0);
    const text = p.stdout + p.stderr;
    for (const want of [
      'app:port: expected an integer 1-65535, got "80a" (pulumi config set app:port 3000)',
      'app:keepReleases: expected an integer 2-100, got "1" (pulumi config set app:keepReleases 5)',
      "app:artifact or app:release: one is required",
      'app:env: "BAD-NAME" is not a valid variable name',
      "app:env: PORT is reserved, set app:port instead",
    ]) assert.ok(text.includes(want), `missing ${JSON.stringify(want)} in:\n${text}`);
    assert.doesNotMatch(text, /TSError|at Object\.<anonymous>/, "a config error should not print a stack trace");
    assert.equal(sshRun(vps, `test -e ${root} && echo exists || echo absent`).stdout.trim(), "absent");
  });

  it("refuses an artifact that is not a gzip tarball, naming it, before touching the VPS", () => {
    stack.setConfig("app:port", "3000");
    stack.setConfig("app:keepReleases", "5");
    stack.setConfig("app:env", "{}", { secret: true });
    stack.setConfig("app:artifact", "package.json");
    const p = stack.preview();
    assert.notEqual(p.status, 0);
    assert.match(p.stdout + p.stderr, /app:artifact: \/.*package\.json is refused:[\s\S]*not a gzip file/);
    assert.equal(sshRun(vps, `test -e ${root} && echo exists || echo absent`).stdout.trim(), "absent");
  });
});

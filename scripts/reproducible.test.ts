// A generated Prisma client packs to the same bytes whatever folder it was built in and whatever
// order Prisma wrote its generator config in this run.
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { describe, it } from "node:test";
import { packDirectory } from "../infra/artifact";
import { normalizePrismaClient, reproducibleTransform } from "./reproducible";

const client = (appDir: string, config: string) => `const config = {
    "generator": {
        "output": {
            "value": "${appDir}/src/generated/sqlite",
            "fromEnvVar": null
        },
        "config": {${config}
        },
        "sourceFilePath": "${appDir}/prisma/sqlite/schema.prisma"
    },
    "inlineSchemaHash": "720e"
};
//# sourceMappingURL=class.js.map
`;
const orderA = `
            "moduleFormat": "cjs",
            "engineType": "client"`;
const orderB = `
            "engineType": "client",
            "moduleFormat": "cjs"`;

describe("reproducible Prisma clients", () => {
  it("sorts the generator config, makes the build folder's paths relative, drops the map comment", () => {
    const a = normalizePrismaClient(client("/tmp/one/backend", orderA), "/tmp/one/backend");
    const b = normalizePrismaClient(client("/home/ci/work/app", orderB), "/home/ci/work/app/");
    assert.equal(a, b);
    assert.match(a, /"value": "src\/generated\/sqlite"/);
    assert.match(a, /"sourceFilePath": "prisma\/sqlite\/schema.prisma"/);
    assert.match(a, /"engineType": "client",\n {12}"moduleFormat": "cjs"\n {8}\}/);
    assert.doesNotMatch(a, /sourceMappingURL/);
  });

  it("packs two builds in two folders to the same bytes, without the client's source map; other files untouched", () => {
    const work = mkdtempSync(path.join(tmpdir(), "repro-"));
    try {
      const build = (dir: string, order: string) => {
        mkdirSync(path.join(dir, "dist", "generated"), { recursive: true });
        writeFileSync(path.join(dir, "dist", "generated", "class.js"), client(dir, order));
        writeFileSync(path.join(dir, "dist", "generated", "class.js.map"), `{"mappings":"${order.length}"}`);
        writeFileSync(path.join(dir, "dist", "server.js"), `// built in ${dir}\n//# sourceMappingURL=server.js.map\n`);
        writeFileSync(path.join(dir, "dist", "server.js.map"), "{}");
        writeFileSync(path.join(dir, "package.json"), "{}");
        return packDirectory({ root: dir, entries: ["dist", "package.json"], transform: reproducibleTransform(dir) });
      };
      const one = build(path.join(work, "one"), orderA);
      const two = build(path.join(work, "two", "deeper"), orderB);
      // server.js names its folder on purpose: only the Prisma client is rewritten.
      assert.notDeepEqual(one, two);
      const sameServer = (dir: string) => writeFileSync(path.join(dir, "dist", "server.js"), "// built\n");
      sameServer(path.join(work, "one"));
      sameServer(path.join(work, "two", "deeper"));
      const t = (dir: string) => packDirectory({ root: dir, entries: ["dist", "package.json"], transform: reproducibleTransform(dir) });
      assert.deepEqual(t(path.join(work, "one")), t(path.join(work, "two", "deeper")));
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
  });
});

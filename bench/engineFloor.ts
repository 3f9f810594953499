// The engine's floor: the no-op `up` of an empty TypeScript Pulumi program, run the way ours is
// (scripts/pulumi.sh, the same CLI, language host, Node, node_modules and kind of backend), so the
// bench can say how much of ours is the engine and how much is this program.
import { mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { projectRoot, TestStack } from "../driver/local";

const PROJECT = ["name: engine-floor", "runtime:", "  name: nodejs", "  options:", "    typescript: true", "main: index.ts", ""].join("\n");

export class EngineFloor {
  private readonly dir = mkdtempSync(path.join(tmpdir(), "engine-floor-"));
  private readonly stack: TestStack;

  constructor() {
    writeFileSync(path.join(this.dir, "Pulumi.yaml"), PROJECT);
    writeFileSync(path.join(this.dir, "index.ts"), "export {};\n");
    // The compiler options of `pulumi new typescript`'s, as this project's tsconfig.json has them.
    const compilerOptions = { strict: true, target: "ES2022", module: "commonjs", moduleResolution: "node", types: ["node"], esModuleInterop: true, skipLibCheck: true };
    writeFileSync(path.join(this.dir, "tsconfig.json"), JSON.stringify({ compilerOptions }));
    writeFileSync(path.join(this.dir, "package.json"), JSON.stringify({ name: "engine-floor", private: true }));
    symlinkSync(path.join(projectRoot, "node_modules"), path.join(this.dir, "node_modules"));
    this.stack = new TestStack(this.dir, "e2e-floor");
    this.measure(); // the first up creates the stack resource; the measured ones have nothing to do
  }

  /** Seconds of one no-op `up`. */
  measure(): number {
    const t0 = process.hrtime.bigint();
    const r = this.stack.up();
    if (r.status !== 0) throw new Error(`engine floor: pulumi up of an empty program failed:\n${r.stdout}\n${r.stderr}`);
    return Number(process.hrtime.bigint() - t0) / 1e9;
  }

  remove(): void {
    this.stack.remove();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

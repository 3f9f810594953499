import * as command from "@pulumi/command";
import * as pulumi from "@pulumi/pulumi";
import { createHash } from "node:crypto";
import { layout } from "../paths";
import { renderEnvFile } from "../scripts/env";
import { parseWriteVersion, writeFileScript } from "../scripts/hostFiles";
import { secretWhenKnown } from "../secrets";
import { quote } from "../shell";

export interface SharedEnvArgs {
  /** SSH connection to the VPS. */
  connection: command.types.input.remote.ConnectionArgs;
  /** Deploy root. */
  root: string;
  /** The app's environment (secret): becomes shared/.env, mode 0600. */
  env: pulumi.Input<Record<string, string>>;
  /** PROJECT/STACK that owns the deploy root. */
  stack: string;
}

/**
 * shared/.env, mode 0600, sent on stdin: the values are never in script text, logs or plaintext
 * state. The script names the keys (not the values), so a preview shows which keys change.
 */
export class SharedEnv extends pulumi.ComponentResource {
  /** sha256 of the file's content, as a secret (a hash of short values could be guessed). */
  readonly contentHash: pulumi.Output<string>;
  /** The same hash of the content this program wants, known in a preview too (secret). */
  readonly plannedHash: pulumi.Output<string>;
  /** The variable names, sorted (not secret: a preview shows which keys change). */
  readonly keys: pulumi.Output<string[]>;
  /**
   * A random id of the last write of the file, made on the VPS: it changes whenever the content is
   * written anew. Not secret and not derived from the content, so the release can be keyed on it
   * (a secret that is unknown in a preview must never reach the provider: see secretWhenKnown).
   */
  readonly version: pulumi.Output<string>;

  constructor(name: string, args: SharedEnvArgs, opts?: pulumi.ComponentResourceOptions) {
    super("vps:deploy:SharedEnv", name, {}, opts);
    const env = pulumi.secret(args.env);
    const content = env.apply(renderEnvFile);
    const keys = pulumi.unsecret(env.apply((e) => Object.keys(e).sort()));
    const file = new command.remote.Command(`${name}-file`, {
      connection: args.connection,
      create: keys.apply((k) => writeFileScript(layout(args.root).sharedEnv, "600", ".env", { root: args.root, stack: args.stack },
        `keys: ${k.length === 0 ? "(none)" : k.map((key) => quote(key)).join(" ")}`, { version: true })),
      stdin: secretWhenKnown(content),
      addPreviousOutputInEnv: false,
    }, { parent: this });
    this.plannedHash = pulumi.secret(content.apply((c) => createHash("sha256").update(c).digest("hex")));
    this.contentHash = pulumi.secret(pulumi.all([this.plannedHash, file.stdout]).apply(([h]) => h));
    this.keys = keys;
    this.version = pulumi.unsecret(file.stdout).apply(parseWriteVersion);
    this.registerOutputs({ contentHash: this.contentHash, version: this.version });
  }
}

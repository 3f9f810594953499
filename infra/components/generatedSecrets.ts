import * as pulumi from "@pulumi/pulumi";
import * as random from "@pulumi/random";

export interface GeneratedSecretsArgs {
  /** Variable names, each given its own random value. */
  names: string[];
}

/**
 * One RandomPassword per name (app:generatedSecrets): generated once per stack, stable across
 * releases, a secret in state. Rotate one with `pulumi up --replace URN` (README, Secrets).
 */
export class GeneratedSecrets extends pulumi.ComponentResource {
  /** NAME -> value, secret. */
  readonly values: pulumi.Output<Record<string, string>>;

  constructor(name: string, args: GeneratedSecretsArgs, opts?: pulumi.ComponentResourceOptions) {
    super("vps:deploy:GeneratedSecrets", name, {}, opts);
    const entries = args.names.map((n) => {
      // 48 letters and digits: ~285 bits, and no character a .env reader or a URL could mangle.
      const pw = new random.RandomPassword(n, { length: 48, special: false }, { parent: this });
      return pw.result.apply((v) => [n, v] as const);
    });
    this.values = pulumi.secret(pulumi.all(entries).apply((kv) => Object.fromEntries(kv)));
    this.registerOutputs({});
  }
}

import * as github from "@pulumi/github";
import * as pulumi from "@pulumi/pulumi";

export interface GithubSecretsArgs {
  /** `owner/name` of the repository whose workflows deploy this stack. */
  repository: string;
  /** The GitHub environment, named after the stack (staging, production). It must exist. */
  environment: string;
  /** Secret name -> value; every value is handled as a Pulumi secret. */
  secrets: Record<string, pulumi.Input<string>>;
  /** A token allowed to write environment secrets; unset: the provider reads GITHUB_TOKEN. */
  token?: string;
  /** GitHub Enterprise or a stand-in: the API base URL. */
  baseUrl?: string;
}

/**
 * The GitHub Actions environment secrets the workflows need (VPS_*, state and secrets-provider
 * credentials), one ActionsEnvironmentSecret each. GitHub stores them sealed with the
 * environment's public key; the provider seals them, Pulumi keeps them as secrets.
 */
export class GithubSecrets extends pulumi.ComponentResource {
  /** The names written, sorted (not secret). */
  readonly names: string[];

  constructor(name: string, args: GithubSecretsArgs, opts?: pulumi.ComponentResourceOptions) {
    super("vps:deploy:GithubSecrets", name, {}, opts);
    const [owner, repo] = args.repository.split("/");
    const provider = new github.Provider(`${name}-provider`, {
      owner,
      ...(args.token ? { token: pulumi.secret(args.token) } : {}),
      ...(args.baseUrl ? { baseUrl: args.baseUrl } : {}),
    }, { parent: this });
    this.names = Object.keys(args.secrets).sort();
    for (const secretName of this.names) {
      new github.ActionsEnvironmentSecret(`${name}-${secretName}`, {
        repository: repo,
        environment: args.environment,
        secretName,
        plaintextValue: pulumi.secret(args.secrets[secretName]),
      }, { parent: this, provider });
    }
    this.registerOutputs({});
  }
}

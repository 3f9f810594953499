import * as command from "@pulumi/command";
import * as pulumi from "@pulumi/pulumi";
import { layout } from "../paths";
import { writeFileScript } from "../scripts/hostFiles";

export interface NotifierArgs {
  /** SSH connection to the VPS. */
  connection: command.types.input.remote.ConnectionArgs;
  /** Deploy root. */
  root: string;
  /** PROJECT/STACK that owns the deploy root. */
  stack: string;
  /** app:notify (a secret), or undefined: the file is then empty and no message is sent. */
  url: string | undefined;
}

/**
 * shared/.notify-url, mode 0600, from stdin: the webhook the release script sends its one message
 * per activation to (release.lib.sh notify). The URL is a secret: never in script text, logs or
 * plaintext state. Not a trigger of the release: a new URL takes effect at the next activation.
 */
export class Notifier extends pulumi.ComponentResource {
  constructor(name: string, args: NotifierArgs, opts?: pulumi.ComponentResourceOptions) {
    super("vps:deploy:Notifier", name, {}, opts);
    new command.remote.Command(`${name}-file`, {
      connection: args.connection,
      create: writeFileScript(layout(args.root).notifyUrl, "600", "notify url", { root: args.root, stack: args.stack },
        args.url ? "app:notify is set (the URL is not shown)" : "app:notify is not set: no messages"),
      // A plain value while the URL is unset: an empty file.
      stdin: args.url ? pulumi.secret(`${args.url}\n`) : "",
      addPreviousOutputInEnv: false,
    }, { parent: this });
    this.registerOutputs({});
  }
}

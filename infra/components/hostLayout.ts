import * as command from "@pulumi/command";
import * as pulumi from "@pulumi/pulumi";
import { Layout } from "../paths";
import { layoutScript } from "../scripts/hostFiles";

export interface HostLayoutArgs {
  /** SSH connection to the VPS. */
  connection: command.types.input.remote.ConnectionArgs;
  /** The VPS layout (paths.layout(root)). */
  layout: Layout;
  /** PROJECT/STACK: the root is claimed for this stack; another stack's root is refused. */
  stack: string;
}

/** ROOT's folders with their modes. Idempotent; deleting the stack leaves the VPS as it is. */
export class HostLayout extends pulumi.ComponentResource {
  /** The deploy root, once its folders exist. */
  readonly root: pulumi.Output<string>;

  constructor(name: string, args: HostLayoutArgs, opts?: pulumi.ComponentResourceOptions) {
    super("vps:deploy:HostLayout", name, {}, opts);
    const folders = new command.remote.Command(`${name}-folders`, {
      connection: args.connection,
      create: layoutScript(args.layout, args.stack),
      addPreviousOutputInEnv: false,
    }, { parent: this });
    this.root = folders.stdout.apply(() => args.layout.root);
    this.registerOutputs({ root: this.root });
  }
}

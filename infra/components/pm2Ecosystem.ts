import * as command from "@pulumi/command";
import * as pulumi from "@pulumi/pulumi";
import { createHash } from "node:crypto";
import { layout } from "../paths";
import { DEPLOY_HELPER, EcosystemInput, renderEcosystem, WORKER_PRELOAD } from "../scripts/ecosystem";
import { appRegistrationScripts, writeFileScript } from "../scripts/hostFiles";

export interface Pm2EcosystemArgs {
  /** SSH connection to the VPS. */
  connection: command.types.input.remote.ConnectionArgs;
  /** What the ecosystem file describes: root, app name, script, port, instances, timeouts. */
  ecosystem: EcosystemInput;
  /** PROJECT/STACK that owns the deploy root. */
  stack: string;
}

/**
 * shared/ecosystem.config.js, the deploy helper it loads (shared/bin/deploy-helper.js) and the
 * preload of its workers (shared/bin/ready-shim.js: the ready shim and the graceful stop), each
 * written when its content changes (on stdin). The release command is keyed on `contentHash`, so
 * a change of the ecosystem re-activates the live release (startOrReload --update-env). Its `app`
 * command registers the PM2 app: `pulumi destroy` stops it and keeps the data.
 */
export class Pm2Ecosystem extends pulumi.ComponentResource {
  /** sha256 of the file's content, once the file is on the VPS. */
  readonly contentHash: pulumi.Output<string>;
  /** sha256 of the content this program wants, known in a preview too. */
  readonly plannedHash: string;

  constructor(name: string, args: Pm2EcosystemArgs, opts?: pulumi.ComponentResourceOptions) {
    super("vps:deploy:Pm2Ecosystem", name, {}, opts);
    const content = renderEcosystem(args.ecosystem);
    const l = layout(args.ecosystem.root);
    // A file of the root, from stdin, public (0644): the helper first, as the ecosystem loads it.
    const writeFile = (role: string, target: string, label: string, text: string, dependsOn: pulumi.Resource[] = []) =>
      new command.remote.Command(`${name}-${role}`, {
        connection: args.connection,
        create: writeFileScript(target, "644", label, { root: args.ecosystem.root, stack: args.stack }),
        stdin: text,
        addPreviousOutputInEnv: false,
        logging: "stdoutAndStderr",
      }, { parent: this, dependsOn });
    const helper = writeFile("helper", l.helper, "deploy-helper.js", DEPLOY_HELPER);
    const shim = writeFile("shim", l.readyShim, "ready-shim.js", WORKER_PRELOAD);
    const file = writeFile("file", l.ecosystem, "ecosystem.config.js", content, [helper, shim]);
    // The app's registration: what `pulumi destroy` runs on the host (hostFiles.appRegistrationScripts).
    const token = createHash("sha256").update(`${name}\n${args.stack}\n${args.ecosystem.root}\n${args.ecosystem.name}`).digest("hex").slice(0, 16);
    const registration = appRegistrationScripts(l, args.ecosystem.name, args.stack, token);
    new command.remote.Command(`${name}-app`, {
      connection: args.connection,
      create: registration.create,
      delete: registration.delete,
      addPreviousOutputInEnv: false,
      logging: "stdoutAndStderr",
    }, { parent: this, dependsOn: [file] });
    const hash = createHash("sha256").update(content).digest("hex");
    this.plannedHash = hash;
    this.contentHash = file.stdout.apply(() => hash);
    this.registerOutputs({ contentHash: this.contentHash });
  }
}

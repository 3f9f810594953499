// npm run restore -- --stack S [--backup NAME] [--yes]: the database backups taken before
// migrations (backups/ on the VPS; a fleet's primary, where migrations run), each with the release
// that was live when it was taken; with --backup NAME, what restoring it loses; with --yes too, the
// restore: under the deploy lock the app is stopped, the backup put back (SQLite: copied back by the
// deploy helper; otherwise app:restore with BACKUP_FILE set, in the live release with the app's
// environment), and the release that matches it activated. The decisions are in decide.ts.
import { layout } from "../infra/paths";
import { parseRevisions } from "../infra/scripts/deploy-helper";
import { quote } from "../infra/shell";
import { planRestore, parseBackups } from "./decide";
import { keptReleases } from "./releases";
import { askHealth, configOf, healthy, hostsOf, openStack, rootOf, outputsOf, parseFlags, runCli, sshToStack, upWithRelease, UsageError } from "./stacks";

/** Puts BACKUP back with the app stopped, under the deploy lock; restarts the app when MATCH is live. Pure. */
export function restoreScript(root: string, app: string, backup: string, match: string, command: string, lockTimeout: number): string {
  const l = layout(root);
  const file = `${l.backups}/${backup}`;
  const put = command
    ? `BACKUP_FILE=${quote(file)} node ${quote(l.helper)} ${quote(l.ecosystem)} exec "$(readlink -f ${quote(l.current)})" -- bash -c ${quote(command)}`
    : `node ${quote(l.helper)} ${quote(l.ecosystem)} sqlite-restore ${quote(file)}`;
  return [
    "set -euo pipefail",
    `exec 9>>${quote(l.lockFile)}`,
    `flock -w ${lockTimeout} 9 || { echo "error: a deploy holds ${l.lockFile}; try again when it is done" >&2; exit 1; }`,
    `echo "pid $$ restore ${backup}" >${quote(l.lockOwner)}`,
    `pm2 stop ${quote(app)} >/dev/null 2>&1 || true`,
    `echo "restore: ${app} stopped"`,
    put,
    `if [ "$(basename "$(readlink ${quote(l.current)})")" = ${quote(match)} ]; then`,
    `  pm2 startOrReload ${quote(l.ecosystem)} --only ${quote(app)} --update-env >/dev/null && echo "restore: ${app} started again on release ${match}"`,
    "fi",
    `: >${quote(l.lockOwner)}`,
  ].join("\n");
}

async function main(): Promise<void> {
  const f = parseFlags(process.argv.slice(2), { values: ["stack", "backup"], flags: ["yes"] });
  if (typeof f.stack !== "string") throw new UsageError("--stack is required (npm run restore -- --stack staging [--backup NAME] [--yes])");
  const stack = await openStack(f.stack);
  const cfg = await configOf(stack);
  const root = await rootOf(stack);
  const app = cfg["app:name"]?.value ?? "blue-video-backend";
  const host = (await hostsOf(stack))[0];
  const l = layout(root);
  const r = await sshToStack(stack, `cd ${quote(l.backups)} 2>/dev/null && for f in *; do [ -f "$f" ] && printf 'B %s %s\\n' "$f" "$(stat -c %Y "$f")"; done; ` +
    `sed 's/^/H /' ${quote(l.revisionsLog)} 2>/dev/null; true`, host);
  if (r.status !== 0) throw new Error(`could not list the backups on ${host.label}: ${r.stderr}`);
  const lines = r.stdout.split("\n");
  const backups = parseBackups(lines.filter((x) => x.startsWith("B ")).map((x) => x.slice(2)));
  const revisions = parseRevisions(lines.filter((x) => x.startsWith("H ")).map((x) => x.slice(2)).join("\n"));
  const kept = (await keptReleases(stack, host)).map((k) => k.id);
  const plan = planRestore(backups, revisions, kept, typeof f.backup === "string" ? f.backup : undefined, f.yes === true);
  switch (plan.kind) {
    case "list":
      if (plan.backups.length === 0) {
        console.log(`no backups in ${l.backups} on ${host.label} (a backup is taken before each migration: app:backup)`);
        return;
      }
      console.log("backup                                   taken at              before release  matches release");
      for (const b of plan.backups) {
        console.log(`${b.name.padEnd(40)} ${new Date(b.time * 1000).toISOString().replace(/\.\d+Z$/, "Z")}  ${(b.before || "-").padEnd(14)}  ` +
          `${b.matches || "-"}${b.matches && !b.kept ? " (no longer kept)" : ""}`);
      }
      console.log(`\nnpm run restore -- --stack ${f.stack} --backup NAME shows what a restore loses; add --yes to do it.`);
      return;
    case "confirm":
      console.log(plan.message);
      console.log(`Nothing was changed. To do it: npm run restore -- --stack ${f.stack} --backup ${plan.backup.name} --yes`);
      process.exitCode = 2;
      return;
    case "restore": {
      console.log(plan.message);
      const out = await outputsOf(stack);
      const lockTimeout = Number(cfg["app:lockTimeout"]?.value ?? 120);
      const put = await sshToStack(stack, restoreScript(root, app, plan.backup.name, plan.release, cfg["app:restore"]?.value ?? "", lockTimeout), host);
      process.stdout.write(put.stdout);
      if (put.status !== 0) throw new Error(`restore failed on ${host.label}: ${put.stderr.trim()}; the app may be stopped: run pulumi up to start it again`);
      if (out.releaseId !== plan.release) {
        await upWithRelease(stack, { release: plan.release }, `restore ${plan.backup.name}`,
          { kind: "rollback", releaseId: plan.release, requestedAt: new Date().toISOString() });
      }
      const answer = await askHealth(stack, out.healthUrl, host);
      console.log(`restored ${plan.backup.name}; release ${plan.release} answers: ${answer}`);
      if (!healthy(answer, plan.release)) process.exitCode = 1;
      return;
    }
    default: {
      const never: never = plan;
      throw new Error(`unknown plan ${JSON.stringify(never)}`);
    }
  }
}

if (require.main === module) runCli(main);

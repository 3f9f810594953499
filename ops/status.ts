// npm run status -- --stack S [--json]: what runs on the stack's VPS (each host of a fleet) against
// what the stack records. Per host: the live release and drift from the recorded one (with the
// command that converges), the app's PM2 processes, the health answer and its latency, disk free
// on the deploy root, the lock or lease holder, and the last five activations. Exits 1 when a host
// is unhealthy or drifted, so CI and cron can use it. The remote side is one script (statusScript),
// its answer one line per fact (parseStatus); both pure, tested in status.test.ts.
import { Layout, layout } from "../infra/paths";
import { parsePm2List, parseRevisions, Revision } from "../infra/scripts/deploy-helper";
import { hostSlug } from "../infra/components/fleet";
import { notOnPath } from "./doctor";
import { quote } from "../infra/shell";
import { configOf, healthy, hostsOf, openStack, recordedFor, rootOf, outputsOf, parseFlags, runCli, sshToStack, UsageError } from "./stacks";

export interface Pm2Process {
  pid: number;
  status: string;
  uptimeSeconds: number;
  restarts: number;
  cpu: number;
  memoryMb: number;
}

export interface HostStatus {
  host: string;
  /** The release `current` points at on the host ("" when none). */
  live: string;
  /** The release the stack records for the host. */
  recorded: string;
  drift: boolean;
  processes: Pm2Process[];
  health: { answer: string; ms: number; ok: boolean };
  disk: { availableMb: number; totalMb: number };
  /** Who holds the lock or the lease right now ("" when no one). */
  holder: string;
  activations: Revision[];
  /** Why PM2's process list could not be read, with the fix ("" when it was read). */
  pm2Error: string;
  /** What is wrong, each with its fix; empty when all is well. */
  problems: string[];
}

/** The script run on a host: one `KEY value` line per fact. Pure. */
export function statusScript(l: Layout, app: string, healthUrl: string): string {
  // The process list is read by deploy-helper's parsePm2List, its source sent along (one rule).
  const pm2Filter = `${parsePm2List.toString()}\nlet s="";process.stdin.on("data",d=>s+=d).on("end",()=>{let l=[];try{l=parsePm2List(s)}catch(e){console.log("PM2ERR "+e.message.replace(/\\n/g," "))}` +
    `for(const p of l.filter(p=>p.name===process.argv[1]))console.log("PM2 "+JSON.stringify({pid:p.pid,status:p.pm2_env&&p.pm2_env.status,` +
    `uptime:p.pm2_env&&p.pm2_env.pm_uptime,restarts:p.pm2_env&&p.pm2_env.restart_time,cpu:p.monit&&p.monit.cpu,memory:p.monit&&p.monit.memory}))})`;
  const probe = `const t=Date.now();fetch(process.argv[1],{signal:AbortSignal.timeout(5000)}).then(async r=>console.log("HEALTH "+r.status+" "+(Date.now()-t)+" "+` +
    `(await r.text()).slice(0,300).replace(/\\n/g," "))).catch(e=>console.log("HEALTH 0 "+(Date.now()-t)+" "+e.message))`;
  return [
    `printf 'LIVE %s\\n' "$(basename "$(readlink ${quote(l.current)} 2>/dev/null)" 2>/dev/null)"`,
    `if command -v pm2 >/dev/null 2>&1; then pm2 jlist 2>/dev/null | node -e ${quote(pm2Filter)} ${quote(app)}; ` +
      `else printf 'NOPM2 %s\\n' "$(id -un)"; fi`,
    `node -e ${quote(probe)} ${quote(healthUrl)}`,
    `df -Pk ${quote(l.root)} 2>/dev/null | awk 'NR == 2 { print "DISK " $4 " " $2 }'`,
    `if [ -s ${quote(l.lockOwner)} ]; then printf 'LOCK %s\\n' "$(head -n 1 ${quote(l.lockOwner)})"; fi`,
    `if [ -s ${quote(l.leaseFile)} ]; then printf 'LEASE %s\\n' "$(head -n 1 ${quote(l.leaseFile)})"; fi`,
    `tail -n 5 ${quote(l.revisionsLog)} 2>/dev/null | sed 's/^/REV /'`,
  ].join("\n");
}

/** Reads a host's answer to statusScript against what the stack records for it. Pure. */
export function parseStatus(host: string, text: string, recorded: string, stackName: string, now = Date.now(), fleetHost?: string): HostStatus {
  const s: HostStatus = {
    host, live: "", recorded, drift: false, processes: [], health: { answer: "0 no answer", ms: 0, ok: false },
    disk: { availableMb: 0, totalMb: 0 }, holder: "", activations: [], pm2Error: "", problems: [],
  };
  const revs: string[] = [];
  for (const line of text.split("\n")) {
    const sp = line.indexOf(" ");
    const [key, rest] = sp === -1 ? [line, ""] : [line.slice(0, sp), line.slice(sp + 1)];
    if (key === "LIVE") s.live = rest.trim();
    else if (key === "PM2") {
      const p = JSON.parse(rest) as Record<string, number | string | undefined>;
      s.processes.push({
        pid: Number(p.pid ?? 0), status: String(p.status ?? "?"),
        uptimeSeconds: p.uptime ? Math.max(0, Math.round((now - Number(p.uptime)) / 1000)) : 0,
        restarts: Number(p.restarts ?? 0), cpu: Number(p.cpu ?? 0), memoryMb: Math.round(Number(p.memory ?? 0) / 2 ** 20),
      });
    } else if (key === "PM2ERR") {
      s.pm2Error = `could not read PM2's process list on ${host} (${rest}); run pm2 jlist there to see why`;
    } else if (key === "NOPM2") {
      s.pm2Error = `${host}: ${notOnPath("pm2", rest)}`;
    } else if (key === "HEALTH") {
      const m = /^(\d+) (\d+) ?(.*)$/.exec(rest);
      if (m) s.health = { answer: `${m[1]} ${m[3]}`, ms: Number(m[2]), ok: false };
    } else if (key === "DISK") {
      const [avail, total] = rest.split(" ").map(Number);
      s.disk = { availableMb: Math.round(avail / 1024), totalMb: Math.round(total / 1024) };
    } else if (key === "LOCK" || key === "LEASE") {
      s.holder = s.holder || `${key.toLowerCase()}: ${rest}`;
    } else if (key === "REV") revs.push(rest);
  }
  s.activations = parseRevisions(revs.join("\n")).reverse();
  s.health.ok = s.live !== "" && healthy(s.health.answer, s.live);
  s.drift = recorded !== "" && s.live !== recorded;
  if (s.drift) {
    s.problems.push(`drift: ${host} runs ${s.live || "no release"} but the stack records ${recorded} (current was switched, ` +
      `or PM2 was changed, by hand). To converge, run the recorded release's activation again: ${convergeCommand(stackName, fleetHost)}`);
  }
  if (!s.health.ok) s.problems.push(`unhealthy: ${host} answers ${s.health.answer} for release ${s.live || "(none)"}`);
  const down = s.processes.filter((p) => p.status !== "online");
  if (s.pm2Error) s.problems.push(`pm2: ${s.pm2Error}`);
  else if (s.processes.length === 0) s.problems.push(`pm2: no process of the app runs on ${host}`);
  else if (down.length > 0) s.problems.push(`pm2: ${down.length} of ${s.processes.length} processes are not online (${down.map((p) => p.status).join(", ")})`);
  return s;
}

/**
 * The command that runs the recorded release's activation again, when a host drifted: a replace of
 * the activation (a fleet host's preflight and publish), which its unchanged triggers would skip.
 */
export function convergeCommand(stackName: string, fleetHost?: string): string {
  const short = stackName.split("/").pop() as string;
  const urn = (type: string, name: string) => quote(`urn:pulumi:${short}::vps-release::vps:deploy:${type}$command:remote:Command::${name}`);
  const targets = fleetHost === undefined
    ? [urn("Release", "release-activate")]
    : ["preflight", "publish"].map((p) => urn("FleetRelease", `release-${hostSlug(fleetHost)}-${p}`));
  return `npm run pulumi -- up -s ${short} ${targets.map((t) => `--replace ${t}`).join(" ")}`;
}

/** The human report of one host. Pure. */
export function renderStatus(s: HostStatus): string {
  const lines = [
    `host ${s.host}`,
    `  release   live ${s.live || "(none)"}, recorded ${s.recorded || "(none)"}${s.drift ? "  DRIFT" : ""}`,
    `  health    ${s.health.ok ? "ok" : "NOT HEALTHY"} in ${s.health.ms} ms: ${s.health.answer}`,
    `  disk      ${s.disk.availableMb} MB free of ${s.disk.totalMb} MB on the deploy root`,
    `  lock      ${s.holder || "free"}`,
    "  pm2       pid      status    uptime   restarts  cpu  memory",
    ...s.processes.map((p) => `            ${String(p.pid).padEnd(8)} ${p.status.padEnd(9)} ${`${p.uptimeSeconds}s`.padEnd(8)} ${String(p.restarts).padEnd(9)} ${`${p.cpu}%`.padEnd(4)} ${p.memoryMb} MB`),
    "  last activations",
    ...s.activations.map((r) => `            ${r.time}  ${r.releaseId}  ${r.result.padEnd(14)} ${r.source}`),
    ...s.problems.map((p) => `  ! ${p}`),
  ];
  return lines.join("\n");
}

async function main(): Promise<void> {
  const f = parseFlags(process.argv.slice(2), { values: ["stack"], flags: ["json"] });
  if (typeof f.stack !== "string") throw new UsageError("--stack is required (npm run status -- --stack staging)");
  const stack = await openStack(f.stack);
  const out = await outputsOf(stack);
  const cfg = await configOf(stack);
  const root = await rootOf(stack);
  const app = cfg["app:name"]?.value ?? "blue-video-backend";
  const healthUrl = out.healthUrl || `http://127.0.0.1:${cfg["app:port"]?.value ?? "3000"}${cfg["app:healthPath"]?.value ?? "/health"}`;
  const hosts = await hostsOf(stack);
  const statuses = await Promise.all(hosts.map(async (h) => {
    const r = await sshToStack(stack, statusScript(layout(root), app, healthUrl), h);
    const s = parseStatus(h.label, r.stdout, recordedFor(out, h).releaseId, f.stack as string, Date.now(), h.fleet ? h.label : undefined);
    if (r.status !== 0 && r.stdout.trim() === "") s.problems.unshift(`ssh: ${h.label} did not answer: ${r.stderr.trim() || r.error?.message}`);
    return s;
  }));
  console.log(f.json === true ? JSON.stringify({ stack: f.stack, hosts: statuses }, null, 2) : statuses.map(renderStatus).join("\n\n"));
  if (statuses.some((s) => s.problems.length > 0)) process.exitCode = 1;
}

if (require.main === module) runCli(main);

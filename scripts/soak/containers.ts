// The soak's containers: busybox httpd serving the test page, and the checks that they run and
// answer (on their address and on a published port).
import { httpGet } from "../../src/util/http.js";
import { DOCKER, IMAGE, pick, rand, sleep } from "./settings.js";
import { docker, must } from "./shell.js";

export const httpd = ["httpd", "-f", "-p", "80", "-h", "/www"];

export interface Container {
  name: string;
  port: number;
}
/** Containers that must come back with networking. */
export interface BackFigures {
  back: number;
  notBack: string[];
}

/** Does the test page answer on host:port (within 4 s)? */
const pageAnswers = (host: string, port: number) => httpGet(host, port, 4000).then((r) => r.body.includes("cni-shim test page"), () => false);

async function containerIP(name: string, net: string) {
  const r = await docker(["inspect", name, "--format", `{{(index .NetworkSettings.Networks "${net}").IPAddress}}`]);
  return r.ok ? r.out : "";
}

export async function running(name: string) {
  const r = await docker(["inspect", name, "--format", "{{.State.Running}}"]);
  return r.ok && r.out === "true";
}

/** State.Running and State.Error of a container. */
export async function stateOf(name: string): Promise<{ Running: boolean; Error: string }> {
  const r = await docker(["inspect", name, "--format", "{{json .State}}"]);
  if (!r.ok) return { Running: false, Error: `inspect failed: ${r.err}` };
  return JSON.parse(r.out) as { Running: boolean; Error: string };
}

/** undefined when the container answers on its address (and on 127.0.0.1:hostPort), else what is wrong. */
export async function reachable(name: string, net: string, hostPort: number): Promise<string | undefined> {
  const ip = await containerIP(name, net);
  if (!ip) return `${name}: no address on ${net}`;
  let direct = false;
  let published = false;
  for (let i = 0; i < 10; i++) {
    direct = await pageAnswers(ip, 80);
    published = hostPort ? await pageAnswers("127.0.0.1", hostPort) : true;
    if (direct && published) return undefined;
    await sleep(300);
  }
  const ep = await docker(["inspect", name, "--format", `{{(index .NetworkSettings.Networks "${net}").EndpointID}}`]);
  const inside = await docker(["exec", name, "sh", "-c", "ip -o addr; ip route; ip -o link"]);
  return `${name} (endpoint ${ep.out.slice(0, 12)}): ${ip}:80 ${direct ? "ok" : "not answering"}${hostPort ? `, 127.0.0.1:${hostPort} ${published ? "ok" : "not answering"}` : ""}; inside: ${inside.out.replace(/\s+/g, " ")}`;
}

export async function removeAll(names: string[]) {
  for (const n of names) await docker(["rm", "-f", n], { timeoutMs: 120_000 });
}

/** Three --restart always containers, one with a published port; each name goes to `made` first. */
export async function restartSet(net: string, made: string[]): Promise<Container[]> {
  const names = [`soak-rs-a-${rand()}`, `soak-rs-b-${rand()}`, `soak-rs-c-${rand()}`];
  const ports = [30000 + pick(10000), 0, 0];
  for (const [i, n] of names.entries()) {
    made.push(n);
    await must(DOCKER, ["run", "-d", "--restart", "always", "--name", n, "--network", net, ...(ports[i] ? ["-p", `${ports[i]}:80`] : []), IMAGE, ...httpd]);
  }
  return names.map((n, i) => ({ name: n, port: ports[i] ?? 0 }));
}

/** Each container running (within 120 s in all) and answering: counted in fig.back or fig.notBack. */
export async function allBack(set: Container[], net: string, fig: BackFigures, what: string) {
  const until = Date.now() + 120_000;
  for (const c of set) {
    while (!(await running(c.name)) && Date.now() < until) await sleep(500);
    if (!(await running(c.name))) {
      const log = await docker(["inspect", c.name, "--format", "{{.State.Error}}"]);
      fig.notBack.push(`${what}: ${c.name} not running (${log.out})`);
      continue;
    }
    const bad = await reachable(c.name, net, c.port);
    if (bad) fig.notBack.push(`${what}: ${bad}`);
    else fig.back++;
  }
}

/** A new container on the network starts and answers (fig.freshRunOk), else a failure; then it goes. */
export async function freshRun(net: string, prefix: string, made: string[], fig: { freshRunOk: number; unexpectedFailures: string[] }, what: string) {
  const n = `${prefix}-${rand()}`;
  made.push(n);
  const r = await docker(["run", "-d", "--name", n, "--network", net, IMAGE, ...httpd]);
  if (r.ok && !(await reachable(n, net, 0))) fig.freshRunOk++;
  else fig.unexpectedFailures.push(`${what}: ${r.err || "not reachable"}`);
  await docker(["rm", "-f", n]);
}

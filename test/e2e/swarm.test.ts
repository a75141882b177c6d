// Swarm services on cni-shim networks, on the 3-node swarm of Docker 28.5 that scripts/swarm.sh
// builds (`make test-swarm`): the managed plugin installed on every node from the swarm's registry
// as cni-shim:latest, per-node config-only networks (`--config-from`, the macvlan pattern), and
// `--endpoint-mode dnsrr` (VIPs and the routing mesh are overlay-only). The same global service on
// Docker's own macvlan driver runs first: it checks the harness and gives the figure to compare.
//
// The chain is macvlan over each node's eth0 (the switch's LAN), host-local with the node's own
// range of one subnet, so that tasks on different nodes reach each other over the switch.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { execa } from "execa";
import { CLI, SERVE_NODE_FLAGS, rand, waitFor } from "../helpers/e2e.js";
import {
  MANAGER,
  NODES,
  SWARM_IMAGE,
  HARNESS,
  dockerOn,
  harness,
  inNode,
  leaked,
  nodeSnapshot,
  servicePs,
  taskAddress,
  taskContainers,
  waitRunning,
  type SwarmNode,
  type Task,
} from "../helpers/swarm.js";

const LAN = "10.231.0";
const SUBNET = `${LAN}.0/24`;
const GATEWAY = `${LAN}.1`;
const DRIVER = "cni-shim:latest";
/** Node n's range in address block k (k: 0 Docker's macvlan, 1 cni-shim): 14 addresses each. */
const range = (k: number, node: SwarmNode) => `${LAN}.${64 + 48 * k + 16 * (node.n - 1)}/28`;
const inRange = (addr: string, cidr: string) => {
  const [base = "", bits = "32"] = cidr.split("/");
  const last = (a: string) => Number(a.split(".")[3]);
  return addr.startsWith(`${LAN}.`) && last(addr) >= last(base) && last(addr) < last(base) + 2 ** (32 - Number(bits));
};
/** host-local's rangeStart/rangeEnd for a /28 of Docker's --ip-range: all 16 (Docker hands out the first). */
const hostLocalRange = (cidr: string) => {
  const base = Number(cidr.split("/")[0]?.split(".")[3]);
  return { rangeStart: `${LAN}.${base}`, rangeEnd: `${LAN}.${base + 15}` };
};
const figures: string[] = [];

/** The task containers of a service, with their addresses on NET. */
async function tasksWithAddresses(service: string, net: string): Promise<Array<Task & { addr: string }>> {
  const tasks = await taskContainers(service);
  return Promise.all(tasks.map(async (t) => ({ ...t, addr: await taskAddress(t, net) })));
}

/** Runs a shell line in a task container. */
const execIn = (t: Task, line: string) => dockerOn(t.node, ["exec", t.container, "sh", "-c", line], { reject: false, timeoutMs: 30_000 });

/** The addresses `tasks.SVC` answers with, asked in the task (Docker's embedded DNS). */
async function tasksRecord(t: Task, service: string): Promise<string[]> {
  const out = (await execIn(t, `nslookup tasks.${service} 127.0.0.11`)).stdout;
  return [...out.matchAll(/^Address: (\S+)$/gm)].map((m) => m[1] ?? "").filter((a) => a.startsWith(`${LAN}.`)).sort();
}

/** Each task resolves tasks.SVC to all of them, and pings the others by address and by that name. */
async function expectMesh(service: string, tasks: Array<Task & { addr: string }>): Promise<void> {
  const all = tasks.map((t) => t.addr).sort();
  for (const t of tasks) {
    expect(await tasksRecord(t, service), `tasks.${service} seen from ${t.node.name}`).toEqual(all);
    for (const o of tasks.filter((x) => x !== t)) {
      const ping = await execIn(t, `ping -c 1 -W 2 ${o.addr}`);
      expect(ping.exitCode, `${t.node.name} (${t.addr}) -> ${o.node.name} (${o.addr}): ${ping.stdout} ${ping.stderr}`).toBe(0);
    }
  }
  const first = tasks[0];
  if (!first) throw new Error(`no task of ${service}`);
  const byName = await execIn(first, `for i in 1 2 3 4 5 6; do ping -c 1 -W 2 tasks.${service} >/dev/null || exit 1; done`);
  expect(byName.exitCode, `ping tasks.${service} from ${first.node.name}: ${byName.stderr}`).toBe(0);
}

/** Per node: `docker network create --config-only` with the node's range (and extra -o options). */
async function configOnly(name: string, k: number, opts: string[]): Promise<void> {
  for (const node of NODES) {
    await dockerOn(node, ["network", "create", "--config-only", "--subnet", SUBNET, "--gateway", GATEWAY, "--ip-range", range(k, node), ...opts, name]);
  }
}

async function removeAll(services: string[], networks: string[], configs: string[]): Promise<void> {
  for (const s of services) await dockerOn(MANAGER, ["service", "rm", s], { reject: false });
  // A worker deletes its part of the network once its tasks are gone: wait for the containers.
  for (const s of services) {
    for (let i = 0; i < 100 && (await taskContainers(s).catch(() => [])).length > 0; i++) await new Promise((r) => setTimeout(r, 200));
  }
  for (const n of networks) await dockerOn(MANAGER, ["network", "rm", n], { reject: false });
  // A worker drops its copy of the swarm network a moment after `network rm`: until then the
  // config-only network is "in use" there.
  for (const c of configs) {
    for (const node of NODES) {
      for (let i = 0; i < 50; i++) {
        const res = await dockerOn(node, ["network", "rm", c], { reject: false });
        if (!res.failed || !/in use/.test(res.stderr)) break;
        await new Promise((r) => setTimeout(r, 200));
      }
    }
  }
}

/**
 * docker service create, then the seconds until `count` tasks run (the figure of the issue).
 * Every service runs with --init: a `sleep` as PID 1 ignores SIGTERM, and each task stop (scale
 * down, update, rm) would wait out the 10 s grace period.
 */
async function createService(name: string, count: number, args: string[]): Promise<number> {
  const t0 = performance.now();
  await dockerOn(MANAGER, ["service", "create", "-d", "--init", "--name", name, "--endpoint-mode", "dnsrr", ...args, SWARM_IMAGE, "sleep", "3600"]);
  await waitRunning(name, count);
  return (performance.now() - t0) / 1000;
}

describe("a 3-node swarm of Docker 28.5 (scripts/swarm.sh)", () => {
  const atStart = new Map<number, string[]>();
  beforeAll(async () => {
    const ready = (await dockerOn(MANAGER, ["node", "ls", "--format", "{{.Hostname}} {{.Status}}"])).stdout;
    expect(ready.split("\n").filter((l) => l.endsWith(" Ready"))).toHaveLength(3);
    for (const node of NODES) {
      const enabled = (await dockerOn(node, ["plugin", "inspect", "--format", "{{.Enabled}}", DRIVER])).stdout;
      expect(enabled, `${DRIVER} on ${node.name}`).toBe("true");
    }
    for (const node of NODES) atStart.set(node.n, await nodeSnapshot(node));
  });

  afterAll(() => {
    console.log(`swarm: docker service create -> all tasks running\n  ${figures.join("\n  ")}`);
  });

  describe("Docker's macvlan driver, the baseline", () => {
    const id = rand();
    const cfg = `cs-sw-mvcfg-${id}`;
    const net = `cs-sw-mv-${id}`;
    const svc = `cs-sw-mvsvc-${id}`;
    afterAll(() => removeAll([svc], [net], [cfg]), 120_000);

    it("runs a global dnsrr service on all three nodes, each task in its node's range, all reaching each other", async () => {
      await configOnly(cfg, 0, ["-o", "parent=eth0"]);
      await dockerOn(MANAGER, ["network", "create", "-d", "macvlan", "--scope", "swarm", "--config-from", cfg, net]);
      const seconds = await createService(svc, 3, ["--mode", "global", "--network", net]);
      figures.push(`macvlan (Docker's driver), global, 3 tasks: ${seconds.toFixed(2)} s`);
      const tasks = await tasksWithAddresses(svc, net);
      expect(tasks.map((t) => t.node.name).sort()).toEqual(NODES.map((n) => n.name));
      for (const t of tasks) expect(inRange(t.addr, range(0, t.node)), `${t.node.name}: ${t.addr} in ${range(0, t.node)}`).toBe(true);
      await expectMesh(svc, tasks);
    }, 180_000);
  });

  describe("cni-shim, a macvlan chain over each node's eth0", () => {
    const id = rand();
    const list = `cs-sw-mvl-${id}`;
    const cfg = `cs-sw-cfg-${id}`;
    const net = `cs-sw-net-${id}`;
    const services: string[] = [];
    const before = new Map<number, string[]>();
    let removed = false;

    beforeAll(async () => {
      for (const node of NODES) before.set(node.n, await nodeSnapshot(node));
      for (const node of NODES) {
        const chain = {
          cniVersion: "1.0.0",
          name: list,
          plugins: [
            {
              type: "macvlan",
              master: "eth0",
              mode: "bridge",
              ipam: { type: "host-local", ranges: [[{ subnet: SUBNET, gateway: GATEWAY, ...hostLocalRange(range(1, node)) }]] },
              capabilities: { ips: true },
            },
          ],
        };
        await writeFile(join(node.conf, `${list}.conflist`), JSON.stringify(chain));
      }
      await configOnly(cfg, 1, ["-o", `cni.network=${list}`]);
      await dockerOn(MANAGER, ["network", "create", "-d", DRIVER, "--scope", "swarm", "--attachable", "--config-from", cfg, net]);
    }, 120_000);

    afterAll(async () => {
      if (!removed) await removeAll(services, [net], [cfg]);
      for (const node of NODES) await rm(join(node.conf, `${list}.conflist`), { force: true });
    }, 180_000);

    it("runs a global dnsrr service on all three nodes, each task in its node's range, all reaching each other", async () => {
      const svc = `cs-sw-g-${id}`;
      services.push(svc);
      const seconds = await createService(svc, 3, ["--mode", "global", "--network", net]);
      figures.push(`cni-shim (macvlan chain), global, 3 tasks: ${seconds.toFixed(2)} s`);
      const tasks = await tasksWithAddresses(svc, net);
      expect(tasks.map((t) => t.node.name).sort()).toEqual(NODES.map((n) => n.name));
      for (const t of tasks) expect(inRange(t.addr, range(1, t.node)), `${t.node.name}: ${t.addr} in ${range(1, t.node)}`).toBe(true);
      await expectMesh(svc, tasks);
    }, 180_000);

    it("--attachable: docker run --network on a worker reaches a task on another node", async () => {
      const svc = services[0] ?? "";
      const target = (await tasksWithAddresses(svc, net)).find((t) => t.node.n !== 2);
      expect(target, `a task of ${svc} off node 2: ${await servicePs(svc)}`).toBeDefined();
      const run = await dockerOn(NODES[1], ["run", "--rm", "--network", net, SWARM_IMAGE, "sh", "-c", `ping -c 1 -W 2 ${target?.addr ?? "?"} && nslookup tasks.${svc} 127.0.0.11`], { reject: false, timeoutMs: 60_000 });
      expect(run.exitCode, `${run.stdout}\n${run.stderr}`).toBe(0);
      expect(run.stdout).toContain(target?.addr ?? "?");
    }, 120_000);

    it("a replicated service scaled 1 -> 6 -> 0, updated, then removed: nothing left on any node", async () => {
      const svc = `cs-sw-r-${id}`;
      services.push(svc);
      await createService(svc, 1, ["--replicas", "1", "--network", net]);
      await dockerOn(MANAGER, ["service", "scale", "-d", `${svc}=6`]);
      await waitRunning(svc, 6);
      const tasks = await tasksWithAddresses(svc, net);
      expect(new Set(tasks.map((t) => t.addr)).size, JSON.stringify(tasks.map((t) => [t.node.name, t.addr]))).toBe(6);
      for (const t of tasks) expect(inRange(t.addr, range(1, t.node)), `${t.node.name}: ${t.addr}`).toBe(true);
      await dockerOn(MANAGER, ["service", "update", "-d", "--force", svc]);
      await waitRunning(svc, 6, 120_000);
      await dockerOn(MANAGER, ["service", "scale", "-d", `${svc}=0`]);
      await waitRunning(svc, 0);
    }, 300_000);

    it("a worker's dockerd killed -9: its task runs on the others; back, it holds none of the service's", async () => {
      const svc = `cs-sw-k-${id}`;
      services.push(svc);
      await createService(svc, 3, ["--replicas", "3", "--network", net]);
      const victim = NODES[2];
      await harness(["kill", String(victim.n)]);
      try {
        // The manager sees the node down and starts its task on nodes 1 and 2.
        await waitFor(
          "3 tasks running off the killed node",
          async () => {
            const lines = (await servicePs(svc)).split("\n").filter((l) => / Running Running /.test(l) && !l.startsWith(`${victim.name} `));
            return lines.length === 3 ? true : undefined;
          },
          120_000,
        ).catch(async (err: Error) => {
          throw new Error(`${err.message}\n${await servicePs(svc)}`, { cause: err });
        });
      } finally {
        await harness(["start", String(victim.n)]);
      }
      // Back, the node learns its task is gone and removes the container.
      await waitFor(`no task of ${svc} on ${victim.name}`, async () => ((await taskContainers(svc)).some((t) => t.node === victim) ? undefined : true), 60_000);
      await waitRunning(svc, 3);
    }, 400_000);

    it("docker network rm on the manager, after the services, leaves nothing on any node", async () => {
      await removeAll(services, [net], [cfg]);
      removed = true;
      expect((await dockerOn(MANAGER, ["network", "ls", "-q", "--filter", `name=${net}`])).stdout).toBe("");
      for (const node of NODES) {
        const extra = leaked(before.get(node.n) ?? [], await nodeSnapshot(node));
        expect(extra, `left on ${node.name}`).toEqual([]);
      }
    }, 300_000);
  });

  describe("cni-shim, the embedded default (a bridge per node)", () => {
    const id = rand();
    const cfg = `cs-sw-dcfg-${id}`;
    const net = `cs-sw-dnet-${id}`;
    const svc = `cs-sw-dg-${id}`;
    const web = `cs-sw-dp-${id}`;
    /** One subnet, a bridge of it on every node: each node hands out its own range. */
    const dRange = (node: SwarmNode) => `10.236.0.${16 * node.n}/28`;
    afterAll(() => removeAll([svc, web], [net], [cfg]), 180_000);

    it("a global dnsrr service: each task in its node's range, tasks.SVC answers all three everywhere", async () => {
      for (const node of NODES) await dockerOn(node, ["network", "create", "--config-only", "--subnet", "10.236.0.0/24", "--ip-range", dRange(node), cfg]);
      await dockerOn(MANAGER, ["network", "create", "-d", DRIVER, "--scope", "swarm", "--config-from", cfg, net]);
      await createService(svc, 3, ["--mode", "global", "--network", net]);
      const tasks = await taskContainers(svc);
      const addrs = await Promise.all(tasks.map((t) => dockerOn(t.node, ["inspect", "--format", `{{(index .NetworkSettings.Networks "${net}").IPAddress}}`, t.container]).then((r) => r.stdout)));
      tasks.forEach((t, i) => expect(addrs[i]?.startsWith("10.236.0.") && Number(addrs[i]?.split(".")[3]) >= 16 * t.node.n && Number(addrs[i]?.split(".")[3]) < 16 * t.node.n + 16, `${t.node.name}: ${addrs[i]}`).toBe(true));
      for (const t of tasks) {
        const out = (await execIn(t, `nslookup tasks.${svc} 127.0.0.11`)).stdout;
        expect([...out.matchAll(/^Address: (10\.236\.\S+)$/gm)].map((m) => m[1]).sort(), `tasks.${svc} from ${t.node.name}`).toEqual([...addrs].sort());
      }
    }, 180_000);

    it("--publish mode=host: the task's port answers on its node's address", async () => {
      const node3 = NODES[2];
      await dockerOn(MANAGER, ["service", "create", "-d", "--init", "--name", web, "--endpoint-mode", "dnsrr", "--network", net, "--constraint", `node.hostname==${node3.name}`, "--publish", "mode=host,target=80,published=18080", SWARM_IMAGE, "httpd", "-f", "-p", "80", "-h", "/www"]);
      await waitRunning(web, 1);
      // From node 1, over the switch, to node 3's eth0.
      let page = "";
      for (let i = 0; i < 25 && !page.includes("cni-shim test page"); i++) {
        page = (await inNode(NODES[0], ["wget", "-q", "-T", "2", "-O", "-", `http://${node3.addr}:18080/`], { reject: false })).stdout;
        if (!page) await new Promise((r) => setTimeout(r, 200));
      }
      expect(page).toContain("cni-shim test page");
    }, 120_000);
  });

  describe("bad input, with an error that names the fix", () => {
    const id = rand();
    it("a cni-shim swarm network without --config-from: refused, or its task rejected, with what to do", async () => {
      const net = `cs-sw-bad-${id}`;
      const svc = `cs-sw-badsvc-${id}`;
      try {
        // Docker itself accepts -o on a swarm network of a local-scope driver: the driver must say.
        const create = await dockerOn(MANAGER, ["network", "create", "-d", DRIVER, "--scope", "swarm", "-o", "cni.network=x", net], { reject: false });
        if (create.failed) return void expect(create.stderr).toMatch(/--config-from/);
        await dockerOn(MANAGER, ["service", "create", "-d", "--init", "--name", svc, "--endpoint-mode", "dnsrr", "--network", net, SWARM_IMAGE, "sleep", "3600"]);
        let ps = "";
        for (let i = 0; i < 100 && !/ Rejected /.test(ps); i++) {
          ps = await servicePs(svc);
          await new Promise((r) => setTimeout(r, 200));
        }
        expect(ps).toMatch(/ Rejected .*--config-from/);
      } finally {
        await removeAll([svc], [net], []);
      }
    }, 120_000);

    it("the plain socket plugin for a swarm network: refused by Docker (managed plugins only)", async () => {
      const cfg = `cs-sw-scfg-${id}`;
      const driver = `cs-sock-${id}`;
      const net = `cs-sw-snet-${id}`;
      // cni-shim serve as a socket plugin in node 1's own /run/docker/plugins.
      const serve = execa("bash", [HARNESS, "run", "1", "--", "env", `CNI_SHIM_SOCKET=/run/docker/plugins/${driver}.sock`, "node", ...SERVE_NODE_FLAGS, CLI, "serve"], { reject: false, all: true });
      try {
        await waitFor("the socket plugin", async () => ((await inNode(MANAGER, ["test", "-S", `/run/docker/plugins/${driver}.sock`], { reject: false })).failed ? undefined : true), 30_000);
        await dockerOn(MANAGER, ["network", "create", "--config-only", "--subnet", "10.234.0.0/24", cfg]);
        const create = await dockerOn(MANAGER, ["network", "create", "-d", driver, "--scope", "swarm", "--config-from", cfg, net], { reject: false });
        if (!create.failed) await dockerOn(MANAGER, ["network", "rm", net], { reject: false });
        expect(create.failed, create.stdout).toBe(true);
        expect(create.stderr).toMatch(/legacy plugin.*not supported in swarm mode/);
        // cni-shim doctor on that node says why, and what to install instead.
        const doctor = await inNode(MANAGER, ["node", CLI, "doctor", "--json", "--socket", `/run/docker/plugins/${driver}.sock`], { reject: false });
        const swarm = (JSON.parse(doctor.stdout) as { checks: Array<{ id: string; status: string; summary: string; fix?: string }> }).checks.find((r) => r.id === "swarm");
        expect(swarm?.status, doctor.stdout).toBe("warn");
        expect(swarm?.summary).toMatch(/only the plain plugin .*not supported in swarm mode/);
        expect(swarm?.fix).toMatch(/docker plugin install --grant-all-permissions --alias/);
      } finally {
        await dockerOn(MANAGER, ["network", "rm", cfg], { reject: false });
        serve.kill("SIGTERM");
        await serve;
      }
    }, 120_000);

    it("a node without the config-only network: its task is rejected there, the others run", async () => {
      const cfg = `cs-sw-bcfg-${id}`;
      const net = `cs-sw-bnet-${id}`;
      const svc = `cs-sw-bsvc-${id}`;
      try {
        // Only nodes 1 and 2 have the config-only network (the embedded default chain, a bridge per node).
        for (const node of NODES.slice(0, 2)) await dockerOn(node, ["network", "create", "--config-only", "--subnet", "10.233.0.0/24", "--ip-range", `10.233.0.${16 * node.n}/28`, cfg]);
        await dockerOn(MANAGER, ["network", "create", "-d", DRIVER, "--scope", "swarm", "--config-from", cfg, net]);
        await dockerOn(MANAGER, ["service", "create", "-d", "--init", "--name", svc, "--mode", "global", "--endpoint-mode", "dnsrr", "--network", net, SWARM_IMAGE, "sleep", "3600"]);
        await waitRunning(svc, 2);
        let ps = "";
        for (let i = 0; i < 50 && !/ Rejected /.test(ps); i++) {
          ps = await servicePs(svc);
          await new Promise((r) => setTimeout(r, 200));
        }
        expect(ps).toMatch(new RegExp(`^${NODES[2].name} \\S+ Rejected .*${cfg}`, "m"));
      } finally {
        await removeAll([svc], [net], [cfg]);
      }
    }, 180_000);
  });

  // Last: every describe above has removed what it made (its afterAll ran).
  describe("after every scenario", () => {
    it("nothing is left on any node", async () => {
      for (const node of NODES) expect(leaked(atStart.get(node.n) ?? [], await nodeSnapshot(node)), `left on ${node.name}`).toEqual([]);
    }, 60_000);
  });
});

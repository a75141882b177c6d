// Docker's SandboxKey as a process opens it (src/host/sandbox-key.ts): the sight of a key from
// what each view showed, the key's directory resolved under another root, and the attach choice
// that a key this process cannot look for leaves the engine's record alone.
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { mkdir, mkdtemp, rm, symlink } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PTRACE_HINT, SandboxKeys, resolveUnder, sightOf, type DockerdLook } from "../../src/host/sandbox-key.js";
import { AttachChoice } from "../../src/driver/attach-choice.js";

const KEY = "/var/run/docker/netns/0123456789ab";
const look = (l: Partial<DockerdLook> & { pid: number }): DockerdLook => ({ keyIsNamespace: false, ...l });

describe("the sight of a sandbox key", () => {
  it("is the key itself where this process sees a namespace there (the plain program)", () => {
    expect(sightOf({ key: KEY, own: true, ownDir: true, dockerds: [] })).toEqual({ kind: "visible", path: KEY });
  });

  it("is dockerd's view of it where only that has the namespace (a managed plugin)", () => {
    const path = `/proc/42/root/run/docker/netns/0123456789ab`;
    const dockerds = [look({ pid: 7, path: "/proc/7/root/x" }), look({ pid: 42, path, keyIsNamespace: true })];
    expect(sightOf({ key: KEY, own: false, ownDir: false, dockerds })).toEqual({ kind: "visible", path });
  });

  it("is missing (the engine makes it later) only where a view that is Docker's has the directory", () => {
    expect(sightOf({ key: KEY, own: false, ownDir: false, dockerds: [look({ pid: 42, path: "/proc/42/root/run/docker/netns/0123456789ab" })] })).toEqual({ kind: "missing" });
    expect(sightOf({ key: KEY, own: false, ownDir: true, dockerds: [] })).toEqual({ kind: "missing" });
    expect(sightOf({ key: KEY, own: false, ownDir: true, dockerds: [look({ pid: 42 })] })).toEqual({ kind: "missing" });
  });

  it("is unseen, and says what is missing, where dockerd's view is closed or nowhere has the directory", () => {
    const closed = sightOf({ key: KEY, own: false, ownDir: true, dockerds: [1, 2, 3].map((pid) => look({ pid, error: `/proc/${pid}/root: EACCES` })) });
    expect(closed).toMatchObject({ kind: "unseen" });
    const why = (closed as { why: string }).why;
    expect(why).toContain("/proc/1/root: EACCES; /proc/2/root: EACCES and 1 more");
    expect(why).toContain(PTRACE_HINT);
    expect(sightOf({ key: KEY, own: false, ownDir: false, dockerds: [] })).toMatchObject({ kind: "unseen", why: expect.stringContaining("no dockerd process is in sight") as string });
    expect(sightOf({ key: KEY, own: false, ownDir: false, dockerds: [look({ pid: 42 })] })).toMatchObject({ kind: "unseen", why: expect.stringContaining("in no dockerd's view (pids 42)") as string });
  });
});

describe("the key's directory under dockerd's root", () => {
  let root: string;
  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), "cni-shim-root-"));
    await mkdir(join(root, "run/docker/netns"), { recursive: true });
    await mkdir(join(root, "var"));
    await mkdir(join(root, "srv/a"), { recursive: true });
    await symlink("/run", join(root, "var/run")); // absolute: that root's /run, not this process's
    await symlink("../../run/docker", join(root, "srv/a/docker")); // relative
  });
  afterEach(() => rm(root, { recursive: true, force: true }));

  it("follows symlinks as that root sees them", async () => {
    expect(await resolveUnder(root, "/var/run/docker/netns")).toBe(`${root}/run/docker/netns`);
    expect(await resolveUnder(root, "/srv/a/docker/netns")).toBe(`${root}/run/docker/netns`);
    expect(await resolveUnder(root, "/srv/a/../../run/docker/netns")).toBe(`${root}/run/docker/netns`);
  });

  it("is undefined where a component is missing", async () => {
    expect(await resolveUnder(root, "/var/run/docker/other")).toBeUndefined();
    expect(await resolveUnder(root, "/nowhere/netns")).toBeUndefined();
  });

  it("finds the key through a dockerd's view, asking each dockerd found", async () => {
    const asked: number[] = [];
    const keys = new SandboxKeys(
      () => Promise.resolve([7, 42]),
      (pid) => {
        asked.push(pid);
        return Promise.resolve(pid === 7 ? look({ pid, error: "/proc/7/root: EACCES" }) : look({ pid, path: `${root}/run/docker/netns/x` }));
      },
    );
    expect(await keys.sight(`${root}/nowhere/netns/x`)).toEqual({ kind: "missing" });
    expect(asked).toEqual([7, 42]);
  });
});

describe("the attach choice and keys this process cannot look for", () => {
  let dir: string;
  beforeEach(async () => (dir = await mkdtemp(join(tmpdir(), "cni-shim-choice-"))));
  afterEach(() => rm(dir, { recursive: true, force: true }));

  it("takes the hand-out in this process only, keeps why for doctor, and never counts the engine as late", async () => {
    const c = new AttachChoice("auto", dir);
    await c.setEngine("28.5.2");
    c.observe({ kind: "unseen", why: "dockerd's view is closed" });
    expect(c.decide()).toMatchObject({ kind: "staging-handoff", joinsWithout: 0 });
    await new Promise((r) => setTimeout(r, 50)); // written in the background
    const restarted = new AttachChoice("auto", dir);
    await restarted.load();
    expect(restarted.decide()).toMatchObject({ kind: "in-sandbox", joinsWithout: 0 });
    expect((await restarted.sandboxKeys()).unseen).toMatchObject({ joins: 1, why: "dockerd's view is closed" });
    restarted.observe({ kind: "visible" });
    await new Promise((r) => setTimeout(r, 50));
    expect((await new AttachChoice("auto", dir).sandboxKeys()).unseen).toBeUndefined();
  });

  it("takes the hand-out from the start when serve finds dockerd's view closed, until a Join sees a namespace", async () => {
    const c = new AttachChoice("auto", dir);
    await c.setEngine("28.5.2");
    await c.setOpens({ open: false, how: "as given only: closed" });
    expect(c.decide()).toMatchObject({ kind: "staging-handoff", why: expect.stringContaining("as given only: closed") as string });
    expect((await new AttachChoice("auto", dir).sandboxKeys()).opens).toEqual({ open: false, how: "as given only: closed" });
    c.observe({ kind: "visible" });
    expect(c.decide().kind).toBe("in-sandbox");
  });
});

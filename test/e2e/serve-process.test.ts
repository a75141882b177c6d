// The `cni-shim serve` process itself: socket permissions, clean shutdown, stale socket.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { stat } from "node:fs/promises";
import { cleanup, pluginCall, requirePrerequisites, startPlugin, type PluginHandle } from "../helpers/e2e.js";

describe("cni-shim serve", () => {
  let plugin: PluginHandle;

  beforeAll(async () => {
    await requirePrerequisites();
    plugin = await startPlugin();
  });
  afterAll(async () => {
    await cleanup([], [], plugin);
  });

  it("listens on an owner-only socket and answers Docker's activation", async () => {
    const st = await stat(plugin.socket);
    expect(st.isSocket()).toBe(true);
    expect(st.mode & 0o777).toBe(0o600);
    expect(await pluginCall(plugin.socket, "/Plugin.Activate")).toEqual({ status: 200, body: '{"Implements":["NetworkDriver"]}' });
  });

  it("removes its socket on SIGTERM and exits cleanly", async () => {
    expect(await plugin.stop("SIGTERM")).toBe(0);
    await expect(stat(plugin.socket)).rejects.toMatchObject({ code: "ENOENT" });
    expect(plugin.logs()).toContain('"msg":"shutting down","signal":"SIGTERM"');
  });

  it("replaces the stale socket a killed instance left", async () => {
    await plugin.start();
    await plugin.stop("SIGKILL");
    expect((await stat(plugin.socket)).isSocket()).toBe(true); // left behind
    await plugin.start();
    expect((await pluginCall(plugin.socket, "/NetworkDriver.GetCapabilities")).status).toBe(200);
    expect(plugin.logs()).toContain("replaced stale socket");
  });
});

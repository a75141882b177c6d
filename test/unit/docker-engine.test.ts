// What doctor says about the Docker engine: its version (or API version) decides whether the
// container's network namespace exists at Join. Pure: GET /version's fields to the check result.
import { describe, expect, it } from "vitest";
import { inspect } from "node:util";
import { dockerEngineCheck, parseApiVersion, parseEngineVersion } from "../../src/doctor/docker-engine.js";

const SOCK = "/run/docker-test.sock";

describe("parseEngineVersion / parseApiVersion", () => {
  it("reads major and minor of release, distribution and -ce versions, and nothing else", () => {
    expect(parseEngineVersion("20.10.24+dfsg1")).toEqual([20, 10]);
    expect(parseEngineVersion("26.1.5+dfsg1")).toEqual([26, 1]);
    expect(parseEngineVersion("28.5.2")).toEqual([28, 5]);
    expect(parseEngineVersion("v29.0.0")).toEqual([29, 0]);
    expect(parseEngineVersion("17.06.0-ce")).toEqual([17, 6]);
    expect(parseEngineVersion("20.10")).toEqual([20, 10]);
    for (const bad of ["", "dev", "master", "20", "20.x", "a20.10", "20.10abc", undefined, null, 20.1, {}]) expect(parseEngineVersion(bad), inspect(bad)).toBeUndefined();
    expect(parseApiVersion("1.41")).toBe(41);
    for (const bad of ["", "2.0", "1.41.0", "v1.41", undefined, 1.41]) expect(parseApiVersion(bad), inspect(bad)).toBeUndefined();
  });
});

describe("dockerEngineCheck", () => {
  it("Docker 20.10 to 27: no namespace at Join, the staging handoff", () => {
    for (const [version, api] of [
      ["20.10.24+dfsg1", "1.41"],
      ["26.1.5+dfsg1", "1.45"],
      ["27.5.1", "1.47"],
    ]) {
      const r = dockerEngineCheck(version, api, SOCK);
      expect(r).toMatchObject({ id: "docker", group: "cni-shim", status: "pass", details: { joinNetns: "absent", version, apiVersion: api, socket: SOCK } });
      expect(r.summary).toBe(`Docker ${version} (API ${api}) answers on ${SOCK}: the container's network namespace does not exist yet at Join, so cni-shim runs the chain in a staging namespace and hands the interface over`);
      expect(r.fix).toBeUndefined();
    }
  });

  it("Docker 28 and later: the namespace exists at Join, so the chain can run in it", () => {
    for (const [version, api] of [
      ["28.0.0", "1.48"],
      ["28.5.2", "1.51"],
      ["29.0.0", "1.52"],
    ] as const) {
      const r = dockerEngineCheck(version, api, SOCK);
      expect(r).toMatchObject({ status: "pass", details: { joinNetns: "present" } });
      expect(r.summary).toMatch(new RegExp(`^Docker ${version.replace(/\./g, "\\.")} \\(API ${api.replace(".", "\\.")}\\) answers on ${SOCK}: the container's network namespace exists at Join, so cni-shim can run the chain in it`));
    }
  });

  it("warns about an engine older than 20.10: not tested", () => {
    for (const [version, api] of [
      ["19.03.15", "1.40"],
      ["1.13.1", "1.26"],
    ]) {
      const r = dockerEngineCheck(version, api, SOCK);
      expect(r.status).toBe("warn");
      expect(r.summary).toBe(`Docker ${version} (API ${api}) answers on ${SOCK}, but it is older than Docker 20.10: cni-shim is not tested with it`);
      expect(r.fix).toMatch(/Docker 20\.10 or later/);
    }
  });

  it("judges an unreadable version by the API version, and warns when neither reads", () => {
    const byApi = dockerEngineCheck("custom-build", "1.49", SOCK);
    expect(byApi).toMatchObject({ status: "pass", details: { joinNetns: "present" } });
    expect(byApi.summary).toContain("(judged by its API version: the engine version does not parse)");
    expect(dockerEngineCheck("", "1.41", SOCK)).toMatchObject({ status: "pass", details: { joinNetns: "absent" } });
    expect(dockerEngineCheck("garbage", "1.40", SOCK).status).toBe("warn");
    for (const [version, api] of [
      ["garbage", "also garbage"],
      [undefined, undefined],
      [42, { x: 1 }],
    ] as const) {
      const r = dockerEngineCheck(version, api, SOCK);
      expect(r.status).toBe("warn");
      expect(r.summary).toMatch(/its version does not parse: whether the container's network namespace exists at Join is unknown$/);
      expect(r.fix).toBeTruthy();
    }
    expect(dockerEngineCheck(undefined, undefined, SOCK).summary).toMatch(/^Docker \(no version\) \(API unknown\) answers on/);
  });
});

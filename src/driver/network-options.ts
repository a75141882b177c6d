// CreateNetwork's `-o key=value` options, read and checked (pure).
import * as api from "../libnetwork/schemas.js";
import { TranslationError } from "./translation-error.js";

export interface NetworkOptions {
  cniNetwork?: string;
  bridge?: string;
  mtu?: number;
  internal: boolean;
  enableIPv6: boolean;
}

/** The `-o key=value` options of `docker network create` (Docker passes them as strings). */
export function networkOptions(req: api.CreateNetworkRequest): NetworkOptions {
  const generic = genericOptions(req);
  const str = (key: string): string | undefined => {
    const v = generic[key];
    if (v === undefined || v === null) return undefined;
    if (typeof v !== "string") throw new TranslationError(`option ${key} must be a string`);
    // `-o cni.network=` would silently mean "the default config": say so instead.
    if (v.trim() === "") throw new TranslationError(`-o ${key}= has an empty value: give it a value (-o ${key}=...) or leave the option out`);
    return v;
  };
  const known = new Set<string>(Object.values(api.SHIM_OPT));
  const unknownShim = Object.keys(generic).filter((k) => k.startsWith("cni.") && !known.has(k));
  if (unknownShim.length) {
    throw new TranslationError(`unknown option ${unknownShim.join(", ")}: cni-shim understands ${[...known].map((k) => `-o ${k}=...`).join(", ")}`);
  }
  const cniNetwork = str(api.SHIM_OPT.network);
  if (cniNetwork !== undefined && (!/^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/.test(cniNetwork) || cniNetwork.includes(".."))) {
    throw new TranslationError(`-o ${api.SHIM_OPT.network}="${cniNetwork}" is not a CNI network name: give the "name" of a conflist in the conf dir, not a path`);
  }
  const bridge = str(api.SHIM_OPT.bridge);
  if (bridge !== undefined && (bridge.length > 15 || !/^[a-zA-Z0-9_.-]+$/.test(bridge))) {
    throw new TranslationError(`-o ${api.SHIM_OPT.bridge}="${bridge}" is not a valid interface name (at most 15 letters, digits, '_', '.', '-')`);
  }
  const mtu = parseMtu(str(api.SHIM_OPT.mtu));
  if (cniNetwork && (bridge || mtu)) {
    throw new TranslationError(`-o ${api.SHIM_OPT.bridge} and -o ${api.SHIM_OPT.mtu} apply to the embedded default config only; with -o ${api.SHIM_OPT.network} edit the conflist instead`);
  }
  return { cniNetwork, bridge, mtu, internal: req.Options[api.OPT.internal] === true, enableIPv6: req.Options[api.OPT.enableIPv6] === true };
}

function genericOptions(req: api.CreateNetworkRequest): Record<string, unknown> {
  const rawGeneric = req.Options[api.OPT.generic] ?? {};
  // Docker always sends an object here; anything else would hide the cni.* options from us.
  if (typeof rawGeneric !== "object" || Array.isArray(rawGeneric)) {
    throw new TranslationError(`${api.OPT.generic} must be an object of -o key=value options, not ${Array.isArray(rawGeneric) ? "a list" : typeof rawGeneric}`);
  }
  return rawGeneric as Record<string, unknown>;
}

function parseMtu(mtuText: string | undefined): number | undefined {
  if (mtuText === undefined) return undefined;
  const mtu = /^\d+$/.test(mtuText) ? Number(mtuText) : NaN;
  if (!Number.isInteger(mtu) || mtu < 576 || mtu > 65535) throw new TranslationError(`-o ${api.SHIM_OPT.mtu}="${mtuText}" must be a whole number between 576 and 65535`);
  return mtu;
}

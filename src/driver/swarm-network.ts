// What a swarm network's CreateNetwork must carry (pure). Swarm keeps no settings for a network
// of a local-scope driver: each node's come from its own config-only network (--config-from).
import * as api from "../libnetwork/schemas.js";
import { TranslationError } from "./translation-error.js";

/**
 * A swarm network made without --config-from: refused, since every node would pick its own pool
 * from Docker's local defaults (the same one on every node) and tasks' addresses would clash.
 * Docker marks a network built from a config-only one: libnetwork always sets
 * com.docker.network.internal on it (NewNetwork since libnetwork#2414, 2019, so Docker 20.10 too;
 * applyConfigurationTo on 28), which a plain network carries only when it is --internal (seen on
 * Docker 28.5: test/fixtures/libnetwork-swarm-28.5).
 */
export function checkSwarmNetwork(req: api.CreateNetworkRequest): void {
  if (!api.isSwarmNetworkId(req.NetworkID) || api.OPT.internal in req.Options) return;
  throw new TranslationError(
    `swarm network ${req.NetworkID} was created without --config-from: cni-shim takes each node's settings from a config-only network. ` +
      `On every node: docker network create --config-only [-o cni.network=NAME] [--subnet S --gateway G --ip-range NODE-RANGE] CFG; ` +
      `then on a manager: docker network rm NET; docker network create -d cni-shim:latest --scope swarm --config-from CFG [--attachable] NET`,
  );
}

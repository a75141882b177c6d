# The root filesystem of the managed Docker plugin (see plugin-config/config.json): the built
# project, a Node runtime, the CNI reference plugins, iptables and iproute2.
#
#   make plugin                      # build, export the rootfs, docker plugin create cni-shim
#   docker build -t cni-shim-rootfs .   # the image alone (context: this directory)
#
# BASE must be a Debian-based image with Node 20+ on PATH (default: the official slim image).
# Without a registry, build a local base with scripts/plugin-base.sh, which already contains
# the packages, and pass INSTALL_PACKAGES=0 so that nothing is downloaded during the build:
#   make plugin BASE=cni-shim-base:local INSTALL_PACKAGES=0
ARG BASE=node:20-bookworm-slim

FROM ${BASE} AS build
# Lets scripts/build-plugin.sh remove this stage's leftover image (the classic builder keeps it).
LABEL cni-shim.stage=build
WORKDIR /src
# node_modules comes from the build context (make runs `npm ci`), so this stage needs no network.
COPY package.json package-lock.json tsconfig.json ./
COPY node_modules ./node_modules
COPY src ./src
RUN node node_modules/typescript/bin/tsc -p tsconfig.json \
 && npm prune --omit=dev --offline --no-audit --no-fund

FROM ${BASE}
ARG INSTALL_PACKAGES=1
RUN set -e; \
    if [ "$INSTALL_PACKAGES" = 1 ]; then \
      apt-get update; \
      apt-get install -y --no-install-recommends iptables iproute2 containernetworking-plugins; \
      rm -rf /var/lib/apt/lists/*; \
    fi; \
    for tool in node ip iptables iptables-save perl; do \
      command -v "$tool" >/dev/null || { echo "base image lacks $tool (INSTALL_PACKAGES=1 installs it)" >&2; exit 1; }; \
    done; \
    for plugin in bridge host-local portmap firewall tuning loopback; do \
      [ -x "/usr/lib/cni/$plugin" ] || { echo "base image lacks /usr/lib/cni/$plugin (INSTALL_PACKAGES=1 installs it)" >&2; exit 1; }; \
    done
WORKDIR /opt/cni-shim
COPY --from=build /src/package.json /src/package-lock.json ./
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/dist ./dist
COPY plugin-config ./plugin-config
COPY packaging/plugin-entrypoint.sh ./plugin-entrypoint.sh
COPY packaging/plugin-host.sh ./plugin-host.sh
COPY packaging/serve-node-flags ./serve-node-flags
ENV CNI_PATH=/opt/cni/bin:/usr/lib/cni
# As a managed plugin, config.json's entrypoint (plugin-entrypoint.sh serve) is used; this one
# is for running the image directly, e.g. docker run --rm IMAGE doctor --help.
ENTRYPOINT ["node", "/opt/cni-shim/dist/cli/main.js"]
CMD ["serve"]

# The two commands of the README: `make run` and `make test`. Both install what is missing.
SHELL := /bin/bash
NODE_MODULES_STAMP := node_modules/.package-lock.json
TEST_IMAGE ?= cni-shim-busybox:latest

.PHONY: all deps cni-plugins build run test test-engines test-swarm lint test-unit lint bench soak clean image plugin plugin-base plugin-local plugin-push install uninstall

all: build

deps:
	@bash scripts/install-deps.sh

$(NODE_MODULES_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund
	@touch $@

# src to dist/, then scripts/*.ts (soak, fuzz, bench) to dist/scripts/ (tsconfig.scripts.json).
build: $(NODE_MODULES_STAMP)
	npx tsc -p tsconfig.json
	npx tsc -p tsconfig.scripts.json

docker-up: deps
	@bash scripts/ensure-dockerd.sh

image: docker-up
	@bash scripts/test-image.sh $(TEST_IMAGE)

run: deps build docker-up
	@mkdir -p /etc/cni/net.d # the conf dir -o cni.network=NAME searches (the quick start copies a list there)
	node $$(cat packaging/serve-node-flags) dist/cli/main.js serve

# shellcheck (Debian's, make deps installs it) on every tracked .sh: zero findings.
SHELLCHECK = git ls-files -z '*.sh' | xargs -0 shellcheck

# Everything on the system's Docker 20.10, the driver's scenarios on Docker 26.1 and 28.5
# (scripts/engine.sh runs them beside it), and a summary per engine (scripts/test-matrix.sh).
# ENGINES="20 28" runs fewer engines.
# The CNI plugin sets the tests run on: the system's 1.1.1 and Debian sid's 1.9.1 (scripts/cni-plugins.sh).
cni-plugins: deps
	@bash scripts/cni-plugins.sh fetch 1.9 >/dev/null

test: deps cni-plugins build
	npx tsc -p tsconfig.test.json
	npx eslint .
	npx knip
	$(SHELLCHECK)
	CNI_SHIM_TEST_IMAGE=$(TEST_IMAGE) bash scripts/test-matrix.sh

# The heavier rest of the engine matrix on Docker 26.1 and 28.5: a dockerd crash, one compare, the
# short soak on 26.1 and the parity matrix on 28.5 (make test runs them on 20.10). CI runs it after make test.
test-engines: deps cni-plugins build
	CNI_SHIM_TEST_IMAGE=$(TEST_IMAGE) SUITE=engines bash scripts/test-matrix.sh

# Swarm services on cni-shim networks (test/e2e/swarm.test.ts) on a 3-node swarm of Docker 28.5
# in namespaces (scripts/swarm.sh: up, the managed plugin pushed to the swarm's registry and
# installed on every node, the tests, then down). CI runs it after test-engines.
test-swarm: deps build plugin-base
	bash scripts/swarm.sh with -- npx vitest run test/e2e/swarm.test.ts

test-unit: build
	npx vitest run test/unit

# Type-aware ESLint (eslint.config.js), knip (knip.json: unused files, exports, dependencies) and
# shellcheck on every tracked .sh; `make test` runs them all and fails on any finding.
lint: $(NODE_MODULES_STAMP)
	npx eslint .
	npx knip
	$(SHELLCHECK)

# Figures, no assertions (scripts/bench.ts): Docker's bridge, cni-shim and podman + CNI on the same
# chain; installs podman when missing. BENCH_ARGS sets the rounds (default 11), e.g. BENCH_ARGS=5.
BENCH_ARGS ?=
# ENGINE=28 (or 26) runs it against that engine (scripts/engine.sh), 20 is the system's dockerd.
ENGINE ?= 20
bench: deps build
	@bash scripts/install-bench-deps.sh
	CNI_SHIM_TEST_IMAGE=$(TEST_IMAGE) bash scripts/engine.sh with $(ENGINE) -- node dist/scripts/bench.js $(BENCH_ARGS)

# Fault injection (scripts/soak.ts): kill -9 of the plugin in both teardown modes, dockerd
# kill -9, a simulated reboot, a request fuzzer. SOAK_ARGS shortens it, e.g. --cycles 20;
# ENGINE=28 runs it against Docker 28.5 (as for bench); SOAK_ARGS="--ipam null" on null-IPAM networks.
SOAK_ARGS ?=
soak: deps build
	CNI_SHIM_TEST_IMAGE=$(TEST_IMAGE) bash scripts/engine.sh with $(ENGINE) -- node dist/scripts/soak.js $(SOAK_ARGS)

# The managed plugin (docker plugin create $(PLUGIN_NAME)); then: docker plugin enable $(PLUGIN_NAME).
# BASE/INSTALL_PACKAGES go to the Dockerfile; without a registry use `make plugin-local`.
PLUGIN_NAME ?= cni-shim
BASE ?=
INSTALL_PACKAGES ?=
LOCAL_BASE ?= cni-shim-base:local
DOCKER ?= docker

plugin: deps $(NODE_MODULES_STAMP) docker-up
	PLUGIN_NAME='$(PLUGIN_NAME)' BASE='$(BASE)' INSTALL_PACKAGES='$(INSTALL_PACKAGES)' DOCKER='$(DOCKER)' bash scripts/build-plugin.sh

# A base image built from this machine's Debian mirror and Node (scripts/plugin-base.sh).
plugin-base: deps docker-up
	DOCKER='$(DOCKER)' bash scripts/plugin-base.sh $(LOCAL_BASE)

plugin-local: plugin-base
	$(MAKE) plugin BASE=$(LOCAL_BASE) INSTALL_PACKAGES=0

# Build and `docker plugin push` REGISTRY/cni-shim:TAG (scripts/push-plugin.sh); TAG defaults to
# package.json's version. Elsewhere: docker plugin install --grant-all-permissions --alias cni-shim REGISTRY/cni-shim:TAG.
# Without an image registry for the base: make plugin-base, then BASE=$(LOCAL_BASE) INSTALL_PACKAGES=0.
REGISTRY ?=
TAG ?=
plugin-push: deps $(NODE_MODULES_STAMP) docker-up
	REGISTRY='$(REGISTRY)' TAG='$(TAG)' BASE='$(BASE)' INSTALL_PACKAGES='$(INSTALL_PACKAGES)' DOCKER='$(DOCKER)' bash scripts/push-plugin.sh

# A plain install with a systemd unit (scripts/install.sh); DESTDIR stages it.
PREFIX ?= /usr/local
DESTDIR ?=

install: build
	DESTDIR='$(DESTDIR)' PREFIX='$(PREFIX)' bash scripts/install.sh install

uninstall:
	DESTDIR='$(DESTDIR)' PREFIX='$(PREFIX)' bash scripts/install.sh uninstall

clean:
	rm -rf dist build

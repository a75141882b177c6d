# The two commands of the README: `make run` and `make test`. Both install what is missing.
SHELL := /bin/bash
NODE_MODULES_STAMP := node_modules/.package-lock.json
TEST_IMAGE ?= cni-shim-busybox:latest

.PHONY: all deps build run test test-unit bench clean image

all: build

deps:
	@bash scripts/install-deps.sh

$(NODE_MODULES_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund
	@touch $@

build: $(NODE_MODULES_STAMP)
	npx tsc -p tsconfig.json

docker-up: deps
	@bash scripts/ensure-dockerd.sh

image: docker-up
	@bash scripts/test-image.sh $(TEST_IMAGE)

run: deps build docker-up
	node dist/cli/main.js serve

test: deps build image
	CNI_SHIM_TEST_IMAGE=$(TEST_IMAGE) npx vitest run

test-unit: build
	npx vitest run test/unit

bench: deps build image
	CNI_SHIM_TEST_IMAGE=$(TEST_IMAGE) node scripts/bench.mjs

clean:
	rm -rf dist

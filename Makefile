# conveyor.deploy: the two commands are `make demo` and `make test`.
SHELL := /bin/bash
VENV := .venv
BIN := $(VENV)/bin
export PATH := $(CURDIR)/$(BIN):$(PATH)
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg
export ANSIBLE_COLLECTIONS_PATH := $(CURDIR)/collections
export ANSIBLE_FORCE_COLOR := 0
export PY_COLORS := 0
LAB_HOSTS ?= 4
VERSION := $(shell sed -n 's/^version: *//p' galaxy.yml)
RELEASE_DIR := build/release/ansible_collections/conveyor/deploy
TARBALL := build/conveyor-deploy-$(VERSION).tar.gz
# The end-to-end files build on each other's fleet state, in this order.
E2E_FILES := tests/e2e/test_environment.py tests/e2e/test_rollback.py tests/e2e/test_rolling.py \
             tests/e2e/test_changelog.py tests/e2e/test_governance.py tests/e2e/test_reliability.py \
             tests/e2e/test_real_apps.py

.PHONY: help bootstrap lab-up lab-down lab-status demo test unit sanity lint molecule e2e bench build ee clean

help:
	@echo "make demo       bootstrap, bring the lab up, show the fleet and run the demo deployments"
	@echo "make test       everything CI checks (unit, sanity, lint, molecule, end-to-end)"
	@echo "make bench      benchmarks (deploy and rollback wall times, module executions)"
	@echo "make lab-up     start the lab (LAB_HOSTS=$(LAB_HOSTS)); make lab-down removes it"

bootstrap:
	@bash lab/bootstrap.sh

lab-up: bootstrap
	@$(BIN)/python lab/lab.py up --hosts $(LAB_HOSTS)

lab-down:
	@python3 lab/lab.py down

lab-status:
	@python3 lab/lab.py status

demo: lab-up
	@bash lab/demo.sh

unit: bootstrap
	$(BIN)/pytest -q tests/unit

sanity: bootstrap
	@bash tests/sanity/run.sh

lint: bootstrap
	$(BIN)/ansible-lint --profile production

molecule: bootstrap
	@bash molecule/run-all.sh

e2e: bootstrap
	$(BIN)/pytest -q -p no:cacheprovider --durations=15 $(E2E_FILES)

bench: lab-up
	@$(BIN)/python tests/bench/bench.py

# The collection is built from a copy of the checkout in which antsibull-changelog has released
# $(VERSION) (CHANGELOG.rst, changelogs/changelog.yaml), so the checkout's fragments stay as they are.
# Then the execution environment's build context (ansible-builder create, no image: no registry is
# reachable here) and tests/build check the tarball installed elsewhere and the context.
build: bootstrap
	@rm -rf build/release build/conveyor-deploy-*.tar.gz && bash tests/copy-tree.sh --collection $(RELEASE_DIR)
	cd $(RELEASE_DIR) && $(CURDIR)/$(BIN)/antsibull-changelog release --version $(VERSION)
	$(BIN)/ansible-galaxy collection build --force --output-path build $(RELEASE_DIR)
	@! tar tzf $(TARBALL) | grep -E '^(lab|tests|molecule|\.ci|inventories/lab)/|vault' \
	  || { echo "build: the collection tarball carries files it must not ship (above)"; exit 1; }
	@echo "build: $(TARBALL) ships no lab, tests, molecule or vault files"
	@$(MAKE) --no-print-directory ee
	$(BIN)/pytest -q -p no:cacheprovider tests/build

# The execution environment's build context in build/ee; `podman build -t conveyor-ee build/ee` makes the image.
ee:
	@test -f $(TARBALL) || { echo "ee: no $(TARBALL): run make build"; exit 1; }
	@rm -rf build/ee build/ee-collection && mkdir -p build/ee-collection
	cp $(TARBALL) build/ee-collection/conveyor-deploy.tar.gz
	$(BIN)/ansible-builder create -f execution-environment.yml -c build/ee --output-filename Containerfile

test: bootstrap unit sanity lint molecule e2e build
	@echo "make test: all checks passed"

clean: lab-down
	rm -rf build .cache /tmp/conveyor-sanity

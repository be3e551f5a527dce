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
# The support matrix: the older ansible-core releases that install on Python 3.11 (.venv has 2.19).
MATRIX := 2.17.14 2.18.19
# The end-to-end files build on each other's fleet state, in this order.
E2E_FILES := tests/e2e/test_environment.py tests/e2e/test_rollback.py tests/e2e/test_rolling.py \
             tests/e2e/test_changelog.py tests/e2e/test_governance.py tests/e2e/test_interrupts.py \
             tests/e2e/test_faults.py tests/e2e/test_awx_runner.py \
             tests/e2e/test_reliability.py \
             tests/e2e/test_real_apps.py tests/e2e/test_migrations.py tests/e2e/test_hooks.py \
             tests/e2e/test_maintenance.py tests/e2e/test_loadbalancer.py \
             tests/e2e/test_several_apps.py tests/e2e/test_progressive.py

.PHONY: help bootstrap lab-up lab-down lab-status demo test unit sanity lint molecule e2e bench build ee matrix clean

help:
	@echo "make demo       bootstrap, bring the lab up, show the fleet and run the demo deployments"
	@echo "make test       everything CI checks (unit, sanity, lint, molecule, end-to-end)"
	@echo "make matrix     unit and sanity tests on ansible-core $(MATRIX)"
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

# Unit tests and the version-sensitive sanity tests on each older ansible-core, each in its own .venv-<version>.
matrix: bootstrap
	@set -e; for v in $(MATRIX); do \
	  if [ ! -x .venv-$$v/bin/ansible-test ]; then \
	    echo "matrix: creating .venv-$$v"; python3 -m venv .venv-$$v; \
	    .venv-$$v/bin/pip install -q --disable-pip-version-check ansible-core==$$v pytest==9.2.0 jmespath==1.1.0 tzdata==2026.6; \
	  fi; \
	  echo "matrix: ansible-core $$v: unit"; \
	  PATH=$(CURDIR)/.venv-$$v/bin:$$PATH .venv-$$v/bin/pytest -q -p no:cacheprovider tests/unit; \
	  echo "matrix: ansible-core $$v: sanity (compile, import, validate-modules, runtime-metadata)"; \
	  CONVEYOR_SANITY_VENV=$(CURDIR)/.venv-$$v CONVEYOR_SANITY_DIR=/tmp/conveyor-sanity-$$v bash tests/sanity/run.sh \
	    --test compile --test import --test validate-modules --test runtime-metadata; \
	done

test: bootstrap unit sanity lint matrix molecule e2e build
	@echo "make test: all checks passed"

clean: lab-down
	rm -rf build .cache /tmp/conveyor-sanity

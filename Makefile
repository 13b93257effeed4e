# pgha.cluster: build and test entry points.
#
#   make test      every test tier, in order (what CI runs)
#   make demo      local demo cluster
#   make help      all targets
#
# Requires GNU make and bash; `make test` installs everything else it needs.

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help
MAKEFLAGS += --no-print-directory

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Rebuilt when a requirements file is newer than this stamp.
VENV_STAMP := $(VENV)/.pgha-requirements.stamp
REQUIREMENTS := requirements.txt requirements-dev.txt
# Patroni for the integration tests, in a venv of its own so that its
# dependency pins never disturb ansible/molecule in $(VENV).
PATRONI_VENV := .venv-patroni
PATRONI_VENV_STAMP := $(PATRONI_VENV)/.pgha-requirements.stamp
# Patroni runs as the postgres user, which must be able to run this
# interpreter and read its standard library: Debian's python3, not one under
# root's home (pyenv).
PATRONI_PYTHON ?= /usr/bin/python3

PYTEST_ARGS ?=
PYTEST = $(BIN)/python -m pytest -ra -p no:cacheprovider$(if $(PYTEST_ARGS), $(PYTEST_ARGS))

# etcd3 (the tests' second, independent etcd client) ships protobuf code that
# only loads under protobuf >= 4 with the pure-Python backend.
export PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION := python

TIERS := units integration sanity lint build changelog-lint molecule

.PHONY: help test demo venv venv-patroni system-deps clean $(TIERS)

help:
	@echo 'make test            system-deps, venv, then every tier: $(TIERS) (integration beside molecule)'
	@echo 'make demo            local demo cluster: 3 database hosts and a load balancer in containers'
	@echo 'make demo-status / demo-switchover / demo-inventory / demo-down   look at it, switch over, remove it'
	@echo 'make system-deps     Debian packages (tests/setup/system-deps.sh) and a running dockerd'
	@echo 'make venv            $(VENV) from $(REQUIREMENTS)'
	@echo 'make venv-patroni    $(PATRONI_VENV) from requirements-patroni.txt (integration tests)'
	@echo 'make units           pytest tests/unit'
	@echo 'make integration     pytest tests/integration (real etcd and HAProxy)'
	@echo 'make sanity          ansible-test sanity'
	@echo 'make lint            ansible-lint'
	@echo 'make build           build the collection, install it offline, check the result'
	@echo 'make changelog-lint  antsibull-changelog lint'
	@echo 'make molecule        Molecule scenarios etcd, patroni and default (builds the test image first: make image)'
	@echo 'make molecule-default  Molecule default scenario: the whole stack as in the demo'
	@echo 'make molecule-converge-patroni / molecule-destroy-patroni  keep the patroni scenario up / remove it'
	@echo 'make bench-lb        LB convergence, agent vs checks only (needs molecule-converge-patroni)'
	@echo 'make clean           remove build and test output (keeps $(VENV))'

# tests/setup/test-all.sh runs the setup steps and the fast tiers one after
# another, then the integration tier beside the Molecule tier; the first
# failing fast tier stops the run.
test:
	tests/setup/test-all.sh

# The demo cluster is the Molecule default scenario (molecule/default/demo.py
# says how); its CA and generated secrets live in .demo/ (git-ignored).
DEMO = $(PYTHON) molecule/default/demo.py
.PHONY: demo-status demo-switchover demo-inventory demo-down
demo:
	@echo '=== demo: Debian packages and the Docker engine ==='
	@$(MAKE) system-deps
	@$(DEMO) up

demo-status:
	@$(DEMO) status

demo-switchover:
	@$(DEMO) switchover

demo-inventory:
	@$(DEMO) inventory

demo-down:
	@$(DEMO) down

system-deps:
	tests/setup/system-deps.sh
	tests/setup/dockerd.sh

venv: $(VENV_STAMP)

$(VENV_STAMP): $(REQUIREMENTS)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	@touch $@

venv-patroni: $(PATRONI_VENV_STAMP)

$(PATRONI_VENV_STAMP): requirements-patroni.txt roles/patroni/files/requirements.txt
	test -x $(PATRONI_VENV)/bin/python || $(PATRONI_PYTHON) -m venv $(PATRONI_VENV)
	$(PATRONI_VENV)/bin/python -m pip install --quiet -r requirements-patroni.txt
	@touch $@

units: venv
	$(PYTEST) tests/unit

integration: venv venv-patroni
	$(PYTEST) tests/integration

sanity: venv
	VENV=$(VENV) tests/setup/sanity.sh

# ansible-lint finds its helpers (ansible-playbook, ...) through PATH and
# warns when it has to add the venv to PATH itself.
# ansible-lint and Molecule resolve pgha.cluster.* through a collections path
# that points back at this checkout.
COLLECTIONS_LINK := .cache/collections
.PHONY: collection-link
collection-link:
	@mkdir -p $(COLLECTIONS_LINK)/ansible_collections/pgha
	@ln -sfn "$(CURDIR)" $(COLLECTIONS_LINK)/ansible_collections/pgha/cluster

lint: venv collection-link
	PATH="$(CURDIR)/$(BIN):$$PATH" ANSIBLE_COLLECTIONS_PATH="$(CURDIR)/$(COLLECTIONS_LINK)" $(BIN)/ansible-lint --offline

build: venv
	VENV=$(VENV) tests/setup/build.sh

changelog-lint: venv
	$(BIN)/antsibull-changelog lint
	$(BIN)/antsibull-changelog lint-changelog-yaml changelogs/changelog.yaml

clean:
	rm -rf tests/output .pytest_cache bench/output
	find . -path ./$(VENV) -prune -o -name __pycache__ -type d -prune -exec rm -rf {} +
	rm -f *.tar.gz changelogs/.plugin-cache.yaml

# ---------------------------------------------------------------------------
# Test image and Molecule.
# ---------------------------------------------------------------------------

.PHONY: image molecule molecule-default molecule-etcd molecule-patroni

# The systemd test image for Molecule (docs/testing-images.md). The script
# tags the image with a hash of its inputs and returns at once when that tag
# exists, so this only builds when tests/images/ (or the mirror, or the CAs
# the host adds) changed.
image:
	tests/images/build-debian-systemd.sh

# Molecule's helpers (ansible-playbook, ...) are found through PATH. In a
# collection Molecule expects scenarios in extensions/molecule/ and warns
# about molecule/; MOLECULE_GLOB says where this one keeps them.
MOLECULE = PATH="$(CURDIR)/$(BIN):$$PATH" MOLECULE_GLOB='molecule/*/molecule.yml' \
	ANSIBLE_COLLECTIONS_PATH="$(CURDIR)/$(COLLECTIONS_LINK)" $(BIN)/molecule

# `molecule test` destroys its containers after a failure by itself; the trap
# also covers an interrupted run or a Molecule crash.
define molecule_test
	@trap 'echo "molecule: removing the containers of scenario $(1)"; \
	       $(MOLECULE) destroy -s $(1) >/dev/null 2>&1 || true' EXIT; \
	$(MOLECULE) test -s $(1); \
	trap - EXIT
endef

# Its own CA and secrets, apart from the demo's (.demo/).
molecule-default: export PGHA_DEMO_DIR := $(CURDIR)/.cache/molecule-default
molecule-default: venv image collection-link
	$(call molecule_test,default)

molecule-etcd: venv image collection-link
	$(call molecule_test,etcd)

molecule-patroni: venv image collection-link
	$(call molecule_test,patroni)

# A converged patroni scenario that stays up (for bench/lb_convergence.py or
# a look around); `make molecule-destroy-patroni` removes it.
.PHONY: molecule-converge-patroni molecule-destroy-patroni bench-lb
molecule-converge-patroni: venv image collection-link
	$(MOLECULE) converge -s patroni

molecule-destroy-patroni: venv collection-link
	$(MOLECULE) destroy -s patroni

# Load balancer convergence on the converged patroni scenario: the agent vs
# HAProxy's checks alone (bench/README.md).
bench-lb: venv
	$(BIN)/python bench/lb_convergence.py --json bench/output/lb_convergence.json

# The tier `make test` runs: every scenario, one after the other (they share
# the host's two cores); the default one last, since it also kills processes
# and containers.
molecule:
	$(MAKE) molecule-etcd
	$(MAKE) molecule-patroni
	$(MAKE) molecule-default

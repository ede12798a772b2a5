# portable-env: a folder of Python files -> a verified, relocatable conda
# environment tarball.  `make help` lists the targets.
#
# The graph (every artifact a file; see README.md):
#   projects/P/*.py *.ipynb --scan-->   build/P/deps.yml
#   + templates/, project.yml --render-> build/P/KEY/environment.yml
#   --lock-->   projects/P/rattler-lock.yml + conda-PLATFORM.lock (KEY=default)
#               build/P/KEY/...                        (CHANNELS/PYTHON override)
#   --env-->    build/P/KEY/env (+ env.stamp)
#   --pack, verify--> build/P/KEY/P-PLATFORM.tar.gz --publish--> dist/
# KEY is "default", or a hash of the CHANNELS/PYTHON overrides, so a build
# with overrides never touches the project's committed lock.

SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DELETE_ON_ERROR:
.SUFFIXES:
MAKEFLAGS += --no-builtin-rules --warn-undefined-variables
.DEFAULT_GOAL := help

PROJECT ?=
CHANNELS ?=
PYTHON ?=
V ?=

VENV := .venv
TOOLS := $(VENV)/.installed
PKGS ?= build/pkgs
CACHE ?= build/cache
CHANNEL_DIR ?= build/channel
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
export PYTHONDONTWRITEBYTECODE := 1

Q := $(if $(V),,@)
UNAME := $(shell uname -sm)
empty :=
space := $(empty) $(empty)
PLATFORM := $(or $(word 1,$(foreach p,Linux_x86_64:linux-64 Linux_aarch64:linux-aarch64 \
  Darwin_arm64:osx-arm64 Darwin_x86_64:osx-64,$(if $(filter $(subst $(space),_,$(UNAME)),$(word 1,$(subst :, ,$(p)))),$(word 2,$(subst :, ,$(p)))))),unsupported)

PROJECTS := $(sort $(patsubst projects/%/,%,$(wildcard projects/*/)))
PROJECT_GOALS := deps env-file lock check-lock env pack verify manifest installer
define nl


endef
project_hint = $(nl)  projects: $(or $(PROJECTS),none yet: create one with make new PROJECT=<name>)$(nl)  usage: make PROJECT=<name> pack

# scripts/projects holds the project-name rule (letters, digits, . _ -) and
# checks that the project exists.
sh_quote = '$(subst ','\'',$(1))'
PROJECT_OK :=
ifneq ($(strip $(PROJECT)),)
  PROJECT_CHECK := $(shell scripts/projects list -- $(call sh_quote,$(PROJECT)) 2>&1)
  PROJECT_OK := $(filter 0,$(.SHELLSTATUS))
endif
ifneq ($(filter $(PROJECT_GOALS),$(MAKECMDGOALS)),)
  ifeq ($(strip $(PROJECT)),)
    $(error PROJECT is not set$(project_hint))
  else ifeq ($(PROJECT_OK),)
    $(error $(patsubst error:%,%,$(PROJECT_CHECK))$(project_hint))
  endif
endif

.PHONY: help
help: ## Show this help
	@echo "usage: make PROJECT=<name> <target> [CHANNELS='url ...'] [PYTHON=3.X] [V=1]"
	@echo
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | awk -F'\t' '{printf "  %-12s %s\n", $$1, $$2}'
	@echo
	@echo "projects: $(or $(PROJECTS),none)"

.PHONY: tools
tools: $(TOOLS) ## Install the pinned tools (requirements.txt) into .venv
# Rebuilt when requirements.txt's content changes (not on a mere new mtime).
$(TOOLS): requirements.txt
	$(Q)scripts/check-prereqs
	$(Q)[ -x $(VENV)/bin/python ] && scripts/gate check --label tools $(VENV)/.requirements.sha256 $^ -- $(VENV)/bin/python || { \
	  echo "tools: creating $(VENV) from requirements.txt ..." >&2 && \
	  rm -rf $(VENV) && python3 -m venv $(VENV) && \
	  $(VENV)/bin/python -m pip install $(if $(V),,-q) --disable-pip-version-check -r requirements.txt && \
	  scripts/gate record $(VENV)/.requirements.sha256 $^ ; }
	$(Q)touch $@

# The per-project graph, defined for an existing, safely named PROJECT only.
ifneq ($(PROJECT_OK),)
P := $(PROJECT)
PDIR := projects/$(P)
BDIR := build/$(P)
SETTINGS := $(PDIR)/project.yml
SETTINGS_OPT := $(if $(wildcard $(SETTINGS)),--settings $(SETTINGS))
OVERRIDES := $(strip $(if $(CHANNELS),channels=$(CHANNELS)) $(if $(PYTHON),python=$(PYTHON)))
KEY := $(if $(OVERRIDES),override-$(shell printf '%s' '$(OVERRIDES)' | sha256sum | cut -c1-10),default)
KDIR := $(BDIR)/$(KEY)
STEP := scripts/step $(P)

# Parse-time bookkeeping, written only when the content changes: the list of
# sources (so adding or deleting a file rescans) and the override key (so
# switching CHANNELS/PYTHON republishes dist/).
SOURCES := $(shell scripts/list-sources $(PDIR))
_ := $(shell printf '%s\n' $(SOURCES) | scripts/write-if-changed $(BDIR)/sources.txt; \
  printf '%s\n' '$(KEY) $(OVERRIDES)' | scripts/write-if-changed $(BDIR)/key.txt)

# Pack settings from project.yml, read without starting a tool (top-level
# scalars: format, compression_level, slim, compile); FORMAT=... overrides.
PACK_SETTINGS := $(if $(wildcard $(SETTINGS)),$(shell sed -n \
  's/^\(format\|compression_level\|slim\|compile\):[[:space:]]*["'\'']\{0,1\}\([^"'\''#[:space:]]*\).*/\1=\2/p' $(SETTINGS)))
setting = $(patsubst $(1)=%,%,$(filter $(1)=%,$(PACK_SETTINGS)))
FORMAT ?=
FORMAT := $(or $(FORMAT),$(call setting,format),tar.gz)
LEVEL := $(or $(call setting,compression_level),4)

DEPS := $(BDIR)/deps.yml
ENV_FILE := $(KDIR)/environment.yml
LOCK_DIR := $(if $(filter default,$(KEY)),$(PDIR),$(KDIR))
LOCK := $(LOCK_DIR)/rattler-lock.yml
EXPLICIT := $(LOCK_DIR)/conda-$(PLATFORM).lock
ENV := $(KDIR)/env
ENV_STAMP := $(KDIR)/env.stamp
TARBALL_NAME := $(P)-$(PLATFORM).$(FORMAT)
PACKED := $(KDIR)/$(TARBALL_NAME)
TARBALL := dist/$(TARBALL_NAME)
ENV_OPTS := $(if $(filter true,$(call setting,compile)),--compile)
PACK_OPTS := --format $(FORMAT) --level $(LEVEL) $(if $(filter true,$(call setting,slim)),--slim) $(if $(V),-v)
LOCK_ARGS = --env-file $(ENV_FILE) --lock $(LOCK) --explicit $(EXPLICIT) --platform $(PLATFORM) \
  --cache-dir $(CACHE) --deps $(DEPS) --settings $(SETTINGS)
VERIFY_ARGS = --build-prefix $(CURDIR)/$(ENV) --workdir build/tmp --project $(P) $(SETTINGS_OPT)
ENV_INPUTS := $(LOCK) scripts/create-env
# Shipped code, manifest + SBOM (inside the env and beside the archive), installer.
CODE_PLAN := $(KDIR)/code-plan.json
META := $(ENV)/share/portable-env
MANIFEST := $(KDIR)/$(P)-$(PLATFORM).manifest.json
SBOM := $(KDIR)/$(P)-$(PLATFORM).cdx.json
INSTALLER := $(KDIR)/$(P)-$(PLATFORM).sh
MANIFEST_ARGS = --prefix $(ENV) --deps $(DEPS) --project $(P) --platform $(PLATFORM) --lock $(LOCK) --lock $(EXPLICIT)
# (Re)creates the environment and records the lock it came from.
CREATE_ENV = rm -f $(ENV_STAMP) && \
  $(STEP) env scripts/create-env --lock $(LOCK) --prefix $(ENV) --cache-dir $(PKGS) --platform $(PLATFORM) $(ENV_OPTS) && \
  scripts/gate record --salt='$(ENV_OPTS)' $(ENV_STAMP) $(ENV_INPUTS)

# Every recipe line of the project runs holding the project's lock file, so
# concurrent builds of one project take turns (scripts/locked-shell). Each
# line is therefore one complete step: it writes $@.tmp and renames it.
export PORTABLE_ENV_LOCK := $(CURDIR)/$(BDIR)/.lock
$(DEPS) $(ENV_FILE) $(LOCK) $(EXPLICIT) $(ENV_STAMP) $(PACKED) $(TARBALL) $(TARBALL).sha256 \
  $(CODE_PLAN) $(INSTALLER) dist/$(P)-$(PLATFORM).sh lock check-lock verify: SHELL := $(CURDIR)/scripts/locked-shell

# key.txt: a PYTHON= override changes the standard library the scan uses.
$(DEPS): $(SOURCES) $(BDIR)/sources.txt $(BDIR)/key.txt $(wildcard $(SETTINGS)) $(wildcard templates/import-map*.yml) \
    templates/project.yml scripts/find-deps scripts/check-settings | $(TOOLS)
	$(Q)scripts/check-settings $(SETTINGS) && \
	  $(STEP) scan scripts/find-deps $(PDIR) $(SETTINGS_OPT) $(if $(PYTHON),--python '$(PYTHON)') > $@.tmp && \
	  mv -f $@.tmp $@

$(ENV_FILE): $(DEPS) $(wildcard $(SETTINGS)) templates/environment.yml scripts/render-env | $(TOOLS)
	$(Q)mkdir -p $(@D) && $(STEP) render scripts/render-env --name $(P) --template templates/environment.yml \
	  --deps $(DEPS) $(SETTINGS_OPT) $(if $(CHANNELS),--channels '$(CHANNELS)') \
	  $(if $(PYTHON),--python '$(PYTHON)') > $@.tmp && mv -f $@.tmp $@

# Solves only when environment.yml's content differs from what the lock
# records (lock-env compares hashes); otherwise it just touches the lock.
$(LOCK) $(EXPLICIT) &: $(ENV_FILE) | $(TOOLS)
	$(Q)$(STEP) lock scripts/lock-env $(LOCK_ARGS)

# Installed only when the lock's content changed or the env is incomplete.
$(ENV_STAMP): $(ENV_INPUTS) | $(TOOLS)
	$(Q){ scripts/gate check --label '[$(P)] env' --salt='$(ENV_OPTS)' $@ $^ -- $(ENV)/conda-meta && \
	  scripts/create-env --check --prefix $(ENV) ; } || { $(CREATE_ENV) ; }

# What ship-code will put into the env (files with sha256, entry points):
# its content changes only when a pack must ship something new.
$(CODE_PLAN): $(SOURCES) $(BDIR)/sources.txt $(wildcard $(SETTINGS)) scripts/ship-code | $(TOOLS)
	$(Q)mkdir -p $(@D) && scripts/ship-code --plan --project-dir $(PDIR) --project $(P) $(SETTINGS_OPT) > $@.tmp && \
	  mv -f $@.tmp $@

# Packed, then verified at another path, and only then given its final name.
# An environment found incomplete here is recreated first, never packed.
$(PACKED): $(ENV_STAMP) $(DEPS) $(ENV_FILE) $(CODE_PLAN) $(wildcard $(SETTINGS)) requirements.txt \
    scripts/pack-env scripts/verify-pack scripts/ship-code scripts/write-manifest | $(TOOLS)
	$(Q)scripts/gate check --label '[$(P)] pack' --salt='$(PACK_OPTS)' $@.stamp $^ -- $@ $@.sha256 $(MANIFEST) $(SBOM) || { \
	  trap 'rm -f $@.unverified' EXIT; rm -f $@.stamp && \
	  { scripts/create-env --check --prefix $(ENV) || { $(CREATE_ENV) ; } ; } && \
	  $(STEP) ship scripts/ship-code --project-dir $(PDIR) --prefix $(ENV) --project $(P) $(SETTINGS_OPT) && \
	  $(STEP) manifest scripts/write-manifest $(MANIFEST_ARGS) --out-manifest $(META)/manifest.json \
	    --out-sbom $(META)/sbom.cdx.json && \
	  $(STEP) pack scripts/pack-env --prefix $(ENV) --out $@.unverified $(PACK_OPTS) && \
	  $(STEP) verify scripts/verify-pack $@.unverified --deps $(DEPS) --env-file $(ENV_FILE) $(VERIFY_ARGS) && \
	  mv -f $@.unverified $@ && \
	  (cd $(@D) && sha256sum $(@F)) > $@.sha256.tmp && mv -f $@.sha256.tmp $@.sha256 && \
	  scripts/write-manifest $(MANIFEST_ARGS) --tarball $@ --out-manifest $(MANIFEST) --out-sbom $(SBOM) && \
	  scripts/gate record --salt='$(PACK_OPTS)' $@.stamp $^ ; }

$(MANIFEST) $(SBOM): $(PACKED)

$(TARBALL) $(TARBALL).sha256 &: $(PACKED) $(BDIR)/key.txt
	$(Q)scripts/publish $(PACKED) dist $(MANIFEST) $(SBOM)

$(INSTALLER): $(PACKED) $(MANIFEST) templates/installer.sh scripts/make-installer $(wildcard $(SETTINGS)) | $(TOOLS)
	$(Q)$(STEP) installer scripts/make-installer --tarball $(PACKED) --manifest $(MANIFEST) --out $@ $(SETTINGS_OPT)

dist/$(P)-$(PLATFORM).sh: $(INSTALLER) $(BDIR)/key.txt
	$(Q)scripts/publish $(INSTALLER) dist

.PHONY: $(PROJECT_GOALS)
deps: $(DEPS) ## Scan PROJECT's imports -> build/PROJECT/deps.yml
	@cat $<
env-file: $(ENV_FILE) ## Render build/PROJECT/.../environment.yml
	@cat $<
lock: $(ENV_FILE) | $(TOOLS) ## Re-solve PROJECT's lock now (otherwise only when environment.yml changes)
	$(Q)$(STEP) lock scripts/lock-env $(LOCK_ARGS) --force
check-lock: $(ENV_FILE) | $(TOOLS) ## Say whether PROJECT's lock is stale, without solving
	$(Q)scripts/lock-env $(LOCK_ARGS) --check
env: $(ENV_STAMP) ## Create PROJECT's environment from the lock -> build/PROJECT/.../env
pack: $(TARBALL) ## Build, pack and verify PROJECT -> dist/PROJECT-PLATFORM.tar.gz
manifest: $(TARBALL) ## Print what dist/PROJECT-PLATFORM's archive holds (packages, imports, glibc, code)
	$(Q)scripts/write-manifest --print dist/$(notdir $(MANIFEST))
installer: dist/$(P)-$(PLATFORM).sh ## Build dist/PROJECT-PLATFORM.sh, a self-extracting installer (bash it --help)
verify: | $(TOOLS) ## Verify dist/PROJECT-PLATFORM.tar.gz again (checksum, unpack, the imports it was built for)
	$(Q)$(STEP) verify scripts/verify-pack $(TARBALL) --sha256 $(TARBALL).sha256 $(VERIFY_ARGS)
endif

.PHONY: clean distclean
clean: ## Remove build outputs and dist/ tarballs of PROJECT (all projects without PROJECT); keeps locks, tools, caches
	$(Q)$(if $(strip $(PROJECT)),rm -rf build/$(PROJECT) dist/$(PROJECT)-*,rm -rf $(addprefix build/,$(PROJECTS)) build/tmp dist/*.tar.* dist/*.sha256)
distclean: clean ## Also remove .venv, the package cache and the local channel
	$(Q)rm -rf build $(VENV)

.PHONY: channel demo test
channel: | $(TOOLS) ## Build the offline local channel (host python + PyPI wheels) in build/channel
	$(Q)scripts/build-channel --out $(CHANNEL_DIR) --wheels templates/demo-channel.txt --cache build/wheels

demo: channel ## Offline demo: pack and verify projects/example against the local channel
	@[ -d projects/example ] || { echo "error: demo: projects/example is missing; restore it: git checkout -- projects/example" >&2; exit 1; }
	$(Q)$(MAKE) --no-print-directory PROJECT=example CHANNELS=file://$(CURDIR)/$(CHANNEL_DIR) \
	  PYTHON=$$(python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])') pack

test: | $(TOOLS) ## Run the test suite (offline; builds the local channel once)
	$(Q)pytest $(if $(V),-v,-q) tests

# scripts/bench: projects/example in a copy of the repo + a synthetic scan
# project; medians against lower bounds. BENCH_ARGS=--quick (or --runs 5).
BENCH_ARGS ?=
.PHONY: bench
bench: channel ## Benchmark the pipeline against lower bounds -> build/bench/results.md (BENCH_ARGS=--quick)
	$(Q)scripts/bench --channel file://$(abspath $(CHANNEL_DIR)) $(BENCH_ARGS)

# --- All projects: create, list, pack each ------------------------------------
# scripts/projects (stdlib only, so it runs before `make tools`) is the one
# source of the project list and of the project-name rule; CI calls it too.
# `all` packs each project in its own sub-make: CHANNELS, PYTHON, PKGS, V ...
# given on the command line reach the sub-makes through MAKEFLAGS. The tools
# are installed first, once, so parallel sub-makes never race to create .venv.
ALL_PROJECTS :=
ifneq ($(filter all pack-all,$(MAKECMDGOALS)),)
  ALL_PROJECTS := $(shell scripts/projects list)
  ifneq ($(.SHELLSTATUS),0)
    $(error scripts/projects list failed (see above); rename or remove the folders it names)
  endif
endif
PACK_EACH := $(addprefix pack-each/,$(ALL_PROJECTS))

.PHONY: new list all pack-all $(PACK_EACH)
new: ## Create projects/PROJECT from templates/ (refuses unsafe or existing names)
	$(Q)scripts/projects new -- $(call sh_quote,$(PROJECT))
list: ## Print the projects, one per line
	$(Q)scripts/projects list
all: $(PACK_EACH) ## Pack and verify every project (sub-makes; make -j2 all packs two at once)
	@echo "all: $(if $(ALL_PROJECTS),packed $(ALL_PROJECTS),no projects: create one with make new PROJECT=<name>)" >&2
pack-all: all ## Same as all
$(PACK_EACH): | $(TOOLS)
	$(Q)$(MAKE) --no-print-directory PROJECT=$(@F) pack

# portable-env: a folder of Python files -> a verified, relocatable conda
# environment tarball.  `make help` lists the targets.
#
# This file is only the graph (README.md, "The graph"); the steps' logic lives
# in scripts/portable_env/, the defaults in templates/. Every artifact is a
# file rebuilt only when its inputs change:
#   project.yml + overrides --settings--> build/P/settings.mk, build/P/KEY/settings.json
#   projects/P/**/*.py *.ipynb --scan-->  build/P/KEY/deps.yml
#   + templates/environment.yml --render-> build/P/KEY/environment.yml
#   --lock-->   projects/P/rattler-lock.yml + conda-PLATFORM.lock (KEY=default)
#               build/P/KEY/...                        (CHANNELS/PYTHON override)
#   --env-->    build/P/KEY/env (+ env.stamp)
#   --archive (ship, manifest, pack, verify)--> build/P/KEY/P-PLATFORM.FORMAT --publish--> dist/
# KEY is "default", or a hash of the CHANNELS/PYTHON overrides, so a build
# with overrides never touches the project's committed lock.
#
# Values from the command line (PROJECT, CHANNELS, PYTHON, FORMAT, PKGS, ...)
# are data: captured unexpanded below, checked before any step runs, and
# given to the steps as environment variables ("$$VAR" in recipes), never
# pasted into a recipe. Only PROJECT, once checked to be a safe name, appears
# in paths. No Python runs while Make reads this file.

SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DELETE_ON_ERROR:
.SUFFIXES:
MAKEFLAGS += --no-builtin-rules --warn-undefined-variables
.DEFAULT_GOAL := help

PKGS ?= build/pkgs
CACHE ?= build/cache
CHANNEL_DIR ?= build/channel
BENCH_ARGS ?=
BASE ?= origin/main
define capture
override $(1) := $$(if $$(filter command line,$$(origin $(1))),$$(value $(1)),$(2))
endef
PROJECT_GIVEN := $(filter command line,$(origin PROJECT))
$(eval $(call capture,PROJECT,))
$(eval $(call capture,CHANNELS,))
$(eval $(call capture,PYTHON,))
$(eval $(call capture,FORMAT,))
$(eval $(call capture,TARGET_GLIBC,))
$(eval $(call capture,FROM,))
$(eval $(call capture,V,))
$(foreach v,PKGS CACHE CHANNEL_DIR BENCH_ARGS BASE,$(eval override $(v) := $$(value $(v))))
export PROJECT CHANNELS PYTHON FORMAT TARGET_GLIBC FROM PKGS CACHE CHANNEL_DIR BENCH_ARGS BASE

VENV := .venv
TOOLS := $(VENV)/.installed
DEV_TOOLS := $(VENV)/.dev-installed
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
export PYTHONDONTWRITEBYTECODE := 1
Q := $(if $(V),,@)
CODE := $(wildcard scripts/portable_env/*.py scripts/portable_env/*/*.py)

PROJECT_GOALS := settings deps env-file lock adopt check-lock env pack verify manifest installer lock-diff size
DRY_RUN := $(findstring n,$(firstword $(filter-out -%,$(filter-out %=%,$(MAKEFLAGS)))))

# --- The project name: checked in Make itself (no shell, no Python) ----------
NAME_CHARS := a b c d e f g h i j k l m n o p q r s t u v w x y z A B C D E F G H I J K L M N O P Q R S T U V W \
  X Y Z 0 1 2 3 4 5 6 7 8 9 . _ -
strip_chars = $(if $(2),$(call strip_chars,$(subst $(firstword $(2)),,$(1)),$(wordlist 2,$(words $(2)),$(2))),$(1))
name_rule := letters, digits, '.', '_', '-', not starting with '.' or '-'
# Why $(1) is not a safe project name (empty when it is).
name_problem = $(if $(strip $(1)),$(if $(or $(filter-out 1,$(words $(1))),$(filter -% .%,$(1)),$(strip \
  $(call strip_chars,$(1),$(NAME_CHARS)))),PROJECT '$(1)' is not a valid project name: use $(name_rule)),PROJECT \
  is not set: make PROJECT=<name> <target>)
PROJECTS = $(sort $(patsubst projects/%/,%,$(wildcard projects/*/)))
project_hint = (projects: $(or $(PROJECTS),none yet; create one with make new PROJECT=<name>))

PROJECT_GOAL := $(filter $(PROJECT_GOALS),$(MAKECMDGOALS))
# Checked for every goal that uses it: the project goals, new, and clean when
# PROJECT was given at all (an empty or blank PROJECT= is refused, not "all").
ifneq ($(PROJECT_GOAL)$(filter new,$(MAKECMDGOALS))$(if $(PROJECT_GIVEN),$(filter clean,$(MAKECMDGOALS))),)
  ifneq ($(call name_problem,$(PROJECT)),)
    $(error error: $(call name_problem,$(PROJECT)) $(project_hint))
  endif
endif
ifneq ($(PROJECT_GOAL),)
  ifeq ($(wildcard projects/$(PROJECT)/.),)
    $(error error: no project '$(PROJECT)': projects/$(PROJECT)/ does not exist $(project_hint); \
      create it with make new PROJECT=$(PROJECT))
  endif
endif

# adopt's FROM is checked before any step too (Make's wildcard reads it as a
# file name pattern, never as code).
ifneq ($(filter adopt,$(MAKECMDGOALS)),)
  ifeq ($(strip $(FROM)),)
    $(error error: adopt needs FROM=/path/to/env: a conda environment (a folder with conda-meta/))
  else ifneq ($(words $(FROM)),1)
    $(error error: adopt: FROM '$(FROM)' has white space; give the environment's path without spaces \
      (a symlink to it works))
  else ifeq ($(wildcard $(FROM)/conda-meta/.),)
    $(error error: adopt: FROM '$(FROM)' is not a conda environment (no conda-meta/ folder in it); \
      give the path of one, e.g. FROM=$$HOME/miniconda3/envs/dev)
  endif
endif

# uname runs once, and only for the goals that need the platform.
ifneq ($(PROJECT_GOAL)$(filter clean,$(MAKECMDGOALS)),)
  UNAME := $(shell uname -sm)
else
  UNAME :=
endif
PLATFORM_TABLE := Linux_x86_64:linux-64 Linux_aarch64:linux-aarch64 Darwin_arm64:osx-arm64 Darwin_x86_64:osx-64
empty :=
space := $(empty) $(empty)
PLATFORM := $(or $(patsubst $(subst $(space),_,$(UNAME)):%,%,$(filter $(subst $(space),_,$(UNAME)):%,$(PLATFORM_TABLE))),unsupported)

.PHONY: help
help: ## Show this help
	@echo "usage: make PROJECT=<name> <target> [CHANNELS='url ...'] [PYTHON=3.X] [FORMAT=tar.zst] [TARGET_GLIBC=2.X] [V=1]"
	@echo
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | awk -F'\t' '{printf "  %-12s %s\n", $$1, $$2}'
	@echo
	@echo "projects: $(or $(PROJECTS),none)"

.PHONY: tools dev-tools requirements
tools: $(TOOLS) ## Install the pinned tools (requirements.txt, hashes required) into .venv
# Rebuilt when requirements.txt's content changes (not on a mere new mtime).
# It also byte-compiles the pipeline's code once (steps run with
# PYTHONDONTWRITEBYTECODE: they write nothing, and no step compiles it at start).
$(TOOLS): requirements.txt
	$(Q)scripts/check-prereqs
	$(Q)scripts/install-tools $(VENV) requirements.txt
	$(Q)$(VENV)/bin/python -m compileall -q scripts/portable_env
	$(Q)touch $@
dev-tools: $(DEV_TOOLS) ## Install the test and lint tools (requirements-dev.txt) into .venv
$(DEV_TOOLS): requirements-dev.txt $(TOOLS)
	$(Q)scripts/install-tools --add $(VENV) requirements-dev.txt
	$(Q)touch $@
requirements: | $(TOOLS) ## Regenerate requirements*.txt (with hashes) from requirements*.in
	$(Q)uv pip compile -q --generate-hashes --python-version 3.11 --custom-compile-command "make requirements" \
	  requirements.in -o requirements.txt
	$(Q)uv pip compile -q --generate-hashes --python-version 3.11 --custom-compile-command "make requirements" \
	  requirements-dev.in -o requirements-dev.txt

# --- The per-project graph: defined for a checked, existing PROJECT only ------
ifneq ($(PROJECT_GOAL),)
P := $(PROJECT)
PDIR := projects/$(P)
BDIR := build/$(P)
PROJECT_YML := $(wildcard $(PDIR)/project.yml)
SETTINGS_MK := $(BDIR)/settings.mk
FILES_MK := $(BDIR)/files.mk
S_ARGS :=
S_KEY := default
S_FORMAT := $(or $(FORMAT),tar.gz)
SOURCES :=
SOURCE_DIRS :=
ARGS_NOW := $(strip $(CHANNELS))|$(strip $(PYTHON))|$(strip $(FORMAT))|$(strip $(TARGET_GLIBC))|$(if $(PROJECT_YML),1,0)
ifeq ($(DRY_RUN),)
  # A failed remake of either stops make before any step (include, not -include).
  include $(SETTINGS_MK) $(FILES_MK)
else
  -include $(SETTINGS_MK) $(FILES_MK)
endif
SETTINGS_STALE :=
ifneq ($(ARGS_NOW),$(S_ARGS))
  SETTINGS_STALE := stale
endif
ifneq ($(DRY_RUN),)
  ifneq ($(SETTINGS_STALE)$(if $(wildcard $(SETTINGS_MK)),,missing)$(if $(wildcard $(FILES_MK)),,missing),)
    $(warning note: make -n shows the plan with the settings computed last time (or the defaults): computing \
      them for these values runs a step; make PROJECT=$(P) settings does that)
  endif
endif
KEY := $(S_KEY)
KDIR := $(BDIR)/$(KEY)
SETTINGS := $(KDIR)/settings.json
STEP := scripts/step $(P)
export PORTABLE_ENV_LOCK := $(CURDIR)/$(BDIR)/.lock

DEPS := $(KDIR)/deps.yml
ENV_FILE := $(KDIR)/environment.yml
LOCK_DIR := $(if $(filter default,$(KEY)),$(PDIR),$(KDIR))
LOCK := $(LOCK_DIR)/rattler-lock.yml
EXPLICIT := $(LOCK_DIR)/conda-$(PLATFORM).lock
# The PyPI part of the lock (pypi: settings): written or removed by the lock
# step, which always touches $(LOCK); absent when there is nothing from PyPI.
PYPI_LOCK := $(LOCK_DIR)/pypi-$(PLATFORM).txt
ENV := $(KDIR)/env
ENV_STAMP := $(KDIR)/env.stamp
CODE_PLAN := $(KDIR)/code-plan.json
ARTIFACT := $(P)-$(PLATFORM)
PACKED := $(KDIR)/$(ARTIFACT).$(S_FORMAT)
MANIFEST := $(KDIR)/$(ARTIFACT).manifest.json
SBOM := $(KDIR)/$(ARTIFACT).cdx.json
INSTALLER := $(KDIR)/$(ARTIFACT).sh
TARBALL := dist/$(ARTIFACT).$(S_FORMAT)
# Committed locks and the environment survive an interrupted make.
.PRECIOUS: $(LOCK) $(EXPLICIT) $(PYPI_LOCK) $(ENV_STAMP)

# Settings and the file list are makefiles Make remakes before anything else
# (never under -n): the settings when project.yml, the defaults or the
# overrides changed; the file list when a folder of the project changed.
ifeq ($(DRY_RUN),)
RESTARTED := $(if $(filter-out undefined,$(origin MAKE_RESTARTS)),$(MAKE_RESTARTS))
SETTINGS_MISSING := $(if $(wildcard $(SETTINGS)),,missing)
FORCE_SETTINGS := $(if $(RESTARTED),,$(if $(SETTINGS_STALE)$(SETTINGS_MISSING),FORCE))
# Writes settings.mk, and settings.json only when its content changed (so an
# edit of project.yml that changes no value rebuilds nothing).
$(SETTINGS_MK): $(PROJECT_YML) templates/environment.yml scripts/portable_env/settings.py \
    scripts/portable_env/formats.py $(FORCE_SETTINGS) | $(TOOLS)
	$(Q)scripts/settings $(PDIR) --platform $(PLATFORM) --json $(BDIR) --mk $@
$(FILES_MK): $(SOURCE_DIRS) scripts/portable_env/files.py | $(TOOLS)
	$(Q)scripts/project-files $(PDIR) --mk $@
else
# Under -n nothing is remade: the plan uses what exists (or nothing).
$(SETTINGS_MK) $(FILES_MK) $(SETTINGS) $(BDIR)/key.txt: ;
endif

$(DEPS): $(SOURCES) $(FILES_MK) $(SETTINGS) $(wildcard templates/import-map*.yml) $(CODE) | $(TOOLS)
	$(Q)$(STEP) scan scripts/find-deps $(PDIR) --settings $(SETTINGS) -o $@

$(ENV_FILE): $(DEPS) $(SETTINGS) templates/environment.yml scripts/render-env | $(TOOLS)
	$(Q)$(STEP) render scripts/render-env --template templates/environment.yml --deps $(DEPS) \
	  --settings $(SETTINGS) --out $@

# Solves only when environment.yml's content differs from what the lock
# records (lock-env compares hashes); otherwise it just touches the lock.
$(LOCK) $(EXPLICIT) &: $(ENV_FILE) | $(TOOLS)
	$(Q)$(STEP) lock scripts/lock-env --env-file $(ENV_FILE) --lock $(LOCK) --explicit $(EXPLICIT) \
	  --platform $(PLATFORM) --cache-dir "$$CACHE" --deps $(DEPS) --settings $(SETTINGS)

# Installed only when the lock's content changed or the env is incomplete.
$(ENV_STAMP): $(LOCK) $(wildcard $(PYPI_LOCK)) $(SETTINGS) $(CODE) | $(TOOLS)
	$(Q)$(STEP) env scripts/build-step env --settings $(SETTINGS) --lock $(LOCK) --prefix $(ENV) \
	  --stamp $@ --pkgs "$$PKGS"

# What ship-code will put into the env (files with sha256, entry points):
# its content changes only when a pack must ship something new.
$(CODE_PLAN): $(SOURCES) $(FILES_MK) $(SETTINGS) $(CODE) | $(TOOLS)
	$(Q)scripts/ship-code --plan --project-dir $(PDIR) --settings $(SETTINGS) --out $@

# Shipped, packed, verified at another path, and only then given its final
# name with its checksum, manifest and SBOM (scripts/build-step archive).
$(PACKED) $(PACKED).sha256 $(MANIFEST) $(SBOM) &: $(ENV_STAMP) $(DEPS) $(ENV_FILE) $(CODE_PLAN) $(SETTINGS) \
    requirements.txt $(CODE) | $(TOOLS)
	$(Q)$(STEP) archive scripts/build-step archive --settings $(SETTINGS) --lock $(LOCK) --explicit $(EXPLICIT) \
	  --prefix $(ENV) --stamp $(ENV_STAMP) --pkgs "$$PKGS" --deps $(DEPS) --env-file $(ENV_FILE) \
	  --out $(PACKED) --manifest $(MANIFEST) --sbom $(SBOM) --workdir build/tmp $(if $(V),-v)

# key.txt changes only when the build key does: switching overrides republishes.
$(TARBALL) $(TARBALL).sha256 &: $(PACKED) $(BDIR)/key.txt
	$(Q)scripts/publish $(PACKED) dist $(MANIFEST) $(SBOM)

$(INSTALLER): $(PACKED) $(MANIFEST) templates/installer.sh $(SETTINGS) $(CODE) | $(TOOLS)
	$(Q)$(STEP) installer scripts/make-installer --tarball $(PACKED) --manifest $(MANIFEST) --out $@ \
	  --settings $(SETTINGS)

dist/$(ARTIFACT).sh: $(INSTALLER) $(BDIR)/key.txt
	$(Q)scripts/publish $(INSTALLER) dist

.PHONY: $(PROJECT_GOALS) FORCE
FORCE:
settings: $(SETTINGS) ## Print PROJECT's checked settings (project.yml + overrides) -> build/PROJECT/KEY/settings.json
	@cat $<
deps: $(DEPS) ## Scan PROJECT's imports -> build/PROJECT/KEY/deps.yml
	@cat $<
env-file: $(ENV_FILE) ## Render build/PROJECT/KEY/environment.yml
	@cat $<
lock: $(ENV_FILE) | $(TOOLS) ## Re-solve PROJECT's lock now (otherwise only when environment.yml changes)
	$(Q)$(STEP) lock scripts/lock-env --env-file $(ENV_FILE) --lock $(LOCK) --explicit $(EXPLICIT) \
	  --platform $(PLATFORM) --cache-dir "$$CACHE" --deps $(DEPS) --settings $(SETTINGS) --force
adopt: $(ENV_FILE) | $(TOOLS) ## Write PROJECT's lock from an existing conda env, without solving (FROM=/path/to/env)
	$(Q)$(STEP) adopt scripts/adopt --from "$$FROM" --env-file $(ENV_FILE) --deps $(DEPS) --settings $(SETTINGS) \
	  --lock $(LOCK) --explicit $(EXPLICIT) --pkgs "$$PKGS" --cache-dir "$$CACHE"
check-lock: $(ENV_FILE) | $(TOOLS) ## Say whether PROJECT's lock is stale, without solving
	$(Q)scripts/lock-env --env-file $(ENV_FILE) --lock $(LOCK) --explicit $(EXPLICIT) \
	  --platform $(PLATFORM) --cache-dir "$$CACHE" --deps $(DEPS) --settings $(SETTINGS) --check
env: $(ENV_STAMP) ## Create PROJECT's environment from the lock -> build/PROJECT/KEY/env
pack: $(TARBALL) ## Build, pack and verify PROJECT -> dist/PROJECT-PLATFORM.tar.gz
manifest: $(TARBALL) ## Print what dist/PROJECT-PLATFORM's archive holds (packages, imports, glibc, code)
	$(Q)scripts/write-manifest --print dist/$(ARTIFACT).manifest.json
installer: dist/$(ARTIFACT).sh ## Build dist/PROJECT-PLATFORM.sh, a self-extracting installer (bash it --help)
lock-diff: $(LOCK) $(SETTINGS) | $(TOOLS) ## Show what changed in PROJECT's lock since BASE (a git ref; default origin/main)
	$(Q)scripts/report lock-diff --lock $(LOCK) --base-path $(PDIR)/rattler-lock.yml --settings $(SETTINGS) \
	  --base "$$BASE"
size: $(TARBALL) $(SETTINGS) | $(TOOLS) ## Where dist/PROJECT-PLATFORM's bytes go, by package (and what slim: true saves)
	$(Q)scripts/report size $(TARBALL) --settings $(SETTINGS)
verify: $(SETTINGS) | $(TOOLS) ## Verify dist/PROJECT-PLATFORM.tar.gz again (checksum, unpack, the imports it was built for)
	$(Q)$(STEP) verify scripts/verify-pack $(TARBALL) --sha256 $(TARBALL).sha256 --settings $(SETTINGS) \
	  --build-prefix $(CURDIR)/$(ENV) --workdir build/tmp
endif

# --- Clean: exactly build/PROJECT and dist/PROJECT-PLATFORM.*, nothing else ---
.PHONY: clean distclean
clean: ## Remove PROJECT's build/ and dist/ files (every project's without PROJECT); keeps locks, tools, caches
ifneq ($(PROJECT_GIVEN),)
	$(Q)rm -rf -- build/$(PROJECT)
	$(Q)rm -f -- dist/$(PROJECT)-$(PLATFORM).*
else
	$(Q)rm -rf -- $(addprefix build/,$(PROJECTS)) build/tmp
	$(Q)find dist -mindepth 1 -maxdepth 1 ! -name .gitkeep -exec rm -rf -- {} +
endif
distclean: clean ## Also remove .venv, the package cache and the local channel
	$(Q)rm -rf -- build $(VENV) $(wildcard scripts/portable_env/__pycache__ scripts/portable_env/*/__pycache__)

.PHONY: channel demo test lint
channel: | $(TOOLS) ## Build the local channel (host python + PyPI wheels, cached) in build/channel
	$(Q)scripts/build-channel --out "$$CHANNEL_DIR" --wheels templates/demo-channel.txt --cache build/wheels

demo: channel ## Demo without a conda channel: pack and verify projects/example against the local channel
	@[ -d projects/example ] || { echo "error: demo: projects/example is missing; restore it: git checkout -- projects/example" >&2; exit 1; }
	$(Q)$(MAKE) --no-print-directory PROJECT=example "CHANNELS=file://$$(cd "$$CHANNEL_DIR" && pwd)" \
	  "PYTHON=$$(python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])')" \
	  "TARGET_GLIBC=$$(python3 -c 'import platform; print(platform.libc_ver()[1])')" pack

lint: $(DEV_TOOLS) ## Lint and type-check (ruff, mypy, shellcheck)
	$(Q)scripts/lint

test: lint ## Run the linters, then the test suite (downloads the channel's wheels once; offline after that)
	$(Q)pytest $(if $(V),-v,-q) -p no:cacheprovider tests

# scripts/bench: projects/example in a copy of the repo + a synthetic scan
# project; medians against lower bounds. BENCH_ARGS=--quick (or --runs 5).
.PHONY: bench
bench: channel ## Benchmark the pipeline against lower bounds -> build/bench/results.md (BENCH_ARGS=--quick)
	$(Q)scripts/bench --channel "file://$$(cd "$$CHANNEL_DIR" && pwd)" $${BENCH_ARGS}

# scripts/score-corpus: the scan on real notebooks and scripts (sources in
# tests/data/corpus-sources.txt, cached under build/corpus/; the held-out
# corpora in tests/data/corpus-sources-N.txt, under build/corpusN/; sdists
# fetched once, GitHub files cached by hand).
.PHONY: corpus
corpus: $(TOOLS) ## Score the import scan on every application-code corpus (fetches the PyPI sdists once)
	$(Q)scripts/score-corpus --fetch
	$(Q)for f in tests/data/corpus-sources-*.txt; do n=$${f##*-}; n=$${n%.txt}; \
	  scripts/score-corpus --fetch --sources "$$f" --cache "build/corpus$$n"; done

# scripts/score-libraries: the scan on real libraries (the shared benchmark's
# visible list and tests/data/held-out-libraries*.txt; wheels cached by the
# scorer) -> build/libraries/results.md.
.PHONY: libraries
libraries: $(TOOLS) ## Score the import scan on the library lists (visible + held-out; fetches the wheels once)
	$(Q)scripts/score-libraries

# --- All projects: create, list, pack each ------------------------------------
# scripts/projects (stdlib only, so it runs before `make tools`) is the one
# source of the project list and of the project-name rule; CI calls it too.
# `all` packs each project in its own sub-make; CHANNELS, PYTHON, PKGS, V ...
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
	$(Q)scripts/projects new -- "$$PROJECT"
list: ## Print the projects, one per line
	$(Q)scripts/projects list
all: $(PACK_EACH) ## Pack and verify every project (sub-makes; make -j2 all packs two at once)
	@echo "all: $(if $(ALL_PROJECTS),packed $(ALL_PROJECTS),no projects: create one with make new PROJECT=<name>)" >&2
pack-all: all ## Same as all
$(PACK_EACH): | $(TOOLS)
	$(Q)$(MAKE) --no-print-directory PROJECT=$(@F) pack

# ssikit entry points.  `make cluster` builds what is missing and boots a
# 3-node cluster; `make test` runs every test.  Both install their own
# dependencies first (Debian 12, as root).

VENV   := .venv
PY     := $(VENV)/bin/python
NODES  ?= 3
PYTEST_ARGS ?=
# Kernel flavor: normal, or debug (KASAN, lockdep, kmemleak...; its own tree
# build/linux-debug and modules build/modules-debug).  genmod gets it as
# --flavor, the harness (cluster, test, bench) as $SSI_FLAVOR.
FLAVOR ?= normal
GENMOD := $(VENV)/bin/genmod --flavor $(FLAVOR)
RUN    := SSI_FLAVOR=$(FLAVOR)
# make cluster EXEC='uname -r; cat /sys/kernel/ssi/node'
# EXEC reaches node 1 verbatim: $(value) keeps make from expanding `$HOME` or
# `$(date)` in it, and `:=` keeps that text from being expanded on export.
SSI_EXEC := $(value EXEC)
export SSI_EXEC
unexport EXEC

.PHONY: all deps kernel modules cluster test unit lint bench clean distclean

all: modules

deps:
	@./scripts/ensure-deps.sh

kernel: deps
	$(GENMOD) kernel

modules: kernel
	$(GENMOD) modules

cluster: modules
	$(RUN) $(PY) -m qemu up --nodes $(NODES) --load-modules --exec-env SSI_EXEC

test: modules
	$(RUN) $(VENV)/bin/pytest $(PYTEST_ARGS)

unit: deps
	$(VENV)/bin/pytest tests/unit $(PYTEST_ARGS)

lint: modules
	$(VENV)/bin/ruff check genmod abi ssictl qemu bench tests
	$(VENV)/bin/mypy genmod abi ssictl qemu bench tests
	$(VENV)/bin/genmod checkpatch
	./scripts/sparse.sh

bench: modules
	$(RUN) $(PY) -m bench

clean:
	rm -rf build/modules build/modules-debug build/logs build/bench

distclean:
	rm -rf build $(VENV)

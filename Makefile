# ssikit entry points.  `make cluster` builds what is missing and boots a
# 3-node cluster; `make test` runs every test.  Both install their own
# dependencies first (Debian 12, as root).

VENV   := .venv
PY     := $(VENV)/bin/python
NODES  ?= 3
PYTEST_ARGS ?=
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
	$(VENV)/bin/genmod kernel

modules: kernel
	$(VENV)/bin/genmod modules

cluster: modules
	$(PY) -m qemu up --nodes $(NODES) --load-modules --exec-env SSI_EXEC

test: modules
	$(VENV)/bin/pytest $(PYTEST_ARGS)

unit: deps
	$(VENV)/bin/pytest tests/unit $(PYTEST_ARGS)

lint: modules
	$(VENV)/bin/ruff check genmod abi ssictl qemu bench tests
	$(VENV)/bin/mypy genmod abi ssictl qemu bench tests
	$(VENV)/bin/genmod checkpatch
	./scripts/sparse.sh

bench: modules
	$(PY) -m bench

clean:
	rm -rf build/modules build/logs build/bench

distclean:
	rm -rf build $(VENV)

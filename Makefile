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

# When this make started: the debug subset's budget counts from here.
MAKE_START := $(shell date +%s)
# The debug flavor's named subset that `make test` runs after the normal
# suite (README, "CI"; scripts/test-debug-subset.sh).  Not with PYTEST_ARGS
# (a chosen run) nor with FLAVOR=debug (the whole suite is debug then).
DEBUG_SUBSET ?= tests/cluster/test_fuzz.py tests/cluster/test_migrate_core.py \
	tests/cluster/test_soak.py::test_kmemleak_finds_nothing_of_ours \
	tests/cluster/test_soak.py::test_migration_under_failslab \
	tests/cluster/test_soak.py::test_remote_process_calls_under_failslab \
	tests/cluster/test_migrate.py::test_counter_moves_by_goto_with_no_gap_or_duplicate \
	tests/cluster/test_migrate.py::test_a_parent_and_children_that_left_their_dead_home_stay_a_family \
	tests/cluster/test_cfs.py::test_what_one_node_writes_another_reads_at_once \
	tests/cluster/test_cfs.py::test_reads_come_from_kept_pages_that_every_change_elsewhere_recalls \
	tests/cluster/test_cfs.py::test_writes_are_kept_by_the_writer_until_another_node_looks \
	tests/cluster/test_cfs.py::test_a_read_racing_a_writer_on_another_node_is_never_stale \
	tests/cluster/test_cfs.py::test_a_fifo_is_one_pipe_for_every_node_and_a_device_is_the_openers \
	tests/cluster/test_cfs.py::test_exclusive_create_append_and_unlink_of_an_open_file \
	tests/cluster/test_cfs.py::test_locks_are_the_servers_and_block_every_node \
	tests/cluster/test_cfs.py::test_a_lock_cycle_across_nodes_is_edeadlk_as_on_the_servers_disk \
	tests/cluster/test_cfs.py::test_a_process_writing_a_cfs_file_moves_with_the_open_file_itself \
	tests/cluster/test_cfs.py::test_a_dead_server_is_eio_and_the_mount_works_when_it_is_back \
	tests/cluster/test_cfs.py::test_cached_attributes_names_and_xattrs_follow_every_change \
	tests/cluster/test_cfs.py::test_stores_through_a_shared_mapping_are_seen_by_every_node_at_once \
	tests/cluster/test_cfs.py::test_a_counter_in_a_shared_mapping_incremented_under_a_lock_from_every_node_ends_right

test: modules
	$(RUN) $(VENV)/bin/pytest $(PYTEST_ARGS)
ifeq ($(FLAVOR)$(PYTEST_ARGS),normal)
	./scripts/test-debug-subset.sh $(MAKE_START) $(DEBUG_SUBSET)
endif

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

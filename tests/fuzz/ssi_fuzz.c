// SPDX-License-Identifier: GPL-2.0-only
/*
 * ssi-fuzz: random and boundary arguments for the SSI system calls
 * (ssisys, ssi_rexec, ssi_rfork, ssi_migrate), as root and as an
 * unprivileged user; every result is checked against the errno table in
 * abi/ssi_errnos.h (documented in abi/ERRNOS.md).
 *
 *   ssi-fuzz [--seed N] [--count N] [--key-hex HEX] [--calm N]
 *            [--timeout S] [--uid UID] [--no-root] [--no-unpriv]
 *
 * Half of the calls run in a forked child that stays root, half in one
 * that setuid()s to --uid (65534).  A call whose module (read from
 * /proc/modules) is not loaded must fail with ENOSYS; one whose module is
 * loaded must succeed (with the value the command promises) or fail with
 * an errno of its set; a CAP_SYS_ADMIN command must fail with EPERM for
 * the unprivileged caller.  Anything else is printed as VIOLATION and
 * makes the exit code 1.
 *
 * Staying on the cluster: a root call that could really change the ICS
 * key, the cluster table or the cluster name is allowed only once every
 * --calm calls; after a successful key or table change the real one is
 * put back at once (the key from --key-hex, the table read from
 * /sys/kernel/ssi/ics/peers; without them such calls are always made
 * invalid), and the cluster name is restored at the end.  SSISYS_ICS_TEST
 * runs at most 3 round trips with a timeout of at most 200 ms.  Nothing
 * unloads a module.
 *
 * ssi_rexec/rfork/migrate run in batches inside a sandbox child: should
 * one succeed one day, an rfork child (0 returned) or a migrated process
 * _exit()s at once, a rexec'd one simply is gone; the parent notices a
 * sandbox that did not finish its batch, and (as child subreaper) any
 * process left behind.
 *
 * Output: "stat" lines (calls per syscall/command and errnos seen) and a
 * final "result:" line.  Exit 0 clean, 1 violations, 2 usage, 3 setup.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ssi_abi.h"
#include "ssi_errnos.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* ---- the errno table ---- */

struct call_spec {
	const char *id;
	long nr;
	int cmd;
	const char *module;
	int flags;
	const int *errnos;
};

#define SSI_ERRNO(x) x,
#define SSI_ERRNO_CALL(id, nr, cmd, mod, fl, errs) \
	static const int errnos_##id[] = { errs 0 };
SSI_ERRNO_TABLE
#undef SSI_ERRNO_CALL
#define SSI_ERRNO_CALL(id, nr, cmd, mod, fl, errs) \
	{ #id, nr, cmd, mod, fl, errnos_##id },
static const struct call_spec specs[] = { SSI_ERRNO_TABLE };
#undef SSI_ERRNO_CALL
#undef SSI_ERRNO

/* Statistics slots: ssisys 0..63, out of range, then the other three. */
enum {
	SLOT_OUT_OF_RANGE = SSISYS_NR_CMDS,
	SLOT_REXEC,
	SLOT_RFORK,
	SLOT_MIGRATE,
	NR_SLOTS,
};

#define ERRNO_MAX 160
#define MAX_SAVED_PEERS SSI_MAX_NODES

static const struct call_spec *slot_spec[NR_SLOTS];

/* ---- shared state (MAP_SHARED: workers and sandboxes write it) ---- */

enum buf_kind {
	BK_NULL,
	BK_LOW,		/* an address below mmap_min_addr */
	BK_UNMAPPED,	/* inside our PROT_NONE mapping */
	BK_KERNEL,
	BK_NONCANON,
	BK_TOP,		/* straddles the top of user space */
	BK_GOOD,
	BK_MISALIGNED,
	BK_PAGE_END,	/* ends exactly at a PROT_NONE page: valid */
	BK_PAGE_CROSS,	/* runs into a PROT_NONE page */
	BK_READONLY,
	NR_BUF_KINDS,
};

static const char *const buf_kind_names[NR_BUF_KINDS] = {
	"null", "low", "unmapped", "kernel", "noncanonical", "top-of-user",
	"good", "misaligned", "page-end", "page-cross", "read-only",
};

struct call_rec {
	int priv;
	uint64_t index;
	int slot;
	uint64_t args[4];
	int kinds[3];		/* buf kind per pointer argument, -1: none */
};

struct slot_stats {
	uint64_t calls[2];	/* [0] unprivileged, [1] root */
	uint64_t ok;
	uint64_t gone;		/* did not return here: rexec'd or migrated */
	uint64_t err[ERRNO_MAX + 1];
};

struct shared {
	struct slot_stats slot[NR_SLOTS];
	uint64_t violations;
	uint64_t printed;
	uint64_t restores;
	uint64_t calmed;	/* disruptive calls made invalid by --calm */
	uint64_t sandbox_done;	/* calls a sandbox finished */
	struct call_rec cur;	/* the call in progress */
};

static struct shared *sh;

/* ---- options and environment ---- */

static uint64_t opt_seed;
static uint64_t opt_count = 100000;
static uint64_t opt_calm = 500;
static unsigned int opt_timeout = 60;
static unsigned int opt_uid = 65534;
static uint64_t opt_max_print = 50;
static bool opt_root = true, opt_unpriv = true;
static uint8_t restore_key[SSI_KEY_MAX];
static size_t restore_key_len;

static bool loaded_ssi_core, loaded_ics, loaded_clms, loaded_vproc,
	loaded_ics_test;
static struct ssi_cluster_table saved_table;
static bool have_saved_table;
static char saved_name[SSI_NAME_MAX];
static bool have_saved_name;
static unsigned int self_node;
static unsigned int peer_nodes[SSI_MAX_NODES];
static unsigned int nr_peer_nodes;
static long page_size;

/* ---- PRNG (splitmix64: small, good enough, reproducible) ---- */

static uint64_t rng_state;

static uint64_t rnd64(void)
{
	uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static uint64_t rnd(uint64_t n)
{
	return n ? rnd64() % n : 0;
}

static bool chance(unsigned int percent)
{
	return rnd(100) < percent;
}

static uint64_t pick(const uint64_t *vals, size_t n)
{
	return vals[rnd(n)];
}

/* ---- helpers ---- */

static void die(const char *fmt, ...)
{
	va_list ap;

	fflush(stdout);
	fputs("ssi-fuzz: error: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(3);
}

static const char *errno_name(int err)
{
	static char buf[16];
	const char *name = err > 0 ? strerrorname_np(err) : NULL;

	if (name)
		return name;
	snprintf(buf, sizeof(buf), "E%d", err);
	return buf;
}

static const char *slot_name(int slot)
{
	static char buf[24];

	if (slot_spec[slot])
		return slot_spec[slot]->id;
	snprintf(buf, sizeof(buf), "unassigned%d", slot);
	return buf;
}

static bool module_loaded(const char *name)
{
	if (!strcmp(name, "ssi_core"))
		return loaded_ssi_core;
	if (!strcmp(name, "ics"))
		return loaded_ics;
	if (!strcmp(name, "clms"))
		return loaded_clms;
	if (!strcmp(name, "vproc"))
		return loaded_vproc;
	if (!strcmp(name, "ics_test"))
		return loaded_ics_test;
	return false;	/* "": no module serves it yet */
}

static bool slot_served(int slot)
{
	return slot_spec[slot] && module_loaded(slot_spec[slot]->module);
}

static void read_modules(void)
{
	char line[512], name[128];
	FILE *f = fopen("/proc/modules", "r");

	if (!f)
		return;	/* no module support: nothing is served */
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%127s", name) != 1)
			continue;
		loaded_ssi_core |= !strcmp(name, "ssi_core");
		loaded_ics |= !strcmp(name, "ics");
		loaded_clms |= !strcmp(name, "clms");
		loaded_vproc |= !strcmp(name, "vproc");
		loaded_ics_test |= !strcmp(name, "ics_test");
	}
	fclose(f);
}

static long ssisys(uint64_t cmd, const void *buf, uint64_t len)
{
	return syscall(__NR_ssisys, cmd, buf, len);
}

/* The real cluster table, from "node addr prio=.. bulk=.." lines. */
static void read_peers(void)
{
	char line[256], addr[64];
	unsigned int node, a, b, c, d;
	FILE *f = fopen("/sys/kernel/ssi/ics/peers", "r");

	if (!f)
		return;
	memset(&saved_table, 0, sizeof(saved_table));
	while (fgets(line, sizeof(line), f) &&
	       saved_table.nr_nodes < MAX_SAVED_PEERS) {
		if (sscanf(line, "%u %63s", &node, addr) != 2 ||
		    sscanf(addr, "%u.%u.%u.%u", &a, &b, &c, &d) != 4)
			continue;
		saved_table.nodes[saved_table.nr_nodes].node = node;
		/* network byte order, as the kernel keeps it */
		saved_table.nodes[saved_table.nr_nodes].addr =
			(uint32_t)a | (uint32_t)b << 8 | (uint32_t)c << 16 |
			(uint32_t)d << 24;
		saved_table.nr_nodes++;
		if (node != self_node && nr_peer_nodes < SSI_MAX_NODES)
			peer_nodes[nr_peer_nodes++] = node;
	}
	fclose(f);
	have_saved_table = saved_table.nr_nodes > 0;
}

static const char *opt_assume_loaded;

static void set_loaded(const char *list)
{
	char buf[256], *tok, *save = NULL;

	snprintf(buf, sizeof(buf), "%s", list);
	for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		loaded_ssi_core |= !strcmp(tok, "ssi_core");
		loaded_ics |= !strcmp(tok, "ics");
		loaded_clms |= !strcmp(tok, "clms");
		loaded_vproc |= !strcmp(tok, "vproc");
		loaded_ics_test |= !strcmp(tok, "ics_test");
	}
}

static void read_env(void)
{
	FILE *f;
	long ret;

	if (opt_assume_loaded)
		set_loaded(opt_assume_loaded);
	else
		read_modules();
	f = fopen("/sys/kernel/ssi/node", "r");
	if (f) {
		if (fscanf(f, "%u", &self_node) != 1)
			self_node = 0;
		fclose(f);
	}
	read_peers();
	if (loaded_clms) {
		ret = ssisys(SSISYS_CLUSTER_NAME, saved_name, sizeof(saved_name));
		have_saved_name = ret == 0 && saved_name[0];
	}
}

/* ---- memory arena ---- */

#define ARENA_PAGES 8		/* RW pages, then one PROT_NONE guard */
#define NONE_PAGES 4

static uint8_t *arena;		/* ARENA_PAGES RW + guard */
static uint8_t *arena_guard;
static uint8_t *procs_area;	/* VPROC_LIST output, 4 pages + guard */
static uint8_t *procs_guard;
static uint8_t *none_area;	/* PROT_NONE */
static uint8_t *ro_page;	/* PROT_READ, rewritten before each use */
static bool top_page_free;	/* nothing mapped just below TASK_SIZE_MAX */

static void *map(size_t pages, int prot)
{
	void *p = mmap(NULL, pages * page_size, prot,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		die("mmap: %s", strerror(errno));
	return p;
}

static void setup_arena(void)
{
	arena = map(ARENA_PAGES + 1, PROT_READ | PROT_WRITE);
	arena_guard = arena + ARENA_PAGES * page_size;
	if (mprotect(arena_guard, page_size, PROT_NONE))
		die("mprotect: %s", strerror(errno));
	procs_area = map(5, PROT_READ | PROT_WRITE);
	procs_guard = procs_area + 4 * page_size;
	if (mprotect(procs_guard, page_size, PROT_NONE))
		die("mprotect: %s", strerror(errno));
	none_area = map(NONE_PAGES, PROT_NONE);
	ro_page = map(1, PROT_READ);
	{
		unsigned char vec;

		top_page_free = mincore((void *)(0x00007ffffffff000ULL - page_size),
					page_size, &vec) && errno == ENOMEM;
	}
	sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE,
		  MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (sh == MAP_FAILED)
		die("mmap: %s", strerror(errno));
	memset(sh, 0, sizeof(*sh));
}

/* Any address that is never ours to write: kernel, non-canonical, ... */
static uint64_t bad_address(enum buf_kind kind)
{
	static const uint64_t kernel[] = {
		0xffffffff81000000ULL, 0xffff888000000000ULL,
		0xffffffffff600000ULL, 0xfffffffffffff000ULL,
		0xffffffffffffffffULL, 0xffffc90000000000ULL,
	};
	static const uint64_t noncanon[] = {
		0x0000800000000000ULL, 0x8000000000000000ULL,
		0x00ff000000000000ULL, 0x7fff000000000000ULL,
	};

	switch (kind) {
	case BK_NULL:
		return 0;
	case BK_LOW:
		return 1 + rnd(0xffff);
	case BK_UNMAPPED:
		return (uint64_t)(uintptr_t)none_area +
		       rnd(NONE_PAGES * page_size);
	case BK_KERNEL:
		return pick(kernel, ARRAY_SIZE(kernel)) - (chance(50) ? 0 : rnd(64));
	case BK_NONCANON:
		return pick(noncanon, ARRAY_SIZE(noncanon)) + rnd(4096);
	case BK_TOP:
		/*
		 * Straddling TASK_SIZE_MAX (0x7ffffffff000) when the page
		 * below it is not ours (the stack may end there without
		 * ASLR), else just above it.
		 */
		return top_page_free ? 0x00007ffffffff000ULL - rnd(64) :
		       0x00007ffffffff000ULL + rnd(64);
	default:
		return 0;
	}
}

static bool kind_is_bad(enum buf_kind kind)
{
	return kind <= BK_TOP;
}

/* A buffer kind: mostly usable memory, a fair share of bad pointers. */
static enum buf_kind pick_kind(void)
{
	uint64_t r = rnd(100);

	if (r < 45)
		return BK_GOOD;
	if (r < 55)
		return BK_MISALIGNED;
	if (r < 63)
		return BK_PAGE_END;
	if (r < 73)
		return BK_PAGE_CROSS;
	if (r < 80)
		return BK_READONLY;
	return (enum buf_kind)rnd(BK_TOP + 1);
}

/*
 * Place @size bytes of @obj as @kind and return the pointer; @size is what
 * a correct caller would pass (the kernel reads or writes at most that).
 */
static uint64_t place(enum buf_kind kind, const void *obj, size_t size)
{
	size_t room = ARENA_PAGES * page_size;
	uint8_t *p;
	size_t n;

	if (size > room)
		size = room;
	switch (kind) {
	case BK_GOOD:
		memcpy(arena, obj, size);
		return (uint64_t)(uintptr_t)arena;
	case BK_MISALIGNED:
		p = arena + 1 + rnd(7);
		if (size > room - 8)
			size = room - 8;
		memcpy(p, obj, size);
		return (uint64_t)(uintptr_t)p;
	case BK_PAGE_END:
		p = arena_guard - size;
		memcpy(p, obj, size);
		return (uint64_t)(uintptr_t)p;
	case BK_PAGE_CROSS:
		n = size > 1 ? 1 + rnd(size - 1) : 0;	/* bytes before the guard */
		p = arena_guard - n;
		memcpy(p, obj, n);
		return (uint64_t)(uintptr_t)p;
	case BK_READONLY:
		if (size > (size_t)page_size)
			size = page_size;
		if (mprotect(ro_page, page_size, PROT_READ | PROT_WRITE))
			die("mprotect: %s", strerror(errno));
		memcpy(ro_page, obj, size);
		if (mprotect(ro_page, page_size, PROT_READ))
			die("mprotect: %s", strerror(errno));
		return (uint64_t)(uintptr_t)ro_page;
	default:
		return bad_address(kind);
	}
}

/* ---- lengths ---- */

static uint64_t boundary_len(void)
{
	static const uint64_t lens[] = {
		0, 1, 2, 3, 4, 7, 8, 9, 15, 16, 17, 24, 31, 32, 33, 39, 40,
		41, 56, 63, 64, 65, 127, 128, 255, 256, 511, 512, 513, 1023,
		1024, 4095, 4096, 4097, 8191, 8192, 8193, 65535, 65536,
		65537, 1 << 20, 0x7fffffff, 0x80000000, 0xffffffff,
		0x100000000ULL, 0x100000008ULL, 0x7fffffffffffffffULL,
		0x8000000000000000ULL, 0xfffffffffffffffeULL,
		0xffffffffffffffffULL,
	};

	if (chance(10))
		return rnd64();
	return pick(lens, ARRAY_SIZE(lens));
}

/* The length a correct caller passes, or a near miss, or a boundary. */
static uint64_t pick_len(uint64_t natural)
{
	uint64_t r = rnd(100);

	if (r < 55)
		return natural;
	if (r < 62)
		return natural ? natural - 1 : 1;
	if (r < 69)
		return natural + 1;
	if (r < 72)
		return natural * 2;
	if (r < 75)
		return natural | 0x100000000ULL;	/* size_t, not int */
	return boundary_len();
}

/* ---- command arguments ---- */

static unsigned int some_node(void)
{
	static const uint64_t odd[] = {
		0, 1, 2, 3, 62, SSI_MAX_NODES, SSI_MAX_NODES + 1, 64, 255,
		0x7fffffff, 0x80000000, 0xffffffff,
	};
	uint64_t r = rnd(100);

	if (r < 35 && nr_peer_nodes)
		return peer_nodes[rnd(nr_peer_nodes)];
	if (r < 50 && self_node)
		return self_node;
	if (r < 70)
		return 1 + rnd(SSI_MAX_NODES);
	if (r < 90)
		return pick(odd, ARRAY_SIZE(odd));
	return rnd64();
}

static int32_t some_pid(void)
{
	static const uint64_t odd[] = {
		0, 1, 2, (uint64_t)-1, 0x7fffffff, 0x80000000, 0xffff, 0x10000,
		0x10001, 0x3f0000, 0x3fffff, 0x400000, 0x400001,
	};
	uint64_t r = rnd(100);
	unsigned int node;

	if (r < 20)
		return getpid();
	if (r < 30)
		return getppid();
	if (r < 60) {
		node = nr_peer_nodes && chance(60) ?
		       peer_nodes[rnd(nr_peer_nodes)] : 1 + rnd(SSI_MAX_NODES);
		return (int32_t)(node << SSI_PID_NODE_SHIFT |
				 (chance(50) ? 1 + rnd(64) : rnd(0x10000)));
	}
	if (r < 85)
		return (int32_t)pick(odd, ARRAY_SIZE(odd));
	return (int32_t)rnd64();
}

static void fill_random(void *obj, size_t size)
{
	uint8_t *p = obj;
	size_t i;

	for (i = 0; i < size; i++)
		p[i] = (uint8_t)rnd64();
}

/* A table; valid (contains this node, no duplicates) when @valid. */
static void make_table(struct ssi_cluster_table *t, bool valid)
{
	unsigned int i, extra;

	memset(t, 0, sizeof(*t));
	if (!valid) {
		if (chance(30)) {
			fill_random(t, sizeof(*t));
			return;
		}
		*t = saved_table;
		switch (rnd(6)) {
		case 0:
			t->reserved = 1 + rnd(0xffffffff);
			break;
		case 1:
			t->nr_nodes = SSI_MAX_NODES + 1 + rnd(1000);
			break;
		case 2:	/* a duplicate */
			if (t->nr_nodes && t->nr_nodes < SSI_MAX_NODES) {
				t->nodes[t->nr_nodes] = t->nodes[0];
				t->nr_nodes++;
			} else {
				t->reserved = 1;
			}
			break;
		case 3:	/* a bad node number */
			t->nodes[0].node = chance(50) ? 0 : SSI_MAX_NODES + 1 + rnd(9);
			if (!t->nr_nodes)
				t->nr_nodes = 1;
			break;
		case 4:	/* address 0 */
			t->nodes[0].addr = 0;
			if (!t->nr_nodes)
				t->nr_nodes = 1;
			break;
		default:	/* without this node */
			t->nr_nodes = 0;
			for (i = 0; i < saved_table.nr_nodes; i++)
				if (saved_table.nodes[i].node != self_node)
					t->nodes[t->nr_nodes++] =
						saved_table.nodes[i];
			break;
		}
		return;
	}
	*t = saved_table;
	switch (rnd(4)) {
	case 0:	/* the same table again */
		break;
	case 1:	/* this node only */
		t->nr_nodes = 1;
		t->nodes[0].node = self_node;
		t->nodes[0].addr = 0;
		for (i = 0; i < saved_table.nr_nodes; i++)
			if (saved_table.nodes[i].node == self_node)
				t->nodes[0] = saved_table.nodes[i];
		break;
	default:	/* plus nodes nobody runs, on TEST-NET-1 (192.0.2.0/24) */
		extra = 1 + rnd(chance(20) ? SSI_MAX_NODES : 4);
		for (i = 1; i <= SSI_MAX_NODES && extra; i++) {
			unsigned int j, used = 0;

			for (j = 0; j < t->nr_nodes; j++)
				used |= t->nodes[j].node == i;
			if (used || t->nr_nodes >= SSI_MAX_NODES || chance(50))
				continue;
			t->nodes[t->nr_nodes].node = i;
			t->nodes[t->nr_nodes].addr =
				192 | 0 << 8 | 2 << 16 | (uint32_t)(1 + rnd(254)) << 24;
			t->nr_nodes++;
			extra--;
		}
		break;
	}
}

static void make_ics_test(struct ssi_ics_test *t)
{
	static const uint64_t sizes[] = {
		0, 1, 7, 64, 4096, 65535, 65536, 65537, 0xffffffff,
	};

	memset(t, 0, sizeof(*t));
	if (chance(10)) {
		fill_random(t, sizeof(*t));
		return;
	}
	t->node = some_node();
	t->op = chance(85) ? 1 + rnd(3) : (uint32_t)pick((const uint64_t[]){
			0, 4, 5, 0xffffffff }, 4);
	/* never a long run: at most 3 calls of at most 200 ms */
	t->count = chance(85) ? 1 + rnd(3) :
		   (uint32_t)pick((const uint64_t[]){ 0, 1000001, 0xffffffff }, 3);
	t->size = chance(70) ? rnd(65537) : (uint32_t)pick(sizes, ARRAY_SIZE(sizes));
	t->timeout_ms = chance(85) ? 1 + rnd(200) :
			(uint32_t)pick((const uint64_t[]){ 0, 60001, 0xffffffff }, 3);
	t->reserved = chance(90) ? 0 : 1 + rnd(0xffffffff);
	t->errors = rnd64();
	t->last_error = (int32_t)rnd64();
	t->elapsed_ns = rnd64();
}

static void make_name(char *name, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++) {
		if (chance(97))
			name[i] = (char)(0x20 + rnd(0x5f));
		else	/* NUL, control, DEL, 8-bit */
			name[i] = (char)pick((const uint64_t[]){
				0, 1, 9, 10, 0x1f, 0x7f, 0x80, 0xff }, 8);
	}
}

static void make_vproc_list(struct ssi_vproc_list *l)
{
	enum buf_kind kind = pick_kind();
	size_t entry = sizeof(struct ssi_vproc_proc);
	size_t fit = 4 * page_size / entry;
	uint64_t procs;

	switch (kind) {
	case BK_GOOD:
		procs = (uint64_t)(uintptr_t)procs_area;
		break;
	case BK_MISALIGNED:
		procs = (uint64_t)(uintptr_t)procs_area + 1 + rnd(7);
		fit--;
		break;
	case BK_PAGE_END:
	case BK_PAGE_CROSS:	/* a few entries, then the guard */
		fit = rnd(4);
		procs = (uint64_t)(uintptr_t)procs_guard - fit * entry -
			(kind == BK_PAGE_CROSS ? 1 + rnd(entry - 1) : 0);
		break;
	case BK_READONLY:
		procs = (uint64_t)(uintptr_t)ro_page;
		fit = page_size / entry;
		break;
	default:
		procs = bad_address(kind);
		fit = 0;
		break;
	}
	memset(l, 0, sizeof(*l));
	l->procs = procs;
	switch (rnd(6)) {
	case 0:
		l->capacity = 0;
		break;
	case 1:
		l->capacity = fit;
		break;
	case 2:
		l->capacity = fit + 1;
		break;
	case 3:
		l->capacity = 0xffffffff;
		break;
	default:
		l->capacity = rnd(fit + 2);
		break;
	}
	/* a correct caller's capacity never exceeds its buffer */
	if (kind == BK_GOOD && l->capacity > fit)
		l->capacity = fit;
	l->flags = chance(80) ? (uint32_t)rnd(2) :
		   (uint32_t)pick((const uint64_t[]){ 2, 3, 0x80000000, 0xffffffff }, 4);
	l->count = rnd64();
	l->total = rnd64();
	l->failed_nodes = rnd64();
}

/* Would this root call, if it succeeded, change the cluster's setup? */
static bool disruptive_cmd(int slot)
{
	return slot == SSISYS_ICS_SET_KEY || slot == SSISYS_CLUSTER_SET_TABLE ||
	       slot == SSISYS_CLUSTER_SET_NAME;
}

/* ---- checking ---- */

static int localview_state;	/* of the worker process */

static void describe(const struct call_rec *c, char *buf, size_t size)
{
	const char *call = c->slot == SLOT_REXEC ? "ssi_rexec" :
			   c->slot == SLOT_RFORK ? "ssi_rfork" :
			   c->slot == SLOT_MIGRATE ? "ssi_migrate" : "ssisys";
	int n = snprintf(buf, size, "%s %s(%s) #%" PRIu64 " args=0x%" PRIx64
			 ",0x%" PRIx64 ",0x%" PRIx64 ",0x%" PRIx64,
			 c->priv ? "root" : "unpriv", call, slot_name(c->slot),
			 c->index, c->args[0], c->args[1], c->args[2],
			 c->args[3]);
	unsigned int i;

	for (i = 0; i < 3 && n > 0 && (size_t)n < size; i++)
		if (c->kinds[i] >= 0)
			n += snprintf(buf + n, size - n, " ptr%u=%s", i,
				      buf_kind_names[c->kinds[i]]);
}

static void violation(const struct call_rec *c, const char *fmt, ...)
{
	char what[512], why[256];
	va_list ap;

	sh->violations++;
	if (sh->printed >= opt_max_print)
		return;
	sh->printed++;
	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	describe(c, what, sizeof(what));
	printf("VIOLATION seed=%" PRIu64 " %s: %s\n", opt_seed, what, why);
	fflush(stdout);
}

static bool errno_listed(const int *list, int err)
{
	for (; *list; list++)
		if (*list == err)
			return true;
	return false;
}

static void set_string(const int *list, char *buf, size_t size)
{
	size_t n = 0;

	buf[0] = '\0';
	for (; *list && n < size; list++)
		n += snprintf(buf + n, size - n, "%s%s", n ? "," : "",
			      errno_name(*list));
}

/* Is success with @ret what this call promises? */
static bool good_success(int slot, long ret)
{
	static long node_seen = -1;

	switch (slot) {
	case SSISYS_ABI_VERSION:
		return ret == SSI_ABI_VERSION;
	case SSISYS_NODE_NUM:
		if (ret < 0 || ret > SSI_MAX_NODES ||
		    (self_node && ret != (long)self_node))
			return false;
		if (node_seen < 0)
			node_seen = ret;
		return ret == node_seen;
	case SSISYS_MAX_NODES:
		return ret == SSI_MAX_NODES;
	case SSISYS_VPROC_LOCALVIEW:
		return ret == localview_state;
	default:
		return ret == 0;
	}
}

/* Account one result and check it against the table; true if it passed. */
static bool check(const struct call_rec *c, long ret, int err)
{
	const struct call_spec *spec = slot_spec[c->slot];
	struct slot_stats *st = &sh->slot[c->slot];
	bool served = slot_served(c->slot);
	char set[512];

	st->calls[c->priv]++;
	if (ret >= 0) {
		st->ok++;
		if (!served) {
			violation(c, "returned %ld, but nothing serves it (want ENOSYS)", ret);
			return false;
		}
		if (spec->flags & SSI_ERRNO_ADMIN && !c->priv) {
			violation(c, "an unprivileged caller succeeded (%ld), want EPERM", ret);
			return false;
		}
		if (!good_success(c->slot, ret)) {
			violation(c, "returned %ld: not what it promises", ret);
			return false;
		}
		return true;
	}
	st->err[err > 0 && err <= ERRNO_MAX ? err : 0]++;
	if (!served) {
		if (err == ENOSYS)
			return true;
		violation(c, "%s, but nothing serves it (want ENOSYS)", errno_name(err));
		return false;
	}
	if (spec->flags & SSI_ERRNO_ADMIN && !c->priv) {
		if (err == EPERM)
			return true;
		violation(c, "%s for an unprivileged caller (want EPERM)", errno_name(err));
		return false;
	}
	if (errno_listed(spec->errnos, err))
		return true;
	set_string(spec->errnos, set, sizeof(set));
	violation(c, "%s: not in its set {%s}", errno_name(err), set);
	return false;
}

/* ---- ssisys ---- */

static uint64_t pick_cmd(void)
{
	static const uint64_t assigned[] = {
		SSISYS_ABI_VERSION, SSISYS_NODE_NUM, SSISYS_MAX_NODES,
		SSISYS_ICS_SET_KEY, SSISYS_CLUSTER_SET_TABLE,
		SSISYS_CLUSTER_MEMBERSHIP, SSISYS_CLUSTERNODE_INFO,
		SSISYS_CLUSTER_NAME, SSISYS_CLUSTER_SET_NAME,
		SSISYS_VPROC_WHERE, SSISYS_VPROC_LIST, SSISYS_VPROC_LOCALVIEW,
		SSISYS_ICS_TEST,
	};
	static const uint64_t out_of_range[] = {
		SSISYS_NR_CMDS, SSISYS_NR_CMDS + 1, 127, 128, 255, 256, 4096,
		0x7fffffff, 0x80000000, 0xfffffffe, 0xffffffff,
	};
	uint64_t r = rnd(100);

	if (r < 60)
		return pick(assigned, ARRAY_SIZE(assigned));
	if (r < 85)
		return rnd(SSISYS_NR_CMDS);
	if (r < 95)
		return chance(70) ? pick(out_of_range, ARRAY_SIZE(out_of_range)) :
		       SSISYS_NR_CMDS + rnd(0xffffffffULL - SSISYS_NR_CMDS);
	/* garbage above bit 31: the kernel takes an unsigned int */
	return (rnd64() << 32) | pick(assigned, ARRAY_SIZE(assigned));
}

static uint64_t calm_left;	/* calls until the next disruptive one may pass */

static void restore_after(int slot)
{
	long ret;

	if (slot == SSISYS_ICS_SET_KEY) {
		ret = ssisys(SSISYS_ICS_SET_KEY, restore_key, restore_key_len);
		if (ret)
			die("cannot restore the cluster key: %s", strerror(errno));
	} else if (slot == SSISYS_CLUSTER_SET_TABLE) {
		ret = ssisys(SSISYS_CLUSTER_SET_TABLE, &saved_table,
			     sizeof(saved_table));
		if (ret)
			die("cannot restore the cluster table: %s", strerror(errno));
	} else {
		return;
	}
	sh->restores++;
}

static void one_ssisys(struct call_rec *c)
{
	union {
		uint8_t raw[4096];
		struct ssi_cluster_table table;
		struct ssi_membership m;
		struct ssi_node_info info;
		struct ssi_vproc_where w;
		struct ssi_vproc_list l;
		struct ssi_vproc_localview lv;
		struct ssi_ics_test t;
		char name[SSI_NAME_MAX];
	} obj;
	uint64_t cmd = pick_cmd(), len, natural;
	unsigned int eff = (unsigned int)cmd;
	enum buf_kind kind = pick_kind();
	bool valid_content = true;
	int slot = eff < SSISYS_NR_CMDS ? (int)eff : SLOT_OUT_OF_RANGE;
	long ret;
	int err;

	memset(&obj, 0, sizeof(obj));
	switch (eff) {
	case SSISYS_ICS_SET_KEY:
		natural = SSI_KEY_MIN + rnd(SSI_KEY_MAX - SSI_KEY_MIN + 1);
		fill_random(obj.raw, SSI_KEY_MAX + 1);
		break;
	case SSISYS_CLUSTER_SET_TABLE:
		valid_content = have_saved_table && chance(40);
		make_table(&obj.table, valid_content);
		natural = sizeof(obj.table);
		break;
	case SSISYS_CLUSTER_MEMBERSHIP:
		fill_random(&obj.m, sizeof(obj.m));
		natural = sizeof(obj.m);
		break;
	case SSISYS_CLUSTERNODE_INFO:
		fill_random(&obj.info, sizeof(obj.info));
		obj.info.node = some_node();
		natural = sizeof(obj.info);
		break;
	case SSISYS_CLUSTER_NAME:
		fill_random(obj.name, sizeof(obj.name));
		natural = SSI_NAME_MAX;
		break;
	case SSISYS_CLUSTER_SET_NAME:
		natural = 1 + rnd(SSI_NAME_MAX - 1);
		make_name(obj.name, sizeof(obj.name));
		break;
	case SSISYS_VPROC_WHERE:
		obj.w.pid = some_pid();
		obj.w.node = rnd64();
		natural = sizeof(obj.w);
		break;
	case SSISYS_VPROC_LIST:
		make_vproc_list(&obj.l);
		natural = sizeof(obj.l);
		break;
	case SSISYS_VPROC_LOCALVIEW:
		obj.lv.set = chance(85) ? rnd(3) :
			     (uint32_t)pick((const uint64_t[]){ 3, 4, 0x80000000, 0xffffffff }, 4);
		obj.lv.reserved = chance(90) ? 0 : 1 + rnd(0xffffffff);
		natural = sizeof(obj.lv);
		break;
	case SSISYS_ICS_TEST:
		make_ics_test(&obj.t);
		natural = sizeof(obj.t);
		break;
	default:	/* builtins, unassigned, out of range: anything */
		fill_random(obj.raw, 64);
		natural = 8 * rnd(9);
		break;
	}
	len = pick_len(natural);

	/*
	 * A root call that could really change the key, table or name: only
	 * every --calm calls, and only when it can be undone; otherwise give
	 * it a length the kernel refuses before it looks at the buffer.
	 */
	if (c->priv && disruptive_cmd(slot) && slot_served(slot) &&
	    !kind_is_bad(kind) && kind != BK_PAGE_CROSS) {
		bool undoable = slot == SSISYS_CLUSTER_SET_NAME ||
				(slot == SSISYS_ICS_SET_KEY && restore_key_len) ||
				(slot == SSISYS_CLUSTER_SET_TABLE && have_saved_table);

		if (!undoable || calm_left) {
			if (slot != SSISYS_CLUSTER_SET_TABLE || valid_content) {
				len = chance(50) ? 0 : 0x100000000ULL;
				sh->calmed++;
			}
		} else {
			calm_left = opt_calm;
		}
	}
	if (calm_left)
		calm_left--;

	c->slot = slot;
	c->args[0] = cmd;
	c->args[1] = place(kind, obj.raw, natural);
	c->args[2] = len;
	c->args[3] = 0;
	c->kinds[0] = kind;
	c->kinds[1] = c->kinds[2] = -1;
	sh->cur = *c;

	errno = 0;
	ret = ssisys(cmd, (const void *)(uintptr_t)c->args[1], len);
	err = errno;
	check(c, ret, err);
	if (ret >= 0 && c->priv)
		restore_after(slot);
	if (ret >= 0 && slot == SSISYS_VPROC_LOCALVIEW && obj.lv.set < 2)
		localview_state = obj.lv.set;
}

/* ---- rexec, rfork, migrate (in a sandbox child) ---- */

#define SANDBOX_BATCH 64

static int64_t some_node_arg(void)
{
	uint64_t r = rnd(100);

	if (r < 70)
		return some_node();
	if (r < 85)	/* garbage above bit 31: the kernel takes an int */
		return (int64_t)(rnd64() << 32 | some_node());
	return (int64_t)pick((const uint64_t[]){ (uint64_t)-1, (uint64_t)INT_MIN,
		(uint64_t)INT_MAX, (uint64_t)-63 }, 4);
}

/* A path: kinds of bad pointers, unterminated strings, long ones. */
static uint64_t make_path(int *kindp, uint8_t *area, uint8_t *guard)
{
	static const char *const paths[] = {
		"", "/", "/nonexistent/ssi-fuzz", "/bin/true", "/proc/self/exe",
		".", "..", "/dev/null",
	};
	enum buf_kind kind = pick_kind();
	const char *s = paths[rnd(ARRAY_SIZE(paths))];
	size_t len = strlen(s) + 1, n;

	*kindp = kind;
	switch (kind) {
	case BK_GOOD:
		if (chance(20)) {	/* longer than PATH_MAX, within the area */
			n = PATH_MAX + rnd(guard - area - PATH_MAX - 1);
			memset(area, 'a', n);
			area[0] = '/';
			area[n] = '\0';
		} else {
			memcpy(area, s, len);
		}
		return (uint64_t)(uintptr_t)area;
	case BK_MISALIGNED:
		memcpy(area + 3, s, len);
		return (uint64_t)(uintptr_t)(area + 3);
	case BK_PAGE_END:
		memcpy(guard - len, s, len);
		return (uint64_t)(uintptr_t)(guard - len);
	case BK_PAGE_CROSS:	/* no terminating NUL before the guard */
		n = 1 + rnd(64);
		memset(guard - n, '/', n);
		return (uint64_t)(uintptr_t)(guard - n);
	case BK_READONLY:
		return (uint64_t)(uintptr_t)"/nonexistent/ssi-fuzz-ro";
	default:
		return bad_address(kind);
	}
}

/* argv/envp: NULL-terminated or not, bad element pointers, huge. */
static uint64_t make_vec(int *kindp, uint8_t *area, uint8_t *guard)
{
	static const char *const strs[] = { "ssi-fuzz", "", "A=B", "-x" };
	enum buf_kind kind = pick_kind();
	uint64_t *vec;
	size_t n, i, room;

	*kindp = kind;
	switch (kind) {
	case BK_GOOD:
	case BK_MISALIGNED:
		vec = (uint64_t *)(area + (kind == BK_MISALIGNED ? 4 : 0));
		room = (guard - (uint8_t *)vec) / 8 - 1;
		n = chance(10) ? room : rnd(8);	/* room: E2BIG-sized */
		for (i = 0; i < n; i++)
			vec[i] = chance(95) ? (uint64_t)(uintptr_t)strs[rnd(ARRAY_SIZE(strs))] :
				 bad_address((enum buf_kind)rnd(BK_TOP + 1));
		vec[n] = 0;
		return (uint64_t)(uintptr_t)vec;
	case BK_PAGE_END:
		vec = (uint64_t *)(guard - 16);
		vec[0] = (uint64_t)(uintptr_t)strs[0];
		vec[1] = 0;
		return (uint64_t)(uintptr_t)vec;
	case BK_PAGE_CROSS:	/* no NULL before the guard */
		n = 1 + rnd(32);
		vec = (uint64_t *)(guard - 8 * n);
		for (i = 0; i < n; i++)
			vec[i] = (uint64_t)(uintptr_t)strs[rnd(ARRAY_SIZE(strs))];
		return (uint64_t)(uintptr_t)vec;
	case BK_READONLY:
		return (uint64_t)(uintptr_t)strs;	/* no NULL: runs into code */
	default:
		return bad_address(kind);
	}
}

/* One sandbox call; returns only if the process is still ours. */
static void one_sandbox_call(struct call_rec *c, uint8_t *path_area,
			     uint8_t *argv_area, uint8_t *envp_area)
{
	uint64_t r = rnd(3);
	long ret;
	int err;

	memset(c->args, 0, sizeof(c->args));
	c->kinds[0] = c->kinds[1] = c->kinds[2] = -1;
	c->args[0] = (uint64_t)some_node_arg();
	c->slot = r == 0 ? SLOT_REXEC : r == 1 ? SLOT_RFORK : SLOT_MIGRATE;
	sh->cur = *c;	/* a crash while making the arguments is this call's */
	if (r == 0) {
		c->args[1] = make_path(&c->kinds[0], path_area,
				       path_area + 4 * page_size);
		c->args[2] = make_vec(&c->kinds[1], argv_area,
				      argv_area + 2 * page_size);
		c->args[3] = make_vec(&c->kinds[2], envp_area,
				      envp_area + 2 * page_size);
	}
	sh->cur = *c;
	errno = 0;
	switch (c->slot) {
	case SLOT_REXEC:
		ret = syscall(__NR_ssi_rexec, c->args[0], c->args[1], c->args[2],
			      c->args[3]);
		break;
	case SLOT_RFORK:
		ret = syscall(__NR_ssi_rfork, c->args[0]);
		if (ret == 0)	/* the new process: leave at once */
			_exit(0);
		break;
	default:
		ret = syscall(__NR_ssi_migrate, c->args[0]);
		if (ret == 0) {	/* moved to another node: not ours any more */
			sh->slot[SLOT_MIGRATE].gone++;
			_exit(0);
		}
		break;
	}
	err = errno;
	if (ret > 0 && c->slot == SLOT_RFORK) {
		int status;

		/* counted as a success; it _exit()s at once */
		if (waitpid(ret, &status, 0) != ret)
			violation(c, "rfork child %ld: waitpid: %s", ret, strerror(errno));
		ret = 0;
	}
	check(c, ret, err);
}

/*
 * A batch of sandbox calls in a child.  The arena used here is the child's
 * own copy: whatever it writes stays there.
 */
static void run_sandbox(struct call_rec *c, uint64_t seed, uint64_t first,
			uint64_t n)
{
	uint8_t *area, *path_area, *argv_area, *envp_area;
	uint64_t i;
	pid_t pid;
	int status;

	fflush(stdout);
	sh->sandbox_done = 0;
	pid = fork();
	if (pid < 0)
		die("fork: %s", strerror(errno));
	if (pid == 0) {
		rng_state = seed;
		/* 4 pages path, 2 pages argv, 2 pages envp, each + a guard */
		area = map(11, PROT_READ | PROT_WRITE);
		path_area = area;
		argv_area = area + 5 * page_size;
		envp_area = area + 8 * page_size;
		if (mprotect(area + 4 * page_size, page_size, PROT_NONE) ||
		    mprotect(area + 7 * page_size, page_size, PROT_NONE) ||
		    mprotect(area + 10 * page_size, page_size, PROT_NONE))
			die("mprotect: %s", strerror(errno));
		for (i = 0; i < n; i++) {
			c->index = first + i;
			alarm(opt_timeout);
			one_sandbox_call(c, path_area, argv_area, envp_area);
			sh->sandbox_done = i + 1;
		}
		fflush(stdout);
		_exit(0);
	}
	if (waitpid(pid, &status, 0) != pid)
		die("waitpid: %s", strerror(errno));
	if (sh->sandbox_done == n && WIFEXITED(status) && !WEXITSTATUS(status))
		return;
	/* the call in progress never came back here */
	*c = sh->cur;
	if (WIFEXITED(status) && !WEXITSTATUS(status) && slot_served(c->slot) &&
	    (c->slot == SLOT_REXEC || c->slot == SLOT_MIGRATE)) {
		sh->slot[c->slot].calls[c->priv]++;
		sh->slot[c->slot].gone++;
		return;	/* rexec'd or migrated away: the rest of the batch is lost */
	}
	if (WIFSIGNALED(status))
		violation(c, "sandbox killed by signal %d (%s)", WTERMSIG(status),
			  WTERMSIG(status) == SIGALRM ? "call hung" :
			  strsignal(WTERMSIG(status)));
	else
		violation(c, "sandbox left after %" PRIu64 " of %" PRIu64
			  " calls, exit status %d", sh->sandbox_done, n,
			  WEXITSTATUS(status));
}

/* ---- a half: root or unprivileged ---- */

#define CHUNK 100

static void run_half(bool priv, uint64_t seed, uint64_t n)
{
	struct call_rec c = { .priv = priv };
	uint64_t i = 0, todo;

	rng_state = seed;
	while (i < n) {
		todo = n - i < CHUNK ? n - i : CHUNK;
		if (chance(15)) {
			alarm(0);	/* each sandbox call has its own */
			for (uint64_t done = 0; done < todo; done += SANDBOX_BATCH) {
				uint64_t b = todo - done < SANDBOX_BATCH ?
					     todo - done : SANDBOX_BATCH;

				run_sandbox(&c, rnd64(), i + done, b);
			}
		} else {
			for (uint64_t k = 0; k < todo; k++) {
				c.index = i + k;
				alarm(opt_timeout);
				one_ssisys(&c);
			}
		}
		i += todo;
	}
	alarm(0);
}

static void drop_privileges(void)
{
	gid_t gid = opt_uid;

	if (setgroups(0, NULL) || setresgid(gid, gid, gid) ||
	    setresuid(opt_uid, opt_uid, opt_uid))
		die("cannot become uid %u: %s", opt_uid, strerror(errno));
	if (geteuid() == 0 || getuid() == 0)
		die("still root after setuid(%u)", opt_uid);
}

/* Run a half in a worker child; report how it ended. */
static void run_worker(bool priv, uint64_t seed, uint64_t n)
{
	pid_t pid;
	int status;

	fflush(stdout);
	pid = fork();
	if (pid < 0)
		die("fork: %s", strerror(errno));
	if (pid == 0) {
		if (!priv && geteuid() == 0)
			drop_privileges();
		run_half(priv, seed, n);
		fflush(stdout);
		_exit(0);
	}
	if (waitpid(pid, &status, 0) != pid)
		die("waitpid: %s", strerror(errno));
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return;
	if (WIFSIGNALED(status))
		violation(&sh->cur, "%s worker killed by signal %d (%s)",
			  priv ? "root" : "unprivileged", WTERMSIG(status),
			  WTERMSIG(status) == SIGALRM ? "call hung" :
			  strsignal(WTERMSIG(status)));
	else
		violation(&sh->cur, "%s worker exited with status %d",
			  priv ? "root" : "unprivileged", WEXITSTATUS(status));
}

/* Children nobody waited for: an rfork or sandbox that escaped. */
static void reap_strays(void)
{
	struct call_rec none = { .slot = SLOT_RFORK, .kinds = { -1, -1, -1 } };
	int status;
	pid_t pid;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0)
		violation(&none, "stray process %d appeared (status 0x%x)", pid,
			  status);
}

static void restore_at_end(void)
{
	char name[SSI_NAME_MAX] = "";

	if (geteuid() != 0)
		return;
	if (have_saved_name &&
	    ssisys(SSISYS_CLUSTER_NAME, name, sizeof(name)) == 0 &&
	    strcmp(name, saved_name)) {
		if (ssisys(SSISYS_CLUSTER_SET_NAME, saved_name, strlen(saved_name)))
			fprintf(stderr, "ssi-fuzz: warning: cannot restore the cluster name: %s\n",
				strerror(errno));
		else
			sh->restores++;
	}
}

/* ---- summary ---- */

static void print_summary(double seconds)
{
	uint64_t total = 0;
	int slot, e;

	for (slot = 0; slot < NR_SLOTS; slot++) {
		const struct slot_stats *st = &sh->slot[slot];
		const char *kind = slot < SSISYS_NR_CMDS ? "ssisys" :
				   slot == SLOT_OUT_OF_RANGE ? "ssisys" :
				   slot == SLOT_REXEC ? "ssi_rexec" :
				   slot == SLOT_RFORK ? "ssi_rfork" : "ssi_migrate";
		char cmd[16];

		if (slot < SSISYS_NR_CMDS)
			snprintf(cmd, sizeof(cmd), "%d", slot);
		else
			snprintf(cmd, sizeof(cmd), "%s", slot == SLOT_OUT_OF_RANGE ? ">=64" : "-");
		printf("stat %s cmd=%s name=%s served=%d root=%" PRIu64
		       " unpriv=%" PRIu64 " ok=%" PRIu64 " gone=%" PRIu64,
		       kind, cmd, slot_name(slot), slot_served(slot),
		       st->calls[1], st->calls[0], st->ok, st->gone);
		for (e = 0; e <= ERRNO_MAX; e++)
			if (st->err[e])
				printf(" %s=%" PRIu64, e ? errno_name(e) : "EOTHER",
				       st->err[e]);
		putchar('\n');
		total += st->calls[0] + st->calls[1];
	}
	printf("result: calls=%" PRIu64 " violations=%" PRIu64 " seed=%" PRIu64
	       " restores=%" PRIu64 " calmed=%" PRIu64 " seconds=%.1f\n",
	       total, sh->violations, opt_seed, sh->restores, sh->calmed,
	       seconds);
}

/* ---- command line ---- */

static void usage(FILE *f)
{
	fputs("usage: ssi-fuzz [--seed N] [--count N] [--key-hex HEX] [--calm N]\n"
	      "                [--timeout S] [--uid UID] [--max-print N]\n"
	      "                [--no-root] [--no-unpriv]\n"
	      "Fuzz the SSI system calls; every result must be in abi/ssi_errnos.h.\n"
	      "  --seed N      PRNG seed (default: from the clock; printed)\n"
	      "  --count N     calls in all, half root, half --uid (default 100000)\n"
	      "  --key-hex HEX the cluster key, put back after a random SET_KEY\n"
	      "                (without it SET_KEY never gets a valid length as root)\n"
	      "  --calm N      at most one key/table/name change per N calls (500)\n"
	      "  --timeout S   a call taking longer is a failure (default 60)\n"
	      "  --uid UID     the unprivileged half's uid and gid (default 65534)\n"
	      "  --max-print N print at most N violations (default 50)\n"
	      "  --no-root, --no-unpriv  skip a half\n"
	      "  --assume-loaded LIST  take these modules (comma-separated) as\n"
	      "                loaded instead of reading /proc/modules (to test\n"
	      "                the checker itself)\n"
	      "Exit: 0 clean, 1 violations, 2 usage, 3 setup failure.\n", f);
}

static void usage_error(const char *fmt, ...)
{
	va_list ap;

	fputs("ssi-fuzz: error: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs(" (try --help)\n", stderr);
	exit(2);
}

static uint64_t parse_u64(const char *opt, const char *s, uint64_t max)
{
	unsigned long long v;
	char *end;

	if (!s || !*s || *s == '-')
		usage_error("%s wants a number, got '%s'", opt, s ? s : "");
	errno = 0;
	v = strtoull(s, &end, 0);
	if (errno || *end || v > max)
		usage_error("%s wants a number up to %" PRIu64 ", got '%s'", opt,
			    max, s);
	return v;
}

static void parse_key(const char *hex)
{
	size_t n = strlen(hex), i;

	if (n % 2 || n / 2 < SSI_KEY_MIN || n / 2 > SSI_KEY_MAX)
		usage_error("--key-hex wants %d..%d bytes in hex", SSI_KEY_MIN,
			    SSI_KEY_MAX);
	for (i = 0; i < n / 2; i++) {
		unsigned int b;

		if (sscanf(hex + 2 * i, "%2x", &b) != 1 ||
		    !strchr("0123456789abcdefABCDEF", hex[2 * i]) ||
		    !strchr("0123456789abcdefABCDEF", hex[2 * i + 1]))
			usage_error("--key-hex: '%s' is not hex", hex);
		restore_key[i] = b;
	}
	restore_key_len = n / 2;
}

static void parse_args(int argc, char **argv)
{
	bool seeded = false;
	int i;

	for (i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
			usage(stdout);
			exit(0);
		} else if (!strcmp(a, "--no-root")) {
			opt_root = false;
			continue;
		} else if (!strcmp(a, "--no-unpriv")) {
			opt_unpriv = false;
			continue;
		}
		if (strcmp(a, "--seed") && strcmp(a, "--count") &&
		    strcmp(a, "--calm") && strcmp(a, "--timeout") &&
		    strcmp(a, "--uid") && strcmp(a, "--max-print") &&
		    strcmp(a, "--key-hex") && strcmp(a, "--assume-loaded"))
			usage_error(strncmp(a, "--", 2) ? "unexpected argument '%s'" :
				    "unknown option '%s'", a);
		if (!v)
			usage_error("%s needs a value", a);
		if (!strcmp(a, "--seed")) {
			opt_seed = parse_u64(a, v, UINT64_MAX);
			seeded = true;
		} else if (!strcmp(a, "--count")) {
			opt_count = parse_u64(a, v, 1000000000);
		} else if (!strcmp(a, "--calm")) {
			opt_calm = parse_u64(a, v, 1000000000);
		} else if (!strcmp(a, "--timeout")) {
			opt_timeout = parse_u64(a, v, 3600);
			if (!opt_timeout)
				usage_error("--timeout must be at least 1");
		} else if (!strcmp(a, "--uid")) {
			opt_uid = parse_u64(a, v, 0xfffffffe);
			if (!opt_uid)
				usage_error("--uid must not be 0");
		} else if (!strcmp(a, "--max-print")) {
			opt_max_print = parse_u64(a, v, UINT64_MAX);
		} else if (!strcmp(a, "--key-hex")) {
			parse_key(v);
		} else {
			opt_assume_loaded = v;
		}
		i++;
	}
	if (!opt_root && !opt_unpriv)
		usage_error("--no-root and --no-unpriv leave nothing to do");
	if (!seeded) {
		struct timespec ts;

		clock_gettime(CLOCK_REALTIME, &ts);
		opt_seed = (uint64_t)ts.tv_sec * 1000000007ULL ^ ts.tv_nsec ^
			   (uint64_t)getpid() << 32;
	}
}

int main(int argc, char **argv)
{
	struct timespec t0, t1;
	uint64_t root_seed, unpriv_seed, root_n, unpriv_n;
	size_t i;
	bool am_root;

	parse_args(argc, argv);
	page_size = sysconf(_SC_PAGESIZE);
	for (i = 0; i < ARRAY_SIZE(specs); i++) {
		if (specs[i].nr == __NR_ssisys && specs[i].cmd >= 0)
			slot_spec[specs[i].cmd] = &specs[i];
		else if (specs[i].cmd == SSI_ERRNO_CMD_OUT_OF_RANGE)
			slot_spec[SLOT_OUT_OF_RANGE] = &specs[i];
		else if (specs[i].nr == __NR_ssi_rexec)
			slot_spec[SLOT_REXEC] = &specs[i];
		else if (specs[i].nr == __NR_ssi_rfork)
			slot_spec[SLOT_RFORK] = &specs[i];
		else if (specs[i].nr == __NR_ssi_migrate)
			slot_spec[SLOT_MIGRATE] = &specs[i];
	}
	setup_arena();
	read_env();
	/* orphans of our sandboxes come back to us: see reap_strays() */
	prctl(PR_SET_CHILD_SUBREAPER, 1);

	am_root = geteuid() == 0;
	rng_state = opt_seed;
	root_seed = rnd64();
	unpriv_seed = rnd64();
	root_n = am_root && opt_root ? (opt_unpriv ? opt_count / 2 : opt_count) : 0;
	unpriv_n = opt_unpriv ? opt_count - root_n : 0;
	printf("ssi-fuzz: seed=%" PRIu64 " count=%" PRIu64 " root=%" PRIu64
	       " unpriv=%" PRIu64 " uid=%u node=%u peers=%u modules=%s%s%s%s%s"
	       " key=%s table=%s\n", opt_seed, opt_count, root_n, unpriv_n,
	       am_root ? opt_uid : (unsigned int)geteuid(), self_node,
	       nr_peer_nodes, loaded_ssi_core ? "ssi_core," : "",
	       loaded_ics ? "ics," : "", loaded_clms ? "clms," : "",
	       loaded_vproc ? "vproc," : "", loaded_ics_test ? "ics_test," : "",
	       restore_key_len ? "yes" : "no", have_saved_table ? "yes" : "no");
	if (!am_root && opt_root)
		printf("ssi-fuzz: not root: the root half is skipped\n");

	clock_gettime(CLOCK_MONOTONIC, &t0);
	if (root_n)
		run_worker(true, root_seed, root_n);
	if (unpriv_n)
		run_worker(false, unpriv_seed, unpriv_n);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	restore_at_end();
	reap_strays();
	print_summary((t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9);
	fflush(stdout);
	return sh->violations ? 1 : 0;
}

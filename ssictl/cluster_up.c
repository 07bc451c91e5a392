// SPDX-License-Identifier: GPL-2.0-only
/*
 * ssi-cluster-up: `ssictl cluster up --peer ... --json` without Python, for
 * boot scripts and the test harness. A Python start costs seconds of CPU in
 * a TCG guest (typer, cffi and the ABI header); joining a node needs three
 * kinds of system call: finit_module, ssisys(ICS_SET_KEY, CLUSTER_SET_TABLE,
 * CLUSTER_SET_NAME) and ssisys(CLUSTER_MEMBERSHIP) to wait.
 *
 * usage: ssi-cluster-up --key-file FILE|- --peer N=ADDR [--peer ...]
 *                       [--dir DIR] [--modules A,B,...] [--name NAME]
 *                       [--wait SECONDS] [--json]
 *
 * Same inputs, checks and JSON document as `ssictl cluster up` (ssictl/
 * cluster_setup.py), with two differences: --modules is required and loaded
 * in the order given (name dependencies first; ssictl works the order out
 * from the modules' depends), and --table is not offered. A module already
 * loaded is left as it is. Inputs are checked before the kernel is touched,
 * except this node's place in the table (ssisys needs ssi_core loaded).
 * Progress goes to stderr, the result to stdout; exit 0 on success, 1 when
 * something failed (message and fix), 2 on a usage error.
 *
 * The key is never printed. DIR defaults to $SSIKIT_MODULES_DIR, else
 * ../modules/out relative to this binary (build/guest-bin in a checkout).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <linux/types.h>

#include "../abi/ssi_abi.h"

#define __printf(a, b) __attribute__((format(printf, a, b)))
#define __noreturn __attribute__((noreturn))

#define KEY_FILE_LIMIT 4096
#define MAX_MODULES 16
#define MODULE_NAME_MAX 56	/* MODULE_NAME_LEN - 1 */
#define WAIT_POLL_NS 20000000L
#define KEYGEN_HINT "make one with `ssictl cluster keygen FILE` and copy it to every node"

static const char *const state_names[] = {
	[SSI_NODE_NEVERUP] = "NEVERUP", [SSI_NODE_COMINGUP] = "COMINGUP",
	[SSI_NODE_UP] = "UP", [SSI_NODE_SHUTDOWN] = "SHUTDOWN",
	[SSI_NODE_GOINGDOWN] = "GOINGDOWN", [SSI_NODE_KCLEANUP] = "KCLEANUP",
	[SSI_NODE_UCLEANUP] = "UCLEANUP", [SSI_NODE_DOWN] = "DOWN",
};

struct loaded_module {
	char name[MODULE_NAME_MAX + 1];
	char path[PATH_MAX];
	const char *action;	/* "loaded", "already-loaded", "failed" */
};

static bool as_json;
static struct loaded_module modules[MAX_MODULES];
static int nr_modules;

/* Print one JSON string (RFC 8259 escapes; bytes >= 0x80 pass as they are). */
static void json_string(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\')
			fprintf(f, "\\%c", c);
		else if (c < 0x20)
			fprintf(f, "\\u%04x", c);
		else
			fputc(c, f);
	}
	fputc('"', f);
}

static void json_modules(FILE *f)
{
	fputs("  \"modules\": [", f);
	for (int i = 0; i < nr_modules; i++) {
		fputs(i ? ", {\"name\": " : "{\"name\": ", f);
		json_string(f, modules[i].name);
		fputs(", \"path\": ", f);
		json_string(f, modules[i].path);
		fputs(", \"action\": ", f);
		json_string(f, modules[i].action);
		fputc('}', f);
	}
	fputs("]", f);
}

static void __printf(1, 2) note(const char *fmt, ...)
{
	va_list ap;

	if (as_json)
		return;
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* Report a failure the way ssictl does (JSON document or "error/fix" lines) and exit 1. */
static void __noreturn __printf(3, 4) fail(int err, const char *hint, const char *fmt, ...)
{
	char message[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(message, sizeof(message), fmt, ap);
	va_end(ap);
	if (as_json) {
		printf("{\n  \"ok\": false,\n");
		json_modules(stdout);
		printf(",\n  \"error\": {\"message\": ");
		json_string(stdout, message);
		printf(", \"hint\": ");
		json_string(stdout, hint);
		if (err)
			printf(", \"errno\": %d, \"errno_name\": \"%s\"", err,
			       strerrorname_np(err) ? strerrorname_np(err) : "?");
		printf("}\n}\n");
	} else {
		fprintf(stderr, "ssi-cluster-up: error: %s\n  fix: %s\n", message, hint);
	}
	exit(1);
}

static void __noreturn __printf(1, 2) usage(const char *fmt, ...)
{
	va_list ap;

	fputs("ssi-cluster-up: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs("\nusage: ssi-cluster-up --key-file FILE|- --peer N=ADDR [--peer ...] "
	      "[--dir DIR] [--modules A,B,...] [--name NAME] [--wait SECONDS] [--json]\n",
	      stderr);
	exit(2);
}

/* snprintf into a path buffer; a path that does not fit is a usage error, not a truncation. */
static void __printf(3, 4) format_path(char *buf, size_t size, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, size, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= size)
		usage("a path is longer than %zu bytes", size - 1);
}

static long ssisys(unsigned int cmd, void *buf, size_t len)
{
	return syscall(__NR_ssisys, cmd, buf, len);
}

/* ------------------------------------------------------------------ inputs */

static int hex_value(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = tolower(c);
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* A key file holds hex digits (whitespace ignored) or raw bytes: clusterconf.parse_key. */
static size_t parse_key(const unsigned char *data, size_t len, const char *source,
			unsigned char *key)
{
	size_t digits = 0, i, n;
	bool hex = true;

	if (!len)
		fail(EINVAL, KEYGEN_HINT, "the key file %s is empty", source);
	for (i = 0; i < len; i++) {
		if (hex_value(data[i]) >= 0)
			digits++;
		else if (!isspace(data[i]))
			hex = false;
	}
	if (hex && !digits)
		fail(EINVAL, KEYGEN_HINT, "the key file %s holds only whitespace", source);
	if (hex && digits % 2)
		fail(EINVAL, KEYGEN_HINT,
		     "the key file %s holds an odd number of hex digits (%zu)", source, digits);
	n = hex ? digits / 2 : len;
	if (n < SSI_KEY_MIN || n > SSI_KEY_MAX)
		fail(EINVAL, "the cluster key must be 16..64 bytes: 32..128 hex digits, or "
		     "16..64 raw bytes; " KEYGEN_HINT,
		     "the key in %s is %s (%zu bytes)", source,
		     n < SSI_KEY_MIN ? "too short" : "too long", n);
	if (!hex) {
		memcpy(key, data, n);
		return n;
	}
	for (i = 0, n = 0, digits = 0; i < len; i++) {
		int v = hex_value(data[i]);

		if (v < 0)
			continue;
		if (digits++ % 2 == 0)
			key[n] = (unsigned char)(v << 4);
		else
			key[n++] |= (unsigned char)v;
	}
	return n;
}

static size_t read_key(const char *path, unsigned char *key)
{
	unsigned char data[KEY_FILE_LIMIT + 1];
	const char *source = strcmp(path, "-") ? path : "<stdin>";
	size_t len = 0;
	struct stat st;
	ssize_t got;
	int fd = 0;

	if (strcmp(path, "-")) {
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			fail(errno, "give --key-file the cluster key file (the same on every node); "
			     KEYGEN_HINT, "cannot read the key file %s: %s", path, strerror(errno));
		if (fstat(fd, &st) || (!S_ISREG(st.st_mode) && !S_ISFIFO(st.st_mode)))
			fail(EINVAL, KEYGEN_HINT, "the key file %s is not a regular file", path);
		if (st.st_mode & 077)
			note("warning: the key file %s is readable by other users (mode %04o): "
			     "chmod 600 %s", path, st.st_mode & 07777, path);
	}
	while (len < sizeof(data)) {
		got = read(fd, data + len, sizeof(data) - len);
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0)
			fail(errno, KEYGEN_HINT, "cannot read the key from %s: %s", source,
			     strerror(errno));
		if (!got)
			break;
		len += (size_t)got;
	}
	if (fd)
		close(fd);
	if (len > KEY_FILE_LIMIT)
		fail(EINVAL, KEYGEN_HINT,
		     "the key file %s is larger than %d bytes: not a key file", source,
		     KEY_FILE_LIMIT);
	len = parse_key(data, len, source, key);
	memset(data, 0, sizeof(data));
	return len;
}

static void add_peer(struct ssi_cluster_table *table, const char *spec)
{
	const char *eq = strchr(spec, '=');
	char *end;
	unsigned long node;
	struct in_addr addr;

	if (!eq)
		usage("--peer %s: expected NODE=ADDRESS, e.g. --peer 1=10.0.0.1", spec);
	errno = 0;
	node = strtoul(spec, &end, 10);
	if (end != eq || end == spec || errno || node < 1 || node > SSI_MAX_NODES)
		usage("--peer %s: the node number must be 1..%d", spec, SSI_MAX_NODES);
	if (inet_pton(AF_INET, eq + 1, &addr) != 1 || !addr.s_addr)
		usage("--peer %s: %s is not a non-zero IPv4 address", spec, eq + 1);
	for (__u32 i = 0; i < table->nr_nodes; i++) {
		if (table->nodes[i].node == node)
			usage("--peer %s: node %lu is given twice", spec, node);
		if (table->nodes[i].addr == addr.s_addr)
			usage("--peer %s: %s is node %u's address already", spec, eq + 1,
			      table->nodes[i].node);
	}
	table->nodes[table->nr_nodes].node = (__u32)node;
	table->nodes[table->nr_nodes].addr = addr.s_addr;
	table->nr_nodes++;
}

static void default_module_dir(char *dir, size_t size)
{
	const char *env = getenv("SSIKIT_MODULES_DIR");
	char self[PATH_MAX];
	ssize_t n;
	char *slash;

	if (env && *env) {
		format_path(dir, size, "%s", env);
		return;
	}
	n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n <= 0)
		fail(errno, "give --dir DIR", "cannot find this program's path: %s",
		     strerror(errno));
	self[n] = '\0';
	slash = strrchr(self, '/');
	if (slash)
		*slash = '\0';
	format_path(dir, size, "%s/../modules/out", self);
}

static void add_modules(const char *list, const char *dir)
{
	const char *p = list;

	while (*p) {
		size_t len = strcspn(p, ",");
		struct loaded_module *m;

		if (len) {
			if (nr_modules == MAX_MODULES)
				usage("--modules: more than %d modules", MAX_MODULES);
			if (len > MODULE_NAME_MAX || memchr(p, '/', len))
				usage("--modules: %.*s is not a module name", (int)len, p);
			m = &modules[nr_modules++];
			memcpy(m->name, p, len);
			m->name[len] = '\0';
			format_path(m->path, sizeof(m->path), "%s/%.*s.ko", dir, (int)len, p);
			m->action = "not-loaded";
			if (access(m->path, R_OK))
				fail(ENOENT, "build the modules (`make modules`) or give --dir DIR",
				     "module %s: no %s", m->name, m->path);
		}
		p += len + (p[len] == ',');
	}
	if (!nr_modules)
		usage("--modules: no module named");
}

/* ------------------------------------------------------------------ actions */

static bool module_loaded(const char *name)
{
	char path[128];
	struct stat st;

	format_path(path, sizeof(path), "/sys/module/%s/initstate", name);
	return !stat(path, &st);
}

/*
 * Parameters a module is loaded with: migration.ko runs the restore helper
 * installed beside this program (build/guest-bin in a checkout).
 */
static const char *module_params(const char *name, char *buf, size_t len)
{
	char exe[PATH_MAX];
	ssize_t n;
	char *slash;

	if (strcmp(name, "migration"))
		return "";
	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n <= 0)
		return "";
	exe[n] = 0;
	slash = strrchr(exe, '/');
	if (!slash)
		return "";
	*slash = 0;
	if ((size_t)snprintf(buf, len, "helper=%s/ssi-restore", exe) >= len)
		return "";
	return buf;
}

static void load_modules(void)
{
	char params[PATH_MAX + 32];

	for (int i = 0; i < nr_modules; i++) {
		struct loaded_module *m = &modules[i];
		int fd, err = 0;

		if (module_loaded(m->name)) {
			m->action = "already-loaded";
			note("%s: already loaded", m->name);
			continue;
		}
		fd = open(m->path, O_RDONLY | O_CLOEXEC);
		if (fd < 0 || syscall(SYS_finit_module, fd,
				      module_params(m->name, params,
						    sizeof(params)), 0))
			err = errno;
		if (fd >= 0)
			close(fd);
		if (err == EEXIST) {
			m->action = "already-loaded";
			continue;
		}
		if (err) {
			m->action = "failed";
			fail(err, err == EPERM ? "run it as root (CAP_SYS_MODULE)" :
			     "`dmesg | tail` says why; load the modules it needs first",
			     "could not load %s (%s): %s", m->name, m->path, strerror(err));
		}
		m->action = "loaded";
		note("loaded %s (%s)", m->name, m->path);
	}
}

static void membership(struct ssi_membership *m)
{
	if (ssisys(SSISYS_CLUSTER_MEMBERSHIP, m, sizeof(*m)) < 0)
		fail(errno, "load clms.ko (--modules ...,clms)",
		     "ssisys(SSISYS_CLUSTER_MEMBERSHIP) failed: %s", strerror(errno));
}

static const char *state_name(unsigned int state)
{
	if (state < sizeof(state_names) / sizeof(state_names[0]) && state_names[state])
		return state_names[state];
	return "UNKNOWN";
}

static bool all_up(const struct ssi_cluster_table *table, const struct ssi_membership *m)
{
	for (__u32 i = 0; i < table->nr_nodes; i++)
		if (m->state[table->nodes[i].node] != SSI_NODE_UP)
			return false;
	return m->quorum;
}

static bool in_table(const struct ssi_cluster_table *table, __u32 node)
{
	for (__u32 i = 0; i < table->nr_nodes; i++)
		if (table->nodes[i].node == node)
			return true;
	return false;
}

/* Poll until every node of the table is UP with quorum, or fail after @seconds. */
static void wait_all_up(const struct ssi_cluster_table *table, double seconds,
			struct ssi_membership *m)
{
	struct timespec now, deadline, poll = { 0, WAIT_POLL_NS };
	char states[64 * 16] = "";
	size_t len = 0;

	clock_gettime(CLOCK_MONOTONIC, &deadline);
	deadline.tv_sec += (time_t)seconds;
	deadline.tv_nsec += (long)((seconds - (double)(time_t)seconds) * 1e9);
	if (deadline.tv_nsec >= 1000000000L) {
		deadline.tv_sec++;
		deadline.tv_nsec -= 1000000000L;
	}
	for (;;) {
		membership(m);
		if (all_up(table, m)) {
			note("node %u: all %u nodes UP (transition %llu, master %u)", m->self,
			     table->nr_nodes, (unsigned long long)m->transition, m->master);
			return;
		}
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (now.tv_sec > deadline.tv_sec ||
		    (now.tv_sec == deadline.tv_sec && now.tv_nsec >= deadline.tv_nsec))
			break;
		nanosleep(&poll, NULL);
	}
	for (__u32 i = 0; i < table->nr_nodes && len < sizeof(states) - 32; i++)
		len += (size_t)snprintf(states + len, sizeof(states) - len, "%s%u=%s",
					i ? ", " : "", table->nodes[i].node,
					state_name(m->state[table->nodes[i].node]));
	fail(ETIMEDOUT,
	     "run `ssictl cluster setup` with the same key and table on every node; "
	     "`ssictl ics stats` shows which peers are connected, dmesg why not",
	     "after %g s, not every node is UP%s (node %u sees: %s; transition %llu, master %u)",
	     seconds, m->quorum ? "" : ", no quorum", m->self, states,
	     (unsigned long long)m->transition, m->master);
}

static void print_result(const struct ssi_cluster_table *table, long me, size_t key_bytes,
			 const char *name, const struct ssi_membership *m)
{
	char addr[INET_ADDRSTRLEN];
	bool first = true;

	if (!as_json)
		return;
	printf("{\n  \"ok\": true,\n");
	json_modules(stdout);
	printf(",\n  \"node\": %ld,\n  \"key_bytes\": %zu,\n  \"table\": {", me, key_bytes);
	for (__u32 n = 1; n <= SSI_MAX_NODES; n++) {
		for (__u32 i = 0; i < table->nr_nodes; i++) {
			if (table->nodes[i].node != n)
				continue;
			inet_ntop(AF_INET, &table->nodes[i].addr, addr, sizeof(addr));
			printf("%s\"%u\": \"%s\"", first ? "" : ", ", n, addr);
			first = false;
		}
	}
	printf("},\n  \"table_source\": \"--peer\",\n  \"name\": ");
	if (name)
		json_string(stdout, name);
	else
		fputs("null", stdout);
	printf(",\n  \"warnings\": []");
	if (m) {
		printf(",\n  \"membership\": {\"transition\": %llu, \"master\": %u, "
		       "\"self\": %u, \"quorum\": %s, \"nr_configured\": %u, \"states\": {",
		       (unsigned long long)m->transition, m->master, m->self,
		       m->quorum ? "true" : "false", m->nr_configured);
		first = true;
		for (__u32 n = 1; n <= SSI_MAX_NODES; n++) {
			if (m->state[n] == SSI_NODE_NEVERUP && !in_table(table, n) && n != m->self)
				continue;
			printf("%s\"%u\": \"%s\"", first ? "" : ", ", n, state_name(m->state[n]));
			first = false;
		}
		printf("}}");
	}
	printf("\n}\n");
}

int main(int argc, char **argv)
{
	static struct ssi_cluster_table table;
	unsigned char key[SSI_KEY_MAX];
	const char *key_file = NULL, *module_list = NULL, *name = NULL, *dir_arg = NULL;
	struct ssi_membership m;
	char dir[PATH_MAX], *end;
	double wait = -1;
	size_t key_len;
	long me;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (!strcmp(a, "--json")) {
			as_json = true;
			continue;
		}
		if (!strcmp(a, "-h") || !strcmp(a, "--help"))
			usage("join this node to an ssikit cluster (see ssictl/cluster_up.c)");
		if (strcmp(a, "--key-file") && strcmp(a, "--peer") && strcmp(a, "--dir") &&
		    strcmp(a, "--modules") && strcmp(a, "--name") && strcmp(a, "--wait"))
			usage("no such option: %s", a);
		if (!v)
			usage("%s needs a value", a);
		i++;
		if (!strcmp(a, "--key-file")) {
			key_file = v;
		} else if (!strcmp(a, "--peer")) {
			if (table.nr_nodes == SSI_MAX_NODES)
				usage("more than %d --peer options", SSI_MAX_NODES);
			add_peer(&table, v);
		} else if (!strcmp(a, "--dir")) {
			dir_arg = v;
		} else if (!strcmp(a, "--modules")) {
			module_list = v;
		} else if (!strcmp(a, "--name")) {
			name = v;
		} else {
			errno = 0;
			wait = strtod(v, &end);
			if (*end || errno || !(wait >= 0 && wait <= 3600))
				usage("--wait %s is out of range: give 0..3600 seconds", v);
		}
	}
	if (!key_file)
		usage("--key-file is required");
	if (!table.nr_nodes)
		usage("give the cluster table as --peer NODE=ADDRESS options");
	if (!module_list)
		usage("--modules is required (in load order, e.g. ssi_core,ics,clms,vproc)");
	if (name && (!*name || strlen(name) >= SSI_NAME_MAX))
		usage("--name: use 1..%d printable ASCII characters", SSI_NAME_MAX - 1);
	for (const char *c = name; c && *c; c++)
		if (*c < 0x21 || *c > 0x7e)
			usage("--name: use 1..%d printable ASCII characters", SSI_NAME_MAX - 1);
	if (dir_arg)
		format_path(dir, sizeof(dir), "%s", dir_arg);
	else
		default_module_dir(dir, sizeof(dir));

	/* Every input is checked before the kernel is touched. */
	add_modules(module_list, dir);
	key_len = read_key(key_file, key);
	load_modules();
	/* ssisys answers once ssi_core is loaded: the node number comes after the load. */
	me = ssisys(SSISYS_NODE_NUM, NULL, 0);
	if (me < 0)
		fail(errno, "boot the ssikit kernel (patches/) and load ssi_core",
		     "ssisys(SSISYS_NODE_NUM) failed: %s", strerror(errno));
	if (!in_table(&table, (__u32)me))
		fail(EINVAL, "add --peer for this node, or run it on a node of the table",
		     "this node (node %ld) is not in the cluster table", me);
	if (ssisys(SSISYS_ICS_SET_KEY, key, key_len) < 0)
		fail(errno, "load ics.ko first (--modules ssi_core,ics,...)",
		     "ssisys(SSISYS_ICS_SET_KEY) failed: %s", strerror(errno));
	memset(key, 0, sizeof(key));
	note("node %ld: cluster key set (%zu bytes)", me, key_len);
	if (ssisys(SSISYS_CLUSTER_SET_TABLE, &table, sizeof(table)) < 0)
		fail(errno, "every node 1..63 at most once, this node among them",
		     "ssisys(SSISYS_CLUSTER_SET_TABLE) failed: %s", strerror(errno));
	note("node %ld: cluster table set (%u nodes)", me, table.nr_nodes);
	if (name) {
		if (ssisys(SSISYS_CLUSTER_SET_NAME, (void *)name, strlen(name)) < 0)
			fail(errno, "load clms.ko (--modules ...,clms)",
			     "ssisys(SSISYS_CLUSTER_SET_NAME) failed: %s", strerror(errno));
		note("node %ld: cluster name set to %s", me, name);
	}
	if (wait > 0) {
		wait_all_up(&table, wait, &m);
		print_result(&table, me, key_len, name, &m);
	} else {
		print_result(&table, me, key_len, name, NULL);
	}
	return 0;
}

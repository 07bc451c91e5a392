// SPDX-License-Identifier: GPL-2.0-only
/*
 * clms-tool: a small static helper for CLMS tests in QEMU guests, where a
 * Python start costs seconds.  Built on the host by tests/cluster/test_clms.py
 * into build/bin/clms-tool:
 *
 *   gcc -static -O2 -Wall -I abi -o build/bin/clms-tool kernel/clms/tools/clms-tool.c
 *
 * clms-tool setup KEY N        key (a 16..64 byte string) and the harness
 *                              table: nodes 1..N at 169.254.77.<n>
 * clms-tool membership         this node's view, one line
 * clms-tool info NODE          clusternode_info, key=value
 * clms-tool info-len NODE LEN  clusternode_info with a LEN-byte buffer
 *                              (of 4096 bytes filled with 0xaa); prints
 *                              "ret=R errno=NAME written=W", W the end of
 *                              the last byte that is no longer 0xaa
 * clms-tool name | setname NAME
 * clms-tool raw CMD LEN [U32 [null]]
 *                              ssisys(CMD, buf, LEN), buf's first u32 = U32,
 *                              or a NULL buf; prints "ret=R errno=NAME"
 * clms-tool setname-raw HEX    SET_NAME with exactly these bytes
 * clms-tool wait-down NODE MS  waits (poll on sysfs members, woken by every
 *                              change) until NODE is not UP in the
 *                              membership (or MS ms pass); prints
 *                              CLOCK_REALTIME ns
 *                              and the state, and logs "clms-tool: node NODE
 *                              STATE" to /dev/kmsg (so the host sees the
 *                              moment on the console)
 * clms-tool now                CLOCK_REALTIME ns
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/syscall.h>

#include "ssi_abi.h"

static const char *const state_names[] = {
	"NEVERUP", "COMINGUP", "UP", "SHUTDOWN",
	"GOINGDOWN", "KCLEANUP", "UCLEANUP", "DOWN",
};

static long ssisys(unsigned int cmd, void *buf, size_t len)
{
	return syscall(__NR_ssisys, cmd, buf, len);
}

static const char *errno_name(int e)
{
	const char *name = e ? strerrorname_np(e) : "0";

	return name ? name : "other";
}

static int die(const char *what)
{
	fprintf(stderr, "clms-tool: %s: %s\n", what, strerror(errno));
	return 1;
}

static const char *state_name(unsigned int s)
{
	return s < 8 ? state_names[s] : "?";
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

static int cmd_setup(const char *key, int n)
{
	struct ssi_cluster_table t;
	int i;

	if (ssisys(SSISYS_ICS_SET_KEY, (void *)key, strlen(key)) < 0)
		return die("set key");
	memset(&t, 0, sizeof(t));
	if (n < 1 || n > SSI_MAX_NODES)
		return die("node count");
	t.nr_nodes = n;
	for (i = 0; i < n; i++) {
		unsigned char *a = (unsigned char *)&t.nodes[i].addr;

		t.nodes[i].node = i + 1;
		a[0] = 169;
		a[1] = 254;
		a[2] = 77;
		a[3] = i + 1;
	}
	if (ssisys(SSISYS_CLUSTER_SET_TABLE, &t, sizeof(t)) < 0)
		return die("set table");
	return 0;
}

static int cmd_membership(void)
{
	struct ssi_membership m;
	int n;

	if (ssisys(SSISYS_CLUSTER_MEMBERSHIP, &m, sizeof(m)) < 0)
		return die("membership");
	printf("transition=%llu master=%u self=%u quorum=%u configured=%u",
	       (unsigned long long)m.transition, m.master, m.self, m.quorum,
	       m.nr_configured);
	for (n = 1; n < 64; n++)
		if (m.state[n])
			printf(" %d=%s", n, state_name(m.state[n]));
	printf("\n");
	return 0;
}

static int cmd_info(unsigned int node)
{
	struct ssi_node_info i;

	memset(&i, 0, sizeof(i));
	i.node = node;
	if (ssisys(SSISYS_CLUSTERNODE_INFO, &i, sizeof(i)) < 0)
		return die("clusternode_info");
	printf("node=%u state=%s addr=%u cpus=%u mem_total_kb=%llu ", i.node,
	       state_name(i.state), i.addr, i.cpus,
	       (unsigned long long)i.mem_total_kb);
	printf("mem_free_kb=%llu load=%u,%u,%u incarnation=%u since_ns=%llu transition=%llu ",
	       (unsigned long long)i.mem_free_kb, i.load[0], i.load[1],
	       i.load[2], i.incarnation, (unsigned long long)i.since_ns,
	       (unsigned long long)i.transition);
	printf("nr_running=%u flags=%u mem_available_kb=%llu figures_age_ms=%u\n",
	       i.nr_running, i.flags, (unsigned long long)i.mem_available_kb,
	       i.figures_age_ms);
	return 0;
}

static int cmd_info_len(unsigned int node, size_t len)
{
	static unsigned char buf[4096];
	size_t written = 0, k;
	long ret;

	if (len > sizeof(buf))
		return die("len");
	memset(buf, 0xaa, sizeof(buf));
	memcpy(buf, &node, sizeof(node));
	ret = ssisys(SSISYS_CLUSTERNODE_INFO, buf, len);
	for (k = sizeof(node); k < sizeof(buf); k++)
		if (buf[k] != 0xaa)
			written = k + 1;
	printf("ret=%ld errno=%s written=%zu\n", ret,
	       errno_name(ret < 0 ? errno : 0), written);
	return 0;
}

static int cmd_raw(unsigned int cmd, size_t len, uint32_t first, int null)
{
	static unsigned char buf[4096];
	long ret;

	if (len > sizeof(buf))
		return die("len");
	memcpy(buf, &first, sizeof(first));
	ret = ssisys(cmd, null ? NULL : buf, len);
	printf("ret=%ld errno=%s\n", ret, errno_name(ret < 0 ? errno : 0));
	return 0;
}

static int cmd_setname_raw(const char *hex)
{
	unsigned char buf[256];
	size_t len = strlen(hex) / 2, i;
	long ret;

	if (len > sizeof(buf))
		return die("name");
	for (i = 0; i < len; i++) {
		unsigned int b;

		if (sscanf(hex + 2 * i, "%2x", &b) != 1)
			return die("name");
		buf[i] = b;
	}
	ret = ssisys(SSISYS_CLUSTER_SET_NAME, buf, len);
	printf("ret=%ld errno=%s\n", ret, errno_name(ret < 0 ? errno : 0));
	return 0;
}

/* Reads (and so re-arms for poll) a sysfs file. */
static void drain(int fd)
{
	char buf[4096];

	lseek(fd, 0, SEEK_SET);
	while (read(fd, buf, sizeof(buf)) > 0)
		;
}

static int cmd_wait_down(unsigned int node, long ms)
{
	uint64_t start = now_ns(), end = start + (uint64_t)ms * 1000000;
	struct ssi_membership m;
	struct pollfd pfd = { .events = POLLPRI | POLLERR };

	/* CLMS wakes poll() on members at every change of the view. */
	pfd.fd = open("/sys/kernel/ssi/clms/members", O_RDONLY);
	for (;;) {
		uint64_t t;

		if (pfd.fd >= 0)
			drain(pfd.fd);
		t = now_ns();

		if (ssisys(SSISYS_CLUSTER_MEMBERSHIP, &m, sizeof(m)) < 0)
			return die("membership");
		if (m.state[node] != SSI_NODE_UP) {
			FILE *kmsg = fopen("/dev/kmsg", "w");

			if (kmsg) {
				fprintf(kmsg, "<3>clms-tool: node %u %s\n", node,
					state_name(m.state[node]));
				fclose(kmsg);
			}
			printf("%llu %s\n", (unsigned long long)t,
			       state_name(m.state[node]));
			return 0;
		}
		if (t > end) {
			printf("timeout\n");
			return 1;
		}
		if (pfd.fd < 0 || poll(&pfd, 1, 50) < 0)
			usleep(1000);
	}
}

int main(int argc, char **argv)
{
	char name[SSI_NAME_MAX + 1];

	if (argc >= 4 && !strcmp(argv[1], "setup"))
		return cmd_setup(argv[2], atoi(argv[3]));
	if (argc >= 2 && !strcmp(argv[1], "membership"))
		return cmd_membership();
	if (argc >= 3 && !strcmp(argv[1], "info"))
		return cmd_info(strtoul(argv[2], NULL, 0));
	if (argc >= 2 && !strcmp(argv[1], "name")) {
		memset(name, 0, sizeof(name));
		if (ssisys(SSISYS_CLUSTER_NAME, name, SSI_NAME_MAX) < 0)
			return die("cluster name");
		printf("%s\n", name);
		return 0;
	}
	if (argc >= 3 && !strcmp(argv[1], "setname")) {
		if (ssisys(SSISYS_CLUSTER_SET_NAME, argv[2],
			   strlen(argv[2])) < 0)
			return die("set name");
		return 0;
	}
	if (argc >= 4 && !strcmp(argv[1], "info-len"))
		return cmd_info_len(strtoul(argv[2], NULL, 0),
				    strtoul(argv[3], NULL, 0));
	if (argc >= 4 && !strcmp(argv[1], "raw"))
		return cmd_raw(strtoul(argv[2], NULL, 0),
			       strtoul(argv[3], NULL, 0),
			       argc > 4 ? strtoul(argv[4], NULL, 0) : 0,
			       argc > 5 && !strcmp(argv[5], "null"));
	if (argc >= 3 && !strcmp(argv[1], "setname-raw"))
		return cmd_setname_raw(argv[2]);
	if (argc >= 2 && !strcmp(argv[1], "now")) {
		printf("%llu\n", (unsigned long long)now_ns());
		return 0;
	}
	if (argc >= 4 && !strcmp(argv[1], "wait-down"))
		return cmd_wait_down(strtoul(argv[2], NULL, 0),
				     strtol(argv[3], NULL, 0));
	fprintf(stderr, "usage: see the comment at the top of clms-tool.c\n");
	return 2;
}

/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * ssikit user/kernel ABI: the one contract shared by the kernel patch
 * series (installed as include/uapi/linux/ssi.h), the SSI modules and the
 * cffi binding in abi/.  Keep it parseable by cffi: plain #defines with
 * integer literals and fixed-width structs only.
 */
#ifndef _UAPI_LINUX_SSI_H
#define _UAPI_LINUX_SSI_H

#include <linux/types.h>

#define SSI_ABI_VERSION		1

/* x86_64 syscall numbers (548+ is the range x86 leaves free of x32). */
#define __NR_ssi_rexec		548
#define __NR_ssi_rfork		549
#define __NR_ssi_migrate	550
#define __NR_ssisys		551

/* Node numbers are 1..SSI_MAX_NODES; 0 means "not clustered". */
#define SSI_MAX_NODES		63
/* Clusterwide PIDs: pid = node << SSI_PID_NODE_SHIFT | local. */
#define SSI_PID_NODE_SHIFT	16
#define SSI_PID_LOCAL_MASK	0xffff

/* ssisys(cmd, buf, len) commands; served by whichever module owns them. */
#define SSISYS_ABI_VERSION	0	/* returns SSI_ABI_VERSION */
#define SSISYS_NODE_NUM		1	/* returns this node's number */
#define SSISYS_MAX_NODES	2	/* returns SSI_MAX_NODES */
/* ICS (ics.ko); both need CAP_SYS_ADMIN. */
#define SSISYS_ICS_SET_KEY	8	/* buf: the cluster key, 16..64 bytes */
#define SSISYS_CLUSTER_SET_TABLE 9	/* buf: struct ssi_cluster_table */
/* CLMS (clms.ko). */
#define SSISYS_CLUSTER_MEMBERSHIP 16	/* buf: struct ssi_membership (out) */
#define SSISYS_CLUSTERNODE_INFO	17	/* buf: struct ssi_node_info (in/out) */
#define SSISYS_CLUSTER_NAME	18	/* buf: char[SSI_NAME_MAX] (out) */
#define SSISYS_CLUSTER_SET_NAME	19	/* buf: name, 1..SSI_NAME_MAX-1 bytes */
/* vproc (vproc.ko): clusterwide processes. */
#define SSISYS_VPROC_WHERE	24	/* buf: struct ssi_vproc_where (in/out) */
#define SSISYS_VPROC_LIST	25	/* buf: struct ssi_vproc_list (in/out) */
#define SSISYS_VPROC_LOCALVIEW	26	/* buf: struct ssi_vproc_localview */
/* Process migration (migration.ko). */
#define SSISYS_MIG_RESTORE	28	/* restore helper only: buf: struct ssi_mig_restore */
#define SSISYS_MIG_REAPED	29	/* restore helper only: buf: struct ssi_mig_reaped */
#define SSISYS_MIG_RESTORE_THREAD 30	/* restore helper only: buf: struct ssi_mig_restore */
/* Remote files (rfile.ko). */
#define SSISYS_RFILE_GETFD	32	/* buf: struct ssi_rfile_getfd (in) */
/* ICS self-test service (ics_test.ko): tests and benchmarks only. */
#define SSISYS_ICS_TEST		40	/* buf: struct ssi_ics_test (in/out) */
#define SSISYS_NR_CMDS		64	/* commands are 0..SSISYS_NR_CMDS-1 */

#define SSI_NAME_MAX		32

/* Node states, as in OpenSSI. */
#define SSI_NODE_NEVERUP	0
#define SSI_NODE_COMINGUP	1
#define SSI_NODE_UP		2
#define SSI_NODE_SHUTDOWN	3
#define SSI_NODE_GOINGDOWN	4
#define SSI_NODE_KCLEANUP	5
#define SSI_NODE_UCLEANUP	6
#define SSI_NODE_DOWN		7

#define SSI_KEY_MIN		16
#define SSI_KEY_MAX		64

/* One configured node: number and IPv4 address (network byte order). */
struct ssi_node_addr {
	__u32 node;
	__u32 addr;
};

/* The cluster table; nodes[] has nr_nodes valid entries, 63 = SSI_MAX_NODES. */
struct ssi_cluster_table {
	__u32 nr_nodes;
	__u32 reserved;		/* must be 0 */
	struct ssi_node_addr nodes[63];
};

/*
 * This node's view of the cluster.  state[] is indexed by node number
 * (index 0 unused) and holds SSI_NODE_* for every configured node,
 * SSI_NODE_NEVERUP for the rest.  quorum is 1 while this node's side holds
 * a majority of the cluster table; without it the node does not act as
 * part of the cluster.
 */
struct ssi_membership {
	__u64 transition;	/* bumped on every membership change */
	__u32 master;		/* CLMS master node, 0 while none */
	__u32 self;
	__u32 quorum;
	__u32 nr_configured;
	__u8 state[64];
};

/*
 * clusternode_info(): set node, the rest is filled in.  The load figures
 * (cpus..load, nr_running, mem_available_kb) are this node's own, sampled
 * at the call, or the ones the node's last heartbeat carried (sent every
 * heartbeat_ms, 100 ms by default), figures_age_ms ago; all 0 (cpus 0)
 * while the node is not heard.
 *
 * The fields from nr_running on came with load leveling (a policy daemon
 * compares nodes with them: ssictl loadlevel).  SSISYS_CLUSTERNODE_INFO
 * takes any len >= SSI_NODEINFO_SIZE_V1, the size before them, and
 * writes min(len, sizeof(struct ssi_node_info)) bytes; a kernel that has
 * them sets SSI_NODEINFO_LOAD in flags (an older one leaves it 0).
 */
#define SSI_NODEINFO_SIZE_V1	64
#define SSI_NODEINFO_LOAD	0x1	/* flags: nr_running... are set */
struct ssi_node_info {
	__u32 node;
	__u32 state;		/* SSI_NODE_* */
	__u32 addr;		/* IPv4, network byte order */
	__u32 cpus;		/* online CPUs */
	__u64 mem_total_kb;
	__u64 mem_free_kb;
	__u32 load[3];		/* load average x 100 (1, 5, 15 min) */
	__u32 incarnation;	/* changes each time the node boots */
	__u64 since_ns;		/* CLOCK_REALTIME of the last state change */
	__u64 transition;	/* transition that set the current state */
	/* Load-leveling figures (SSI_NODEINFO_LOAD). */
	__u32 nr_running;	/* runnable tasks over all CPUs (the run queue),
				 * the sampling task not counted: the caller
				 * (this node), CLMS's worker (others)
				 */
	__u32 flags;		/* SSI_NODEINFO_LOAD */
	__u64 mem_available_kb;	/* MemAvailable: memory a workload can use */
	__u32 figures_age_ms;	/* age of the figures; 0 for this node */
	__u32 reserved;		/* 0 */
};

/* SSISYS_ICS_TEST: run @count RPCs of @op against @node, back to back. */
#define SSI_ICS_TEST_NULL	1	/* null call */
#define SSI_ICS_TEST_ECHO	2	/* echo call with @size bytes each way */
#define SSI_ICS_TEST_PING	3	/* one-way message */
#define SSI_ICS_TEST_ECHO_PAGES	4	/* echo call with @size bytes each way
					 * as whole pages (a multiple of 4096)
					 */

struct ssi_ics_test {
	__u32 node;
	__u32 op;		/* SSI_ICS_TEST_* */
	__u32 count;		/* 1..1000000 */
	__u32 size;		/* echo payload, 0..65536 */
	__u32 timeout_ms;	/* per call, 1..60000 */
	__u32 errors;		/* out: failed calls */
	__s32 last_error;	/* out: last failure, negative errno */
	__u32 reserved;		/* must be 0 */
	__u64 elapsed_ns;	/* out: wall time of the whole run */
};

/*
 * SSISYS_MIG_RESTORE: called by the restore helper (kernel/vproc/tools/
 * ssi-restore.c) in the task it created with the migrating process's PID:
 * the task becomes that process and the call returns into it.  Needs
 * CAP_SYS_ADMIN and a session offered for that PID.  The process's other
 * threads: SSISYS_MIG_RESTORE_THREAD from a thread the helper made with
 * the TID in @pid, before the leader calls SSISYS_MIG_RESTORE.
 */
struct ssi_mig_restore {
	__u64 session;
	__s32 pid;
	__u32 flags;		/* out: SSI_MIG_RESTORE_EXEC */
	__u64 exec_buf;		/* in: room for rexec's program and arguments */
	__u64 exec_len;		/* in: its size; out: the bytes written */
};

/*
 * SSI_MIG_RESTORE_EXEC: the process came by rexec(2): SSISYS_MIG_RESTORE
 * returned 0 into the helper with the process's credentials, files and
 * directory in place, and exec_buf holding __u32 argc, __u32 envc, then
 * NUL-terminated strings: the path, argc arguments, envc environment
 * entries.  The helper executes it.
 */
#define SSI_MIG_RESTORE_EXEC	0x1
#define SSI_MIG_EXEC_MAX	65536	/* bytes of path, arguments, environment */

/*
 * SSISYS_MIG_REAPED: the restore helper reaped @pid with wait @status, or
 * saw it stop or continue (a WIFSTOPPED or WIFCONTINUED @status).
 */
struct ssi_mig_reaped {
	__s32 pid;
	__s32 status;
};

/*
 * SSISYS_RFILE_GETFD: a clusterwide pidfd_getfd(2): returns a new fd of the
 * caller for fd @fd of process @pid running on @node (0: this node), the
 * file itself on this node, else a proxy of it (kernel/ipc/README.md).
 */
#define SSI_RFILE_GETFD_CLOEXEC	1
struct ssi_rfile_getfd {
	__u32 node;		/* where @pid runs; 0: this node */
	__s32 pid;
	__s32 fd;
	__u32 flags;		/* SSI_RFILE_GETFD_CLOEXEC */
};

/* SSISYS_VPROC_WHERE: set pid; node is the node the process runs on. */
struct ssi_vproc_where {
	__s32 pid;
	__u32 node;		/* out */
};

/* One process of the clusterwide list. */
struct ssi_vproc_proc {
	__s32 pid;
	__s32 ppid;
	__s32 pgid;
	__s32 sid;
	__u32 uid;		/* real uid */
	__u32 euid;
	__u32 node;		/* where it runs */
	__u32 state;		/* ps state letter: R, S, D, T, t, Z, X, I */
	__u64 start_ns;		/* boot-based start time on its node */
	char comm[16];		/* NUL-terminated */
};

/*
 * SSISYS_VPROC_LIST: user processes (pid >= 65536) of every UP node, and
 * this node's.  @procs points to @capacity entries; @count is set to the
 * number written, @total to the number there were (may exceed @capacity).
 * @flags SSI_VPROC_LIST_LOCAL: this node only.  Nodes that fail to answer
 * are counted in @failed_nodes (bit n = node n).
 */
#define SSI_VPROC_LIST_LOCAL	1
struct ssi_vproc_list {
	__u64 procs;		/* user pointer to struct ssi_vproc_proc[] */
	__u32 capacity;
	__u32 count;		/* out */
	__u32 total;		/* out */
	__u32 flags;
	__u64 failed_nodes;	/* out */
};

/*
 * SSISYS_VPROC_LOCALVIEW: @set 1 confines the caller (and children it
 * forks later) to this node's processes in /proc, kill and the other
 * process calls; 0 lifts it; SSI_VPROC_LOCALVIEW_QUERY changes nothing.
 * Returns the previous state (0 or 1).
 */
#define SSI_VPROC_LOCALVIEW_QUERY	2
struct ssi_vproc_localview {
	__u32 set;
	__u32 reserved;		/* must be 0 */
};

#endif /* _UAPI_LINUX_SSI_H */

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
#define SSISYS_NR_CMDS		64	/* commands are 0..SSISYS_NR_CMDS-1 */

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

#endif /* _UAPI_LINUX_SSI_H */

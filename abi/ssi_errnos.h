/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * The errno set of every SSI system call and every ssisys command: the one
 * table the fuzzer (tests/fuzz/ssi_fuzz.c) checks calls against and
 * abi/ERRNOS.md documents (tests/unit/test_fuzz_tool.py fails when the two
 * disagree).  Derived from the code: patches/0001 (the syscall entry points),
 * kernel/core/ssi_core.c (the ssisys table) and each command's handler.
 *
 * Rules that hold for every entry and are not repeated in the lists:
 *  - ENOSYS while no loaded module serves the call ("module" not loaded,
 *    or "" = no module serves it yet), and only ENOSYS then;
 *  - a command number below SSISYS_NR_CMDS with no entry here is
 *    unassigned: always ENOSYS;
 *  - SSI_ERRNO_ADMIN: the call checks CAP_SYS_ADMIN before anything else,
 *    so a caller without it gets EPERM and only EPERM.
 *
 * Usage (X-macro): define SSI_ERRNO(x) and SSI_ERRNO_CALL(...) and expand
 * SSI_ERRNO_TABLE.  SSI_ERRNO(x) wraps each errno of a list, e.g.
 * "#define SSI_ERRNO(x) x," for an int array.
 *
 *   SSI_ERRNO_CALL(id, syscall, cmd, module, flags, errnos)
 *     id       C identifier of the entry
 *     syscall  __NR_* number (abi/ssi_abi.h)
 *     cmd      the ssisys command, or one of SSI_ERRNO_CMD_*
 *     module   .ko name that serves it ("" = none yet)
 *     flags    SSI_ERRNO_ADMIN or 0
 *     errnos   SSI_ERRNO(E...) ... (may be empty: success only)
 */
#ifndef _SSI_ERRNOS_H
#define _SSI_ERRNOS_H

#define SSI_ERRNO_CMD_NONE		(-1)	/* not ssisys */
#define SSI_ERRNO_CMD_OUT_OF_RANGE	(-2)	/* ssisys cmd >= SSISYS_NR_CMDS */

#define SSI_ERRNO_ADMIN		1

/*
 * An ICS call to another node (kernel/ics/ics_rpc.c ics_call(), through
 * ics_conn_get_out() and ics_conn_send()), when the command passes its
 * outcome on: the peer's own error, or the transport's.
 */
#define SSI_ERRNOS_ICS							\
	SSI_ERRNO(EINVAL) SSI_ERRNO(ENOTCONN) SSI_ERRNO(EACCES)		\
	SSI_ERRNO(ENOMEM) SSI_ERRNO(ENOBUFS) SSI_ERRNO(ETIMEDOUT)	\
	SSI_ERRNO(EINTR) SSI_ERRNO(EPIPE) SSI_ERRNO(ECONNRESET)		\
	SSI_ERRNO(ECONNREFUSED) SSI_ERRNO(EHOSTUNREACH)			\
	SSI_ERRNO(ENETUNREACH) SSI_ERRNO(EHOSTDOWN) SSI_ERRNO(EPROTO)	\
	SSI_ERRNO(EMSGSIZE) SSI_ERRNO(EPROTONOSUPPORT) SSI_ERRNO(EBADMSG)

/*
 * The same after vproc_errno() (kernel/vproc/vproc_main.c), which turns
 * "the node is gone" errors (EHOSTDOWN, ENOTCONN, ETIMEDOUT, ECONNREFUSED,
 * ECONNRESET, EPIPE, EREMOTE) into ESRCH.
 */
#define SSI_ERRNOS_VPROC_ICS						\
	SSI_ERRNO(EINVAL) SSI_ERRNO(EACCES) SSI_ERRNO(ENOMEM)		\
	SSI_ERRNO(ENOBUFS) SSI_ERRNO(EINTR) SSI_ERRNO(EHOSTUNREACH)	\
	SSI_ERRNO(ENETUNREACH) SSI_ERRNO(EPROTO) SSI_ERRNO(EMSGSIZE)	\
	SSI_ERRNO(EPROTONOSUPPORT) SSI_ERRNO(EBADMSG)

/*
 * The same after rfile's getfd (kernel/ipc/rfile_main.c), which turns "the
 * node is gone" errors (EHOSTDOWN, ENOTCONN, ETIMEDOUT, ECONNREFUSED,
 * ECONNRESET, EBADMSG, EMSGSIZE: rfile_errno()'s EIO) into ESRCH.
 */
#define SSI_ERRNOS_RFILE_ICS						\
	SSI_ERRNO(EINVAL) SSI_ERRNO(EACCES) SSI_ERRNO(ENOMEM)		\
	SSI_ERRNO(ENOBUFS) SSI_ERRNO(EINTR) SSI_ERRNO(EPIPE)		\
	SSI_ERRNO(EHOSTUNREACH) SSI_ERRNO(ENETUNREACH) SSI_ERRNO(EPROTO) \
	SSI_ERRNO(EPROTONOSUPPORT)

/* migrate(), rfork() and rexec() once migration.ko serves them (mig_errno()) */
#define SSI_ERRNOS_MIG							\
	SSI_ERRNO(EINVAL) SSI_ERRNO(EHOSTDOWN) SSI_ERRNO(EOPNOTSUPP)	\
	SSI_ERRNO(EBUSY) SSI_ERRNO(EAGAIN) SSI_ERRNO(ENOMEM)		\
	SSI_ERRNO(E2BIG) SSI_ERRNO(ETIMEDOUT) SSI_ERRNO(EPROTO)		\
	SSI_ERRNO(ESRCH) SSI_ERRNO(EINTR)

#define SSI_ERRNO_TABLE							\
	SSI_ERRNO_CALL(rexec, __NR_ssi_rexec, SSI_ERRNO_CMD_NONE,	\
		       "migration", 0, SSI_ERRNOS_MIG SSI_ERRNO(ENOENT)	\
		       SSI_ERRNO(EACCES) SSI_ERRNO(EPERM) SSI_ERRNO(ENOEXEC) \
		       SSI_ERRNO(EFAULT) SSI_ERRNO(ENOTDIR) SSI_ERRNO(ELOOP) \
		       SSI_ERRNO(ENAMETOOLONG))				\
	SSI_ERRNO_CALL(rfork, __NR_ssi_rfork, SSI_ERRNO_CMD_NONE,	\
		       "migration", 0, SSI_ERRNOS_MIG)			\
	SSI_ERRNO_CALL(migrate, __NR_ssi_migrate, SSI_ERRNO_CMD_NONE,	\
		       "migration", 0, SSI_ERRNOS_MIG)			\
	SSI_ERRNO_CALL(abi_version, __NR_ssisys, SSISYS_ABI_VERSION,	\
		       "ssi_core", 0, )					\
	SSI_ERRNO_CALL(node_num, __NR_ssisys, SSISYS_NODE_NUM,		\
		       "ssi_core", 0, )					\
	SSI_ERRNO_CALL(max_nodes, __NR_ssisys, SSISYS_MAX_NODES,		\
		       "ssi_core", 0, )					\
	SSI_ERRNO_CALL(ics_set_key, __NR_ssisys, SSISYS_ICS_SET_KEY,	\
		       "ics", SSI_ERRNO_ADMIN,				\
		       SSI_ERRNO(EINVAL) SSI_ERRNO(EFAULT) SSI_ERRNO(ENOMEM)) \
	SSI_ERRNO_CALL(cluster_set_table, __NR_ssisys,			\
		       SSISYS_CLUSTER_SET_TABLE, "ics", SSI_ERRNO_ADMIN,	\
		       SSI_ERRNO(EINVAL) SSI_ERRNO(EFAULT) SSI_ERRNO(ENOMEM)) \
	SSI_ERRNO_CALL(cluster_membership, __NR_ssisys,			\
		       SSISYS_CLUSTER_MEMBERSHIP, "clms", 0,		\
		       SSI_ERRNO(EINVAL) SSI_ERRNO(EFAULT))		\
	SSI_ERRNO_CALL(clusternode_info, __NR_ssisys,			\
		       SSISYS_CLUSTERNODE_INFO, "clms", 0,		\
		       SSI_ERRNO(EINVAL) SSI_ERRNO(EFAULT) SSI_ERRNO(ESRCH)) \
	SSI_ERRNO_CALL(cluster_name, __NR_ssisys, SSISYS_CLUSTER_NAME,	\
		       "clms", 0, SSI_ERRNO(EINVAL) SSI_ERRNO(EFAULT))	\
	SSI_ERRNO_CALL(cluster_set_name, __NR_ssisys,			\
		       SSISYS_CLUSTER_SET_NAME, "clms", SSI_ERRNO_ADMIN,	\
		       SSI_ERRNO(EFAULT) SSI_ERRNO(EAGAIN) SSI_ERRNOS_ICS) \
	SSI_ERRNO_CALL(vproc_where, __NR_ssisys, SSISYS_VPROC_WHERE,	\
		       "vproc", 0,					\
		       SSI_ERRNO(EFAULT) SSI_ERRNO(ESRCH) SSI_ERRNOS_VPROC_ICS) \
	SSI_ERRNO_CALL(vproc_list, __NR_ssisys, SSISYS_VPROC_LIST,	\
		       "vproc", 0,					\
		       SSI_ERRNO(EINVAL) SSI_ERRNO(EFAULT) SSI_ERRNO(ENOMEM)) \
	SSI_ERRNO_CALL(vproc_localview, __NR_ssisys,			\
		       SSISYS_VPROC_LOCALVIEW, "vproc", 0,		\
		       SSI_ERRNO(EINVAL) SSI_ERRNO(EFAULT))		\
	SSI_ERRNO_CALL(rfile_getfd, __NR_ssisys, SSISYS_RFILE_GETFD,	\
		       "rfile", 0,					\
		       SSI_ERRNO(EFAULT) SSI_ERRNO(EBADF) SSI_ERRNO(ESRCH) \
		       SSI_ERRNO(EPERM) SSI_ERRNO(EMFILE) SSI_ERRNO(ENFILE) \
		       SSI_ERRNOS_RFILE_ICS)				\
	SSI_ERRNO_CALL(ics_test, __NR_ssisys, SSISYS_ICS_TEST, "ics_test", \
		       SSI_ERRNO_ADMIN,					\
		       SSI_ERRNO(EINVAL) SSI_ERRNO(EFAULT) SSI_ERRNO(ENOMEM)) \
	SSI_ERRNO_CALL(out_of_range, __NR_ssisys,			\
		       SSI_ERRNO_CMD_OUT_OF_RANGE, "ssi_core", 0,	\
		       SSI_ERRNO(EINVAL))

#endif /* _SSI_ERRNOS_H */

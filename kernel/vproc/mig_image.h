/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The image of a frozen process, as the source sends it in mig.start: a
 * fixed header, then variable sections in this order, each as long as the
 * header says: supplementary groups (__le32 each), VMAs (struct
 * mig_img_vma then path_len bytes each), open files (struct mig_img_file
 * then path_len bytes each), pending signals (struct mig_img_sig each), the
 * FPU/xstate regset image, the cwd path, the executable's path, the other
 * threads (struct mig_img_thread then xstate_len bytes each), and for
 * rexec (flags MIG_IMG_REXEC: no memory, no registers) exec_len bytes of
 * program and arguments in the SSI_MIG_RESTORE_EXEC layout.  The header
 * holds the thread group leader's own registers and per-thread state.  All
 * little endian; every count and length is checked against the bytes
 * received before use (mig_image.c).  Private pages are not in the image:
 * the target pulls them with mig.pages.
 */
#ifndef _MIG_IMAGE_H
#define _MIG_IMAGE_H

#include <linux/types.h>

#define MIG_IMG_MAGIC		0x474d4953	/* "SIMG" */
#define MIG_IMG_VERSION		9	/* 2: threads; 3: rexec; 4: pre-copy;
					 * 5: per-thread nice, personality;
					 * 6: MIG_IMG_MAKE_IT_FAIL; 7: keepers;
					 * 8: pgid, sid; 9: CFS mappings
					 */
#define MIG_IMG_MAX		196608		/* mig.ics start: bytes<196608> */

#define MIG_NR_REGS		27	/* struct user_regs_struct, in order */
#define MIG_NR_SIGS		64
#define MIG_NR_RLIMITS		16
#define MIG_NR_AUXV		64	/* __le64 words of saved_auxv */
#define MIG_MAX_GROUPS		256
#define MIG_MAX_VMAS		4096
#define MIG_MAX_FILES		1024
#define MIG_MAX_SIGQ		256
#define MIG_MAX_XSTATE		16384
#define MIG_MAX_THREADS		64	/* besides the leader */

struct mig_img_sigaction {
	__le64 handler;
	__le64 flags;
	__le64 restorer;
	__le64 mask;
} __packed;

struct mig_img_hdr {
	__le32 magic;
	__le16 version;
	__le16 flags;
	__le32 nr_groups;
	__le32 nr_vmas;
	__le32 nr_files;
	__le32 nr_sigq;
	__le32 xstate_len;
	__le32 xstate_note;	/* NT_X86_XSTATE or NT_PRFPREG */
	__le32 cwd_len;
	__le32 exe_len;

	/* the task */
	__le32 ppid;		/* parent, as its deputy's node sees it */
	__le32 personality;
	__le32 umask;
	__le32 nice;		/* s32 */
	u8 comm[16];
	__le64 regs[MIG_NR_REGS];
	__le64 blocked;
	__le64 sas_ss_sp;
	__le64 sas_ss_size;
	__le32 sas_ss_flags;
	__le32 rseq_len;
	__le64 rseq;
	__le32 rseq_sig;
	__le32 nr_threads;	/* threads besides the leader */
	__le64 robust_list;
	__le64 robust_list_len;
	__le64 clear_child_tid;
	__le64 rlim_cur[MIG_NR_RLIMITS];
	__le64 rlim_max[MIG_NR_RLIMITS];
	struct mig_img_sigaction act[MIG_NR_SIGS];

	/* credentials, in the initial user namespace */
	__le32 uid, euid, suid, fsuid;
	__le32 gid, egid, sgid, fsgid;
	__le32 securebits;
	__le32 pad1;
	__le64 cap_inheritable, cap_permitted, cap_effective, cap_bset,
	       cap_ambient;

	/* the address space */
	__le64 start_code, end_code, start_data, end_data;
	__le64 start_brk, brk, start_stack;
	__le64 arg_start, arg_end, env_start, env_end;
	__le64 mmap_base, mmap_legacy_base;
	__le64 vvar_start, vdso_start;
	__le64 auxv[MIG_NR_AUXV];
	__le32 exec_len;
	__le32 dumpable;	/* SUID_DUMP_* of the mm */
	/*
	 * The nodes, other than its home, whose sub-deputies keep children
	 * of the process (bit n - 1 for node n): where its wait()s look and
	 * whom its moves and its exit are told.
	 */
	__le64 keepers;
	/* its process group and session, as its home node has them */
	__le32 pgid;
	__le32 sid;
} __packed;

#define MIG_IMG_REXEC		0x0001	/* execute a program there instead */
#define MIG_IMG_PRECOPIED	0x0002	/* the target staged the pages before */
#define MIG_IMG_MAKE_IT_FAIL	0x0004	/* the leader's /proc/PID/make-it-fail */

/* vm_flags bits carried (the rest is derived by mmap on the target) */
#define MIG_VMA_READ		0x0001
#define MIG_VMA_WRITE		0x0002
#define MIG_VMA_EXEC		0x0004
#define MIG_VMA_SHARED		0x0008
#define MIG_VMA_GROWSDOWN	0x0010
#define MIG_VMA_FILE		0x0020	/* path follows; re-mapped by path */
#define MIG_VMA_DONTDUMP	0x0040
#define MIG_VMA_LOCKED		0x0080
#define MIG_VMA_CFS		0x0100	/* of a CFS file: ino must match there */
#define MIG_VMA_MAYWRITE	0x0200	/* shared, may be made writable */

struct mig_img_vma {
	__le64 start;
	__le64 end;
	__le64 pgoff;
	__le32 flags;		/* MIG_VMA_* */
	__le32 path_len;
	__le64 ino;		/* MIG_VMA_CFS: the file's (the server's) */
} __packed;

/* How a descriptor comes back on the target. */
#define MIG_FILE_REOPEN		1	/* same file clusterwide: open path */
#define MIG_FILE_REMOTE		2	/* served by its holder through rfile */
#define MIG_FILE_DEAD		3	/* its holder went down: EIO, as before */

#define MIG_FILE_CLOEXEC	0x1

struct mig_img_file {
	__le32 fd;
	__le32 kind;		/* MIG_FILE_* */
	__le32 f_flags;
	__le32 fd_flags;	/* MIG_FILE_CLOEXEC */
	__le64 pos;
	__le32 same_as;		/* fd of an earlier entry sharing the file, or ~0 */
	__le32 rnode;		/* MIG_FILE_REMOTE, _DEAD: the holder */
	__le64 rid;		/* MIG_FILE_REMOTE, _DEAD: the export id */
	__le32 path_len;	/* MIG_FILE_REOPEN */
} __packed;

struct mig_img_sig {
	__le32 signo;
	__le32 code;
	__le32 pid;
	__le32 uid;
	__le32 shared;		/* 1: was group-wide pending */
	__le32 pad;
} __packed;

/* A thread besides the leader: what is its own (the rest is shared). */
struct mig_img_thread {
	__le32 tid;
	__le32 xstate_len;	/* the leader's: the same FPU model */
	__le64 regs[MIG_NR_REGS];
	__le64 blocked;
	__le64 sas_ss_sp;
	__le64 sas_ss_size;
	__le32 sas_ss_flags;
	__le32 rseq_sig;
	__le64 rseq;
	__le64 robust_list;
	__le64 clear_child_tid;
	u8 comm[16];
	__le32 nice;		/* s32 */
	__le32 personality;
} __packed;

#endif /* _MIG_IMAGE_H */

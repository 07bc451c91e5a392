/* SPDX-License-Identifier: GPL-2.0-only */
/* rfile internals shared by rfile_main.c, rfile_proxy.c and rfile_srv.c. */
#ifndef _RFILE_INTERNAL_H
#define _RFILE_INTERNAL_H

#include <linux/atomic.h>
#include <linux/fs.h>
#include <linux/jiffies.h>
#include <linux/list.h>
#include <linux/poll.h>
#include <linux/refcount.h>
#include <linux/spinlock.h>
#include <linux/ssi.h>
#include <linux/types.h>
#include <linux/wait.h>
#include <linux/workqueue.h>

#include "ics.h"
#include "rfile.h"

/* Every ICS call of rfile is bounded by this (a down node fails sooner). */
#define RFILE_TIMEOUT		(5 * HZ * ICS_SLOW_KERNEL_FACTOR)
/* Largest read or write one call carries (bytes<65536> in rfile.ics). */
#define RFILE_CHUNK		65536
/* Largest ioctl argument carried (bytes<64> in rfile.ics). */
#define RFILE_IOC_MAX		64
/* f_flags a proxy carries to the held file with every op (F_SETFL). */
#define RFILE_SETFL_MASK	(O_APPEND | O_NONBLOCK)
/* In a request's fl: the flags changed on the proxy, apply them. */
#define RFILE_FL_SET		0x80000000u
/* read/write flags: positioned at the request's pos (pread, pwrite). */
#define RFILE_IO_POS		1
/* read/write flags: at the held file's own f_pos, which moves (read, write). */
#define RFILE_IO_SHARED		2
/* lock ops and kinds (rfile.ics `lock`). */
#define RFILE_LK_SET		0
#define RFILE_LK_TEST		1
#define RFILE_LK_UNOWN		2
#define RFILE_LK_SETW		3	/* set, and wait if it conflicts */
#define RFILE_LK_CANCEL		4	/* no longer waiting (a signal) */
#define RFILE_LK_POSIX		0
#define RFILE_LK_OFD		1
#define RFILE_LK_FLOCK		2
/* f_mode bits a proxy mirrors from the held file. */
#define RFILE_FMODE_MIRROR	(FMODE_LSEEK | FMODE_PREAD | FMODE_PWRITE | \
				 FMODE_ATOMIC_POS | FMODE_STREAM)

/* Counters, /sys/kernel/ssi/rfile/<name>. */
enum rfile_counter {
	RFILE_CNT_EXPORTS,	/* exports made */
	RFILE_CNT_RELEASED,	/* exports released */
	RFILE_CNT_BAD_HANDLE,	/* requests refused: no such export or no ref */
	RFILE_CNT_BAD_REQUEST,	/* requests refused: out-of-range fields */
	RFILE_CNT_READY_SENT,	/* ready messages sent */
	RFILE_CNT_READY_RX,	/* ready messages received */
	RFILE_CNT_PROXIES,	/* proxies made */
	RFILE_NR_COUNTERS
};

extern atomic64_t rfile_counters[RFILE_NR_COUNTERS];

static inline void rfile_count(enum rfile_counter c)
{
	atomic64_inc(&rfile_counters[c]);
}

unsigned int rfile_self(void);
struct workqueue_struct *rfile_workqueue(void);

/* Test aid: pause after a no-twin readiness check (test_io_delay_ms). */
extern unsigned int rfile_test_io_delay_ms;
extern atomic_t rfile_test_io_delays;

/* The server side (rfile_srv.c): exports of this node's open files. */
struct rfile_export;
struct rfile_export *rfile_export_find(u64 id, unsigned int from);
void rfile_export_put_op(struct rfile_export *ex);
struct file *rfile_export_file(struct rfile_export *ex);
int rfile_ref_get(u64 id, unsigned int from, unsigned int to_node);
int rfile_ref_put(u64 id, unsigned int from, unsigned int to_node);
void rfile_srv_node_down(unsigned int node);
ssize_t rfile_table_show(char *buf);
int rfile_getfd_local(pid_t pid, int fd, const struct cred *cred,
		      struct file **filep);
int rfile_srv_init(void);
void rfile_srv_exit(void);

/* rfile_lkwait.c: POSIX lock requests that wait (RFILE_LK_SETW) */
struct file_lock;
int rfile_lkwait_set(struct file *file, u64 id, unsigned int node,
		     const struct file_lock *fl);
void rfile_lkwait_drop(struct file *file, unsigned int node,
		       fl_owner_t owner, const struct file_lock *fl);

/* The client side (rfile_proxy.c). */
bool rfile_ioctl_allowed(u32 cmd, u32 *in_len, u32 *out_len);
void rfile_proxy_ready(unsigned int node, u64 id, u32 mask);
void rfile_proxy_node_down(unsigned int node);
int rfile_errno(int err);
int rfile_proxy_init(void);
void rfile_proxy_exit(void);

#endif /* _RFILE_INTERNAL_H */

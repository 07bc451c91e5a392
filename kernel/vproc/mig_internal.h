/* SPDX-License-Identifier: GPL-2.0-only */
/* The migration module's private header (kernel/vproc/mig_*.c). */
#ifndef _MIG_INTERNAL_H
#define _MIG_INTERNAL_H

#include <linux/atomic.h>
#include <linux/bits.h>
#include <linux/completion.h>
#include <linux/list.h>
#include <linux/rcupdate.h>
#include <linux/refcount.h>
#include <linux/sched.h>
#include <linux/sched/signal.h>
#include <linux/ssi.h>
#include <linux/types.h>
#include <linux/wait.h>

#include "ics.h"
#include "mig_image.h"

struct mm_struct;
struct task_struct;
struct vm_area_struct;
struct workqueue_struct;

/* Every ICS call of this module is bounded by this (jiffies). */
#define MIG_CALL_TIMEOUT	(10 * HZ * ICS_SLOW_KERNEL_FACTOR)
/* A source gives up on a target that has not finished by then. */
#define MIG_RESTORE_TIMEOUT	(120 * HZ * ICS_SLOW_KERNEL_FACTOR)

/* How far up a migrant's local children look for its group and session. */
#define MIG_GROUP_DEPTH		64

/* Source side: one process being sent (mig_dump.c). */
struct mig_out {
	struct list_head link;
	refcount_t ref;
	u64 session;
	pid_t pid;
	unsigned int target;
	struct mm_struct *mm;		/* the frozen mm, mmget */
	struct completion done;
	int status;			/* from mig.done, or a local failure */
	bool finished;
	atomic_t pages;			/* sent so far */
	bool live;			/* pre-copy: the process runs */
	bool frozen;			/* its image is being taken or sent */
	bool precopied;			/* the target staged its pages */
};

/* mig.pages modes (mig.ics) */
#define MIG_PAGES_ALL		0
#define MIG_PAGES_PRECOPY	1
#define MIG_PAGES_DELTA		2

/* Source side: one thread's own state, written in its own context. */
struct mig_thread_rec {
	struct list_head link;
	struct task_struct *task;
	struct mig_img_thread t;
	void *xstate;
	u32 xstate_len;
	int err;
};

/* Source side: the threads of a process parked while it is sent. */
struct mig_group {
	refcount_t ref;
	spinlock_t lock;		/* recs, arrived, outcome */
	struct list_head recs;
	int expected;			/* threads asked to park */
	int arrived;
	wait_queue_head_t wq;
	int outcome;			/* 0: wait; 1: moved; < 0: resume */
	struct mig_deputy *dep;		/* for the leader, when it parked */
};

/* Target side: one process being received (mig_restore.c). */
struct mig_in {
	struct list_head link;
	refcount_t ref;
	u64 session;
	pid_t pid;
	unsigned int source;
	unsigned int home;
	void *image;
	size_t image_len;
	bool claimed;			/* a restoring task took it */
	unsigned long expires;		/* jiffies: unclaimed sessions go */
	/* its other threads, each restored by a task the helper made */
	u32 nr_threads;
	u32 arrived;
	wait_queue_head_t wq;
	int leader_status;		/* 1: pending; 0: restored; < 0 */
	const void *exec;		/* rexec: in image; else NULL */
	u32 exec_len;
	bool into_deputy;		/* a deputy here becomes the process */
};

/*
 * On a process's home node: the task it left behind (mig_deputy.c).  On a
 * node that is not its home, where it left children: a sub-deputy, the
 * same but for its place in the process tree, which is the home's.
 */
struct mig_deputy {
	struct list_head link;
	refcount_t ref;
	pid_t pid;
	struct task_struct *task;
	unsigned int node;		/* where the process runs now */
	wait_queue_head_t wq;
	bool exited;
	int exit_status;
	struct mig_in *homecoming;	/* the process comes back: restore it */
	struct list_head jobs;		/* mig_job: calls to make as us */
	bool closing;			/* it ends: no more jobs */
	int stop_signr;			/* the process stopped: stop with it */
	unsigned int remote_conts;	/* SIGCONTs we sent: not forwarded */
	/* the other threads' numbers, kept from reuse here while it is away */
	unsigned int nr_tids;
	pid_t tids[MIG_MAX_THREADS];
};

/* On a node running a process whose deputy is elsewhere (mig_restore.c). */
struct mig_migrant {
	struct list_head link;
	pid_t pid;
	pid_t ppid;
	unsigned int home;
	u64 keepers;			/* mig_img_hdr.keepers */
	pid_t pgid, sid;		/* as its home node has them */
	bool moved_on;			/* left again: its exit here is no exit */
};

/* A node's bit in mig_img_hdr.keepers and mig_migrant.keepers. */
static inline u64 mig_node_bit(unsigned int node)
{
	return node >= 1 && node <= SSI_MAX_NODES ? BIT_ULL(node - 1) : 0;
}

/* current's signal handlers: only exec changes them, never under us */
static inline struct sighand_struct *mig_sighand(void)
{
	return rcu_dereference_protected(current->sighand, 1);
}

/* mig_main.c */
extern unsigned int mig_self;
extern struct workqueue_struct *mig_wq;
extern char *mig_helper_path;
u64 mig_new_session(void);
int mig_check_node(unsigned int node);
u64 mig_keepers_settle(pid_t pid);
__printf(2, 3) void mig_refuse(pid_t pid, const char *fmt, ...);
void mig_outcome(pid_t pid, unsigned int node, int err);

/* mig_dump.c */
const struct user_regset *mig_regset(unsigned int note);
unsigned int mig_fpu_note(void);
int mig_queue(struct task_struct *task, unsigned int node, bool self);

/* A SIGCHLD about a child: si_pid, si_uid, si_status, si_utime, si_stime. */
static inline bool mig_siginfo_is_child(int signo, int code)
{
	return signo == SIGCHLD && code >= CLD_EXITED && code <= CLD_CONTINUED;
}

/* Sent with a value (sigqueue, mq_notify): si_pid, si_uid, si_value. */
static inline bool mig_siginfo_has_value(int code)
{
	return code == SI_QUEUE || code == SI_MESGQ;
}

void mig_forked(struct task_struct *child, unsigned int node);
int mig_queue_exec(unsigned int node, void *exec, u32 exec_len);
int mig_rfork_wait(pid_t pid);
struct mig_out *mig_out_find(u64 session, unsigned int target);
void mig_out_put(struct mig_out *out);
void mig_out_finish(struct mig_out *out, int status);
void mig_out_nodedown(unsigned int node);
struct mig_out *mig_out_new(pid_t pid, unsigned int target,
			    struct mm_struct *mm);
void mig_out_discard(struct mig_out *out);
bool mig_out_frozen(pid_t pid);
bool mig_special_vma(struct vm_area_struct *vma, const char **name);

/* mig_pages.c */
struct mig_pages_req;
struct mig_pages_rep;
int mig_serve_pages(struct mig_out *out, const struct mig_pages_req *req,
		    struct mig_pages_rep *rep);
struct mig_out *mig_precopy(struct task_struct *task, unsigned int node);
int mig_restore_pages(struct mig_in *in, const u64 *span, u32 nr_spans,
		      bool precopied);
void mig_stage_nodedown(unsigned int node);
void mig_stage_exit(void);

/* A migrant here whose home is gone, with a parent of its origin. */
struct mig_homeless {
	pid_t pid, ppid, pgid;
	uid_t uid;
};

/* mig_restore.c */
int mig_in_add(u64 session, pid_t pid, unsigned int source,
	       unsigned int home, const void *image, size_t len);
long mig_restore_current(struct mig_in *in);
struct mig_in *mig_in_claim(u64 session, pid_t pid);
void mig_in_put(struct mig_in *in);
int mig_reaped(pid_t pid, int status);
int mig_migrant_ppid(pid_t pid, pid_t *ppid);
pid_t mig_migrant_group(struct task_struct *task, bool session);
void mig_migrant_set_group(pid_t pid, pid_t pgid, pid_t sid);
unsigned int mig_migrant_home(pid_t pid);
u64 mig_migrant_keepers(pid_t pid);
void mig_migrant_drop_keeper(pid_t pid, unsigned int node);
bool mig_migrant_may_ask(pid_t pid, unsigned int from);
void mig_migrant_moved(pid_t pid, unsigned int node);
bool mig_migrant_moved_on(pid_t pid);
int mig_restore_deputy(struct mig_in *in);
int mig_exec_home(const struct mig_in *in);
void mig_in_nodedown(unsigned int node);
unsigned int mig_migrants_homeless(struct mig_homeless *out, unsigned int max);
bool mig_migrant_orphan(pid_t pid, pid_t ppid);
void mig_in_exit(void);
int mig_spawn_helper(struct mig_in *in);
long mig_restore_thread(u64 session, pid_t tid);

/* mig_deputy.c */
int mig_deputy_run(struct mig_deputy *dep);
struct mig_deputy *mig_deputy_alloc(struct task_struct *task);
void mig_deputy_add(struct mig_deputy *dep, unsigned int node);
struct mig_deputy *mig_deputy_find(pid_t pid);
void mig_deputy_put(struct mig_deputy *dep);
int mig_deputy_exited(pid_t pid, int status, unsigned int node,
		      unsigned int from);
int mig_deputy_homecoming(struct mig_in *in);
unsigned int mig_deputy_node(struct task_struct *task);
void mig_deputy_nodedown(unsigned int node);
long mig_deputy_wait(pid_t pid, unsigned int from, struct ssi_wait *w);
long mig_deputy_setgroup(pid_t pid, unsigned int from, pid_t pgid,
			 bool session, pid_t *out_pgid, pid_t *out_sid);
int mig_deputy_jobctl(pid_t pid, int status, unsigned int from);

/* mig_family.c: what mig.family says (its @what) */
#define MIG_FAMILY_RUNS		1
#define MIG_FAMILY_EXITED	2
#define MIG_FAMILY_ZOMBIE	3
#define MIG_FAMILY_PARENT_GONE	4

void mig_family_announce(void);
void mig_family_child_exited(pid_t pid, pid_t ppid, int st);
long mig_family_wait(struct ssi_wait *w);
void mig_family_parent_moved(pid_t ppid, unsigned int node);
void mig_family_parent_exited(pid_t ppid);
void mig_family_grace(void);
void mig_family_nodedown(unsigned int node);
int mig_family_show(char *buf);
void mig_family_exit(void);

/* mig_tids.c */
unsigned int mig_tids_hold(pid_t pid, pid_t *tids, unsigned int nr,
			   const bool *stop);
void mig_tids_give_back(const pid_t *tids, unsigned int nr);
void mig_tids_left(pid_t pid, const pid_t *tids, unsigned int nr);
void mig_tids_arriving(pid_t pid);
void mig_tids_exit(void);

/* A wait status that says stopped or continued (job control), not ended. */
static inline bool mig_status_is_jobctl(int status)
{
	return (status & 0xff) == 0x7f || status == 0xffff;
}

#endif /* _MIG_INTERNAL_H */

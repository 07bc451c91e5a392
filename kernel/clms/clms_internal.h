/* SPDX-License-Identifier: GPL-2.0-only */
/* CLMS module internals shared by its source files. */
#ifndef _SSI_CLMS_INTERNAL_H
#define _SSI_CLMS_INTERNAL_H

#include <linux/atomic.h>
#include <linux/mutex.h>
#include <linux/types.h>
#include <linux/workqueue.h>

#include <uapi/linux/ssi.h>
#include "clms.h"
#include "ics.h"

#define CLMS_NR_SLOTS		(SSI_MAX_NODES + 1)	/* by node number */

#define CLMS_HEARTBEAT_MIN_MS	10
#define CLMS_HEARTBEAT_MAX_MS	5000
#define CLMS_TIMEOUT_MAX_MS	60000
/* timeout_ms must cover at least this many heartbeat periods. */
#define CLMS_TIMEOUT_MIN_BEATS	3
/* SSISYS_CLUSTER_SET_NAME forwarded to the master waits this long. */
#define CLMS_CALL_TIMEOUT	(2 * HZ * ICS_SLOW_KERNEL_FACTOR)
/* Test aid: the longest a ping may make its server sleep. */
#define CLMS_PING_MAX_DELAY_MS	10000

enum clms_mode {
	CLMS_NOQUORUM,		/* this side lacks a majority of the table */
	CLMS_JOINING,		/* majority, waiting for the master to add us */
	CLMS_MEMBER,		/* UP in the master's membership */
};

enum clms_counter {
	CLMS_CNT_HB_SENT,
	CLMS_CNT_HB_RECEIVED,
	CLMS_CNT_SEND_ERRORS,
	CLMS_CNT_PUSHES_SENT,
	CLMS_CNT_PUSHES_ADOPTED,
	CLMS_CNT_TRANSITIONS,
	CLMS_CNT_DROPPED_STALE,
	CLMS_CNT_DROPPED_UNKNOWN,
	CLMS_CNT_DROPPED_INVALID,
	CLMS_CNT_REJOINS,
	CLMS_CNT_QUORUM_LOST,
	CLMS_CNT_NODEUPS,
	CLMS_CNT_NODEDOWNS,
	CLMS_NR_COUNTERS
};

bool clms_timing_valid(u32 heartbeat_ms, u32 timeout_ms);
int clms_set_timing(u32 heartbeat_ms, u32 timeout_ms);

extern atomic64_t clms_counters[CLMS_NR_COUNTERS];
extern const char *const clms_counter_names[CLMS_NR_COUNTERS];

static inline void clms_count(enum clms_counter c)
{
	atomic64_inc(&clms_counters[c]);
}

/* The membership a master decides and pushes; followers hold a copy. */
struct clms_view {
	u64 transition;
	u32 master;				/* 0: none */
	u8 state[CLMS_NR_SLOTS];		/* SSI_NODE_* */
	u32 inc[CLMS_NR_SLOTS];			/* incarnation it is about */
	u64 since_ns[CLMS_NR_SLOTS];		/* CLOCK_REALTIME of the change */
	u64 changed_in[CLMS_NR_SLOTS];		/* transition of the change */
	char name[SSI_NAME_MAX];
};

/*
 * A node's load figures, as its heartbeats carry them (load-leveling
 * input): online CPUs, memory (total, free, available as MemAvailable),
 * load averages x100 and the instantaneous run queue (runnable tasks over
 * all CPUs).
 */
struct clms_load {
	u32 cpus;
	u32 nr_running;
	u64 mem_total_kb;
	u64 mem_free_kb;
	u64 mem_avail_kb;
	u32 load[3];
};

/* What this node knows of a peer from its heartbeats; under clms.lock. */
struct clms_peer {
	bool heard;			/* a heartbeat arrived, ever */
	bool leaving;			/* said leave for @incarnation */
	unsigned long last_heard;	/* jiffies */
	unsigned int push_backoff;	/* ticks before re-pushing to it */
	u32 incarnation;
	u64 seq;
	u64 transition;			/* the transition it holds */
	u32 master;			/* the master it follows */
	u64 up_mask;
	u64 heard_mask;			/* the nodes it hears */
	struct clms_load load;
	/* Sending to it, off the lock: one work item per peer. */
	unsigned int node;
	unsigned long send_flags;	/* CLMS_SEND_* bits */
	struct work_struct send_work;
};

#define CLMS_SEND_HEARTBEAT	0
#define CLMS_SEND_MEMBERSHIP	1

struct clms_state {
	struct mutex lock;		/* everything below */
	enum clms_mode mode;
	u32 incarnation;		/* ours, never 0 */
	u64 hb_seq;
	struct clms_load local;		/* ours, sampled on each beat */
	u64 max_seen;			/* highest transition heard of */
	u64 configured;			/* table of the last tick */
	u64 heard;			/* nodes heard at the last tick */
	bool ticked;
	unsigned long last_tick;	/* jiffies */
	unsigned long next_beat;	/* jiffies: heartbeats due */
	u64 cb_up;			/* nodes the notifiers see up */
	u32 cb_inc[CLMS_NR_SLOTS];	/* incarnation they saw come up */
	struct clms_view view;
	struct clms_peer peers[CLMS_NR_SLOTS];
};

extern struct clms_state clms;
extern unsigned int clms_self;

/* clms_main.c */
bool clms_peer_fresh(const struct clms_peer *p, unsigned long now);
int clms_set_name(const char *name);
int clms_test_ping(unsigned int node, unsigned int delay_ms, u32 *inc);
void clms_kick(void);
void clms_local_load(struct clms_load *l);

/* clms_notify.c */
int clms_notify_init(void);
void clms_notify_drain(void);
void clms_notify_exit(void);
void clms_queue_nodeup(unsigned int node, u64 transition);
void clms_queue_nodedown(unsigned int node, u64 transition);
bool clms_cleanup_pending(unsigned int node);

/* clms_user.c */
int clms_user_init(void);
void clms_user_exit(void);
void clms_user_final(void);
void clms_user_changed(void);
bool clms_name_valid(const char *name, size_t len);
const char *clms_state_name(unsigned int state);

#endif /* _SSI_CLMS_INTERNAL_H */

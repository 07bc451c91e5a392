// SPDX-License-Identifier: GPL-2.0-only
/*
 * CLMS, ssikit cluster membership: heartbeats, the master's membership
 * and its transitions, quorum, and the state behind clms.h.
 *
 * Protocol (messages in clms.ics, all on the ICS prio channel)
 * --------
 * The cluster table comes from ICS (ics_configured_nodes(), re-read every
 * tick).  A node takes part only if it is in the table itself.
 *
 * Incarnation.  A random u32, never 0, drawn when clms.ko loads and again
 * whenever the node leaves a cluster it was UP in (lost quorum, or the
 * master declared it down): a node that comes back is always a new
 * incarnation, and everyone can tell the two apart.
 *
 * Heartbeats.  Every heartbeat_ms (100; 400 on a lockdep kernel,
 * CONFIG_SSI_CLMS_HEARTBEAT_MS) each node sends every configured
 * peer a one-way heartbeat: node, incarnation, a sequence number, the
 * transition it holds, the master it follows (0 unless UP in a cluster),
 * its load figures (cpus; memory total, free and available; load average
 * x100; the run queue: runnable tasks over all CPUs but the sampling
 * one, sampled once per heartbeat period), the nodes it sees up and the nodes it hears.  Each
 * peer has its own send work item, so a peer that is down (connect timing
 * out) never delays the heartbeats to the others.  A peer whose last
 * heartbeat is older than timeout_ms (1000; 4000 on a lockdep kernel,
 * CONFIG_SSI_CLMS_TIMEOUT_MS), or that said "leave"
 * (clms.ko unloading), is suspect; the others, with this node, are
 * "heard".  A heartbeat whose sender is not in the table, claims
 * another node number, or is older (seq) than the last one of its
 * incarnation is dropped and counted.  A tick that runs late (this node
 * was not scheduled: a stalled VM) does not count that time against the
 * peers.
 *
 * Quorum (the partition rule).  A node has quorum while it hears strictly
 * more than half of the table (itself included).  Without quorum (mode
 * NOQUORUM) a node does not act as part of any cluster: it has no master,
 * makes and adopts no transitions, reports quorum 0, itself UP and every
 * other node it had seen DOWN (their nodedown callbacks run, after
 * ics_node_down(), so calls pending across the partition fail).  If it
 * was UP in a cluster it also takes a new incarnation: the majority side
 * declares the old one DOWN and moves on.  When it hears a majority again
 * it is JOINING (itself COMINGUP) until a master makes it UP, with a
 * transition newer than any it had, as masters number from the highest
 * transition they have heard of.  Two sides can never both act: only one
 * can hold a majority of the same table.  Moreover a master decides only
 * while it heard a majority within timeout_ms - 2 x heartbeat_ms; a node
 * being cut off loses that before any peer turns suspect, so it makes no
 * transition on its way out either.
 *
 * Master.  A node UP in a cluster (mode MEMBER) follows the lowest-
 * numbered node that is UP in its membership and that it hears with the
 * incarnation the membership has; if that is itself, it is the master.
 * So when the master fails, the lowest surviving node with quorum takes
 * over.  A live master hands over to a lower node that (re)joined only
 * once that node holds the current membership and hears every node UP in
 * it (heartbeats say what a node hears), or it would declare down nodes
 * it does not hear yet.  A JOINING node waits for the master its heard
 * peers report; if none reports one (no cluster yet), the lowest heard
 * node forms one.  A new master bumps the transition from the highest
 * one it has heard of (heartbeats carry them): transition ids never go
 * back.
 *
 * Transitions.  Only the master changes the membership, on its tick,
 * each node state change bumping the transition (and so does a cluster
 * name change):
 *   heard, not UP:                 NEVERUP/DOWN -> COMINGUP -> UP
 *   suspect, gone from the table,  UP/COMINGUP -> [SHUTDOWN if it said
 *   or a new incarnation heard:        leave] -> GOINGDOWN -> KCLEANUP
 *   cleanup done:                  KCLEANUP -> UCLEANUP -> DOWN
 * A node may come back only once DOWN, and only as a new incarnation: one
 * declared down while still running (it missed heartbeats) must first
 * learn that from a push and rejoin.  KCLEANUP lasts until the master's
 * own nodedown callbacks for the node have run (it does not wait for the
 * other nodes'); there is no userspace cleanup yet, so UCLEANUP is passed
 * through at once.
 *
 * Pushes.  The master sends its whole membership (transition, master,
 * name, per-node state, incarnation, since, transition of the change) to
 * every heard node when it changes, and again every other tick to any
 * heard node whose heartbeat reports another transition or master (lost
 * push, new joiner).  A node with quorum adopts a membership from the
 * node it names as master, if it hears that node with the incarnation
 * the membership has and the transition is newer than its own (or the
 * same, from a lower-numbered master: a handover racing a change); stale
 * ones are dropped and counted.  If the adopted membership has this
 * incarnation SHUTDOWN..DOWN (the others declared it dead, e.g. after a
 * one-sided partition), the node rejoins: new incarnation, everything
 * else seen down, COMINGUP.  So does a member that does not hear its
 * master while a peer it hears follows that master with a newer
 * transition (a one-sided cut: no push reaches it).
 *
 * Timing.  heartbeat_ms and timeout_ms are the master's: every push
 * carries them and a node adopting the membership adopts them too, so a
 * node that joins with other module parameters takes the cluster's.  A
 * write to either on a member that is not the master goes to the master
 * (set_timing), which applies it as a new transition and pushes it; a node
 * outside a cluster keeps its own values until it joins one.
 *
 * Callbacks.  Whenever the nodes a node sees UP change, by its own
 * decision or an adopted membership, it calls ics_node_down() at once for
 * each node that left (or came back as a new incarnation), so that calls
 * pending on it fail with -EHOSTDOWN, then queues nodedown (and nodeup)
 * callbacks, run in order on CLMS's callback workqueue (clms_notify.c).
 *
 * The tick runs every heartbeat_ms, and also when a heard peer's
 * timeout_ms runs out: failure detection takes timeout_ms after the last
 * heartbeat the master had (default 1 to 1.1 s after a crash), then one
 * message to the others.
 */
#define pr_fmt(fmt) "clms: " fmt

#include <linux/bitops.h>
#include <linux/cpumask.h>
#include <linux/delay.h>
#include <linux/jiffies.h>
#include <linux/kernel.h>
#include <linux/minmax.h>
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/random.h>
#include <linux/sched/loadavg.h>
#include <linux/sched/signal.h>
#include <linux/slab.h>
#include <linux/ssi.h>
#include <linux/string.h>
#include <linux/timekeeping.h>

#include "clms_internal.h"
#include "clms_ics.h"
#include "ics.h"
#include "clms_gen.h"

struct clms_state clms;
unsigned int clms_self;

static struct workqueue_struct *clms_wq;
static struct delayed_work clms_tick_work;
static bool clms_stopping;

/* Copies for the lockless getters of clms.h. */
static u64 clms_pub_up;
static u64 clms_pub_transition;
static unsigned int clms_pub_master;
static bool clms_pub_quorum;

atomic64_t clms_counters[CLMS_NR_COUNTERS];

const char *const clms_counter_names[CLMS_NR_COUNTERS] = {
	[CLMS_CNT_HB_SENT] = "heartbeats_sent",
	[CLMS_CNT_HB_RECEIVED] = "heartbeats_received",
	[CLMS_CNT_SEND_ERRORS] = "send_errors",
	[CLMS_CNT_PUSHES_SENT] = "memberships_sent",
	[CLMS_CNT_PUSHES_ADOPTED] = "memberships_adopted",
	[CLMS_CNT_TRANSITIONS] = "transitions",
	[CLMS_CNT_DROPPED_STALE] = "dropped_stale",
	[CLMS_CNT_DROPPED_UNKNOWN] = "dropped_unknown",
	[CLMS_CNT_DROPPED_INVALID] = "dropped_invalid",
	[CLMS_CNT_REJOINS] = "rejoins",
	[CLMS_CNT_QUORUM_LOST] = "quorum_lost",
	[CLMS_CNT_NODEUPS] = "nodeups",
	[CLMS_CNT_NODEDOWNS] = "nodedowns",
};

/* ---- clms.h ---- */

bool clms_node_is_up(unsigned int node)
{
	if (node < 1 || node > SSI_MAX_NODES)
		return false;
	return READ_ONCE(clms_pub_up) & BIT_ULL(node);
}
EXPORT_SYMBOL_GPL(clms_node_is_up);

u64 clms_up_nodes(void)
{
	return READ_ONCE(clms_pub_up);
}
EXPORT_SYMBOL_GPL(clms_up_nodes);

u64 clms_transition(void)
{
	return READ_ONCE(clms_pub_transition);
}
EXPORT_SYMBOL_GPL(clms_transition);

unsigned int clms_master(void)
{
	return READ_ONCE(clms_pub_master);
}
EXPORT_SYMBOL_GPL(clms_master);

bool clms_have_quorum(void)
{
	return READ_ONCE(clms_pub_quorum);
}
EXPORT_SYMBOL_GPL(clms_have_quorum);

/* ---- state ---- */

static u32 clms_new_incarnation(u32 old)
{
	u32 inc;

	do {
		inc = get_random_u32();
	} while (!inc || inc == old);
	return inc;
}

void clms_kick(void)
{
	if (!READ_ONCE(clms_stopping))
		mod_delayed_work(clms_wq, &clms_tick_work, 0);
}

/* Under clms.lock; the tick picks the period up when it is next kicked. */
static void clms_apply_timing(u32 heartbeat_ms, u32 timeout_ms)
{
	WRITE_ONCE(clms_heartbeat_ms, heartbeat_ms);
	WRITE_ONCE(clms_timeout_ms, timeout_ms);
	clms_kick();
}

static bool clms_heard_within(const struct clms_peer *p, unsigned long now,
			      unsigned long window)
{
	return p->heard && !p->leaving &&
	       time_before(now, p->last_heard + window);
}

bool clms_peer_fresh(const struct clms_peer *p, unsigned long now)
{
	return clms_heard_within(p, now,
				 msecs_to_jiffies(READ_ONCE(clms_timeout_ms)));
}

/* This node and the configured peers it heard within @window jiffies. */
static u64 clms_heard_window(u64 cfg, unsigned long now, unsigned long window)
{
	u64 heard = BIT_ULL(clms_self);
	unsigned int n;

	for (n = 1; n < CLMS_NR_SLOTS; n++)
		if (n != clms_self && (cfg & BIT_ULL(n)) &&
		    clms_heard_within(&clms.peers[n], now, window))
			heard |= BIT_ULL(n);
	return heard;
}

/* This node and the configured peers that are not suspect. */
static u64 clms_heard_locked(u64 cfg, unsigned long now)
{
	return clms_heard_window(cfg, now,
				 msecs_to_jiffies(READ_ONCE(clms_timeout_ms)));
}

/*
 * A master decides only while it heard a majority within timeout_ms less
 * two heartbeat periods.  A node cut off from the majority stops hearing
 * all of its peers within about one heartbeat period of each other, so
 * it loses this before any peer turns suspect, and never declares a node
 * down (nor takes over) on its way out of the cluster.
 */
static bool clms_can_decide(u64 cfg, unsigned long now)
{
	unsigned int hb = READ_ONCE(clms_heartbeat_ms);
	unsigned int tmo = READ_ONCE(clms_timeout_ms);
	u64 recent;

	recent = clms_heard_window(cfg, now, msecs_to_jiffies(tmo - 2 * hb));
	return hweight64(recent) * 2 > hweight64(cfg);
}

/*
 * A tick that ran late means this node did not run (a stalled VM, say):
 * that time does not count against the peers, whose heartbeats are still
 * queued behind it.
 */
static void clms_forgive_stall(unsigned long now)
{
	unsigned long period = msecs_to_jiffies(READ_ONCE(clms_heartbeat_ms));
	unsigned long late;
	unsigned int n;

	if (!clms.ticked || !time_after(now, clms.last_tick + 3 * period))
		return;
	late = now - clms.last_tick - period;
	pr_info_ratelimited("tick %u ms late: not counted against the peers\n",
			    jiffies_to_msecs(late));
	for (n = 1; n < CLMS_NR_SLOTS; n++) {
		struct clms_peer *p = &clms.peers[n];

		if (p->heard && time_before(p->last_heard, now - late))
			p->last_heard += late;
	}
}

static void clms_publish(void)
{
	clms_user_changed();
	WRITE_ONCE(clms_pub_up, clms.cb_up);
	WRITE_ONCE(clms_pub_transition, clms.view.transition);
	/* a node not UP in a cluster (no quorum, or joining) follows none */
	WRITE_ONCE(clms_pub_master,
		   clms.mode == CLMS_MEMBER ? clms.view.master : 0);
	WRITE_ONCE(clms_pub_quorum, clms.mode != CLMS_NOQUORUM);
}

/* Our own entry; local, no transition. */
static void clms_set_self(u8 state)
{
	struct clms_view *v = &clms.view;

	v->state[clms_self] = state;
	v->inc[clms_self] = clms.incarnation;
	v->since_ns[clms_self] = ktime_get_real_ns();
}

/* The master's next transition id: never below one heard of. */
static void clms_bump(void)
{
	struct clms_view *v = &clms.view;

	v->transition = max(v->transition, clms.max_seen) + 1;
	clms.max_seen = v->transition;
	clms_count(CLMS_CNT_TRANSITIONS);
}

/* Master: one node state change, one transition. */
static void clms_set_state(unsigned int node, u8 state, u32 inc)
{
	struct clms_view *v = &clms.view;

	clms_bump();
	v->state[node] = state;
	v->inc[node] = inc;
	v->since_ns[node] = ktime_get_real_ns();
	v->changed_in[node] = v->transition;
}

/* Brings the nodes the notifiers see up in line with the view. */
static void clms_reconcile(void)
{
	struct clms_view *v = &clms.view;
	u64 up = BIT_ULL(clms_self);
	unsigned int n;

	if (clms.mode == CLMS_MEMBER)
		for (n = 1; n < CLMS_NR_SLOTS; n++)
			if ((clms.configured & BIT_ULL(n)) &&
			    v->state[n] == SSI_NODE_UP)
				up |= BIT_ULL(n);

	for (n = 1; n < CLMS_NR_SLOTS; n++) {
		bool was = clms.cb_up & BIT_ULL(n);
		bool now = up & BIT_ULL(n);
		bool reborn = was && now && clms.cb_inc[n] != v->inc[n];

		if (n == clms_self)
			continue;
		if (was && (!now || reborn)) {
			/* Fail what is pending on it before anyone cleans up. */
			ics_node_down(n);
			clms_queue_nodedown(n, v->transition);
		}
		if (now && (!was || reborn)) {
			clms.cb_inc[n] = v->inc[n];
			clms_queue_nodeup(n, v->transition);
		}
	}
	clms.cb_up = up;
	clms_publish();
}

static void clms_lose_quorum(void)
{
	struct clms_view *v = &clms.view;
	u64 now = ktime_get_real_ns();
	unsigned int n;

	if (clms.mode == CLMS_MEMBER) {
		/* The majority declares us down: come back as someone new. */
		clms.incarnation = clms_new_incarnation(clms.incarnation);
	}
	pr_warn("node %u lost quorum: out of the cluster (incarnation %u)\n",
		clms_self, clms.incarnation);
	clms.mode = CLMS_NOQUORUM;
	v->master = 0;
	for (n = 1; n < CLMS_NR_SLOTS; n++) {
		if (n == clms_self || v->state[n] == SSI_NODE_NEVERUP ||
		    v->state[n] == SSI_NODE_DOWN)
			continue;
		v->state[n] = SSI_NODE_DOWN;
		v->since_ns[n] = now;
	}
	clms_set_self(SSI_NODE_UP);
	clms_count(CLMS_CNT_QUORUM_LOST);
	clms_reconcile();
}

/* The cluster declared this incarnation down, or went on without it. */
static void clms_rejoin(const char *why)
{
	clms.incarnation = clms_new_incarnation(clms.incarnation);
	pr_warn("node %u %s: rejoining as incarnation %u\n", clms_self, why,
		clms.incarnation);
	clms.mode = CLMS_JOINING;
	clms_set_self(SSI_NODE_COMINGUP);
	clms_count(CLMS_CNT_REJOINS);
}

/* @node hears every node UP in our view (@heard: what we hear). */
static bool clms_hears_all_up(unsigned int node, u64 heard)
{
	struct clms_view *v = &clms.view;
	u64 hears = node == clms_self ? heard : clms.peers[node].heard_mask;
	unsigned int n;

	for (n = 1; n < CLMS_NR_SLOTS; n++)
		if ((clms.configured & BIT_ULL(n)) &&
		    v->state[n] == SSI_NODE_UP && !(hears & BIT_ULL(n)))
			return false;
	return true;
}

/* @n is UP in our view and we hear that very incarnation. */
static bool clms_up_and_heard(unsigned int n, u64 heard)
{
	struct clms_view *v = &clms.view;

	if (!n || !(heard & BIT_ULL(n)) || v->state[n] != SSI_NODE_UP)
		return false;
	return n == clms_self || clms.peers[n].incarnation == v->inc[n];
}

/*
 * A member that does not hear its master, while a peer it hears follows
 * that master with a newer membership: the cluster went on without us
 * (a one-sided cut) and has declared us down or soon will.
 */
static bool clms_left_behind(u64 heard)
{
	struct clms_peer *p;
	unsigned int n;

	for (n = 1; n < CLMS_NR_SLOTS; n++) {
		p = &clms.peers[n];
		if (n == clms_self || !(heard & BIT_ULL(n)) || !p->master ||
		    p->master == clms_self || (heard & BIT_ULL(p->master)))
			continue;
		if (p->transition > clms.view.transition)
			return true;
	}
	return false;
}

/* Who should be master, as far as this node can tell; 0 if unknown. */
static unsigned int clms_elect(u64 heard)
{
	struct clms_view *v = &clms.view;
	unsigned int n, low = 0, cur = v->master;
	bool ready;

	if (clms.mode == CLMS_MEMBER) {
		for (n = 1; n < CLMS_NR_SLOTS && !low; n++)
			if (clms_up_and_heard(n, heard))
				low = n;
		if (!clms_up_and_heard(cur, heard) || low >= cur)
			return low;
		/*
		 * A live master hands over to a lower node (one that joined)
		 * only once that node holds the current membership and hears
		 * every node UP in it: it would declare down those it does
		 * not hear yet.
		 */
		if (low == clms_self)
			ready = clms.peers[cur].transition == v->transition &&
				clms.peers[cur].master == cur;
		else
			ready = clms.peers[low].transition == v->transition;
		return ready && clms_hears_all_up(low, heard) ? low : cur;
	}
	/*
	 * Joining: a cluster among the nodes we hear adds us.  If they still
	 * follow us (an incarnation of ours that lost quorum), wait until
	 * they have declared it down.
	 */
	for (n = 1; n < CLMS_NR_SLOTS; n++) {
		if (n == clms_self || !(heard & BIT_ULL(n)) ||
		    !clms.peers[n].master)
			continue;
		return clms.peers[n].master == clms_self ?
		       0 : clms.peers[n].master;
	}
	/* There is none: the lowest heard node forms one. */
	return __ffs64(heard);
}

/* One node's next step on the master; returns with its new state set. */
static void clms_master_node(unsigned int n, u64 cfg, u64 heard)
{
	struct clms_view *v = &clms.view;
	struct clms_peer *p = &clms.peers[n];
	bool same = p->incarnation == v->inc[n];
	bool alive = (cfg & BIT_ULL(n)) && (heard & BIT_ULL(n)) && same;

	switch (v->state[n]) {
	case SSI_NODE_COMINGUP:
	case SSI_NODE_UP:
		if (alive)
			break;
		pr_info("node %u (incarnation %u) %s; last heard %u ms ago\n",
			n, v->inc[n],
			!(cfg & BIT_ULL(n)) ? "left the table" :
			p->leaving && same ? "is leaving" :
			(heard & BIT_ULL(n)) ? "came back as a new incarnation" :
			"is not heard any more",
			p->heard ? jiffies_to_msecs(jiffies - p->last_heard) : 0);
		if (p->leaving && same && v->state[n] == SSI_NODE_UP)
			clms_set_state(n, SSI_NODE_SHUTDOWN, v->inc[n]);
		fallthrough;
	case SSI_NODE_SHUTDOWN:
		clms_set_state(n, SSI_NODE_GOINGDOWN, v->inc[n]);
		fallthrough;
	case SSI_NODE_GOINGDOWN:
		clms_set_state(n, SSI_NODE_KCLEANUP, v->inc[n]);
		break;
	case SSI_NODE_KCLEANUP:
		if (clms_cleanup_pending(n))
			break;
		clms_set_state(n, SSI_NODE_UCLEANUP, v->inc[n]);
		fallthrough;
	case SSI_NODE_UCLEANUP:
		/* No userspace cleanup exists yet: passed through. */
		clms_set_state(n, SSI_NODE_DOWN, v->inc[n]);
		break;
	default:	/* NEVERUP, DOWN */
		if (!(cfg & BIT_ULL(n)) || !(heard & BIT_ULL(n)))
			break;
		/*
		 * Declared down but still running (it missed heartbeats): it
		 * comes back only as a new incarnation, once a push has told
		 * it that it is down.
		 */
		if (v->state[n] == SSI_NODE_DOWN && same)
			break;
		clms_set_state(n, SSI_NODE_COMINGUP, p->incarnation);
		clms_set_state(n, SSI_NODE_UP, p->incarnation);
		break;
	}
}

/* The master's tick; returns true if the membership changed. */
static bool clms_master_tick(u64 cfg, u64 heard)
{
	struct clms_view *v = &clms.view;
	u64 before = v->transition;
	unsigned int n;

	if (clms.mode != CLMS_MEMBER || v->master != clms_self) {
		clms_bump();
		pr_info("node %u is the master now (transition %llu)\n",
			clms_self, v->transition);
		v->master = clms_self;
	}
	if (v->state[clms_self] != SSI_NODE_UP ||
	    v->inc[clms_self] != clms.incarnation) {
		if (v->state[clms_self] != SSI_NODE_COMINGUP)
			clms_set_state(clms_self, SSI_NODE_COMINGUP,
				       clms.incarnation);
		clms_set_state(clms_self, SSI_NODE_UP, clms.incarnation);
		clms.mode = CLMS_MEMBER;
	}
	for (n = 1; n < CLMS_NR_SLOTS; n++)
		if (n != clms_self)
			clms_master_node(n, cfg, heard);
	if (v->transition == before)
		return false;
	clms_reconcile();
	return true;
}

/* Marks a membership push to every heard peer (master only). */
static void clms_push_all_locked(u64 heard)
{
	unsigned int n;

	for (n = 1; n < CLMS_NR_SLOTS; n++) {
		if (n == clms_self || !(heard & BIT_ULL(n)))
			continue;
		clms.peers[n].push_backoff = 2;
		set_bit(CLMS_SEND_MEMBERSHIP, &clms.peers[n].send_flags);
		queue_work(clms_wq, &clms.peers[n].send_work);
	}
}

/*
 * When the tick must run next: the next heartbeat, or the moment a peer
 * we hear turns suspect, whichever comes first (so detection does not
 * wait for the next heartbeat period).
 */
static unsigned long clms_next_tick(u64 heard, unsigned long now)
{
	unsigned long timeout = msecs_to_jiffies(READ_ONCE(clms_timeout_ms));
	unsigned long next = clms.next_beat;
	unsigned int n;

	for (n = 1; n < CLMS_NR_SLOTS; n++)
		if (n != clms_self && (heard & BIT_ULL(n)) &&
		    time_before(clms.peers[n].last_heard + timeout, next))
			next = clms.peers[n].last_heard + timeout;
	return time_after(next, now) ? next - now : 0;
}

static void clms_tick(struct work_struct *work)
{
	unsigned long period = msecs_to_jiffies(READ_ONCE(clms_heartbeat_ms));
	unsigned long now = jiffies, delay;
	struct clms_peer *p;
	u64 cfg, heard;
	bool quorum, changed = false, master, beat;
	unsigned int n;

	mutex_lock(&clms.lock);
	cfg = ics_configured_nodes();
	if (!(cfg & BIT_ULL(clms_self)))
		cfg = 0;	/* no table yet, or one without us */
	clms.configured = cfg;
	clms_forgive_stall(now);
	clms.last_tick = now;
	clms.ticked = true;
	heard = clms_heard_locked(cfg, now);
	clms.heard = heard;
	quorum = cfg && hweight64(heard) * 2 > hweight64(cfg);

	if (!quorum && clms.mode != CLMS_NOQUORUM) {
		clms_lose_quorum();
	} else if (quorum && clms.mode == CLMS_NOQUORUM) {
		pr_info("node %u has quorum: joining\n", clms_self);
		clms.mode = CLMS_JOINING;
		clms_set_self(SSI_NODE_COMINGUP);
		clms_publish();
	}
	if (clms.mode == CLMS_MEMBER && clms_left_behind(heard)) {
		clms_rejoin("cannot hear the master its peers follow");
		clms_reconcile();
	}
	if (clms.mode != CLMS_NOQUORUM && clms_elect(heard) == clms_self &&
	    clms_can_decide(cfg, now))
		changed = clms_master_tick(cfg, heard);
	master = clms.mode == CLMS_MEMBER && clms.view.master == clms_self;
	if (changed)
		clms_push_all_locked(heard);

	beat = !time_before(now, clms.next_beat);
	if (beat) {
		clms.next_beat = now + period;
		clms_local_load(&clms.local);
	}
	for (n = 1; n < CLMS_NR_SLOTS && beat; n++) {
		if (n == clms_self || !(cfg & BIT_ULL(n)))
			continue;
		p = &clms.peers[n];
		if (master && !changed && (heard & BIT_ULL(n)) &&
		    (p->transition != clms.view.transition ||
		     p->master != clms_self)) {
			/* It missed a push, is new, or follows another. */
			if (!p->push_backoff) {
				p->push_backoff = 2;
				set_bit(CLMS_SEND_MEMBERSHIP, &p->send_flags);
			} else {
				p->push_backoff--;
			}
		}
		set_bit(CLMS_SEND_HEARTBEAT, &p->send_flags);
		queue_work(clms_wq, &p->send_work);
	}
	delay = clms_next_tick(heard, now);
	mutex_unlock(&clms.lock);

	if (!READ_ONCE(clms_stopping))
		queue_delayed_work(clms_wq, &clms_tick_work, delay);
}

/* ---- sending ---- */

static u32 clms_load100(unsigned long load)
{
	return (load * 100 + FIXED_1 / 2) >> FSHIFT;
}

/*
 * Runnable tasks now, over all CPUs, the sampling task (the CLMS worker,
 * or the caller of SSISYS_CLUSTERNODE_INFO) not counted, so that an idle
 * node says 0: nr_running() minus one, but nr_running() is not exported
 * to modules, so the task list is walked (under RCU, as the hung-task
 * detector does), once per heartbeat period.
 */
static u32 clms_nr_running(void)
{
	struct task_struct *g, *t;
	u32 n = 0;

	rcu_read_lock();
	for_each_process_thread(g, t)
		if (t != current && task_is_running(t))
			n++;
	rcu_read_unlock();
	return n;
}

/* This node's load figures, sampled now. */
void clms_local_load(struct clms_load *l)
{
	struct sysinfo si;
	int i;

	si_meminfo(&si);
	l->cpus = num_online_cpus();
	l->nr_running = clms_nr_running();
	l->mem_total_kb = (u64)si.totalram * si.mem_unit >> 10;
	l->mem_free_kb = (u64)si.freeram * si.mem_unit >> 10;
	l->mem_avail_kb = (u64)si_mem_available() << (PAGE_SHIFT - 10);
	for (i = 0; i < 3; i++)
		l->load[i] = clms_load100(avenrun[i]);
}

static void clms_send_heartbeat(unsigned int node)
{
	struct clms_heartbeat_req hb = {};
	int ret;

	mutex_lock(&clms.lock);
	hb.node = clms_self;
	hb.incarnation = clms.incarnation;
	hb.seq = ++clms.hb_seq;
	hb.transition = clms.view.transition;
	hb.master = clms.mode == CLMS_MEMBER ? clms.view.master : 0;
	hb.up_mask = clms.cb_up;
	hb.heard_mask = clms.heard;
	hb.cpus = clms.local.cpus;
	hb.nr_running = clms.local.nr_running;
	hb.mem_total_kb = clms.local.mem_total_kb;
	hb.mem_free_kb = clms.local.mem_free_kb;
	hb.mem_avail_kb = clms.local.mem_avail_kb;
	hb.load1 = clms.local.load[0];
	hb.load5 = clms.local.load[1];
	hb.load15 = clms.local.load[2];
	mutex_unlock(&clms.lock);

	ret = ics_clms_heartbeat(node, &hb);
	clms_count(ret ? CLMS_CNT_SEND_ERRORS : CLMS_CNT_HB_SENT);
}

static void clms_send_membership(unsigned int node)
{
	struct clms_membership_req *m;
	struct clms_view *v = &clms.view;
	int ret;

	m = kvzalloc(sizeof(*m), GFP_KERNEL);
	if (!m) {
		clms_count(CLMS_CNT_SEND_ERRORS);
		return;
	}
	mutex_lock(&clms.lock);
	if (clms.mode != CLMS_MEMBER || v->master != clms_self) {
		mutex_unlock(&clms.lock);
		goto out;
	}
	m->transition = v->transition;
	m->master = v->master;
	strscpy(m->name, v->name, sizeof(m->name));
	m->state_count = CLMS_NR_SLOTS;
	m->incarnation_count = CLMS_NR_SLOTS;
	m->since_ns_count = CLMS_NR_SLOTS;
	m->changed_in_count = CLMS_NR_SLOTS;
	memcpy(m->state, v->state, sizeof(v->state));
	memcpy(m->incarnation, v->inc, sizeof(v->inc));
	memcpy(m->since_ns, v->since_ns, sizeof(v->since_ns));
	memcpy(m->changed_in, v->changed_in, sizeof(v->changed_in));
	m->heartbeat_ms = READ_ONCE(clms_heartbeat_ms);
	m->timeout_ms = READ_ONCE(clms_timeout_ms);
	mutex_unlock(&clms.lock);

	ret = ics_clms_membership(node, m);
	clms_count(ret ? CLMS_CNT_SEND_ERRORS : CLMS_CNT_PUSHES_SENT);
out:
	kvfree(m);
}

static void clms_send_work_fn(struct work_struct *work)
{
	struct clms_peer *p = container_of(work, struct clms_peer, send_work);

	if (READ_ONCE(clms_stopping))
		return;
	if (test_and_clear_bit(CLMS_SEND_MEMBERSHIP, &p->send_flags))
		clms_send_membership(p->node);
	if (test_and_clear_bit(CLMS_SEND_HEARTBEAT, &p->send_flags))
		clms_send_heartbeat(p->node);
}

/* ---- receiving ---- */

/* A sender that may talk to us at all: a configured peer. */
static bool clms_sender_known(unsigned int from)
{
	if (from < 1 || from > SSI_MAX_NODES || from == clms_self ||
	    !(ics_configured_nodes() & BIT_ULL(from))) {
		clms_count(CLMS_CNT_DROPPED_UNKNOWN);
		return false;
	}
	return true;
}

void clms_srv_heartbeat(unsigned int from, const struct clms_heartbeat_req *msg)
{
	struct clms_peer *p;

	if (!clms_sender_known(from))
		return;
	if (msg->node != from || !msg->incarnation ||
	    msg->master > SSI_MAX_NODES) {
		clms_count(CLMS_CNT_DROPPED_INVALID);
		return;
	}
	p = &clms.peers[from];
	mutex_lock(&clms.lock);
	if (p->heard && msg->incarnation == p->incarnation &&
	    (p->leaving || msg->seq <= p->seq)) {
		clms_count(CLMS_CNT_DROPPED_STALE);
		goto out;
	}
	if (!p->heard || msg->incarnation != p->incarnation) {
		pr_info("node %u heard, incarnation %u\n", from,
			msg->incarnation);
		p->leaving = false;
	}
	p->heard = true;
	p->last_heard = jiffies;
	p->incarnation = msg->incarnation;
	p->seq = msg->seq;
	p->transition = msg->transition;
	p->master = msg->master;
	p->up_mask = msg->up_mask;
	p->heard_mask = msg->heard_mask;
	p->load.cpus = msg->cpus;
	p->load.nr_running = msg->nr_running;
	p->load.mem_total_kb = msg->mem_total_kb;
	p->load.mem_free_kb = msg->mem_free_kb;
	p->load.mem_avail_kb = msg->mem_avail_kb;
	p->load.load[0] = msg->load1;
	p->load.load[1] = msg->load5;
	p->load.load[2] = msg->load15;
	clms.max_seen = max(clms.max_seen, msg->transition);
	clms_count(CLMS_CNT_HB_RECEIVED);
out:
	mutex_unlock(&clms.lock);
}

static bool clms_membership_valid(unsigned int from,
				  const struct clms_membership_req *m)
{
	unsigned int n;

	if (m->master != from || !m->transition ||
	    m->state_count != CLMS_NR_SLOTS ||
	    m->incarnation_count != CLMS_NR_SLOTS ||
	    m->since_ns_count != CLMS_NR_SLOTS ||
	    m->changed_in_count != CLMS_NR_SLOTS ||
	    m->state[0] != SSI_NODE_NEVERUP || m->state[from] != SSI_NODE_UP ||
	    !clms_name_valid(m->name, strlen(m->name)) ||
	    !clms_timing_valid(m->heartbeat_ms, m->timeout_ms))
		return false;
	for (n = 1; n < CLMS_NR_SLOTS; n++)
		if (m->state[n] > SSI_NODE_DOWN ||
		    m->changed_in[n] > m->transition ||
		    (m->state[n] != SSI_NODE_NEVERUP && !m->incarnation[n]))
			return false;
	return true;
}

static void clms_adopt(const struct clms_membership_req *m)
{
	struct clms_view *v = &clms.view;

	v->transition = m->transition;
	v->master = m->master;
	strscpy(v->name, m->name, sizeof(v->name));
	memcpy(v->state, m->state, sizeof(v->state));
	memcpy(v->inc, m->incarnation, sizeof(v->inc));
	memcpy(v->since_ns, m->since_ns, sizeof(v->since_ns));
	memcpy(v->changed_in, m->changed_in, sizeof(v->changed_in));
	if (m->heartbeat_ms != READ_ONCE(clms_heartbeat_ms) ||
	    m->timeout_ms != READ_ONCE(clms_timeout_ms)) {
		pr_info("heartbeat %u ms, timeout %u ms: node %u's\n",
			m->heartbeat_ms, m->timeout_ms, m->master);
		clms_apply_timing(m->heartbeat_ms, m->timeout_ms);
	}

	if (v->inc[clms_self] != clms.incarnation) {
		/* The master has not added this incarnation yet. */
		clms.mode = CLMS_JOINING;
		clms_set_self(SSI_NODE_COMINGUP);
	} else if (v->state[clms_self] == SSI_NODE_UP) {
		clms.mode = CLMS_MEMBER;
	} else if (v->state[clms_self] == SSI_NODE_COMINGUP) {
		clms.mode = CLMS_JOINING;
	} else {
		clms_rejoin("was declared down");
	}
	clms_reconcile();
}

/*
 * Newer transitions win; of two masters that made the same one (a handover
 * racing a change), the lower-numbered one wins, as it is the one that
 * stays master.
 */
static bool clms_newer(const struct clms_membership_req *m)
{
	struct clms_view *v = &clms.view;

	return m->transition > v->transition ||
	       (m->transition == v->transition && v->master &&
		m->master < v->master);
}

void clms_srv_membership(unsigned int from,
			 const struct clms_membership_req *msg)
{
	struct clms_peer *p;

	if (!clms_sender_known(from))
		return;
	if (!clms_membership_valid(from, msg)) {
		clms_count(CLMS_CNT_DROPPED_INVALID);
		return;
	}
	p = &clms.peers[from];
	mutex_lock(&clms.lock);
	if (READ_ONCE(clms_stopping) || clms.mode == CLMS_NOQUORUM ||
	    !clms_peer_fresh(p, jiffies) ||
	    p->incarnation != msg->incarnation[from] ||
	    !clms_newer(msg)) {
		clms.max_seen = max(clms.max_seen, msg->transition);
		clms_count(CLMS_CNT_DROPPED_STALE);
		goto out;
	}
	clms.max_seen = max(clms.max_seen, msg->transition);
	clms_adopt(msg);
	clms_count(CLMS_CNT_PUSHES_ADOPTED);
out:
	mutex_unlock(&clms.lock);
}

void clms_srv_leave(unsigned int from, const struct clms_leave_req *msg)
{
	struct clms_peer *p;

	if (!clms_sender_known(from))
		return;
	if (msg->node != from) {
		clms_count(CLMS_CNT_DROPPED_INVALID);
		return;
	}
	p = &clms.peers[from];
	mutex_lock(&clms.lock);
	if (!p->heard || p->incarnation != msg->incarnation) {
		clms_count(CLMS_CNT_DROPPED_STALE);
	} else {
		pr_info("node %u is leaving\n", from);
		p->leaving = true;
	}
	mutex_unlock(&clms.lock);
	clms_kick();
}

/* ---- clusterwide settings the master makes (name, timing) ---- */

/*
 * Under clms.lock: may a change asked by @from (0: ourselves) be made
 * here?  Only the master makes one, for a member.
 */
static int clms_master_may_change(unsigned int from)
{
	if (clms.mode != CLMS_MEMBER || clms.view.master != clms_self)
		return -EAGAIN;	/* not (or no longer) the master */
	if (from && !(clms.cb_up & BIT_ULL(from)))
		return -EACCES;	/* only members change the cluster */
	return 0;
}

/* Under clms.lock: the master made a change; a new transition tells all. */
static void clms_master_announce_locked(void)
{
	clms_bump();
	clms_push_all_locked(clms_heard_locked(clms.configured, jiffies));
	clms_publish();
}

/* The master sets the name for the cluster; with @from 0 it is ours. */
static int clms_master_set_name(unsigned int from, const char *name)
{
	int ret;

	mutex_lock(&clms.lock);
	ret = clms_master_may_change(from);
	if (!ret && strcmp(clms.view.name, name)) {
		strscpy(clms.view.name, name, sizeof(clms.view.name));
		clms_master_announce_locked();
	}
	mutex_unlock(&clms.lock);
	return ret;
}

int clms_srv_set_name(unsigned int from, const struct clms_set_name_req *req,
		      struct clms_set_name_rep *rep)
{
	if (!clms_sender_known(from))
		return -EACCES;
	if (!clms_name_valid(req->name, strlen(req->name)))
		return -EINVAL;
	return clms_master_set_name(from, req->name);
}

/*
 * A member asks the master, which pushes the name with a new transition;
 * a node outside a cluster keeps the name for itself until it joins one
 * (the master's name then replaces it).
 */
int clms_set_name(const char *name)
{
	struct clms_set_name_req *req;
	struct clms_set_name_rep rep = {};
	unsigned int master;
	int ret;

	mutex_lock(&clms.lock);
	master = clms.mode == CLMS_MEMBER ? clms.view.master : 0;
	if (!master) {
		strscpy(clms.view.name, name, sizeof(clms.view.name));
		mutex_unlock(&clms.lock);
		return 0;
	}
	mutex_unlock(&clms.lock);
	if (master == clms_self)
		return clms_master_set_name(0, name);

	req = kzalloc(sizeof(*req), GFP_KERNEL);
	if (!req)
		return -ENOMEM;
	strscpy(req->name, name, sizeof(req->name));
	ret = ics_clms_set_name(master, req, &rep, CLMS_CALL_TIMEOUT);
	kfree(req);
	return ret;
}

/* heartbeat_ms and timeout_ms, the master's for the cluster */

bool clms_timing_valid(u32 heartbeat_ms, u32 timeout_ms)
{
	return heartbeat_ms >= CLMS_HEARTBEAT_MIN_MS &&
	       heartbeat_ms <= CLMS_HEARTBEAT_MAX_MS &&
	       timeout_ms <= CLMS_TIMEOUT_MAX_MS &&
	       timeout_ms >= CLMS_TIMEOUT_MIN_BEATS * heartbeat_ms;
}

/* @heartbeat_ms and @timeout_ms (0: the current one) as a valid pair. */
static int clms_timing_merge(u32 *heartbeat_ms, u32 *timeout_ms)
{
	if (!*heartbeat_ms)
		*heartbeat_ms = READ_ONCE(clms_heartbeat_ms);
	if (!*timeout_ms)
		*timeout_ms = READ_ONCE(clms_timeout_ms);
	return clms_timing_valid(*heartbeat_ms, *timeout_ms) ? 0 : -EINVAL;
}

/* The master sets the timing for the cluster; with @from 0 it is ours. */
static int clms_master_set_timing(unsigned int from, u32 heartbeat_ms,
				  u32 timeout_ms)
{
	int ret;

	mutex_lock(&clms.lock);
	ret = clms_master_may_change(from) ?:
	      clms_timing_merge(&heartbeat_ms, &timeout_ms);
	if (!ret && (heartbeat_ms != READ_ONCE(clms_heartbeat_ms) ||
		     timeout_ms != READ_ONCE(clms_timeout_ms))) {
		clms_apply_timing(heartbeat_ms, timeout_ms);
		clms_master_announce_locked();
	}
	mutex_unlock(&clms.lock);
	return ret;
}

int clms_srv_set_timing(unsigned int from,
			const struct clms_set_timing_req *req,
			struct clms_set_timing_rep *rep)
{
	if (!clms_sender_known(from))
		return -EACCES;
	return clms_master_set_timing(from, req->heartbeat_ms,
				      req->timeout_ms);
}

/*
 * A write to heartbeat_ms or timeout_ms (0: the other one): checked here
 * against our values (the master's), then made by the master for the whole
 * cluster; outside a cluster it is ours until we join one.
 */
int clms_set_timing(u32 heartbeat_ms, u32 timeout_ms)
{
	struct clms_set_timing_req req = {
		.heartbeat_ms = heartbeat_ms,
		.timeout_ms = timeout_ms,
	};
	struct clms_set_timing_rep rep = {};
	u32 hb = heartbeat_ms, tmo = timeout_ms;
	unsigned int master;
	int ret;

	mutex_lock(&clms.lock);
	ret = clms_timing_merge(&hb, &tmo);
	master = clms.mode == CLMS_MEMBER ? clms.view.master : 0;
	if (!ret && !master)
		clms_apply_timing(hb, tmo);
	mutex_unlock(&clms.lock);
	if (ret || !master)
		return ret;
	if (master == clms_self)
		return clms_master_set_timing(0, heartbeat_ms, timeout_ms);
	return ics_clms_set_timing(master, &req, &rep, CLMS_CALL_TIMEOUT);
}

/* ---- test aid ---- */

/*
 * A ping that sleeps holds a worker of the prio dispatch queue, which
 * carries the heartbeats: only on a node loaded with test_knobs=1, and one
 * at a time, so that peers cannot park that queue's workers with pings.
 */
static atomic_t clms_ping_sleeping = ATOMIC_INIT(0);

int clms_srv_ping(unsigned int from, const struct clms_ping_req *req,
		  struct clms_ping_rep *rep)
{
	if (!clms_sender_known(from))
		return -EACCES;
	if (req->delay_ms > CLMS_PING_MAX_DELAY_MS)
		return -EINVAL;
	if (req->delay_ms) {
		if (!READ_ONCE(clms_test_knobs))
			return -EPERM;
		if (atomic_cmpxchg(&clms_ping_sleeping, 0, 1))
			return -EBUSY;
		msleep(req->delay_ms);
		atomic_set(&clms_ping_sleeping, 0);
	}
	rep->node = clms_self;
	rep->incarnation = READ_ONCE(clms.incarnation);
	return 0;
}

int clms_test_ping(unsigned int node, unsigned int delay_ms, u32 *inc)
{
	struct clms_ping_req req = { .delay_ms = delay_ms };
	struct clms_ping_rep rep = {};
	int ret;

	ret = ics_clms_ping(node, &req, &rep,
			    msecs_to_jiffies(delay_ms) + 5 * HZ);
	if (!ret)
		*inc = rep.incarnation;
	return ret;
}

/* ---- module ---- */

/* Tells the nodes we hear that we go, so they need not wait timeout_ms. */
static void clms_send_leave(void)
{
	struct clms_leave_req msg = { .node = clms_self };
	u64 heard;
	unsigned int n;

	mutex_lock(&clms.lock);
	msg.incarnation = clms.incarnation;
	heard = clms_heard_locked(clms.configured, jiffies);
	mutex_unlock(&clms.lock);
	for (n = 1; n < CLMS_NR_SLOTS; n++)
		if (n != clms_self && (heard & BIT_ULL(n)))
			ics_clms_leave(n, &msg);
}

int clms_init(void)
{
	unsigned int n;
	int ret;

	clms_self = ssi_node_num();
	if (!clms_self) {
		pr_err("this node has no ssi.node= number: not starting\n");
		return -ENODEV;
	}
	if (clms_heartbeat_ms < CLMS_HEARTBEAT_MIN_MS ||
	    clms_heartbeat_ms > CLMS_HEARTBEAT_MAX_MS ||
	    clms_timeout_ms > CLMS_TIMEOUT_MAX_MS ||
	    clms_timeout_ms < CLMS_TIMEOUT_MIN_BEATS * clms_heartbeat_ms) {
		pr_err("heartbeat_ms=%u timeout_ms=%u: want %u..%u and %u x heartbeat_ms..%u\n",
		       clms_heartbeat_ms, clms_timeout_ms,
		       CLMS_HEARTBEAT_MIN_MS, CLMS_HEARTBEAT_MAX_MS,
		       CLMS_TIMEOUT_MIN_BEATS, CLMS_TIMEOUT_MAX_MS);
		return -EINVAL;
	}

	mutex_init(&clms.lock);
	clms.next_beat = jiffies;
	clms.incarnation = clms_new_incarnation(0);
	clms.mode = CLMS_NOQUORUM;
	clms_set_self(SSI_NODE_UP);
	clms.cb_up = BIT_ULL(clms_self);
	for (n = 0; n < CLMS_NR_SLOTS; n++) {
		clms.peers[n].node = n;
		INIT_WORK(&clms.peers[n].send_work, clms_send_work_fn);
	}
	INIT_DELAYED_WORK(&clms_tick_work, clms_tick);

	clms_wq = alloc_workqueue("clms", WQ_UNBOUND | WQ_HIGHPRI |
				  WQ_MEM_RECLAIM, 0);
	if (!clms_wq)
		return -ENOMEM;
	ret = clms_notify_init();
	if (ret)
		goto err_wq;
	ret = clms_user_init();
	if (ret)
		goto err_notify;
	clms_publish();
	ret = ics_register_service(&clms_ics_service);
	if (ret)
		goto err_user;
	queue_delayed_work(clms_wq, &clms_tick_work, 0);
	pr_info("node %u incarnation %u, heartbeat %u ms, timeout %u ms\n",
		clms_self, clms.incarnation, clms_heartbeat_ms,
		clms_timeout_ms);
	return 0;

err_user:
	clms_user_exit();
	clms_user_final();
err_notify:
	clms_notify_exit();
err_wq:
	destroy_workqueue(clms_wq);
	return ret;
}

void clms_exit(void)
{
	clms_user_exit();
	WRITE_ONCE(clms_stopping, true);
	ics_unregister_service(&clms_ics_service);
	cancel_delayed_work_sync(&clms_tick_work);
	/* The callback worker may have kicked the tick meanwhile. */
	clms_notify_drain();
	cancel_delayed_work_sync(&clms_tick_work);
	destroy_workqueue(clms_wq);
	clms_send_leave();
	clms_notify_exit();
	clms_user_final();
}

// SPDX-License-Identifier: GPL-2.0-only
/*
 * CLMS nodeup/nodedown notifiers.  Membership changes queue events here
 * (after ics_node_down() for a node going down); one ordered work item
 * delivers them, so a slow callback never delays heartbeats.  Events are
 * kept per node without allocation: a node's queue is at most "down, up"
 * (it went down and came back with a new incarnation); an "up" that no
 * callback saw yet is cancelled by a following "down".
 */
#define pr_fmt(fmt) "clms: " fmt

#include <linux/bitops.h>
#include <linux/kernel.h>
#include <linux/list.h>
#include <linux/module.h>
#include <linux/mutex.h>
#include <linux/spinlock.h>
#include <linux/workqueue.h>

#include "clms_internal.h"

enum clms_ev_kind {
	CLMS_EV_NONE,
	CLMS_EV_DOWN,
	CLMS_EV_UP,
};

struct clms_node_events {
	u8 kind[2];		/* queue; kind[0] is delivered first */
	u64 transition[2];
};

static LIST_HEAD(clms_notifiers);
static DEFINE_MUTEX(clms_notifier_lock);	/* held while calling them */
/* What the notifiers have been told, replayed to new ones; notifier lock. */
static u64 clms_told_up;
static u64 clms_told_transition[CLMS_NR_SLOTS];

static DEFINE_SPINLOCK(clms_ev_lock);	/* clms_events, clms_ev_running */
static struct clms_node_events clms_events[CLMS_NR_SLOTS];
static unsigned int clms_ev_running;	/* node whose "down" runs now */

static struct workqueue_struct *clms_cb_wq;
static struct work_struct clms_cb_work;

/*
 * Before it joins the list, @nb->nodeup is called (from the caller) for
 * every node the notifiers have been told is up, so it sees the same
 * sequence of events as the notifiers registered before it.
 */
int clms_register_notifier(struct clms_notifier *nb)
{
	unsigned int n;

	if (!nb || (!nb->nodeup && !nb->nodedown))
		return -EINVAL;
	mutex_lock(&clms_notifier_lock);
	for (n = 1; n < CLMS_NR_SLOTS && nb->nodeup; n++)
		if (clms_told_up & BIT_ULL(n))
			nb->nodeup(n, clms_told_transition[n]);
	list_add_tail(&nb->list, &clms_notifiers);
	mutex_unlock(&clms_notifier_lock);
	return 0;
}
EXPORT_SYMBOL_GPL(clms_register_notifier);

/* Returns once no callback of @nb runs any more. */
void clms_unregister_notifier(struct clms_notifier *nb)
{
	mutex_lock(&clms_notifier_lock);
	list_del(&nb->list);
	mutex_unlock(&clms_notifier_lock);
}
EXPORT_SYMBOL_GPL(clms_unregister_notifier);

static void clms_ev_push(unsigned int node, enum clms_ev_kind kind,
			 u64 transition)
{
	struct clms_node_events *ev = &clms_events[node];

	spin_lock(&clms_ev_lock);
	if (kind == CLMS_EV_DOWN && ev->kind[1] == CLMS_EV_UP) {
		/* down, up, down: the second pair was never seen */
		ev->kind[1] = CLMS_EV_NONE;
	} else if (kind == CLMS_EV_DOWN && ev->kind[0] == CLMS_EV_UP) {
		ev->kind[0] = CLMS_EV_NONE;
	} else if (ev->kind[0] == CLMS_EV_NONE) {
		ev->kind[0] = kind;
		ev->transition[0] = transition;
	} else if (ev->kind[0] != kind) {
		ev->kind[1] = kind;
		ev->transition[1] = transition;
	} else {
		/* Same kind twice in a row: keep the later transition. */
		ev->transition[0] = transition;
	}
	spin_unlock(&clms_ev_lock);
	queue_work(clms_cb_wq, &clms_cb_work);
}

void clms_queue_nodeup(unsigned int node, u64 transition)
{
	clms_ev_push(node, CLMS_EV_UP, transition);
}

void clms_queue_nodedown(unsigned int node, u64 transition)
{
	clms_ev_push(node, CLMS_EV_DOWN, transition);
}

/* Nodedown callbacks for @node are queued or running. */
bool clms_cleanup_pending(unsigned int node)
{
	struct clms_node_events *ev = &clms_events[node];
	bool pending;

	spin_lock(&clms_ev_lock);
	pending = clms_ev_running == node || ev->kind[0] == CLMS_EV_DOWN;
	spin_unlock(&clms_ev_lock);
	return pending;
}

/* Pops the next event; false when there is none. */
static bool clms_ev_pop(unsigned int *node, enum clms_ev_kind *kind,
			u64 *transition)
{
	struct clms_node_events *ev;
	unsigned int n;
	bool found = false;

	spin_lock(&clms_ev_lock);
	for (n = 1; n < CLMS_NR_SLOTS; n++) {
		ev = &clms_events[n];
		if (ev->kind[0] == CLMS_EV_NONE)
			continue;
		*node = n;
		*kind = ev->kind[0];
		*transition = ev->transition[0];
		ev->kind[0] = ev->kind[1];
		ev->transition[0] = ev->transition[1];
		ev->kind[1] = CLMS_EV_NONE;
		if (*kind == CLMS_EV_DOWN)
			clms_ev_running = n;
		found = true;
		break;
	}
	spin_unlock(&clms_ev_lock);
	return found;
}

static void clms_cb_work_fn(struct work_struct *work)
{
	struct clms_notifier *nb;
	enum clms_ev_kind kind;
	unsigned int node;
	u64 transition;
	bool down_done = false;

	while (clms_ev_pop(&node, &kind, &transition)) {
		mutex_lock(&clms_notifier_lock);
		clms_told_transition[node] = transition;
		if (kind == CLMS_EV_UP) {
			clms_told_up |= BIT_ULL(node);
			pr_info("node %u up (transition %llu)\n", node,
				transition);
			clms_count(CLMS_CNT_NODEUPS);
			list_for_each_entry(nb, &clms_notifiers, list)
				if (nb->nodeup)
					nb->nodeup(node, transition);
		} else {
			clms_told_up &= ~BIT_ULL(node);
			pr_info("node %u down (transition %llu)\n", node,
				transition);
			clms_count(CLMS_CNT_NODEDOWNS);
			list_for_each_entry_reverse(nb, &clms_notifiers, list)
				if (nb->nodedown)
					nb->nodedown(node, transition);
			down_done = true;
		}
		mutex_unlock(&clms_notifier_lock);
		spin_lock(&clms_ev_lock);
		clms_ev_running = 0;
		spin_unlock(&clms_ev_lock);
	}
	/* A master waits in KCLEANUP for this: let it move on now. */
	if (down_done)
		clms_kick();
}

int clms_notify_init(void)
{
	INIT_WORK(&clms_cb_work, clms_cb_work_fn);
	clms_cb_wq = alloc_ordered_workqueue("clms_cb", WQ_MEM_RECLAIM);
	return clms_cb_wq ? 0 : -ENOMEM;
}

/* Delivers everything queued so far. */
void clms_notify_drain(void)
{
	flush_workqueue(clms_cb_wq);
}

void clms_notify_exit(void)
{
	destroy_workqueue(clms_cb_wq);
	WARN_ON(!list_empty(&clms_notifiers));
}

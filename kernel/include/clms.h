/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * CLMS, ssikit cluster membership: which nodes are up, the transition id
 * bumped on every change, and nodeup/nodedown callbacks for the other SSI
 * modules.  Nodedown callbacks are what clean up after a dead node.
 */
#ifndef _SSI_CLMS_H
#define _SSI_CLMS_H

#include <linux/list.h>
#include <linux/types.h>
#include <uapi/linux/ssi.h>

struct module;

/*
 * Called from CLMS's own workqueue, in registration order (nodedown in
 * reverse), once per transition that changes @node's state; may sleep
 * and may use ICS, but must not wait for another membership transition.
 * ICS calls pending on a node have failed (-EHOSTDOWN) before its
 * nodedown.  A node coming back as a new incarnation gets nodedown, then
 * nodeup.  This node itself is never reported.
 */
struct clms_notifier {
	struct list_head list;
	void (*nodeup)(unsigned int node, u64 transition);
	void (*nodedown)(unsigned int node, u64 transition);
};

/*
 * Registering calls @nb->nodeup, from the caller, for each node already
 * reported up, then delivers every later event; after unregistering
 * returns, no callback of @nb runs.  Neither may be called from a
 * callback.
 */
int clms_register_notifier(struct clms_notifier *nb);
void clms_unregister_notifier(struct clms_notifier *nb);

/* True while @node is UP in this node's view (this node included). */
bool clms_node_is_up(unsigned int node);
/* Bit n set: node n is UP. */
u64 clms_up_nodes(void);
u64 clms_transition(void);
unsigned int clms_master(void);
/* True while this node's side holds a majority of the cluster table. */
bool clms_have_quorum(void);

#endif /* _SSI_CLMS_H */

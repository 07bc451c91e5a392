// SPDX-License-Identifier: GPL-2.0-only
/*
 * ICS module setup: the cluster table and key (set through ssisys by
 * ssictl), peers, counters under /sys/kernel/ssi/ics, workqueues.
 *
 * The protocol, version 2 (ICS_PROTO_VERSION), layer by layer:
 *
 *   ics_listen.c  admission: a connection is closed at accept unless its
 *                 address is in the cluster table with fewer than
 *                 ICS_HS_PER_SOURCE handshakes going on (ICS_HS_MAX in all)
 *   ics_auth.c    handshake: HELLO, CHALLENGE, RESPONSE, OK; both ends prove
 *                 the cluster key and agree on protect=; one deadline
 *                 (ICS_HANDSHAKE_TIMEOUT); then session keys by HKDF-SHA256
 *   ics_tls.c     protection: every later byte is a kernel TLS 1.3 record
 *                 (AES-128-GCM) under those keys (protect=tls), or
 *   ics_mac.c     every later frame carries a Poly1305 tag under them
 *                 (protect=auth: integrity, no secrecy); protect=none: none
 *   ics_conn.c    framing: struct ics_hdr (ics.h) and a body of hdr.len
 *                 bytes, read from socket callbacks without blocking
 *   ics_rpc.c     calls (xid-matched replies, one deadline per call),
 *                 one-way messages, dispatch to the registered services
 *
 * Every frame is checked before it is trusted: version, kind for the
 * connection's direction, length bounds (ICS_MAX_BODY; exact lengths
 * before authentication), op and op version; what fails is dropped and
 * counted, and a frame that leaves the stream unparseable closes it.
 */
#define pr_fmt(fmt) "ics: " fmt

#include <linux/capability.h>
#include <linux/kernel.h>
#include <linux/module.h>
#include <linux/slab.h>
#include <linux/sysfs.h>
#include <linux/uaccess.h>

#include "ics_internal.h"
#include "ssi_core.h"
#include "ics_gen.h"

atomic64_t ics_counters[ICS_NR_COUNTERS];

const char *const ics_counter_names[ICS_NR_COUNTERS] = {
	[ICS_CNT_FRAMES_RX] = "frames_rx",
	[ICS_CNT_FRAMES_TX] = "frames_tx",
	[ICS_CNT_BYTES_RX] = "bytes_rx",
	[ICS_CNT_BYTES_TX] = "bytes_tx",
	[ICS_CNT_CALLS] = "calls",
	[ICS_CNT_CALL_ERRORS] = "call_errors",
	[ICS_CNT_CALL_TIMEOUTS] = "call_timeouts",
	[ICS_CNT_ONEWAY_SENT] = "oneway_sent",
	[ICS_CNT_DISPATCHED] = "dispatched",
	[ICS_CNT_BAD_HEADER] = "dropped_bad_header",
	[ICS_CNT_OVERSIZED] = "dropped_oversized",
	[ICS_CNT_TRUNCATED] = "dropped_truncated",
	[ICS_CNT_UNKNOWN_OP] = "dropped_unknown_op",
	[ICS_CNT_MALFORMED_BODY] = "dropped_malformed_body",
	[ICS_CNT_STALE_REPLIES] = "dropped_stale_replies",
	[ICS_CNT_AUTH_OK] = "auth_ok",
	[ICS_CNT_AUTH_REFUSED] = "auth_refused",
	[ICS_CNT_CONNECTS] = "connects",
	[ICS_CNT_CONNECT_FAILURES] = "connect_failures",
	[ICS_CNT_DISCONNECTS] = "disconnects",
	[ICS_CNT_BAD_RECORD] = "dropped_bad_record",
	[ICS_CNT_REFUSED_ADDRESS] = "refused_address",
	[ICS_CNT_REFUSED_BUSY] = "refused_busy",
	[ICS_CNT_HS_TIMEOUTS] = "handshake_timeouts",
};

enum ics_protect ics_protect_mode = ICS_PROTECT_TLS;

struct ics_peer ics_peers[SSI_MAX_NODES + 1];
static DEFINE_MUTEX(ics_table_lock);	/* configured/addr of all peers */

struct workqueue_struct *ics_rx_wq;
struct workqueue_struct *ics_dispatch_wq;
struct workqueue_struct *ics_prio_wq;

static struct kobject *ics_kobj;

int ics_set_peer(unsigned int node, __be32 addr)
{
	struct ics_peer *peer;
	bool moved;

	if (node < 1 || node > SSI_MAX_NODES || !addr)
		return -EINVAL;
	peer = &ics_peers[node];
	mutex_lock(&peer->lock);
	moved = peer->configured && peer->addr != addr;
	WRITE_ONCE(peer->addr, addr);
	WRITE_ONCE(peer->configured, true);
	peer->retry_after = jiffies;
	mutex_unlock(&peer->lock);
	if (moved)
		ics_conns_kill_node(node, false);
	return 0;
}
EXPORT_SYMBOL_GPL(ics_set_peer);

void ics_clear_peer(unsigned int node)
{
	if (node < 1 || node > SSI_MAX_NODES)
		return;
	mutex_lock(&ics_peers[node].lock);
	WRITE_ONCE(ics_peers[node].configured, false);
	mutex_unlock(&ics_peers[node].lock);
	ics_conns_kill_node(node, true);
}
EXPORT_SYMBOL_GPL(ics_clear_peer);

void ics_node_down(unsigned int node)
{
	if (node < 1 || node > SSI_MAX_NODES)
		return;
	ics_conns_kill_node(node, true);
}
EXPORT_SYMBOL_GPL(ics_node_down);

u64 ics_configured_nodes(void)
{
	unsigned int node;
	u64 mask = 0;

	for (node = 1; node <= SSI_MAX_NODES; node++)
		if (READ_ONCE(ics_peers[node].configured))
			mask |= BIT_ULL(node);
	return mask;
}
EXPORT_SYMBOL_GPL(ics_configured_nodes);

__be32 ics_peer_addr(unsigned int node)
{
	if (node < 1 || node > SSI_MAX_NODES ||
	    !READ_ONCE(ics_peers[node].configured))
		return 0;
	return READ_ONCE(ics_peers[node].addr);
}
EXPORT_SYMBOL_GPL(ics_peer_addr);

static long ics_ssisys_set_key(void __user *buf, size_t len)
{
	u8 *key;
	int ret;

	if (!capable(CAP_SYS_ADMIN))
		return -EPERM;
	if (len < SSI_KEY_MIN || len > SSI_KEY_MAX)
		return -EINVAL;
	key = memdup_user(buf, len);
	if (IS_ERR(key))
		return PTR_ERR(key);
	ret = ics_auth_set_key(key, len);
	kfree_sensitive(key);
	/*
	 * Connections authenticated with the old key must prove the new one.
	 * The same key set again (every `cluster up` sets it) changes nothing:
	 * dropping every connection then made the next calls race the
	 * reconnects, and a migrate() fail with EHOSTDOWN.
	 */
	if (ret > 0)
		ics_conns_shutdown_all();
	return ret < 0 ? ret : 0;
}

static int ics_table_check(const struct ssi_cluster_table *table)
{
	u64 seen = 0;
	unsigned int i, node;

	if (table->reserved || table->nr_nodes > SSI_MAX_NODES)
		return -EINVAL;
	for (i = 0; i < table->nr_nodes; i++) {
		node = table->nodes[i].node;
		if (node < 1 || node > SSI_MAX_NODES || !table->nodes[i].addr ||
		    (seen & BIT_ULL(node)))
			return -EINVAL;
		seen |= BIT_ULL(node);
	}
	/* A table that leaves this node out is someone else's cluster. */
	if (!(seen & BIT_ULL(ssi_node_num())))
		return -EINVAL;
	return 0;
}

static long ics_ssisys_set_table(void __user *buf, size_t len)
{
	struct ssi_cluster_table *table;
	u64 keep = 0;
	unsigned int i;
	int ret;

	if (!capable(CAP_SYS_ADMIN))
		return -EPERM;
	if (len != sizeof(*table))
		return -EINVAL;
	table = memdup_user(buf, len);
	if (IS_ERR(table))
		return PTR_ERR(table);
	ret = ics_table_check(table);
	if (ret)
		goto out;

	mutex_lock(&ics_table_lock);
	for (i = 0; i < table->nr_nodes; i++) {
		keep |= BIT_ULL(table->nodes[i].node);
		ics_set_peer(table->nodes[i].node,
			     (__force __be32)table->nodes[i].addr);
	}
	for (i = 1; i <= SSI_MAX_NODES; i++)
		if (!(keep & BIT_ULL(i)) && READ_ONCE(ics_peers[i].configured))
			ics_clear_peer(i);
	mutex_unlock(&ics_table_lock);
out:
	kfree(table);
	return ret;
}

static const struct ssisys_handler ics_set_key_handler = {
	.owner = THIS_MODULE,
	.call = ics_ssisys_set_key,
};

static const struct ssisys_handler ics_set_table_handler = {
	.owner = THIS_MODULE,
	.call = ics_ssisys_set_table,
};

struct ics_counter_attr {
	struct kobj_attribute attr;
	enum ics_counter counter;
};

static struct ics_counter_attr ics_counter_attrs[ICS_NR_COUNTERS];
static struct attribute *ics_attrs[ICS_NR_COUNTERS + 3];

static ssize_t ics_counter_show(struct kobject *kobj,
				struct kobj_attribute *attr, char *buf)
{
	struct ics_counter_attr *ca =
		container_of(attr, struct ics_counter_attr, attr);

	return sysfs_emit(buf, "%lld\n",
			  atomic64_read(&ics_counters[ca->counter]));
}

static ssize_t peers_show(struct kobject *kobj, struct kobj_attribute *attr,
			  char *buf)
{
	unsigned int node;
	int len = 0;

	for (node = 1; node <= SSI_MAX_NODES; node++) {
		if (!READ_ONCE(ics_peers[node].configured))
			continue;
		len += sysfs_emit_at(buf, len, "%u %pI4 prio=%d bulk=%d\n",
				     node, &ics_peers[node].addr,
				     ics_peer_connected(node, ICS_CHAN_PRIO),
				     ics_peer_connected(node, ICS_CHAN_BULK));
	}
	return len;
}

static struct kobj_attribute peers_attr = __ATTR_RO(peers);

static ssize_t key_set_show(struct kobject *kobj, struct kobj_attribute *attr,
			    char *buf)
{
	return sysfs_emit(buf, "%d\n", ics_auth_have_key());
}

static struct kobj_attribute key_set_attr = __ATTR_RO(key_set);

static const struct attribute_group ics_group = {
	.attrs = ics_attrs,
};

static int ics_sysfs_init(void)
{
	int i, ret;

	for (i = 0; i < ICS_NR_COUNTERS; i++) {
		struct ics_counter_attr *ca = &ics_counter_attrs[i];

		sysfs_attr_init(&ca->attr.attr);
		ca->attr.attr.name = ics_counter_names[i];
		ca->attr.attr.mode = 0444;
		ca->attr.show = ics_counter_show;
		ca->counter = i;
		ics_attrs[i] = &ca->attr.attr;
	}
	ics_attrs[ICS_NR_COUNTERS] = &peers_attr.attr;
	ics_attrs[ICS_NR_COUNTERS + 1] = &key_set_attr.attr;

	ics_kobj = kobject_create_and_add("ics", ssi_sysfs_root());
	if (!ics_kobj)
		return -ENOMEM;
	ret = sysfs_create_group(ics_kobj, &ics_group);
	if (ret)
		kobject_put(ics_kobj);
	return ret;
}

static void ics_sysfs_exit(void)
{
	sysfs_remove_group(ics_kobj, &ics_group);
	kobject_put(ics_kobj);
}

int ics_init(void)
{
	unsigned int node;
	int ret;

	if (!ssi_node_num()) {
		pr_err("this node has no ssi.node= number: not starting\n");
		return -ENODEV;
	}
	if (!strcmp(ics_protect, "tls")) {
		ics_protect_mode = ICS_PROTECT_TLS;
	} else if (!strcmp(ics_protect, "auth")) {
		ics_protect_mode = ICS_PROTECT_AUTH;
		pr_info("protect=auth: frames are authenticated, not encrypted\n");
	} else if (!strcmp(ics_protect, "none")) {
		ics_protect_mode = ICS_PROTECT_NONE;
		pr_warn("protect=none: frames travel unprotected; only for a trusted interconnect\n");
	} else {
		pr_err("protect=%s: use tls, auth (integrity without secrecy), or none on a trusted interconnect\n",
		       ics_protect);
		return -EINVAL;
	}
	for (node = 0; node <= SSI_MAX_NODES; node++)
		mutex_init(&ics_peers[node].lock);

	ret = ics_auth_init();
	if (ret)
		return ret;
	ret = -ENOMEM;
	ics_rx_wq = alloc_workqueue("ics_rx", WQ_UNBOUND, 0);
	if (!ics_rx_wq)
		goto err_auth;
	ics_dispatch_wq = alloc_workqueue("ics_dispatch", WQ_UNBOUND, 0);
	if (!ics_dispatch_wq)
		goto err_rx_wq;
	ics_prio_wq = alloc_workqueue("ics_prio", WQ_UNBOUND | WQ_HIGHPRI, 0);
	if (!ics_prio_wq)
		goto err_dispatch_wq;
	ret = ics_sysfs_init();
	if (ret)
		goto err_prio_wq;
	ret = ics_listen_start();
	if (ret)
		goto err_sysfs;
	ret = ssisys_register(SSISYS_ICS_SET_KEY, &ics_set_key_handler);
	if (ret)
		goto err_listen;
	ret = ssisys_register(SSISYS_CLUSTER_SET_TABLE, &ics_set_table_handler);
	if (ret)
		goto err_key_cmd;
	pr_info("node %u listening on port %d\n", ssi_node_num(), ICS_PORT);
	return 0;

err_key_cmd:
	ssisys_unregister(SSISYS_ICS_SET_KEY, &ics_set_key_handler);
err_listen:
	ics_listen_stop();
err_sysfs:
	ics_sysfs_exit();
err_prio_wq:
	destroy_workqueue(ics_prio_wq);
err_dispatch_wq:
	destroy_workqueue(ics_dispatch_wq);
err_rx_wq:
	destroy_workqueue(ics_rx_wq);
err_auth:
	ics_auth_exit();
	return ret;
}

void ics_exit(void)
{
	ssisys_unregister(SSISYS_CLUSTER_SET_TABLE, &ics_set_table_handler);
	ssisys_unregister(SSISYS_ICS_SET_KEY, &ics_set_key_handler);
	ics_listen_stop();
	ics_conns_shutdown_all();
	/* rx_work closes each connection and drops its references. */
	destroy_workqueue(ics_rx_wq);
	destroy_workqueue(ics_prio_wq);
	destroy_workqueue(ics_dispatch_wq);
	ics_rpc_exit();
	ics_auth_exit();
	ics_sysfs_exit();
}

#!/bin/sh
# PID 1 of an ssikit test node. The root is the host's / over 9p (read-only);
# writable state lives on tmpfs. Kept lean: under TCG every exec costs tens of
# milliseconds (dynamic binaries read their libraries over 9p), so this script
# uses shell builtins and the static busybox, and batches mounts via fstab files.
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export HOME=/root TERM=linux
if [ -n "$BB_ASH_VERSION" ]; then
	BB=  # run by `busybox sh` (the harness boots init=busybox -- sh init.sh): applets are builtin
else
	BB=busybox
	for b in /usr/bin/busybox /bin/busybox /usr/sbin/busybox; do
		[ -x "$b" ] && BB=$b && break
	done
fi
HERE=${0%/*}
# The checkout's venv (ssictl, genmod) is on every node's PATH, after
# build/guest-bin, whose ssictl is the thin client of the resident daemon.
REPO=${HERE%/qemu/guest}
export PATH="$REPO/build/guest-bin:$REPO/.venv/bin:$PATH"

# Mount proc first: before that, /proc is the host's directory seen over 9p.
$BB mount -t proc -o nosuid,nodev,noexec proc /proc
N=1 M=1 DEBUG= NO_SSICTL_DAEMON= FLAVOR=
read -r CMDLINE </proc/cmdline
for w in $CMDLINE; do
	case $w in
	ssi.node=*) N=${w#ssi.node=} ;;
	ssi.nodes=*) M=${w#ssi.nodes=} ;;
	ssi.debug=*) DEBUG=1 ;;
	ssi.nodaemon) NO_SSICTL_DAEMON=1 ;;
	ssi.flavor=*) FLAVOR=${w#ssi.flavor=} ;;
	esac
done
# A kernel of another flavor than normal (ssi.flavor=debug) needs the modules
# built against it: ssictl (the daemon and every command, all started below
# and inheriting this) loads them from there.
if [ -n "$FLAVOR" ] && [ "$FLAVOR" != normal ]; then
	export SSIKIT_MODULES_DIR="$REPO/build/modules-$FLAVOR/out"
fi
# With ssi.debug=1 on the kernel command line, log boot stages to the console.
stage() {
	[ -n "$DEBUG" ] || return 0
	read -r up _ </proc/uptime
	echo "<3>ssi-init: $1 at $up" >/dev/kmsg
}
stage start

devtmpfs=
while read -r _ mp fs _; do
	[ "$mp $fs" = "/dev devtmpfs" ] && devtmpfs=1
done </proc/mounts
[ -n "$devtmpfs" ] || $BB mount -t devtmpfs devtmpfs /dev
$BB mkdir -p /dev/pts /dev/shm
# A checkout under a directory covered by tmpfs below (/tmp, /run, /var/tmp)
# comes back from its own 9p export (tag ssirepo) at the same path.
repo_back() {
	[ -e "$HERE/agent.sh" ] && return 0
	$BB mkdir -p "${HERE%/qemu/guest}"
	$BB mount -t 9p -o trans=virtio,version=9p2000.L,msize=524288,ro ssirepo \
		"${HERE%/qemu/guest}"
}
$BB mount -a -T "$HERE/fstab.early"
repo_back
O=/run/.ssi-overlay
$BB mkdir -p $O/etc/u $O/etc/w $O/var/u $O/var/w /run/lock
$BB mount -a -T "$HERE/fstab.late"
repo_back
# The Python runtime image (qemu/guest_image.py): a virtio-blk disk with this
# serial; its fstab binds the interpreter, standard library, venv and shared
# libraries over their 9p paths, so programs load them from the page cache.
PYIMG=/run/ssi-pyimage
for d in /sys/block/vd*; do
	[ -r "$d/serial" ] || continue
	read -r serial <"$d/serial"
	[ "$serial" = ssi-pyimage ] || continue
	$BB mkdir -p $PYIMG
	if $BB mount -t erofs -o ro "/dev/${d##*/}" $PYIMG; then
		$BB mount -a -T $PYIMG/ssi-fstab
	else
		echo "<3>ssi-init: cannot mount the Python image /dev/${d##*/}" >/dev/kmsg
	fi
done
# The node's own disk (qemu/disks.py), when the harness gave it one: ext4,
# read-write at /srv, as a server's local file system is.
for d in /sys/block/vd*; do
	[ -r "$d/serial" ] || continue
	read -r serial <"$d/serial"
	[ "$serial" = ssi-disk ] || continue
	$BB mount -t ext4 "/dev/${d##*/}" /srv ||
		echo "<3>ssi-init: cannot mount the node disk /dev/${d##*/} at /srv" >/dev/kmsg
done
stage mounted

# migration.ko execs its restore helper at every move to this node: from the
# 9p root that exec took 112 ms under TCG, from tmpfs 32 ms (2026-12-02).
# Serve it from tmpfs at its own path.
RESTORE="$REPO/build/guest-bin/ssi-restore"
if [ -x "$RESTORE" ] && $BB cp "$RESTORE" /run/.ssi-restore; then
	$BB mount -o bind /run/.ssi-restore "$RESTORE" ||
		echo "<3>ssi-init: cannot serve $RESTORE from tmpfs" >/dev/kmsg
fi
stage restore-helper

# The resident ssictl daemon (ssictl/daemon.py) imports the CLI once and then
# answers every ssictl command at the cost of a fork. The first root ssictl
# call starts it (ssictl/client.c), with the environment listed here: its
# imports take seconds of CPU, which a node forming a cluster, or one where
# nobody runs ssictl, should not pay at boot.
if [ -x "$REPO/.venv/bin/python" ] && [ -z "$NO_SSICTL_DAEMON" ]; then
	$BB mkdir -p /run/ssictl
	{
		echo "PATH=$PATH"
		echo "HOME=/root"
		echo "LANG=C.UTF-8"
		[ -n "$SSIKIT_MODULES_DIR" ] && echo "SSIKIT_MODULES_DIR=$SSIKIT_MODULES_DIR"
	} >/run/ssictl/autostart
fi


echo "node$N" >/proc/sys/kernel/hostname
echo "node$N" >/etc/hostname
{
	echo "127.0.0.1 localhost"
	i=1
	while [ "$i" -le "$M" ]; do
		echo "169.254.77.$i node$i"
		i=$((i + 1))
	done
} >/etc/hosts
# IPv4 only on the cluster L2: no IPv6 DAD/MLD/RS chatter through the hub.
[ -w /proc/sys/net/ipv6/conf/eth0/disable_ipv6 ] && echo 1 >/proc/sys/net/ipv6/conf/eth0/disable_ipv6
$BB ifconfig lo 127.0.0.1 up
$BB ifconfig eth0 "169.254.77.$N" netmask 255.255.255.0 up
stage network

# The command agent (host <-> guest on the virtio port named ssi.cmd). Under
# busybox sh its helpers (base64, rm, timeout) are applets: no exec, no 9p.
$BB sh "$HERE/agent.sh" "$N" </dev/null >/dev/null 2>&1 &

# An interactive shell on the virtconsole (hvc0), started when someone types
# a line there (`python -m qemu up` sends one on attach), respawned on exit.
# Its environment is defined here, whatever the kernel or the host passed.
if [ -c /dev/hvc0 ]; then
	SH=/bin/sh
	[ -x /bin/bash ] && SH=/bin/bash
	(
		while :; do
			read -r _ </dev/hvc0 || $BB sleep 1
			$BB setsid -c $BB env -i HOME=/root TERM=linux LANG=C.UTF-8 \
				PATH="$PATH" SHELL=$SH USER=root LOGNAME=root \
				${SSIKIT_MODULES_DIR:+SSIKIT_MODULES_DIR=$SSIKIT_MODULES_DIR} \
				$SH -i </dev/hvc0 >/dev/hvc0 2>&1
		done
	) &
fi

# PID 1 must never exit; `wait` also reaps orphans re-parented to us.
while :; do
	$BB sleep 3600 &
	wait
done

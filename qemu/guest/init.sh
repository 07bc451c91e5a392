#!/bin/sh
# PID 1 of an ssikit test node. The root is the host's / over 9p (read-only);
# writable state lives on tmpfs. Kept lean: every fork costs under TCG.
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export HOME=/root TERM=linux
BB=busybox
for b in /usr/bin/busybox /bin/busybox /usr/sbin/busybox; do
	[ -x "$b" ] && BB=$b && break
done
HERE=${0%/*}

# Mount proc first: before that, /proc is the host's directory seen over 9p.
$BB mount -t proc proc /proc
N=1 M=1
read -r CMDLINE </proc/cmdline
for w in $CMDLINE; do
	case $w in
	ssi.node=*) N=${w#ssi.node=} ;;
	ssi.nodes=*) M=${w#ssi.nodes=} ;;
	esac
done

mnt() { $BB mount "$@" || echo "ssi-init: mount $* failed" >/dev/console; }

mnt -t sysfs sysfs /sys
MOUNTS=$($BB cat /proc/mounts)
case $MOUNTS in *" /dev devtmpfs "*) ;; *) mnt -t devtmpfs devtmpfs /dev ;; esac
$BB mkdir -p /dev/pts /dev/shm
mnt -t devpts -o gid=5,mode=620,ptmxmode=666 devpts /dev/pts
[ -c /dev/ptmx ] || $BB ln -sf pts/ptmx /dev/ptmx
mnt -t tmpfs -o mode=1777 tmpfs /dev/shm
mnt -t tmpfs -o mode=755 tmpfs /run
mnt -t tmpfs -o mode=1777 tmpfs /tmp

# Writable /etc, /var and /root: overlays with tmpfs upper layers.
O=/run/.ssi-overlay
for d in etc var root; do
	$BB mkdir -p $O/$d/u $O/$d/w
	mnt -t overlay -o lowerdir=/$d,upperdir=$O/$d/u,workdir=$O/$d/w overlay /$d
done
mnt -t tmpfs -o mode=1777 tmpfs /var/tmp
$BB mkdir -p /run/lock

$BB hostname "node$N"
echo "node$N" >/etc/hostname
{
	echo "127.0.0.1 localhost"
	i=1
	while [ "$i" -le "$M" ]; do
		echo "169.254.77.$i node$i"
		i=$((i + 1))
	done
} >/etc/hosts

$BB ip link set lo up
$BB ip addr add "169.254.77.$N/24" dev eth0 && $BB ip link set eth0 up

# The command agent (host <-> guest on the virtio port named ssi.cmd).
/bin/sh "$HERE/agent.sh" "$N" </dev/null >/dev/console 2>&1 &

# An interactive shell on the virtconsole, respawned when it exits.
if [ -c /dev/hvc0 ]; then
	SH=/bin/sh
	[ -x /bin/bash ] && SH=/bin/bash
	(
		while :; do
			$BB setsid -c $SH -i </dev/hvc0 >/dev/hvc0 2>&1
			$BB sleep 1
		done
	) &
fi

# PID 1 must never exit; `wait` also reaps orphans re-parented to us.
while :; do
	$BB sleep 3600 &
	wait
done

#!/bin/sh
# Resident command agent of an ssikit test node (no Python: it starts too
# slowly under TCG). It talks to the host over the virtio port named ssi.cmd.
#
# Protocol, one line each way, fields separated by one space:
#   guest -> host  READY <node>                      (on start and each reconnect)
#   host  -> guest REQ <id> <timeout-s> <base64 cmd>  (timeout 0: none)
#   guest -> host  RES <id> <rc> <base64 stdout> <base64 stderr>
# base64 of an empty string is "-". One request at a time.
# init.sh runs this with `busybox sh`, where base64, rm, timeout etc. are
# applets (no exec, no 9p lookups); under another sh the host's tools serve.
N=${1:-0}
REPO=${0%/qemu/guest/*}
export PATH="$REPO/build/guest-bin:$REPO/.venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
export HOME=/root TERM=linux

PORT=
i=0
while [ -z "$PORT" ]; do
	for f in /sys/class/virtio-ports/*/name; do
		[ -r "$f" ] || continue
		read -r name <"$f"
		if [ "$name" = ssi.cmd ]; then
			p=${f%/name}
			PORT=/dev/${p##*/}
		fi
	done
	[ -n "$PORT" ] && [ -c "$PORT" ] && break
	PORT=
	i=$((i + 1))
	if [ "$i" -gt 500 ]; then
		echo "<3>ssi-agent: no virtio port named ssi.cmd" >/dev/kmsg
		exit 1
	fi
	sleep 0.02
done

W=/run/ssi-agent
mkdir -p $W
exec 3<>"$PORT"

b64() {
	if [ -s "$1" ]; then base64 -w 0 "$1"; else printf %s -; fi
}

while :; do
	# Blocks until the host end is connected; a read at EOF means it left.
	printf 'READY %s\n' "$N" >&3
	while read -r kind id tmo cmd <&3; do
		[ "$kind" = REQ ] || continue
		out=$W/$id.out err=$W/$id.err
		printf %s "$cmd" | base64 -d >$W/$id.cmd 2>/dev/null
		if [ "$tmo" -gt 0 ] 2>/dev/null; then
			(cd / && exec timeout -s KILL "$tmo" /bin/sh $W/$id.cmd) </dev/null >"$out" 2>"$err" 3>&-
		else
			(cd / && exec /bin/sh $W/$id.cmd) </dev/null >"$out" 2>"$err" 3>&-
		fi
		rc=$?
		{
			printf 'RES %s %s ' "$id" "$rc"
			b64 "$out"
			printf ' '
			b64 "$err"
			printf '\n'
		} >&3
		rm -f "$out" "$err" $W/$id.cmd
	done
done

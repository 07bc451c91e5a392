#!/bin/sh
# Run sparse (make C=2) over every generated SSI module build; fail on any
# sparse or compiler warning.  Needs `make modules` first.
set -eu
cd "$(dirname "$0")/.."
tree=build/linux
symvers=$(ls build/modules/*/Module.symvers 2>/dev/null | tr '\n' ' ')
status=0
for dir in build/modules/*/; do
	[ -f "$dir/Kbuild" ] || continue
	out=$(make -s -C "$tree" M="$PWD/$dir" C=2 KBUILD_EXTRA_SYMBOLS="$symvers" \
		modules 2>&1 | grep -E 'warning|error' || true)
	if [ -n "$out" ]; then
		printf '%s\n' "$out"
		status=1
	fi
done
[ $status -eq 0 ] && echo "sparse: all modules clean"
exit $status

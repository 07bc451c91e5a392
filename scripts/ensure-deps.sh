#!/bin/sh
# Install what ssikit needs on a Debian 12 machine, as root: apt packages,
# then a venv with the Python dependencies.  A second run checks and says so.
set -eu
cd "$(dirname "$0")/.."

APT_PACKAGES="qemu-system-x86 linux-source-6.1 flex bison bc libelf-dev \
libssl-dev cpio ccache dwarves kmod busybox-static gcc make patch lz4 sparse \
python3 python3-venv python3-pip perl xz-utils procps erofs-utils iperf3 \
criu e2fsprogs fio"

missing=""
for pkg in $APT_PACKAGES; do
	status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
	case "$status" in
	*"install ok installed"*) ;;
	*) missing="$missing $pkg" ;;
	esac
done

if [ -n "$missing" ]; then
	if [ "$(id -u)" != 0 ]; then
		echo "ensure-deps: missing Debian packages:$missing" >&2
		echo "ensure-deps: run as root, or: apt-get install$missing" >&2
		exit 1
	fi
	echo "ensure-deps: installing$missing"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -q >/dev/null
	# shellcheck disable=SC2086
	apt-get install -y -q --no-install-recommends $missing >/dev/null
else
	echo "ensure-deps: Debian packages present"
fi

# Debian's interpreter, never the one first on the caller's PATH (a pyenv shim,
# say): guests run the venv too, and get its interpreter and standard library
# from an image of exactly these files (qemu/guest_image.py).
PYTHON=/usr/bin/python3
stamp=.venv/.ssikit-deps
want=$( (cat pyproject.toml; echo "$PYTHON") | sha256sum | cut -d' ' -f1)
if [ -x .venv/bin/python ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
	echo "ensure-deps: Python venv up to date"
	exit 0
fi
echo "ensure-deps: creating the Python venv in .venv"
rm -rf .venv
"$PYTHON" -m venv .venv
.venv/bin/pip install -q --disable-pip-version-check -e '.[dev]'
echo "$want" > "$stamp"

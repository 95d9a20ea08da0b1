#!/bin/sh
# Install the Debian packages memvisor needs, and nothing when they are all present.
# Idempotent and silent on a machine that already has everything: every make target calls it.
set -eu

PKGS="build-essential pkg-config
libcmocka-dev libfdt-dev libnuma-dev libjson-c-dev libmicrohttpd-dev libcurl4-openssl-dev
acpica-tools clang libclang-rt-14-dev shellcheck
qemu-system-x86 qemu-utils busybox-static cpio kmod numactl
python3 python3-pytest python3-matplotlib
hyperfine"

missing=""
for p in $PKGS; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q '^install ok installed$' ||
		missing="$missing $p"
done
[ -z "$missing" ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
	echo "ci/deps.sh: missing packages:$missing (run as root, or install them with apt-get)" >&2
	exit 1
fi
echo "ci/deps.sh: installing$missing" >&2
export DEBIAN_FRONTEND=noninteractive
# An apt cache older than a day, or none at all, would make the install fail on a fresh machine.
if [ -z "$(find /var/lib/apt/lists -maxdepth 1 -name '*Packages*' -mtime -1 2>/dev/null | head -n1)" ]; then
	apt-get update -qq >&2
fi
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing >/dev/null

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

# The test host's QEMU comes from bookworm-backports (ci/fetch-qemu says why), downloaded, never
# installed: backports are pinned below the release, so adding the suite changes nothing else.
BACKPORTS_LIST=/etc/apt/sources.list.d/memvisor-bookworm-backports.list
backports=0
grep -rqs '^[^#]*bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/ || backports=1

missing=""
for p in $PKGS; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q '^install ok installed$' ||
		missing="$missing $p"
done
[ -z "$missing" ] && [ "$backports" -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
	# Only the test host needs the suite (ci/fetch-qemu fails clearly then): a warning here.
	[ "$backports" -eq 1 ] && echo "ci/deps.sh: apt has no bookworm-backports suite, where the test host's QEMU comes from (run ci/deps.sh as root to add it)" >&2
	[ -z "$missing" ] && exit 0
	echo "ci/deps.sh: missing packages:$missing (run as root, or install them with apt-get)" >&2
	exit 1
fi
export DEBIAN_FRONTEND=noninteractive
if [ "$backports" -eq 1 ]; then
	echo "ci/deps.sh: adding bookworm-backports to apt's sources ($BACKPORTS_LIST)" >&2
	echo "deb http://deb.debian.org/debian bookworm-backports main" > "$BACKPORTS_LIST"
	apt-get update -qq >&2
fi
[ -z "$missing" ] && exit 0
echo "ci/deps.sh: installing$missing" >&2
# An apt cache older than a day, or none at all, would make the install fail on a fresh machine.
if [ -z "$(find /var/lib/apt/lists -maxdepth 1 -name '*Packages*' -mtime -1 2>/dev/null | head -n1)" ]; then
	apt-get update -qq >&2
fi
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing >/dev/null

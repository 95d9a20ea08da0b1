# The Linux guest: Debian's kernel and an initramfs of Debian binaries (guests/README.md,
# "Linux guest"). Included by the top-level Makefile. build.py keeps its own cache, keyed on
# what make cannot see (the kernel package ci/fetch-kernel picks, /bin/busybox), so the target
# always runs it; an up-to-date build costs about a second.

LINUX_OUT := build/linux

.PHONY: linux-guest
linux-guest: ci/fetch-kernel guests/linux/build.py
	$(PYTHON) guests/linux/build.py --out $(LINUX_OUT)

# The Linux guest: Debian's kernel and an initramfs of Debian binaries (guests/README.md,
# "Linux guest"). Included by the top-level Makefile. build.py keeps its own cache, keyed on
# what make cannot see (the kernel package ci/fetch-kernel picks, /bin/busybox), so the target
# always runs it; an up-to-date build costs about a second.

LINUX_OUT := build/linux

.PHONY: linux-guest
linux-guest: ci/fetch-kernel guests/linux/build.py
	$(PYTHON) guests/linux/build.py --out $(LINUX_OUT)

# An initramfs that is not the project's own (conformance/linux.py, end=shell): the
# debian-installer's netboot initrd, fetched once by ci/fetch-initrd.
.PHONY: linux-foreign
linux-foreign: $(LINUX_OUT)/debian-installer-initrd.gz
$(LINUX_OUT)/debian-installer-initrd.gz: ci/fetch-initrd
	ci/fetch-initrd $@

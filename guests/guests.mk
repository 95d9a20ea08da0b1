# Guest kernels: freestanding x86_64 PVH ELF images, linked at 1 MiB.
# Included by the top-level Makefile; every variable here is GUEST_-prefixed because
# CFLAGS/LDFLAGS belong to the VMM. Images go to build/guests/ whatever $(BUILD) is
# (the sanitizers do not apply to guests); objects and dependency files to $(BUILD)/guests/.

GUEST_CC      ?= gcc
GUEST_OUT     := build/guests
GUEST_OBJDIR  := $(BUILD)/guests
GUEST_CFLAGS  := -std=gnu11 -O2 -Wall -Wextra -Werror -ffreestanding -nostdlib \
		 -fno-pic -fno-pie -mno-red-zone -mno-sse -mno-mmx -mno-80387 -mcmodel=small \
		 -fno-stack-protector -fno-asynchronous-unwind-tables -fcf-protection=none \
		 -fno-tree-loop-distribute-patterns -fno-delete-null-pointer-checks \
		 --param=min-pagesize=0 \
		 -Iguests/lib -MMD -MP
GUEST_LDFLAGS := -nostdlib -static -no-pie -Wl,-T,guests/lib/guest.ld -Wl,--build-id=none \
		 -Wl,-z,max-page-size=0x1000 -Wl,-z,noexecstack
GUEST_NAMES   := probe fault resize hostile
GUEST_LIB_OBJS := $(patsubst guests/lib/%,$(GUEST_OBJDIR)/lib/%.o,$(basename \
		  $(sort $(wildcard guests/lib/*.c guests/lib/*.S))))
GUEST_ELFS    := $(GUEST_NAMES:%=$(GUEST_OUT)/%.elf)

# The guests' own objects are not intermediate files: keep them for incremental builds
.SECONDARY: $(GUEST_NAMES:%=$(GUEST_OBJDIR)/%.o) $(GUEST_LIB_OBJS)

.PHONY: guests
guests: $(GUEST_ELFS)

$(GUEST_OUT)/%.elf: $(GUEST_OBJDIR)/%.o $(GUEST_LIB_OBJS) guests/lib/guest.ld
	@mkdir -p $(@D)
	$(GUEST_CC) $(GUEST_CFLAGS) $(GUEST_LDFLAGS) -o $@ $(filter %.o,$^)

$(GUEST_OBJDIR)/%.o: guests/%.c guests/guests.mk
	@mkdir -p $(@D)
	$(GUEST_CC) $(GUEST_CFLAGS) -c -o $@ $<

$(GUEST_OBJDIR)/%.o: guests/%.S guests/guests.mk
	@mkdir -p $(@D)
	$(GUEST_CC) $(GUEST_CFLAGS) -c -o $@ $<

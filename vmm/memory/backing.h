/* Host-side memory for each zone: one mapping per zone, created before the VM starts. */
#ifndef MEMVISOR_MEMORY_BACKING_H
#define MEMVISOR_MEMORY_BACKING_H

#include "memory/config.h"

enum backing_type {
#define BACKING(name, opts, pagesz, mapping, desc) BACKING_##name,
#include "memory/backings.def"
#undef BACKING
	BACKING_COUNT
};

struct backing {
	enum backing_type type;
	void *host;		/* start of the mapping */
	uint64_t size;		/* boot RAM plus the zone's virtio-mem region, if any */
	uint64_t page_size;	/* page size of the mapping */
	int fd;			/* memfd or file; -1 for anonymous */
	bool shared;
	/* For backing__abort: what to undo in the file system. */
	const char *created;	/* the zone's file= when we created it (the string is the caller's) */
	int64_t old_size;	/* a user's file= we grew: its size before, else -1 */
};

const char *backing__name(enum backing_type t);
/* Which backing a zone uses, from its options and --memory's thp. */
enum backing_type backing__type(const struct vm_config *cfg, const struct zone_config *z);

/*
 * Create the mapping of one zone of `size` bytes (boot RAM + virtio-mem region):
 * memfd/file/anonymous, madvise, mbind, and prefault when asked. Huge page reservation and
 * prefault cover only the boot RAM and hotplugged_size of the region. Returns 0, or -1 with one
 * line in err; nothing is left mapped, open or changed in the file system on failure.
 */
int backing__create(struct backing *b, const struct vm_config *cfg, const struct zone_config *z,
		    uint64_t size, const struct host_info *host, char *err, size_t errlen);
/* Populate [host, host+size) with `threads` threads (0: one per usable CPU). */
int backing__prefault(void *host, uint64_t size, uint64_t page_size, bool shared, int threads,
		      char *err, size_t errlen);
/*
 * Give [offset, offset + len) of the mapping back to the host while the guest runs (virtio-mem
 * unplug, balloon inflate, free page reporting): MADV_DONTNEED for a private mapping (anonymous
 * memory goes, a private file mapping drops its copies and reads the file again), punching a
 * hole for a shared one (memfd, file, hugetlb: the pages leave the file and its mappings, huge
 * pages go back to the pool). The guest reads zeros (or the private file's data) afterwards.
 * Only the whole pages of the backing's page size inside the range are released: a range that
 * holds none (4 KiB inside a huge page) is a successful no-op. 0, or -1 with errno (EINVAL: the
 * range is not inside the mapping).
 */
int backing__discard(const struct backing *b, uint64_t offset, uint64_t len);
/*
 * Whether the guest may use a page of this backing only once it is allocated (hugetlb, whose
 * pool can run dry; a file, whose file system can fill up): virtio-mem allocates before it
 * plugs.
 */
bool backing__allocates(const struct backing *b);
/*
 * Allocate [offset, offset + len) of the backing's file (fallocate, the size kept): 0 when done
 * or not needed (a backing that does not allocate, a file system without fallocate), else -1
 * with errno (ENOSPC: the file system or the huge page pool is full).
 */
int backing__allocate(const struct backing *b, uint64_t offset, uint64_t len);
/*
 * End of a VM: sync a shared file, unmap, close. A file keeps the guest's data (and the size
 * it was grown to); a created file stays.
 */
void backing__destroy(struct backing *b);
/*
 * Setup failed before the guest ran: unmap, close, and undo what backing__create did to the
 * file system (remove a file it created, shrink a user's file back to its size before).
 */
void backing__abort(struct backing *b);
/* One line for logs: "anonymous_thp: 512 MiB at 0x7f..., 4 KiB pages, MAP_PRIVATE, fd -1". */
char *backing__describe(const struct backing *b, char *buf, size_t len);

#endif

/*
 * virtio-mem (device 24, virtio 1.2, 5.15): one device per zone with a virtio-mem region (the
 * layout's RANGE_VIRTIO_MEM ranges), each on its own virtio-mmio transport. The region is a KVM
 * memory slot from boot; the device only keeps the books of which blocks the driver plugged,
 * and gives unplugged blocks back to the host.
 *
 * Requests follow Cloud Hypervisor's state_change_request (virtio-devices/src/mem.rs):
 * ERROR for a range that is empty, unaligned or outside the usable region, or whose blocks are
 * not all in the opposite state; NACK for a plug past requested_size; ACK otherwise. Beyond CH:
 * a hugetlb or file zone allocates a plugged block's pages at once (fallocate), and NACKs when the
 * pool or the file system has none, instead of letting the guest fault on them later.
 *
 * At boot nothing is plugged and requested_size is the zone's hotplugged_size: the driver plugs
 * it as soon as it is up (Linux processes requested_size right after probe), as with CH.
 *
 * Giving memory back: private anonymous memory (and the private copies of a MAP_PRIVATE file)
 * with MADV_DONTNEED; a shared mapping of a memfd, a file or hugetlbfs with
 * fallocate(PUNCH_HOLE | KEEP_SIZE), which frees the pages (huge pages go back to the pool).
 *
 * Locking: the device lock guards the configuration and the block bitmap. vCPUs come in
 * through the transport (its lock, the guest-memory lock held exclusively: an unplug discards
 * memory another vCPU's device may be copying into, vm.h; then ours); a resize comes from the
 * main thread (ours only), then raises the configuration change without any lock.
 */
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "memory/hotplug.h"
#include "util.h"
#include "virtio/mmio.h"
#include "vm.h"

#define VIRTIO_ID_MEM		24
#define VIRTIO_MEM_F_ACPI_PXM	0
#define VIRTIO_MEM_QUEUE_SIZE	128
#define VIRTIO_MEM_LOG_MAX	32	/* lines about refused requests: a looping driver stops there */

enum { MEM_PLUG, MEM_UNPLUG, MEM_UNPLUG_ALL, MEM_STATE };
enum { MEM_ACK, MEM_NACK, MEM_BUSY, MEM_ERROR };
enum { MEM_PLUGGED, MEM_UNPLUGGED, MEM_MIXED };

struct virtio_mem_config {
	uint64_t block_size;
	uint16_t node_id;
	uint8_t padding[6];
	uint64_t addr, region_size, usable_region_size, plugged_size, requested_size;
};
_Static_assert(sizeof(struct virtio_mem_config) == 0x38, "virtio-mem configuration layout");

struct virtio_mem_req {
	uint16_t type, pad[3];
	uint64_t addr;
	uint16_t nb_blocks, pad2[3];
};
_Static_assert(sizeof(struct virtio_mem_req) == 24, "virtio-mem request layout");

struct virtio_mem_resp {
	uint16_t type, pad[3];
	uint16_t state;
};
#define VIRTIO_MEM_RESP_SIZE 10		/* the driver's buffer: no tail padding */

struct virtio_mem {
	struct vm *vm;
	int zone;
	uint64_t region_offset;		/* of the region in the zone's host mapping */
	struct virtio_mmio *t;
	char name[32];

	pthread_mutex_t lock;
	struct virtio_mem_config config;	/* little-endian: the host's order */
	uint64_t nblocks;
	uint64_t *plugged;		/* bitmap of nblocks */
	bool warned;			/* a discard failure was logged */
	unsigned logged;		/* refused requests logged, up to VIRTIO_MEM_LOG_MAX */
};

static bool block_plugged(const struct virtio_mem *m, uint64_t b)
{
	return m->plugged[b / 64] >> (b % 64) & 1;
}

static void block_set(struct virtio_mem *m, uint64_t first, uint64_t n, bool plug)
{
	for (uint64_t b = first; b < first + n; b++) {
		if (plug)
			m->plugged[b / 64] |= 1ULL << (b % 64);
		else
			m->plugged[b / 64] &= ~(1ULL << (b % 64));
	}
}

/* How many of [first, first + n) are plugged. */
static uint64_t count_plugged(const struct virtio_mem *m, uint64_t first, uint64_t n)
{
	uint64_t c = 0;

	for (uint64_t b = first; b < first + n; b++)
		c += block_plugged(m, b);
	return c;
}

static void set_plugged_size(struct virtio_mem *m, uint64_t v)
{
	__atomic_store_n(&m->config.plugged_size, v, __ATOMIC_SEQ_CST);
}

/* The host side of [off, off + len) of the region: freed (discard) or allocated. */
static int host_range(struct virtio_mem *m, uint64_t off, uint64_t len, bool discard)
{
	const struct backing *b;
	uint64_t at = m->region_offset + off;

	if (m->zone >= m->vm->nbackings)
		return 0;	/* no guest memory yet: nothing to give back */
	b = &m->vm->backings[m->zone];
	if (!discard) {
		/* hugetlb and files are allocated up front: a pool or a file system can run dry. */
		return backing__allocate(b, at, len);
	}
	return backing__discard(b, at, len);
}

static bool host_ok(struct virtio_mem *m, int r, const char *what, uint64_t off, uint64_t len)
{
	if (r < 0 && !m->warned) {
		m->warned = true;
		report("%s: %s of 0x%llx+0x%llx of the region failed: %s (further failures are "
		       "not logged)", m->name, what, (unsigned long long)off,
		       (unsigned long long)len, strerror(errno));
	}
	return r == 0;
}

/* Everything unplugged and given back: UNPLUG_ALL and device reset. */
static uint16_t unplug_all(struct virtio_mem *m)
{
	uint64_t size = m->config.region_size;

	if (!host_ok(m, host_range(m, 0, size, true), "discard", 0, size))
		return MEM_ERROR;
	memset(m->plugged, 0, (m->nblocks + 63) / 64 * sizeof(uint64_t));
	set_plugged_size(m, 0);
	return MEM_ACK;
}

/* CH's is_valid_range: non-empty, block-aligned, inside the usable region. */
static bool valid_range(const struct virtio_mem *m, uint64_t addr, uint64_t n, uint64_t *first)
{
	const struct virtio_mem_config *c = &m->config;
	uint64_t off = addr - c->addr;

	if (n == 0 || addr < c->addr || off >= c->usable_region_size ||
	    !IS_ALIGNED(off, c->block_size))
		return false;
	*first = off / c->block_size;
	return n <= (c->usable_region_size - off) / c->block_size;
}

static bool overlaps(const void *p, uint64_t len, const uint8_t *lo, const uint8_t *hi)
{
	const uint8_t *a = p;

	return a && len && a < hi && lo < a + len;
}

/*
 * Whether the request's answer buffers or the queue's rings lie in [off, off + len) of the
 * region: unplugging it would leave the device writing into memory it just gave back (a fresh
 * page the guest no longer pays for, or on hugetlb a page the pool may not have).
 */
static bool unplug_hits_queue(struct virtio_mem *m, const struct virtq_req *req, uint64_t off,
			      uint64_t len)
{
	const struct virtq *q = virtio_mmio__queue(m->t, 0);
	const uint8_t *lo, *hi;

	if (m->zone >= m->vm->nbackings)
		return false;
	lo = (const uint8_t *)m->vm->backings[m->zone].host + m->region_offset + off;
	hi = lo + len;
	for (unsigned i = 0; req && i < req->nin; i++)
		if (overlaps(req->in[i].hva, req->in[i].len, lo, hi))
			return true;
	return q->ready && (overlaps(q->desc, 16ULL * q->num, lo, hi) ||
			    overlaps(q->avail, 6 + 2ULL * q->num, lo, hi) ||
			    overlaps(q->used, 6 + 8ULL * q->num, lo, hi));
}

static uint16_t refuse_unplug(struct virtio_mem *m, uint64_t off, uint64_t len)
{
	if (m->logged < VIRTIO_MEM_LOG_MAX) {
		m->logged++;
		report("%s: unplug of 0x%llx+0x%llx of the region refused: it holds the request's "
		       "own buffers or rings%s", m->name, (unsigned long long)off,
		       (unsigned long long)len, m->logged == VIRTIO_MEM_LOG_MAX ?
		       " (further refusals are not logged)" : "");
	}
	return MEM_ERROR;
}

static uint16_t state_change(struct virtio_mem *m, const struct virtq_req *req, uint64_t addr,
			     uint64_t n, bool plug)
{
	uint64_t first, size = n * m->config.block_size, off;

	if (!valid_range(m, addr, n, &first))
		return MEM_ERROR;
	if (plug && m->config.plugged_size + size > m->config.requested_size)
		return MEM_NACK;
	if (count_plugged(m, first, n) != (plug ? 0 : n))
		return MEM_ERROR;
	off = first * m->config.block_size;
	if (!plug && unplug_hits_queue(m, req, off, size))
		return refuse_unplug(m, off, size);
	if (!host_ok(m, host_range(m, off, size, !plug), plug ? "allocation" : "discard", off,
		     size))
		return plug ? MEM_NACK : MEM_ERROR;
	block_set(m, first, n, plug);
	set_plugged_size(m, plug ? m->config.plugged_size + size : m->config.plugged_size - size);
	return MEM_ACK;
}

static struct virtio_mem_resp handle(struct virtio_mem *m, const struct virtq_req *req,
				     const struct virtio_mem_req *r)
{
	struct virtio_mem_resp resp = { .type = MEM_ERROR };
	uint64_t first, c;
	unsigned logged = m->logged;

	pthread_mutex_lock(&m->lock);
	switch (r->type) {
	case MEM_PLUG:
	case MEM_UNPLUG:
		resp.type = state_change(m, req, r->addr, r->nb_blocks, r->type == MEM_PLUG);
		break;
	case MEM_UNPLUG_ALL:
		resp.type = unplug_hits_queue(m, req, 0, m->config.region_size) ?
			    refuse_unplug(m, 0, m->config.region_size) : unplug_all(m);
		break;
	case MEM_STATE:
		if (!valid_range(m, r->addr, r->nb_blocks, &first))
			break;
		c = count_plugged(m, first, r->nb_blocks);
		resp.type = MEM_ACK;
		resp.state = c == r->nb_blocks ? MEM_PLUGGED : c == 0 ? MEM_UNPLUGGED : MEM_MIXED;
		break;
	}
	/* A driver that follows the spec never gets ERROR: say which request did. */
	if (resp.type == MEM_ERROR && logged == m->logged && m->logged < VIRTIO_MEM_LOG_MAX) {
		m->logged++;
		report("%s: request %u at 0x%llx for %u blocks refused: an unknown type, a range "
		       "outside the region or not in blocks, or blocks not all %s%s", m->name,
		       r->type, (unsigned long long)r->addr, r->nb_blocks,
		       r->type == MEM_PLUG ? "unplugged" : "plugged",
		       m->logged == VIRTIO_MEM_LOG_MAX ? " (further refusals are not logged)" : "");
	}
	pthread_mutex_unlock(&m->lock);
	return resp;
}

/* One request of the guest-request queue; a short one is answered with nothing (0 bytes). */
static void virtio_mem__request(void *dev, unsigned queue, struct virtq_req *req)
{
	struct virtio_mem *m = dev;
	struct virtio_mem_req r;
	struct virtio_mem_resp resp;

	(void)queue;
	if (!virtq__read(req, 0, &r, sizeof(r)) || req->in_len < VIRTIO_MEM_RESP_SIZE) {
		if (!m->warned) {
			m->warned = true;
			report("%s: request of %llu bytes with room for %llu in reply (needs %zu and "
			       "%d); failed", m->name, (unsigned long long)req->out_len,
			       (unsigned long long)req->in_len, sizeof(r), VIRTIO_MEM_RESP_SIZE);
		}
		return;
	}
	resp = handle(m, req, &r);
	virtq__write(req, &resp, VIRTIO_MEM_RESP_SIZE);
}

static void virtio_mem__notify(void *dev, struct virtio_mmio *t, unsigned queue)
{
	(void)dev;
	virtio_mmio__serve(t, queue, virtio_mem__request);
}

static void virtio_mem__config_read(void *dev, uint32_t offset, uint8_t *data, unsigned size)
{
	struct virtio_mem *m = dev;

	pthread_mutex_lock(&m->lock);
	memcpy(data, (const uint8_t *)&m->config + offset, size);
	pthread_mutex_unlock(&m->lock);
}

static void virtio_mem__reset(void *dev)
{
	struct virtio_mem *m = dev;

	pthread_mutex_lock(&m->lock);
	unplug_all(m);
	pthread_mutex_unlock(&m->lock);
}

int virtio_mem__resize(struct vm *vm, int zone, uint64_t plugged, char *err, size_t errlen)
{
	struct virtio_mem *m = zone >= 0 && zone < MAX_ZONES ? vm->virtio_mem[zone] : NULL;

	if (!m)
		return error(err, errlen, "virtio-mem: zone %d has no device", zone);
	pthread_mutex_lock(&m->lock);
	m->config.requested_size = plugged;
	pthread_mutex_unlock(&m->lock);
	virtio_mmio__signal_config(m->t);
	return 0;
}

uint64_t virtio_mem__plugged(const struct vm *vm, int zone)
{
	const struct virtio_mem *m = zone >= 0 && zone < MAX_ZONES ? vm->virtio_mem[zone] : NULL;

	return m ? __atomic_load_n(&m->config.plugged_size, __ATOMIC_SEQ_CST) : 0;
}

bool virtio_mem__range_plugged(struct vm *vm, int zone, uint64_t off, uint64_t len)
{
	struct virtio_mem *m = zone >= 0 && zone < MAX_ZONES ? vm->virtio_mem[zone] : NULL;
	uint64_t first, n;
	bool ok;

	if (!m || off >= m->config.region_size || len > m->config.region_size - off)
		return false;
	first = off / m->config.block_size;
	n = (len ? (off + len - 1) / m->config.block_size : first) - first + 1;
	pthread_mutex_lock(&m->lock);
	ok = count_plugged(m, first, n) == n;
	pthread_mutex_unlock(&m->lock);
	return ok;
}

static void destroy(struct virtio_mem *m)
{
	pthread_mutex_destroy(&m->lock);
	free(m->plugged);
	free(m);
}

static int create(struct vm *vm, const struct mem_range *r, char *err, size_t errlen)
{
	const struct zone_config *z = &vm->cfg.zones[r->zone];
	struct virtio_mmio_def def = {
		.name = "virtio-mem", .device_id = VIRTIO_ID_MEM, .nqueues = 1,
		.queue_max = { VIRTIO_MEM_QUEUE_SIZE }, .config_size = sizeof(struct virtio_mem_config),
		.config_read = virtio_mem__config_read, .notify = virtio_mem__notify,
		.changes_memory = true,
		.reset = virtio_mem__reset,
	};
	uint64_t block = hotplug__block_size(&vm->cfg, r->zone, &vm->host);
	struct virtio_mem *m = calloc(1, sizeof(*m));
	int e;

	if (!m)
		return error(err, errlen, "virtio-mem: out of memory");
	*m = (struct virtio_mem){ .vm = vm, .zone = r->zone, .region_offset = r->zone_offset,
				  .nblocks = r->size / block };
	snprintf(m->name, sizeof(m->name), "virtio-mem (zone %s)", z->id);
	/* The layout aligns regions to 128 MiB and validation sizes to the block: a VMM bug. */
	if (r->size % block || r->gpa % block || z->hotplugged_size % block) {
		error(err, errlen, "%s: internal error: region 0x%llx+0x%llx, %llu plugged, not in "
		      "blocks of 0x%llx", m->name, (unsigned long long)r->gpa,
		      (unsigned long long)r->size, (unsigned long long)z->hotplugged_size,
		      (unsigned long long)block);
		free(m);
		return -1;
	}
	m->config = (struct virtio_mem_config){
		.block_size = block, .addr = r->gpa, .region_size = r->size,
		.usable_region_size = r->size, .requested_size = z->hotplugged_size,
	};
	if (r->guest_node >= 0) {
		m->config.node_id = (uint16_t)vm->cfg.numa[r->guest_node].guest_numa_id;
		def.features |= 1ULL << VIRTIO_MEM_F_ACPI_PXM;
	}
	m->plugged = calloc((m->nblocks + 63) / 64, sizeof(uint64_t));
	e = m->plugged ? pthread_mutex_init(&m->lock, NULL) : ENOMEM;
	if (e) {
		free(m->plugged);
		free(m);
		return error(err, errlen, "virtio-mem: %s", strerror(e));
	}
	m->t = virtio_mmio__create(vm, &def, m, err, errlen);
	if (!m->t) {
		destroy(m);
		return -1;
	}
	vm->virtio_mem[r->zone] = m;
	return 0;
}

static int virtio_mem__exit(struct vm *vm, char *err, size_t errlen)
{
	char later[256];
	int ret = 0;

	for (int i = 0; i < MAX_ZONES; i++) {
		struct virtio_mem *m = vm->virtio_mem[i];

		if (!m)
			continue;
		if (virtio_mmio__destroy(m->t, ret ? later : err, ret ? sizeof(later) : errlen) < 0)
			ret = -1;
		destroy(m);
		vm->virtio_mem[i] = NULL;
	}
	return ret;
}

static int virtio_mem__init(struct vm *vm, char *err, size_t errlen)
{
	for (int i = 0; i < vm->layout.nranges; i++) {
		const struct mem_range *r = &vm->layout.ranges[i];

		if (r->kind != RANGE_VIRTIO_MEM)
			continue;
		if (create(vm, r, err, errlen) < 0) {
			char undo[256];

			virtio_mem__exit(vm, undo, sizeof(undo));
			return -1;
		}
	}
	return 0;
}

static void virtio_mem__dsdt(const struct vm *vm, struct aml *aml)
{
	for (int i = 0; i < MAX_ZONES; i++)
		if (vm->virtio_mem[i])
			virtio_mmio__dsdt(vm->virtio_mem[i]->t, aml);
}

static int virtio_mem__fdt(const struct vm *vm, void *fdt)
{
	for (int i = 0; i < MAX_ZONES; i++)
		if (vm->virtio_mem[i] && virtio_mmio__fdt(vm->virtio_mem[i]->t, fdt) < 0)
			return -1;
	return 0;
}

const struct device_def virtio_mem_device = {
	.name = "virtio-mem",
	.init = virtio_mem__init,
	.exit = virtio_mem__exit,
	.dsdt = virtio_mem__dsdt,
	.fdt = virtio_mem__fdt,
};

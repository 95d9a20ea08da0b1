/*
 * virtio-balloon (device 5, virtio 1.2, 5.5) on its own virtio-mmio transport, present only with
 * --balloon. The host sets a target (num_pages, 4 KiB pages) at boot and on vm.resize; the
 * driver takes that many pages from the guest, hands their PFNs over on the inflate queue and
 * writes how many it holds to `actual`. The device gives inflated pages back to the host.
 *
 * Cloud Hypervisor's semantics (virtio-devices/src/balloon.rs):
 *  - features: VERSION_1 (the transport's), DEFLATE_ON_OOM and REPORTING by option, nothing else
 *    (no MUST_TELL_HOST, STATS_VQ, FREE_PAGE_HINT, PAGE_POISON);
 *  - queues: inflate 0, deflate 1 (128 entries), and the reporting queue (32 entries) as index 2
 *    only when reporting is offered: Linux numbers the queues it sets up compactly;
 *  - config: num_pages and actual; only a 4-byte write of actual is taken, the rest is read-only;
 *  - inflate: each page released (MADV_DONTNEED / punched hole); deflate: nothing, a released
 *    page faults in again when the guest touches it (CH only advises MADV_WILLNEED, a hint);
 *  - reporting: each buffer is a range of free guest memory, released as a whole;
 *  - buffers are returned with 0 bytes written.
 * Beyond CH: a PFN or a range outside guest RAM is skipped and logged once instead of failing
 * the queue; an inflate request of more PFNs than Linux ever sends (256) is refused unread.
 *
 * hugetlb: a huge page can only be given back whole, and Linux inflates 4 KiB pages one by one.
 * CH punches a 4 KiB hole (hugetlbfs rounds it to nothing) and its MADV_DONTNEED of 4 KiB in a
 * hugetlb mapping fails, so in effect it skips such pages (its partial-page bitmap is for the
 * host's base page size only). We skip them likewise, and say so once. Reported ranges are
 * pageblock-sized (2 MiB on x86) and whole huge pages, but they stay allocated too: the guest
 * takes reported memory back without asking, and a huge page returned to the pool may have been
 * taken by another process by then (the guest's touch would fail in KVM_RUN, a device's would
 * be SIGBUS; found by the hostile guest). virtio-mem gives hugetlb memory back safely: the guest
 * must plug it again first, and a plug allocates before it is acknowledged.
 *
 * Locking: the device lock guards the configuration, which a resize changes from the main
 * thread. Everything else (the queues, the log-once flags) is used by vCPUs only, under the
 * transport's lock.
 */
#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>

#include "memory/hotplug.h"
#include "util.h"
#include "virtio/mmio.h"
#include "vm.h"

#define VIRTIO_ID_BALLOON		5
#define VIRTIO_BALLOON_F_DEFLATE_ON_OOM	2
#define VIRTIO_BALLOON_F_REPORTING	5
#define BALLOON_PAGE_SHIFT		12	/* PFNs and num_pages are in 4 KiB, whatever the host */
#define BALLOON_PAGE			(1ULL << BALLOON_PAGE_SHIFT)
#define BALLOON_PFNS_MAX		256	/* Linux's VIRTIO_BALLOON_ARRAY_PFNS_MAX */
#define BALLOON_QUEUE_SIZE		128
#define BALLOON_REPORTING_QUEUE_SIZE	32

enum { QUEUE_INFLATE, QUEUE_DEFLATE, QUEUE_REPORTING };

struct virtio_balloon_config {
	uint32_t num_pages;
	uint32_t actual;
	uint32_t free_page_hint_cmd_id;	/* FREE_PAGE_HINT, never offered: 0 */
	uint32_t poison_val;		/* PAGE_POISON, never offered: 0 */
};
_Static_assert(sizeof(struct virtio_balloon_config) == 16, "virtio-balloon configuration layout");
#define CONFIG_ACTUAL offsetof(struct virtio_balloon_config, actual)

/* Each kind of fault is logged BALLOON_LOG_MAX times per device: a looping guest must not flood. */
#define BALLOON_LOG_MAX	16
enum balloon_warn { WARN_OUTSIDE, WARN_HUGETLB, WARN_DISCARD, WARN_REQUEST, WARN_CONFIG,
		    WARN_COUNT };

struct virtio_balloon {
	struct vm *vm;
	struct virtio_mmio *t;

	pthread_mutex_t lock;
	struct virtio_balloon_config config;	/* little-endian: the host's order */

	unsigned warned[WARN_COUNT];	/* lines logged of each kind */
};

static void warn_once(struct virtio_balloon *b, enum balloon_warn w, const char *fmt, ...)
	__printf(3, 4);
static void warn_once(struct virtio_balloon *b, enum balloon_warn w, const char *fmt, ...)
{
	char msg[256];
	va_list ap;

	if (b->warned[w] >= BALLOON_LOG_MAX)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	report("virtio-balloon: %s%s", msg, ++b->warned[w] == BALLOON_LOG_MAX ?
	       " (further ones are not logged)" : "");
}

/* The zone whose mapping holds all of [hva, hva + len): -1 when none does. */
static int zone_of(const struct vm *vm, const uint8_t *hva, uint64_t len)
{
	for (int z = 0; z < vm->nbackings; z++) {
		const uint8_t *host = vm->backings[z].host;
		uint64_t size = vm->backings[z].size;

		if (host && hva >= host && (uint64_t)(hva - host) <= size &&
		    len <= size - (uint64_t)(hva - host))
			return z;
	}
	return -1;
}

/* Release guest memory the walker or the layout found in zone's mapping. */
static void release(struct virtio_balloon *b, int zone, const uint8_t *hva, uint64_t len)
{
	const struct backing *bk = &b->vm->backings[zone];
	uint64_t off = (uint64_t)(hva - (const uint8_t *)bk->host);

	if (backing__discard(bk, off, len) < 0)
		warn_once(b, WARN_DISCARD, "releasing 0x%llx bytes at offset 0x%llx of zone %s "
			  "failed: %s", (unsigned long long)len, (unsigned long long)off,
			  b->vm->cfg.zones[zone].id, strerror(errno));
}

/*
 * One inflate request: le32 PFNs, each a 4 KiB guest page. Runs of contiguous pages in one
 * zone are released by one call: Linux hands over pages in allocation order, often adjacent.
 * The array is copied whole first: a driver may list the page that holds the array itself,
 * and once released that page reads as zeros, which would turn the PFNs after it into PFN 0.
 */
static void inflate(struct virtio_balloon *b, const struct virtq_req *req)
{
	uint64_t npfns = req->out_len / 4, run_len = 0;
	uint32_t pfns[BALLOON_PFNS_MAX];
	const uint8_t *run = NULL;
	int run_zone = -1;

	if (req->out_len % 4 || npfns > BALLOON_PFNS_MAX) {
		warn_once(b, WARN_REQUEST, "inflate request of %llu bytes (not up to %d le32 PFNs) "
			  "ignored", (unsigned long long)req->out_len, BALLOON_PFNS_MAX);
		return;
	}
	virtq__read(req, 0, pfns, req->out_len);	/* exactly out_len: cannot fail */
	for (uint64_t i = 0; i < npfns; i++) {
		uint32_t pfn = pfns[i];
		uint64_t gpa;
		const uint8_t *hva;
		int zone;

		gpa = (uint64_t)pfn << BALLOON_PAGE_SHIFT;
		hva = vm__gpa_to_hva(b->vm, gpa, BALLOON_PAGE);
		zone = hva ? zone_of(b->vm, hva, BALLOON_PAGE) : -1;
		if (zone < 0) {
			warn_once(b, WARN_OUTSIDE, "inflated PFN 0x%x (0x%llx) is not guest RAM; "
				  "skipped", pfn, (unsigned long long)gpa);
			continue;
		}
		if (b->vm->backings[zone].page_size > BALLOON_PAGE) {
			warn_once(b, WARN_HUGETLB, "inflated 4 KiB pages of zone %s stay allocated: "
				  "its huge pages can only be released whole",
				  b->vm->cfg.zones[zone].id);
			continue;
		}
		if (run && zone == run_zone && hva == run + run_len) {
			run_len += BALLOON_PAGE;
			continue;
		}
		if (run)
			release(b, run_zone, run, run_len);
		run = hva;
		run_len = BALLOON_PAGE;
		run_zone = zone;
	}
	if (run)
		release(b, run_zone, run, run_len);
}

/* One reporting request: each buffer is a range of free guest memory (the walker checked it). */
static void report_free(struct virtio_balloon *b, const struct virtq_req *req)
{
	const struct virtq_seg *segs[2] = { req->out, req->in };
	unsigned nsegs[2] = { req->nout, req->nin };

	for (int s = 0; s < 2; s++)
		for (unsigned i = 0; i < nsegs[s]; i++) {
			const struct virtq_seg *seg = &segs[s][i];
			int zone = zone_of(b->vm, seg->hva, seg->len);

			if (zone < 0)
				warn_once(b, WARN_OUTSIDE, "reported range of 0x%x bytes is not in a "
					  "zone's memory; skipped", seg->len);
			else if (b->vm->backings[zone].page_size > BALLOON_PAGE)
				warn_once(b, WARN_HUGETLB, "reported free memory of zone %s stays "
					  "allocated: the guest reuses it without asking, and a huge "
					  "page back in the pool may be gone by then",
					  b->vm->cfg.zones[zone].id);
			else
				release(b, zone, seg->hva, seg->len);
		}
}

/* A checked request of one of the queues; returned used with 0 bytes written. */
static void handle(void *dev, unsigned queue, struct virtq_req *req)
{
	if (queue == QUEUE_INFLATE)
		inflate(dev, req);
	else if (queue == QUEUE_REPORTING)
		report_free(dev, req);
	/* Deflate: nothing to do, the pages fault in again when the guest uses them. */
}

static void virtio_balloon__notify(void *dev, struct virtio_mmio *t, unsigned queue)
{
	(void)dev;
	virtio_mmio__serve(t, queue, handle);
}

static void virtio_balloon__config_read(void *dev, uint32_t offset, uint8_t *data, unsigned size)
{
	struct virtio_balloon *b = dev;

	pthread_mutex_lock(&b->lock);
	memcpy(data, (const uint8_t *)&b->config + offset, size);
	pthread_mutex_unlock(&b->lock);
}

static void virtio_balloon__config_write(void *dev, uint32_t offset, const uint8_t *data,
					 unsigned size)
{
	struct virtio_balloon *b = dev;

	/* Linux writes actual as one le32 (virtio_cwrite_le); every other field is the device's. */
	if (offset != CONFIG_ACTUAL || size != sizeof(b->config.actual)) {
		warn_once(b, WARN_CONFIG, "configuration write of %u bytes at 0x%x ignored: only "
			  "actual (4 bytes at 0x%zx) is writable", size, offset, CONFIG_ACTUAL);
		return;
	}
	pthread_mutex_lock(&b->lock);
	memcpy(&b->config.actual, data, sizeof(b->config.actual));
	pthread_mutex_unlock(&b->lock);
}

/*
 * After a reset no driver holds any page: actual goes back to 0 (CH keeps it, but CH rebuilds
 * the device on a reboot). num_pages is the host's target and stays.
 */
static void virtio_balloon__reset(void *dev)
{
	struct virtio_balloon *b = dev;

	pthread_mutex_lock(&b->lock);
	b->config.actual = 0;
	pthread_mutex_unlock(&b->lock);
}

int balloon__resize(struct vm *vm, uint64_t size, char *err, size_t errlen)
{
	struct virtio_balloon *b = vm->balloon;
	uint64_t pages = size >> BALLOON_PAGE_SHIFT;

	if (!b)
		return error(err, errlen, "vm.resize: the VM has no balloon");
	if (pages > UINT32_MAX)
		return error(err, errlen, "vm.resize: desired_balloon %s is beyond the balloon's "
			     "32-bit page count", config__size_str(size).s);
	pthread_mutex_lock(&b->lock);
	b->config.num_pages = (uint32_t)pages;
	pthread_mutex_unlock(&b->lock);
	virtio_mmio__signal_config(b->t);
	return 0;
}

uint64_t balloon__actual(const struct vm *vm)
{
	struct virtio_balloon *b = vm->balloon;
	uint64_t actual;

	if (!b)
		return 0;
	pthread_mutex_lock(&b->lock);
	actual = (uint64_t)b->config.actual << BALLOON_PAGE_SHIFT;
	pthread_mutex_unlock(&b->lock);
	return actual;
}

static int virtio_balloon__exit(struct vm *vm, char *err, size_t errlen)
{
	struct virtio_balloon *b = vm->balloon;
	int ret;

	if (!b)
		return 0;
	ret = virtio_mmio__destroy(b->t, err, errlen);
	pthread_mutex_destroy(&b->lock);
	free(b);
	vm->balloon = NULL;
	return ret;
}

static int virtio_balloon__init(struct vm *vm, char *err, size_t errlen)
{
	const struct balloon_config *c = &vm->cfg.balloon;
	struct virtio_mmio_def def = {
		.name = "virtio-balloon", .device_id = VIRTIO_ID_BALLOON, .nqueues = 2,
		.queue_max = { BALLOON_QUEUE_SIZE, BALLOON_QUEUE_SIZE, BALLOON_REPORTING_QUEUE_SIZE },
		.config_size = sizeof(struct virtio_balloon_config),
		.config_read = virtio_balloon__config_read,
		.config_write = virtio_balloon__config_write,
		.notify = virtio_balloon__notify, .reset = virtio_balloon__reset,
	};
	uint64_t pages = c->size >> BALLOON_PAGE_SHIFT;
	struct virtio_balloon *b;
	int e;

	if (!c->enabled)
		return 0;
	/* Validation keeps the size below the guest's RAM, which the layout keeps below 1 TiB. */
	if (pages > UINT32_MAX)
		return error(err, errlen, "--balloon: internal error: size %s in 4 KiB pages "
			     "exceeds 32 bits", config__size_str(c->size).s);
	if (c->deflate_on_oom)
		def.features |= 1ULL << VIRTIO_BALLOON_F_DEFLATE_ON_OOM;
	if (c->free_page_reporting) {
		def.features |= 1ULL << VIRTIO_BALLOON_F_REPORTING;
		def.nqueues = 3;
	}
	b = calloc(1, sizeof(*b));
	if (!b)
		return error(err, errlen, "virtio-balloon: out of memory");
	*b = (struct virtio_balloon){ .vm = vm, .config = { .num_pages = (uint32_t)pages } };
	e = pthread_mutex_init(&b->lock, NULL);
	if (e) {
		free(b);
		return error(err, errlen, "virtio-balloon: pthread_mutex_init: %s", strerror(e));
	}
	b->t = virtio_mmio__create(vm, &def, b, err, errlen);
	if (!b->t) {
		pthread_mutex_destroy(&b->lock);
		free(b);
		return -1;
	}
	vm->balloon = b;
	return 0;
}

static void virtio_balloon__dsdt(const struct vm *vm, struct aml *aml)
{
	if (vm->balloon)
		virtio_mmio__dsdt(vm->balloon->t, aml);
}

static int virtio_balloon__fdt(const struct vm *vm, void *fdt)
{
	return vm->balloon ? virtio_mmio__fdt(vm->balloon->t, fdt) : 0;
}

const struct device_def virtio_balloon_device = {
	.name = "virtio-balloon",
	.init = virtio_balloon__init,
	.exit = virtio_balloon__exit,
	.dsdt = virtio_balloon__dsdt,
	.fdt = virtio_balloon__fdt,
};

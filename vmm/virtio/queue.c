/*
 * Split virtqueue walking over guest memory (queue.h has the checks and their costs).
 *
 * Memory ordering (virtio 1.2, 2.7.13): the driver writes descriptors and ring entries, then
 * the available index with a release; the device loads that index with acquire before it reads
 * what it covers. The device writes the used element, then stores the used index with release,
 * so the driver never sees an index ahead of its element.
 */
#include <stdio.h>
#include <string.h>

#include "util.h"
#include "virtio/queue.h"
#include "vm.h"

struct virtq_desc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags, next;
};

struct virtq_avail {
	uint16_t flags, idx;
	uint16_t ring[];
};

struct virtq_used_elem {
	uint32_t id, len;
};

struct virtq_used {
	uint16_t flags, idx;
	struct virtq_used_elem ring[];
};

/* x86 is little-endian, like virtio 1.x rings: no byte swapping anywhere below. */
_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "virtio rings are little-endian");

void virtq__reset(struct virtq *q, struct vm *vm, uint16_t max, const char *name)
{
	*q = (struct virtq){ .vm = vm, .max = max, .num = max, .name = name, .logged = q->logged };
}

static void *ring(struct virtq *q, uint64_t gpa, uint64_t len, uint64_t align, const char *what,
		  char *err, size_t errlen)
{
	void *p;

	if (!IS_ALIGNED(gpa, align)) {
		error(err, errlen, "%s: %s at 0x%llx is not %llu-byte aligned", q->name, what,
		      (unsigned long long)gpa, (unsigned long long)align);
		return NULL;
	}
	p = vm__gpa_to_hva(q->vm, gpa, len);
	if (!p)
		error(err, errlen, "%s: %s 0x%llx+%llu is not in guest RAM", q->name, what,
		      (unsigned long long)gpa, (unsigned long long)len);
	return p;
}

int virtq__enable(struct virtq *q, char *err, size_t errlen)
{
	uint64_t n = q->num;

	q->ready = false;
	if (n == 0 || n > q->max || (n & (n - 1)))
		return error(err, errlen, "%s: size %u is not a power of two in 1..%u", q->name,
			     q->num, q->max);
	q->desc = ring(q, q->desc_gpa, 16 * n, 16, "descriptor table", err, errlen);
	if (!q->desc)
		return -1;
	q->avail = ring(q, q->avail_gpa, 6 + 2 * n, 2, "available ring", err, errlen);
	if (!q->avail)
		return -1;
	q->used = ring(q, q->used_gpa, 6 + 8 * n, 4, "used ring", err, errlen);
	if (!q->used)
		return -1;
	/* Both indices start at 0 (2.7.6): whatever the driver left in the rings is ignored. */
	q->last_avail = 0;
	q->used_idx = 0;
	q->broken = false;
	q->ready = true;
	return 0;
}

static void warn_once(struct virtq *q, const char *msg)
{
	if (!q->warned && q->logged < VIRTQ_LOG_MAX) {
		q->warned = true;
		report("%s (further bad requests on this queue are not logged%s)", msg,
		       ++q->logged == VIRTQ_LOG_MAX ? ", even after a reset" : " until a reset");
	}
}

/* A bad chain: answered as used with nothing written, so the driver can reclaim it. */
static enum virtq_pop fail(struct virtq *q, struct virtq_req *req, char *err)
{
	warn_once(q, err);
	req->written = 0;
	virtq__push(q, req);
	return VIRTQ_FAILED;
}

static enum virtq_pop broken(struct virtq *q, char *err)
{
	q->broken = true;
	warn_once(q, err);
	return VIRTQ_BROKEN;
}

enum virtq_pop virtq__pop(struct virtq *q, struct virtq_req *req, char *err, size_t errlen)
{
	uint64_t seen[VIRTQ_MAX_SIZE / 64] = { 0 };
	uint16_t avail_idx, i;

	if (!q->ready)
		return VIRTQ_EMPTY;
	if (q->broken)
		return error(err, errlen, "%s: stopped until the device is reset", q->name),
		       VIRTQ_BROKEN;
	/*
	 * Rings placed in virtio-mem memory that was unplugged since QueueReady: their host
	 * pages are gone (or, on hugetlb, may not come back), so the queue cannot go on.
	 */
	if (vm__gpa_to_hva(q->vm, q->desc_gpa, 16ULL * q->num) != (void *)q->desc ||
	    vm__gpa_to_hva(q->vm, q->avail_gpa, 6 + 2ULL * q->num) != (void *)q->avail ||
	    vm__gpa_to_hva(q->vm, q->used_gpa, 6 + 8ULL * q->num) != (void *)q->used) {
		error(err, errlen, "%s: rings no longer in guest RAM (unplugged under the queue)",
		      q->name);
		return broken(q, err);
	}
	avail_idx = __atomic_load_n(&q->avail->idx, __ATOMIC_ACQUIRE);
	if (avail_idx == q->last_avail)
		return VIRTQ_EMPTY;
	if ((uint16_t)(avail_idx - q->last_avail) > q->num) {
		error(err, errlen, "%s: available index moved from %u to %u, more than the queue "
		      "size %u", q->name, q->last_avail, avail_idx, q->num);
		return broken(q, err);
	}
	memset(req, 0, offsetof(struct virtq_req, out));	/* the counts, not the arrays */
	req->head = __atomic_load_n(&q->avail->ring[q->last_avail % q->num], __ATOMIC_RELAXED);
	if (req->head >= q->num) {
		error(err, errlen, "%s: head descriptor %u of a queue of %u", q->name, req->head,
		      q->num);
		return broken(q, err);
	}
	q->last_avail++;

	i = req->head;
	for (;;) {
		const struct virtq_desc *g = &q->desc[i];
		struct virtq_desc d;
		struct virtq_seg *seg;

		/*
		 * One copy, by atomic loads the compiler cannot repeat: the driver may rewrite the
		 * descriptor while we look at it, and a re-read length would escape the checks.
		 */
		d.addr = __atomic_load_n(&g->addr, __ATOMIC_RELAXED);
		d.len = __atomic_load_n(&g->len, __ATOMIC_RELAXED);
		d.flags = __atomic_load_n(&g->flags, __ATOMIC_RELAXED);
		d.next = __atomic_load_n(&g->next, __ATOMIC_RELAXED);
		if (seen[i / 64] & (1ULL << (i % 64))) {
			error(err, errlen, "%s: chain from %u loops back to descriptor %u", q->name,
			      req->head, i);
			return fail(q, req, err);
		}
		seen[i / 64] |= 1ULL << (i % 64);
		if (d.flags & VIRTQ_DESC_F_INDIRECT) {
			error(err, errlen, "%s: indirect descriptor %u (not offered)", q->name, i);
			return fail(q, req, err);
		}
		if (d.flags & VIRTQ_DESC_F_WRITE) {
			if (req->nin == VIRTQ_MAX_SEGS)
				goto too_long;
			seg = &req->in[req->nin++];
			req->in_len += d.len;
		} else {
			if (req->nin) {
				error(err, errlen, "%s: readable descriptor %u after a writable one",
				      q->name, i);
				return fail(q, req, err);
			}
			if (req->nout == VIRTQ_MAX_SEGS)
				goto too_long;
			seg = &req->out[req->nout++];
			req->out_len += d.len;
		}
		seg->len = d.len;
		seg->hva = vm__gpa_to_hva(q->vm, d.addr, d.len);
		if (!seg->hva) {
			error(err, errlen, "%s: descriptor %u: 0x%llx+%u is not in guest RAM",
			      q->name, i, (unsigned long long)d.addr, d.len);
			return fail(q, req, err);
		}
		if (!(d.flags & VIRTQ_DESC_F_NEXT))
			return VIRTQ_OK;
		if (d.next >= q->num) {
			error(err, errlen, "%s: descriptor %u links to %u of a queue of %u", q->name,
			      i, d.next, q->num);
			return fail(q, req, err);
		}
		i = d.next;
	}
too_long:
	error(err, errlen, "%s: chain from %u has more than %d buffers", q->name, req->head,
	      VIRTQ_MAX_SEGS);
	return fail(q, req, err);
}

bool virtq__read(const struct virtq_req *req, uint64_t off, void *dst, uint64_t len)
{
	uint8_t *out = dst;

	if (off > req->out_len || len > req->out_len - off)
		return false;
	for (unsigned s = 0; s < req->nout && len; s++) {
		const struct virtq_seg *seg = &req->out[s];
		uint64_t n;

		if (off >= seg->len) {
			off -= seg->len;
			continue;
		}
		n = seg->len - off < len ? seg->len - off : len;
		memcpy(out, seg->hva + off, n);
		out += n;
		len -= n;
		off = 0;
	}
	return true;
}

bool virtq__write(struct virtq_req *req, const void *src, uint64_t len)
{
	const uint8_t *in = src;
	uint64_t off = req->written;

	if (off > req->in_len || len > req->in_len - off)
		return false;
	req->written += (uint32_t)len;
	for (unsigned s = 0; s < req->nin && len; s++) {
		struct virtq_seg *seg = &req->in[s];
		uint64_t n;

		if (off >= seg->len) {
			off -= seg->len;
			continue;
		}
		n = seg->len - off < len ? seg->len - off : len;
		memcpy(seg->hva + off, in, n);
		in += n;
		len -= n;
		off = 0;
	}
	return true;
}

void virtq__push(struct virtq *q, const struct virtq_req *req)
{
	struct virtq_used_elem *e = &q->used->ring[q->used_idx % q->num];

	__atomic_store_n(&e->id, (uint32_t)req->head, __ATOMIC_RELAXED);
	__atomic_store_n(&e->len, req->written, __ATOMIC_RELAXED);
	q->used_idx++;
	__atomic_store_n(&q->used->idx, q->used_idx, __ATOMIC_RELEASE);
}

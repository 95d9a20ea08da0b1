/*
 * The split-virtqueue walker (virtio/queue.c) driven by a hostile driver: guest RAM is exact-size
 * heap blocks (ASan sees one byte beyond), laid out as three ranges of two zones with a gap, and
 * the fuzzer's bytes are the driver's moves: queue set-up, descriptors, ring entries and indices
 * written anywhere, and requests taken, read, answered and returned.
 *
 * Besides "no access outside guest RAM" and "every call returns" (libFuzzer's -timeout), each
 * request must hold only buffers inside one RAM range, counted and summed as queue.h says; a
 * read or write succeeds exactly when the request's buffers hold the bytes and moves them in
 * order; the used index the device publishes is the number of requests it returned; a broken
 * queue stays broken until reset.
 */
#include "fuzz/fuzz.h"
#include "virtio/queue.h"
#include "vm.h"

/* gpa, size, zone, offset in the zone's block */
static const struct mem_range ram[] = {
	{ RANGE_RAM, 0x0, 0xc000, 0, 0x0, -1 },
	{ RANGE_RAM, 0x100000, 0x4000, 0, 0xc000, -1 },
	{ RANGE_RAM, 0x200000, 0x2000, 1, 0x0, -1 },
};
static const uint64_t zone_size[] = { 0x10000, 0x2000 };

enum op { OP_POP, OP_POKE16, OP_DESC, OP_OFFER, OP_SETUP, OP_NOPS };

/* An address inside or near a RAM range mostly, anything sometimes. */
static uint64_t pick_gpa(struct fuzz_in *in)
{
	uint8_t sel = fuzz__u8(in);

	if (sel & 0x80)
		return fuzz__u64(in);
	return ram[sel % ARRAY_SIZE(ram)].gpa + fuzz__u16(in);
}

static bool in_ram(const struct vm *vm, const uint8_t *hva, uint32_t len)
{
	for (size_t i = 0; i < ARRAY_SIZE(ram); i++) {
		const uint8_t *base = (const uint8_t *)vm->backings[ram[i].zone].host +
				      ram[i].zone_offset;

		if (hva >= base && hva <= base + ram[i].size && len <= base + ram[i].size - hva)
			return true;
	}
	return false;
}

static void check_req(const struct vm *vm, const struct virtq *q, const struct virtq_req *r)
{
	uint64_t out = 0, in = 0;

	FUZZ_CHECK(r->head < q->num && r->nout <= VIRTQ_MAX_SEGS && r->nin <= VIRTQ_MAX_SEGS &&
		   r->nout + r->nin > 0 && r->written == 0, "request shape");
	for (unsigned s = 0; s < r->nout; s++) {
		FUZZ_CHECK(in_ram(vm, r->out[s].hva, r->out[s].len), "out buffer %u not in RAM", s);
		out += r->out[s].len;
	}
	for (unsigned s = 0; s < r->nin; s++) {
		FUZZ_CHECK(in_ram(vm, r->in[s].hva, r->in[s].len), "in buffer %u not in RAM", s);
		in += r->in[s].len;
	}
	FUZZ_CHECK(out == r->out_len && in == r->in_len, "lengths");
}

/* virtq__read agrees with the buffers laid end to end; virtq__write fills them in order. */
static void serve(struct virtq *q, struct virtq_req *r, struct fuzz_in *in)
{
	static uint8_t got[65536], want[65536];
	uint64_t off = fuzz__u16(in), len = fuzz__u16(in), at = 0, n;
	bool ok = virtq__read(r, off, got, len);

	FUZZ_CHECK(ok == (off + len <= r->out_len), "virtq__read(%llu, %llu) of %llu",
		   (unsigned long long)off, (unsigned long long)len,
		   (unsigned long long)r->out_len);
	for (unsigned s = 0; ok && s < r->nout && at < off + len; s++, at += n) {
		n = r->out[s].len;
		for (uint64_t b = 0; b < n; b++)
			if (at + b >= off && at + b < off + len)
				want[at + b - off] = r->out[s].hva[b];
	}
	FUZZ_CHECK(!ok || !memcmp(got, want, len), "virtq__read's bytes");
	len = fuzz__u16(in);
	memset(got, 0x5a, len);
	ok = virtq__write(r, got, len);
	FUZZ_CHECK(ok == (len <= r->in_len) && r->written == (ok ? len : 0), "virtq__write");
	virtq__push(q, r);
}

/* One pop; a broken queue must stay broken. */
static void pop(struct vm *vm, struct virtq *q, struct fuzz_in *in)
{
	static struct virtq_req r;
	bool was_broken = q->broken && q->ready;
	uint16_t used = q->used_idx;
	char err[256];
	enum virtq_pop p = virtq__pop(q, &r, err, sizeof(err));

	FUZZ_CHECK(!was_broken || p == VIRTQ_BROKEN, "a broken queue popped %d", p);
	if (p == VIRTQ_OK) {
		check_req(vm, q, &r);
		serve(q, &r, in);
	}
	FUZZ_CHECK(q->used_idx == (uint16_t)(used + (p == VIRTQ_OK || p == VIRTQ_FAILED)),
		   "used index moved by %u", (uint16_t)(q->used_idx - used));
	if (q->ready && (p == VIRTQ_OK || p == VIRTQ_FAILED)) {
		const uint8_t *idx = vm__gpa_to_hva(vm, q->used_gpa + 2, 2);

		FUZZ_CHECK(idx && (idx[0] | idx[1] << 8) == q->used_idx, "published used index");
	}
}

static void setup(struct vm *vm, struct virtq *q, struct fuzz_in *in)
{
	uint16_t max = (uint16_t)(1u << fuzz__u8(in) % 11);	/* 1..VIRTQ_MAX_SIZE */
	char err[256];

	virtq__reset(q, vm, max, "fuzz queue");
	q->warned = true;	/* nothing on stderr per input */
	q->num = fuzz__u16(in) % (2 * VIRTQ_MAX_SIZE);
	q->desc_gpa = pick_gpa(in);
	q->avail_gpa = pick_gpa(in);
	q->used_gpa = pick_gpa(in);
	if (virtq__enable(q, err, sizeof(err)) == 0)
		FUZZ_CHECK(q->num && q->num <= max && !(q->num & (q->num - 1)), "enabled num %u",
			   q->num);
	else
		FUZZ_CHECK(!q->ready, "a refused queue is ready");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct vm vm;
	static struct virtq q;
	struct fuzz_in in = { data, size };

	memset(&vm.layout, 0, sizeof(vm.layout));
	for (size_t i = 0; i < ARRAY_SIZE(ram); i++)
		vm.layout.ranges[vm.layout.nranges++] = ram[i];
	for (size_t z = 0; z < ARRAY_SIZE(zone_size); z++) {
		vm.backings[z].host = calloc(1, zone_size[z]);
		FUZZ_CHECK(vm.backings[z].host, "calloc");
	}
	setup(&vm, &q, &in);
	for (unsigned steps = 0; in.left && steps < 256; steps++) {
		uint64_t gpa;
		uint8_t d[16];

		switch (fuzz__u8(&in) % OP_NOPS) {
		case OP_POP:
			pop(&vm, &q, &in);
			break;
		case OP_POKE16:
			gpa = pick_gpa(&in);
			d[0] = fuzz__u8(&in), d[1] = fuzz__u8(&in);
			fuzz__poke(&vm, gpa, d, 2);
			break;
		case OP_DESC:	/* descriptor i of the table: addr, len, flags, next */
			gpa = q.desc_gpa + 16 * (fuzz__u16(&in) % (q.num ? q.num : 1));
			for (int i = 0; i < 16; i++)
				d[i] = fuzz__u8(&in);
			fuzz__poke(&vm, gpa, d, 16);
			break;
		case OP_OFFER:	/* the next available slot, then the index */
			gpa = q.avail_gpa + 4 + 2 * (fuzz__u16(&in) % (q.num ? q.num : 1));
			d[0] = fuzz__u8(&in), d[1] = fuzz__u8(&in), d[2] = fuzz__u8(&in), d[3] = fuzz__u8(&in);
			fuzz__poke(&vm, gpa, d, 2);
			fuzz__poke(&vm, q.avail_gpa + 2, d + 2, 2);
			break;
		case OP_SETUP:
			setup(&vm, &q, &in);
			break;
		}
	}
	for (size_t z = 0; z < ARRAY_SIZE(zone_size); z++)
		free(vm.backings[z].host);
	return 0;
}

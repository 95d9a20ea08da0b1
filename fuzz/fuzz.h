/*
 * What the libFuzzer targets share: a failed invariant is a crash (abort, so that libFuzzer
 * saves the input), fuzzer bytes read as numbers or split into argv.
 */
#ifndef MEMVISOR_FUZZ_H
#define MEMVISOR_FUZZ_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"
#include "vm.h"

/* Not assert(): NDEBUG must not turn the targets' checks off. */
#define FUZZ_CHECK(e, fmt, ...)                                                            \
	do {                                                                               \
		if (!(e)) {                                                                \
			fprintf(stderr, "%s:%d: invariant '%s' broken: " fmt "\n", __FILE__, \
				__LINE__, #e, ##__VA_ARGS__);                              \
			abort();                                                           \
		}                                                                          \
	} while (0)

/* The fuzzer's bytes, consumed from the front; reads past the end give zeros. */
struct fuzz_in {
	const uint8_t *p;
	size_t left;
};

static inline uint64_t fuzz__bytes(struct fuzz_in *in, unsigned n)
{
	uint64_t v = 0;

	for (unsigned i = 0; i < n && in->left; i++, in->p++, in->left--)
		v |= (uint64_t)*in->p << (8 * i);
	return v;
}

static inline uint8_t fuzz__u8(struct fuzz_in *in) { return (uint8_t)fuzz__bytes(in, 1); }
static inline uint16_t fuzz__u16(struct fuzz_in *in) { return (uint16_t)fuzz__bytes(in, 2); }
static inline uint32_t fuzz__u32(struct fuzz_in *in) { return (uint32_t)fuzz__bytes(in, 4); }
static inline uint64_t fuzz__u64(struct fuzz_in *in) { return fuzz__bytes(in, 8); }

/*
 * argv from NUL-separated arguments, as the kernel hands them to main: argv[0] "memvisor",
 * then one argument per piece (a trailing NUL makes a last, empty one). One malloc'ed block:
 * free(argv) frees the strings too.
 */
static inline char **fuzz__argv(const uint8_t *data, size_t size, int *argc)
{
	size_t n = 2;
	char **argv, *s;

	for (size_t i = 0; i < size; i++)
		n += data[i] == '\0';
	argv = malloc((n + 1) * sizeof(*argv) + sizeof("memvisor") + size + 1);
	if (!argv)
		abort();
	s = (char *)(argv + n + 1);
	memcpy(s, "memvisor", sizeof("memvisor"));
	argv[0] = s;
	s += sizeof("memvisor");
	memcpy(s, data, size);
	s[size] = '\0';
	*argc = 1;
	if (size) {
		argv[(*argc)++] = s;
		for (size_t i = 0; i < size; i++)
			if (s[i] == '\0')
				argv[(*argc)++] = s + i + 1;
	}
	argv[*argc] = NULL;
	return argv;
}

/* Guest RAM as the driver writes and reads it: false (nothing copied) where it is no RAM. */
static inline bool fuzz__poke(struct vm *vm, uint64_t gpa, const void *src, uint64_t len)
{
	void *p = vm__gpa_to_hva(vm, gpa, len);

	if (p)
		memcpy(p, src, len);
	return p;
}

static inline bool fuzz__peek(struct vm *vm, uint64_t gpa, void *dst, uint64_t len)
{
	const void *p = vm__gpa_to_hva(vm, gpa, len);

	if (p)
		memcpy(dst, p, len);
	return p;
}

#endif

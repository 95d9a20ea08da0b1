/*
 * Reading the tables and registers memvisor writes, the way a guest would: little-endian fields
 * and the ACPI byte sum, written apart from the VMM's own code so that a test checks it rather
 * than repeats it. Shared by the unit tests and the fuzz targets.
 */
#ifndef MEMVISOR_TESTS_BYTES_H
#define MEMVISOR_TESTS_BYTES_H

#include <stddef.h>
#include <stdint.h>

static inline uint16_t rd16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static inline uint32_t rd32(const uint8_t *p) { return rd16(p) | (uint32_t)rd16(p + 2) << 16; }
static inline uint64_t rd64(const uint8_t *p) { return rd32(p) | (uint64_t)rd32(p + 4) << 32; }

/* The 8-bit sum of n bytes: 0 over a whole ACPI table whose checksum is right. */
static inline uint8_t sum(const uint8_t *p, size_t n)
{
	uint8_t s = 0;

	while (n--)
		s = (uint8_t)(s + *p++);
	return s;
}

#endif

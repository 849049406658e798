/* Fuzzes virtio_mmio_parse_device (drivers/virtio/virtio_mmio_cmdline.c):
 * the "virtio_mmio.device=<size>@<base>:<irq>" value of the kernel command
 * line, which decides what the kernel maps and probes as a device. A
 * wrong "yes" maps memory that is not a device, so beyond "no crash" every
 * accepted word must be exactly what an independent reading of the syntax
 * accepts, with the same three numbers, and what it yields must be safe to
 * map: at least the register block, 4-byte aligned, not wrapping.
 *
 * The input is the word itself, in an exact-size copy (a read past the
 * NUL is ASan's to report). */
#include "drivers/virtio/virtio_mmio.h"
#include "tests/fuzz/fuzz_input.h"
#include "tests/fuzz/ref_parse.h"

#define IRQ_MAX 255
#define WORD_MAX 64 /* the parser's buffer, NUL included */

/* The reference: "<size>@<base>:<irq>", the first '@' and the first ':'
 * after it splitting the word, size with an optional K/M/G. */
static bool ref_device(char *w, uint64_t *size, uint64_t *base, uint64_t *irq)
{
	size_t n = strlen(w);
	if (n == 0 || n >= WORD_MAX)
		return false;
	char *at = strchr(w, '@');
	if (!at)
		return false;
	char *colon = strchr(at + 1, ':');
	if (!colon)
		return false;
	*at = *colon = '\0';
	if (!ref_size(w, size) || !ref_u64(at + 1, base) || !ref_u64(colon + 1, irq))
		return false;
	uint64_t end;
	return *size >= VIRTIO_MMIO_MIN_SIZE && *base != 0 && *base % 4 == 0 &&
	       !__builtin_add_overflow(*base, *size, &end) && *irq <= IRQ_MAX;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *word = malloc(size + 1), *copy = malloc(size + 1);
	if (!word || !copy)
		abort();
	memcpy(word, data, size);
	word[size] = '\0';
	memcpy(copy, word, size + 1);

	uint64_t sz = 0, base = 0, rsz = 0, rbase = 0, rirq = 0;
	uint32_t irq = 0;
	bool ok = virtio_mmio_parse_device(word, &sz, &base, &irq);
	FUZZ_ASSERT(memcmp(word, copy, size + 1) == 0, "the word was modified");
	bool ref = ref_device(copy, &rsz, &rbase, &rirq);
	FUZZ_ASSERT(ok == ref, "\"%s\": parsed %d, reference %d", word, ok, ref);
	if (ok) {
		FUZZ_ASSERT(sz == rsz && base == rbase && irq == rirq,
		            "\"%s\": size 0x%llx base 0x%llx irq %u, reference 0x%llx 0x%llx %llu", word,
		            (unsigned long long)sz, (unsigned long long)base, irq, (unsigned long long)rsz,
		            (unsigned long long)rbase, (unsigned long long)rirq);
		/* what the prober relies on, whatever the reference says */
		FUZZ_ASSERT(sz >= VIRTIO_MMIO_MIN_SIZE && base && !(base & 3) && base + sz > base && irq <= IRQ_MAX,
		            "\"%s\": unsafe device accepted", word);
	}
	free(copy);
	free(word);
	return 0;
}

#include <string.h>
#include "drivers/virtio/virtio_mmio.h"
#include "kernel/console/parse.h"

#define WORD_MAX 64
#define IRQ_MAX  255

bool virtio_mmio_parse_device(const char *word, uint64_t *size, uint64_t *base, uint32_t *irq)
{
	char buf[WORD_MAX];
	size_t n = strlen(word);
	if (n == 0 || n >= sizeof(buf))
		return false;
	memcpy(buf, word, n + 1);
	char *at = strchr(buf, '@');
	char *colon = at ? strchr(at, ':') : NULL;
	if (!at || !colon)
		return false;
	*at = '\0';
	*colon = '\0';
	uint64_t irq64;
	if (!parse_size(buf, size) || !parse_u64(at + 1, base) || !parse_u64(colon + 1, &irq64))
		return false;
	if (*size < VIRTIO_MMIO_MIN_SIZE || *base == 0 || *base + *size < *base || (*base & 3) ||
	    irq64 > IRQ_MAX)
		return false;
	*irq = (uint32_t)irq64;
	return true;
}

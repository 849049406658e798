/* Console commands of the memory manager. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include "kernel/console/console.h"
#include "kernel/mm/mm.h"
#include "kernel/mm/mm_console.h"

static void mem_show(void)
{
	struct mm_stats s;
	mm_stats(&s);
	char blocks[PMM_ORDERS * 21];
	size_t n = 0;
	for (unsigned o = 0; o < PMM_ORDERS; o++)
		n += (size_t)snprintf(blocks + n, sizeof(blocks) - n, "%s%" PRIu64, o ? "," : "", s.pmm.free_blocks[o]);
	console_ok("usable=%" PRIu64 " managed=%" PRIu64 " free=%" PRIu64 " allocated=%" PRIu64
	           " allocs=%" PRIu64 " frees=%" PRIu64 " alloc_failures=%" PRIu64
	           " huge_allocs=%" PRIu64 " huge_failures=%" PRIu64 " minor_faults=%" PRIu64
	           " heap_bytes=%" PRIu64 " heap_pages=%" PRIu64 " page_tables=%" PRIu64 " free_blocks=%s",
	           s.usable_pages, s.pmm.managed_pages, s.pmm.free_pages, s.pmm.allocated_pages, s.pmm.allocs,
	           s.pmm.frees, s.pmm.alloc_failures, s.pmm.huge_allocs, s.pmm.huge_failures,
	           s.heap.minor_faults, s.heap.brk_bytes, s.heap.backed_pages, s.page_table_pages, blocks);
}

static void cmd_mem(int argc, char **argv)
{
	if (argc == 2 && strcmp(argv[1], "show") == 0)
		mem_show();
	else
		console_err("usage: mem show");
}

static const struct console_cmd mm_cmds[] = {
	{ "mem", "show", cmd_mem },
};

void mm_console_init(void) { console_register(mm_cmds, sizeof(mm_cmds) / sizeof(mm_cmds[0])); }

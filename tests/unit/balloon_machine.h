/* The machine the balloon_inflate.c test programs run on
 * (test_balloon_inflate.c: ring sizes, out-of-order completion, the
 * reserve; test_balloon_oom.c: deflate on OOM and PFNs taken back): the
 * real virtqueue and page allocator, the fake memory and device of
 * balloon_fakes.h, and the rest of the kernel faked at link level. The mm
 * fakes do what kernel/mm/mm.c does over the pmm and remember who has each
 * page: free, the kernel, or taken through mm_balloon_take.
 *
 * After every work run (check_state), every page is in exactly one place
 * (allocator, an inflate buffer on the ring, the store, a deflate buffer
 * on the ring, or, after OOM, the list of PFNs still to tell or a buffer
 * telling them); the host holds exactly the store, the deflate buffers and
 * the PFNs not yet told; every counter of the balloon and the pmm agrees
 * with that. Included by exactly one file of each program. */
#ifndef BALLAST_TEST_BALLOON_MACHINE_H
#define BALLAST_TEST_BALLOON_MACHINE_H

#include <errno.h>
#include <stdarg.h>
#include <sys/mman.h>
#include "tests/unit/balloon_fakes.h"
#include "kernel/log.h"
#include "kernel/mm/mm.h"

#define MAX_RUNS 5000
/* balloon_inflate.c's private numbers, which the exact answers follow from */
#define CHUNK_PFNS ((PAGE_SIZE - 16) / sizeof(uint32_t)) /* PFNs per store page: 1020 */
#define OOM_BATCH  256                                    /* PFNs deflated per OOM call, as Linux */

/* balloon_inflate.c's store page (private there), to walk its lists. */
struct chunk {
	struct chunk *next;
	uint64_t count;
	uint32_t pfn[CHUNK_PFNS];
};
_Static_assert(sizeof(struct chunk) == PAGE_SIZE, "the layout of balloon_inflate.c");

static uint64_t ceil_div(uint64_t a, uint64_t b) { return (a + b - 1) / b; }

/* ---- the memory manager, as kernel/mm/mm.c over the pmm ---- */

enum owner { FREE, KERNEL, TAKEN };
static uint8_t owner[ARENA_PAGES], owner_at_start[ARENA_PAGES];
static struct pmm pmm;
static void *meta;
static struct pmm_counters pmm_at_start;
static bool irq_on = true;
static mm_oom_handler_fn oom_handler;
static uint64_t oom_calls, oom_freed, works_queued;
static uint64_t cache_page[1024], cache_pages, cache_reclaims; /* a page cache that gives way */

uint64_t irq_save(void)
{
	uint64_t flags = irq_on ? FAKE_RFLAGS_IF : 0;
	irq_on = false;
	return flags;
}
void irq_restore(uint64_t flags) { irq_on = irq_on || (flags & FAKE_RFLAGS_IF); }

_Noreturn void panic_at(const char *file, int line, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "PANIC at %s:%d: ", file, line);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	check_failed++;
	exit(check_summary(program_invocation_short_name));
}

/* Hands n pages at pa from one of the owners in `from` (a bit mask) to `to`. */
static inline void hand_over(uint64_t pa, uint64_t n, unsigned from, enum owner to, const char *what)
{
	for (uint64_t i = idx_of(pa >> PAGE_SHIFT); i < idx_of(pa >> PAGE_SHIFT) + n; i++) {
		if (!check_report(i < ARENA_PAGES && (from >> owner[i] & 1), __FILE__, __LINE__, what)) {
			fprintf(stderr, "    page 0x%" PRIx64 "\n", pa);
			return;
		}
		owner[i] = to;
	}
}

/* The cache is empty whenever the allocator runs dry here, so no cache
 * reclaim step before the OOM handler. */
uint64_t page_alloc(unsigned order)
{
	uint64_t flags = irq_save();
	uint64_t pa = pmm_alloc(&pmm, order);
	if (pa == PMM_NO_PAGE && oom_handler) {
		oom_calls++;
		uint64_t freed = oom_handler(1ull << order);
		oom_freed += freed;
		if (freed > 0) {
			pa = pmm_alloc(&pmm, order);
			pmm.c.alloc_failures--; /* one request, one count */
		}
	}
	irq_restore(flags);
	if (pa != PMM_NO_PAGE)
		hand_over(pa, 1ull << order, 1u << FREE, KERNEL, "page_alloc got a page that was not free");
	return pa;
}

void page_free(uint64_t pa, unsigned order)
{
	/* store pages come from mm_balloon_take(false) and go back here */
	hand_over(pa, 1ull << order, 1u << KERNEL | 1u << TAKEN, FREE, "page_free of a page nobody had");
	if (pmm_free(&pmm, pa, order) < 0)
		panic("bad free of 0x%" PRIx64 " order %u", pa, order);
}

/* Set by a test: the store's own pages (taken with offline false) cannot
 * be had, as when a cache grow has just emptied the free lists. */
static bool store_takes_fail;
static uint64_t store_take_failures;

uint64_t mm_balloon_take(bool offline)
{
	if (!offline && store_takes_fail) {
		store_take_failures++;
		return PMM_NO_PAGE;
	}
	uint64_t flags = irq_save();
	uint64_t pa = pmm_alloc(&pmm, 0);
	if (pa != PMM_NO_PAGE && offline)
		pmm_offline(&pmm, pa);
	irq_restore(flags);
	if (pa != PMM_NO_PAGE)
		hand_over(pa, 1, 1u << FREE, TAKEN, "mm_balloon_take got a page that was not free");
	return pa;
}

void mm_balloon_keep(uint64_t pa, bool offline)
{
	CHECK(!irq_on); /* only the OOM path keeps pages, from inside the allocator */
	hand_over(pa, 1, 1u << TAKEN, KERNEL, "mm_balloon_keep of a page the balloon did not take");
	if (offline && pmm_online(&pmm, pa) < 0)
		panic("balloon kept 0x%" PRIx64 ", which is not an offline page", pa);
}

void mm_balloon_give(uint64_t pa, bool offline)
{
	hand_over(pa, 1, 1u << TAKEN, FREE, "mm_balloon_give of a page the balloon did not take");
	if ((offline && pmm_online(&pmm, pa) < 0) || pmm_free(&pmm, pa, 0) < 0)
		panic("balloon gave back 0x%" PRIx64 ", which it did not have", pa);
}

uint64_t cache_reclaim(uint64_t pages, bool direct);

/* kernel/mm/mm.c's policy: at the reserve, the cache gives way; the
 * reserve itself is never given. */
uint64_t mm_balloon_inflate_take(bool offline)
{
	if (pmm.c.free_pages <= MM_BALLOON_RESERVE_PAGES &&
	    (cache_pages == 0 || cache_reclaim(MM_BALLOON_RECLAIM_BATCH, true) == 0))
		return PMM_NO_PAGE;
	return mm_balloon_take(offline);
}

void mm_stats(struct mm_stats *out)
{
	memset(out, 0, sizeof *out);
	out->pmm = pmm.c;
	out->usable_pages = ARENA_PAGES;
	out->cache.pages = cache_pages;
}

bool mm_invariant_holds(bool full)
{
	return pmm.c.managed_pages == pmm.c.free_pages + pmm.c.allocated_pages &&
	       pmm.c.managed_pages + pmm.c.offline_pages == ARENA_PAGES && (!full || pmm_check(&pmm));
}

void mm_set_oom_handler(mm_oom_handler_fn fn) { oom_handler = fn; }

uint64_t cache_reclaim(uint64_t pages, bool direct)
{
	CHECK(direct); /* the balloon waits for it */
	cache_reclaims++;
	uint64_t n = 0;
	for (; n < pages && cache_pages; n++)
		page_free(cache_page[--cache_pages], 0);
	return n;
}

/* ---- the rest of the kernel ---- */

static struct virtio_dev vd;
static uint32_t host_actual; /* the config field the driver writes */
static unsigned unreachable_logs, untracked_logs;
static char unreachable_line[256], untracked_line[256];

/* kdebug lines are logged too: tests see them all */
bool log_verbose = true;

void kprintf(const char *fmt, ...)
{
	char line[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof line, fmt, ap);
	va_end(ap);
	fputs(line, stdout);
	if (strstr(line, "not reachable")) {
		unreachable_logs++;
		memcpy(unreachable_line, line, sizeof line);
	}
	if (strstr(line, "no memory to track")) {
		untracked_logs++;
		memcpy(untracked_line, line, sizeof line);
	}
}

void virtio_fail(struct virtio_dev *d, const char *why)
{
	check_report(0, __FILE__, __LINE__, "the driver failed the device");
	fprintf(stderr, "    because: %s\n", why);
	d->failed = true;
}

int virtio_config_write32(struct virtio_dev *d, unsigned off, uint32_t v)
{
	CHECK(d == &vd && off == VIRTIO_BALLOON_CFG_ACTUAL);
	host_actual = v;
	return 0;
}

void work_queue(struct work *w)
{
	CHECK(w == &balloon.work);
	works_queued++;
}

struct balloon *balloon_current(void) { return &balloon; }

static struct virtqueue inflate_q, deflate_q;

static inline void fake_notify(struct virtqueue *vq)
{
	CHECK(vq == &inflate_q || vq == &deflate_q);
	(vq == &inflate_q ? &inflate_dev : &deflate_dev)->notified = true;
}
static const struct virtio_ops fake_ops = { .name = "fake", .modern = true };

/* ---- the whole state, checked after every work run ---- */

enum place { IN_INFLATE = 1, IN_STORE = 2, IN_DEFLATE = 4, STORE_PAGE = 8, TO_TELL = 16, TELLING = 32 };
static uint8_t where[ARENA_PAGES];
static uint64_t doubles, outside;
static const char *phase;

static inline void put(uint64_t pfn, uint8_t place)
{
	if (idx_of(pfn) >= ARENA_PAGES) {
		outside++;
		return;
	}
	doubles += where[idx_of(pfn)] != 0;
	where[idx_of(pfn)] |= place;
}

static uint64_t walk(const struct balloon_pfn_chunk *top, uint8_t place, uint8_t page_place)
{
	uint64_t n = 0, pages = 0;
	for (const struct chunk *c = (const void *)top; c; c = c->next) {
		if (!CHECK(++pages <= ARENA_PAGES && c->count <= CHUNK_PFNS))
			break;
		if (page_place)
			put((uintptr_t)c >> PAGE_SHIFT, page_place);
		for (uint64_t i = 0; i < c->count; i++)
			put(c->pfn[i], place);
		n += c->count;
	}
	return n;
}

static inline bool busy(void)
{
	for (unsigned i = 0; i < BALLOON_BUFS; i++)
		if (balloon.pg.inflate_buf[i].busy || balloon.pg.deflate_buf[i].busy)
			return true;
	return inflate_dev.n_flights || deflate_dev.n_flights;
}

static inline bool check_state(unsigned run)
{
	unsigned long failed_before = check_failed;
	const struct balloon *b = &balloon;
	memset(where, 0, sizeof where);
	doubles = outside = 0;
	uint64_t n_inflate = 0, n_deflate = 0, n_telling = 0;
	for (unsigned i = 0; i < BALLOON_BUFS; i++) {
		const struct balloon_pfn_buf *in = &b->pg.inflate_buf[i], *de = &b->pg.deflate_buf[i];
		for (uint32_t k = 0; in->busy && k < in->count; k++)
			put(in->pfn[k], IN_INFLATE);
		for (uint32_t k = 0; de->busy && k < de->count; k++)
			put(de->pfn[k], de->already_back ? TELLING : IN_DEFLATE);
		n_inflate += in->busy ? in->count : 0;
		*(de->already_back ? &n_telling : &n_deflate) += de->busy ? de->count : 0;
	}
	uint64_t n_store = walk(b->pg.store, IN_STORE, STORE_PAGE);
	uint64_t n_tell = walk(b->pg.oom_tell, TO_TELL, 0); /* its pages are kernel pages listed in it */
	uint64_t lost = 0, stray = 0, host_only = 0, guest_only = 0, n_free = 0;
	for (unsigned i = 0; i < ARENA_PAGES; i++) {
		bool taken_place = where[i] & (IN_INFLATE | IN_STORE | IN_DEFLATE | STORE_PAGE);
		bool host_place = where[i] & (IN_STORE | IN_DEFLATE | TO_TELL | TELLING);
		lost += owner[i] == TAKEN && !taken_place;
		stray += owner[i] != TAKEN && taken_place;
		host_only += host_has[i] && !host_place;
		guest_only += !host_has[i] && host_place;
		n_free += owner[i] == FREE;
	}
	CHECK_EQ_U64(lost, 0);       /* taken by the balloon, now in none of its places */
	CHECK_EQ_U64(doubles, 0);    /* a page in two places (or twice in one) */
	CHECK_EQ_U64(stray, 0);      /* in a balloon place, not the balloon's */
	CHECK_EQ_U64(outside, 0);
	CHECK_EQ_U64(host_only, 0);  /* the host holds it, the balloon does not know */
	CHECK_EQ_U64(guest_only, 0); /* the balloon thinks the host holds it */
	CHECK_EQ_U64(b->pg.pages, n_store + n_deflate);
	CHECK_EQ_U64(b->pg.stored, n_store);
	CHECK_EQ_U64(b->pg.inflating, n_inflate);
	CHECK_EQ_U64(b->pg.deflating, n_deflate);
	CHECK_EQ_U64(b->pg.oom_tell_count, n_tell);
	/* what the device accepted on inflate minus what it completed on deflate */
	CHECK_EQ_U64(b->pg.pages + n_tell + n_telling, inflate_dev.pfns_done - deflate_dev.pfns_done);
	CHECK_EQ_U64(host_pages, inflate_dev.pfns_done - deflate_dev.pfns_done);
	CHECK_EQ_U64(host_actual, b->pg.pages);
	const struct pmm_counters *c = &pmm.c;
	CHECK_EQ_U64(c->managed_pages, c->free_pages + c->allocated_pages);
	CHECK_EQ_U64(c->managed_pages + c->offline_pages, ARENA_PAGES);
	CHECK_EQ_U64(c->offline_pages, (b->pg.offline ? n_inflate + n_store + n_deflate : 0));
	CHECK_EQ_U64(c->free_pages, n_free);
	CHECK(pmm_check(&pmm));
	CHECK(irq_on); /* every irq_save of the run restored */
	CHECK(!vd.failed && !inflate_dev.bad && !deflate_dev.bad);
	if (check_failed == failed_before)
		return true;
	fprintf(stderr, "    after work run %u of: %s\n", run, phase);
	return false;
}

static inline unsigned busy_bufs(const struct balloon_pfn_buf *bufs)
{
	unsigned n = 0;
	for (unsigned i = 0; i < BALLOON_BUFS; i++)
		n += bufs[i].busy;
	return n;
}

/* One work run towards a new target, the device not answering yet. */
static inline bool first_run(uint32_t target, const char *what)
{
	phase = what;
	balloon.pg.target = target;
	balloon_pages_work(&balloon);
	return check_state(1);
}

/* Runs the work (the idle loop) and the device in turns until nothing is
 * in flight: then the work has nothing left it can do. False, having said
 * why, on a broken state or if it never settles. */
static inline bool settle(uint32_t target, struct pace p, const char *what)
{
	phase = what;
	balloon.pg.target = target;
	for (unsigned run = 1; run <= MAX_RUNS; run++) {
		balloon_pages_work(&balloon);
		if (!check_state(run))
			return false;
		if (!busy())
			return true;
		dev_round(&inflate_dev, p);
		dev_round(&deflate_dev, p);
	}
	check_report(0, __FILE__, __LINE__, "the balloon settles");
	fprintf(stderr, "    %s\n", what);
	return false;
}

static inline void queue_up(struct virtqueue *vq, unsigned index, uint16_t size, struct fake_dev *d)
{
	unsigned order = 0;
	while ((PAGE_SIZE << order) < vq_split_ring_bytes(size))
		order++;
	uint64_t pa = page_alloc(order);
	memset(at(pa), 0, PAGE_SIZE << order);
	unsigned state_order = 0;
	while ((PAGE_SIZE << state_order) < vq_state_bytes(size))
		state_order++;
	uint64_t state = page_alloc(state_order);
	CHECK_EQ_U64(vq_init_split(vq, (uint16_t)index, size, at(pa), pa, at(state), true), 0);
	vq->notify = fake_notify;
	memset(d, 0, sizeof *d);
	d->vq = vq;
	d->inflate = index == VIRTIO_BALLOON_VQ_INFLATE;
}

/* A fresh machine and a balloon probed on it, as balloon_probe does. */
static uint64_t machine_up(uint16_t inflate_size, uint16_t deflate_size, bool deflate_on_oom)
{
	memset(owner, FREE, sizeof owner);
	memset(host_has, 0, sizeof host_has);
	host_pages = host_actual = 0;
	oom_handler = NULL;
	oom_calls = oom_freed = works_queued = cache_pages = cache_reclaims = 0;
	unreachable_logs = untracked_logs = 0;
	store_takes_fail = false;
	store_take_failures = 0;
	CHECK_EQ_U64(pmm_init(&pmm, meta, MAX_PFN), 0);
	CHECK_EQ_U64(pmm_add_range(&pmm, ARENA_PHYS, ARENA_PAGES * PAGE_SIZE), ARENA_PAGES);
	vd = (struct virtio_dev){ .ops = &fake_ops, .name = "virtio-balloon (fake)" };
	vd.features = 1ull << VIRTIO_F_VERSION_1 | 1ull << VIRTIO_F_EVENT_IDX |
	              (uint64_t)deflate_on_oom << VIRTIO_BALLOON_F_DEFLATE_ON_OOM;
	memset(&balloon, 0, sizeof balloon);
	balloon.vd = &vd;
	balloon.pg.inflate_vq = &inflate_q;
	balloon.pg.deflate_vq = &deflate_q;
	queue_up(&inflate_q, VIRTIO_BALLOON_VQ_INFLATE, inflate_size, &inflate_dev);
	queue_up(&deflate_q, VIRTIO_BALLOON_VQ_DEFLATE, deflate_size, &deflate_dev);
	CHECK_EQ_U64(balloon_pages_init(&balloon), 0);
	CHECK(oom_handler == (deflate_on_oom ? balloon_oom_deflate : NULL));
	CHECK(balloon.pg.offline == !deflate_on_oom);
	pmm_at_start = pmm.c;
	memcpy(owner_at_start, owner, sizeof owner);
	return pmm.c.free_pages;
}

/* Deflated to 0: every page back where it started, the host holds none. */
static inline void check_all_back(void)
{
	const struct balloon *b = &balloon;
	CHECK_EQ_U64(b->pg.pages, 0);
	CHECK(!b->pg.store && !b->pg.oom_tell && !b->pg.stored && !b->pg.oom_tell_count && !b->pg.inflating && !b->pg.deflating);
	CHECK_EQ_U64(host_pages, 0);
	CHECK_EQ_U64(host_actual, 0);
	CHECK_EQ_U64(pmm.c.managed_pages, pmm_at_start.managed_pages);
	CHECK_EQ_U64(pmm.c.free_pages, pmm_at_start.free_pages);
	CHECK_EQ_U64(pmm.c.allocated_pages, pmm_at_start.allocated_pages);
	CHECK_EQ_U64(pmm.c.offline_pages, pmm_at_start.offline_pages);
	/* the same free pages, so (the buddies merging eagerly) the same blocks */
	CHECK(memcmp(owner, owner_at_start, sizeof owner) == 0);
	for (unsigned o = 0; o < PMM_ORDERS; o++)
		CHECK_EQ_U64(pmm.c.free_blocks[o], pmm_at_start.free_blocks[o]);
}

/* Maps the fake memory, runs the cases, reports. */
static inline int run_cases(const char *name, void (*const cases[])(void), unsigned n)
{
	void *arena = mmap(at(ARENA_PHYS), ARENA_PAGES * PAGE_SIZE, PROT_READ | PROT_WRITE,
	                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
	meta = malloc(pmm_meta_bytes(MAX_PFN));
	if (arena != at(ARENA_PHYS) || !meta) {
		fprintf(stderr, "%s: cannot map the fake memory at 0x%" PRIx64 "\n", name, (uint64_t)ARENA_PHYS);
		return 1;
	}
	for (unsigned i = 0; i < n; i++)
		cases[i]();
	free(meta);
	munmap(arena, ARENA_PAGES * PAGE_SIZE);
	return check_summary(name);
}

#endif

/* The allocating code of the c-heap test kernel, in C (gcc -ffreestanding), through
 * acealloc.h's freestanding API: set-up, per-CPU workers, the timer tick, the final checks.
 * Every block carries a pattern derived from its address and a seed, checked before it is
 * freed; a wrong byte, a NULL where memory must be available or an unexpected statistic
 * counts as an error, which the Rust side of the kernel reports. */
#define ACEALLOC_FREESTANDING
#include <acealloc.h>

#include <stddef.h>
#include <stdint.h>

enum { MAX_CPUS = 64, KEPT = 64, TICK_KEPT = 8 };
/* MAX_CPUS - 1 is never a CPU of the test (it runs on 4): release() marks nothing. */

struct kept {
    unsigned char *p;
    size_t size;
    uint64_t seed;
};

static struct kept worker_kept[MAX_CPUS][KEPT];
static struct kept tick_kept[MAX_CPUS][TICK_KEPT];
static uint64_t tick_count[MAX_CPUS];
static uint64_t tick_errors[MAX_CPUS];

/* Misuse reports from checked mode: the kernel's hook records the last one. */
static volatile int misuse_kind;
static volatile uintptr_t misuse_addr;
static volatile unsigned misuse_count;

static void on_misuse(const struct acealloc_misuse *m) {
    misuse_kind = m->kind;
    misuse_addr = m->addr;
    misuse_count++;
}

static uint64_t next(uint64_t *s) {
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static unsigned char byte_at(uint64_t seed, size_t i) {
    return (unsigned char)(seed >> (i % 8 * 8)) ^ (unsigned char)(i * 131);
}

/* The bytes of a block that carry its pattern: the first and last 32 and every 61st in
 * between (every byte would leave the allocator a small share of the CPU's time, and the
 * timer few chances to land inside it). */
static size_t stepped(size_t i, size_t size) {
    return i < 32 || i + 32 >= size ? i + 1 : i + 61;
}

static void fill(unsigned char *p, size_t size, uint64_t seed) {
    for (size_t i = 0; i < size; i = stepped(i, size)) p[i] = byte_at(seed, i);
}

static int intact(const unsigned char *p, size_t size, uint64_t seed) {
    for (size_t i = 0; i < size; i = stepped(i, size))
        if (p[i] != byte_at(seed, i)) return 0;
    return 1;
}

/* Set while a CPU's worker is inside an allocator call: the ticks that find it set are the
 * ones that test interrupt masking. */
static volatile int in_allocator[MAX_CPUS];
static uint64_t ticks_inside[MAX_CPUS];
#define CALL(cpu, expr) (in_allocator[cpu] = 1, (expr))
#define DONE(cpu) (in_allocator[cpu] = 0)

/* Releases a kept block after checking it; returns the errors found. */
static uint64_t release_on(unsigned cpu, struct kept *k) {
    uint64_t errors = 0;
    if (k->p) {
        errors += !intact(k->p, k->size, k->seed);
        CALL(cpu, acealloc_free(k->p));
        DONE(cpu);
        k->p = 0;
    }
    return errors;
}

/* In a tick or after the timers stopped: no flag to set. */
static uint64_t release(struct kept *k) {
    return release_on(MAX_CPUS - 1, k);
}

static size_t pick_size(uint64_t *s) {
    uint64_t r = next(s);
    if (r % 64 == 0) return 33000 + (size_t)(r >> 16) % 100000; /* large path */
    return 1 + (size_t)(r >> 8) % ((r & 1) ? 256 : 4096);
}

/* acealloc_init on the first page of the region alone, too small for the metadata: returns
 * its result (-2, and nothing kept: c_heap_init follows on the whole region). */
int c_heap_init_too_small(const struct acealloc_platform *platform, void *region) {
    struct acealloc_config config = {ACEALLOC_BALANCED, 1, on_misuse};
    return acealloc_init(platform, region, 4096, &config);
}

/* Set-up: checked mode with the hook above, on the kernel's region, then ACE. Returns
 * acealloc_init's result, or -4 if ACE refused to start on the initialised allocator. */
int c_heap_init(const struct acealloc_platform *platform, void *region, size_t len) {
    struct acealloc_config config = {ACEALLOC_BALANCED, 1, on_misuse};
    int result = acealloc_init(platform, region, len, &config);
    if (result == 0 && acealloc_ace_start() != 0) return -4;
    return result;
}

/* Checked mode reports a double free and an interior free through the hook, with the
 * address, and drops them. Returns the errors found. */
int c_heap_misuse_reports(void) {
    int errors = 0;
    unsigned char *p = acealloc_malloc(48);
    if (!p) return 1;
    unsigned before = misuse_count;
    acealloc_free(p + 16);
    errors += misuse_count != before + 1 || misuse_kind != ACEALLOC_INVALID_FREE ||
              misuse_addr != (uintptr_t)(p + 16);
    acealloc_free(p);
    acealloc_free(p);
    errors += misuse_count != before + 2 || misuse_kind != ACEALLOC_DOUBLE_FREE ||
              misuse_addr != (uintptr_t)p;
    return errors;
}

/* One CPU's worker, interrupts on (the timer allocates on the same CPU meanwhile): mallocs,
 * callocs, aligned allocations and reallocs, each checked and freed, some kept across steps.
 * Returns the errors found. */
uint64_t c_heap_worker(unsigned cpu, uint64_t seed, uint64_t steps) {
    uint64_t s = seed | 1, errors = 0;
    struct kept *kept = worker_kept[cpu];
    for (uint64_t i = 0; i < steps; i++) {
        struct kept *k = &kept[next(&s) % KEPT];
        errors += release_on(cpu, k);
        size_t size = pick_size(&s);
        unsigned char *p;
        switch (next(&s) % 4) {
        case 0:
            p = CALL(cpu, acealloc_calloc(1, size));
            DONE(cpu);
            if (p)
                for (size_t j = 0; j < size; j = stepped(j, size)) errors += p[j] != 0;
            break;
        case 1: {
            size_t align = (size_t)16 << (next(&s) % 9); /* 16 B .. 4 KiB */
            p = CALL(cpu, acealloc_aligned_alloc(align, size));
            DONE(cpu);
            errors += p && (uintptr_t)p % align != 0;
            break;
        }
        case 2: {
            /* Grow a block in steps; its contents must follow. */
            p = CALL(cpu, acealloc_malloc(8));
            DONE(cpu);
            if (p) fill(p, 8, s);
            size_t have = 8;
            while (p && have < size) {
                size_t want = have * 3 + 1 < size ? have * 3 + 1 : size;
                unsigned char *q = CALL(cpu, acealloc_realloc(p, want));
                DONE(cpu);
                if (!q) break;
                errors += !intact(q, have, s);
                fill(q, want, s);
                p = q;
                have = want;
            }
            size = have;
            break;
        }
        default:
            p = CALL(cpu, acealloc_malloc(size));
            DONE(cpu);
            break;
        }
        if (!p) {
            errors++;
            continue;
        }
        errors += CALL(cpu, acealloc_usable_size(p)) < size;
        DONE(cpu);
        k->p = p;
        k->size = size;
        k->seed = next(&s);
        fill(p, size, k->seed);
    }
    for (int j = 0; j < KEPT; j++) errors += release_on(cpu, &kept[j]);
    return errors;
}

/* The timer tick on `cpu` (interrupts masked, possibly inside an allocator call of the
 * interrupted worker): ticks ACE, allocates and frees a few blocks, replaces one kept block,
 * and every 16th tick returns idle memory. */
void c_heap_tick(unsigned cpu) {
    uint64_t n = ++tick_count[cpu];
    if (in_allocator[cpu]) ticks_inside[cpu]++;
    uint64_t s = n * 0x9E3779B97F4A7C15ull + cpu;
    acealloc_ace_tick();
    static const size_t sizes[] = {24, 200, 1500};
    for (int i = 0; i < 3; i++) {
        unsigned char *p = acealloc_malloc(sizes[i]);
        if (!p) {
            tick_errors[cpu]++;
            continue;
        }
        fill(p, sizes[i], s + (uint64_t)i);
        tick_errors[cpu] += !intact(p, sizes[i], s + (uint64_t)i);
        acealloc_free(p);
    }
    struct kept *k = &tick_kept[cpu][n % TICK_KEPT];
    tick_errors[cpu] += release(k);
    k->size = n % 64 == 0 ? 40000 : 16 + (size_t)(s >> 20) % 900;
    k->p = acealloc_malloc(k->size);
    k->seed = s;
    if (k->p) fill(k->p, k->size, s); else tick_errors[cpu]++;
    if (n % 16 == 0) acealloc_maintain(UINT64_MAX);
}

/* Ticks `cpu` handled, and the errors its ticks found. */
uint64_t c_heap_ticks(unsigned cpu) { return tick_count[cpu]; }
uint64_t c_heap_tick_errors(unsigned cpu) { return tick_errors[cpu]; }
uint64_t c_heap_ticks_inside(unsigned cpu) { return ticks_inside[cpu]; }

/* After the timers stopped: frees what the ticks kept; then every block is back (no live
 * bytes, allocations and frees balance) and every CPU has a cache. Returns the errors found. */
uint64_t c_heap_finish(unsigned cpus) {
    uint64_t errors = 0;
    for (unsigned c = 0; c < cpus && c < MAX_CPUS; c++)
        for (int j = 0; j < TICK_KEPT; j++) errors += release(&tick_kept[c][j]);
    struct acealloc_stats st;
    acealloc_stats(&st);
    errors += st.live_bytes != 0;
    errors += st.small_allocs != st.small_frees;
    errors += st.large_allocs != st.large_frees;
    errors += st.cpus != cpus;
    return errors;
}

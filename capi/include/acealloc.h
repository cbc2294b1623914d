/* acealloc.h: acealloc for C programs and C kernels.
 *
 * Hosted (libacealloc.so / libacealloc.a, the default build): the C library's malloc family is
 * replaced, so a program allocates through acealloc once it is linked with -lacealloc or run
 * with LD_PRELOAD=libacealloc.so. Settings come from the environment (ACEALLOC_PROFILE,
 * ACEALLOC_CHECKS, ACEALLOC_DECOMMIT, ACEALLOC_RESERVE_GB, ..., ACEALLOC_ACE: see the Rust
 * crate's `hosted` and `ace::ticker` modules), read on the first allocation. With
 * ACEALLOC_CHECKS=1, a double free, an invalid free (a pointer that does not start a live
 * block), a use after free (realloc or malloc_usable_size of a freed block) or a layout
 * mismatch (free_sized with another size) prints
 *     acealloc: <kind> of <address> ...
 * on stderr and aborts. `fork` is safe while other threads allocate.
 *
 * Freestanding (libacealloc.a built with --no-default-features for x86_64-unknown-none, or
 * linked into a Rust kernel as the acealloc-capi crate): define ACEALLOC_FREESTANDING before
 * including this header. The kernel calls acealloc_init once with its platform and a memory
 * region, then acealloc_malloc/free/...; its timer interrupt may call acealloc_maintain and
 * acealloc_ace_tick on every CPU.
 *
 * Blocks carry no header: free() finds a block's size class or page run through the
 * allocator's page map. */
#ifndef ACEALLOC_H
#define ACEALLOC_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* A statistics snapshot. */
struct acealloc_stats {
    size_t live_bytes;       /* with the user: block sizes, large blocks in whole pages */
    size_t large_live_bytes; /* of those, in large blocks */
    size_t committed_bytes;  /* taken from the provider: slabs, large blocks, metadata */
    size_t retained_bytes;   /* of those, freed page runs kept for reuse */
    uint64_t small_allocs;   /* small-block allocations since start-up */
    uint64_t small_frees;
    uint64_t large_allocs;   /* large-block (page run) allocations since start-up */
    uint64_t large_frees;
    size_t cpus;             /* CPUs with a cache */
    size_t cached_bytes;     /* free blocks held by CPU caches (acealloc_maintain returns an
                                idle CPU's) */
};

/* Fills *out with the allocator's statistics. */
void acealloc_stats(struct acealloc_stats *out);

#ifndef ACEALLOC_FREESTANDING

/* The malloc family, as POSIX and glibc specify them: malloc(0) gives a unique block,
 * calloc's overflowing product and impossible sizes give NULL with errno ENOMEM,
 * aligned_alloc with an alignment that is not a power of two NULL with EINVAL,
 * posix_memalign returns EINVAL or ENOMEM, realloc(p, 0) frees p and returns NULL. These are
 * the usual declarations of <stdlib.h> and <malloc.h>; the two C23 sized frees go through
 * the allocator's sized path, which checked mode verifies. */
void *malloc(size_t size);
void free(void *p);
void *calloc(size_t n, size_t size);
void *realloc(void *p, size_t size);
void *reallocarray(void *p, size_t n, size_t size);
int posix_memalign(void **out, size_t align, size_t size);
void *aligned_alloc(size_t align, size_t size);
void *memalign(size_t align, size_t size);
void *valloc(size_t size);
void *pvalloc(size_t size);
size_t malloc_usable_size(void *p);
void free_sized(void *p, size_t size);
void free_aligned_sized(void *p, size_t align, size_t size);

/* Returns cached and empty memory to the system. */
void acealloc_trim(void);

#else /* ACEALLOC_FREESTANDING */

/* The kernel's platform. The contract: between irq_save() and the matching irq_restore() on a
 * CPU, nothing else runs with that CPU's current_cpu() index (no preemption, no migration;
 * interrupts masked), so the allocator's per-CPU caches need no lock and an interrupt handler
 * may allocate. current_cpu() < cpu_count. */
struct acealloc_platform {
    uint32_t cpu_count;
    uint32_t (*current_cpu)(void);
    uintptr_t (*irq_save)(void);
    void (*irq_restore)(uintptr_t state);
    uint64_t (*now)(void); /* monotonic */
    uint64_t clock_hz;     /* now()'s units per second (ACE's intervals) */
};

enum acealloc_misuse_kind {
    ACEALLOC_DOUBLE_FREE = 1,
    ACEALLOC_INVALID_FREE = 2,
    ACEALLOC_USE_AFTER_FREE = 3,
    ACEALLOC_LAYOUT_MISMATCH = 4,
};

/* A misuse checked mode found: the pointer passed in, and the size and alignment passed
 * with it (0 and 0 when none was, as with acealloc_free). */
struct acealloc_misuse {
    int kind; /* enum acealloc_misuse_kind */
    uintptr_t addr;
    size_t size;
    size_t align;
};

enum acealloc_profile { ACEALLOC_FAST = 0, ACEALLOC_BALANCED = 1, ACEALLOC_LEAN = 2 };

struct acealloc_config {
    int profile; /* enum acealloc_profile */
    int checks;  /* non-zero: checked mode */
    /* Called for each misuse found (the call is then dropped); NULL: the allocator panics. */
    void (*misuse)(const struct acealloc_misuse *misuse);
};

/* Hands the allocator its platform and [region, region + len), which it owns from now on
 * (page-aligned inward). config may be NULL (BALANCED, no checks). Returns 0, -1 if already
 * initialised, -2 if the region cannot hold the allocator's metadata (nothing is kept: call it
 * again with a larger region), -3 for bad arguments (NULL platform or region, cpu_count or
 * clock_hz 0). Call it alone: at boot, before any other acealloc call and concurrent with
 * none. Until it succeeds, allocations return NULL and the other calls do nothing. */
int acealloc_init(const struct acealloc_platform *platform, void *region, size_t len,
                  const struct acealloc_config *config);

/* As malloc, calloc, aligned_alloc (NULL unless align is a power of two), free, realloc and
 * malloc_usable_size; NULL on failure (there is no errno). Callable from interrupt handlers. */
void *acealloc_malloc(size_t size);
void *acealloc_calloc(size_t n, size_t size);
void *acealloc_aligned_alloc(size_t align, size_t size);
void acealloc_free(void *p);
void *acealloc_realloc(void *p, size_t size);
size_t acealloc_usable_size(const void *p);

/* Timer work, fit for interrupt context (no allocation, locks only tried, bounded):
 * acealloc_maintain returns idle memory: this CPU's cache if it did no allocator work for
 * the purge delay (the profile's: FAST 10 s, BALANCED 1 s, LEAN 50 ms, in clock_hz units),
 * empty slabs beyond the profile's reserve, and the page runs unused for the purge delay;
 * it stops once now() reaches deadline (UINT64_MAX: none) and returns the pages decommitted.
 * Call it from every CPU's timer. acealloc_ace_tick ticks ACE, the adaptive controller, once
 * acealloc_ace_start (not from an interrupt; 0, or -1 before acealloc_init) switched it on:
 * call it from every CPU's timer too. */
size_t acealloc_maintain(uint64_t deadline);
int acealloc_ace_start(void);
void acealloc_ace_tick(void);

#endif /* ACEALLOC_FREESTANDING */

#ifdef __cplusplus
}
#endif

#endif /* ACEALLOC_H */

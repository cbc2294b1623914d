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

#endif /* !ACEALLOC_FREESTANDING */

#ifdef __cplusplus
}
#endif

#endif /* ACEALLOC_H */

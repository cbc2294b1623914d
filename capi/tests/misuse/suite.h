/* Shared by the misuse suite's programs (run by `cargo xtask misuse`).
 *
 * Each program's first line says what must happen:
 *   expect: ok              exit status 0, nothing reported
 *   expect: <kind>          the allocator reports <kind> ("double free", "invalid free",
 *                           "use after free", "layout mismatch") for the address the program
 *                           announced with target(), then the process aborts (SIGABRT)
 * Misuse programs run with ACEALLOC_CHECKS=1; edge-case programs with checks on and off. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The address the next call misuses, for the runner to find in the report. */
static inline void target(const void *p) {
    fprintf(stderr, "target %p\n", p);
    fflush(stderr);
}

/* A misuse program reaching its end was not stopped. */
static inline int survived(void) {
    fprintf(stderr, "survived the misuse\n");
    return 0;
}

#define CHECK(cond)                                                                      \
    do {                                                                                 \
        if (!(cond)) {                                                                   \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);     \
            exit(1);                                                                     \
        }                                                                                \
    } while (0)

/* C23's sized frees, which the C library's headers may not declare yet (libacealloc has them). */
void free_sized(void *p, size_t size);
void free_aligned_sized(void *p, size_t align, size_t size);

/* Keeps the compiler from pairing or dropping allocation calls. */
static void *volatile sink;

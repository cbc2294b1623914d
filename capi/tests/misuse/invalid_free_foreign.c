// expect: invalid free
/* A block of the C library's own allocator, which stays in the process under acealloc. */
#include "suite.h"
extern void *__libc_malloc(size_t);
int main(void) {
    char *p = __libc_malloc(64);
    CHECK(p);
    target(p);
    free(p);
    return survived();
}

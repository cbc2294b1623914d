// expect: ok
#include <malloc.h>
#include <unistd.h>
#include "suite.h"
int main(void) {
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    /* glibc's memalign rounds an alignment that is not a power of two up to one. */
    char *p = memalign(48, 100);
    CHECK(p && (uintptr_t)p % 64 == 0);
    free(p);
    p = memalign(8192, 10);
    CHECK(p && (uintptr_t)p % 8192 == 0);
    CHECK(malloc_usable_size(p) >= 10);
    free(p);
    p = valloc(10);
    CHECK(p && (uintptr_t)p % page == 0);
    free(p);
    p = pvalloc(10);
    CHECK(p && (uintptr_t)p % page == 0 && malloc_usable_size(p) >= page);
    memset(p, 3, page);
    free(p);
    errno = 0;
    CHECK(pvalloc(SIZE_MAX - 10) == NULL && errno == ENOMEM);
    return 0;
}

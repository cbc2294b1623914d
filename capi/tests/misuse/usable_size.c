// expect: ok
/* malloc_usable_size is at least the request, and every usable byte may be written. */
#include <malloc.h>
#include "suite.h"
int main(void) {
    CHECK(malloc_usable_size(NULL) == 0);
    for (size_t size = 0; size < 300000; size = size < 600 ? size + 1 : size * 9 / 8) {
        char *p = malloc(size);
        CHECK(p);
        size_t usable = malloc_usable_size(p);
        CHECK(usable >= size);
        CHECK(usable < size + size / 4 + 4096 + 16);
        memset(p, 0x11, usable);
        char *q = realloc(p, usable); /* the same block: it already holds that much */
        CHECK(q == p);
        free(q);
    }
    return 0;
}

// expect: use after free
#include <malloc.h>
#include "suite.h"
int main(void) {
    char *p = malloc(24);
    CHECK(p);
    free(p);
    target(p);
    size_t n = malloc_usable_size(p);
    fprintf(stderr, "usable size %zu\n", n);
    return survived();
}

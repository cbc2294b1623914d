// expect: ok
#include "suite.h"
int main(void) {
    size_t sizes[] = {SIZE_MAX, SIZE_MAX - 4096, (size_t)1 << 62, (size_t)1 << 48};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        errno = 0;
        CHECK(malloc(sizes[i]) == NULL);
        CHECK(errno == ENOMEM);
    }
    /* A failed realloc leaves the block as it was. */
    char *p = malloc(100);
    CHECK(p);
    memset(p, 7, 100);
    errno = 0;
    CHECK(realloc(p, (size_t)1 << 62) == NULL);
    CHECK(errno == ENOMEM);
    for (int i = 0; i < 100; i++) CHECK(p[i] == 7);
    free(p);
    /* The allocator still serves after failing. */
    p = malloc(1 << 20);
    CHECK(p);
    free(p);
    return 0;
}

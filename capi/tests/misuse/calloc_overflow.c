// expect: ok
#include "suite.h"
int main(void) {
    size_t pairs[][2] = {{SIZE_MAX / 2 + 2, 2}, {(size_t)1 << 32, (size_t)1 << 32},
                         {SIZE_MAX, SIZE_MAX}, {3, SIZE_MAX / 3 + 1}};
    for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++) {
        errno = 0;
        CHECK(calloc(pairs[i][0], pairs[i][1]) == NULL);
        CHECK(errno == ENOMEM);
    }
    /* A product that fits is served, and zero elements give a unique block. */
    char *p = calloc(1000, 1000);
    CHECK(p && p[999999] == 0);
    free(p);
    void *z = calloc(0, 16);
    CHECK(z);
    free(z);
    return 0;
}

// expect: ok
/* Contents survive growth and shrinkage across classes and into and out of large runs;
 * reallocarray overflows to ENOMEM and leaves the block. */
#include "suite.h"
int main(void) {
    size_t steps[] = {1, 17, 100, 5000, 40000, 300000, 2000000, 70000, 1000, 8, 3000000};
    unsigned char *p = NULL;
    size_t have = 0;
    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
        unsigned char *q = realloc(p, steps[i]);
        CHECK(q);
        size_t keep = have < steps[i] ? have : steps[i];
        for (size_t k = 0; k < keep; k++) CHECK(q[k] == (unsigned char)(k * 13));
        for (size_t k = 0; k < steps[i]; k++) q[k] = (unsigned char)(k * 13);
        p = q;
        have = steps[i];
    }
    errno = 0;
    CHECK(reallocarray(p, SIZE_MAX / 2, 3) == NULL && errno == ENOMEM);
    CHECK(p[12345] == (unsigned char)(12345 * 13));
    unsigned char *r = reallocarray(p, 1000, 10);
    CHECK(r);
    free(r);
    return 0;
}

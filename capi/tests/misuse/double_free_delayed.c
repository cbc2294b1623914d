// expect: double free
/* The second free comes after many allocations and frees of other sizes (a 64-byte block's
 * slot is not handed out again by them), small and large. */
#include "suite.h"
int main(void) {
    char *p = malloc(64);
    CHECK(p);
    free(p);
    void *keep[256] = {0};
    for (int i = 0; i < 100000; i++) {
        size_t size = 100 + (size_t)(i * 7919) % 5000;
        if (i % 97 == 0) size = 40000 + (size_t)i % 100000;
        int slot = (i * 31) % 256;
        free(keep[slot]);
        keep[slot] = malloc(size);
        CHECK(keep[slot]);
    }
    for (int i = 0; i < 256; i++) free(keep[i]);
    target(p);
    free(p);
    return survived();
}

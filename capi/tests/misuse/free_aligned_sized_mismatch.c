// expect: layout mismatch
/* 100 bytes at 64-byte alignment are a 128-byte block; freed as 100 bytes at 16 they would
 * be a 112-byte one. */
#include "suite.h"
int main(void) {
    char *p = aligned_alloc(64, 100);
    CHECK(p);
    target(p);
    free_aligned_sized(p, 16, 100);
    return survived();
}

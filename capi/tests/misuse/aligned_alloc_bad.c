// expect: ok
#include "suite.h"
int main(void) {
    size_t bad[] = {0, 3, 24, 48, 100, 4095, SIZE_MAX};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        errno = 0;
        CHECK(aligned_alloc(bad[i], 96) == NULL);
        CHECK(errno == EINVAL);
    }
    for (size_t align = 1; align <= ((size_t)1 << 20); align *= 2) {
        char *p = aligned_alloc(align, 3 * align);
        CHECK(p && (uintptr_t)p % align == 0);
        memset(p, 2, 3 * align);
        free(p);
    }
    return 0;
}

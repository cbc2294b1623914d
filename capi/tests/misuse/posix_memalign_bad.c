// expect: ok
#include "suite.h"
int main(void) {
    size_t bad[] = {0, 1, 2, 4, 3, 24, 48, 4097, SIZE_MAX};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        void *p = (void *)0x1234;
        errno = 0;
        CHECK(posix_memalign(&p, bad[i], 64) == EINVAL);
        CHECK(p == (void *)0x1234); /* untouched on failure */
        CHECK(errno == 0);          /* the result is the return value, not errno */
    }
    for (size_t align = sizeof(void *); align <= ((size_t)1 << 22); align *= 2) {
        size_t sizes[] = {0, 1, align - 1, align, 3 * align + 5, 40000};
        for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
            void *p = NULL;
            CHECK(posix_memalign(&p, align, sizes[i]) == 0);
            CHECK(p && (uintptr_t)p % align == 0);
            memset(p, 1, sizes[i]);
            free(p);
        }
    }
    void *p = (void *)0x1234;
    CHECK(posix_memalign(&p, 64, (size_t)1 << 62) == ENOMEM);
    CHECK(p == (void *)0x1234);
    return 0;
}

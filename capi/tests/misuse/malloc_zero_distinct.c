// expect: ok
#include "suite.h"
static int cmp(const void *a, const void *b) {
    uintptr_t x = *(const uintptr_t *)a, y = *(const uintptr_t *)b;
    return (x > y) - (x < y);
}
int main(void) {
    enum { N = 10000 };
    static uintptr_t ptrs[N];
    for (int i = 0; i < N; i++) {
        void *p = malloc(0);
        CHECK(p != NULL && (uintptr_t)p % 16 == 0);
        ptrs[i] = (uintptr_t)p;
    }
    qsort(ptrs, N, sizeof ptrs[0], cmp);
    for (int i = 1; i < N; i++) CHECK(ptrs[i] != ptrs[i - 1]);
    for (int i = 0; i < N; i++) free((void *)ptrs[i]);
    /* realloc(NULL, 0) is malloc(0); realloc(p, 0) frees p and gives NULL (glibc). */
    void *p = realloc(NULL, 0);
    CHECK(p);
    CHECK(realloc(p, 0) == NULL);
    free(NULL);
    return 0;
}

// expect: double free
#include "suite.h"
int main(void) {
    void *p = NULL;
    CHECK(posix_memalign(&p, 4096, 100) == 0);
    free(p);
    target(p);
    free(p);
    return survived();
}

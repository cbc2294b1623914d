// expect: double free
#include "suite.h"
int main(void) {
    char *p = malloc(1 << 20);
    CHECK(p);
    memset(p, 1, 1 << 20);
    free(p);
    target(p);
    free(p);
    return survived();
}

// expect: invalid free
/* Inside the first page of a large block, whose page-map entry says "large block". */
#include "suite.h"
int main(void) {
    char *p = malloc(1 << 20);
    CHECK(p);
    target(p + 64);
    free(p + 64);
    return survived();
}

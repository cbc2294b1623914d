// expect: invalid free
/* Two pages into a large block: a page with no page-map entry of its own. */
#include "suite.h"
int main(void) {
    char *p = malloc(100000);
    CHECK(p);
    target(p + 8192);
    free(p + 8192);
    return survived();
}

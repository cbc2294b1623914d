// expect: invalid free
/* Not the start of a block: an invalid free whatever size comes with it (here the size of
 * another class, which must not make it a layout mismatch). */
#include "suite.h"
int main(void) {
    char *p = malloc(64);
    CHECK(p);
    target(p + 16);
    free_sized(p + 16, 500);
    return survived();
}

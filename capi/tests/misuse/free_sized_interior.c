// expect: invalid free
/* Not the start of a block: an invalid free whatever size comes with it, even the size that
 * the surrounding block's class would match. */
#include "suite.h"
void free_sized(void *, size_t);
int main(void) {
    char *p = malloc(64);
    CHECK(p);
    target(p + 16);
    free_sized(p + 16, 64);
    return survived();
}

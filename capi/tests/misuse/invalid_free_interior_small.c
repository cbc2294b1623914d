// expect: invalid free
#include "suite.h"
int main(void) {
    char *p = malloc(64);
    CHECK(p);
    target(p + 16);
    free(p + 16);
    return survived();
}

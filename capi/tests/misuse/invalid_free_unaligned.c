// expect: invalid free
#include "suite.h"
int main(void) {
    char *p = malloc(4000);
    CHECK(p);
    target(p + 1);
    free(p + 1);
    return survived();
}

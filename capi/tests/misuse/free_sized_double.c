// expect: double free
#include "suite.h"
int main(void) {
    char *p = malloc(64);
    CHECK(p);
    free_sized(p, 64);
    target(p);
    free_sized(p, 64);
    return survived();
}

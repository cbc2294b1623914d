// expect: layout mismatch
#include "suite.h"
int main(void) {
    char *p = malloc(100000);
    CHECK(p);
    target(p);
    free_sized(p, 300000);
    return survived();
}

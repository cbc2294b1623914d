// expect: use after free
#include "suite.h"
int main(void) {
    char *p = malloc(200000);
    CHECK(p);
    free(p);
    target(p);
    sink = realloc(p, 10);
    return survived();
}

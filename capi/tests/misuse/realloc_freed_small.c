// expect: use after free
#include "suite.h"
int main(void) {
    char *p = malloc(100);
    CHECK(p);
    free(p);
    target(p);
    sink = realloc(p, 300);
    return survived();
}

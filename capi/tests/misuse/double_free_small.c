// expect: double free
#include "suite.h"
int main(void) {
    char *p = malloc(40);
    CHECK(p);
    free(p);
    target(p);
    free(p);
    return survived();
}

// expect: layout mismatch
#include "suite.h"
void free_sized(void *, size_t);
int main(void) {
    char *p = malloc(100000);
    CHECK(p);
    target(p);
    free_sized(p, 300000);
    return survived();
}

// expect: invalid free
/* A page mapped by the program itself. */
#include <sys/mman.h>
#include "suite.h"
int main(void) {
    char *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(p != MAP_FAILED);
    target(p);
    free(p);
    return survived();
}

// expect: invalid free
#include "suite.h"
int main(void) {
    char local[64];
    memset(local, 0, sizeof local);
    target(local);
    free(local);
    return survived();
}

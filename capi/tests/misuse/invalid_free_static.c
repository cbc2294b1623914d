// expect: invalid free
#include "suite.h"
static char global[4096];
int main(void) {
    target(global);
    free(global);
    return survived();
}

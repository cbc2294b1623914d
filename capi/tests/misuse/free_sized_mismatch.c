// expect: layout mismatch
/* C23's free_sized goes through the sized Rust API (Allocator::dealloc with a Layout): a
 * size of another class is a layout mismatch. */
#include "suite.h"
int main(void) {
    char *p = malloc(24);
    CHECK(p);
    target(p);
    free_sized(p, 500);
    return survived();
}

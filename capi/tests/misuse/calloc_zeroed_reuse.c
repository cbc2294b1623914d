// expect: ok
/* Blocks dirtied and freed come back zeroed from calloc, small and large. */
#include "suite.h"
int main(void) {
    size_t sizes[] = {16, 48, 100, 1000, 4096, 30000, 100000, 1 << 20};
    for (int round = 0; round < 20; round++) {
        for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
            char *blocks[32];
            for (int j = 0; j < 32; j++) {
                blocks[j] = malloc(sizes[i]);
                CHECK(blocks[j]);
                memset(blocks[j], 0xA5, sizes[i]);
            }
            for (int j = 0; j < 32; j++) free(blocks[j]);
            for (int j = 0; j < 32; j++) {
                blocks[j] = calloc(1, sizes[i]);
                CHECK(blocks[j]);
                for (size_t k = 0; k < sizes[i]; k++) CHECK(blocks[j][k] == 0);
                memset(blocks[j], 0x5A, sizes[i]);
            }
            for (int j = 0; j < 32; j++) free(blocks[j]);
        }
    }
    return 0;
}

// expect: ok
/* fork while other threads allocate: the child must find no allocator lock held by a thread
 * it does not have (pthread_atfork takes them all around fork). */
#include <pthread.h>
#include <sys/wait.h>
#include <unistd.h>
#include "suite.h"
static volatile int stop;
static void *churn(void *arg) {
    unsigned seed = (unsigned)(uintptr_t)arg;
    void *keep[64] = {0};
    while (!stop) {
        seed = seed * 1103515245 + 12345;
        int slot = (seed >> 8) % 64;
        free(keep[slot]);
        size_t size = (seed >> 4) % 3 == 0 ? 40000 + (seed % 200000) : 16 + (seed % 3000);
        keep[slot] = malloc(size);
    }
    for (int i = 0; i < 64; i++) free(keep[i]);
    return NULL;
}
int main(void) {
    pthread_t threads[4];
    for (int i = 0; i < 4; i++) pthread_create(&threads[i], NULL, churn, (void *)(uintptr_t)(i + 1));
    for (int round = 0; round < 200; round++) {
        pid_t pid = fork();
        CHECK(pid >= 0);
        if (pid == 0) {
            /* Small and large blocks, every class's locks. */
            for (int i = 0; i < 2000; i++) {
                void *p = malloc((size_t)(16 + (i * 37) % 50000));
                if (!p) _exit(2);
                free(p);
            }
            _exit(0);
        }
        int status;
        CHECK(waitpid(pid, &status, 0) == pid);
        CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    }
    stop = 1;
    for (int i = 0; i < 4; i++) pthread_join(threads[i], NULL);
    return 0;
}

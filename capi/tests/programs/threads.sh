#!/usr/bin/env bash
# A multi-threaded C program (threads.c): 8 threads pass malloc'd messages to each other
# through queues, grow buffers with realloc and free what others allocated. Prints the
# checksums each thread computed.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cd "$1"
command -v gcc >/dev/null || { echo "gcc is missing" >&2; exit 1; }
gcc -O2 -Wall -pthread -o threads "$here/threads.c"
./threads

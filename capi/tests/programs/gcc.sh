#!/usr/bin/env bash
# gcc compiling a generated 9-file C program (-O2, each file separately, then linked), then
# running it. Prints the program's output and a checksum of every object file.
set -euo pipefail
cd "$1"
command -v gcc >/dev/null || { echo "gcc is missing" >&2; exit 1; }
files=8
for n in $(seq 0 $((files - 1))); do
  {
    echo "#include <stdio.h>"
    echo "#include <string.h>"
    echo "struct rec$n { int a[8]; double d; char s[24]; };"
    for f in $(seq 0 20); do
      echo "static int helper${n}_$f(int x) {"
      echo "  struct rec$n r; memset(&r, 0, sizeof r);"
      echo "  for (int i = 0; i < 8; i++) r.a[i] = x * $((f + 1)) + i * $((n + 3));"
      echo "  snprintf(r.s, sizeof r.s, \"%d-%d\", x, $f);"
      echo "  int sum = 0; for (int i = 0; i < 8; i++) sum += r.a[i] ^ (int)strlen(r.s);"
      echo "  return sum % 100003;"
      echo "}"
    done
    echo "int unit$n(int x) {"
    echo "  int acc = $n;"
    for f in $(seq 0 20); do echo "  acc = (acc * 31 + helper${n}_$f(x + $f)) % 1000003;"; done
    echo "  return acc;"
    echo "}"
  } > "unit$n.c"
done
{
  echo "#include <stdio.h>"
  for n in $(seq 0 $((files - 1))); do echo "int unit$n(int);"; done
  echo "int main(void) {"
  echo "  for (int x = 0; x < 5; x++) {"
  for n in $(seq 0 $((files - 1))); do echo "    printf(\"unit$n(%d) = %d\\n\", x, unit$n(x));"; done
  echo "  }"
  echo "  return 0;"
  echo "}"
} > main.c
for src in unit*.c main.c; do gcc -O2 -Wall -c "$src"; done
gcc -o program unit*.o main.o
./program
sha256sum unit*.o main.o

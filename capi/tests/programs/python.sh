#!/usr/bin/env bash
# python3 with PYTHONMALLOC=malloc (every object through malloc) running part of its own test
# suite. The machine's /usr/bin/python3 is used when its `test` package holds the tests
# (Debian: libpython3.X-testsuite), else the first python3 on PATH that has them. Prints
# unittest's verbose report without its timing.
set -euo pipefail
cd "$1"
modules="test.test_json test.test_list test.test_dict test.test_collections test.test_heapq
  test.test_struct test.test_fractions test.test_csv test.test_textwrap test.test_re
  test.test_string test.test_ordered_dict test.test_enum test.test_array test.test_deque"
py=""
for candidate in /usr/bin/python3 $(which -a python3 2>/dev/null); do
  if "$candidate" -c 'import test.test_json, test.test_pickle' 2>/dev/null; then py="$candidate"; break; fi
done
if [ -z "$py" ]; then
  echo "no python3 with its test suite (Debian: apt-get install libpython3.X-testsuite)" >&2
  exit 1
fi
export PYTHONMALLOC=malloc PYTHONHASHSEED=0 PYTHONDONTWRITEBYTECODE=1
"$py" -m unittest -v $modules 2>&1 | sed -E 's/^(Ran [0-9]+ tests?) in [0-9.]+s$/\1/'

#!/usr/bin/env bash
# git: init, 100 commits over 20 files (fixed authors and dates, so every hash is the same in
# every run), branches and a merge, gc, then the log, an fsck and the object list.
set -euo pipefail
cd "$1"
command -v git >/dev/null || { echo "git is missing" >&2; exit 1; }
export HOME="$PWD" GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=/dev/null
export GIT_AUTHOR_NAME=acealloc GIT_AUTHOR_EMAIL=ci@acealloc GIT_COMMITTER_NAME=acealloc GIT_COMMITTER_EMAIL=ci@acealloc
git init -q -b main repo
cd repo
git config pack.threads 1
commit() {
  export GIT_AUTHOR_DATE="@$((1767225600 + $1)) +0000" GIT_COMMITTER_DATE="@$((1767225600 + $1)) +0000"
  git add -A
  git commit -q -m "commit $1"
}
for i in $(seq 1 100); do
  if [ $((i % 100)) -eq 50 ]; then git checkout -q -b "topic$i"; fi
  if [ $((i % 100)) -eq 70 ]; then
    git checkout -q main
    export GIT_AUTHOR_DATE="@$((1767225600 + i)) +0000" GIT_COMMITTER_DATE="@$((1767225600 + i)) +0000"
    git merge -q --no-edit -s ours "topic$((i - 20))"
  fi
  seq "$i" $((i + i % 50)) | awk -v i="$i" '{ print "line", $1, i * $1 }' >> "file$((i * 7 % 20)).txt"
  commit "$i"
done
git gc -q
git log --all --stat --format='%H %p %s' | head -2000
git fsck --no-progress 2>&1
git cat-file --batch-all-objects --batch-check | sort

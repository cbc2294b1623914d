#!/usr/bin/env bash
# sqlite3 on a generated database: bulk and single-row inserts, indexes, joins, aggregates,
# updates, deletes, VACUUM and an integrity check. Prints every query's result.
set -euo pipefail
cd "$1"
command -v sqlite3 >/dev/null || { echo "sqlite3 is missing (Debian: apt-get install sqlite3)" >&2; exit 1; }
{
  cat <<'SQL'
PRAGMA journal_mode = DELETE;
CREATE TABLE item(id INTEGER PRIMARY KEY, k INTEGER, name TEXT, body TEXT);
WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 40000)
INSERT INTO item SELECT x, (x * 7919) % 10007, printf('name-%08d', (x * 2654435761) % 1000003),
  substr(printf('%.*c', 1 + x % 300, 'x') || hex(x * x), 1, 400) FROM c;
CREATE TABLE tag(item INTEGER, tag TEXT);
SQL
  echo "BEGIN;"
  seq 1 20000 | awk '{ printf "INSERT INTO tag VALUES(%d, '\''tag-%d'\'');\n", ($1 * 31) % 40000 + 1, $1 % 97 }'
  echo "COMMIT;"
  cat <<'SQL'
CREATE INDEX item_k ON item(k);
CREATE INDEX item_name ON item(name);
CREATE INDEX tag_tag ON tag(tag, item);
SELECT count(*), sum(k), max(length(body)) FROM item;
SELECT k, count(*), min(name), max(name) FROM item GROUP BY k ORDER BY count(*) DESC, k LIMIT 20;
SELECT t.tag, count(*), sum(i.k) FROM tag t JOIN item i ON i.id = t.item GROUP BY t.tag ORDER BY t.tag LIMIT 30;
SELECT name FROM item WHERE name LIKE 'name-0000%' ORDER BY name LIMIT 25;
SELECT group_concat(name, ',') FROM (SELECT name FROM item WHERE k = 42 ORDER BY id);
UPDATE item SET body = upper(body) || name WHERE k % 3 = 0;
DELETE FROM item WHERE k % 5 = 1;
SELECT count(*), sum(length(body)) FROM item;
VACUUM;
PRAGMA integrity_check;
SELECT k % 10, count(*), avg(length(body)) FROM item GROUP BY k % 10 ORDER BY 1;
SQL
} > workload.sql
sqlite3 db.sqlite < workload.sql

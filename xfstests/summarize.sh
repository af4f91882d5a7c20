#!/usr/bin/env bash
# Turns an xfstests ./check log into passed / failed / not run lists, by test.
#   xfstests/summarize.sh results/check-XXXX.log
set -euo pipefail
log=$1
pass=$(grep -E '^[a-z]+/[0-9]+ +[0-9]+s' "$log" | grep -v -E 'not run|\[expunged\]' | awk '{print $1}' | sort -u || true)
notrun=$(grep -E '^[a-z]+/[0-9]+ +.*\[not run\]' "$log" | awk '{print $1}' | sort -u || true)
failed=$( (grep -E '^Failures:' "$log" | sed 's/^Failures: //' | tr ' ' '\n';
	grep -E '^[a-z]+/[0-9]+ .*(output mismatch|\[failed|_check_)' "$log" | awk '{print $1}') | sed '/^$/d' | sort -u || true)
# A test listed as failed is not a pass even if its line carried a time.
pass=$(comm -23 <(echo "$pass" | sed '/^$/d') <(echo "$failed" | sed '/^$/d') || true)
count() { echo "$1" | sed '/^$/d' | wc -l; }
echo "passed: $(count "$pass")  failed: $(count "$failed")  not run: $(count "$notrun")"
echo; echo "== failed"; echo "$failed"
echo; echo "== passed"; echo "$pass" | tr '\n' ' '; echo
echo; echo "== not run (reason)"
grep -E '^[a-z]+/[0-9]+ +.*\[not run\]' "$log" | sed -E 's/ +\[not run\] +/: /' || true

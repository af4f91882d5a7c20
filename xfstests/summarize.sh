#!/usr/bin/env bash
# Turns xfstests ./check logs into passed / failed / not run lists, by test.
#   xfstests/summarize.sh results/check-A.log [results/check-B.log ...]
# With several logs (a run split in parts, or failures re-run), a test's result in a later
# log replaces its result in an earlier one. Tests a log started but never finished (the
# run was stopped) count in none of the lists.
set -euo pipefail
[ $# -gt 0 ] || { echo "usage: summarize.sh LOG..." >&2; exit 1; }
awk '
function set(t, s, r) { st[t] = s; why[t] = r; if (!(t in seen)) { seen[t] = 1; order[n++] = t } }
/^[a-z]+\/[0-9]+ / {
	t = $1
	if ($0 ~ /\[not run\]/) { r = $0; sub(/^[^[]*\[not run\] */, "", r); set(t, "notrun", r) }
	else if ($0 ~ /\[expunged\]/) set(t, "excluded", "")
	else if ($0 ~ /output mismatch|\[failed|_check_/) set(t, "failed", "")
	else if ($0 ~ /^[a-z]+\/[0-9]+ +[0-9]+s/) set(t, "passed", "")
}
END {
	for (i = 0; i < n; i++) c[st[order[i]]]++
	printf "passed: %d  failed: %d  not run: %d  excluded: %d\n", c["passed"], c["failed"], c["notrun"], c["excluded"]
	split("failed passed", kinds, " ")
	for (k = 1; k <= 2; k++) {
		printf "\n== %s\n", kinds[k]
		for (i = 0; i < n; i++) if (st[order[i]] == kinds[k]) printf "%s ", order[i]
		printf "\n"
	}
	printf "\n== not run (reason)\n"
	for (i = 0; i < n; i++) if (st[order[i]] == "notrun") printf "%s: %s\n", order[i], why[order[i]]
}' "$@"

#!/usr/bin/env bash
# Runs ceph/s3-tests (checked out OUTSIDE this repository; none of it is committed) against
# a running KDSS gateway. Creates the suite's key pairs as users with kdss-cli, writes the
# suite config from ../shared/conformance/s3tests.conf.template, runs the core subset (or,
# with ALL=1, the whole functional suite: every file of s3tests/functional) and leaves in
# $OUT_DIR a JUnit file, a pass/fail list and each test's markers (markers.json, for
# tools/summarize.py).
#
#   S3TESTS_DIR=/tmp/s3-tests  S3_ENDPOINT=http://127.0.0.1:9000 \
#   KDSS_MASTERS=127.0.0.1:6700 KDSS_ACCESS_KEY=<admin> KDSS_SECRET_KEY=<admin secret> \
#   PYTHON=/tmp/s3venv/bin/python  bash s3gw/conformance/run.sh
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
shared="${SHARED_DIR:-$here/../../../shared/conformance}"
: "${S3TESTS_DIR:?checkout of ceph/s3-tests}"
: "${S3_ENDPOINT:?http://host:port}"
PY="${PYTHON:-python3}"
CLI="${KDSS_CLI:-kdss-cli}"
out="${OUT_DIR:-/tmp/s3tests-out}"
mkdir -p "$out"
hostport="${S3_ENDPOINT#http://}"
host="${hostport%:*}"
port="${hostport##*:}"

# The suite's users (main, alt, tenant) must exist with the template's keys.
conf_get() { awk -v s="[$1]" -v k="$2" '$0==s{f=1;next} /^\[/{f=0} f && $1==k {sub(/^[^=]*= */,""); print; exit}' "$shared/s3tests.conf.template"; }
# A user that exists already is fine; any other failure is shown (a run where every test
# errors with InvalidAccessKeyId is a run whose users were never created).
for sec in "s3 main" "s3 alt" "s3 tenant"; do
  ak=$(conf_get "$sec" access_key); sk=$(conf_get "$sec" secret_key)
  if ! msg=$("$CLI" user create "s3tests-${sec#s3 }" --key "$ak" --secret "$sk" --role user 2>&1); then
    case "$msg" in
      *exists*|*Exists*) ;;
      *) echo "warning: creating user s3tests-${sec#s3 }: $msg" >&2 ;;
    esac
  fi
done

sed -e "s/^host = .*/host = $host/" -e "s/^port = .*/port = $port/" \
  "$shared/s3tests.conf.template" > "$out/s3tests.conf"
export S3TEST_CONF="$out/s3tests.conf"

cd "$S3TESTS_DIR"
if [[ "${ALL:-0}" == 1 ]]; then
  tests=(s3tests/functional)
else
  mapfile -t tests < <(grep -v '^#' "$shared/s3-core-tests.txt" | grep -v '^$')
fi
set +e
MARKERS_JSON="$out/markers.json" PYTHONPATH="$here/tools${PYTHONPATH:+:$PYTHONPATH}" \
"$PY" -m pytest -p markdump -q -p no:cacheprovider -o junit_family=xunit1 \
  --junitxml="$out/junit.xml" -rA "${tests[@]}" > "$out/pytest.log" 2>&1
rc=$?
set -e
grep -E "^(PASSED|FAILED|ERROR|SKIPPED)" "$out/pytest.log" | sort > "$out/results.txt" || true
tail -1 "$out/pytest.log"
exit $rc

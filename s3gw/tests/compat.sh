#!/usr/bin/env bash
# Drives real S3 clients — aws cli, boto3, s3cmd (from PyPI) — against a running KDSS
# gateway: put, get, multipart (> 8 MiB), list with prefix and delimiter, presign, delete.
# Exits non-zero on the first mismatch.
#
# Environment: S3_ENDPOINT (http://host:port), AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
# optional S3_REGION (us-east-1). Example, against `kdss up`:
#   S3_ENDPOINT=http://127.0.0.1:9000 AWS_ACCESS_KEY_ID=... AWS_SECRET_ACCESS_KEY=... \
#     bash s3gw/tests/compat.sh
set -euo pipefail
: "${S3_ENDPOINT:?set S3_ENDPOINT=http://host:port}"
: "${AWS_ACCESS_KEY_ID:?set AWS_ACCESS_KEY_ID}"
: "${AWS_SECRET_ACCESS_KEY:?set AWS_SECRET_ACCESS_KEY}"
export AWS_DEFAULT_REGION="${S3_REGION:-us-east-1}"
export AWS_EC2_METADATA_DISABLED=true
HOSTPORT="${S3_ENDPOINT#http://}"
PY="${PYTHON:-python3}"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
RUN="$(date +%s)-$$"
passed=0
failed=0

fail() { echo "FAIL: $*" >&2; failed=$((failed + 1)); echo "$passed passed, $failed failed"; exit 1; }
ok() { echo "ok: $*"; passed=$((passed + 1)); }

head -c 100000 /dev/urandom > "$WORK/small.bin"
head -c $((20 * 1024 * 1024 + 12345)) /dev/urandom > "$WORK/big.bin"

# ---------------- aws cli ----------------
if command -v aws >/dev/null; then
  B="compat-aws-$RUN"
  A=(aws --endpoint-url "$S3_ENDPOINT")
  "${A[@]}" s3 mb "s3://$B" >/dev/null || fail "aws mb"
  "${A[@]}" s3 cp "$WORK/small.bin" "s3://$B/dir/small.bin" >/dev/null || fail "aws put"
  "${A[@]}" s3 cp "s3://$B/dir/small.bin" "$WORK/aws-small.out" >/dev/null || fail "aws get"
  cmp -s "$WORK/small.bin" "$WORK/aws-small.out" || fail "aws get content"
  ok "aws cli put/get"
  "${A[@]}" s3 cp "$WORK/big.bin" "s3://$B/dir/sub/big.bin" >/dev/null || fail "aws multipart put"
  etag=$("${A[@]}" s3api head-object --bucket "$B" --key dir/sub/big.bin --query ETag --output text)
  [[ "$etag" == *-* ]] || fail "aws multipart ETag $etag is not a multipart ETag"
  "${A[@]}" s3 cp "s3://$B/dir/sub/big.bin" "$WORK/aws-big.out" >/dev/null || fail "aws multipart get"
  cmp -s "$WORK/big.bin" "$WORK/aws-big.out" || fail "aws multipart content"
  ok "aws cli multipart ($etag)"
  "${A[@]}" s3 cp "$WORK/small.bin" "s3://$B/dir.txt" >/dev/null
  got=$("${A[@]}" s3api list-objects-v2 --bucket "$B" --prefix dir --delimiter / \
        --query '[Contents[].Key, CommonPrefixes[].Prefix]' --output json | tr -d ' \n')
  [[ "$got" == '[["dir.txt"],["dir/"]]' ]] || fail "aws list prefix+delimiter: $got"
  got=$("${A[@]}" s3api list-objects-v2 --bucket "$B" --prefix dir/ --delimiter / \
        --query '[Contents[].Key, CommonPrefixes[].Prefix]' --output json | tr -d ' \n')
  [[ "$got" == '[["dir/small.bin"],["dir/sub/"]]' ]] || fail "aws list dir/: $got"
  ok "aws cli list with prefix and delimiter"
  url=$("${A[@]}" s3 presign "s3://$B/dir/small.bin" --expires-in 120)
  curl -sf -o "$WORK/aws-presigned.out" "$url" || fail "aws presigned GET"
  cmp -s "$WORK/small.bin" "$WORK/aws-presigned.out" || fail "aws presigned content"
  ok "aws cli presign"
  "${A[@]}" s3 rm --recursive "s3://$B/" >/dev/null || fail "aws rm"
  n=$("${A[@]}" s3api list-objects-v2 --bucket "$B" --query 'length(Contents || `[]`)' --output text)
  [[ "$n" == 0 ]] || fail "aws objects left after rm: $n"
  "${A[@]}" s3 rb "s3://$B" >/dev/null || fail "aws rb"
  ok "aws cli delete"
else
  fail "aws cli not installed (pip install awscli)"
fi

# ---------------- boto3 ----------------
"$PY" - "$S3_ENDPOINT" "$WORK" "$RUN" <<'PYEOF' || fail "boto3"
import hashlib, sys, urllib.request
import boto3
from boto3.s3.transfer import TransferConfig
endpoint, work, run = sys.argv[1:4]
s3 = boto3.client("s3", endpoint_url=endpoint)
b = f"compat-boto3-{run}"
s3.create_bucket(Bucket=b)
small = open(f"{work}/small.bin", "rb").read()
big = open(f"{work}/big.bin", "rb").read()
s3.put_object(Bucket=b, Key="p/small.bin", Body=small, Metadata={"k": "v"})
o = s3.get_object(Bucket=b, Key="p/small.bin")
assert o["Body"].read() == small and o["Metadata"] == {"k": "v"}, "boto3 get"
print("ok: boto3 put/get")
s3.upload_file(f"{work}/big.bin", b, "p/q/big.bin",
               Config=TransferConfig(multipart_threshold=8 << 20, multipart_chunksize=8 << 20))
h = s3.head_object(Bucket=b, Key="p/q/big.bin")
assert h["ETag"].endswith('-3"'), h["ETag"]
assert s3.get_object(Bucket=b, Key="p/q/big.bin")["Body"].read() == big, "boto3 multipart content"
print("ok: boto3 multipart", h["ETag"])
s3.put_object(Bucket=b, Key="p.txt", Body=b"x")
r = s3.list_objects_v2(Bucket=b, Prefix="p", Delimiter="/")
keys = [c["Key"] for c in r.get("Contents", [])]
pre = [c["Prefix"] for c in r.get("CommonPrefixes", [])]
assert (keys, pre) == (["p.txt"], ["p/"]), (keys, pre)
r = s3.list_objects(Bucket=b, Prefix="p/", Delimiter="/")
assert [c["Key"] for c in r["Contents"]] == ["p/small.bin"] and [c["Prefix"] for c in r["CommonPrefixes"]] == ["p/q/"], r
print("ok: boto3 list v1/v2 with prefix and delimiter")
# SigV4 presigned URLs here (aws cli above exercised the legacy SigV2 form).
from botocore.config import Config
s3v4 = boto3.client("s3", endpoint_url=endpoint, config=Config(signature_version="s3v4"))
url = s3v4.generate_presigned_url("get_object", Params={"Bucket": b, "Key": "p/small.bin"}, ExpiresIn=60)
assert urllib.request.urlopen(url).read() == small, "presigned get"
url = s3v4.generate_presigned_url("put_object", Params={"Bucket": b, "Key": "p/presigned.bin"}, ExpiresIn=60)
req = urllib.request.Request(url, data=b"via presigned put", method="PUT")
urllib.request.urlopen(req).read()
assert s3.get_object(Bucket=b, Key="p/presigned.bin")["Body"].read() == b"via presigned put"
print("ok: boto3 presign get/put")
keys = [{"Key": k} for k in ["p/small.bin", "p/q/big.bin", "p.txt", "p/presigned.bin"]]
r = s3.delete_objects(Bucket=b, Delete={"Objects": keys})
assert len(r.get("Deleted", [])) == 4 and not r.get("Errors"), r
assert s3.list_objects_v2(Bucket=b)["KeyCount"] == 0
s3.delete_bucket(Bucket=b)
print("ok: boto3 delete_objects / delete_bucket")
PYEOF
passed=$((passed + 1))

# ---------------- s3cmd ----------------
if command -v s3cmd >/dev/null; then
  cat > "$WORK/s3cfg" <<CFG
[default]
access_key = $AWS_ACCESS_KEY_ID
secret_key = $AWS_SECRET_ACCESS_KEY
host_base = $HOSTPORT
host_bucket = $HOSTPORT
use_https = False
signature_v2 = False
bucket_location = $AWS_DEFAULT_REGION
CFG
  S=(s3cmd -c "$WORK/s3cfg" --no-progress)
  B="compat-s3cmd-$RUN"
  "${S[@]}" mb "s3://$B" >/dev/null || fail "s3cmd mb"
  "${S[@]}" put "$WORK/small.bin" "s3://$B/d/small.bin" >/dev/null || fail "s3cmd put"
  "${S[@]}" get --force "s3://$B/d/small.bin" "$WORK/s3cmd-small.out" >/dev/null || fail "s3cmd get"
  cmp -s "$WORK/small.bin" "$WORK/s3cmd-small.out" || fail "s3cmd content"
  ok "s3cmd put/get"
  "${S[@]}" put --multipart-chunk-size-mb=8 "$WORK/big.bin" "s3://$B/d/e/big.bin" >/dev/null || fail "s3cmd multipart"
  "${S[@]}" get --force "s3://$B/d/e/big.bin" "$WORK/s3cmd-big.out" >/dev/null || fail "s3cmd get big"
  cmp -s "$WORK/big.bin" "$WORK/s3cmd-big.out" || fail "s3cmd multipart content"
  ok "s3cmd multipart"
  ls_out=$("${S[@]}" ls "s3://$B/d/")
  grep -q "DIR .*s3://$B/d/e/" <<<"$ls_out" || fail "s3cmd ls dir: $ls_out"
  grep -q "s3://$B/d/small.bin" <<<"$ls_out" || fail "s3cmd ls file: $ls_out"
  ok "s3cmd ls with prefix and delimiter"
  url=$("${S[@]}" signurl "s3://$B/d/small.bin" +120 2>/dev/null || true)
  if [[ -n "$url" ]]; then
    curl -sf -o "$WORK/s3cmd-presigned.out" "$url" || fail "s3cmd signurl GET"
    cmp -s "$WORK/small.bin" "$WORK/s3cmd-presigned.out" || fail "s3cmd signurl content"
    ok "s3cmd signurl"
  fi
  "${S[@]}" del --recursive --force "s3://$B/" >/dev/null || fail "s3cmd del"
  "${S[@]}" rb "s3://$B" >/dev/null || fail "s3cmd rb"
  ok "s3cmd delete"
else
  fail "s3cmd not installed (pip install s3cmd)"
fi

echo "$passed passed, $failed failed"

#!/usr/bin/env python3
"""Summarizes an s3-tests run for RESULTS.md: the core subset test by test (with the reason
of each failure from REASONS) and the whole suite by group (markers, else test names).

  summarize.py JUNIT_XML MARKERS_JSON CORE_LIST --core        # core tables, one row per test
  summarize.py JUNIT_XML MARKERS_JSON CORE_LIST [--failures]  # whole run by group

run.sh leaves the first two in $OUT_DIR (markers.json is written by the
tools/markdump.py plugin during the run); CORE_LIST is ../shared/conformance/s3-core-tests.txt.
"""
import collections, json, re, sys, xml.etree.ElementTree as ET

# Why each core test that fails does (kept in step with the gateway).
HARNESS = ("client-side: botocore signs after the before-call hook, so the request arrives "
           "with a valid Authorization header (seen on the wire); marked fails_on_rgw upstream")
BY_DESIGN_DIR = ("by design (docs/architecture.md, one namespace): the test writes a body to a key "
                 "ending in '/', which is a directory (400 InvalidObjectName, nothing stored)")
BY_DESIGN_CONFLICT = ("by design: keys 'a' and 'a/b' cannot both be objects "
                      "(409 ObjectConflict, nothing stored)")
VERSIONING = "enables bucket versioning first (PutBucketVersioning: NotImplemented; out of scope)"
COND_DELETE = ("conditional DELETE / DeleteObjects entry (If-Match, x-amz-if-match-size, "
               "x-amz-if-match-last-modified-time), marked fails_on_aws upstream (AWS: "
               "directory buckets only): refused with 501 NotImplemented and nothing deleted, "
               "since the master's delete takes no condition (a proto change) and a check "
               "before the delete would race with overwrites")
REASONS = {
    "test_bucket_create_bad_authorization_empty": HARNESS,
    "test_bucket_create_bad_authorization_none": HARNESS,
    "test_object_create_bad_authorization_empty": HARNESS,
    "test_object_create_bad_authorization_none": HARNESS,
    "test_object_create_bad_contentlength_none": (
        "client-side: http.client puts Content-Length back for a bytes body (seen on the "
        "wire), so the gateway never sees a request without it; fails_on_rgw upstream"),
    "test_bucket_list_delimiter_basic": BY_DESIGN_CONFLICT,
    "test_bucket_listv2_delimiter_basic": BY_DESIGN_CONFLICT,
    "test_bucket_list_delimiter_prefix_ends_with_delimiter": BY_DESIGN_DIR,
    "test_bucket_listv2_delimiter_prefix_ends_with_delimiter": BY_DESIGN_DIR,
    "test_bucket_list_delimiter_not_skip_special": BY_DESIGN_DIR,
    "test_list_multipart_upload_owner": (
        "needs a bucket ACL (public-read-write) to let the alt user upload into the main "
        "user's bucket; ACLs out of scope (KDSS grants buckets per user in the master)"),
    "test_put_current_object_if_match": VERSIONING,
    # In-scope groups of the whole suite, outside the core subset.
    "test_put_object_current_if_match": VERSIONING,
    "test_bucket_get_location": (
        "creates the bucket with LocationConstraint 'default' (the template's api_name, an RGW "
        "zonegroup name) and expects it back; the gateway has one region (us-east-1, the empty "
        "constraint) and does not store a constraint per bucket"),
    **{t: COND_DELETE for t in (
        "test_delete_object_if_match", "test_delete_object_if_match_last_modified_time",
        "test_delete_object_if_match_size", "test_delete_objects_if_match",
        "test_delete_objects_if_match_last_modified_time", "test_delete_objects_if_match_size")},
    **{t: VERSIONING + "; then " + COND_DELETE for t in (
        "test_delete_object_current_if_match",
        "test_delete_object_current_if_match_last_modified_time",
        "test_delete_object_current_if_match_size", "test_delete_objects_current_if_match",
        "test_delete_objects_current_if_match_last_modified_time",
        "test_delete_objects_current_if_match_size")},
    "test_put_current_object_if_none_match": VERSIONING,
    "test_multipart_put_current_object_if_match": VERSIONING,
    "test_multipart_put_current_object_if_none_match": VERSIONING,
}

# Out-of-scope reasons, shared by the groups below.
NOT_IMPL = "not implemented in the gateway"
ACL_SCOPE = ("KDSS grants buckets per user in the master (kdss-cli); there are no ACL grants, "
             "canned ACLs are validated and ignored, anonymous requests are refused")

# (markers, name regex, group, why the group is out of scope or None when it is in scope).
# The first rule that matches a test names its group.
RULES = [
 (('versioning','delete_marker'), r'version', 'Versioning, delete markers',
  "one version per key: the namespace is a file tree shared with ksfs (docs/architecture.md); "
  "PutBucketVersioning answers NotImplemented"),
 (('object_lock',), r'object_lock|retention|legal_hold', 'Object lock, retention, legal hold',
  "needs versioning; " + NOT_IMPL),
 (('bucket_policy','user_policy','role_policy','session_policy','group_policy','abac_test'),
  r'policy|public_access_block|public_block|block_public', 'Bucket/user policies, public access block',
  "no policy documents: " + ACL_SCOPE),
 (('iam_account','iam_cross_account','iam_role','iam_tenant','iam_user','test_of_sts','webidentity_test','group','sns'),
  r'iam|sts|notification|topic', 'IAM / STS / SNS',
  "users and keys live in the master and are managed with kdss-cli; no IAM, STS or SNS API "
  "(most skip: the template's [iam] users belong to no RGW account)"),
 (('encryption','sse_s3','bucket_encryption'), r'sse|encrypt', 'Server-side encryption (SSE-C, SSE-S3, SSE-KMS)',
  NOT_IMPL + " (the passes are requests the suite expects to be refused)"),
 (('lifecycle','lifecycle_expiration','lifecycle_transition','cloud_transition','cloud_restore','storage_class'),
  r'lifecycle|storage_class|restore', 'Lifecycle, storage classes, restore',
  NOT_IMPL + "; one storage class (the bucket's EC policy)"),
 (('bucket_logging','bucket_logging_cleanup','fails_without_logging_rollover','target_by_bucket'),
  r'logging', 'Bucket logging', NOT_IMPL),
 (('s3website','s3website_routing_rules','s3website_redirect_location'), r'website', 'Website hosting', NOT_IMPL),
 (('tagging',), r'tagging|_tags', 'Object and bucket tagging', NOT_IMPL),
 (('s3select',), r'select', 'S3 Select',
  NOT_IMPL + " (the passes are vacuous: run_s3select returns the error text, and two "
  "identical errors compare equal)"),
 (('appendobject',), r'append', 'Append object', "RGW extension; " + NOT_IMPL),
 (('object_ownership',), r'ownership', 'Object ownership', "an ACL setting; " + ACL_SCOPE),
 ((), r'usage|unordered|head_extended', 'RGW extensions (usage, x-rgw headers, unordered listing)',
  "RGW-only APIs and headers (unordered listing is marked fails_on_aws)"),
 ((), r'acl|grant|canned|access_bucket|_anon_|anonymous|authenticated_read|public_read|private_|not_owned|100_continue|raw_get',
  'ACLs and grants (incl. anonymous access by ACL)', ACL_SCOPE),
 ((), r'cors', 'CORS', NOT_IMPL),
 ((), r'post_object', 'POST object (browser form upload)', NOT_IMPL + " (POST policy forms)"),
 ((), r'torrent', 'Torrent', "RGW extension; " + NOT_IMPL),
 (('auth_aws2',), r'aws2|_v2_|presigned_v2', 'SigV2 header auth', ("header SigV2 is refused (NotImplemented); the gateway takes SigV4 headers and query "
  "strings, and SigV2 presigned URLs only (s3cmd signurl)")),
 (('checksum',), r'checksum|cksum', 'Checksums', None),
 (('conditional_write',), r'if_match|if_none_match|ifmatch|ifnonematch|modifiedsince|conditional',
  'Conditional requests', None),
 ((), r'multipart|_part', 'Multipart', None),
 (('copy',), r'copy', 'CopyObject', None),
 (('list_objects_v2',), r'list|prefix|delimiter|marker|maxkeys|continuation|startafter|fetchowner|encoding',
  'Listing (ListObjects v1/v2, ListBuckets)', None),
 ((), r'range', 'Range GET', None),
 ((), r'delete', 'Delete / DeleteObjects', None),
]


def group(nid, marks):
    """The group of a test and why it is out of scope (None: in scope)."""
    name = nid.split('::')[1]
    m = set(marks.get(nid, []))
    if re.search(r'/test_(iam|sts|sns)\.py::', nid):
        m.add('iam_user')
    for mk, rx, g, why in RULES:
        if m & set(mk) or re.search(rx, name):
            return g, why
    if 'test_headers.py' in nid:
        return 'Request validation (headers, auth)', None
    if 'bucket' in name:
        return 'Buckets', None
    return 'Objects (put/get/head, metadata, auth)', None


def main():
    junit, markers, core_list = sys.argv[1:4]
    marks = json.load(open(markers))
    res = {}
    for tc in ET.parse(junit).getroot().iter('testcase'):
        mod = tc.get('classname').split('.')[-1]
        nid = f"s3tests/functional/{mod}.py::{tc.get('name')}"
        st = 'pass'
        for ch in tc:
            if ch.tag in ('failure', 'error'):
                st = 'FAIL' if ch.tag == 'failure' else 'ERROR'
            elif ch.tag == 'skipped':
                st = 'skip'
        res[nid] = st
    core_sections, cur = [], None
    for line in open(core_list):
        line = line.strip()
        if line.startswith('# ') and not line.startswith('# The core') and not line.startswith('# grouped') and not line.startswith('# Out of scope'):
            cur = (line[2:], [])
            core_sections.append(cur)
        elif line and not line.startswith('#') and cur:
            cur[1].append(line)
    if '--core' in sys.argv:
        for title, tests in core_sections:
            print(f"\n## {title}\n\n| test | result | reason |\n|---|---|---|")
            for t in tests:
                st = res.get(t, 'not run')
                short = t.split('/')[-1]
                why = REASONS.get(t.split('::')[1], '') if st != 'pass' else ''
                print(f"| `{short}` | {st} | {why} |")
        return
    groups = collections.defaultdict(list)
    scope = {}
    for nid, st in res.items():
        g, why = group(nid, marks)
        groups[g].append((nid, st))
        scope[g] = why
    aws = lambda nid: 'fails_on_aws' in marks.get(nid, [])
    print("| group | tests | pass | fail | error | skip | failing tests marked fails_on_aws "
          "| scope |\n|---|---:|---:|---:|---:|---:|---:|---|")
    tot = collections.Counter()
    order = sorted(groups.items(), key=lambda x: (scope[x[0]] is not None, -len(x[1])))
    for g, v in order:
        c = collections.Counter(st for _, st in v)
        tot.update(c)
        fa = sum(1 for n, st in v if st in ('FAIL', 'ERROR') and aws(n))
        where = 'in scope' if scope[g] is None else 'out: ' + scope[g]
        print(f"| {g} | {len(v)} | {c['pass']} | {c['FAIL']} | {c['ERROR']} | {c['skip']} "
              f"| {fa} | {where} |")
    print(f"| **all** | {sum(tot.values())} | {tot['pass']} | {tot['FAIL']} | {tot['ERROR']} "
          f"| {tot['skip']} | | |")
    if '--failures' in sys.argv:
        heading = False
        for g, v in order:
            bad = [n for n, st in v if st in ('FAIL', 'ERROR')]
            if not bad:
                continue
            if scope[g] is not None:
                if not heading:
                    print("\n### Failing tests of the groups out of scope")
                    heading = True
                print(f"\n{g}: " + ", ".join(n.split('::')[1] for n in bad))
                continue
            print(f"\n### {g}\n\n| test | reason |\n|---|---|")
            for n in bad:
                name = n.split('::')[1]
                print(f"| `{name}` | {REASONS.get(name, '(no reason recorded)')} |")


main()

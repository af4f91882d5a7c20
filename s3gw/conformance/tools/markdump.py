"""pytest plugin: writes each collected test's marker names as JSON ({nodeid: [marker, ...]})
to $MARKERS_JSON (default markers.json in the working directory), for summarize.py.

  MARKERS_JSON=/tmp/s3tests-out/markers.json PYTHONPATH=s3gw/conformance/tools \
    python -m pytest -p markdump --collect-only -q s3tests/functional/test_s3.py ...
"""
import json
import os


def pytest_collection_modifyitems(session, config, items):
    out = {it.nodeid: sorted({m.name for m in it.iter_markers()}) for it in items}
    with open(os.environ.get("MARKERS_JSON", "markers.json"), "w") as f:
        json.dump(out, f, indent=0, sort_keys=True)

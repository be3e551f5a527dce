"""Every role entry point says since when it exists, in a version this collection has had (galaxy.yml or earlier)."""
import glob
import os

import pytest
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SPECS = sorted(glob.glob(os.path.join(ROOT, "roles", "*", "meta", "argument_specs.yml")))


def _version(text):
    return tuple(int(part) for part in text.split("."))


def _galaxy_version():
    with open(os.path.join(ROOT, "galaxy.yml"), encoding="utf-8") as handle:
        return yaml.safe_load(handle)["version"]


@pytest.mark.parametrize("path", SPECS, ids=[os.path.relpath(path, ROOT) for path in SPECS])
def test_every_entry_point_has_a_version_added_not_after_this_release(path):
    with open(path, encoding="utf-8") as handle:
        entry_points = yaml.safe_load(handle)["argument_specs"]
    assert entry_points
    for name, entry in entry_points.items():
        added = entry.get("version_added")
        assert isinstance(added, str), "%s: entry point %s has no version_added (a quoted string)" % (path, name)
        assert _version(added) <= _version(_galaxy_version()), (path, name, added)
        for option, spec in (entry.get("options") or {}).items():
            if "version_added" in spec:
                assert _version(str(spec["version_added"])) >= _version(added), (path, name, option)


def test_there_are_roles_to_check():
    assert len(SPECS) >= 5

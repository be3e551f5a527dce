import hashlib
import io
import json
import os
import tarfile

import pytest

from ansible_collections.conveyor.deploy.plugins.modules import release as release_module
from ansible_collections.conveyor.deploy.plugins.module_utils import _release_ops as release_ops
from ansible_collections.conveyor.deploy.plugins.module_utils._release import MANIFEST

from ...conftest import ModuleFail


def make_tar(path, files, links=()):
    with tarfile.open(path, "w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(data))
        for name, target, kind in links:
            info = tarfile.TarInfo(name)
            info.type = kind
            info.linkname = target
            tar.addfile(info)
    with open(path, "rb") as handle:
        return hashlib.sha256(handle.read()).hexdigest()


@pytest.fixture
def artifact(tmp_path):
    path = str(tmp_path / "app-1.0.0.tar.gz")
    digest = make_tar(path, {"app.py": b"print('v1')\n", "VERSION": b"1.0.0\n", "logs/.keep": b""})
    return path, digest


@pytest.fixture
def root(tmp_path):
    return str(tmp_path / "srv" / "app")


def stage(run_module, root, artifact, release_id="r1", version="1.0.0", **extra):
    args = dict(app_root=root, release_id=release_id, version=version, src=artifact[0],
                checksum=artifact[1], owner="root", group="root", shared_paths=["logs"])
    args.update(extra)
    return run_module(release_module, args)


def test_stage_unpacks_links_shared_and_writes_manifest(run_module, root, artifact):
    result = stage(run_module, root, artifact)
    assert result["changed"] is True
    rel = os.path.join(root, "releases", "r1")
    assert open(os.path.join(rel, "app.py")).read() == "print('v1')\n"
    assert os.readlink(os.path.join(rel, "logs")) == os.path.join(root, "shared", "logs")
    manifest = json.load(open(os.path.join(rel, MANIFEST)))
    assert manifest["sha256"] == artifact[1] and manifest["state"] == "staged" and manifest["version"] == "1.0.0"
    assert not [n for n in os.listdir(os.path.join(root, "releases")) if n.startswith(".tmp-")]
    history = [json.loads(line) for line in open(os.path.join(root, ".conveyor", "history.jsonl"))]
    assert history[-1]["action"] == "stage" and history[-1]["release_id"] == "r1"


def test_restage_same_checksum_is_unchanged_and_different_checksum_is_refused(run_module, root, artifact, tmp_path):
    stage(run_module, root, artifact)
    assert stage(run_module, root, artifact)["changed"] is False
    other = str(tmp_path / "other.tar.gz")
    digest = make_tar(other, {"app.py": b"print('v2')\n"})
    with pytest.raises(ModuleFail) as err:
        stage(run_module, root, (other, digest))
    assert "already staged from an artifact with sha256" in err.value.result["msg"]


def test_checksum_mismatch_changes_nothing(run_module, root, artifact):
    with pytest.raises(ModuleFail) as err:
        stage(run_module, root, (artifact[0], "0" * 64))
    assert "sha256 mismatch" in err.value.result["msg"]
    assert os.listdir(os.path.join(root, "releases")) == []


def test_checksum_is_required_unless_opted_out(run_module, root, artifact):
    with pytest.raises(ModuleFail) as err:
        run_module(release_module, dict(app_root=root, release_id="r1", version="1", src=artifact[0]))
    assert "no checksum" in err.value.result["msg"]
    result = run_module(release_module, dict(app_root=root, release_id="r1", version="1", src=artifact[0],
                                             allow_unverified=True))
    assert "UNVERIFIED" in result["msg"]


@pytest.mark.parametrize("files, links, text", [
    pytest.param({"../evil": b"x"}, (), "'..' in the path", id="dotdot"),
    pytest.param({"/etc/evil": b"x"}, (), "absolute path", id="absolute"),
    pytest.param({"a": b"x"}, [("link", "/etc/shadow", tarfile.SYMTYPE)], "symlink to absolute", id="abs-symlink"),
    pytest.param({"a": b"x"}, [("d/link", "../../x", tarfile.SYMTYPE)], "outside the release", id="symlink-out"),
    pytest.param({"a": b"x"}, [("hard", "../x", tarfile.LNKTYPE)], "hard link", id="hardlink-out"),
])
def test_unsafe_archives_are_refused_and_leave_nothing(run_module, root, tmp_path, files, links, text):
    path = str(tmp_path / "bad.tar.gz")
    digest = make_tar(path, files, links)
    with pytest.raises(ModuleFail) as err:
        stage(run_module, root, (path, digest))
    assert text in err.value.result["msg"]
    assert os.listdir(os.path.join(root, "releases")) == []
    assert not os.path.exists("/etc/evil")


@pytest.mark.parametrize("release_id", ["a/b", "..", "has space", "../x"])
def test_bad_release_ids_are_refused(run_module, root, artifact, release_id):
    with pytest.raises(ModuleFail) as err:
        stage(run_module, root, artifact, release_id=release_id)
    assert "Invalid release_id" in err.value.result["msg"]


def test_relative_app_root_is_refused(run_module, artifact):
    with pytest.raises(ModuleFail) as err:
        stage(run_module, "srv/app", artifact)
    assert "must be an absolute path" in err.value.result["msg"]


def test_check_mode_writes_nothing(run_module, root, artifact):
    result = run_module(release_module, dict(app_root=root, release_id="r1", version="1.0.0", src=artifact[0],
                                             checksum=artifact[1]), check_mode=True, diff=True)
    assert result["changed"] is True and "r1" in result["diff"]["after"]
    assert not os.path.exists(root)


def test_activate_switches_and_returns_previous(run_module, root, artifact, tmp_path):
    stage(run_module, root, artifact, "r1")
    first = run_module(release_module, dict(app_root=root, release_id="r1", state="active"))
    assert first["changed"] and first["previous"] is None
    other = str(tmp_path / "v2.tar.gz")
    stage(run_module, root, (other, make_tar(other, {"app.py": b"v2"})), "r2", "2.0.0")
    preview = run_module(release_module, dict(app_root=root, release_id="r2", state="active"), check_mode=True, diff=True)
    assert preview["changed"] and os.readlink(os.path.join(root, "current")) == "releases/r1"
    assert preview["diff"]["after"] == "current -> releases/r2\n"
    second = run_module(release_module, dict(app_root=root, release_id="r2", state="active"))
    assert second["previous"]["release_id"] == "r1"
    assert os.readlink(os.path.join(root, "current")) == "releases/r2"
    assert run_module(release_module, dict(app_root=root, release_id="r2", state="active"))["changed"] is False


def test_activate_refuses_tampered_incomplete_and_failed(run_module, root, artifact):
    stage(run_module, root, artifact, "r1")
    with open(os.path.join(root, "releases", "r1", "app.py"), "a") as handle:
        handle.write("# tampered\n")
    with pytest.raises(ModuleFail) as err:
        run_module(release_module, dict(app_root=root, release_id="r1", state="active"))
    assert "does not verify" in err.value.result["msg"]
    os.makedirs(os.path.join(root, "releases", "half"))
    with pytest.raises(ModuleFail) as err:
        run_module(release_module, dict(app_root=root, release_id="half", state="active"))
    assert "incomplete" in err.value.result["msg"]
    stage(run_module, root, artifact, "r3")
    run_module(release_module, dict(app_root=root, release_id="r3", state="failed", reason="500s"))
    with pytest.raises(ModuleFail) as err:
        run_module(release_module, dict(app_root=root, release_id="r3", state="active"))
    assert "marked failed (500s)" in err.value.result["msg"]
    assert not os.path.lexists(os.path.join(root, "current"))


def test_absent_refuses_the_live_release(run_module, root, artifact):
    stage(run_module, root, artifact, "r1")
    run_module(release_module, dict(app_root=root, release_id="r1", state="active"))
    with pytest.raises(ModuleFail) as err:
        run_module(release_module, dict(app_root=root, release_id="r1", state="absent"))
    assert "it is live" in err.value.result["msg"]
    assert run_module(release_module, dict(app_root=root, release_id="gone", state="absent"))["changed"] is False


def test_prune_keeps_live_and_rollback_target(run_module, root, artifact):
    for index in range(1, 5):
        stage(run_module, root, artifact, "r%d" % index)
        run_module(release_module, dict(app_root=root, release_id="r%d" % index, state="active"))
        run_module(release_module, dict(app_root=root, release_id="r%d" % index, state="good"))
    run_module(release_module, dict(app_root=root, release_id="r2", state="active"))  # roll back to r2
    os.makedirs(os.path.join(root, "releases", ".tmp-r5-abc"))
    preview = run_module(release_module, dict(app_root=root, state="pruned", keep=1), check_mode=True)
    assert sorted(preview["removed"]) == [".tmp-r5-abc", "r1", "r3"]
    assert len(os.listdir(os.path.join(root, "releases"))) == 5
    result = run_module(release_module, dict(app_root=root, state="pruned", keep=1))
    assert sorted(os.listdir(os.path.join(root, "releases"))) == ["r2", "r4"]
    assert result["changed"] is True


def test_an_interrupted_manifest_write_leaves_nothing_inside_the_release(run_module, root, artifact, monkeypatch):
    from ansible_collections.conveyor.deploy.plugins.module_utils import _release

    stage(run_module, root, artifact, "r1")
    rel = os.path.join(root, "releases", "r1")
    before = _release.tree_digest(rel)

    def killed(*args, **kwargs):
        raise KeyboardInterrupt("SIGKILL between writing the temporary file and renaming it")

    # As under SIGKILL: the rename never happens and no cleanup runs.
    with monkeypatch.context() as patched:
        patched.setattr(os, "rename", killed)
        patched.setattr(os, "unlink", lambda path: None)
        with pytest.raises(KeyboardInterrupt):
            _release.mark_release(_release.Layout(root), "r1", "good")
    assert _release.tree_digest(rel) == before
    assert sorted(os.listdir(rel)) == sorted([MANIFEST, "VERSION", "app.py", "logs"])
    leftover = [name for name in os.listdir(os.path.join(root, "releases")) if name.startswith(".tmp-manifest-")]
    assert len(leftover) == 1
    assert run_module(release_module, dict(app_root=root, state="pruned", keep=5))["removed_temporaries"] == [
        "releases/" + leftover[0]]


def test_prune_removes_what_interrupted_writes_left(run_module, root, artifact):
    stage(run_module, root, artifact, "r1")
    run_module(release_module, dict(app_root=root, release_id="r1", state="active"))
    releases = os.path.join(root, "releases")
    for name in (".tmp-download-k2j3", ".tmp-manifest-x9"):
        with open(os.path.join(releases, name), "wb") as handle:
            handle.write(b"partial")
    os.symlink("releases/r1", os.path.join(root, ".current.tmp-4121"))
    preview = run_module(release_module, dict(app_root=root, state="pruned", keep=5), check_mode=True, diff=True)
    assert preview["changed"] and preview["removed_temporaries"] == [
        "releases/.tmp-download-k2j3", "releases/.tmp-manifest-x9", ".current.tmp-4121"]
    assert "would remove 3 leftover temporary file(s)" in preview["msg"]
    assert os.path.exists(os.path.join(releases, ".tmp-download-k2j3"))
    result = run_module(release_module, dict(app_root=root, state="pruned", keep=5))
    assert result["changed"] and sorted(os.listdir(releases)) == ["r1"]
    assert not os.path.lexists(os.path.join(root, ".current.tmp-4121"))
    assert os.readlink(os.path.join(root, "current")) == "releases/r1"
    assert run_module(release_module, dict(app_root=root, state="pruned", keep=5))["changed"] is False


def test_check_mode_activation_of_a_release_not_yet_staged_is_a_preview(run_module, root, artifact):
    stage(run_module, root, artifact, "r1")
    run_module(release_module, dict(app_root=root, release_id="r1", state="active"))
    result = run_module(release_module, dict(app_root=root, release_id="r9", state="active"), check_mode=True, diff=True)
    assert result["changed"] and "once it is staged" in result["msg"]
    assert result["diff"] == {"before": "current -> releases/r1\n", "after": "current -> releases/r9\n"}
    with pytest.raises(ModuleFail):
        run_module(release_module, dict(app_root=root, release_id="r9", state="active"))


def test_release_info_refuses_a_target_that_breaks_the_release_policy(run_module, root, artifact):
    from ansible_collections.conveyor.deploy.plugins.modules import release_info

    stage(run_module, root, artifact, "r1")
    stage(run_module, root, artifact, "r2")
    run_module(release_module, dict(app_root=root, release_id="r2", state="active"))
    assert run_module(release_info, dict(app_root=root, target="r1"))["target"]["release_id"] == "r1"
    # Owned by another user, the file's content and mode (the digest) are unchanged.
    os.chown(os.path.join(root, "releases", "r1", "app.py"), 1, 1)
    result = run_module(release_info, dict(app_root=root, target="r1"))
    assert result["target"] is None
    assert result["target_problem"] == ("release r1 breaks the release policy (files owned by root, not writable by "
                                        "group or others): app.py (owned by uid 1)")


# ----------------------------------------------------------------- hostile archives change nothing outside

from ... import hostile_archives as hostile  # noqa: E402


def snapshot(top):
    """Every path below ``top`` with its type, mode, link target and content."""
    seen = {}
    for dirpath, dirnames, filenames in os.walk(top):
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            info = os.lstat(path)
            if os.path.islink(path):
                seen[path] = ("link", os.readlink(path))
            elif os.path.isfile(path):
                seen[path] = ("file", info.st_mode, info.st_nlink, open(path, "rb").read())
            else:
                seen[path] = ("dir", info.st_mode)
    return seen


@pytest.mark.parametrize("members", [
    pytest.param(hostile.through_symlink_chain(1, "victim"), id="chain-into-releases"),
    pytest.param(hostile.through_symlink_chain(2, "victim"), id="chain-into-app-root"),
    pytest.param(hostile.through_symlink_chain(4, "planted/victim"), id="chain-beyond-app-root"),
    pytest.param(hostile.hardlink_then_file(2, "victim"), id="hardlink-then-file"),
    pytest.param(hostile.hardlink_then_file(4, "planted/victim"), id="hardlink-then-file-deep"),
    pytest.param(hostile.dotdot_after_symlink("victim"), id="dotdot-after-symlink"),
    pytest.param(hostile.link_defined_later("victim"), id="link-defined-later"),
    pytest.param(hostile.replace_symlink_with_file("../../victim"), id="replace-symlink"),
])
@pytest.mark.parametrize("compression", ["gz", "xz"])
def test_hostile_archive_changes_nothing_outside_the_release(run_module, root, artifact, tmp_path, members,
                                                             compression):
    stage(run_module, root, artifact, "r1")
    run_module(release_module, dict(app_root=root, release_id="r1", state="active"))
    # Victims at every level the shapes aim at: releases/, the app root, and beyond it.
    for where in (os.path.join(root, "releases"), root, str(tmp_path / "srv"), str(tmp_path)):
        with open(os.path.join(where, "victim"), "w") as handle:
            handle.write("original\n")
    os.makedirs(str(tmp_path / "planted"), exist_ok=True)
    with open(str(tmp_path / "planted" / "victim"), "w") as handle:
        handle.write("original\n")
    bad = hostile.write(str(tmp_path / ("hostile.tar." + compression)), members, compression)
    before = snapshot(str(tmp_path))
    with pytest.raises(ModuleFail) as err:
        stage(run_module, root, (bad, hashlib.sha256(open(bad, "rb").read()).hexdigest()), "r2", "6.6.6")
    assert "Refusing the artifact" in err.value.result["msg"]
    assert snapshot(str(tmp_path)) == before
    assert os.readlink(os.path.join(root, "current")) == "releases/r1"


def test_hard_link_inside_the_archive_is_staged_as_an_independent_copy(run_module, root, tmp_path):
    members = [("app.py", hostile.REG, "", b"print('v1')\n"), ("copy.py", hostile.LNK, "app.py", b"")]
    path = hostile.write(str(tmp_path / "links.tar.gz"), members)
    stage(run_module, root, (path, hashlib.sha256(open(path, "rb").read()).hexdigest()), shared_paths=[])
    rel = os.path.join(root, "releases", "r1")
    assert open(os.path.join(rel, "copy.py")).read() == "print('v1')\n"
    assert os.stat(os.path.join(rel, "copy.py")).st_nlink == 1


def test_shared_path_through_an_archive_symlink_is_refused(run_module, root, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "uploads").mkdir()
    (outside / "uploads" / "keep").write_text("original\n")
    members = [("app.py", hostile.REG, "", b"x"), ("var", hostile.SYM, "static", b""), ("static", hostile.DIR, "", b"")]
    path = hostile.write(str(tmp_path / "shared.tar.gz"), members)
    with pytest.raises(ModuleFail) as err:
        stage(run_module, root, (path, hashlib.sha256(open(path, "rb").read()).hexdigest()),
              shared_paths=["var/uploads"])
    assert "var/uploads" in err.value.result["msg"] and "symlink" in err.value.result["msg"]
    assert (outside / "uploads" / "keep").read_text() == "original\n"


@pytest.mark.parametrize("members", [
    pytest.param(hostile.through_symlink_chain(2, "victim"), id="chain"),
    pytest.param(hostile.hardlink_then_file(2, "victim"), id="hardlink-then-file"),
    pytest.param(hostile.replace_symlink_with_file("app.py"), id="replace-symlink"),
])
def test_extraction_refuses_links_even_when_the_member_check_is_bypassed(run_module, root, artifact, tmp_path,
                                                                         monkeypatch, members):
    """The writer never follows or replaces a link on disk, whatever member_problems() said."""
    stage(run_module, root, artifact, "r1")
    with open(os.path.join(root, "victim"), "w") as handle:
        handle.write("original\n")
    monkeypatch.setattr(release_ops, "member_problems", lambda members: [])
    bad = hostile.write(str(tmp_path / "hostile.tar.gz"), members)
    before = snapshot(str(tmp_path))
    with pytest.raises(ModuleFail) as err:
        stage(run_module, root, (bad, hashlib.sha256(open(bad, "rb").read()).hexdigest()), "r2", "6.6.6")
    assert "Refusing the artifact" in err.value.result["msg"]
    assert snapshot(str(tmp_path)) == before

import os
import tarfile

import pytest

from ansible_collections.conveyor.deploy.plugins.module_utils import _release as rel


def member(name, kind=tarfile.REGTYPE, linkname=""):
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = linkname
    return info


@pytest.mark.parametrize("release_id, problem", [
    pytest.param("20261127T101500Z-2.0.0", None, id="timestamp-and-version"),
    pytest.param("v1.2.3+build.7", None, id="semver-build"),
    pytest.param("", "empty", id="empty"),
    pytest.param("a/b", "path separator", id="slash"),
    pytest.param("..", "'..'", id="dotdot"),
    pytest.param("1.0..2", "'..'", id="embedded-dotdot"),
    pytest.param("has space", "whitespace", id="space"),
    pytest.param("tab\there", "whitespace", id="tab"),
    pytest.param(".hidden", "must start", id="leading-dot"),
    pytest.param("x" * 129, "at most 128", id="too-long"),
])
def test_release_id_problem(release_id, problem):
    found = rel.release_id_problem(release_id)
    if problem is None:
        assert found is None
    else:
        assert problem in found


@pytest.mark.parametrize("path, ok", [
    ("/opt/app", True), ("opt/app", False), ("/", False), ("/opt/../etc", False), ("", False)])
def test_app_root_problem(path, ok):
    assert (rel.app_root_problem(path) is None) is ok


@pytest.mark.parametrize("value, expected", [
    ("A" * 64, "a" * 64),
    ("sha256:" + "b" * 64, "b" * 64),
    ("c" * 64 + "  sample-1.0.0.tar.gz\n", "c" * 64),
    ("d" * 63, None),
    ("md5:" + "e" * 32, None),
    (None, None),
])
def test_normalise_sha256(value, expected):
    assert rel.normalise_sha256(value) == expected


def test_member_problems_accepts_a_clean_archive():
    members = [
        member("app.py"), member("static", tarfile.DIRTYPE), member("static/filler.bin"),
        member("static/latest", tarfile.SYMTYPE, "filler.bin"),
        member("bin/tool", tarfile.SYMTYPE, "../app.py"),
        member("copy.py", tarfile.LNKTYPE, "app.py"),
    ]
    assert rel.member_problems(members) == []


@pytest.mark.parametrize("bad, text", [
    pytest.param(member("/etc/passwd"), "absolute path", id="absolute"),
    pytest.param(member("../escape"), "'..'", id="dotdot"),
    pytest.param(member("a/../../escape"), "'..'", id="nested-dotdot"),
    pytest.param(member("link", tarfile.SYMTYPE, "/etc/shadow"), "symlink to absolute path", id="abs-symlink"),
    pytest.param(member("sub/link", tarfile.SYMTYPE, "../../etc"), "outside the release", id="rel-symlink-out"),
    pytest.param(member("hard", tarfile.LNKTYPE, "../outside"), "hard link", id="hardlink-out"),
    pytest.param(member("hard", tarfile.LNKTYPE, "/etc/passwd"), "hard link", id="hardlink-abs"),
    pytest.param(member("dev", tarfile.CHRTYPE), "special file", id="device"),
    pytest.param(member("fifo", tarfile.FIFOTYPE), "special file", id="fifo"),
])
def test_member_problems_refuses_unsafe_members(bad, text):
    problems = rel.member_problems([member("fine.txt"), bad])
    assert len(problems) == 1
    assert text in problems[0]
    assert bad.name in problems[0]


def release(release_id, state="good", complete=True, activated="", staged=""):
    return {"release_id": release_id, "state": state, "complete": complete,
            "activated_at": activated, "staged_at": staged or release_id}


def test_previous_good_is_newest_good_other_than_live():
    releases = [release("r1", activated="2026-01-01"), release("r2", activated="2026-02-01"),
                release("r3", state="failed", activated="2026-03-01"), release("r4", activated="2026-04-01")]
    assert rel.previous_good(releases, "r4")["release_id"] == "r2"
    assert rel.previous_good(releases, "r2")["release_id"] == "r4"


def test_previous_good_skips_incomplete_and_failed():
    releases = [release("r1", state="failed"), release("r2", complete=False), release("r3", state="staged")]
    assert rel.previous_good(releases, "r9") is None


def test_select_prune_never_removes_live_or_rollback_target():
    releases = [release("r%d" % i, activated="2026-0%d" % i) for i in range(1, 6)]
    # live is the oldest and the rollback target the second oldest: both survive keep=1
    chosen = rel.select_prune(releases, "r1", keep=1)
    assert "r1" not in chosen
    assert "r5" not in chosen  # newest good other than live
    assert sorted(chosen) == ["r2", "r3", "r4"]


def test_select_prune_removes_incomplete_then_failed_then_oldest():
    releases = [
        release("r1", activated="2026-01"), release("r2", activated="2026-02"),
        release("r3", state="failed", activated="2026-03"), release(".tmp-r4-x", complete=False),
        release("r5", activated="2026-05"),
    ]
    chosen = rel.select_prune(releases, "r5", keep=3)
    assert chosen == [".tmp-r4-x", "r3"]
    chosen = rel.select_prune(releases, "r5", keep=2)
    assert chosen == [".tmp-r4-x", "r3", "r1"]


def test_select_prune_always_removes_incomplete_even_under_keep():
    releases = [release("r1"), release(".tmp-r2-x", complete=False)]
    assert rel.select_prune(releases, "r1", keep=10) == [".tmp-r2-x"]


def test_manifest_problems():
    good = {"format": 1, "release_id": "r1", "version": "1.0.0", "state": "good",
            "content_sha256": "x", "staged_at": "t"}
    assert rel.manifest_problems(good, "r1") == []
    assert "not 'r2'" in rel.manifest_problems(good, "r2")[0]
    without_version = {k: v for k, v in good.items() if k != "version"}
    assert any("lacks 'version'" in p for p in rel.manifest_problems(without_version))
    assert any("state" in p for p in rel.manifest_problems(dict(good, state="weird")))
    assert rel.manifest_problems(["not", "a", "dict"]) == ["the manifest is not a JSON object"]


def test_tree_digest_sees_content_mode_and_links_but_not_the_manifest(tmp_path):
    (tmp_path / "a.txt").write_text("one")
    (tmp_path / "sub").mkdir()
    os.symlink("../a.txt", str(tmp_path / "sub" / "link"))
    first = rel.tree_digest(str(tmp_path))
    (tmp_path / rel.MANIFEST).write_text("{}")
    assert rel.tree_digest(str(tmp_path)) == first
    (tmp_path / "a.txt").write_text("two")
    second = rel.tree_digest(str(tmp_path))
    assert second != first
    os.chmod(str(tmp_path / "a.txt"), 0o600)
    assert rel.tree_digest(str(tmp_path)) != second
    os.unlink(str(tmp_path / "sub" / "link"))
    os.symlink("../elsewhere", str(tmp_path / "sub" / "link"))
    assert rel.tree_digest(str(tmp_path)) not in (first, second)


def test_harden_tree_then_policy_holds(tmp_path):
    (tmp_path / "secret").write_text("x")
    os.chmod(str(tmp_path / "secret"), 0o666)
    (tmp_path / "run.sh").write_text("#!/bin/sh\n")
    os.chmod(str(tmp_path / "run.sh"), 0o700)
    uid, gid = os.getuid(), os.getgid()
    assert rel.policy_violations(str(tmp_path), uid) != []
    rel.harden_tree(str(tmp_path), uid, gid)
    assert rel.policy_violations(str(tmp_path), uid) == []
    assert oct(os.stat(str(tmp_path / "secret")).st_mode & 0o777) == oct(0o644)
    assert oct(os.stat(str(tmp_path / "run.sh")).st_mode & 0o777) == oct(0o755)


def test_policy_violations_names_world_writable_files(tmp_path):
    (tmp_path / "ok").write_text("x")
    (tmp_path / "bad").write_text("x")
    os.chmod(str(tmp_path / "ok"), 0o644)
    os.chmod(str(tmp_path / "bad"), 0o646)
    bad = rel.policy_violations(str(tmp_path), os.getuid())
    assert len(bad) == 1 and bad[0].startswith("bad ")


def test_switch_symlink_replaces_atomically(tmp_path):
    (tmp_path / "releases" / "a").mkdir(parents=True)
    (tmp_path / "releases" / "b").mkdir()
    link = str(tmp_path / "current")
    rel.switch_symlink(link, "releases/a")
    assert os.readlink(link) == "releases/a"
    rel.switch_symlink(link, "releases/b")
    assert os.readlink(link) == "releases/b"
    assert sorted(os.listdir(str(tmp_path))) == ["current", "releases"]


def test_list_releases_reports_incomplete_and_tampered(tmp_path):
    layout = rel.Layout(str(tmp_path))
    layout.ensure_dirs()
    good_dir = os.path.join(layout.releases, "r1")
    os.mkdir(good_dir)
    with open(os.path.join(good_dir, "app.py"), "w") as handle:
        handle.write("print(1)\n")
    rel.write_json_atomic(os.path.join(good_dir, rel.MANIFEST), {
        "format": 1, "release_id": "r1", "version": "1.0.0", "state": "good",
        "content_sha256": rel.tree_digest(good_dir), "staged_at": "t"})
    os.mkdir(os.path.join(layout.releases, "r2"))
    os.mkdir(os.path.join(layout.releases, ".tmp-r3-abc"))
    found = {r["release_id"]: r for r in rel.list_releases(layout, with_digest=True)}
    assert found["r1"]["complete"] is True
    assert found["r2"]["complete"] is False
    assert found[".tmp-r3-abc"]["complete"] is False
    with open(os.path.join(good_dir, "app.py"), "a") as handle:
        handle.write("print(2)\n")
    found = {r["release_id"]: r for r in rel.list_releases(layout, with_digest=True)}
    assert found["r1"]["complete"] is False
    assert "content does not match" in found["r1"]["problems"][0]


# ----------------------------------------------------------------- members resolved against earlier ones

from ... import hostile_archives as hostile  # noqa: E402


@pytest.mark.parametrize("members, text", [
    pytest.param(hostile.through_symlink_chain(1, "victim"), "crosses the symlink", id="chain-1"),
    pytest.param(hostile.through_symlink_chain(3, "etc/victim"), "crosses the symlink", id="chain-3"),
    pytest.param(hostile.hardlink_then_file(2, "victim"), "crosses the symlink", id="hardlink-then-file"),
    pytest.param(hostile.dotdot_after_symlink("victim"), "outside the release", id="dotdot-after-symlink"),
    pytest.param(hostile.link_defined_later("victim"), "outside the release", id="link-defined-later"),
    pytest.param(hostile.replace_symlink_with_file("app.py"), "appears twice", id="replace-symlink"),
    pytest.param([("f", hostile.REG, "", b""), ("h", hostile.LNK, "f", b""), ("h", hostile.REG, "", b"")],
                 "appears twice", id="hardlink-then-file-same-name"),
    pytest.param([("h", hostile.LNK, "later", b""), ("later", hostile.REG, "", b"")],
                 "not an earlier regular file", id="hardlink-forward"),
    pytest.param([("d", hostile.DIR, "", b""), ("h", hostile.LNK, "d", b"")],
                 "not an earlier regular file", id="hardlink-to-dir"),
    pytest.param([("s", hostile.SYM, "x", b""), ("h", hostile.LNK, "s", b"")],
                 "not an earlier regular file", id="hardlink-to-symlink"),
    pytest.param([("loop", hostile.SYM, "loop/x", b"")], "loop", id="symlink-loop"),
    pytest.param([("f", hostile.REG, "", b""), ("f/g", hostile.REG, "", b"")], "is a file", id="file-as-dir"),
])
def test_member_problems_resolves_members_against_earlier_ones(members, text):
    problems = rel.member_problems(hostile.tarinfos(members))
    assert problems, "the archive should have been refused"
    assert any(text in p for p in problems), problems


def test_member_problems_accepts_links_that_stay_inside():
    members = [
        ("lib", hostile.DIR, "", b""), ("lib/libfoo.so.1", hostile.REG, "", b""),
        ("lib/libfoo.so", hostile.SYM, "libfoo.so.1", b""), ("current-lib", hostile.SYM, "lib", b""),
        ("bin/run", hostile.SYM, "../current-lib/libfoo.so", b""), ("dangling", hostile.SYM, "not-yet", b""),
        ("./", hostile.DIR, "", b""), ("lib/", hostile.DIR, "", b""), ("copy", hostile.LNK, "lib/libfoo.so.1", b""),
    ]
    assert rel.member_problems(hostile.tarinfos(members)) == []


def test_harden_tree_refuses_files_with_several_links(tmp_path):
    (tmp_path / "a").write_text("x")
    os.link(str(tmp_path / "a"), str(tmp_path / "b"))
    with pytest.raises(rel.ReleaseError) as err:
        rel.harden_tree(str(tmp_path), os.getuid(), os.getgid())
    assert "hard link" in err.value.msg

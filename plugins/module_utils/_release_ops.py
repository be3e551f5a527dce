# -*- coding: utf-8 -*-
# Copyright: conveyor.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the release module does to an application root: stage (download, verify, unpack safely, link the shared
paths, harden, write the manifest), activate, mark, remove and prune.

Each operation takes the AnsibleModule (for fetch_url and check mode) and the release module's options as a dict,
so that another module (rollout_host) can run it in the same process as its other steps.
"""

from __future__ import annotations

import errno
import grp
import hashlib
import os
import pwd
import shutil
import stat
import tarfile
import tempfile

from ansible.module_utils.common.text.converters import to_native
from ansible.module_utils.urls import fetch_url

from ansible_collections.conveyor.deploy.plugins.module_utils._lock import describe, is_stale, read_lock
from ansible_collections.conveyor.deploy.plugins.module_utils._release import (
    DOWNLOAD_SCRATCH, MANIFEST, MANIFEST_FORMAT, TMP_PREFIX, Layout, ReleaseError, activate_release, append_history,
    app_root_problem, harden_tree, isoformat, list_releases, manifest_problems, mark_release, member_problems,
    leftover_temporaries, normalise_sha256, path_parts, policy_violations, previous_good, read_manifest,
    release_id_problem, release_order, select_prune, tree_digest, utcnow, write_json_atomic,
)

CHUNK = 1 << 20

# The release module's options, also used to fill in the staging options of rollout_host.
ARGUMENT_SPEC = dict(
    app_root=dict(type="path", required=True),
    release_id=dict(type="str"),
    state=dict(type="str", default="staged", choices=["staged", "active", "good", "failed", "absent", "pruned"]),
    src=dict(type="str"),
    version=dict(type="str"),
    checksum=dict(type="str"),
    checksum_url=dict(type="str"),
    allow_unverified=dict(type="bool", default=False),
    shared_paths=dict(type="list", elements="str", default=[]),
    shared_owner=dict(type="str", default="root"),
    shared_group=dict(type="str", default="root"),
    owner=dict(type="str", default="root"),
    group=dict(type="str", default="root"),
    change_id=dict(type="str"),
    staged_by=dict(type="str"),
    run_id=dict(type="str"),
    verify_content=dict(type="bool", default=True),
    force=dict(type="bool", default=False),
    reason=dict(type="str"),
    keep=dict(type="int", default=5),
    timeout=dict(type="int", default=60),
    validate_certs=dict(type="bool", default=True),
    url_username=dict(type="str"),
    url_password=dict(type="str", no_log=True),
    migration_irreversible=dict(type="bool", default=False),
)
# A file a release may carry at its top to declare that its database migration cannot be undone (its text says why).
MIGRATION_MARKER = "MIGRATION_IRREVERSIBLE"


def _mib(size):
    return "%.1f MiB" % (size / 1048576.0)


def _ids(module, owner, group):
    try:
        uid = pwd.getpwnam(owner).pw_uid
        gid = grp.getgrnam(group).gr_gid
    except KeyError as exc:
        raise ReleaseError("Could not find user or group %s: create it first (the environment role does)."
                           % to_native(exc))
    return uid, gid


def _open_url(module, params, url, what):
    if params.get("url_username"):
        # fetch_url reads the credentials from the module's own options; an artifact server is sent them at
        # once (basic auth), not only after a 401 challenge that many repositories never send.
        module.params.update(url_username=params["url_username"], url_password=params.get("url_password") or "",
                             force_basic_auth=True)
    response, info = fetch_url(module, url, timeout=params["timeout"])
    status = info.get("status", -1)
    if status != 200 or response is None:
        cause = info.get("msg", "no answer")
        if status == -1:
            raise ReleaseError("Could not fetch the %s %s: %s. Check that the host can reach it." % (what, url, cause))
        raise ReleaseError("Could not fetch the %s %s: HTTP %s (%s). Check the URL and the version."
                           % (what, url, status, cause), status=status)
    return response


def expected_checksum(module, params):
    if params["checksum"]:
        value = normalise_sha256(params["checksum"])
        if not value:
            raise ReleaseError("Could not use checksum %r: expected 64 hex digits, optionally prefixed "
                               "with 'sha256:'." % params["checksum"])
        return value
    if params["checksum_url"]:
        text = to_native(_open_url(module, params, params["checksum_url"], "checksum file").read(4096))
        value = normalise_sha256(text)
        if not value:
            raise ReleaseError("Could not read a sha256 from %s: it should hold '<64 hex digits>  <file>'."
                               % params["checksum_url"])
        return value
    return None


def download(module, params, src, dest_dir):
    """Copy or fetch ``src`` into a temp file in ``dest_dir``; return (path, sha256, size)."""
    fd, path = tempfile.mkstemp(prefix=DOWNLOAD_SCRATCH, dir=dest_dir)
    digest = hashlib.sha256()
    size = 0
    try:
        with os.fdopen(fd, "wb") as out:
            if src.startswith(("http://", "https://")):
                source = _open_url(module, params, src, "artifact")
            else:
                try:
                    source = open(src, "rb")
                except (IOError, OSError) as exc:
                    raise ReleaseError("Could not read the artifact %s on the host: %s." % (src, to_native(exc)))
            try:
                for chunk in iter(lambda: source.read(CHUNK), b""):
                    out.write(chunk)
                    digest.update(chunk)
                    size += len(chunk)
            finally:
                source.close()
    except BaseException:
        os.unlink(path)
        raise
    return path, digest.hexdigest(), size


def space_error(where, exc, needed=None):
    free = shutil.disk_usage(where).free
    extra = " (needs about %s)" % _mib(needed) if needed else ""
    return ReleaseError("Could not stage the release: no space left on device in %s while unpacking%s; "
                        "%s free. Free space or prune old releases (state=pruned)." % (where, extra, _mib(free)),
                        errno=getattr(exc, "errno", None))


def _data_filter_check(member, tmp_dir):
    """tarfile's own 'data' filter, where this Python has it, as a second opinion on a member."""
    data_filter = getattr(tarfile, "data_filter", None)
    if data_filter is None:
        return
    try:
        data_filter(member, tmp_dir)
    except tarfile.FilterError as exc:
        raise ReleaseError("Refusing the artifact: %s: %s. Rebuild it with paths relative to the release."
                           % (member.name, to_native(exc)), unsafe_members=[member.name])


def _disk_path(root, parts, what):
    """``root/parts``, creating missing parents; every parent must be a real directory on disk."""
    path = root
    for part in parts[:-1]:
        path = os.path.join(path, part)
        try:
            info = os.lstat(path)
        except FileNotFoundError:
            os.mkdir(path, 0o755)
            continue
        if not stat.S_ISDIR(info.st_mode):
            raise ReleaseError("Refusing the artifact: %s would be written through %s, which is not a plain "
                               "directory. Rebuild it without links on the way to its files." % (what, path),
                               unsafe_members=[what])
    return os.path.join(path, parts[-1])


def _write_file(source, target, mode, mtime):
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode)
    with os.fdopen(fd, "wb") as out:
        shutil.copyfileobj(source, out, CHUNK)
    os.utime(target, (mtime, mtime), follow_symlinks=False)


def extract(tar, member, tmp_dir, written):
    """Extract one member that member_problems() accepted, never following or replacing a link.

    Regular files are created with O_EXCL|O_NOFOLLOW; a hard link becomes an independent copy of
    the earlier file it names, so no file of a release shares its inode with anything.
    """
    _data_filter_check(member, tmp_dir)
    parts = path_parts(member.name)
    if not parts:
        return
    target = _disk_path(tmp_dir, parts, member.name)
    if member.isdir():
        if not os.path.lexists(target):
            os.mkdir(target, 0o755)
        elif not stat.S_ISDIR(os.lstat(target).st_mode):
            raise ReleaseError("Refusing the artifact: directory %s would replace a file or link." % member.name,
                               unsafe_members=[member.name])
        return
    if member.issym():
        os.symlink(member.linkname, target)
        return
    mode = member.mode & 0o777
    if member.islnk():
        origin = written.get("/".join(path_parts(member.linkname)))
        if origin is None:
            raise ReleaseError("Refusing the artifact: hard link %s names %s, which is not an earlier regular file "
                               "of the archive." % (member.name, member.linkname), unsafe_members=[member.name])
        with open(origin, "rb") as source:
            _write_file(source, target, mode, member.mtime)
    else:
        with tar.extractfile(member) as source:
            _write_file(source, target, mode, member.mtime)
    written["/".join(parts)] = target


def unpack(archive, tmp_dir):
    """Validate every member against the ones before it, then extract. Raises ReleaseError on unsafe archives."""
    try:
        tar = tarfile.open(archive, "r:*")
    except tarfile.TarError as exc:
        raise ReleaseError("Could not open the artifact as a tar archive: %s." % to_native(exc))
    with tar:
        try:
            members = tar.getmembers()
        except tarfile.TarError as exc:
            raise ReleaseError("Could not read the artifact as a tar archive: %s." % to_native(exc))
        problems = member_problems(members)
        if problems:
            raise ReleaseError("Refusing the artifact: %d unsafe member(s): %s. Rebuild it with paths "
                               "relative to the release." % (len(problems), "; ".join(problems[:10])),
                               unsafe_members=problems)
        needed = sum(m.size for m in members if m.isfile() or m.islnk())
        free = shutil.disk_usage(tmp_dir).free
        if needed > free:
            raise space_error(tmp_dir, OSError(errno.ENOSPC, "precheck"), needed)
        written = {}
        for member in members:
            try:
                extract(tar, member, tmp_dir, written)
            except OSError as exc:
                if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                    raise space_error(tmp_dir, exc, needed)
                if exc.errno in (errno.EEXIST, errno.ELOOP, errno.ENOTDIR):
                    raise ReleaseError("Refusing the artifact: %s would replace or pass through another member "
                                       "(%s)." % (member.name, to_native(exc)), unsafe_members=[member.name])
                raise
    return needed


def _real_dirs(root, parts, uid=None, gid=None, trusted_uid=None):
    """Make ``root/parts`` a chain of directories, creating what is missing (owned by ``uid:gid``).

    Returns ``(path, None)``, or ``(None, offender)`` for a component that is not a directory
    or is a symlink not owned by ``trusted_uid`` (every symlink, with ``trusted_uid=None``).
    """
    path = root
    for part in parts:
        path = os.path.join(path, part)
        try:
            info = os.lstat(path)
        except FileNotFoundError:
            os.mkdir(path, 0o755)
            if uid is not None:
                os.chown(path, uid, gid)
            continue
        if stat.S_ISLNK(info.st_mode) and (trusted_uid is None or info.st_uid != trusted_uid):
            return None, path
        if not os.path.isdir(path):
            return None, path
    return path, None


def link_shared(params, layout, tmp_dir, uid, gid):
    for given in params["shared_paths"]:
        parts = path_parts(given)
        if not parts or ".." in parts or given.startswith("/"):
            raise ReleaseError("Could not link shared path %r: use a relative path without '..'." % given)
        rel = "/".join(parts)
        # The app user owns what lies below shared/: a symlink it planted there must not make root
        # create or chown directories elsewhere. Links that root made (an operator's) are followed.
        shared, bad = _real_dirs(layout.shared, parts, uid, gid, trusted_uid=0)
        if shared is None:
            raise ReleaseError("Could not link shared path %r: %s is a symlink not owned by root, or not a "
                               "directory. Replace it with a directory." % (rel, bad))
        parent, bad = _real_dirs(tmp_dir, parts[:-1])
        if parent is None:
            where = os.path.relpath(bad, tmp_dir)
            raise ReleaseError("Refusing the artifact: shared path %r would be linked through %s, which the "
                               "archive made a symlink or file. Rebuild it with %s as a plain directory."
                               % (rel, where, where))
        inside = os.path.join(parent, parts[-1])
        if os.path.lexists(inside):
            if os.path.isdir(inside) and not os.path.islink(inside):
                shutil.rmtree(inside)
            else:
                os.unlink(inside)
        os.symlink(shared, inside)


def stage(module, params, layout, release_id):
    rel_dir = layout.release_dir(release_id)
    if not params["src"] or not params["version"]:
        raise ReleaseError("Could not stage %s: src and version are required with state=staged." % release_id)
    existing = read_manifest(rel_dir) if os.path.isdir(rel_dir) else None
    expected = expected_checksum(module, params)
    if expected is None and not params["allow_unverified"]:
        raise ReleaseError("Could not stage %s: no checksum. Give checksum or checksum_url, or set "
                           "allow_unverified=true to opt out explicitly." % release_id)
    if existing is not None and not manifest_problems(existing, release_id):
        if expected and existing.get("sha256") != expected:
            raise ReleaseError("Release %s is already staged from an artifact with sha256 %s, not %s. "
                               "Use a new release id for a different artifact."
                               % (release_id, existing.get("sha256"), expected))
        return dict(changed=False, release=existing, msg="release %s already staged" % release_id)
    if os.path.lexists(rel_dir) and existing is None and not module.check_mode:
        # An earlier attempt left an incomplete directory under the final name: it was never
        # complete, so it cannot be live; remove it and stage afresh.
        if layout.current_id() == release_id:
            raise ReleaseError("Release %s is live but incomplete; roll back first." % release_id)
        shutil.rmtree(rel_dir)
    diff = dict(before="", after="release %s: version %s from %s\n" % (release_id, params["version"], params["src"]))
    if module.check_mode:
        return dict(changed=True, diff=diff, msg="would stage release %s (version %s)" % (release_id, params["version"]),
                    release=dict(release_id=release_id, version=params["version"], state="staged", source=params["src"]))

    uid, gid = _ids(module, params["owner"], params["group"])
    suid, sgid = _ids(module, params["shared_owner"], params["shared_group"])
    layout.ensure_dirs()
    tmp_dir = tempfile.mkdtemp(prefix="%s%s-" % (TMP_PREFIX, release_id), dir=layout.releases)
    archive = None
    try:
        try:
            archive, digest, size = download(module, params, params["src"], layout.releases)
        except (IOError, OSError) as exc:
            if getattr(exc, "errno", None) in (errno.ENOSPC, errno.EDQUOT):
                raise space_error(layout.releases, exc)
            raise
        if expected and digest != expected:
            raise ReleaseError("Refusing the artifact %s: sha256 mismatch (expected %s, got %s). "
                               "The download is corrupt or the artifact was replaced."
                               % (params["src"], expected, digest), expected=expected, actual=digest)
        unpack(archive, tmp_dir)
        link_shared(params, layout, tmp_dir, suid, sgid)
        harden_tree(tmp_dir, uid, gid)
        manifest = dict(
            format=MANIFEST_FORMAT, release_id=release_id, version=params["version"], source=params["src"],
            sha256=digest, verified=bool(expected), content_sha256=tree_digest(tmp_dir),
            staged_at=isoformat(), staged_by=params["staged_by"], change_id=params["change_id"],
            state="staged", size=size, shared_paths=params["shared_paths"],
        )
        irreversible = irreversible_migration(tmp_dir, params["migration_irreversible"])
        if irreversible:
            manifest["migration_irreversible"] = irreversible
        write_json_atomic(os.path.join(tmp_dir, MANIFEST), manifest)
        os.rename(tmp_dir, rel_dir)
    except ReleaseError:
        shutil.rmtree(tmp_dir, ignore_errors=True)
        raise
    except (IOError, OSError) as exc:
        shutil.rmtree(tmp_dir, ignore_errors=True)
        if getattr(exc, "errno", None) in (errno.ENOSPC, errno.EDQUOT):
            raise space_error(layout.releases, exc)
        raise ReleaseError("Could not stage %s: %s." % (release_id, to_native(exc)))
    finally:
        if archive and os.path.exists(archive):
            os.unlink(archive)
    append_history(layout, "stage", release_id, params["version"], run_id=params["run_id"],
                   sha256=digest, change_id=params["change_id"])
    return dict(changed=True, diff=diff, release=manifest, bytes=size,
                msg="staged release %s (version %s, %s, %s)" % (
                    release_id, params["version"], _mib(size), "sha256 verified" if expected else "UNVERIFIED"))


def activate(module, params, layout, release_id):
    return activate_release(layout, release_id, owner=params["owner"], verify_content=params["verify_content"],
                            force=params["force"], reason=params["reason"], run_id=params["run_id"],
                            check_mode=module.check_mode)


def mark(module, params, layout, release_id, state):
    return mark_release(layout, release_id, state, reason=params["reason"], run_id=params["run_id"],
                        check_mode=module.check_mode)


def remove(module, params, layout, release_ids, action):
    current_id = layout.current_id()
    if current_id in release_ids:
        raise ReleaseError("Refusing to remove release %s: it is live. Activate another release first." % current_id)
    if not module.check_mode:
        for release_id in release_ids:
            shutil.rmtree(layout.release_dir(release_id))
            append_history(layout, action, release_id, None, run_id=params["run_id"],
                           reason=params["reason"])
    diff = dict(before="".join("releases/%s\n" % r for r in release_ids), after="")
    verb = "would remove" if module.check_mode else "removed"
    return dict(changed=bool(release_ids), diff=diff, removed=release_ids,
                msg="%s %d release(s)%s" % (verb, len(release_ids), (": " + ", ".join(release_ids)) if release_ids else ""))


def run(module, params):
    """Do what ``params`` (the release module's options) ask; raises ReleaseError with the reason."""
    problem = app_root_problem(params["app_root"])
    if problem:
        raise ReleaseError("Invalid app_root %r: it %s. Use a directory of the application's own, such as /opt/myapp."
                           % (params["app_root"], problem))
    layout = Layout(os.path.normpath(params["app_root"]))
    state = params["state"]
    release_id = params["release_id"]
    if state != "pruned":
        problem = release_id_problem(release_id) if release_id is not None else \
            "release_id is required with state=%s" % state
        if problem:
            raise ReleaseError("Invalid release_id: %s." % problem)
    if state == "staged":
        return stage(module, params, layout, release_id)
    if state == "active":
        return activate(module, params, layout, release_id)
    if state in ("good", "failed"):
        return mark(module, params, layout, release_id, state)
    if state == "absent":
        if not os.path.lexists(layout.release_dir(release_id)):
            return dict(changed=False, removed=[], msg="release %s is already absent" % release_id)
        return remove(module, params, layout, [release_id], "remove")
    releases = list_releases(layout)
    chosen = select_prune(releases, layout.current_id(), params["keep"])
    result = remove(module, params, layout, chosen, "prune")
    debris = leftover_temporaries(layout)
    if debris:
        if not module.check_mode:
            for path in debris:
                os.unlink(path)
        names = [os.path.relpath(path, layout.root) for path in debris]
        result["removed_temporaries"] = names
        result["changed"] = True
        result["diff"]["before"] += "".join(name + "\n" for name in names)
        result["msg"] += "; %s %d leftover temporary file(s) of interrupted writes" % (
            "would remove" if module.check_mode else "removed", len(names))
    return result


def irreversible_migration(release_dir, declared=False):
    """Why the release's migration cannot be undone ("" when it can): its MIGRATION_IRREVERSIBLE file, or the inventory."""
    marker = os.path.join(release_dir, MIGRATION_MARKER)
    if os.path.isfile(marker) and not os.path.islink(marker):
        with open(marker, "rb") as handle:
            text = handle.read(300).decode("utf-8", "replace")
        words = " ".join(text.split())[:200]
        return "declared by the release (%s)%s" % (MIGRATION_MARKER, ": " + words if words else "")
    return "declared by the inventory (app_migrate_irreversible)" if declared else ""


def crossed_migrations(releases, target, current):
    """The releases a rollback from ``current`` to ``target`` goes back past whose migration cannot be undone.

    Those that went live on this host after the target last did, up to the live one: going back past them runs
    a release older than their database schema.
    """
    if not target or not current:
        return []
    low, high = release_order(target), release_order(current)
    return [{"release_id": r["release_id"], "version": r.get("version"), "why": r["migration_irreversible"]}
            for r in sorted(releases, key=release_order)
            if r.get("migration_irreversible") and r.get("activated_at") and low < release_order(r) <= high]


def resolve_target(releases, target, current_id):
    """Return (release, problem) for a release id or version."""
    by_id = [r for r in releases if r["release_id"] == target]
    matches = by_id or [r for r in releases if r.get("version") == target]
    if not matches:
        return None, "no release with id or version %s" % target
    usable = [r for r in matches if r.get("complete") and r.get("state") != "failed"]
    if not usable:
        states = ", ".join("%s (%s)" % (r["release_id"], "; ".join(r.get("problems", [])) or r.get("state"))
                           for r in matches)
        return None, "no complete, non-failed release for %s: %s" % (target, states)
    usable.sort(key=lambda r: (r.get("activated_at") or "", r.get("staged_at") or ""))
    return usable[-1], None


def inspect(params):
    """What release_info returns for its options ``params``: the releases, the live one, the lock, a target."""
    layout = Layout(os.path.normpath(params["app_root"]))
    releases = list_releases(layout, with_digest=params.get("verify", False))
    current_id = layout.current_id()
    by_id = dict((r["release_id"], r) for r in releases)
    lock = read_lock(layout.lock)
    if lock is not None:
        lock = dict(lock, stale=is_stale(lock, utcnow()), described=describe(lock))
    result = dict(
        app_root_exists=os.path.isdir(layout.root),
        current=by_id.get(current_id) if current_id else None,
        previous_good=previous_good(releases, current_id),
        releases=releases,
        lock=lock,
    )
    if current_id and current_id not in by_id:
        result["current"] = dict(release_id=current_id, complete=False, problems=["current points at a missing release"])
    target = params.get("target")
    if target or params.get("target_previous_good"):
        if target:
            release, problem = resolve_target(releases, target, current_id)
        elif result["previous_good"]:
            release, problem = result["previous_good"], None
        else:
            release, problem = None, "no previous good release to go back to (is this the first deployment?)"
        if release and not params.get("verify") and tree_digest(release["path"]) != release.get("content_sha256"):
            release, problem = None, "release %s does not verify: its files changed since staging" % release["release_id"]
        if release:
            owner = params.get("owner") or "root"
            try:
                uid = pwd.getpwnam(owner).pw_uid
            except KeyError:
                raise ReleaseError("owner %s is not a user on this host" % owner)
            bad = policy_violations(release["path"], uid)
            if bad:
                release, problem = None, ("release %s breaks the release policy (files owned by %s, not writable by "
                                          "group or others): %s" % (release["release_id"], owner, ", ".join(bad)))
        result["target"] = release
        result["target_problem"] = problem
        result["target_crosses"] = crossed_migrations(releases, release, result["current"])
    return result

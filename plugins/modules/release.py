#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: conveyor.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: release
short_description: Stage, activate, mark, remove and prune immutable application releases
version_added: "0.1.0"
description:
  - Manages the release directories of one application on the managed host, in one module execution
    per action.
  - "Layout: C(<app_root>/releases/<release_id>/) (immutable once complete, with a manifest
    C(.conveyor-release.json)), C(<app_root>/shared/) (persistent paths linked into each release),
    C(<app_root>/current) (a symlink switched atomically) and C(<app_root>/.conveyor/) (history and lock)."
  - O(state=staged) downloads or copies the artifact, verifies its sha256, refuses unsafe archive members,
    unpacks into a temporary directory beside C(releases/), links shared paths, writes the manifest,
    makes the tree read-only for everybody but root and only then renames it into place. A half-unpacked
    release is therefore never visible under its id.
  - "Archive members are resolved against the members before them, before anything is written: a member
    is refused when its path is absolute, has C(..), crosses an earlier symlink or file, or replaces an
    earlier member; a symlink is refused when, followed through the archive's other symlinks, it leads
    outside the release; a hard link is refused unless it names an earlier regular file, and is unpacked
    as an independent copy. Devices and FIFOs are refused. While unpacking, files are created with
    C(O_EXCL|O_NOFOLLOW) below directories checked with C(lstat), and tarfile's C(data) filter is asked
    too where the host's Python has it. No file of a staged release may have more than one link."
  - Shared paths are never linked through a symlink the archive made, nor created through a symlink
    below C(shared/) that root does not own (the app user owns those directories).
  - O(state=active) verifies the manifest and the content digest, then switches C(current) with a new
    symlink renamed over the old one, and returns the release it replaced.
  - O(state=good) and O(state=failed) record the verification outcome. A failed release is never
    chosen as a rollback target and is pruned first.
  - O(state=absent) removes a release, never the live one. O(state=pruned) keeps at most O(keep)
    releases, never removing the live release or the rollback target (the newest good release other
    than the live one), and removing incomplete then failed releases first.
  - Every action appends a line to C(<app_root>/.conveyor/history.jsonl).
author:
  - conveyor.deploy developers (@conveyor-deploy)
extends_documentation_fragment:
  - conveyor.deploy.attributes
attributes:
  check_mode:
    support: full
    details: Works out and reports what would change, including the content verification, without writing.
  diff_mode:
    support: full
options:
  app_root:
    description: Absolute path of the application's root directory.
    type: path
    required: true
  release_id:
    description:
      - Name of the release directory. Letters, digits, C(.), C(_), C(+) and C(-); no C(/), C(..) or whitespace.
      - Required for every state except O(state=pruned).
    type: str
  state:
    description: What to do with the release.
    type: str
    choices: [staged, active, good, failed, absent, pruned]
    default: staged
  src:
    description:
      - Where the artifact comes from, for O(state=staged). An C(http://) or C(https://) URL fetched by
        the managed host, or an absolute path of a file already on it.
      - A C(.tar), C(.tar.gz), C(.tgz), C(.tar.bz2) or C(.tar.xz) archive.
    type: str
  version:
    description: Application version the artifact carries; recorded in the manifest. Required for O(state=staged).
    type: str
  checksum:
    description:
      - Expected sha256 of the artifact, as C(<hex>), C(sha256:<hex>) or a C(sha256sum) output line.
      - One of O(checksum), O(checksum_url) or O(allow_unverified=true) is required for O(state=staged).
    type: str
  checksum_url:
    description: URL of a C(sha256sum)-style file holding the artifact's checksum, fetched by the managed host.
    type: str
  allow_unverified:
    description:
      - Stage without any checksum. An explicit opt-out for throwaway environments; the roles refuse it in production.
    type: bool
    default: false
  shared_paths:
    description:
      - Paths relative to the release that are replaced by symlinks into C(<app_root>/shared/).
        Missing shared directories are created, owned by O(shared_owner).
    type: list
    elements: str
    default: []
  shared_owner:
    description: Owner of shared directories this module creates.
    type: str
    default: root
  shared_group:
    description: Group of shared directories this module creates.
    type: str
    default: root
  owner:
    description: Owner of every file of a staged release. The app user can read but never write them.
    type: str
    default: root
  group:
    description: Group of every file of a staged release.
    type: str
    default: root
  change_id:
    description: Change or ticket id recorded in the manifest and history.
    type: str
  staged_by:
    description: Who asked for the release (for example C(alice@controller)); recorded in the manifest.
    type: str
  run_id:
    description: Identifier of the deployment run, recorded in the history.
    type: str
  verify_content:
    description:
      - With O(state=active), recompute the content digest and refuse a release whose files changed
        since staging. Costs one read of the release; turn off only for very large releases.
    type: bool
    default: true
  force:
    description: With O(state=active), allow activating a release marked failed (for forensics only).
    type: bool
    default: false
  reason:
    description:
      - Why the release was marked, removed, activated or forced; recorded in the history, and in the manifest
        (C(reason) for marks, C(activated_reason) for activations, which a rollback uses to recognise its own work).
    type: str
  keep:
    description:
      - With O(state=pruned), how many releases to keep. The live release and the rollback target
        are kept in any case.
    type: int
    default: 5
  timeout:
    description: Seconds allowed for each HTTP request.
    type: int
    default: 60
  validate_certs:
    description: Verify TLS certificates of O(src) and O(checksum_url).
    type: bool
    default: true
notes:
  - Needs only the Python standard library on the managed host.
  - A deploy lock (M(conveyor.deploy.deploy_lock)) keeps two runs from working on the same host at once.
seealso:
  - module: conveyor.deploy.release_info
  - module: conveyor.deploy.deploy_lock
"""

EXAMPLES = r"""
- name: Stage 2.0.0 on every host, checksum published beside the artifact
  conveyor.deploy.release:
    app_root: /opt/shop
    release_id: 20261127T101500Z-2.0.0
    version: 2.0.0
    src: https://artifacts.example.com/shop/shop-2.0.0.tar.gz
    checksum_url: https://artifacts.example.com/shop/shop-2.0.0.tar.gz.sha256
    shared_paths: [logs, var/uploads]
    shared_owner: shop
    shared_group: shop
    change_id: CHG-1042
  register: shop_stage

- name: Switch current to the staged release
  conveyor.deploy.release:
    app_root: /opt/shop
    release_id: "{{ shop_stage.release.release_id }}"
    state: active
  register: shop_switch

- name: Show what it replaced
  ansible.builtin.debug:
    msg: "{{ shop_switch.previous.release_id | default('nothing') }} -> {{ shop_switch.release.release_id }}"

- name: Record that verification passed
  conveyor.deploy.release:
    app_root: /opt/shop
    release_id: 20261127T101500Z-2.0.0
    state: good

- name: Keep five releases, never the live one or the rollback target
  conveyor.deploy.release:
    app_root: /opt/shop
    state: pruned
    keep: 5
"""

RETURN = r"""
release:
  description: The manifest of the release acted on, after the action.
  returned: when a release was named and exists (or would exist in check mode)
  type: dict
  sample:
    release_id: 20261127T101500Z-2.0.0
    version: 2.0.0
    state: active
    sha256: 0c01804c6bf6f2b3e9e0b0c8d1c9d5c0b7c4c7a0b7f8f0a1d2c3b4a5f6e7d8c9
    content_sha256: 7b1f0e3a9c...
    source: https://artifacts.example.com/shop/shop-2.0.0.tar.gz
    staged_at: "2026-11-27T10:15:02.114233Z"
    staged_by: alice@controller
    activated_at: "2026-11-27T10:16:40.020011Z"
    change_id: CHG-1042
previous:
  description: With O(state=active), the manifest of the release C(current) pointed at before, if any.
  returned: when O(state=active)
  type: dict
  sample: {release_id: 20261120T091000Z-1.0.0, version: 1.0.0, state: good}
removed:
  description: Release ids removed (or that would be removed in check mode).
  returned: when O(state=absent) or O(state=pruned)
  type: list
  elements: str
  sample: [.tmp-20261126T080000Z-1.1.0-abc123, 20261101T090000Z-0.9.0]
bytes:
  description: Size of the artifact staged.
  returned: when O(state=staged) and something was staged
  type: int
  sample: 1051125
msg:
  description: One sentence saying what happened.
  returned: always
  type: str
  sample: staged release 20261127T101500Z-2.0.0 (version 2.0.0, 1.0 MiB, sha256 verified)
"""

import errno
import grp
import hashlib
import os
import pwd
import shutil
import stat
import tarfile
import tempfile

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.common.text.converters import to_native
from ansible.module_utils.urls import fetch_url

from ansible_collections.conveyor.deploy.plugins.module_utils._release import (
    MANIFEST, MANIFEST_FORMAT, TMP_PREFIX, Layout, ReleaseError, activate_release, append_history,
    app_root_problem, harden_tree, isoformat, list_releases, manifest_problems, mark_release, member_problems,
    normalise_sha256, path_parts, read_manifest, release_id_problem, select_prune, tree_digest, write_json_atomic,
)

CHUNK = 1 << 20


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


def _open_url(module, url, what):
    response, info = fetch_url(module, url, timeout=module.params["timeout"])
    status = info.get("status", -1)
    if status != 200 or response is None:
        cause = info.get("msg", "no answer")
        if status == -1:
            raise ReleaseError("Could not fetch the %s %s: %s. Check that the host can reach it." % (what, url, cause))
        raise ReleaseError("Could not fetch the %s %s: HTTP %s (%s). Check the URL and the version."
                           % (what, url, status, cause), status=status)
    return response


def expected_checksum(module):
    params = module.params
    if params["checksum"]:
        value = normalise_sha256(params["checksum"])
        if not value:
            raise ReleaseError("Could not use checksum %r: expected 64 hex digits, optionally prefixed "
                               "with 'sha256:'." % params["checksum"])
        return value
    if params["checksum_url"]:
        text = to_native(_open_url(module, params["checksum_url"], "checksum file").read(4096))
        value = normalise_sha256(text)
        if not value:
            raise ReleaseError("Could not read a sha256 from %s: it should hold '<64 hex digits>  <file>'."
                               % params["checksum_url"])
        return value
    return None


def download(module, src, dest_dir):
    """Copy or fetch ``src`` into a temp file in ``dest_dir``; return (path, sha256, size)."""
    fd, path = tempfile.mkstemp(prefix=TMP_PREFIX + "download-", dir=dest_dir)
    digest = hashlib.sha256()
    size = 0
    try:
        with os.fdopen(fd, "wb") as out:
            if src.startswith(("http://", "https://")):
                source = _open_url(module, src, "artifact")
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


def link_shared(module, layout, tmp_dir, uid, gid):
    for given in module.params["shared_paths"]:
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


def stage(module, layout, release_id):
    params = module.params
    rel_dir = layout.release_dir(release_id)
    if not params["src"] or not params["version"]:
        raise ReleaseError("Could not stage %s: src and version are required with state=staged." % release_id)
    existing = read_manifest(rel_dir) if os.path.isdir(rel_dir) else None
    expected = expected_checksum(module)
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
            archive, digest, size = download(module, params["src"], layout.releases)
        except (IOError, OSError) as exc:
            if getattr(exc, "errno", None) in (errno.ENOSPC, errno.EDQUOT):
                raise space_error(layout.releases, exc)
            raise
        if expected and digest != expected:
            raise ReleaseError("Refusing the artifact %s: sha256 mismatch (expected %s, got %s). "
                               "The download is corrupt or the artifact was replaced."
                               % (params["src"], expected, digest), expected=expected, actual=digest)
        unpack(archive, tmp_dir)
        link_shared(module, layout, tmp_dir, suid, sgid)
        harden_tree(tmp_dir, uid, gid)
        manifest = dict(
            format=MANIFEST_FORMAT, release_id=release_id, version=params["version"], source=params["src"],
            sha256=digest, verified=bool(expected), content_sha256=tree_digest(tmp_dir),
            staged_at=isoformat(), staged_by=params["staged_by"], change_id=params["change_id"],
            state="staged", size=size, shared_paths=params["shared_paths"],
        )
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


def activate(module, layout, release_id):
    params = module.params
    return activate_release(layout, release_id, owner=params["owner"], verify_content=params["verify_content"],
                            force=params["force"], reason=params["reason"], run_id=params["run_id"],
                            check_mode=module.check_mode)


def mark(module, layout, release_id, state):
    params = module.params
    return mark_release(layout, release_id, state, reason=params["reason"], run_id=params["run_id"],
                        check_mode=module.check_mode)


def remove(module, layout, release_ids, action):
    current_id = layout.current_id()
    if current_id in release_ids:
        raise ReleaseError("Refusing to remove release %s: it is live. Activate another release first." % current_id)
    if not module.check_mode:
        for release_id in release_ids:
            shutil.rmtree(layout.release_dir(release_id))
            append_history(layout, action, release_id, None, run_id=module.params["run_id"],
                           reason=module.params["reason"])
    diff = dict(before="".join("releases/%s\n" % r for r in release_ids), after="")
    verb = "would remove" if module.check_mode else "removed"
    return dict(changed=bool(release_ids), diff=diff, removed=release_ids,
                msg="%s %d release(s)%s" % (verb, len(release_ids), (": " + ", ".join(release_ids)) if release_ids else ""))


def run(module):
    params = module.params
    problem = app_root_problem(params["app_root"])
    if problem:
        raise ReleaseError("Invalid app_root: %s. Use an absolute path such as /opt/myapp." % problem)
    layout = Layout(os.path.normpath(params["app_root"]))
    state = params["state"]
    release_id = params["release_id"]
    if state != "pruned":
        problem = release_id_problem(release_id) if release_id is not None else \
            "release_id is required with state=%s" % state
        if problem:
            raise ReleaseError("Invalid release_id: %s." % problem)
    if state == "staged":
        return stage(module, layout, release_id)
    if state == "active":
        return activate(module, layout, release_id)
    if state in ("good", "failed"):
        return mark(module, layout, release_id, state)
    if state == "absent":
        if not os.path.lexists(layout.release_dir(release_id)):
            return dict(changed=False, removed=[], msg="release %s is already absent" % release_id)
        return remove(module, layout, [release_id], "remove")
    releases = list_releases(layout)
    chosen = select_prune(releases, layout.current_id(), params["keep"])
    return remove(module, layout, chosen, "prune")


def main():
    module = AnsibleModule(
        argument_spec=dict(
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
        ),
        mutually_exclusive=[("checksum", "checksum_url")],
        required_if=[("state", "staged", ("src", "version"))],
        supports_check_mode=True,
    )
    if module.params["keep"] < 1:
        module.fail_json(msg="Invalid keep %d: keep at least 1 release." % module.params["keep"])
    try:
        result = run(module)
    except ReleaseError as exc:
        module.fail_json(msg=exc.msg, **exc.context)
    except (IOError, OSError) as exc:
        module.fail_json(msg="Could not %s under %s: %s. Run the task with become (root) and check the disk."
                         % (module.params["state"], module.params["app_root"], to_native(exc)))
    if not module._diff:
        result.pop("diff", None)
    module.exit_json(**result)


if __name__ == "__main__":
    main()

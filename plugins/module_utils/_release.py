# -*- coding: utf-8 -*-
# Copyright: conveyor.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Release layout, manifests, archive safety and retention for conveyor.deploy.

Private to the collection.  The pure functions (no file system access) are the
ones the unit tests drive directly: ``release_id_problem``, ``member_problems``,
``select_prune``, ``previous_good`` and ``manifest_problems``.

Layout under ``app_root``::

    releases/<release_id>/            immutable once complete
    releases/<release_id>/.conveyor-release.json   the manifest
    releases/.tmp-<release_id>-*      staging in progress (never live)
    shared/                           persistent paths linked into releases
    current -> releases/<release_id>  switched atomically (symlink + rename)
    .conveyor/history.jsonl           one JSON line per action
    .conveyor/deploy.lock             the deploy lock
"""

from __future__ import annotations

import datetime
import getpass
import hashlib
import json
import os
import posixpath
import re
import socket
import stat
import tempfile

MANIFEST = ".conveyor-release.json"
MANIFEST_FORMAT = 1
TMP_PREFIX = ".tmp-"
STATES = ("staged", "active", "good", "failed")
RELEASE_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,127}$")
SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
REQUIRED_MANIFEST_KEYS = ("format", "release_id", "version", "state", "content_sha256", "staged_at")


class ReleaseError(Exception):
    """A refusal with a message meant for the operator."""

    def __init__(self, msg, **context):
        super().__init__(msg)
        self.msg = msg
        self.context = context


def utcnow():
    return datetime.datetime.now(datetime.timezone.utc)


def isoformat(moment=None):
    moment = moment or utcnow()
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_time(text):
    """Parse the timestamps this module writes (UTC, ``Z`` suffix)."""
    if not text:
        return None
    text = text.replace("Z", "+00:00")
    try:
        return datetime.datetime.fromisoformat(text)
    except ValueError:
        return None


def actor():
    try:
        user = getpass.getuser()
    except Exception:  # pragma: no cover - no passwd entry
        user = str(os.getuid())
    return "%s@%s" % (user, socket.gethostname())


# --------------------------------------------------------------------------- pure checks

def release_id_problem(release_id):
    """Return why ``release_id`` is unusable as a directory name, or None."""
    if not isinstance(release_id, str) or not release_id:
        return "the release id is empty"
    if any(ch.isspace() for ch in release_id):
        return "release id %r contains whitespace" % release_id
    if "/" in release_id or "\\" in release_id:
        return "release id %r contains a path separator" % release_id
    if ".." in release_id:
        return "release id %r contains '..'" % release_id
    if not RELEASE_ID_RE.match(release_id):
        return ("release id %r must start with a letter or digit and use only letters, digits, "
                "'.', '_', '+' and '-' (at most 128 characters)" % release_id)
    return None


# Directories an application root must not be: the system's own (a release switch or prune there would
# replace or remove what the system runs on).
SYSTEM_DIRS = frozenset(["/", "/bin", "/boot", "/dev", "/etc", "/home", "/lib", "/lib32", "/lib64", "/media",
                         "/mnt", "/opt", "/proc", "/root", "/run", "/sbin", "/srv", "/sys", "/tmp", "/usr",
                         "/usr/bin", "/usr/lib", "/usr/local", "/usr/sbin", "/usr/share", "/var", "/var/lib",
                         "/var/log", "/var/tmp"])


def app_root_problem(app_root):
    """Why ``app_root`` cannot be an application root (a clause such as "must be an absolute path"), or None."""
    if not isinstance(app_root, str) or not app_root.startswith("/"):
        return "must be an absolute path"
    if any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in app_root):
        return "must not contain whitespace or control characters"
    trimmed = app_root.rstrip("/") or "/"
    if app_root.startswith("//") or posixpath.normpath(trimmed) != trimmed:
        return "must be a normalised path (no '//', '.' or '..' parts)"
    if trimmed in SYSTEM_DIRS:
        return "is a system directory"
    return None


def normalise_sha256(value):
    """Accept ``<hex>``, ``sha256:<hex>`` or a ``sha256sum`` line; return the hex digest or None."""
    if value is None:
        return None
    text = str(value).strip()
    if text.lower().startswith("sha256:"):
        text = text[7:]
    text = text.split()[0].lower() if text else ""
    return text if SHA256_RE.match(text) else None


MAX_LINK_HOPS = 40


def path_parts(path):
    """Components of an archive-relative path, ``.`` and empty ones dropped, ``..`` kept."""
    return [part for part in path.split("/") if part not in ("", ".")]


def _resolve(tree, parts):
    """Where ``parts`` lead once the archive's own symlinks are followed.

    ``tree`` maps archive paths to ``(kind, linkname)``. Components the archive does not
    define are plain directories or files it creates. Returns the resolved components,
    ``None`` when the path climbs above the release, or ``"loop"`` after
    ``MAX_LINK_HOPS`` symlinks (a cycle).
    """
    resolved = []
    queue = list(parts)
    hops = 0
    while queue:
        part = queue.pop(0)
        if part == "..":
            if not resolved:
                return None
            resolved.pop()
            continue
        entry = tree.get("/".join(resolved + [part]))
        if entry is not None and entry[0] == "symlink":
            hops += 1
            if hops > MAX_LINK_HOPS:
                return "loop"
            if entry[1].startswith("/"):
                return None
            queue = path_parts(entry[1]) + queue
            continue
        resolved.append(part)
    return resolved


def _kind(member):
    if member.isdir():
        return "dir"
    if member.issym():
        return "symlink"
    if member.islnk():
        return "hardlink"
    if member.isfile():
        return "file"
    return "special"


def member_problems(members):
    """Check archive members, each against the members before it, before anything is extracted.

    ``members`` are objects with ``name``, ``linkname`` and the ``isfile()``, ``isdir()``,
    ``issym()``, ``islnk()`` methods (``tarfile.TarInfo``), in archive order.  A member is
    refused when its path is absolute, has ``..``, or crosses an earlier symlink or file;
    when it would replace an earlier member (other than a directory by a directory); when it
    is a device or FIFO; when it is a hard link to anything but an earlier regular file; and
    when it is a symlink that, followed through the archive's other symlinks, leads outside
    the release (checked again once every member is known, since a later symlink can change
    where an earlier one leads).  Returns a list of human-readable problems; empty means safe.
    """
    problems = []
    tree = {}
    for member in members:
        name = member.name
        kind = _kind(member)
        if "\x00" in name or "\x00" in (member.linkname or ""):
            problems.append("%r: NUL byte in the name" % name)
            continue
        if name.startswith("/"):
            problems.append("%s: absolute path" % name)
            continue
        parts = path_parts(name)
        if ".." in parts:
            problems.append("%s: '..' in the path" % name)
            continue
        if not parts:
            if kind != "dir":
                problems.append("%s: names the release directory itself but is not a directory" % name)
            continue
        problem = _parent_problem(tree, parts)
        if problem:
            problems.append("%s: %s" % (name, problem))
            continue
        path = "/".join(parts)
        earlier = tree.get(path)
        if earlier is not None and not (earlier[0] == "dir" and kind == "dir"):
            problems.append("%s: appears twice in the archive (would replace the earlier %s)" % (name, earlier[0]))
            continue
        if kind == "special":
            problems.append("%s: device, FIFO or other special file" % name)
            continue
        if kind == "symlink":
            target = member.linkname
            if target.startswith("/"):
                problems.append("%s: symlink to absolute path %s" % (name, target))
                continue
            found = _resolve(tree, parts[:-1] + path_parts(target))
            if found is None or found == "loop":
                problems.append("%s: symlink %s (%s)" % (
                    name, "loop" if found == "loop" else "pointing outside the release", target))
                continue
        elif kind == "hardlink":
            target_parts = path_parts(member.linkname)
            if member.linkname.startswith("/") or ".." in target_parts or \
                    (tree.get("/".join(target_parts)) or ("",))[0] != "file":
                problems.append("%s: hard link to %s, which is not an earlier regular file of the archive "
                                "(hard link pointing outside the release or at a link)" % (name, member.linkname))
                continue
            kind = "file"
        tree[path] = (kind, member.linkname if kind == "symlink" else "")
    # Every symlink once more, against the complete archive.
    for path, (kind, target) in sorted(tree.items()):
        if kind == "symlink":
            found = _resolve(tree, path_parts(path)[:-1] + path_parts(target))
            if found is None or found == "loop":
                problems.append("%s: symlink %s (%s) once later members are in place" % (
                    path, "loop" if found == "loop" else "pointing outside the release", target))
    return problems


def _parent_problem(tree, parts):
    """Why the directories leading to ``parts`` are not plain directories of the archive, or None."""
    for depth in range(1, len(parts)):
        prefix = "/".join(parts[:depth])
        entry = tree.get(prefix)
        if entry is None:
            tree[prefix] = ("dir", "")
        elif entry[0] == "symlink":
            return "crosses the symlink %s (-> %s) of the same archive" % (prefix, entry[1])
        elif entry[0] != "dir":
            return "its parent %s is a file of the same archive" % prefix
    return None


def manifest_problems(manifest, release_id=None):
    """Problems with a parsed manifest's structure (not its content digest)."""
    if not isinstance(manifest, dict):
        return ["the manifest is not a JSON object"]
    problems = ["the manifest lacks %r" % key for key in REQUIRED_MANIFEST_KEYS if key not in manifest]
    if manifest.get("state") not in STATES:
        problems.append("the manifest state %r is not one of %s" % (manifest.get("state"), ", ".join(STATES)))
    if release_id is not None and manifest.get("release_id") != release_id:
        problems.append("the manifest names release %r, not %r" % (manifest.get("release_id"), release_id))
    return problems


def release_order(release):
    """Releases sort by when they last went live, then by when they were staged."""
    return (release.get("activated_at") or "", release.get("staged_at") or "", release.get("release_id") or "")


_sort_key = release_order


def previous_good(releases, current_id):
    """The newest complete, good release other than the live one (the rollback target)."""
    candidates = [r for r in releases
                  if r.get("complete") and r.get("state") == "good" and r.get("release_id") != current_id]
    if not candidates:
        return None
    return sorted(candidates, key=_sort_key)[-1]


def select_prune(releases, current_id, keep):
    """Choose the releases to remove so that at most ``keep`` remain.

    Never the live release nor the rollback target (newest good other than
    live), whatever ``keep`` says.  Incomplete releases go first, failed ones
    next, then the oldest.  Returns a list of release ids.
    """
    protected = {current_id}
    target = previous_good(releases, current_id)
    if target:
        protected.add(target["release_id"])

    def rank(release):
        if not release.get("complete"):
            group = 0
        elif release.get("state") == "failed":
            group = 1
        else:
            group = 2
        return (group,) + _sort_key(release)

    removable = sorted((r for r in releases if r.get("release_id") not in protected), key=rank)
    excess = len(releases) - keep
    chosen = []
    for release in removable:
        # Incomplete releases are debris and always go; the rest only while over ``keep``.
        if not release.get("complete") or len(chosen) < excess:
            chosen.append(release["release_id"])
    return chosen


# --------------------------------------------------------------------------- file system

class Layout(object):
    def __init__(self, app_root):
        self.root = app_root
        self.releases = os.path.join(app_root, "releases")
        self.shared = os.path.join(app_root, "shared")
        self.current = os.path.join(app_root, "current")
        self.meta = os.path.join(app_root, ".conveyor")
        self.history = os.path.join(self.meta, "history.jsonl")
        self.lock = os.path.join(self.meta, "deploy.lock")

    def release_dir(self, release_id):
        return os.path.join(self.releases, release_id)

    def current_id(self):
        """The release ``current`` points at, or None."""
        try:
            target = os.readlink(self.current)
        except OSError:
            return None
        return os.path.basename(target.rstrip("/"))

    def ensure_dirs(self):
        for path in (self.root, self.releases, self.shared, self.meta):
            if not os.path.isdir(path):
                os.makedirs(path, 0o755)


def read_manifest(release_dir):
    """Return the parsed manifest, or None when it is missing or unreadable."""
    try:
        with open(os.path.join(release_dir, MANIFEST), "r") as handle:
            return json.load(handle)
    except (OSError, ValueError):
        return None


def write_json_atomic(path, data, mode=0o644, scratch_dir=None, prefix=TMP_PREFIX):
    """Write ``path`` whole or not at all: a temporary file renamed over it.

    ``scratch_dir`` holds the temporary file (same file system as ``path``): a manifest's goes beside
    its release, never inside it, so an interrupted write cannot leave a file that breaks the
    release's content digest. Leftovers there are removed by pruning (``leftover_temporaries``).
    """
    directory = scratch_dir or os.path.dirname(path)
    fd, tmp = tempfile.mkstemp(prefix=prefix, dir=directory)
    try:
        with os.fdopen(fd, "w") as handle:
            json.dump(data, handle, indent=2, sort_keys=True)
            handle.write("\n")
        os.chmod(tmp, mode)
        os.rename(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


MANIFEST_SCRATCH = TMP_PREFIX + "manifest-"
DOWNLOAD_SCRATCH = TMP_PREFIX + "download-"


def write_manifest(layout, release_id, manifest):
    """Rewrite a release's manifest; the temporary file lives in releases/, beside the release."""
    write_json_atomic(os.path.join(layout.release_dir(release_id), MANIFEST), manifest, scratch_dir=layout.releases,
                      prefix=MANIFEST_SCRATCH)


def leftover_temporaries(layout):
    """What interrupted writes left behind: downloads and manifest rewrites in releases/, and a
    half-made ``current`` link in app_root. Never a directory (an unfinished staging directory is an
    incomplete release, which pruning removes as one) and never anything the lock holder could be
    writing now: pruning runs under the deploy lock, after staging.
    """
    found = []
    if os.path.isdir(layout.releases):
        for name in sorted(os.listdir(layout.releases)):
            path = os.path.join(layout.releases, name)
            if name.startswith((MANIFEST_SCRATCH, DOWNLOAD_SCRATCH)) and not os.path.isdir(path):
                found.append(path)
    if os.path.isdir(layout.root):
        for name in sorted(os.listdir(layout.root)):
            path = os.path.join(layout.root, name)
            if name.startswith(".current.tmp-") and os.path.islink(path):
                found.append(path)
    return found


def tree_digest(root, exclude=(MANIFEST,)):
    """sha256 over every path, type, mode, link target and file content below ``root``.

    Symlinks are recorded, never followed.  The manifest itself is excluded so
    state changes do not alter the digest.
    """
    digest = hashlib.sha256()
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        rel_dir = os.path.relpath(dirpath, root)
        entries = sorted(dirnames + filenames)
        for name in entries:
            rel = os.path.normpath(os.path.join(rel_dir, name))
            if rel in exclude:
                continue
            path = os.path.join(dirpath, name)
            info = os.lstat(path)
            mode = stat.S_IMODE(info.st_mode)
            if stat.S_ISLNK(info.st_mode):
                digest.update(("L %s -> %s\n" % (rel, os.readlink(path))).encode("utf-8", "surrogateescape"))
            elif stat.S_ISDIR(info.st_mode):
                digest.update(("D %s %o\n" % (rel, mode)).encode("utf-8", "surrogateescape"))
            elif stat.S_ISREG(info.st_mode):
                digest.update(("F %s %o " % (rel, mode)).encode("utf-8", "surrogateescape"))
                with open(path, "rb") as handle:
                    for chunk in iter(lambda: handle.read(1 << 20), b""):
                        digest.update(chunk)
                digest.update(b"\n")
            else:
                digest.update(("S %s\n" % rel).encode("utf-8", "surrogateescape"))
    return digest.hexdigest()


def policy_violations(root, owner_uid=0, limit=20):
    """Files not owned by ``owner_uid`` or writable by group or others (symlinks skipped)."""
    bad = []
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            info = os.lstat(path)
            if stat.S_ISLNK(info.st_mode):
                continue
            rel = os.path.relpath(path, root)
            if info.st_uid != owner_uid:
                bad.append("%s (owned by uid %d)" % (rel, info.st_uid))
            elif info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
                bad.append("%s (mode %04o is group- or world-writable)" % (rel, stat.S_IMODE(info.st_mode)))
            if len(bad) >= limit:
                return bad
    return bad


def harden_tree(root, uid, gid):
    """Owner ``uid:gid``; everything readable, nothing writable by group or others."""
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames + ["."]:
            path = os.path.normpath(os.path.join(dirpath, name))
            info = os.lstat(path)
            if stat.S_ISLNK(info.st_mode):
                os.lchown(path, uid, gid)
                continue
            if stat.S_ISREG(info.st_mode) and info.st_nlink > 1:
                raise ReleaseError("Refusing the release: %s has %d hard links, so changing it would change "
                                   "a file outside the release too." % (os.path.relpath(path, root), info.st_nlink))
            mode = stat.S_IMODE(info.st_mode)
            if stat.S_ISDIR(info.st_mode):
                mode = 0o755
            else:
                mode = (mode | 0o444) & ~0o022 & 0o7777
                if mode & 0o100:
                    mode |= 0o011
            os.chown(path, uid, gid)
            os.chmod(path, mode)


def list_releases(layout, with_digest=False):
    """Every entry under ``releases/`` with its manifest data and completeness."""
    found = []
    if not os.path.isdir(layout.releases):
        return found
    for name in sorted(os.listdir(layout.releases)):
        path = os.path.join(layout.releases, name)
        if not os.path.isdir(path) or os.path.islink(path):
            continue
        entry = {"release_id": name, "path": path, "complete": False, "state": None}
        if name.startswith(TMP_PREFIX):
            entry["problems"] = ["staging never finished (temporary directory)"]
            found.append(entry)
            continue
        manifest = read_manifest(path)
        if manifest is None:
            entry["problems"] = ["no readable manifest %s" % MANIFEST]
            found.append(entry)
            continue
        problems = manifest_problems(manifest, name)
        if with_digest and not problems and tree_digest(path) != manifest.get("content_sha256"):
            problems.append("the release content does not match the manifest's content_sha256")
        entry.update(manifest)
        entry["release_id"] = name
        entry["path"] = path
        entry["complete"] = not problems
        if problems:
            entry["problems"] = problems
        found.append(entry)
    return found


def append_history(layout, action, release_id=None, version=None, result="ok", **extra):
    if not os.path.isdir(layout.meta):
        os.makedirs(layout.meta, 0o755)
    record = {"time": isoformat(), "action": action, "release_id": release_id, "version": version,
              "result": result, "by": actor()}
    record.update({k: v for k, v in extra.items() if v is not None})
    line = json.dumps(record, sort_keys=True) + "\n"
    fd = os.open(layout.history, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        os.write(fd, line.encode("utf-8"))
    finally:
        os.close(fd)
    return record


def switch_symlink(link, target):
    """Point ``link`` at ``target`` atomically: a new symlink renamed over the old one."""
    directory = os.path.dirname(link)
    tmp = os.path.join(directory, ".%s.tmp-%d" % (os.path.basename(link), os.getpid()))
    if os.path.lexists(tmp):
        os.unlink(tmp)
    os.symlink(target, tmp)
    try:
        os.rename(tmp, link)
    except BaseException:
        os.unlink(tmp)
        raise


# --------------------------------------------------------------------------- actions shared by modules

def owner_uid(owner):
    import pwd
    try:
        return pwd.getpwnam(owner).pw_uid
    except KeyError:
        raise ReleaseError("Could not find user %s: create it first (the environment role does)." % owner)


def verified_manifest(layout, release_id, owner="root", verify_content=True):
    """The manifest of a complete release whose content still matches, or a ReleaseError."""
    rel_dir = layout.release_dir(release_id)
    if not os.path.isdir(rel_dir):
        raise ReleaseError("Release %s does not exist in %s." % (release_id, layout.releases))
    manifest = read_manifest(rel_dir)
    if manifest is None:
        raise ReleaseError("Release %s is incomplete: it has no readable %s." % (release_id, MANIFEST))
    problems = manifest_problems(manifest, release_id)
    if problems:
        raise ReleaseError("Release %s has a broken manifest: %s." % (release_id, "; ".join(problems)))
    if verify_content and tree_digest(rel_dir) != manifest["content_sha256"]:
        raise ReleaseError("Release %s does not verify: its files changed since staging (content digest "
                           "mismatch). Stage it again under a new id." % release_id)
    bad = policy_violations(rel_dir, owner_uid(owner))
    if bad:
        raise ReleaseError("Release %s breaks the release policy (files owned by %s, not writable by group or "
                           "others): %s." % (release_id, owner, ", ".join(bad)), files=bad)
    return manifest


def _current_text(current_id):
    return "current -> %s\n" % (("releases/" + current_id) if current_id else "(none)")


def activate_release(layout, release_id, owner="root", verify_content=True, force=False, reason=None,
                     run_id=None, check_mode=False):
    """Switch ``current`` to a verified release; return {changed, release, previous, diff, msg}."""
    current_id = layout.current_id()
    diff = dict(before=_current_text(current_id), after="current -> releases/%s\n" % release_id)
    if check_mode and not os.path.lexists(layout.release_dir(release_id)):
        # A check-mode run previews staging too, so the release it would switch to is not there.
        return dict(changed=True, release=dict(release_id=release_id, state="staged"), previous=None, diff=diff,
                    msg="would switch current from %s to %s once it is staged" % (current_id or "nothing", release_id))
    manifest = verified_manifest(layout, release_id, owner, verify_content)
    if manifest["state"] == "failed" and not force:
        raise ReleaseError("Refusing to activate release %s: it is marked failed%s. Use force=true with a "
                           "reason only for forensics." % (release_id, (" (%s)" % manifest.get("reason"))
                                                           if manifest.get("reason") else ""))
    previous = read_manifest(layout.release_dir(current_id)) if current_id else None
    if current_id == release_id:
        return dict(changed=False, release=manifest, previous=previous, msg="release %s is already live" % release_id)
    if check_mode:
        return dict(changed=True, diff=diff, release=manifest, previous=previous,
                    msg="would switch current from %s to %s" % (current_id or "nothing", release_id))
    if os.path.exists(layout.current) and not os.path.islink(layout.current):
        raise ReleaseError("Could not switch %s: it is a real directory, not a symlink. Move it aside first."
                           % layout.current)
    switch_symlink(layout.current, os.path.join("releases", release_id))
    if manifest["state"] == "staged":
        manifest["state"] = "active"
    manifest["activated_at"] = isoformat()
    manifest["activated_reason"] = reason
    manifest["activated_from"] = current_id
    manifest["activated_run"] = run_id
    write_manifest(layout, release_id, manifest)
    append_history(layout, "activate", release_id, manifest.get("version"), run_id=run_id,
                   previous=current_id, forced=force or None)
    return dict(changed=True, diff=diff, release=manifest, previous=previous,
                msg="switched current from %s to %s" % (current_id or "nothing", release_id))


def mark_release(layout, release_id, state, reason=None, run_id=None, check_mode=False):
    """Record a release good or failed; return {changed, release, diff, msg}."""
    rel_dir = layout.release_dir(release_id)
    manifest = read_manifest(rel_dir) if os.path.isdir(rel_dir) else None
    if manifest is None or manifest_problems(manifest, release_id):
        raise ReleaseError("Could not mark release %s %s: it does not exist or is incomplete." % (release_id, state))
    if manifest["state"] == state:
        return dict(changed=False, release=manifest, msg="release %s is already %s" % (release_id, state))
    diff = dict(before="state: %s\n" % manifest["state"], after="state: %s\n" % state)
    manifest = dict(manifest, state=state, marked_at=isoformat())
    if reason:
        manifest["reason"] = reason
    if not check_mode:
        write_manifest(layout, release_id, manifest)
        append_history(layout, "mark_" + state, release_id, manifest.get("version"), run_id=run_id, reason=reason)
    return dict(changed=True, diff=diff, release=manifest, msg="marked release %s %s" % (release_id, state))

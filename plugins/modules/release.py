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
  migration_irreversible:
    description:
      - With O(state=staged), record in the manifest that this release's database migration cannot be undone, as a
        release does itself by carrying a C(MIGRATION_IRREVERSIBLE) file at its top (whose text says why).
      - A rollback that would go back past such a release, once it went live, is refused unless the operator
        gives a reason (the rollback playbook's C(rollback_past_migration_reason)).
    type: bool
    default: false
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
  url_username:
    description:
      - The user to fetch O(src) and O(checksum_url) as (HTTP basic auth, sent with the first request). Credentials
        never go in the URL, which is printed and kept in the manifest.
    type: str
  url_password:
    description: The password of O(url_username). Never logged.
    type: str
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
removed_temporaries:
  description:
    - With O(state=pruned), what interrupted writes left (a download or a manifest rewrite in C(releases/), a
      half-made C(current) link), relative to O(app_root); removed, or to be removed in check mode.
  returned: when O(state=pruned) found any
  type: list
  elements: str
  sample: [releases/.tmp-download-k2j3h4, .current.tmp-4121]
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

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.common.text.converters import to_native

from ansible_collections.conveyor.deploy.plugins.module_utils._release import ReleaseError
from ansible_collections.conveyor.deploy.plugins.module_utils._release_ops import ARGUMENT_SPEC, run


def main():
    module = AnsibleModule(
        argument_spec=ARGUMENT_SPEC,
        mutually_exclusive=[("checksum", "checksum_url")],
        required_if=[("state", "staged", ("src", "version"))],
        supports_check_mode=True,
    )
    if module.params["keep"] < 1:
        module.fail_json(msg="Invalid keep %d: keep at least 1 release." % module.params["keep"])
    try:
        result = run(module, module.params)
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

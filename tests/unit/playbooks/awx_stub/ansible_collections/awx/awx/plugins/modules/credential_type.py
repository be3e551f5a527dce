# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Stand-in for awx.awx.credential_type (tests/unit/playbooks/awx_stub/README.md)."""
from __future__ import annotations

from ansible_collections.awx.awx.plugins.module_utils.stub import run

if __name__ == "__main__":
    run("credential_type")

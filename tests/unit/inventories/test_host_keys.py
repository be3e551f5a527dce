"""SSH host keys are checked for every shipped inventory, even where the environment turns Ansible's check off
(as AWX's job environment does): the ssh command Ansible builds says StrictHostKeyChecking=yes first."""
import os
import re
import subprocess

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
BIN = os.path.join(ROOT, ".venv", "bin")


def test_the_shipped_config_does_not_switch_host_key_checking_off():
    with open(os.path.join(ROOT, "ansible.cfg")) as handle:
        settings = [line.split("#")[0].strip().replace(" ", "") for line in handle]
    assert not [line for line in settings if line.lower().startswith("host_key_checking=")]


@pytest.mark.parametrize("inventory", ["prod", "staging"])
def test_an_example_inventory_pins_its_keys_even_with_checking_turned_off_in_the_environment(inventory):
    host = "shop-app-01.%s.example.com" % inventory
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), ANSIBLE_HOST_KEY_CHECKING="False",
               ANSIBLE_VAULT_IDENTITY_LIST="", ANSIBLE_SSH_RETRIES="0", ANSIBLE_TIMEOUT="2")
    vault = os.path.join("inventories", inventory, "vault-password.example")
    proc = subprocess.run([os.path.join(BIN, "ansible"), "-i", "inventories/" + inventory, host, "-m", "ping",
                           "-vvv", "--vault-password-file", vault], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120, check=False)
    output = proc.stdout + proc.stderr
    command = next((line for line in output.splitlines() if "SSH: EXEC ssh" in line), None)
    assert command, output[-2000:]
    options = re.findall(r"-o (StrictHostKeyChecking|UserKnownHostsFile)=(\S+)", command)
    first = dict(reversed(options))
    assert first["StrictHostKeyChecking"] == "yes", command
    assert first["UserKnownHostsFile"] == os.path.join(ROOT, "inventories", inventory, "known_hosts"), command
    assert proc.returncode != 0  # no such host on this network: the point is the command, not the connection

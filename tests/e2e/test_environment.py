"""Environment management on the lab: drift detection names what was changed by hand, on the app hosts and in
the load balancer's backend."""
from .conftest import on_host, playbook


def test_no_drift_after_the_environment_playbook():
    # The session's lab fixture has just run playbooks/environment.yml.
    result = playbook("playbooks/drift.yml")
    assert result.rc == 0, result.output[-3000:]
    assert "no drift" in result.output


def test_drift_names_the_config_file_and_the_unit_changed_by_hand():
    on_host("app02", "echo 'DEBUG=\"1\"' >> /etc/sample/sample.env")
    on_host("app02", "sed -i 's/^Restart=on-failure/Restart=always/' /etc/systemd/system/sample.service")
    before = on_host("app02", "md5sum /etc/sample/sample.env /etc/systemd/system/sample.service")
    on_host("lb", "sed -i 's|uri /health$|uri /healthz|' /etc/haproxy/haproxy.cfg")
    result = playbook("playbooks/drift.yml")
    assert result.rc != 0
    assert "app02: environment file, systemd unit" in result.output
    assert "lb01: backend sample" in result.output
    assert "-    http-check send meth GET uri /healthz" in result.output
    assert "+    http-check send meth GET uri /health" in result.output
    assert on_host("lb", "grep -c 'uri /healthz$' /etc/haproxy/haproxy.cfg") == "1"
    assert '-DEBUG="1"' in result.output
    assert "-Restart=always" in result.output and "+Restart=on-failure" in result.output
    assert "app01:" not in result.output.split("Configuration drift:")[1]
    assert on_host("app02", "md5sum /etc/sample/sample.env /etc/systemd/system/sample.service") == before
    assert "lab-canary-SECRET" not in result.output
    fixed = playbook("playbooks/environment.yml")
    assert fixed.rc == 0
    assert on_host("lb", "grep -c 'uri /health$' /etc/haproxy/haproxy.cfg") == "1"
    assert playbook("playbooks/drift.yml").rc == 0

"""Reliability and security on the lab: what a hostile or broken input cannot do to a fleet."""
from .conftest import app_hosts, live_versions, on_host, playbook

PLANTED = {"/opt/sample/planted.txt": "planted by the test\n", "/opt/planted.txt": "planted by the test\n"}


def test_hostile_archive_writes_nothing_outside_its_release():
    """6.6.9 climbs out of its release through earlier symlinks and writes through a hard link."""
    hosts = app_hosts()
    before = live_versions()
    for host in hosts:
        for path, text in PLANTED.items():
            on_host(host, "printf '%s' > %s" % (text.strip() + "\\n", path))
        on_host(host, "rm -f /etc/conveyor-pwned")
    listing = {host: on_host(host, "ls -A /opt /opt/sample /opt/sample/releases") for host in hosts}
    try:
        result = playbook("deploy.yml", "-e", "app_version=6.6.9")
        assert result.rc != 0, result.output[-3000:]
        assert "Refusing the artifact" in result.output and "crosses the symlink" in result.output, \
            result.output[-3000:]
        for host in hosts:
            assert on_host(host, "test -e /etc/conveyor-pwned && echo pwned") == "", host
            for path, text in PLANTED.items():
                assert on_host(host, "cat %s" % path) == text.strip(), (host, path)
            assert on_host(host, "ls -A /opt /opt/sample /opt/sample/releases") == listing[host], host
            assert on_host(host, "test -e /opt/sample/.conveyor/deploy.lock && echo held") == "", host
        assert live_versions() == before
    finally:
        for host in hosts:
            on_host(host, "rm -f %s" % " ".join(PLANTED))

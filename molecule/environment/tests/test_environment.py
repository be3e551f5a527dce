"""What the environment role must leave on each host."""

ROOT = "/srv/shop"


def test_app_user_has_no_login_shell(host):
    user = host.user("shop")
    assert user.exists
    assert user.shell == "/usr/sbin/nologin"
    assert user.group == "shop"


def test_releases_are_not_writable_by_the_app(host):
    for path in (ROOT, ROOT + "/releases", ROOT + "/.conveyor", ROOT + "/shared"):
        directory = host.file(path)
        assert directory.is_directory
        assert directory.user == "root" and directory.group == "root"
        assert directory.mode == 0o755


def test_shared_paths_belong_to_the_app(host):
    for path in (ROOT + "/shared/logs", ROOT + "/shared/uploads"):
        directory = host.file(path)
        assert directory.is_directory
        assert directory.user == "shop" and directory.mode == 0o750


def test_unit_is_hardened_and_starts_from_current(host):
    unit = host.file("/etc/systemd/system/shop.service")
    content = unit.content_string
    for line in ("User=shop", "NoNewPrivileges=yes", "ProtectSystem=strict", "PrivateTmp=yes",
                 "Restart=on-failure", "WorkingDirectory=/srv/shop/current",
                 "ExecStart=/usr/bin/python3 /srv/shop/current/app.py",
                 "ConditionPathExists=/srv/shop/current"):
        assert line in content, line
    assert host.service("shop").is_enabled


def test_environment_file_has_the_values(host):
    env = host.file("/etc/shop/shop.env")
    assert env.user == "root" and env.group == "shop" and env.mode == 0o640
    assert 'APP_ENV="staging"' in env.content_string
    assert "SECRET" not in env.content_string


def test_secrets_are_apart_and_private(host):
    secrets = host.file("/etc/shop/secrets.env")
    assert secrets.mode == 0o640 and secrets.group == "shop"
    assert 'APP_SECRET_KEY="molecule-canary-SECRET-91b2"' in secrets.content_string


def test_logs_are_rotated(host):
    rule = host.file("/etc/logrotate.d/shop").content_string
    assert "/srv/shop/shared/logs/*.log" in rule and "rotate 14" in rule
    assert host.run("logrotate --debug /etc/logrotate.d/shop").rc == 0

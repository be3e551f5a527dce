from ansible_collections.conveyor.deploy.plugins.filter.report import check_table, env_diff


def test_env_diff_lists_changed_missing_and_hides_secrets():
    left = {"env_name": "staging", "rolling_batches": [1], "same": 1, "only_left": True,
            "vault_db_password": "staging-pw", "api_token": "t1"}
    right = {"env_name": "prod", "rolling_batches": [1, "25%"], "same": 1, "only_right": 2,
             "vault_db_password": "prod-pw", "api_token": "t1"}
    lines = env_diff(left, right, "staging", "prod")
    assert lines == [
        "env_name: staging='staging', prod='prod'",
        "only_left: only in staging",
        "only_right: only in prod",
        "rolling_batches: staging=[1], prod=[1, '25%']",
        "vault_db_password: differs (secret, not shown)",
    ]
    assert not any("pw" in line for line in lines)


def test_check_table_marks_failures():
    lines = check_table([{"check": "health", "passed": True, "summary": "3/3"},
                         {"check": "smoke", "passed": False, "summary": "HTTP 500"}], "check")
    assert lines[1].split() == ["health", "ok", "3/3"]
    assert lines[2].split()[:2] == ["smoke", "FAIL"]


def test_check_table_groups_rows_by_host():
    lines = check_table([{"host": "all hosts", "check": "window", "passed": False, "summary": "closed"},
                         {"host": "app01", "check": "disk", "passed": True, "summary": "9 GiB free"}],
                        "host / check", "host")
    assert lines == ["host / check       ok?   result",
                     "all hosts  window  FAIL  closed",
                     "app01  disk        ok    9 GiB free"]

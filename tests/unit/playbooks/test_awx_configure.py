"""playbooks/awx_configure.yml, run by ansible-playbook against a stand-in for awx.awx (no controller runs here).

Each awx.awx module is replaced by a stub (awx_stub/) that validates its arguments with AnsibleModule against the
argument spec of the real module, captured here from the installed awx.awx, then records them. So the playbook's
own loops, conditions and templates run as they would against a controller, and an argument the real module
would refuse fails the run. The surveys are then compared with the argument specs of the roles their playbooks
run: every survey variable is one a role reads.
"""
import importlib
import json
import os
import re
import subprocess
import sys

import pytest
import yaml

pytest.importorskip("ansible_collections.awx.awx.plugins.modules.job_template",
                    reason="awx.awx is not installed (the ansible package carries it)")

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
STUB = os.path.join(os.path.dirname(os.path.abspath(__file__)), "awx_stub")
PLAYBOOK = os.path.join(ROOT, "playbooks", "awx_configure.yml")
STUB_MODULES = os.path.join(STUB, "ansible_collections", "awx", "awx", "plugins", "modules")
MODULES = sorted(name[:-3] for name in os.listdir(STUB_MODULES) if name.endswith(".py"))
TOKEN = "s3cret-notify-token-do-not-print"


class _Captured(Exception):
    pass


def _drop_callables(spec):
    """The spec as JSON can carry it: fallbacks (env lookups of the controller's address) are left out."""
    clean = {}
    for option, settings in spec.items():
        settings = {key: value for key, value in settings.items() if key != "fallback"}
        if "options" in settings:
            settings["options"] = _drop_callables(settings["options"])
        clean[option] = settings
    return clean


def _doc_options(options):
    """DOCUMENTATION suboptions as an argument spec, for options whose code spec leaves them unchecked."""
    spec = {}
    for option, doc in options.items():
        settings = {key: doc[key] for key in ("type", "elements", "choices", "required", "aliases") if key in doc}
        if "suboptions" in doc:
            settings["options"] = _doc_options(doc["suboptions"])
        spec[option] = settings
    return spec


def capture(name):
    """The argument spec the real awx.awx module hands to AnsibleModule, auth options included."""
    module = importlib.import_module("ansible_collections.awx.awx.plugins.modules." + name)
    api = importlib.import_module("ansible_collections.awx.awx.plugins.module_utils.controller_api")
    got = {}

    class Fake:
        def __init__(self, argument_spec=None, **options):
            got["argument_spec"], got["options"] = argument_spec, options
            raise _Captured()

    original = {attr: getattr(module, attr) for attr in dir(module) if re.match(r"Controller\w*Module$", attr)}
    for attr in original:
        setattr(module, attr, Fake)
    try:
        module.main()
    except _Captured:
        pass
    finally:
        for attr, value in original.items():
            setattr(module, attr, value)
    spec = dict(api.ControllerModule.AUTH_ARGSPEC)
    spec.update(got["argument_spec"])
    documented = yaml.safe_load(module.DOCUMENTATION)["options"]
    for option, settings in spec.items():
        if settings.get("type") in ("list", "dict") and "options" not in settings and "suboptions" in documented.get(option, {}):
            settings = dict(settings, options=_doc_options(documented[option]["suboptions"]))
            spec[option] = settings
    options = {key: value for key, value in got["options"].items()
               if key in ("mutually_exclusive", "required_if", "required_one_of", "required_together")}
    return {"argument_spec": _drop_callables(spec), "options": options}


@pytest.fixture(scope="module")
def specs(tmp_path_factory):
    path = tmp_path_factory.mktemp("awx") / "specs.json"
    path.write_text(json.dumps({name: capture(name) for name in MODULES}))
    return str(path)


def configure(specs, tmp_path, *extra, playbook=PLAYBOOK):
    log = tmp_path / "calls.jsonl"
    cfg = tmp_path / "ansible.cfg"
    cfg.write_text("[defaults]\nstdout_callback = default\nretry_files_enabled = false\n")
    env = dict(os.environ, ANSIBLE_CONFIG=str(cfg), CONVEYOR_AWX_STUB_SPECS=specs, CONVEYOR_AWX_STUB_LOG=str(log),
               ANSIBLE_COLLECTIONS_PATH=os.pathsep.join([STUB, os.path.join(ROOT, "collections")]),
               ANSIBLE_FORCE_COLOR="0", PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"])
    proc = subprocess.run([os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i", "localhost,",
                           "-e", "ansible_python_interpreter=" + sys.executable, playbook] + list(extra),
                          capture_output=True, text=True, env=env, check=False, cwd=str(tmp_path))
    calls = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    return proc, calls


def of(calls, module):
    return [call["params"] for call in calls if call["module"] == module]


FULL = ["-e", "conveyor_awx_project_url=https://git.example.com/ops/shop.git",
        "-e", "conveyor_awx_notify_url=https://hooks.example.com/deploys",
        "-e", "conveyor_awx_notify_token=" + TOKEN,
        "-e", "conveyor_awx_failure_webhook_url=https://hooks.example.com/awx-failures",
        "-e", json.dumps({"conveyor_awx_environments": [
            {"name": "staging", "inventory": "inventories/staging", "production": False, "credentials": ["staging ssh"]},
            {"name": "prod", "inventory": "inventories/prod", "production": True,
             "credentials": ["prod ssh", "prod vault"]}]})]


@pytest.fixture(scope="module")
def full(specs, tmp_path_factory):
    return configure(specs, tmp_path_factory.mktemp("full"), *FULL)


def test_every_argument_is_one_the_real_modules_accept(full):
    proc, calls = full
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    counts = {module: len(of(calls, module)) for module in MODULES}
    assert counts == {"credential_type": 1, "credential": 1, "notification_template": 1, "project": 1,
                      "inventory": 2, "inventory_source": 2, "job_template": 18, "workflow_job_template": 2}


@pytest.mark.parametrize("module, args, message", [
    ("job_template", {"name": "x", "playbook": "deploy.yml", "job_type": "deploy"}, "job_type must be one of"),
    ("job_template", {"name": "x", "playbook": "deploy.yml", "surveys": {}}, "Unsupported parameters"),
    ("workflow_job_template", {"name": "x", "workflow_nodes": [{"identifier": "a", "next": []}]}, "next"),
])
def test_the_stub_refuses_what_the_real_module_refuses(specs, tmp_path, module, args, message):
    """The negative control: an unknown option, a wrong choice, a bad workflow node fail as against a controller."""
    bad = tmp_path / "bad.yml"
    bad.write_text(yaml.safe_dump([{"name": "bad", "hosts": "localhost", "connection": "local", "gather_facts": False,
                                    "tasks": [{"awx.awx." + module: args}]}]))
    proc, calls = configure(specs, tmp_path, playbook=str(bad))
    assert proc.returncode != 0 and not calls
    assert message in proc.stdout + proc.stderr


def test_the_project_inventories_and_credentials(full):
    calls = full[1]
    project, = of(calls, "project")
    assert project["scm_url"] == "https://git.example.com/ops/shop.git" and project["scm_update_on_launch"] is True
    sources = {source["inventory"]: source for source in of(calls, "inventory_source")}
    assert {name: source["source_path"] for name, source in sources.items()} == {
        "conveyor staging": "inventories/staging", "conveyor prod": "inventories/prod"}
    assert all(source["source_project"] == project["name"] for source in sources.values())
    for path in ("inventories/staging", "inventories/prod"):
        assert os.path.isdir(os.path.join(ROOT, path)), path
    templates = {template["name"]: template for template in of(calls, "job_template")}
    assert templates["conveyor prod deploy"]["credentials"] == ["prod ssh", "prod vault", "conveyor tokens"]
    assert templates["conveyor staging verify"]["credentials"] == ["staging ssh", "conveyor tokens"]
    for template in templates.values():
        assert os.path.isfile(os.path.join(ROOT, template["playbook"])), template["playbook"]
        assert template["notification_templates_error"] == ["conveyor failures"]
        assert template["allow_simultaneous"] is False
    checklist = templates["conveyor prod checklist"]
    assert checklist["job_type"] == "check" and checklist["diff_mode"] is True
    assert checklist["playbook"] == templates["conveyor prod deploy"]["playbook"] == "deploy.yml"


def test_the_tokens_are_injected_as_secrets_and_never_printed(full):
    proc, calls = full
    kind, = of(calls, "credential_type")
    secret = {field["id"] for field in kind["inputs"]["fields"] if field.get("secret")}
    assert secret == {"notify_token", "approval_token"}
    # AWX's own templates reach the controller unrendered
    assert kind["injectors"]["env"]["CONVEYOR_NOTIFY_TOKEN"].startswith("{{ notify_token")
    assert "{{ approval_token" in kind["injectors"]["extra_vars"]["approval_url_token"]
    # what the notify callback and preflight read
    notify = open(os.path.join(ROOT, "plugins", "callback", "notify.py"), encoding="utf-8").read()
    assert "CONVEYOR_NOTIFY_URL" in notify and "CONVEYOR_NOTIFY_TOKEN" in notify
    defaults = open(os.path.join(ROOT, "roles", "preflight", "defaults", "main.yml"), encoding="utf-8").read()
    assert "approval_url_token" in defaults
    credential, = of(calls, "credential")
    assert credential["inputs"]["notify_token"] == TOKEN and credential["update_secrets"] is False
    assert TOKEN not in proc.stdout + proc.stderr


def test_production_alone_gets_a_workflow_with_an_approval_before_the_deploy(full):
    calls = full[1]
    workflow, canary = of(calls, "workflow_job_template")
    assert canary["name"] == "conveyor prod canary release"
    assert workflow["name"] == "conveyor prod release"
    nodes = {node["identifier"]: node for node in workflow["workflow_nodes"]}
    after = {name: [nxt["identifier"] for nxt in (node.get("related") or {}).get("success_nodes") or []]
             for name, node in nodes.items()}
    assert after == {"checklist": ["approval"], "approval": ["deploy"], "deploy": ["verify"], "verify": []}
    assert nodes["approval"]["unified_job_template"]["type"] == "workflow_approval"
    assert nodes["approval"]["unified_job_template"]["timeout"] == 86400
    templates = {template["name"] for template in of(calls, "job_template")}
    for name in ("checklist", "deploy", "verify"):
        assert nodes[name]["unified_job_template"]["name"] in templates
        assert nodes[name]["unified_job_template"]["name"].startswith("conveyor prod ")
    assert workflow["survey_spec"] == next(template["survey_spec"] for template in of(calls, "job_template")
                                           if template["name"] == "conveyor prod deploy")
    assert workflow["notification_templates_approvals"] == ["conveyor failures"]


def test_the_canary_workflow_pauses_after_the_canary_for_an_approval_then_promotes_or_aborts(full):
    calls = full[1]
    canary = next(w for w in of(calls, "workflow_job_template") if w["name"] == "conveyor prod canary release")
    nodes = {node["identifier"]: node for node in canary["workflow_nodes"]}

    def after(name, kind="success_nodes"):
        return [nxt["identifier"] for nxt in (nodes[name].get("related") or {}).get(kind) or []]
    assert after("checklist") == ["approval"] and after("approval") == ["canary"]
    assert after("canary") == ["promote_approval"] and nodes["canary"]["extra_data"] == {"pause_after": "canary"}
    assert after("promote_approval") == ["promote"] and after("promote_approval", "failure_nodes") == ["abort"]
    assert after("promote") == ["verify"] and nodes["promote_approval"]["unified_job_template"]["type"] == \
        "workflow_approval"
    templates = dict((template["name"], template) for template in of(calls, "job_template"))
    for name, playbook in (("canary", "deploy.yml"), ("promote", "playbooks/promote.yml"),
                           ("abort", "playbooks/abort.yml"), ("verify", "playbooks/verify.yml")):
        assert templates[nodes[name]["unified_job_template"]["name"]]["playbook"] == playbook
    # The deploy's survey asks for the pause, so the node's extra_data is a survey answer AWX accepts.
    deploy = templates["conveyor prod deploy"]
    assert "pause_after" in [question["variable"] for question in deploy["survey_spec"]["spec"]]


def test_without_tokens_or_webhook_nothing_refers_to_them(specs, tmp_path):
    proc, calls = configure(specs, tmp_path, "-e", "conveyor_awx_project_url=https://git.example.com/ops/shop.git")
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert not of(calls, "credential") and not of(calls, "notification_template")
    for template in of(calls, "job_template"):
        assert template["credentials"] == [] and template["notification_templates_error"] == []


def test_a_missing_project_url_is_named(specs, tmp_path):
    proc, calls = configure(specs, tmp_path)
    assert proc.returncode != 0 and not calls
    assert "conveyor_awx_project_url" in proc.stdout + proc.stderr


def test_a_rerun_in_check_mode_passes_check_mode_on(specs, tmp_path):
    proc, calls = configure(specs, tmp_path, "--check", *FULL)
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert calls and all(call["check_mode"] for call in calls)


# --- the surveys against the roles -------------------------------------------------------------------------------

def _roles_of(playbook, seen=None):
    """conveyor.deploy roles a playbook runs, following import_playbook."""
    seen = set() if seen is None else seen
    path = os.path.join(ROOT, playbook)
    text = open(path, encoding="utf-8").read()
    for child in re.findall(r"import_playbook:\s*(\S+)", text):
        child = os.path.relpath(os.path.join(os.path.dirname(path), child), ROOT)
        if child not in seen:
            seen.add(child)
            _roles_of(child, seen)
    for child in seen:
        text += open(os.path.join(ROOT, child), encoding="utf-8").read()
    return {role for role in re.findall(r"(?:name|role):\s*conveyor\.deploy\.(\w+)", text)
            if os.path.isdir(os.path.join(ROOT, "roles", role))}


def _role_inputs(role):
    """{variable: option spec} for what a role reads: its options, and the public names its defaults read."""
    with open(os.path.join(ROOT, "roles", role, "meta", "argument_specs.yml"), encoding="utf-8") as handle:
        entry_points = yaml.safe_load(handle)["argument_specs"]
    options = {}
    for entry in entry_points.values():
        options.update(entry.get("options") or {})
    inputs = dict(options)
    defaults = os.path.join(ROOT, "roles", role, "defaults", "main.yml")
    if os.path.exists(defaults):
        for option, public in re.findall(r"^(\w+):\s*\"\{\{\s*(\w+)\s*\|\s*default\(", open(defaults, encoding="utf-8").read(), re.M):
            if option in options:
                inputs.setdefault(public, options[option])
    return inputs


def test_every_survey_variable_is_one_the_roles_read(full):
    calls = full[1]
    checked = 0
    for template in of(calls, "job_template"):
        questions = (template["survey_spec"] or {}).get("spec", [])
        if not questions:
            continue
        roles = _roles_of(template["playbook"])
        assert roles, template["playbook"]
        inputs = {}
        for role in roles:
            inputs.update(_role_inputs(role))
        for question in questions:
            variable = question["variable"]
            assert variable in inputs, "%s: survey variable %s is read by none of %s" % (
                template["name"], variable, sorted(roles))
            option = inputs[variable]
            if question["type"] == "multiplechoice":
                expected = option.get("choices") or (["false", "true"] if option.get("type") == "bool" else None)
                assert expected is not None, variable
                assert sorted(question["choices"]) == sorted(str(choice) for choice in expected), variable
                assert question["default"] in question["choices"], variable
            else:
                assert option.get("type", "str") == "str", variable
            checked += 1
    assert checked >= 20


@pytest.mark.parametrize("answer, expected", [("true", ["100%"]), ("false", [2, "100%"]), (True, ["100%"])])
def test_a_survey_answer_for_a_bool_reaches_the_role_as_meant(answer, expected):
    """rollback_all_at_once="true", as a survey sends it, means every host at once; "false" the deploy's batches."""
    from ansible.parsing.dataloader import DataLoader
    from ansible.template import Templar

    loader = DataLoader()  # loads role defaults as ansible-playbook does: their templates are trusted
    path = os.path.join(ROOT, "roles", "rollback", "defaults", "main.yml")
    try:
        defaults = loader.load_from_file(path, trusted_as_template=True)
    except TypeError:  # ansible-core < 2.19: every string is a template
        defaults = loader.load_from_file(path)
    variables = dict(defaults, rollback_all_at_once=answer, rolling_batches=[2, "100%"])
    assert Templar(loader=loader, variables=variables).template(defaults["rollback_batches"]) == expected

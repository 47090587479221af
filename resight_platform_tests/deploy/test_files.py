"""deploy/ checked without a container engine, a cluster or a helm binary (none is on this machine).

What is checked, and against what:
- every YAML parses; ``deploy/dagster.yaml`` and the repository's ``dagster.yaml`` pass Dagster's
  own instance config validation, and each class they name (run coordinator, compute logs,
  storage) accepts its config; ``deploy/workspace.yaml`` passes Dagster's workspace schema;
- the Dockerfile, read by a small parser below: stages, the slim runtime, a non-root user, no
  compiler, no secret in an ARG or ENV, only the venv and the instance files copied in, the
  extras that exist in setup.py;
- every command the image, compose and the chart run in our image is parsed by the real command's
  own parser (the click commands behind ``dagster``, ``dagster-webserver``, ``dagster-daemon``,
  ``mlflow``; ``resight``'s argparse parser), from the console scripts of this venv, with image
  paths mapped to the files the Dockerfile copies there; ``-m`` modules resolve;
- every variable compose interpolates or sets, the chart's env lists and ``dagster.yaml``'s
  ``env:`` is read by something named here (the platform's Settings, recorded while it reads;
  Dagster's instance; botocore; MLflow; the init scripts), listed in deploy/README.md and, when
  interpolated, in deploy/.env.example; no literal secret;
- every URL and port a service connects to is one some service listens on; the gRPC port is the
  same in the workspace, the code server, the image and the chart;
- the Helm values use only key paths the chart's schema has (HELM_KEYS: read by hand from the
  chart's source, see there), and carry the same policies as deploy/dagster.yaml;
- pipeline health: ``deploy/prometheus/prometheus.yml`` passes ``promtool check config`` (where
  Debian's prometheus is installed) and scrapes the port ``resight metrics`` listens on; Grafana's
  provisioning names services that listen where it says, logs in to the warehouse as the analyst
  role with its password from the environment, and loads the dashboard from where compose mounts it
  (the dashboard's queries themselves run in resight_platform_tests/test_metrics.py).

Not checked here: that the images build or start, the third-party images' tags and their own
variables (postgres, minio, mc: declared in THIRD_PARTY), a rendered ``helm template``.
"""

from __future__ import annotations

import ast
import importlib
import importlib.metadata
import importlib.util
import json
import re
import shlex
import shutil
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import click
import pytest
import yaml

from resight_platform import cli
from resight_platform.settings import Settings

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
COMPOSE = DEPLOY / "docker-compose.yml"
INSTANCE = DEPLOY / "dagster.yaml"
WORKSPACE = DEPLOY / "workspace.yaml"
HELM_VALUES = DEPLOY / "helm" / "values.yaml"
PROMETHEUS = DEPLOY / "prometheus" / "prometheus.yml"
GRAFANA_DATASOURCES = DEPLOY / "grafana" / "provisioning" / "datasources.yml"
GRAFANA_DASHBOARDS = DEPLOY / "grafana" / "provisioning" / "dashboards.yml"
YAML_FILES = [
    COMPOSE,
    INSTANCE,
    WORKSPACE,
    HELM_VALUES,
    REPO / "dagster.yaml",
    REPO / "workspace.yaml",
    PROMETHEUS,
    GRAFANA_DATASOURCES,
    GRAFANA_DASHBOARDS,
]

#: The services of compose that run our image (the others run third-party images).
OUR_IMAGE = "resight-platform:0.1.0"

#: Variables read by third-party images, as their documentation says; not checkable offline.
THIRD_PARTY = {
    "POSTGRES_PASSWORD": "postgres image: the superuser's password (docker-entrypoint.sh)",
    "MINIO_ROOT_USER": "minio image: the root user",
    "MINIO_ROOT_PASSWORD": "minio image: the root user's password",
    "GF_SECURITY_ADMIN_PASSWORD": "grafana image: the admin user's password (GF_<SECTION>_<KEY> sets grafana.ini)",
    "GF_USERS_ALLOW_SIGN_UP": "grafana image: [users] allow_sign_up",
    "GF_ANALYTICS_REPORTING_ENABLED": "grafana image: [analytics] reporting_enabled",
}

#: Ports a third-party image listens on by default (not given on its command line).
IMAGE_PORTS = {"postgres": {5432}, "grafana/grafana": {3000}}

# The Dagster chart's value keys this file's values use, as dotted paths (``[]``: a list's items).
# Read by hand from dagster-io/dagster, helm/dagster/schema/schema/charts/ (the pydantic models the
# chart's values.schema.json is generated from): dagster/values.py @835892b4, subschema/daemon.py
# @835892b4, webserver.py @288c6113, postgresql.py @3f2daa0d, run_launcher.py @969d7265,
# compute_log_manager.py @36f72b17, retention.py @bbc1853b, telemetry.py @6ff7cade,
# global_.py @e5755924, service_account.py @6ff7cade, dagster_user_deployments/subschema/
# user_deployments.py @58b05650; and templates/configmap-instance.yaml @835892b4 (which keys it
# renders). Those commits are of the chart's development history, not a tagged release: the
# README's install command pins chart 1.13.27 (the dagster installed), not seen here.
HELM_KEYS = frozenset(
    {
        "global.postgresqlSecretName",
        "global.dagsterHome",
        "generatePostgresqlPasswordSecret",
        "postgresql.enabled",
        "postgresql.postgresqlHost",
        "postgresql.postgresqlUsername",
        "postgresql.postgresqlDatabase",
        "postgresql.postgresqlParams",
        "postgresql.service.port",
        "serviceAccount.create",
        "serviceAccount.name",
        "serviceAccount.annotations",
        "dagsterWebserver.replicaCount",
        "dagsterWebserver.service.type",
        "dagsterWebserver.service.port",
        "dagsterWebserver.workspace.enabled",
        "dagsterWebserver.workspace.servers[].host",
        "dagsterWebserver.workspace.servers[].port",
        "dagsterWebserver.workspace.servers[].name",
        "dagsterWebserver.env",
        "dagsterWebserver.resources",
        "dagsterWebserver.readinessProbe",
        "dagsterWebserver.livenessProbe",
        "dagster-user-deployments.enabled",
        "dagster-user-deployments.enableSubchart",
        "dagster-user-deployments.deployments[].name",
        "dagster-user-deployments.deployments[].image.repository",
        "dagster-user-deployments.deployments[].image.tag",
        "dagster-user-deployments.deployments[].image.pullPolicy",
        "dagster-user-deployments.deployments[].dagsterApiGrpcArgs",
        "dagster-user-deployments.deployments[].port",
        "dagster-user-deployments.deployments[].includeConfigInLaunchedRuns.enabled",
        "dagster-user-deployments.deployments[].env",
        "dagster-user-deployments.deployments[].resources",
        "dagster-user-deployments.deployments[].podSecurityContext",
        "dagster-user-deployments.deployments[].securityContext",
        "dagster-user-deployments.deployments[].startupProbe",
        "dagster-user-deployments.deployments[].readinessProbe",
        "dagster-user-deployments.deployments[].livenessProbe",
        "runLauncher.type",
        "runLauncher.config.k8sRunLauncher.imagePullPolicy",
        "runLauncher.config.k8sRunLauncher.loadInclusterConfig",
        "runLauncher.config.k8sRunLauncher.envConfigMaps",
        "runLauncher.config.k8sRunLauncher.envSecrets",
        "runLauncher.config.k8sRunLauncher.envVars",
        "runLauncher.config.k8sRunLauncher.volumeMounts",
        "runLauncher.config.k8sRunLauncher.volumes",
        "runLauncher.config.k8sRunLauncher.failPodOnRunFailure",
        "runLauncher.config.k8sRunLauncher.resources",
        "runLauncher.config.k8sRunLauncher.runK8sConfig.podSpecConfig",
        "dagsterDaemon.enabled",
        "dagsterDaemon.runCoordinator.enabled",
        "dagsterDaemon.runCoordinator.type",
        "dagsterDaemon.runCoordinator.config.queuedRunCoordinator.maxConcurrentRuns",
        "dagsterDaemon.runCoordinator.config.queuedRunCoordinator.dequeueIntervalSeconds",
        "dagsterDaemon.runCoordinator.config.queuedRunCoordinator.tagConcurrencyLimits[].key",
        "dagsterDaemon.runCoordinator.config.queuedRunCoordinator.tagConcurrencyLimits[].value",
        "dagsterDaemon.runCoordinator.config.queuedRunCoordinator.tagConcurrencyLimits[].limit",
        "dagsterDaemon.runMonitoring.enabled",
        "dagsterDaemon.runRetries.enabled",
        "dagsterDaemon.sensors.useThreads",
        "dagsterDaemon.sensors.numWorkers",
        "dagsterDaemon.env",
        "dagsterDaemon.resources",
        "computeLogManager.type",
        "computeLogManager.config.s3ComputeLogManager.bucket",
        "computeLogManager.config.s3ComputeLogManager.prefix",
        "computeLogManager.config.s3ComputeLogManager.uploadInterval",
        "computeLogManager.config.s3ComputeLogManager.skipEmptyFiles",
        "retention.enabled",
        "retention.schedule.purgeAfterDays",
        "retention.sensor.purgeAfterDays",
        "retention.autoMaterialize.purgeAfterDays",
        "telemetry.enabled",
        "additionalInstanceConfig",
    }
)
#: Kubernetes objects the chart passes through as they are (env lists, resources, security
#: contexts, probes, pod specs) and the instance config appended verbatim: their insides are
#: checked by the tests below, not as chart keys.
HELM_OPAQUE = (
    ".env",
    ".resources",
    "SecurityContext",
    "securityContext",
    "Probe",
    ".podSpecConfig",
    ".annotations",
    ".postgresqlParams",
    ".purgeAfterDays",
    "additionalInstanceConfig",
)
#: Keys of a Kubernetes Probe, and the chart's own ``enabled`` switch where it has one.
PROBE_KEYS = {
    "exec",
    "httpGet",
    "tcpSocket",
    "grpc",
    "initialDelaySeconds",
    "periodSeconds",
    "timeoutSeconds",
    "successThreshold",
    "failureThreshold",
    "terminationGracePeriodSeconds",
}


# --------------------------------------------------------------------------------------------
# Reading the files
# --------------------------------------------------------------------------------------------


def load_yaml(path: Path) -> dict[str, Any]:
    loaded = yaml.safe_load(path.read_text())
    assert isinstance(loaded, dict), f"{path} is not a YAML mapping"
    return loaded


@dataclass
class Instruction:
    keyword: str
    args: str
    line: int


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[Instruction] = field(default_factory=list)

    def all(self, keyword: str) -> list[Instruction]:
        return [i for i in self.instructions if i.keyword == keyword]


@dataclass
class Dockerfile:
    global_args: dict[str, str]
    stages: list[Stage]

    @property
    def runtime(self) -> Stage:
        return self.stages[-1]

    def resolve(self, text: str) -> str:
        return re.sub(r"\$\{(\w+)\}|\$(\w+)", lambda m: self.global_args.get(m[1] or m[2], m[0]), text)


def parse_dockerfile(text: str) -> Dockerfile:
    """Instructions of a Dockerfile: comments dropped, ``\\``-continued lines joined, ARGs before
    the first FROM kept as global defaults, the rest grouped by stage."""
    logical: list[tuple[int, str]] = []
    pending: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), 1):
        stripped = raw.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if pending and stripped.startswith("#"):
            continue
        if not pending:
            start = number
        if stripped.endswith("\\"):
            pending.append(stripped[:-1].strip())
            continue
        pending.append(stripped)
        logical.append((start, " ".join(part for part in pending if part)))
        pending = []
    assert not pending, "the Dockerfile ends inside a continued line"
    global_args: dict[str, str] = {}
    stages: list[Stage] = []
    for number, line in logical:
        keyword, _, args = line.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            words = args.split()
            words = [w for w in words if not w.startswith("--")]
            name = words[2] if len(words) == 3 and words[1].upper() == "AS" else None
            stages.append(Stage(base=words[0], name=name))
        elif not stages:
            assert keyword == "ARG", f"line {number}: only ARG may come before the first FROM"
            arg_name, _, default = args.partition("=")
            global_args[arg_name.strip()] = default.strip()
        else:
            stages[-1].instructions.append(Instruction(keyword, args.strip(), number))
    return Dockerfile(global_args, stages)


def exec_form(instruction: Instruction) -> list[str]:
    """The JSON array of a CMD/ENTRYPOINT/HEALTHCHECK CMD (the shell form is refused)."""
    args = instruction.args
    if instruction.keyword == "HEALTHCHECK":
        args = args[args.index("CMD ") + len("CMD ") :]
    loaded = json.loads(args)
    assert isinstance(loaded, list) and all(isinstance(a, str) for a in loaded), instruction
    return loaded


def env_pairs(instruction: Instruction) -> dict[str, str]:
    """``ENV``/``ARG`` ``name=value`` pairs (a bare ARG name has no value)."""
    pairs: dict[str, str] = {}
    for word in shlex.split(instruction.args):
        name, equals, value = word.partition("=")
        pairs[name] = value if equals else ""
    return pairs


DOCKERFILE = parse_dockerfile((DEPLOY / "Dockerfile").read_text())


def image_files() -> dict[str, Path]:
    """What the runtime stage copies from the build context: path in the image -> file here."""
    copied: dict[str, Path] = {}
    for copy in DOCKERFILE.runtime.all("COPY"):
        words = [w for w in copy.args.split() if not w.startswith("--")]
        if copy.args.startswith("--from"):
            continue
        *sources, destination = words
        for source in sources:
            target = destination + Path(source).name if destination.endswith("/") else destination
            copied[target] = REPO / source
    return copied


def setup_extras() -> set[str]:
    tree = ast.parse((REPO / "setup.py").read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.keyword) and node.arg == "extras_require" and isinstance(node.value, ast.Dict):
            return {k.value for k in node.value.keys if isinstance(k, ast.Constant) and isinstance(k.value, str)}
    raise AssertionError("setup.py has no extras_require")


def runtime_env() -> dict[str, str]:
    env: dict[str, str] = {}
    for instruction in DOCKERFILE.runtime.all("ENV"):
        env.update(env_pairs(instruction))
    return env


# --------------------------------------------------------------------------------------------
# Commands: parsed by the real commands' own parsers
# --------------------------------------------------------------------------------------------

CONSOLE_SCRIPTS = {"dagster", "dagster-webserver", "dagster-daemon", "mlflow", "resight"}


def click_command(script: str) -> click.Command:
    """The click command behind a console script of this venv."""
    entry = importlib.metadata.entry_points(group="console_scripts")[script]
    loaded = entry.load()
    if isinstance(loaded, click.Command):
        return loaded
    module = importlib.import_module(entry.module)
    command = getattr(module, "cli", None)
    if isinstance(command, click.Command):
        return command
    made = module.create_dagster_cli()  # the `dagster` script builds its group in a function
    assert isinstance(made, click.Command)
    return made


def in_repo(argv: list[str]) -> list[str]:
    """Image paths on a command line replaced with the files the Dockerfile copies there."""
    files = image_files()
    return [str(files[a]) if a in files else a for a in argv]


def check_command(argv: list[str]) -> click.Context | None:
    """Parse ``argv`` as the image would run it; fail when the program, a subcommand or an option
    does not exist or a value does not parse. The click context, for the caller's own checks."""
    program, *args = argv
    if program == "python":
        assert args[0] == "-c", argv
        compile(args[1], "<healthcheck>", "exec")
        return None
    assert program in CONSOLE_SCRIPTS, f"{program} is not a console script of the package's venv"
    assert (Path(sys.executable).parent / program).exists(), f"{program} is not in {Path(sys.executable).parent}"
    if program == "resight":
        cli.build_parser().parse_args(args)
        return None
    command = click_command(program)
    args = in_repo(args)
    name = program
    while isinstance(command, click.Group):
        assert args, f"{argv}: no subcommand"
        name, *args = args
        sub = command.commands.get(name)
        assert sub is not None, f"{argv}: no subcommand {name!r}"
        command = sub
    context = command.make_context(name, list(args))
    module = context.params.get("module_name")
    for module_name in module if isinstance(module, tuple) else [module] if module else []:
        spec = importlib.util.find_spec(module_name)
        assert spec is not None and spec.origin, f"{argv}: module {module_name} not found"
        # What Dagster loads from it: a top-level Definitions (here the @dg.definitions function `defs`).
        tree = ast.parse(Path(spec.origin).read_text())
        top = {n.name for n in tree.body if isinstance(n, ast.FunctionDef)} | {
            t.id for n in tree.body if isinstance(n, ast.Assign) for t in n.targets if isinstance(t, ast.Name)
        }
        assert "defs" in top, f"{argv}: {module_name} defines no `defs`"
    return context


def listen_port(argv: list[str]) -> int | None:
    """The port a server command listens on (``-p``/``--port``), if it names one."""
    for flag in ("-p", "--port"):
        if flag in argv:
            return int(argv[argv.index(flag) + 1])
    return None


def test_the_parser_of_commands_refuses_what_the_commands_refuse() -> None:
    with pytest.raises(click.UsageError):
        check_command(["dagster", "api", "grpc", "--no-such-option"])
    with pytest.raises(AssertionError, match="no subcommand"):
        check_command(["dagster-daemon", "start"])
    with pytest.raises(SystemExit):
        check_command(["resight", "no-such-command"])
    with pytest.raises(AssertionError, match="not found"):
        check_command(["dagster", "api", "grpc", "-p", "4000", "-m", "resight_platform.no_such_module"])


# --------------------------------------------------------------------------------------------
# Variables: who reads them
# --------------------------------------------------------------------------------------------


class RecordingEnv(Mapping[str, str]):
    """A mapping that records every name looked up in it (values from ``values``)."""

    def __init__(self, values: Mapping[str, str] | None = None) -> None:
        self.data = dict(values or {})
        self.read: set[str] = set()

    def __getitem__(self, name: str) -> str:
        self.read.add(name)
        return self.data[name]

    def get(self, name: str, default: Any = None) -> Any:
        self.read.add(name)
        return self.data.get(name, default)

    def __contains__(self, name: object) -> bool:
        if isinstance(name, str):
            self.read.add(name)
        return name in self.data

    def __iter__(self) -> Iterator[str]:
        return iter(self.data)

    def __len__(self) -> int:
        return len(self.data)


def platform_variables() -> set[str]:
    """Every variable ``Settings.from_env`` reads (recorded while it reads an empty environment)."""
    env = RecordingEnv()
    Settings.from_env(env)
    return env.read


def instance_variables() -> set[str]:
    """The ``env:`` names deploy/dagster.yaml hands to Dagster."""
    return set(env_refs(load_yaml(INSTANCE)))


def env_refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        if set(node) == {"env"} and isinstance(node["env"], str):
            yield node["env"]
        for value in node.values():
            yield from env_refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from env_refs(item)


def dagster_variables(tmp_path: Path) -> set[str]:
    """The ``DAGSTER_*`` variables the platform sets for Dagster's processes (``cli.instance_env``)
    and DAGSTER_HOME."""
    settings = Settings.from_env(
        {"RESIGHT_HOME": str(tmp_path), "RESIGHT_DAGSTER_PG_URL": "postgresql+psycopg2://u:p@h:5432/dagster"}
    )
    names = set(cli.instance_env(settings, "postgresql://u:p@h:5432/resight"))
    return {name for name in names if name.startswith("DAGSTER_")}


def botocore_variables() -> set[str]:
    """What botocore (boto3, and through the platform's storage options, Polars) reads."""
    from botocore import configprovider
    from botocore.credentials import EnvProvider

    names = {
        EnvProvider.ACCESS_KEY,
        EnvProvider.SECRET_KEY,
        configprovider.BOTOCORE_DEFAUT_SESSION_VARIABLES["region"][1],
    }
    # The global endpoint override, read by botocore's endpoint provider (not a session variable).
    assert "'AWS_ENDPOINT_URL'" in Path(configprovider.__file__).read_text()
    return names | {"AWS_ENDPOINT_URL"}


def mlflow_server_variables() -> set[str]:
    from mlflow.environment_variables import MLFLOW_S3_ENDPOINT_URL

    server = click_command("mlflow")
    assert isinstance(server, click.Group)
    envvars = {p.envvar for p in server.commands["server"].params if isinstance(p.envvar, str)}
    return envvars | {MLFLOW_S3_ENDPOINT_URL.name}


def script_variables(path: Path) -> set[str]:
    return set(re.findall(r"\$\{?([A-Z_][A-Z0-9_]*)", path.read_text()))


@pytest.fixture(scope="module")
def readers(tmp_path_factory: pytest.TempPathFactory) -> dict[str, set[str]]:
    """Who reads what: a variable set in a service must be read by one of its programs."""
    platform = platform_variables()
    dagster = dagster_variables(tmp_path_factory.mktemp("home")) | {"DAGSTER_HOME"} | instance_variables()
    boto = botocore_variables()
    return {
        "platform": platform | dagster | boto,
        "dagster": dagster | boto,
        "mlflow": mlflow_server_variables() | boto,
        "postgres": set(THIRD_PARTY) | script_variables(DEPLOY / "postgres" / "init-databases.sh"),
        "minio": set(THIRD_PARTY),
        "minio-init": script_variables(DEPLOY / "minio" / "init-buckets.sh"),
        "prometheus": set(),
        "grafana": set(THIRD_PARTY) | script_variables(GRAFANA_DATASOURCES),
    }


#: Which reader a compose service's environment is checked against.
COMPOSE_READER = {
    "postgres": "postgres",
    "minio": "minio",
    "minio-init": "minio-init",
    "mlflow": "mlflow",
    "dagster-migrate": "dagster",
    "code-server": "platform",
    "webserver": "dagster",
    "daemon": "dagster",
    "metrics": "platform",
    "prometheus": "prometheus",
    "grafana": "grafana",
}


def readme_variables() -> set[str]:
    """Variables in the first column of deploy/README.md's tables."""
    return set(re.findall(r"^\| `([A-Z][A-Z0-9_]+)`", (DEPLOY / "README.md").read_text(), flags=re.MULTILINE))


def env_example() -> dict[str, str]:
    values: dict[str, str] = {}
    for line in (DEPLOY / ".env.example").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, value = line.partition("=")
            values[name] = value
    return values


# --------------------------------------------------------------------------------------------
# Compose
# --------------------------------------------------------------------------------------------

INTERPOLATED = re.compile(r"\$\{([A-Z_][A-Z0-9_]*)(?:(:?[?-])[^}]*)?\}")


def strings(node: Any) -> Iterator[str]:
    """Every string of a parsed YAML tree, keys included (what compose interpolates; not comments)."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield str(key)
            yield from strings(value)
    elif isinstance(node, list):
        for item in node:
            yield from strings(item)
    elif isinstance(node, str):
        yield node


def services() -> dict[str, dict[str, Any]]:
    loaded = load_yaml(COMPOSE)["services"]
    assert isinstance(loaded, dict)
    return loaded


def environment(service: Mapping[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    assert isinstance(env, dict), "environment as a mapping"
    return {str(k): str(v) for k, v in env.items()}


def substituted(value: str) -> str:
    """A compose value with every ``${VAR…}`` replaced by a placeholder (as from deploy/.env)."""
    return INTERPOLATED.sub(lambda m: f"placeholder-{m[1].lower().replace('_', '-')}", value)


def command_of(service: Mapping[str, Any]) -> list[str]:
    command = service.get("command")
    assert isinstance(command, list), "commands in exec form (a list)"
    return [str(c) for c in command]


def ours() -> dict[str, dict[str, Any]]:
    return {name: s for name, s in services().items() if s.get("image") == OUR_IMAGE}


def listening() -> dict[str, set[int]]:
    """The ports each compose service listens on: from its command, else its image's default."""
    ports: dict[str, set[int]] = {}
    for name, service in services().items():
        found: set[int] = set()
        command = service.get("command") or []
        port = listen_port([str(c) for c in command])
        if port is not None:
            found.add(port)
        for flag in ("--address", "--console-address"):
            if flag in command:
                found.add(int(str(command[command.index(flag) + 1]).rsplit(":", 1)[1]))
        for word in command:  # Prometheus: --web.listen-address=:9090
            if str(word).startswith("--web.listen-address="):
                found.add(int(str(word).rsplit(":", 1)[1]))
        image = str(service.get("image", "")).split(":")[0]
        found |= IMAGE_PORTS.get(image, set())
        ports[name] = found
    return ports


def test_every_yaml_parses() -> None:
    for path in YAML_FILES:
        assert load_yaml(path), f"{path} is empty"


def test_compose_services_run_the_platform_image_and_a_real_command_each() -> None:
    by_name = ours()
    assert set(by_name) == {"mlflow", "dagster-migrate", "code-server", "webserver", "daemon", "metrics"}
    for name, service in by_name.items():
        assert service["build"]["dockerfile"] == "deploy/Dockerfile", name
        assert set(service["build"].get("args", {}).get("EXTRAS", "").split(",")) <= setup_extras()
        check_command(command_of(service))
        test = service.get("healthcheck", {}).get("test")
        if test is not None:
            assert test[0] == "CMD", f"{name}: healthcheck in exec form"
            check_command([str(t) for t in test[1:]])


def test_the_code_server_is_the_module_the_repository_loads_under_the_same_location_name() -> None:
    context = check_command(command_of(services()["code-server"]))
    assert context is not None
    assert context.params["module_name"] == cli.DEFINITIONS_MODULE
    assert context.params["location_name"] == cli.DEFINITIONS_MODULE
    assert context.params["host"] == "0.0.0.0"  # reachable from the other containers


def test_webserver_and_daemon_read_the_workspace_the_image_holds() -> None:
    files = image_files()
    for name in ("webserver", "daemon"):
        command = command_of(services()[name])
        workspace = command[command.index("-w") + 1]
        assert files.get(workspace) == WORKSPACE, (
            f"{name} reads {workspace}, which the image does not copy from deploy/"
        )


def test_every_service_waits_for_what_it_needs_to_be_healthy() -> None:
    all_services = services()
    one_shot = {name for name, s in all_services.items() if "restart" not in s}
    assert one_shot == {"minio-init", "dagster-migrate"}
    for name, service in all_services.items():
        if name not in one_shot:
            assert "healthcheck" in service, f"{name} has no healthcheck"
        for needed, condition in (service.get("depends_on") or {}).items():
            expected = "service_completed_successfully" if needed in one_shot else "service_healthy"
            assert condition == {"condition": expected}, f"{name} -> {needed}"
    for name in ("webserver", "daemon"):
        assert "code-server" in all_services[name]["depends_on"]


def test_compose_holds_no_secret_and_every_volume_is_named() -> None:
    secretish = re.compile(r"PASSWORD|SECRET|TOKEN|ACCESS_KEY|WEBHOOK")
    declared = set(load_yaml(COMPOSE).get("volumes") or {})
    for name, service in services().items():
        for variable, value in environment(service).items():
            if secretish.search(variable):
                assert INTERPOLATED.fullmatch(value), f"{name}: {variable} must come from deploy/.env"
            credentials = re.search(r"://[^/@:]+:([^@]+)@", value)
            if credentials:
                assert INTERPOLATED.fullmatch(credentials[1]), f"{name}: {variable} holds a literal password"
        for volume in service.get("volumes") or []:
            source = str(volume).split(":")[0]
            assert source.startswith("./") or source in declared, f"{name}: volume {source} is not a named volume"
            if source.startswith("./"):
                assert (DEPLOY / source).is_file(), f"{name}: {source} does not exist"
                assert str(volume).endswith(":ro"), f"{name}: bind mount {source} read-only"


def test_every_variable_is_read_listed_and_given(readers: dict[str, set[str]]) -> None:
    documented = readme_variables()
    example = env_example()
    for name, service in services().items():
        reader = readers[COMPOSE_READER[name]]
        for variable in environment(service):
            assert variable in reader, f"{name}: nothing in the service reads {variable}"
            assert variable in documented, f"{variable} ({name}) is not in deploy/README.md's table"
    interpolated = {m[1] for text in strings(load_yaml(COMPOSE)) for m in INTERPOLATED.finditer(text)}
    for variable in interpolated:
        assert variable in example, f"${{{variable}}} is not in deploy/.env.example"
        assert variable in documented, f"${{{variable}}} is not in deploy/README.md's table"
    assert set(example) == interpolated, "deploy/.env.example holds exactly what compose interpolates"
    for variable, value in example.items():
        assert value in ("", "CHANGE_ME"), f".env.example: {variable} holds a value, not a placeholder"
    for variable in instance_variables():
        assert variable in documented, f"{variable} (deploy/dagster.yaml) is not in deploy/README.md's table"


def test_every_dagster_process_is_given_the_instance_variables() -> None:
    needed = instance_variables()
    assert needed == {"RESIGHT_DAGSTER_PG_URL", "RESIGHT_COMPUTE_LOGS_BUCKET", "RESIGHT_COMPUTE_LOGS_PREFIX"}
    for name in ("dagster-migrate", "code-server", "webserver", "daemon"):
        missing = needed - set(environment(services()[name]))
        assert not missing, f"{name} opens the instance without {sorted(missing)}"


def test_the_code_server_environment_makes_valid_settings(readers: dict[str, set[str]]) -> None:
    env = {k: substituted(v) for k, v in environment(services()["code-server"]).items()}
    recorded = RecordingEnv(env)
    settings = Settings.from_env(recorded)
    platform_set = {name for name in env if name.startswith(("RESIGHT_", "MLFLOW_"))} - instance_variables()
    assert platform_set <= recorded.read, f"set but not read by Settings: {sorted(platform_set - recorded.read)}"
    assert settings.lake_url.startswith("s3://") and settings.landing_url.startswith("s3://")
    assert settings.aws_endpoint_url == "http://minio:9000"
    assert not settings.embedded
    assert urlsplit(str(settings.dagster_pg_url)).scheme == "postgresql+psycopg2"  # Dagster's NOTIFY, see dagster.yaml


def test_every_url_and_port_points_at_a_service_that_listens_there() -> None:
    ports = listening()
    assert ports["code-server"] == {4000} and ports["webserver"] == {3000} and ports["mlflow"] == {5000}
    assert ports["minio"] == {9000, 9001} and ports["postgres"] == {5432}
    assert ports["metrics"] == {9188} and ports["prometheus"] == {9090} and ports["grafana"] == {3000}
    published: set[int] = set()
    for name, service in services().items():
        for mapping in service.get("ports") or []:
            host_ip, _, container = str(mapping).rpartition(":")
            assert host_ip.startswith("127.0.0.1:"), f"{name}: {mapping} published beyond this host"
            assert int(container) in ports[name], f"{name} publishes {container}, where it does not listen"
            published.add(int(host_ip.split(":")[1]))
    for name, service in services().items():
        for variable, value in environment(service).items():
            if "://" not in value or value.startswith("s3://"):
                continue
            url = urlsplit(substituted(value))
            if url.hostname == "localhost":  # a link for people on this host (the UI in alerts)
                assert url.port in published, f"{name}: {variable} -> localhost:{url.port}, not published"
                continue
            assert url.hostname in ports, f"{name}: {variable} points at {url.hostname}, not a service"
            assert url.port in ports[url.hostname], f"{name}: {variable} -> {url.hostname}:{url.port}, not listened on"
        for argv in (command_of(service) if service.get("command") else [], service.get("healthcheck", {}).get("test")):
            text = " ".join(str(a) for a in argv or [])
            for match in re.finditer(r"https?://(localhost|[a-z-]+):(\d+)", text):
                host = name if match[1] == "localhost" else match[1]
                assert int(match[2]) in ports[host], f"{name}: {match[0]} is not a port {host} listens on"
    pg_ready = services()["postgres"]["healthcheck"]["test"]
    assert int(pg_ready[pg_ready.index("-p") + 1]) in ports["postgres"]
    for name in ("code-server",):
        probe = [str(t) for t in services()[name]["healthcheck"]["test"][1:]]
        assert listen_port(probe) in ports[name]


def test_the_grpc_port_is_one_port_everywhere() -> None:
    server = load_yaml(WORKSPACE)["load_from"][0]["grpc_server"]
    code_server = command_of(services()["code-server"])
    image_cmd = exec_form(DOCKERFILE.runtime.all("CMD")[-1])
    health = exec_form(DOCKERFILE.runtime.all("HEALTHCHECK")[-1])
    deployment = load_yaml(HELM_VALUES)["dagster-user-deployments"]["deployments"][0]
    helm_server = load_yaml(HELM_VALUES)["dagsterWebserver"]["workspace"]["servers"][0]
    assert server["host"] == "code-server" and server["host"] in services()
    ports = {
        "workspace": server["port"],
        "code server -p": listen_port(code_server),
        "image CMD -p": listen_port(image_cmd),
        "image HEALTHCHECK -p": listen_port(health),
        "helm port": deployment["port"],
        "helm workspace": helm_server["port"],
    }
    for kind in ("startupProbe", "readinessProbe", "livenessProbe"):
        ports[f"helm {kind}"] = listen_port(deployment[kind]["exec"]["command"])
    assert set(ports.values()) == {4000}, ports
    assert helm_server["host"] == deployment["name"]  # the subchart's Service is named after the deployment


# --------------------------------------------------------------------------------------------
# Dagster's instance and workspace
# --------------------------------------------------------------------------------------------


def validate_instance(directory: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """``directory/dagster.yaml`` through Dagster's own instance validation, and each configurable
    class it names through that class's config schema (without opening any storage)."""
    from dagster._config import process_config
    from dagster._core.instance.config import dagster_instance_config

    raw = load_yaml(directory / "dagster.yaml")
    for variable in env_refs(raw):
        monkeypatch.setenv(variable, "postgresql+psycopg2://u:p@h:5432/d" if "PG_URL" in variable else "value")
    config, custom_class = dagster_instance_config(str(directory))
    assert custom_class is None
    for key, section in config.items():
        if isinstance(section, dict) and {"module", "class"} <= set(section):
            klass = getattr(importlib.import_module(section["module"]), section["class"])
            result = process_config(klass.config_type(), section.get("config") or {})
            assert result.success, f"{key}: {[e.message for e in result.errors or []]}"
    # `storage: postgres:` is DagsterPostgresStorage's config (dagster/_core/instance/ref.py).
    from dagster_postgres import DagsterPostgresStorage

    result = process_config(DagsterPostgresStorage.config_type(), config["storage"]["postgres"])
    assert result.success, [e.message for e in result.errors or []]
    return dict(config)


def test_the_production_instance_is_valid_dagster_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    shutil.copy(INSTANCE, tmp_path / "dagster.yaml")
    config = validate_instance(tmp_path, monkeypatch)
    assert config["run_coordinator"]["class"] == "QueuedRunCoordinator"
    assert config["compute_logs"]["class"] == "S3ComputeLogManager"
    assert config["telemetry"] == {"enabled": False}
    assert config["run_monitoring"]["enabled"] and config["run_retries"]["enabled"]
    assert set(config["retention"]) == {"schedule", "sensor", "auto_materialize"}


def test_the_repository_instance_is_valid_dagster_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    shutil.copy(REPO / "dagster.yaml", tmp_path / "dagster.yaml")
    config = validate_instance(tmp_path, monkeypatch)
    prod = load_yaml(INSTANCE)
    # Production keeps the repository's crash handling: what docs and tests say of one hold for both.
    assert config["run_monitoring"] == prod["run_monitoring"] and config["run_retries"] == prod["run_retries"]


def test_tag_limits_name_tags_the_platform_sets() -> None:
    from dagster._core.storage.tags import AUTOMATION_CONDITION_TAG, BACKFILL_ID_TAG

    from resight_platform.defs import emr
    from resight_platform.defs.retention import RETENTION_JOB, RETENTION_TAGS
    from resight_platform.defs.sensors import TRIGGER_TAG
    from resight_platform.resources import ENGINE_TAG

    emr_source = Path(emr.__file__).read_text()
    known = {
        (TRIGGER_TAG, "landing"),  # the landing sensor's runs
        (AUTOMATION_CONDITION_TAG, "true"),
        (BACKFILL_ID_TAG, None),
        (ENGINE_TAG, "spark"),
        ("resight/job", emr.EMR_SILVER_JOB),
        ("resight/job", RETENTION_JOB),
    }
    assert '"resight/job": EMR_SILVER_JOB' in emr_source
    assert RETENTION_TAGS == {"resight/job": RETENTION_JOB}
    limits = load_yaml(INSTANCE)["run_coordinator"]["config"]["tag_concurrency_limits"]
    assert {(limit["key"], limit.get("value")) for limit in limits} == known
    total = load_yaml(INSTANCE)["run_coordinator"]["config"]["max_concurrent_runs"]
    landing = next(limit["limit"] for limit in limits if limit["key"] == TRIGGER_TAG)
    others = sum(limit["limit"] for limit in limits if limit["key"] in (AUTOMATION_CONDITION_TAG, BACKFILL_ID_TAG))
    assert landing + others <= total, "landing runs keep their slots while automation and a backfill run"


def test_the_workspace_is_valid_and_keeps_the_repository_location_name() -> None:
    from dagster._core.workspace.config_schema import process_workspace_config

    for path in (WORKSPACE, REPO / "workspace.yaml"):
        assert process_workspace_config(load_yaml(path)).success, path
    [prod] = load_yaml(WORKSPACE)["load_from"]
    [repo] = load_yaml(REPO / "workspace.yaml")["load_from"]
    assert prod["grpc_server"]["location_name"] == repo["python_module"]["location_name"] == cli.DEFINITIONS_MODULE
    helm_server = load_yaml(HELM_VALUES)["dagsterWebserver"]["workspace"]["servers"][0]
    assert helm_server["name"] == cli.DEFINITIONS_MODULE


# --------------------------------------------------------------------------------------------
# The Dockerfile
# --------------------------------------------------------------------------------------------


def test_the_dockerfile_parser_reads_stages_and_continued_lines() -> None:
    parsed = parse_dockerfile(
        "ARG BASE=python:3.11-slim\n# a comment\nFROM ${BASE} AS builder\nRUN a \\\n    # inside\n    && b\n"
        "FROM ${BASE}\nUSER 1000\n"
    )
    assert [(s.name, parsed.resolve(s.base)) for s in parsed.stages] == [
        ("builder", "python:3.11-slim"),
        (None, "python:3.11-slim"),
    ]
    assert parsed.stages[0].instructions == [Instruction("RUN", "a && b", 4)]
    with pytest.raises(AssertionError, match="only ARG"):
        parse_dockerfile("RUN x\nFROM y\n")


def test_the_image_is_two_stages_on_python_311_slim() -> None:
    assert [s.name for s in DOCKERFILE.stages] == ["builder", "runtime"]
    for stage in DOCKERFILE.stages:
        assert DOCKERFILE.resolve(stage.base) == "python:3.11-slim"
    builder = " ".join(i.args for i in DOCKERFILE.stages[0].all("RUN"))
    assert "pip wheel" in builder and "python -m venv /opt/venv" in builder  # the wheel, installed into a venv
    assert [c.args for c in DOCKERFILE.runtime.all("COPY") if c.args.startswith("--from")] == [
        "--from=builder /opt/venv /opt/venv"
    ]
    assert {Path(p).relative_to(REPO).as_posix() for p in image_files().values()} == {
        "deploy/dagster.yaml",
        "deploy/workspace.yaml",
    }, "the runtime copies the venv and the instance files, never the source tree"


def test_the_runtime_runs_as_a_user_and_holds_no_compiler_or_secret() -> None:
    runtime = DOCKERFILE.runtime
    users = runtime.all("USER")
    assert users, "no USER in the runtime stage"
    user = users[-1].args.split(":")[0]
    assert user.isdigit() and int(user) != 0, "a numeric non-root user (Kubernetes runAsNonRoot checks the UID)"
    assert all(i.line < users[-1].line for i in runtime.all("RUN")), "nothing runs as root after USER"
    helm = load_yaml(HELM_VALUES)["dagster-user-deployments"]["deployments"][0]
    assert helm["podSecurityContext"]["runAsUser"] == int(user)
    compilers = re.compile(r"\b(gcc|g\+\+|clang|make|build-essential|python3?-dev|libpq-dev|cargo|rustc)\b")
    for run in runtime.all("RUN"):
        assert not compilers.search(run.args), f"line {run.line}: a build tool in the runtime stage"
    secretish = re.compile(r"PASSWORD|SECRET|TOKEN|CREDENTIAL|ACCESS_KEY|PRIVATE_KEY|_URL$")
    for stage in DOCKERFILE.stages:
        for instruction in stage.all("ARG") + stage.all("ENV"):
            for name, value in env_pairs(instruction).items():
                assert not (secretish.search(name) and value), f"line {instruction.line}: {name} has a value"


def test_the_build_context_holds_what_the_dockerfile_copies_and_nothing_else() -> None:
    ignore = [line.strip() for line in (DEPLOY / "Dockerfile.dockerignore").read_text().splitlines()]
    patterns = [line for line in ignore if line and not line.startswith("#")]
    assert patterns[0] == "**", "everything is left out of the context unless let in"
    let_in = {line[1:].rstrip("/") for line in patterns if line.startswith("!")}
    copied = {
        source.rstrip("/")
        for stage in DOCKERFILE.stages
        for copy in stage.all("COPY")
        if not copy.args.startswith("--from")
        for source in copy.args.split()[:-1]
    }
    assert copied == let_in, f"copied {sorted(copied)}, let into the context {sorted(let_in)}"
    for source in copied:
        assert (REPO / source).exists(), source


def test_the_image_sets_dagster_home_where_the_instance_is_copied() -> None:
    env = runtime_env()
    home = env["DAGSTER_HOME"]
    assert image_files()[f"{home}/dagster.yaml"] == INSTANCE
    assert load_yaml(HELM_VALUES)["global"]["dagsterHome"] == home
    assert env["PATH"].startswith("/opt/venv/bin:")
    assert env["RESIGHT_HOME"] in {str(v).split(":")[1] for v in services()["code-server"]["volumes"]}


def test_the_image_extras_exist_and_spark_is_a_choice() -> None:
    for stage in DOCKERFILE.stages:
        extras = {n: v for i in stage.all("ARG") for n, v in env_pairs(i).items() if n == "EXTRAS"}
        assert extras == {"EXTRAS": "k8s"}, stage.name
    assert {"k8s", "spark"} <= setup_extras()
    text = (DEPLOY / "Dockerfile").read_text()
    assert "--build-arg EXTRAS=k8s,spark" in text and "default-jre-headless" in text


def test_the_image_commands_are_real() -> None:
    [cmd] = DOCKERFILE.runtime.all("CMD")
    assert not DOCKERFILE.runtime.all("ENTRYPOINT")
    context = check_command(exec_form(cmd))
    assert context is not None and context.params["module_name"] == cli.DEFINITIONS_MODULE
    [health] = DOCKERFILE.runtime.all("HEALTHCHECK")
    check_command(exec_form(health))
    exposed = {int(p) for e in DOCKERFILE.runtime.all("EXPOSE") for p in e.args.split()}
    assert exposed == {listen_port(command_of(s)) for s in ours().values() if listen_port(command_of(s))}


def test_the_resight_commands_of_the_readme_exist() -> None:
    """deploy/README.md's `resight …` commands (run with `docker compose exec`) parse."""
    commands = re.findall(r"code-server (resight [^`\n]+)", (DEPLOY / "README.md").read_text())
    assert commands, "the README shows no resight command"
    for command in commands:
        check_command(shlex.split(command))


# --------------------------------------------------------------------------------------------
# Helm values
# --------------------------------------------------------------------------------------------


def key_paths(node: Any, prefix: str = "") -> Iterator[str]:
    """Dotted key paths of a values tree, stopping inside objects the chart passes through."""
    if any(prefix.endswith(opaque) for opaque in HELM_OPAQUE):
        yield prefix
        return
    if isinstance(node, dict):
        for key, value in node.items():
            yield from key_paths(value, f"{prefix}.{key}" if prefix else str(key))
    elif isinstance(node, list) and node and all(isinstance(item, dict) for item in node):
        for item in node:
            yield from key_paths(item, f"{prefix}[]")
    else:
        yield prefix


def test_helm_values_use_only_keys_of_the_chart() -> None:
    used = set(key_paths(load_yaml(HELM_VALUES)))
    unknown = used - HELM_KEYS
    assert not unknown, f"keys not checked against the chart: {sorted(unknown)}"


def test_key_paths_stop_at_objects_the_chart_passes_through() -> None:
    assert sorted(key_paths({"a": {"b": 1, "resources": {"limits": {"cpu": 1}}}, "l": [{"x": 1}], "s": ["p"]})) == [
        "a.b",
        "a.resources",
        "l[].x",
        "s",
    ]


def probes() -> Iterator[tuple[str, dict[str, Any]]]:
    values = load_yaml(HELM_VALUES)
    for kind in ("readinessProbe", "livenessProbe"):
        yield f"dagsterWebserver.{kind}", values["dagsterWebserver"][kind]
    for deployment in values["dagster-user-deployments"]["deployments"]:
        for kind in ("startupProbe", "readinessProbe", "livenessProbe"):
            yield f"{deployment['name']}.{kind}", deployment[kind]


def test_helm_probes_are_kubernetes_probes_that_reach_the_servers() -> None:
    values = load_yaml(HELM_VALUES)
    webserver_port = values["dagsterWebserver"]["service"]["port"]  # the chart's container port
    for where, probe in probes():
        allowed = PROBE_KEYS | ({"enabled"} if where.endswith(("startupProbe", "readinessProbe")) else set())
        assert set(probe) <= allowed, f"{where}: {set(probe) - allowed}"
        if "httpGet" in probe:
            assert probe["httpGet"] == {"path": "/server_info", "port": webserver_port}, where
        else:
            check_command(probe["exec"]["command"])


def test_helm_code_server_args_and_env_are_real(readers: dict[str, set[str]]) -> None:
    values = load_yaml(HELM_VALUES)
    [deployment] = values["dagster-user-deployments"]["deployments"]
    # The chart runs `dagster api grpc -h 0.0.0.0 -p <port>` and then these arguments.
    argv = ["dagster", "api", "grpc", "-h", "0.0.0.0", "-p", str(deployment["port"]), *deployment["dagsterApiGrpcArgs"]]
    context = check_command(argv)
    assert context is not None and context.params["location_name"] == cli.DEFINITIONS_MODULE
    documented = readme_variables()
    env: dict[str, str] = {}
    for item in deployment["env"]:
        name = item["name"]
        assert name in readers["platform"], f"the code server does not read {name}"
        assert name in documented, f"{name} (helm) is not in deploy/README.md's table"
        if "valueFrom" in item:
            ref = item["valueFrom"]["secretKeyRef"]
            assert ref["name"] == "resight-platform" and ref["key"] == name
            env[name] = {
                "RESIGHT_PG_URL": "postgresql://resight:p@pg:5432/resight",
                "RESIGHT_DAGSTER_PG_URL": "postgresql+psycopg2://dagster:p@pg:5432/dagster",
                "MLFLOW_TRACKING_URI": "http://mlflow:5000",
            }.get(name, "secret")
        else:
            assert not re.search(r"PASSWORD|SECRET|TOKEN|WEBHOOK|_PG_URL", name), f"{name} must come from a Secret"
            env[name] = str(item["value"])
    settings = Settings.from_env(env)
    assert settings.lake_url.startswith("s3://") and not settings.embedded
    for section in ("dagsterWebserver", "dagsterDaemon"):
        for item in values[section]["env"]:
            assert item["name"] in readers["dagster"], f"{section}: nothing reads {item['name']}"
            assert "value" in item and "valueFrom" not in item


def test_helm_carries_the_production_instance_policies(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    values = load_yaml(HELM_VALUES)
    instance = load_yaml(INSTANCE)
    queued = values["dagsterDaemon"]["runCoordinator"]["config"]["queuedRunCoordinator"]
    coordinator = instance["run_coordinator"]["config"]
    assert queued["tagConcurrencyLimits"] == coordinator["tag_concurrency_limits"]
    assert queued["maxConcurrentRuns"] == coordinator["max_concurrent_runs"]
    assert queued["dequeueIntervalSeconds"] == coordinator["dequeue_interval_seconds"]
    # Rendered by the chart off, appended whole instead (the template drops two settings).
    assert (
        not values["dagsterDaemon"]["runMonitoring"]["enabled"] and not values["dagsterDaemon"]["runRetries"]["enabled"]
    )
    extra = values["additionalInstanceConfig"]
    assert extra == {"run_monitoring": instance["run_monitoring"], "run_retries": instance["run_retries"]}
    (tmp_path / "dagster.yaml").write_text(yaml.safe_dump(extra))
    validate_dagster = importlib.import_module("dagster._core.instance.config").dagster_instance_config
    assert validate_dagster(str(tmp_path))[0]["run_retries"]["max_retries"] == 2
    retention = values["retention"]
    assert retention["enabled"]
    assert {
        "schedule": {"purge_after_days": retention["schedule"]["purgeAfterDays"]},
        "sensor": {"purge_after_days": retention["sensor"]["purgeAfterDays"]},
        "auto_materialize": {"purge_after_days": retention["autoMaterialize"]["purgeAfterDays"]},
    } == instance["retention"]
    assert values["telemetry"] == instance["telemetry"] == {"enabled": False}
    s3 = values["computeLogManager"]["config"]["s3ComputeLogManager"]
    env = environment(services()["code-server"])
    assert (s3["bucket"], s3["prefix"]) == (env["RESIGHT_COMPUTE_LOGS_BUCKET"], env["RESIGHT_COMPUTE_LOGS_PREFIX"])
    assert values["runLauncher"]["type"] == "K8sRunLauncher" and "k8s" in setup_extras()
    assert values["postgresql"]["enabled"] is False and values["generatePostgresqlPasswordSecret"] is False
    assert values["dagster-user-deployments"]["deployments"][0]["includeConfigInLaunchedRuns"] == {"enabled": True}


# --------------------------------------------------------------------------------------------
# Pipeline health: Prometheus and Grafana
# --------------------------------------------------------------------------------------------


def _mounted(service: str, source: Path) -> str:
    """Where compose mounts the file ``source`` in ``service``."""
    for volume in services()[service].get("volumes") or []:
        parts = str(volume).split(":")
        if parts[0].startswith("./") and (DEPLOY / parts[0]).resolve() == source.resolve():
            return parts[1]
    raise AssertionError(f"{service} does not mount {source}")


def test_prometheus_scrapes_the_metrics_service_where_it_listens() -> None:
    config = load_yaml(PROMETHEUS)
    assert _mounted("prometheus", PROMETHEUS) in services()["prometheus"]["command"][0]
    [job] = config["scrape_configs"]
    assert job["metrics_path"] == "/metrics"
    [target] = job["static_configs"][0]["targets"]
    host, _, port = target.partition(":")
    assert int(port) in listening()[host], f"{target}: nothing listens there"
    assert command_of(services()[host])[:2] == ["resight", "metrics"]
    check_command(command_of(services()[host]))
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool (Debian's prometheus package) is not installed: `make prometheus`")
    import subprocess

    done = subprocess.run([promtool, "check", "config", str(PROMETHEUS)], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


def test_grafana_reads_prometheus_and_the_warehouse_as_the_analyst() -> None:
    datasources = {d["uid"]: d for d in load_yaml(GRAFANA_DATASOURCES)["datasources"]}
    assert set(datasources) == {"resight-prometheus", "resight-postgres"}
    ports = listening()
    prometheus = urlsplit(datasources["resight-prometheus"]["url"])
    assert prometheus.hostname is not None and prometheus.port in ports[prometheus.hostname]
    warehouse = datasources["resight-postgres"]
    host, _, port = warehouse["url"].partition(":")
    assert int(port) in ports[host]
    code_server = urlsplit(substituted(environment(services()["code-server"])["RESIGHT_PG_URL"]))
    assert warehouse["jsonData"]["database"] == code_server.path.lstrip("/")
    assert warehouse["user"] == Settings.from_env({}).analyst_role, "the read-only analyst role, never the owner"
    password = warehouse["secureJsonData"]["password"]
    assert INTERPOLATED.fullmatch(password), "the password comes from the environment"
    variable = INTERPOLATED.fullmatch(password)[1]  # type: ignore[index]
    assert environment(services()["grafana"])[variable] == "${RESIGHT_ANALYST_PASSWORD:?set it in deploy/.env}"
    assert environment(services()["code-server"])[variable] == environment(services()["grafana"])[variable]


def test_grafana_loads_the_dashboard_from_where_compose_mounts_it() -> None:
    [provider] = load_yaml(GRAFANA_DASHBOARDS)["providers"]
    dashboard = DEPLOY / "grafana" / "resight-pipeline.json"
    assert Path(_mounted("grafana", dashboard)).parent == Path(provider["options"]["path"])
    for provisioning in (GRAFANA_DATASOURCES, GRAFANA_DASHBOARDS):
        assert _mounted("grafana", provisioning).startswith("/etc/grafana/provisioning/")
    assert json.loads(dashboard.read_text())["uid"] == "resight-pipeline"

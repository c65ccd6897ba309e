"""The environment the compute stack gives each service's container is one the settings loader
accepts in AWS: a value that would make a task exit 78 at start (shared/settings/) fails here, at
synth time, instead of in a deployment that the circuit breaker then rolls back."""

from __future__ import annotations

from shared.settings import load_settings
from tests.stacks.conftest import Json, props, service_task_definitions


def _literal_environments(templates: dict[str, Json]) -> dict[str, dict[str, str]]:
    """service -> the variables of its own container whose values are literals (not Ref, not Fn::)."""
    found: dict[str, dict[str, str]] = {}
    for name, task in service_task_definitions(templates["compute"]).items():
        service = name.removesuffix("TaskDefinition").lower()
        found[service] = {
            entry["Name"]: str(entry["Value"])
            for container in props(task)["ContainerDefinitions"]
            if container["Name"] == service
            for entry in container.get("Environment", [])
            if isinstance(entry["Value"], str | int | float)
        }
    return found


def test_every_service_environment_loads_in_aws(templates: dict[str, Json]) -> None:
    environments = _literal_environments(templates)
    assert set(environments) == {"gateway", "ledger", "session"}
    for service, environment in environments.items():
        assert len(environment) >= 5, (service, environment)  # the stack's literals were found
        settings = load_settings({**environment, "AWS_EXECUTION_ENV": "AWS_ECS_FARGATE"})  # raises naming each problem
        assert settings.process.in_aws and settings.dynamodb.endpoint_url is None
    assert load_settings({**environments["ledger"], "AWS_EXECUTION_ENV": "AWS_ECS_FARGATE"}).webhooks.require_https

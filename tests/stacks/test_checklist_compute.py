"""infrastructure.md checklist, Compute: each item is one test on the synthesized JSON."""

from __future__ import annotations

from tests.stacks.conftest import Json, env_values, props, references, resources, service_task_definitions

SERVICES = {"gateway": 8000, "ledger": 8001, "session": 8002}


def _services(t: Json) -> dict[str, Json]:
    return resources(t, "AWS::ECS::Service")


def _containers(t: Json) -> dict[str, list[Json]]:
    return {n: props(td)["ContainerDefinitions"] for n, td in service_task_definitions(t).items()}


def test_ecs_cluster_has_container_insights(templates: dict[str, Json]) -> None:
    (cluster,) = resources(templates["compute"], "AWS::ECS::Cluster").values()
    settings = {s["Name"]: s["Value"] for s in props(cluster)["ClusterSettings"]}
    assert settings["containerInsights"] in ("enabled", "enhanced")


def test_every_service_has_circuit_breaker_100_200_grace_period_private_subnets_no_public_ip(
    templates: dict[str, Json],
) -> None:
    services = _services(templates["compute"])
    assert sorted(props(s)["ServiceName"] for s in services.values()) == sorted(SERVICES)
    for name, service in services.items():
        p = props(service)
        deploy = p["DeploymentConfiguration"]
        assert deploy["DeploymentCircuitBreaker"] == {"Enable": True, "Rollback": True}, name
        assert deploy["MinimumHealthyPercent"] == 100 and deploy["MaximumPercent"] == 200, name
        assert p["HealthCheckGracePeriodSeconds"] > 0, name
        vpc = p["NetworkConfiguration"]["AwsvpcConfiguration"]
        assert vpc["AssignPublicIp"] == "DISABLED", name
        subnets = [s["Fn::ImportValue"]["Fn::Sub"] for s in vpc["Subnets"]]
        assert subnets == ["${NetworkStack}-AppSubnetAId", "${NetworkStack}-AppSubnetBId"], name


def test_every_load_balanced_service_depends_on_the_listener_rule_that_attaches_it(templates: dict[str, Json]) -> None:
    t = templates["compute"]
    rules = resources(t, "AWS::ElasticLoadBalancingV2::ListenerRule")
    attached = 0
    for name, service in _services(t).items():
        for lb in props(service).get("LoadBalancers", []):
            attached += 1
            target_group = lb["TargetGroupArn"]["Ref"]
            attaching = [r for r, rule in rules.items() if target_group in references(props(rule)["Actions"])]
            assert attaching and set(attaching) <= set(service.get("DependsOn", [])), name
    assert attached == 1  # the gateway; ledger and session are internal


def test_task_definitions_read_only_non_root_health_checked_containers(templates: dict[str, Json]) -> None:
    for name, containers in _containers(templates["compute"]).items():
        for c in containers:
            assert c["ReadonlyRootFilesystem"] is True, (name, c["Name"])
            assert c["User"] and c["User"].split(":")[0] not in ("0", "root"), (name, c["Name"])
            assert c["HealthCheck"]["Command"][0] == "CMD", (name, c["Name"])


def test_task_definitions_take_secrets_through_valuefrom_never_environment(templates: dict[str, Json]) -> None:
    expected = {
        # The Redis token is read by the tasks themselves (REDIS_AUTH_SECRET_ARN), not injected.
        "Gateway": {"INTERNAL_TOKEN"},
        "Ledger": {"INTERNAL_TOKEN"},  # IAM database authentication: no password (issue 13)
        "Session": {"INTERNAL_TOKEN"},
    }
    for name, containers in _containers(templates["compute"]).items():
        app = containers[0]
        secrets = {s["Name"]: s["ValueFrom"] for s in app["Secrets"]}
        assert set(secrets) == expected[name.removesuffix("TaskDefinition")]
        env = {e["Name"] for e in app["Environment"]}
        assert not env & set(secrets)
        for value in app["Environment"]:
            assert "{{resolve" not in str(value["Value"])


def test_task_definitions_log_to_kms_encrypted_groups_with_retention(templates: dict[str, Json]) -> None:
    t = templates["compute"]
    for name, containers in _containers(t).items():
        for c in containers:
            log = c["LogConfiguration"]
            assert log["LogDriver"] == "awslogs"
            group = t["Resources"][log["Options"]["awslogs-group"]["Ref"]]
            assert "KmsKeyId" in props(group) and "RetentionInDays" in props(group), name


def test_task_definitions_image_by_parameter_and_service_chosen_by_command(templates: dict[str, Json]) -> None:
    t = templates["compute"]
    assert "ContainerImage" in t["Parameters"]
    for name, containers in _containers(t).items():
        app = containers[0]
        service = name.removesuffix("TaskDefinition").lower()
        assert app["Image"] == {"Ref": "ContainerImage"}
        assert app["Command"] == ["python", "-m", f"services.{service}"]
        assert app["PortMappings"][0]["ContainerPort"] == SERVICES[service]
        env = {e["Name"]: e["Value"] for e in app["Environment"]}
        assert env["BIND_HOST"] == "0.0.0.0"
        assert env["LEDGER_URL"] == "http://ledger:8001" and env["SESSION_URL"] == "http://session:8002"
        assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://127.0.0.1:4317"
        assert {
            "GATEWAY_PORT",
            "LEDGER_PORT",
            "SESSION_PORT",
            "DYNAMODB_TABLE_PREFIX",
            "AWS_REGION",
            "RATE_LIMIT_PER_SECOND",
            "RATE_LIMIT_BURST",
            "SESSION_TTL_SECONDS",
        } <= set(env)


def test_task_definitions_have_an_adot_sidecar(templates: dict[str, Json]) -> None:
    t = templates["compute"]
    for name, containers in _containers(t).items():
        # Pulled through this account's ECR pull-through cache (issue 13, item 8).
        adot = {"Fn::Sub": "${AWS::AccountId}.dkr.ecr.${AWS::Region}.${AWS::URLSuffix}/${AdotImage}"}
        sidecars = [c for c in containers if c["Image"] == adot]
        assert len(sidecars) == 1, name
    assert "aws-otel-collector" in t["Parameters"]["AdotImage"]["Default"]


def test_service_to_service_through_service_connect_only(templates: dict[str, Json]) -> None:
    t = templates["compute"]
    assert not resources(t, "AWS::ServiceDiscovery::Service")  # no parallel Cloud Map DNS discovery
    for service in _services(t).values():
        connect = props(service)["ServiceConnectConfiguration"]
        assert connect["Enabled"] is True
        assert "ServiceRegistries" not in props(service)
        svc = props(service)["ServiceName"]
        if svc == "gateway":
            assert "Services" not in connect  # client only
        else:
            (entry,) = connect["Services"]
            assert entry["ClientAliases"] == [{"DnsName": svc, "Port": SERVICES[svc]}]


def test_autoscaling_min_two_and_cpu_target_tracking_at_70(templates: dict[str, Json]) -> None:
    t = templates["compute"]
    targets = resources(t, "AWS::ApplicationAutoScaling::ScalableTarget")
    policies = resources(t, "AWS::ApplicationAutoScaling::ScalingPolicy").values()
    assert len(targets) == 3
    for name, target in targets.items():
        assert min(env_values(t, props(target)["MinCapacity"])) >= 2, name
        (policy,) = [p for p in policies if props(p)["ScalingTargetId"] == {"Ref": name}]
        config = props(policy)["TargetTrackingScalingPolicyConfiguration"]
        assert config["PredefinedMetricSpecification"]["PredefinedMetricType"] == "ECSServiceAverageCPUUtilization"
        assert config["TargetValue"] == 70


def test_alb_https_listener_with_certificate_parameter_and_tls12_policy(templates: dict[str, Json]) -> None:
    t = templates["compute"]
    (https,) = [x for x in resources(t, "AWS::ElasticLoadBalancingV2::Listener").values() if props(x)["Port"] == 443]
    assert props(https)["Protocol"] == "HTTPS"
    assert props(https)["Certificates"] == [{"CertificateArn": {"Ref": "CertificateArn"}}]
    assert props(https)["SslPolicy"] in ("ELBSecurityPolicy-TLS13-1-2-2021-06", "ELBSecurityPolicy-TLS-1-2-2017-01")


def test_alb_deletion_protection_drops_invalid_headers_and_logs_to_a_bucket(templates: dict[str, Json]) -> None:
    t = templates["compute"]
    (alb,) = resources(t, "AWS::ElasticLoadBalancingV2::LoadBalancer").values()
    attrs = {a["Key"]: a["Value"] for a in props(alb)["LoadBalancerAttributes"]}
    assert attrs["deletion_protection.enabled"] == "true"
    assert attrs["routing.http.drop_invalid_header_fields.enabled"] == "true"
    assert attrs["access_logs.s3.enabled"] == "true"
    bucket = attrs["access_logs.s3.bucket"]["Ref"]
    (policy,) = [p for p in resources(t, "AWS::S3::BucketPolicy").values() if props(p)["Bucket"] == {"Ref": bucket}]
    assert "AlbAccessLogsBucketPolicy" in alb["DependsOn"]
    writes = [s for s in props(policy)["PolicyDocument"]["Statement"] if s["Effect"] == "Allow"]
    assert writes and all(s["Action"] == ["s3:PutObject"] for s in writes)
    assert "/alb/AWSLogs/${AWS::AccountId}/*" in writes[0]["Resource"][0]["Fn::Sub"]


def test_alb_has_a_wafv2_web_acl_with_managed_rules_and_a_rate_rule(templates: dict[str, Json]) -> None:
    t = templates["compute"]
    (acl,) = resources(t, "AWS::WAFv2::WebACL").values()
    statements = [r["Statement"] for r in props(acl)["Rules"]]
    assert sum("ManagedRuleGroupStatement" in s for s in statements) >= 2
    assert any("RateBasedStatement" in s for s in statements)
    (assoc,) = resources(t, "AWS::WAFv2::WebACLAssociation").values()
    assert props(assoc)["ResourceArn"] == {"Ref": "LoadBalancer"}


def test_target_groups_are_ip_with_health_check_on_health_ready(templates: dict[str, Json]) -> None:
    for name, tg in resources(templates["compute"], "AWS::ElasticLoadBalancingV2::TargetGroup").items():
        assert props(tg)["TargetType"] == "ip", name
        assert props(tg)["HealthCheckPath"] == "/health/ready", name

"""The plan's vocabulary, literally: the kubectl commands a wait, a probe and a log read become, what a skip probe
decides from its output, the refusal of an installed version the plan does not pin, and the JSON form of a step
that sets every field (docs/plan.md)."""

from __future__ import annotations

from dataclasses import replace

import pytest
from dbstack.plan.model import (
    BackupCase,
    Command,
    Diagnostic,
    Endpoint,
    Fact,
    Image,
    InstalledVersion,
    Markers,
    Plan,
    PodLogs,
    Probe,
    RestoreCluster,
    SnapshotSupport,
    Step,
    StepKind,
    Wait,
    Watch,
    kubectl,
)

KUBEBLOCKS = InstalledVersion("kubeblocks", "KubeBlocks", "1.0.1", ("metadata", "labels", "app.kubernetes.io/version"))


@pytest.mark.parametrize(
    ("stdout", "version"),
    [
        ('{"metadata": {"labels": {"app.kubernetes.io/version": "1.0.1"}}}', "1.0.1"),
        ('{"metadata": {"labels": {"app.kubernetes.io/version": 3}}}', "3"),
        ('{"metadata": {"labels": {"app.kubernetes.io/version": ""}}}', None),
        ('{"metadata": {"labels": {"app.kubernetes.io/version": {"a": 1}}}}', None),
        ('{"metadata": {"labels": {}}}', None),
        ('{"metadata": ["labels"]}', None),
        ("not json", None),
    ],
)
def test_the_installed_version_is_read_at_its_json_path(stdout: str, version: str | None) -> None:
    assert KUBEBLOCKS.read(stdout) == version


def test_an_installed_version_other_than_the_pinned_one_is_refused_in_words() -> None:
    assert KUBEBLOCKS.refusal("1.0.1", "kb-system") is None
    assert KUBEBLOCKS.refusal("0.9.5", "deployment kb-system/kubeblocks") == (
        "KubeBlocks 0.9.5 is installed (deployment kb-system/kubeblocks), but the plan pins 1.0.1; upgrade or "
        "remove it, or set kubeblocks.reuseInstalled: any to reuse it as it is"
    )
    assert KUBEBLOCKS.refusal(None, "release kb-system/kubeblocks") == (
        "KubeBlocks is installed (release kb-system/kubeblocks) but its version cannot be read; upgrade or remove "
        "it, or set kubeblocks.reuseInstalled: any to reuse it as it is"
    )
    anything = replace(KUBEBLOCKS, any_version=True)
    assert anything.refusal("0.9.5", "x") is None
    assert anything.refusal(None, "x") is None


def test_a_probe_passes_on_exit_zero_with_the_output_it_asks_for() -> None:
    plain = Probe(kubectl("get", "crd", "x"))
    assert plain.passed(0, "")
    assert not plain.passed(1, "x")
    wants_output = Probe(kubectl("get", "pods"), expect_output=True)
    assert wants_output.passed(0, "pod/a\n")
    assert not wants_output.passed(0, " \n")
    deployed = Probe(kubectl("status"), contains='"status":"deployed"')
    assert deployed.passed(0, '{"status":"deployed"}')
    assert not deployed.passed(0, '{"status":"failed"}')
    assert not deployed.passed(2, '{"status":"deployed"}')


def test_a_reporting_probe_names_what_it_found_with_its_namespace() -> None:
    probe = Probe(kubectl("get", "pods"), reports="pod")
    assert probe.found("kube-system/snapshot-controller-1\n  kb-system/snapshot-controller-2  \nno-slash\n\n") == [
        "pod snapshot-controller-1 in namespace kube-system",
        "pod snapshot-controller-2 in namespace kb-system",
    ]
    assert Probe(kubectl("get", "pods")).found("kube-system/a\n") == []


def test_each_wait_is_one_kubectl_command() -> None:
    assert str(Wait("crd/x.io", None, "condition=Established").command(9)) == (
        "kubectl wait crd/x.io --for=condition=Established --timeout=9s"
    )
    assert str(Wait("deployment/kubeblocks", "kb", "rollout").command(7)) == (
        "kubectl rollout status deployment/kubeblocks -n kb --timeout=7s"
    )
    assert str(Wait("deployment/kubeblocks", None, "rollout").command(7)) == (
        "kubectl rollout status deployment/kubeblocks --timeout=7s"
    )
    assert str(Wait("pods", None, "condition=Ready", selector="a=b").command(5)) == (
        "kubectl wait pods -A -l a=b --for=condition=Ready --timeout=5s"
    )
    assert str(Wait("pods", "ns", "condition=Ready", selector="a=b").command(5)) == (
        "kubectl wait pods -n ns -l a=b --for=condition=Ready --timeout=5s"
    )
    assert str(Wait("namespace/x", None, "delete").exists_command(4)) == (
        "kubectl wait namespace/x --for=create --timeout=4s"
    )


def test_a_wait_that_can_fail_has_its_failure_wait_and_reason_read() -> None:
    backup = Wait(
        "backups.dataprotection.kubeblocks.io/b",
        "ns",
        "jsonpath={.status.phase}=Completed",
        fails_on="jsonpath={.status.phase}=Failed",
        failure_reason="{.status.failureReason}",
    )
    assert backup.failure_command(30).argv == (
        "kubectl",
        "wait",
        "backups.dataprotection.kubeblocks.io/b",
        "-n",
        "ns",
        "--for=jsonpath={.status.phase}=Failed",
        "--timeout=30s",
    )
    assert backup.reason_command().argv == (
        "kubectl",
        "get",
        "backups.dataprotection.kubeblocks.io/b",
        "-n",
        "ns",
        "-o",
        "jsonpath={.status.failureReason}",
    )
    assert backup.exists_command(3).argv == (
        "kubectl",
        "wait",
        "backups.dataprotection.kubeblocks.io/b",
        "-n",
        "ns",
        "--for=create",
        "--timeout=3s",
    )
    assert Wait("x/y", None, "delete").reason_command().argv == ("kubectl", "get", "x/y", "-o", "jsonpath=")


def test_a_command_reads_as_a_shell_line() -> None:
    assert str(Command(("kubectl", "get", "a b"))) == "kubectl get 'a b'"
    assert str(Command(("helm", "-f", "-"), stdin="x: 1\n")) == "helm -f - < values"
    assert str(Command(("helm", "-f", "-"), stdin="")) == "helm -f - < values"


ENDPOINT = Endpoint("redis", "Redis", "r", "ns", "r-redis-redis", 6379, "r-secret", "1.0.1", "7.2.4", None, 2)


def test_a_step_that_sets_every_field_in_json() -> None:
    wait = Wait("clusters.apps.kubeblocks.io/r-r", "ns", "jsonpath={.status.phase}=Running", True, None, "j=F", "{.r}")
    step = Step(
        id="restore:redis",
        title="Restore",
        kind=StepKind.RESTORE,
        needs=("backup:redis",),
        commands=(Command(("kubectl", "apply", "-f", "-"), stdin="kind: X\n"),),
        done_when=(wait,),
        timeout_s=42,
        skip_when=(
            Probe(
                kubectl("get", "x"),
                expect_output=True,
                contains="c",
                installed_version=InstalledVersion("redisAddon", "the redis addon", "1.0.1", ("a", "b"), True),
                reports="pod",
            ),
        ),
        retry_on=("race",),
        retry_while=("locked",),
        database="redis",
        watch=Watch("r-r", "ns", "sel", ("Failed",), ("Stuck",), ("Insufficient cpu",), 4, 5, True),
        diagnostics=(
            Diagnostic("logs.txt", kubectl("get", "pods"), PodLogs("ns", 10, True)),
            Diagnostic("d.txt", kubectl("describe", "x")),
        ),
        done_when_skipped=(Wait("pods", None, "condition=Ready", selector="s=1"),),
        images=(Image("redis", "main", "apecloud/redis:7", "docker.io/apecloud/redis:7"),),
        markers=Markers("verify", ENDPOINT, "restored r-r"),
        stage="backup",
        restore=RestoreCluster("r", "r-r", "ns", "b", "redis"),
        snapshot_support=SnapshotSupport("sc", "vsc", ("redis",)),
        cleanup=True,
        facts=(Fact("size", kubectl("get", "backup", "b")),),
    )
    case = BackupCase("redis", "Redis", "volume-snapshot", None, "b", "p", "r-r")
    plan = Plan("ns", "ci", {"kubeblocks": "1.0.1"}, (step,), (ENDPOINT,), (case,))
    endpoint = {
        "database": "redis",
        "title": "Redis",
        "release": "r",
        "namespace": "ns",
        "service": "r-redis-redis",
        "host": "r-redis-redis.ns.svc.cluster.local",
        "port": 6379,
        "secret": "r-secret",
        "chartVersion": "1.0.1",
        "version": "7.2.4",
        "mode": None,
        "replicas": 2,
    }
    assert plan.to_json() == {
        "schemaVersion": 1,
        "namespace": "ns",
        "profile": "ci",
        "versions": {"kubeblocks": "1.0.1"},
        "steps": [
            {
                "id": "restore:redis",
                "title": "Restore",
                "kind": "restore",
                "database": "redis",
                "needs": ["backup:redis"],
                "skipWhen": [
                    {
                        "command": {"argv": ["kubectl", "get", "x"], "stdin": None},
                        "expectOutput": True,
                        "contains": "c",
                        "reports": "pod",
                        "installedVersion": {
                            "key": "redisAddon",
                            "pinned": "1.0.1",
                            "jsonPath": ["a", "b"],
                            "anyVersion": True,
                        },
                    }
                ],
                "commands": [{"argv": ["kubectl", "apply", "-f", "-"], "stdin": "kind: X\n"}],
                "doneWhen": [
                    {
                        "resource": "clusters.apps.kubeblocks.io/r-r",
                        "namespace": "ns",
                        "selector": None,
                        "condition": "jsonpath={.status.phase}=Running",
                        "mustExistFirst": True,
                        "command": {
                            "argv": [
                                "kubectl",
                                "wait",
                                "clusters.apps.kubeblocks.io/r-r",
                                "-n",
                                "ns",
                                "--for=jsonpath={.status.phase}=Running",
                                "--timeout=42s",
                            ],
                            "stdin": None,
                        },
                        "failsOn": "j=F",
                        "failureReason": "{.r}",
                    }
                ],
                "doneWhenSkipped": [
                    {
                        "resource": "pods",
                        "namespace": None,
                        "selector": "s=1",
                        "condition": "condition=Ready",
                        "mustExistFirst": False,
                        "command": {
                            "argv": [
                                "kubectl",
                                "wait",
                                "pods",
                                "-A",
                                "-l",
                                "s=1",
                                "--for=condition=Ready",
                                "--timeout=42s",
                            ],
                            "stdin": None,
                        },
                        "failsOn": None,
                        "failureReason": None,
                    }
                ],
                "images": [
                    {
                        "component": "redis",
                        "container": "main",
                        "source": "apecloud/redis:7",
                        "image": "docker.io/apecloud/redis:7",
                    }
                ],
                "timeoutSeconds": 42,
                "retryOn": ["race"],
                "retryWhile": ["locked"],
                "watch": {
                    "cluster": "r-r",
                    "namespace": "ns",
                    "podSelector": "sel",
                    "failPhases": ["Failed"],
                    "stuckReasons": ["Stuck"],
                    "unschedulableMessages": ["Insufficient cpu"],
                    "confirmLooks": 4,
                    "crashloopRestarts": 5,
                    "restores": True,
                },
                "diagnostics": [
                    {
                        "name": "logs.txt",
                        "command": {"argv": ["kubectl", "get", "pods"], "stdin": None},
                        "podLogs": {"tail": 10, "previous": True},
                    },
                    {
                        "name": "d.txt",
                        "command": {"argv": ["kubectl", "describe", "x"], "stdin": None},
                        "podLogs": None,
                    },
                ],
                "markers": {"phase": "verify", "endpoint": endpoint, "context": "restored r-r"},
                "stage": "backup",
                "restore": {"source": "r", "target": "r-r", "namespace": "ns", "backup": "b", "component": "redis"},
                "snapshotSupport": {"storageClass": "sc", "snapshotClass": "vsc", "databases": ["redis"]},
                "cleanup": True,
                "facts": [{"name": "size", "command": {"argv": ["kubectl", "get", "backup", "b"], "stdin": None}}],
            }
        ],
        "endpoints": [endpoint],
        "backups": [
            {
                "database": "redis",
                "title": "Redis",
                "method": "volume-snapshot",
                "reason": None,
                "backup": "b",
                "backupPolicy": "p",
                "restoredCluster": "r-r",
            }
        ],
    }


def test_a_bare_step_in_json_has_nulls_and_empty_lists() -> None:
    step = Step("kubeblocks-crds", "CRDs", StepKind.KUBEBLOCKS_CRDS, (), (), (), 5)
    assert Plan("ns", None, {}, (step,)).to_json()["steps"] == [
        {
            "id": "kubeblocks-crds",
            "title": "CRDs",
            "kind": "kubeblocks-crds",
            "database": None,
            "needs": [],
            "skipWhen": [],
            "commands": [],
            "doneWhen": [],
            "doneWhenSkipped": None,
            "images": [],
            "timeoutSeconds": 5,
            "retryOn": [],
            "retryWhile": [],
            "watch": None,
            "diagnostics": [],
            "markers": None,
            "stage": None,
            "restore": None,
            "snapshotSupport": None,
            "cleanup": False,
            "facts": [],
        }
    ]
    probe = Probe(kubectl("get", "crd"))
    assert Plan("ns", None, {}, (replace(step, skip_when=(probe,)),)).to_json()["steps"][0]["skipWhen"] == [
        {
            "command": {"argv": ["kubectl", "get", "crd"], "stdin": None},
            "expectOutput": False,
            "contains": None,
            "reports": None,
            "installedVersion": None,
        }
    ]


def test_a_plan_finds_its_steps_by_id() -> None:
    first = Step("a", "A", StepKind.ADDON, (), (), (), 1)
    second = replace(first, id="b")
    plan = Plan("ns", None, {}, (first, second))
    assert plan.step("b") is second
    with pytest.raises(KeyError):
        plan.step("c")

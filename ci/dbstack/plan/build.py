"""Builds the deployment and teardown plans from a Config: ordered steps, each with its commands, skip probe, wait
condition and timeout."""

from __future__ import annotations

from dbstack.config.catalog import service_releases
from dbstack.config.load import REUSE_ANY, Config, DatabaseConfig
from dbstack.plan.backup import ON_K3S, backup_stage
from dbstack.plan.backup import teardown_steps as backup_teardown_steps
from dbstack.plan.model import (
    Command,
    Diagnostic,
    Endpoint,
    Image,
    InstalledVersion,
    Plan,
    PodLogs,
    Probe,
    Step,
    StepKind,
    Wait,
    Watch,
    helm,
    kubectl,
)

SNAPSHOT_CRDS = ("volumesnapshotclasses", "volumesnapshots", "volumesnapshotcontents")
SNAPSHOT_CONTROLLER_MANIFESTS = ("rbac-snapshot-controller", "setup-snapshot-controller")
KUBEBLOCKS_CRDS = (
    "clusters.apps.kubeblocks.io",
    "clusterdefinitions.apps.kubeblocks.io",
    "componentdefinitions.apps.kubeblocks.io",
    "componentversions.apps.kubeblocks.io",
    "actionsets.dataprotection.kubeblocks.io",
    "backuppolicytemplates.dataprotection.kubeblocks.io",
    "paramconfigrenderers.parameters.kubeblocks.io",
    "parametersdefinitions.parameters.kubeblocks.io",
)
KUBEBLOCKS_DEPLOYMENTS = ("kubeblocks", "kubeblocks-dataprotection")
KUBEBLOCKS_VERSION_LABEL = "app.kubernetes.io/version"
"""The chart puts its appVersion (the release's version) in this label of the kubeblocks Deployment."""
SNAPSHOT_CONTROLLER_SELECTOR = "app.kubernetes.io/name=snapshot-controller"
"""On the upstream controller's pods only (its Deployment has no labels); chart-installed controllers carry it too."""
KUBEBLOCKS_IMAGE_NAMESPACE = "apecloud"
HELM_LOCKED = "another operation (install/upgrade/rollback) is in progress"
"""Helm's answer (pkg/action/action.go errPending, 3.x and 4.x) while another client's operation on the release is
pending: a second preview's first run installing the same release, or a helm killed mid-operation."""
HELM_INSTALL_RACE = (
    "cannot re-use a name that is still in use",
    "cannot reuse a name that is still in use",
    "release: already exists",
)
"""Helm's answers when another client's install of the same release started between `upgrade --install`'s history
check and its own install: pkg/action/install.go availableName (Helm 3 "re-use", Helm 4 "reuse") and
pkg/storage/driver ErrReleaseExists (the release record was created first by the other client)."""
HELM_RACES = (HELM_LOCKED, *HELM_INSTALL_RACE)


def endpoint(config: Config, d: DatabaseConfig) -> Endpoint:
    return Endpoint(
        database=d.key,
        title=d.db.title,
        release=d.release,
        namespace=config.namespace,
        service=d.db.service(d.release),
        port=d.db.port,
        secret=d.db.secret(d.release),
        chart_version=d.chart_version,
        version=d.version,
        mode=d.mode,
        replicas=d.replicas,
    )


def kubeblocks_image(image: str, registry: str, namespace: str = KUBEBLOCKS_IMAGE_NAMESPACE) -> str:
    """The image a pod really pulls: KubeBlocks (`ReplaceImageRegistry`, with `registryConfig.defaultRegistry` and
    `defaultNamespace` set as the plan sets them) keeps only the repository's last path part and the tag or digest."""
    name, at, digest = image.partition("@")
    last = name.rsplit("/", 1)[-1]
    repository, colon, tag = last.partition(":")
    return f"{registry}/{namespace}/{repository}{colon}{tag}{at}{digest}"


def cluster_images(config: Config, d: DatabaseConfig) -> tuple[Image, ...]:
    """Every image the ComponentVersion releases of `d`'s service version name, for each component it deploys."""
    releases = service_releases(d.key, d.chart_version) or {}
    images = releases.get(d.version, {})
    return tuple(
        Image(c.name, container, source, kubeblocks_image(source, config.registry))
        for c in d.components
        for container, source in images.get(c.name, {}).items()
    )


def build_plan(config: Config, cluster: str = ON_K3S) -> Plan:
    """Steps in a valid order (every step after the steps it needs). `cluster` is what runs it, `k3s` (the
    pipeline's own) or `existing` (a kubeconfig's): the backup stage installs a snapshot-capable CSI driver on the
    first, and checks the configured classes on the second."""
    kb_ns = config.kubeblocks_namespace
    snap = config.snapshotter_version
    raw = f"https://raw.githubusercontent.com/kubernetes-csi/external-snapshotter/{snap}"
    steps: list[Step] = [
        _crd_step(
            config,
            "snapshot-crds",
            f"Install VolumeSnapshot CRDs ({snap})",
            StepKind.SNAPSHOT_CRDS,
            urls=tuple(f"{raw}/client/config/crd/snapshot.storage.k8s.io_{c}.yaml" for c in SNAPSHOT_CRDS),
            crds=tuple(f"{c}.snapshot.storage.k8s.io" for c in SNAPSHOT_CRDS),
        ),
        Step(
            id="snapshot-controller",
            title=f"Install the snapshot controller ({snap})",
            kind=StepKind.SNAPSHOT_CONTROLLER,
            needs=("snapshot-crds",),
            # Its pods, in any namespace: the upstream manifest labels only the pods, a chart may install it anywhere.
            skip_when=(
                Probe(
                    kubectl(
                        "get",
                        "pods",
                        "-A",
                        "-l",
                        SNAPSHOT_CONTROLLER_SELECTOR,
                        "-o",
                        'jsonpath={range .items[*]}{.metadata.namespace}/{.metadata.name}{"\\n"}{end}',
                    ),
                    expect_output=True,
                    reports="pod",
                ),
            ),
            commands=tuple(
                kubectl("apply", "-f", f"{raw}/deploy/kubernetes/snapshot-controller/{m}.yaml")
                for m in SNAPSHOT_CONTROLLER_MANIFESTS
            ),
            done_when=(Wait("deployment/snapshot-controller", "kube-system", "rollout"),),
            # Found elsewhere: the pods that were found must be Ready, wherever they are.
            done_when_skipped=(Wait("pods", None, "condition=Ready", selector=SNAPSHOT_CONTROLLER_SELECTOR),),
            timeout_s=config.timeouts.snapshot_controller,
            diagnostics=(
                Diagnostic("pods.txt", kubectl("get", "pods", "-A", "-l", SNAPSHOT_CONTROLLER_SELECTOR, "-o", "wide")),
                Diagnostic("describe.txt", kubectl("-n", "kube-system", "describe", "deploy/snapshot-controller")),
                Diagnostic(
                    "logs.txt",
                    kubectl(
                        "-n", "kube-system", "logs", "deploy/snapshot-controller", "--all-containers", "--tail=500"
                    ),
                ),
            ),
        ),
        _crd_step(
            config,
            "kubeblocks-crds",
            f"Install KubeBlocks CRDs (v{config.kubeblocks_version})",
            StepKind.KUBEBLOCKS_CRDS,
            urls=(
                "https://github.com/apecloud/kubeblocks/releases/download/"
                f"v{config.kubeblocks_version}/kubeblocks_crds.yaml",
            ),
            crds=KUBEBLOCKS_CRDS,
        ),
        Step(
            id="kubeblocks",
            title=f"Install KubeBlocks {config.kubeblocks_version}",
            kind=StepKind.KUBEBLOCKS,
            # The dataprotection controller crashes when the VolumeSnapshot CRDs are missing at start.
            needs=("snapshot-crds", "kubeblocks-crds"),
            skip_when=(
                Probe(
                    kubectl("-n", kb_ns, "get", "deploy", "kubeblocks", "-o", "json"),
                    expect_output=True,
                    installed_version=InstalledVersion(
                        key="kubeblocks",
                        subject="KubeBlocks",
                        pinned=config.kubeblocks_version,
                        json_path=("metadata", "labels", KUBEBLOCKS_VERSION_LABEL),
                        any_version=config.reuse_installed == REUSE_ANY,
                    ),
                ),
            ),
            commands=(
                helm(
                    "upgrade",
                    "--install",
                    "kubeblocks",
                    "kubeblocks",
                    "--repo",
                    config.helm_repo,
                    "--version",
                    config.kubeblocks_version,
                    "-n",
                    kb_ns,
                    "--create-namespace",
                    "--set",
                    f"image.registry={config.registry}",
                    "--set",
                    f"dataProtection.image.registry={config.registry}",
                    "--set",
                    f"addonChartsImage.registry={config.registry}",
                    "--set",
                    f"registryConfig.defaultRegistry={config.registry}",
                    "--set",
                    "registryConfig.defaultNamespace=apecloud",
                    # The pipeline installs the addons it needs at pinned versions itself.
                    "--set",
                    "autoInstalledAddons={}",
                    f"--timeout={config.timeouts.kubeblocks}s",
                ),
            ),
            # A second preview's first run may be installing it at the same moment.
            retry_while=HELM_RACES,
            done_when=tuple(Wait(f"deployment/{d}", kb_ns, "rollout") for d in KUBEBLOCKS_DEPLOYMENTS),
            timeout_s=config.timeouts.kubeblocks,
            diagnostics=_kubeblocks_diagnostics(kb_ns),
        ),
    ]
    if not config.install_snapshot_controller:
        steps = [s for s in steps if s.kind is not StepKind.SNAPSHOT_CONTROLLER]
    endpoints = {d.key: endpoint(config, d) for d in config.enabled}
    stage = backup_stage(config, cluster, endpoints)
    if stage is not None:
        steps.extend(stage.platform_steps)
    for d in config.enabled:
        steps.append(_addon_step(config, d))
    for d in config.enabled:
        storage_class = stage.storage_classes.get(d.key) if stage else None
        needs = stage.cluster_needs.get(d.key, ()) if stage else ()
        steps.append(_cluster_step(config, d, storage_class, needs))
    if stage is not None:
        steps.extend(stage.steps)
    return Plan(
        namespace=config.namespace,
        profile=config.profile,
        versions={
            "kubeblocks": config.kubeblocks_version,
            "snapshotter": config.snapshotter_version,
            **{f"{d.key}Chart": d.chart_version for d in config.enabled},
            **{d.key: d.version for d in config.enabled},
            **{f"image.{k}": v for k, v in config.images.items()},
        },
        steps=tuple(steps),
        endpoints=tuple(endpoints.values()),
        backups=stage.cases if stage else (),
    )


POD_LOG_TAIL = 1000


def pod_logs_diagnostic(name: str, namespace: str, selector: str, *, previous: bool) -> Diagnostic:
    """Every container's logs (or, with `previous`, every restarted container's previous logs) of the pods
    `selector` picks."""
    return Diagnostic(
        name,
        kubectl("-n", namespace, "get", "pods", "-l", selector, "-o", "json"),
        PodLogs(namespace, POD_LOG_TAIL, previous),
    )


def _crd_step(
    config: Config, step_id: str, title: str, kind: StepKind, *, urls: tuple[str, ...], crds: tuple[str, ...]
) -> Step:
    """CRDs from manifest URLs, skipped when all are there, done when all are Established."""
    return Step(
        id=step_id,
        title=title,
        kind=kind,
        needs=(),
        skip_when=(Probe(kubectl("get", "crd", *crds)),),
        # Server-side: the 10 MB KubeBlocks bundle overflows client-side apply's annotation; apply stays idempotent.
        commands=tuple(kubectl("apply", "--server-side", "--force-conflicts", "-f", url) for url in urls),
        done_when=tuple(Wait(f"crd/{c}", None, "condition=Established") for c in crds),
        timeout_s=config.timeouts.crds,
        diagnostics=(Diagnostic("crds.txt", kubectl("get", "crd", "-o", "wide")),),
    )


def _kubeblocks_diagnostics(kb_ns: str) -> tuple[Diagnostic, ...]:
    return (
        Diagnostic("kb-system-pods.txt", kubectl("-n", kb_ns, "get", "pods", "-o", "wide")),
        Diagnostic("kb-system-events.txt", kubectl("-n", kb_ns, "get", "events", "--sort-by=.lastTimestamp")),
        *(
            Diagnostic(f"{d}.log", kubectl("-n", kb_ns, "logs", f"deploy/{d}", "--all-containers", "--tail=2000"))
            for d in KUBEBLOCKS_DEPLOYMENTS
        ),
        Diagnostic("helm-releases.txt", helm("list", "-A")),
        Diagnostic("nodes.txt", kubectl("describe", "nodes")),
    )


def _addon_step(config: Config, d: DatabaseConfig) -> Step:
    kb_ns = config.kubeblocks_namespace
    name = d.db.addon
    return Step(
        id=f"addon:{d.key}",
        title=f"Install addon {name} {d.chart_version}",
        kind=StepKind.ADDON,
        database=d.key,
        needs=("kubeblocks",),
        skip_when=(
            Probe(
                helm("status", d.db.addon_release, "-n", kb_ns, "-o", "json"),
                contains='"status":"deployed"',
                installed_version=InstalledVersion(
                    key=f"{d.key}Addon",
                    subject=f"the {name} addon",
                    pinned=d.chart_version,
                    json_path=("chart", "metadata", "version"),
                    any_version=config.reuse_installed == REUSE_ANY,
                ),
            ),
        ),
        commands=(
            helm(
                "upgrade",
                "--install",
                d.db.addon_release,
                name,
                "--repo",
                config.helm_repo,
                "--version",
                d.chart_version,
                "-n",
                kb_ns,
                f"--timeout={config.timeouts.addon}s",
            ),
        ),
        # Two pull requests' first previews install the shared addon releases at the same moment.
        retry_while=HELM_RACES,
        done_when=(
            Wait(f"clusterdefinition.apps.kubeblocks.io/{name}", None, "jsonpath={.status.phase}=Available", True),
            Wait(f"componentversion.apps.kubeblocks.io/{name}", None, "jsonpath={.status.phase}=Available", True),
        ),
        timeout_s=config.timeouts.addon,
        diagnostics=(
            Diagnostic("addon.txt", kubectl("get", "addons.extensions.kubeblocks.io", name, "-o", "yaml")),
            Diagnostic("definitions.txt", kubectl("get", "clusterdefinition,componentdefinition,componentversion")),
            Diagnostic("helm-status.txt", helm("status", d.db.addon_release, "-n", kb_ns)),
            *_kubeblocks_diagnostics(kb_ns),
        ),
    )


def _cluster_step(
    config: Config, d: DatabaseConfig, storage_class: str | None = None, needs: tuple[str, ...] = ()
) -> Step:
    """`storage_class`: the StorageClass its volumes go on (the backup stage's snapshot-capable one), once `needs`
    (the step that provides or checks it) have passed."""
    ns = config.namespace
    kb_ns = config.kubeblocks_namespace
    selector = f"app.kubernetes.io/instance={d.release}"
    overrides = {"storageClassName": storage_class} if storage_class else None
    return Step(
        id=f"cluster:{d.key}",
        title=f"Deploy {d.db.title} ({d.release}) and wait until Running",
        kind=StepKind.CLUSTER,
        database=d.key,
        needs=(f"addon:{d.key}", *needs),
        commands=(
            Command(
                (
                    "helm",
                    "upgrade",
                    "--install",
                    d.release,
                    d.db.cluster_chart,
                    "--repo",
                    config.helm_repo,
                    "--version",
                    d.chart_version,
                    "-n",
                    ns,
                    "--create-namespace",
                    f"--timeout={config.timeouts.cluster}s",
                    "-f",
                    "-",
                ),
                stdin=d.values_yaml(overrides),
            ),
        ),
        # Only one run deploys a namespace at a time; another still finishing its install is waited out.
        retry_while=HELM_RACES,
        done_when=(Wait(f"clusters.apps.kubeblocks.io/{d.release}", ns, "jsonpath={.status.phase}=Running", True),),
        timeout_s=config.timeouts.cluster,
        watch=Watch(cluster=d.release, namespace=ns, pod_selector=selector),
        images=cluster_images(config, d),
        diagnostics=(
            Diagnostic(
                "cluster.yaml", kubectl("-n", ns, "get", "clusters.apps.kubeblocks.io", d.release, "-o", "yaml")
            ),
            Diagnostic("cluster-describe.txt", kubectl("-n", ns, "describe", "clusters.apps.kubeblocks.io", d.release)),
            Diagnostic("components.txt", kubectl("-n", ns, "describe", "cmp", "-l", selector)),
            Diagnostic("instancesets.txt", kubectl("-n", ns, "describe", "its", "-l", selector)),
            Diagnostic("pods.txt", kubectl("-n", ns, "describe", "pods", "-l", selector)),
            Diagnostic("pvcs.txt", kubectl("-n", ns, "get", "pvc", "-l", selector, "-o", "wide")),
            pod_logs_diagnostic("logs.txt", ns, selector, previous=False),
            pod_logs_diagnostic("logs-previous.txt", ns, selector, previous=True),
            Diagnostic("events.txt", kubectl("-n", ns, "get", "events", "--sort-by=.lastTimestamp")),
            Diagnostic("kb-system-events.txt", kubectl("-n", kb_ns, "get", "events", "--sort-by=.lastTimestamp")),
            Diagnostic(
                "kubeblocks.log", kubectl("-n", kb_ns, "logs", "deploy/kubeblocks", "--all-containers", "--tail=2000")
            ),
            Diagnostic(
                "kubeblocks-dataprotection.log",
                kubectl("-n", kb_ns, "logs", "deploy/kubeblocks-dataprotection", "--all-containers", "--tail=2000"),
            ),
            Diagnostic("addon.txt", kubectl("get", "addons.extensions.kubeblocks.io", d.db.addon, "-o", "yaml")),
            Diagnostic("helm-releases.txt", helm("list", "-A")),
            Diagnostic("nodes.txt", kubectl("describe", "nodes")),
            Diagnostic("storageclasses.txt", kubectl("get", "storageclass", "-o", "wide")),
        ),
    )


TEARDOWN_TIMEOUT_S = 300


def build_teardown_plan(config: Config, remove_kubeblocks: bool) -> Plan:
    """The reverse of `build_plan`: clusters first (their definitions cannot go while they exist), with the backup
    stage's restored clusters and Backups when it is on, then, with `remove_kubeblocks`, the addons, KubeBlocks and
    the KubeBlocks namespace. Every command tolerates what is
    already gone, so a teardown can be re-run after a partial one.

    The CRDs and snapshot support are never removed: dbstack cannot know it installed them (deploy skips what is
    there), and deleting a CRD deletes every object of its kind cluster-wide: every KubeBlocks Cluster in every
    namespace, every VolumeSnapshot. Remove them by hand once nothing else uses them."""
    ns = config.namespace
    steps: list[Step] = [
        Step(
            id=f"uninstall-cluster:{d.key}",
            title=f"Uninstall {d.db.title} ({d.release})",
            kind=StepKind.UNINSTALL_CLUSTER,
            database=d.key,
            needs=(),
            commands=(
                helm(
                    "uninstall", d.release, "-n", ns, "--ignore-not-found", "--wait", f"--timeout={TEARDOWN_TIMEOUT_S}s"
                ),
            ),
            done_when=(Wait(f"clusters.apps.kubeblocks.io/{d.release}", ns, "delete"),),
            timeout_s=TEARDOWN_TIMEOUT_S,
            diagnostics=(
                Diagnostic(
                    "cluster-describe.txt", kubectl("-n", ns, "describe", "clusters.apps.kubeblocks.io", d.release)
                ),
                Diagnostic("events.txt", kubectl("-n", ns, "get", "events", "--sort-by=.lastTimestamp")),
            ),
        )
        for d in config.enabled
    ]
    steps.extend(backup_teardown_steps(config, TEARDOWN_TIMEOUT_S))
    if remove_kubeblocks:
        steps.extend(_kubeblocks_teardown_steps(config, tuple(s.id for s in steps)))
    return Plan(
        namespace=ns,
        profile=config.profile,
        versions={"kubeblocks": config.kubeblocks_version, "snapshotter": config.snapshotter_version},
        steps=tuple(steps),
    )


def _kubeblocks_teardown_steps(config: Config, cluster_steps: tuple[str, ...]) -> list[Step]:
    kb_ns = config.kubeblocks_namespace
    addons = [
        Step(
            id=f"uninstall-addon:{d.key}",
            title=f"Uninstall addon {d.db.addon}",
            kind=StepKind.UNINSTALL_ADDON,
            database=d.key,
            needs=cluster_steps,
            commands=(
                helm(
                    "uninstall",
                    d.db.addon_release,
                    "-n",
                    kb_ns,
                    "--ignore-not-found",
                    "--wait",
                    f"--timeout={TEARDOWN_TIMEOUT_S}s",
                ),
            ),
            done_when=(),
            timeout_s=TEARDOWN_TIMEOUT_S,
        )
        for d in config.enabled
    ]
    addon_ids = tuple(s.id for s in addons)
    kb_diagnostics = _kubeblocks_diagnostics(kb_ns)
    return [
        *addons,
        Step(
            id="uninstall-kubeblocks",
            title="Uninstall KubeBlocks",
            kind=StepKind.UNINSTALL_KUBEBLOCKS,
            needs=addon_ids,
            commands=(
                helm(
                    "uninstall",
                    "kubeblocks",
                    "-n",
                    kb_ns,
                    "--ignore-not-found",
                    "--wait",
                    f"--timeout={TEARDOWN_TIMEOUT_S}s",
                ),
            ),
            done_when=tuple(Wait(f"deployment/{d}", kb_ns, "delete") for d in KUBEBLOCKS_DEPLOYMENTS),
            timeout_s=TEARDOWN_TIMEOUT_S,
            diagnostics=kb_diagnostics,
        ),
        Step(
            id="delete-namespace",
            title=f"Delete namespace {kb_ns}",
            kind=StepKind.DELETE_NAMESPACE,
            needs=("uninstall-kubeblocks",),
            commands=(kubectl("delete", "namespace", kb_ns, "--ignore-not-found"),),
            done_when=(Wait(f"namespace/{kb_ns}", None, "delete"),),
            timeout_s=TEARDOWN_TIMEOUT_S,
        ),
    ]

"""The local control plane is a real Kubernetes: rollouts, GC, CRDs, tokens and RBAC work."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import pytest
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from auth0_rotator_dev.devcluster import ControlPlane

Eventually = Callable[..., Any]


def _deployment(name: str, replicas: int = 2) -> client.V1Deployment:
    labels = {"app": name}
    return client.V1Deployment(
        metadata=client.V1ObjectMeta(name=name),
        spec=client.V1DeploymentSpec(
            replicas=replicas,
            selector=client.V1LabelSelector(match_labels=labels),
            template=client.V1PodTemplateSpec(
                metadata=client.V1ObjectMeta(labels=labels),
                spec=client.V1PodSpec(
                    containers=[client.V1Container(name="app", image="registry.invalid/app:1")]
                ),
            ),
        ),
    )


def _rolled_out(apps: client.AppsV1Api, ns: str, name: str) -> client.V1Deployment | None:
    d = apps.read_namespaced_deployment(name, ns)
    s = d.status
    want = d.spec.replicas
    done = (
        (s.observed_generation or 0) >= (d.metadata.generation or 1)
        and s.updated_replicas == want
        and s.ready_replicas == want
        and s.available_replicas == want
        and (s.replicas or 0) == want
    )
    return d if done else None


def test_deployment_with_two_replicas_becomes_available(
    api: client.ApiClient, namespace: str, eventually: Eventually
) -> None:
    apps = client.AppsV1Api(api)
    apps.create_namespaced_deployment(namespace, _deployment("web"))

    d = eventually(lambda: _rolled_out(apps, namespace, "web"), what="2 available replicas")

    available = {c.type: c.status for c in d.status.conditions}["Available"]
    assert available == "True"
    pods = client.CoreV1Api(api).list_namespaced_pod(namespace, label_selector="app=web").items
    assert len(pods) == 2
    assert all(p.spec.node_name and p.spec.node_name.startswith("kwok-node-") for p in pods)


def test_pod_template_annotation_patch_rolls_out_a_new_replicaset(
    api: client.ApiClient, namespace: str, eventually: Eventually
) -> None:
    apps = client.AppsV1Api(api)
    apps.create_namespaced_deployment(namespace, _deployment("web"))
    eventually(lambda: _rolled_out(apps, namespace, "web"), what="first rollout")
    first_rs = {rs.metadata.name for rs in apps.list_namespaced_replica_set(namespace).items}

    patch = {"spec": {"template": {"metadata": {"annotations": {"example.dev/rev": "2"}}}}}
    apps.patch_namespaced_deployment("web", namespace, patch)

    eventually(lambda: _rolled_out(apps, namespace, "web"), what="second rollout")
    sets = apps.list_namespaced_replica_set(namespace).items
    new = [rs for rs in sets if rs.metadata.name not in first_rs]
    assert len(new) == 1
    assert new[0].spec.template.metadata.annotations["example.dev/rev"] == "2"
    assert new[0].status.ready_replicas == 2
    old = [rs for rs in sets if rs.metadata.name in first_rs]
    assert [rs.spec.replicas for rs in old] == [0]


def test_secret_with_owner_reference_is_garbage_collected(
    api: client.ApiClient, namespace: str, eventually: Eventually
) -> None:
    core = client.CoreV1Api(api)
    owner = core.create_namespaced_config_map(
        namespace, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="owner"))
    )
    ref = client.V1OwnerReference(
        api_version="v1", kind="ConfigMap", name="owner", uid=owner.metadata.uid
    )
    core.create_namespaced_secret(
        namespace,
        client.V1Secret(
            metadata=client.V1ObjectMeta(name="owned", owner_references=[ref]),
            string_data={"k": "v"},
        ),
    )
    core.create_namespaced_secret(
        namespace, client.V1Secret(metadata=client.V1ObjectMeta(name="bystander"))
    )

    core.delete_namespaced_config_map("owner", namespace)

    def owned_gone() -> bool:
        try:
            core.read_namespaced_secret("owned", namespace)
        except ApiException as exc:
            return bool(exc.status == 404)
        return False

    eventually(owned_gone, what="garbage collection of the owned Secret")
    assert core.read_namespaced_secret("bystander", namespace).metadata.name == "bystander"


CRD: dict[str, Any] = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "widgets.harness.test"},
    "spec": {
        "group": "harness.test",
        "scope": "Namespaced",
        "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
        "versions": [
            {
                "name": "v1",
                "served": True,
                "storage": True,
                "subresources": {"status": {}},
                "schema": {
                    "openAPIV3Schema": {
                        "type": "object",
                        "properties": {
                            "spec": {
                                "type": "object",
                                "properties": {"size": {"type": "integer"}},
                            },
                            "status": {
                                "type": "object",
                                "properties": {"phase": {"type": "string"}},
                            },
                        },
                    }
                },
            }
        ],
    },
}


def test_crd_with_status_subresource_accepts_status_writes(
    api: client.ApiClient, namespace: str, eventually: Eventually
) -> None:
    ext = client.ApiextensionsV1Api(api)
    try:
        ext.create_custom_resource_definition(CRD)
    except ApiException as exc:
        if exc.status != 409:
            raise

    def established() -> bool:
        crd = ext.read_custom_resource_definition("widgets.harness.test")
        conds = crd.status.conditions or []
        return any(c.type == "Established" and c.status == "True" for c in conds)

    eventually(established, what="CRD Established")
    custom = client.CustomObjectsApi(api)
    args = ("harness.test", "v1", namespace, "widgets")

    def create() -> dict[str, Any] | None:
        body = {
            "apiVersion": "harness.test/v1",
            "kind": "Widget",
            "metadata": {"name": "w"},
            "spec": {"size": 3},
            "status": {"phase": "ignored-on-create"},
        }
        try:
            created = cast(dict[str, Any], custom.create_namespaced_custom_object(*args, body))
        except ApiException as exc:  # discovery of a fresh CRD can lag a moment
            if exc.status == 404:
                return None
            raise
        return created

    created = eventually(create, what="custom resource created")
    assert "status" not in created  # status is only writable through the subresource

    custom.patch_namespaced_custom_object_status(*args, "w", {"status": {"phase": "Ready"}})
    custom.patch_namespaced_custom_object(
        *args, "w", {"spec": {"size": 4}, "status": {"phase": "X"}}
    )

    got = custom.get_namespaced_custom_object(*args, "w")
    assert got["status"] == {"phase": "Ready"}
    assert got["spec"] == {"size": 4}


def test_service_account_token_authenticates_and_rbac_denies_what_was_not_granted(
    api: client.ApiClient, control_plane: ControlPlane, namespace: str, tmp_path: Path
) -> None:
    core = client.CoreV1Api(api)
    rbac = client.RbacAuthorizationV1Api(api)
    core.create_namespaced_service_account(
        namespace, client.V1ServiceAccount(metadata=client.V1ObjectMeta(name="reader"))
    )
    rbac.create_namespaced_role(
        namespace,
        client.V1Role(
            metadata=client.V1ObjectMeta(name="configmap-reader"),
            rules=[client.V1PolicyRule(api_groups=[""], resources=["configmaps"], verbs=["list"])],
        ),
    )
    rbac.create_namespaced_role_binding(
        namespace,
        client.V1RoleBinding(
            metadata=client.V1ObjectMeta(name="reader"),
            role_ref=client.V1RoleRef(
                api_group="rbac.authorization.k8s.io", kind="Role", name="configmap-reader"
            ),
            subjects=[
                client.RbacV1Subject(kind="ServiceAccount", name="reader", namespace=namespace)
            ],
        ),
    )

    token = control_plane.kubectl_run("create", "token", "reader", "-n", namespace).strip()
    kubeconfig = control_plane.token_kubeconfig(tmp_path / "reader.kubeconfig", token)

    who = subprocess.run(
        [
            str(control_plane.kubectl),
            "--kubeconfig",
            str(kubeconfig),
            "auth",
            "whoami",
            "-o",
            "json",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    user = json.loads(who.stdout)["status"]["userInfo"]["username"]
    assert user == f"system:serviceaccount:{namespace}:reader"

    as_reader = config.new_client_from_config(config_file=str(kubeconfig))
    try:
        reader_core = client.CoreV1Api(as_reader)
        assert reader_core.list_namespaced_config_map(namespace).items is not None
        with pytest.raises(ApiException) as denied:
            reader_core.list_namespaced_secret(namespace)
        assert denied.value.status == 403
        assert 'cannot list resource "secrets"' in json.loads(denied.value.body)["message"]
    finally:
        as_reader.close()


def test_server_reports_the_built_kubernetes_version(control_plane: ControlPlane) -> None:
    out = json.loads(control_plane.kubectl_run("version", "-o", "json"))
    server, kubectl = out["serverVersion"]["gitVersion"], out["clientVersion"]["gitVersion"]
    assert server == kubectl
    assert server.startswith("v1.") and server != "v0.0.0-master"

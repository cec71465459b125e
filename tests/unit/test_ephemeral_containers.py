"""Ephemeral containers' validation (apiserver/kinds/ephemeral.py): upstream's fields and messages."""

from __future__ import annotations

import copy
from typing import Any

from apiserver.kinds.ephemeral import (
    take_ephemeral_containers,
    validate_ephemeral_containers,
    validate_ephemeral_containers_update,
)


def pod(*ephemeral: dict[str, Any], annotations: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "metadata": {"name": "p", "resourceVersion": "7", "annotations": annotations or {}},
        "spec": {
            "containers": [{"name": "app", "image": "busybox"}],
            "initContainers": [{"name": "setup", "image": "busybox"}],
            "volumes": [{"name": "data", "emptyDir": {}}],
            "ephemeralContainers": list(ephemeral),
        },
        "status": {"phase": "Running"},
    }


def errors_of(p: dict[str, Any]) -> list[str]:
    return [c.error() for c in validate_ephemeral_containers(p["spec"], "spec")]


def test_a_debug_container_with_a_target_is_valid() -> None:
    debug = {"name": "dbg", "image": "busybox", "targetContainerName": "app", "stdin": True, "tty": True}
    debug |= {"resources": {}, "volumeMounts": [{"name": "data", "mountPath": "/data"}]}
    assert errors_of(pod(debug)) == []
    assert errors_of(pod({"name": "dbg2", "image": "busybox", "targetContainerName": "setup"})) == []


def test_names_targets_fields_and_mounts_are_checked_as_upstream() -> None:
    bad = {
        "name": "app",
        "image": "busybox",
        "targetContainerName": "nope",
        "ports": [{"containerPort": 80}],
        "resources": {"limits": {"cpu": "1"}},
        "readinessProbe": {"exec": {"command": ["true"]}},
        "volumeMounts": [{"name": "gone", "mountPath": "/x", "subPath": "a"}],
    }
    assert errors_of(pod(bad, {"name": "Bad_Name"})) == [
        'spec.ephemeralContainers[0].name: Duplicate value: "app"',
        'spec.ephemeralContainers[0].targetContainerName: Not found: "nope"',
        "spec.ephemeralContainers[0].ports: Forbidden: cannot be set for an Ephemeral Container",
        "spec.ephemeralContainers[0].resources: Forbidden: cannot be set for an Ephemeral Container",
        "spec.ephemeralContainers[0].readinessProbe: Forbidden: cannot be set for an Ephemeral Container",
        'spec.ephemeralContainers[0].volumeMounts[0].name: Not found: "gone"',
        "spec.ephemeralContainers[0].volumeMounts[0].subPath: Forbidden: cannot be set for an Ephemeral Container",
        'spec.ephemeralContainers[1].name: Invalid value: "Bad_Name": a lowercase RFC 1123 label must consist of '
        "lower case alphanumeric characters or '-', and must start and end with an alphanumeric character "
        "(e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')",
        "spec.ephemeralContainers[1].image: Required value",
    ]


def test_entries_may_be_added_but_not_changed_or_removed() -> None:
    one = {"name": "one", "image": "busybox"}
    old = pod(one)
    assert validate_ephemeral_containers_update(pod(one, {"name": "two", "image": "busybox"}), old) == []
    [removed] = validate_ephemeral_containers_update(pod({"name": "two", "image": "busybox"}), old)
    assert (
        removed.error()
        == 'spec.ephemeralContainers: Forbidden: existing ephemeral containers "one" may not be removed\n'
    )
    [changed] = validate_ephemeral_containers_update(pod({"name": "one", "image": "alpine"}), old)
    assert changed.error().startswith(
        'spec.ephemeralContainers: Forbidden: existing ephemeral containers "one" may not be changed\n'
    )
    assert '- image: "busybox"' in changed.message and '+ image: "alpine"' in changed.message
    static = pod(annotations={"kubernetes.io/config.mirror": "x"})
    [refused] = validate_ephemeral_containers_update(pod(one), static)
    assert refused.error() == ": Forbidden: static pods do not support ephemeral containers"


def test_only_the_ephemeral_containers_are_taken_from_what_the_client_sent() -> None:
    current = pod()
    sent = copy.deepcopy(current)
    sent["spec"]["containers"][0]["image"] = "evil"
    sent["metadata"]["labels"] = {"x": "y"}
    sent["status"] = {"phase": "Failed"}
    sent["spec"]["ephemeralContainers"] = [{"name": "dbg", "image": "busybox"}]
    new = take_ephemeral_containers(sent, current)
    expected = copy.deepcopy(current)
    expected["spec"]["ephemeralContainers"] = [{"name": "dbg", "image": "busybox"}]
    assert new == expected

"""Pure parts of the Deployment controller: fenceposts, hashing, revisions, proportional scaling, status."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from controller_manager.controllers import deployment_util as du
from controller_manager.controllers.replicaset_util import format_time

NOW = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)


def dep(replicas: int = 4, surge: Any = "25%", unavailable: Any = "25%", **extra: Any) -> dict[str, Any]:
    """A defaulted Deployment."""
    spec: dict[str, Any] = {
        "replicas": replicas,
        "selector": {"matchLabels": {"app": "a"}},
        "template": {"metadata": {"labels": {"app": "a"}}, "spec": {"containers": [{"name": "c", "image": "i:1"}]}},
        "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": surge, "maxUnavailable": unavailable}},
        "revisionHistoryLimit": 10,
        "progressDeadlineSeconds": 600,
    }
    spec.update(extra)
    return {"metadata": {"name": "d", "generation": 1, "annotations": {}}, "spec": spec, "status": {}}


def rs(name: str, size: int, *, created: int = 0, annotations: dict[str, str] | None = None, **status: Any) -> dict:
    """A ReplicaSet of `size` replicas created `created` seconds after a fixed instant; `status` as given."""
    return {
        "metadata": {
            "name": name,
            "uid": f"uid-{name}",
            "creationTimestamp": format_time(NOW + timedelta(seconds=created)),
            "annotations": dict(annotations or {}),
        },
        "spec": {"replicas": size, "template": {"metadata": {"labels": {"app": "a"}}}},
        "status": status,
    }


@pytest.mark.parametrize(
    ("surge", "unavailable", "desired", "want"),
    [
        ("25%", "25%", 4, (1, 1)),
        ("25%", "25%", 1, (1, 0)),  # surge rounds up, unavailable down
        ("25%", "25%", 10, (3, 2)),
        ("0%", "0%", 3, (0, 1)),  # both zero: unavailable becomes 1
        (2, 1, 10, (2, 1)),
        ("33%", "33%", 10, (4, 3)),
        (None, None, 5, (0, 1)),
    ],
)
def test_resolve_fenceposts(surge: Any, unavailable: Any, desired: int, want: tuple[int, int]) -> None:
    assert du.resolve_fenceposts(surge, unavailable, desired) == want


def test_max_surge_and_unavailable() -> None:
    assert (du.max_surge(dep(4)), du.max_unavailable(dep(4))) == (1, 1)
    assert du.max_unavailable(dep(2, surge=0, unavailable=5)) == 2  # at most spec.replicas
    assert du.max_unavailable(dep(0)) == 0
    recreate = dep(4, strategy={"type": "Recreate"})
    assert (du.max_surge(recreate), du.max_unavailable(recreate)) == (0, 0)
    with pytest.raises(ValueError):
        du.scaled_value("25", 4, True)


def test_hash_is_deterministic_and_safe() -> None:
    t = dep()["spec"]["template"]
    h = du.compute_hash(t)
    assert h == du.compute_hash(copy.deepcopy(t))
    reordered = {"spec": t["spec"], "metadata": {"labels": {"app": "a"}, "annotations": {}}}
    assert du.compute_hash(reordered) == h  # key order and empty members do not matter
    assert du.compute_hash(t, 1) != h and du.compute_hash(t, 1) == du.compute_hash(t, 1)
    other = copy.deepcopy(t)
    other["spec"]["containers"][0]["image"] = "i:2"
    assert du.compute_hash(other) != h
    assert set(h) <= set("bcdfghjklmnpqrstvwxz2456789") and 1 <= len(h) <= 10
    assert du.safe_encode_string("123") == "567"
    assert du._fnv32a(b"") == 0x811C9DC5 and du._fnv32a(b"a") == 0xE40C292C


def test_equal_ignore_hash() -> None:
    a = dep()["spec"]["template"]
    b = copy.deepcopy(a)
    b["metadata"]["labels"]["pod-template-hash"] = "abc"
    b["metadata"]["creationTimestamp"] = None
    b["spec"]["volumes"] = []
    assert du.equal_ignore_hash(a, b)
    b["spec"]["containers"][0]["image"] = "i:2"
    assert not du.equal_ignore_hash(a, b)


def test_find_new_and_old_replica_sets() -> None:
    d = dep()
    same_old = rs("x-old", 0, created=0)
    same_old["spec"]["template"] = copy.deepcopy(d["spec"]["template"])
    same_new = copy.deepcopy(same_old) | {"metadata": {**same_old["metadata"], "name": "x-new", "uid": "u2"}}
    same_new["metadata"]["creationTimestamp"] = format_time(NOW + timedelta(seconds=5))
    other = rs("y", 2, created=1)
    other["spec"]["template"]["spec"] = {"containers": [{"name": "c", "image": "i:0"}]}
    assert du.find_new_replica_set(d, [other, same_new, same_old])["metadata"]["name"] == "x-old"
    with_pods, all_old = du.find_old_replica_sets(d, [other, same_new, same_old])
    assert [r["metadata"]["name"] for r in with_pods] == ["y"]
    assert sorted(r["metadata"]["name"] for r in all_old) == ["x-new", "y"]


def test_new_rs_new_replicas() -> None:
    d = dep(4, surge=1, unavailable=1)
    old, new = rs("old", 4), rs("new", 0)
    assert du.new_rs_new_replicas(d, [old, new], new) == 1
    old["spec"]["replicas"], new["spec"]["replicas"] = 4, 1
    assert du.new_rs_new_replicas(d, [old, new], new) == 1  # at maxSurge already
    old["spec"]["replicas"] = 1
    assert du.new_rs_new_replicas(d, [old, new], new) == 4  # capped at spec.replicas
    assert du.new_rs_new_replicas(dep(3, strategy={"type": "Recreate"}), [new], new) == 3


def test_new_replica_set_annotations_on_create() -> None:
    d = dep(4)
    d["metadata"]["annotations"] = {
        "kubernetes.io/change-cause": "because",
        "kubectl.kubernetes.io/last-applied-configuration": "{}",
        du.REVISION_ANNOTATION: "7",
    }
    new = rs("n", 0)
    assert du.set_new_replica_set_annotations(d, new, "3", exists=False)
    assert new["metadata"]["annotations"] == {
        "kubernetes.io/change-cause": "because",
        du.REVISION_ANNOTATION: "3",
        du.DESIRED_REPLICAS_ANNOTATION: "4",
        du.MAX_REPLICAS_ANNOTATION: "5",
    }
    assert not du.set_new_replica_set_annotations(d, new, "3", exists=True)


def test_rollback_bumps_revision_and_keeps_history() -> None:
    d = dep()
    reused = rs("first", 0, annotations={du.REVISION_ANNOTATION: "1"})
    assert du.set_new_replica_set_annotations(d, reused, "3", exists=True)
    ann = reused["metadata"]["annotations"]
    assert (ann[du.REVISION_ANNOTATION], ann[du.REVISION_HISTORY_ANNOTATION]) == ("3", "1")
    assert du.set_new_replica_set_annotations(d, reused, "5", exists=True)
    assert (ann[du.REVISION_ANNOTATION], ann[du.REVISION_HISTORY_ANNOTATION]) == ("5", "1,3")
    assert not du.set_new_replica_set_annotations(d, reused, "4", exists=True)  # never lowered
    assert ann[du.REVISION_ANNOTATION] == "5"
    # The history is trimmed from the oldest end to stay within the limit.
    du.set_new_replica_set_annotations(d, reused, "6", exists=True, limit=4)
    assert ann[du.REVISION_HISTORY_ANNOTATION] == "3,5"


def test_max_revision_ignores_junk() -> None:
    rss = [rs("a", 0, annotations={du.REVISION_ANNOTATION: "2"}), rs("b", 0, annotations={du.REVISION_ANNOTATION: "x"})]
    assert du.max_revision([*rss, rs("c", 0)]) == 2
    assert du.max_revision([]) == 0
    ordered = du.sort_by_revision([rss[0], rs("c", 0, annotations={du.REVISION_ANNOTATION: "1"})])
    assert [r["metadata"]["name"] for r in ordered] == ["c", "a"]


def sizes(d: dict[str, Any], rss: list[dict[str, Any]]) -> dict[str, int]:
    """Proportional sizes by name."""
    return {r["metadata"]["name"]: n for r, n in du.proportional_sizes(d, rss)}


def test_proportional_scale_up_mid_rollout() -> None:
    ann = {du.MAX_REPLICAS_ANNOTATION: "5"}
    old, new = rs("old", 4, created=0, annotations=ann), rs("new", 1, created=10, annotations=ann)
    assert sizes(dep(8, surge=1, unavailable=0), [old, new]) == {"old": 7, "new": 2}


def test_proportional_scale_down_mid_rollout() -> None:
    ann = {du.MAX_REPLICAS_ANNOTATION: "13"}
    old, new = rs("old", 8, created=0, annotations=ann), rs("new", 5, created=10, annotations=ann)
    assert sizes(dep(5), [old, new]) == {"old": 4, "new": 3}
    assert sizes(dep(0), [old, new]) == {"old": 0, "new": 0}


def test_proportional_ties_and_leftovers() -> None:
    ann = {du.MAX_REPLICAS_ANNOTATION: "4"}
    a, b = rs("a", 2, created=0, annotations=ann), rs("b", 2, created=10, annotations=ann)
    # Growing 4 → 5 (surge 0): the one extra replica goes to the newer of two equal ReplicaSets.
    assert sizes(dep(5, surge=0, unavailable=1), [a, b]) == {"a": 2, "b": 3}
    # Shrinking 4 → 3: the older one loses it.
    assert sizes(dep(3, surge=0, unavailable=1), [a, b]) == {"a": 1, "b": 2}


def test_proportional_without_annotation_uses_status_replicas() -> None:
    d = dep(8, surge=0, unavailable=1)
    d["status"] = {"replicas": 4}
    assert sizes(d, [rs("old", 2), rs("new", 2, created=1)]) == {"old": 4, "new": 4}


def test_saturation_and_active_or_latest() -> None:
    d = dep(3)
    new = rs("n", 3, annotations={du.DESIRED_REPLICAS_ANNOTATION: "3"}, availableReplicas=3)
    assert du.is_saturated(d, new)
    new["status"]["availableReplicas"] = 2
    assert not du.is_saturated(d, new)
    assert not du.is_saturated(d, None)
    old1, old2 = rs("o1", 0, created=0), rs("o2", 0, created=5)
    assert du.find_active_or_latest(None, [old1, old2])["metadata"]["name"] == "o2"
    assert du.find_active_or_latest(rs("n", 0), [old1])["metadata"]["name"] == "n"
    assert du.find_active_or_latest(rs("n", 0), [rs("o", 2)])["metadata"]["name"] == "o"
    assert du.find_active_or_latest(rs("n", 1), [rs("o", 2)]) is None


def test_calculate_status_and_conditions() -> None:
    d = dep(4)
    new = rs("n", 3, replicas=3, readyReplicas=2, availableReplicas=2)
    old = rs("o", 1, replicas=1, readyReplicas=1, availableReplicas=1)
    st = du.calculate_status([old, new], new, d, NOW)
    avail = du.get_condition(st, "Available")
    assert {k: v for k, v in st.items() if k != "conditions"} == {
        "observedGeneration": 1,
        "replicas": 4,
        "updatedReplicas": 3,
        "readyReplicas": 3,
        "availableReplicas": 3,
        "unavailableReplicas": 1,
    }
    assert (avail["status"], avail["reason"]) == ("True", "MinimumReplicasAvailable")
    new["status"]["availableReplicas"] = 0
    old["status"]["availableReplicas"] = 0
    d["status"] = st
    later = du.calculate_status([old, new], new, d, NOW + timedelta(minutes=1))
    avail = du.get_condition(later, "Available")
    assert (avail["status"], avail["message"]) == ("False", "Deployment does not have minimum availability.")
    assert avail["lastTransitionTime"] == format_time(NOW + timedelta(minutes=1))


def test_set_condition_keeps_transition_time_on_same_status() -> None:
    st: dict[str, Any] = {}
    du.set_condition(st, du.new_condition("Progressing", "True", "A", "a", NOW))
    du.set_condition(st, du.new_condition("Progressing", "True", "A", "changed", NOW + timedelta(1)))
    assert st["conditions"][0]["message"] == "a"  # same status and reason: untouched
    du.set_condition(st, du.new_condition("Progressing", "True", "B", "b", NOW + timedelta(2)))
    (c,) = st["conditions"]
    assert (c["reason"], c["lastTransitionTime"], c["lastUpdateTime"]) == (
        "B",
        format_time(NOW),
        format_time(NOW + timedelta(2)),
    )


def test_complete_progressing_timed_out() -> None:
    d = dep(2, progressDeadlineSeconds=30)
    done = {"observedGeneration": 1, "replicas": 2, "updatedReplicas": 2, "availableReplicas": 2}
    assert du.deployment_complete(d, done)
    assert not du.deployment_complete(d, {**done, "observedGeneration": 0})
    d["status"] = {"replicas": 2, "updatedReplicas": 1, "readyReplicas": 1, "availableReplicas": 1}
    assert du.deployment_progressing(d, {"replicas": 2, "updatedReplicas": 2})
    assert du.deployment_progressing(d, {"replicas": 1, "updatedReplicas": 1})  # an old replica went away
    assert not du.deployment_progressing(d, dict(d["status"]))
    cond = du.new_condition("Progressing", "True", du.RS_UPDATED_REASON, "m", NOW)
    st = {"conditions": [cond]}
    assert not du.deployment_timed_out(d, st, NOW + timedelta(seconds=30))
    assert du.deployment_timed_out(d, st, NOW + timedelta(seconds=31))
    st = {"conditions": [du.new_condition("Progressing", "True", du.NEW_RS_AVAILABLE_REASON, "m", NOW)]}
    assert not du.deployment_timed_out(d, st, NOW + timedelta(hours=1))
    assert not du.deployment_timed_out(dep(2, progressDeadlineSeconds=2**31 - 1), st, NOW + timedelta(days=1))


def test_terminating_replicas_summed_only_when_all_report() -> None:
    d = dep(2)
    a, b = rs("a", 1, replicas=1, terminatingReplicas=1), rs("b", 1, replicas=1, terminatingReplicas=2)
    assert du.calculate_status([a, b, None], b, d, NOW)["terminatingReplicas"] == 3
    assert "terminatingReplicas" not in du.calculate_status([a, rs("c", 1)], a, d, NOW)

"""Each scheduler plugin on its own: filter verdicts, reasons worded as upstream, and scores."""

from __future__ import annotations

from test_scheduler_builders import node, node_info, pod

from scheduler.framework import SKIP, PreFilterResult, Unschedulable
from scheduler.plugins import (
    BalancedAllocation,
    InterPodAffinity,
    NodeAffinity,
    NodeName,
    NodePorts,
    NodeResourcesFit,
    NodeUnschedulable,
    PodTopologySpread,
    TaintToleration,
)
from scheduler.plugins.affinity import match_requirement
from scheduler.podinfo import PodInfo, pod_requests


def run_filter(plugin, p, ni):
    info = PodInfo.of(p)
    st = plugin.pre_filter(info, [ni])
    if st is SKIP:
        return None
    if isinstance(st, PreFilterResult):
        if ni.name not in st.node_names:
            return "absent"
        st = st.state
    return plugin.filter(info, st, ni)


# --- requests ------------------------------------------------------------------------------


def test_pod_requests_sum_containers_max_init_plus_overhead() -> None:
    spec = {
        "containers": [
            {"name": "a", "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}}},
            {"name": "b", "resources": {"limits": {"cpu": "200m"}}},
        ],
        "initContainers": [{"name": "i", "resources": {"requests": {"cpu": "1", "memory": "32Mi"}}}],
        "overhead": {"cpu": "10m"},
    }
    r = pod_requests(spec)
    assert (r.cpu, r.memory) == (1010, 64 * 2**20)


def test_pod_requests_sidecar_adds_to_main_containers() -> None:
    spec = {
        "containers": [{"name": "a", "resources": {"requests": {"cpu": "100m"}}}],
        "initContainers": [{"name": "s", "restartPolicy": "Always", "resources": {"requests": {"cpu": "50m"}}}],
    }
    assert pod_requests(spec).cpu == 150


def test_non_zero_requests_default_for_scoring() -> None:
    info = PodInfo.of(pod("p"))
    assert (info.requests.cpu, info.requests.memory) == (0, 0)
    assert (info.non_zero.cpu, info.non_zero.memory) == (100, 200 * 2**20)


# --- NodeResourcesFit -----------------------------------------------------------------------


def test_fit_insufficient_cpu_and_memory() -> None:
    ni = node_info(node("n1", cpu="1", memory="1Gi"), pod("a", cpu="600m", memory="512Mi", node_name="n1"))
    assert run_filter(NodeResourcesFit(), pod("p", cpu="400m"), ni) is None
    assert run_filter(NodeResourcesFit(), pod("p", cpu="500m"), ni) == ["Insufficient cpu"]
    assert run_filter(NodeResourcesFit(), pod("p", cpu="2", memory="1Gi"), ni) == [
        "Insufficient cpu",
        "Insufficient memory",
    ]


def test_fit_too_many_pods_and_zero_request_pod() -> None:
    ni = node_info(node("n1", pods="1"), pod("a", node_name="n1"))
    assert run_filter(NodeResourcesFit(), pod("p"), ni) == ["Too many pods"]


def test_fit_extended_resource() -> None:
    n = node("n1")
    n["status"]["allocatable"]["example.com/gpu"] = "1"
    p = pod("p")
    p["spec"]["containers"][0]["resources"] = {"requests": {"example.com/gpu": "2"}}
    assert run_filter(NodeResourcesFit(), p, node_info(n)) == ["Insufficient example.com/gpu"]


def test_least_allocated_score() -> None:
    fit = NodeResourcesFit()
    empty = node_info(node("a", cpu="4", memory="4Gi"))
    busy = node_info(node("b", cpu="4", memory="4Gi"), pod("x", cpu="2", memory="2Gi", node_name="b"))
    p = PodInfo.of(pod("p", cpu="1", memory="1Gi"))
    assert fit.score(p, None, empty) == 75
    assert fit.score(p, None, busy) == 25


def test_balanced_allocation_score() -> None:
    ba = BalancedAllocation()
    ni = node_info(node("a", cpu="4", memory="4Gi"))
    assert ba.score(PodInfo.of(pod("p", cpu="2", memory="2Gi")), None, ni) == 100
    assert ba.score(PodInfo.of(pod("p", cpu="2", memory="0")), None, ni) == 75
    assert ba.pre_score(PodInfo.of(pod("p")), [ni]) is SKIP


# --- node-level filters ---------------------------------------------------------------------


def test_node_name() -> None:
    ni = node_info(node("n1"))
    assert run_filter(NodeName(), pod("p"), ni) is None
    p = pod("p")
    p["spec"]["nodeName"] = "n2"
    assert run_filter(NodeName(), p, ni) == ("node(s) didn't match the requested node name",)


def test_node_unschedulable_unless_tolerated() -> None:
    ni = node_info(node("n1", unschedulable=True))
    assert run_filter(NodeUnschedulable(), pod("p"), ni) == ("node(s) were unschedulable",)
    tol = [{"key": "node.kubernetes.io/unschedulable", "operator": "Exists", "effect": "NoSchedule"}]
    assert run_filter(NodeUnschedulable(), pod("p", tolerations=tol), ni) is None


def test_taint_toleration_filter() -> None:
    ni = node_info(node("n1", taints=[{"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}]))
    assert run_filter(TaintToleration(), pod("p"), ni) == ("node(s) had untolerated taint {dedicated: gpu}",)
    eq = [{"key": "dedicated", "operator": "Equal", "value": "gpu", "effect": "NoSchedule"}]
    assert run_filter(TaintToleration(), pod("p", tolerations=eq), ni) is None
    wrong = [{"key": "dedicated", "value": "cpu"}]
    assert run_filter(TaintToleration(), pod("p", tolerations=wrong), ni) is not None
    assert run_filter(TaintToleration(), pod("p", tolerations=[{"operator": "Exists"}]), ni) is None


def test_taint_prefer_no_schedule_is_not_a_filter_but_a_score() -> None:
    tt = TaintToleration()
    soft = node_info(node("a", taints=[{"key": "k", "value": "v", "effect": "PreferNoSchedule"}]))
    clean = node_info(node("b"))
    p = PodInfo.of(pod("p"))
    assert tt.filter(p, None, soft) is None
    st = tt.pre_score(p, [soft, clean])
    scores = [tt.score(p, st, soft), tt.score(p, st, clean)]
    tt.normalize(scores)
    assert scores == [0, 100]


def test_not_ready_node_gets_not_ready_taint() -> None:
    ni = node_info(node("n1", ready="False"))
    assert run_filter(TaintToleration(), pod("p"), ni) == (
        "node(s) had untolerated taint {node.kubernetes.io/not-ready: }",
    )
    unknown = node_info(node("n2", ready="Unknown"))
    assert run_filter(TaintToleration(), pod("p"), unknown) == (
        "node(s) had untolerated taint {node.kubernetes.io/unreachable: }",
    )
    tol = [{"key": "node.kubernetes.io/not-ready", "operator": "Exists"}]
    assert run_filter(TaintToleration(), pod("p", tolerations=tol), ni) is None


def test_node_ports() -> None:
    web = pod("a", node_name="n1")
    web["spec"]["containers"][0]["ports"] = [{"containerPort": 80, "hostPort": 8080}]
    ni = node_info(node("n1"), web)
    same = pod("p")
    same["spec"]["containers"][0]["ports"] = [{"containerPort": 80, "hostPort": 8080}]
    assert run_filter(NodePorts(), same, ni) == ("node(s) didn't have free ports for the requested pod ports",)
    udp = pod("q")
    udp["spec"]["containers"][0]["ports"] = [{"containerPort": 80, "hostPort": 8080, "protocol": "UDP"}]
    assert run_filter(NodePorts(), udp, ni) is None
    assert run_filter(NodePorts(), pod("r"), ni) is None


# --- NodeAffinity -------------------------------------------------------------------------


def test_node_selector() -> None:
    ni = node_info(node("n1", labels={"disk": "ssd"}))
    assert run_filter(NodeAffinity(), pod("p", nodeSelector={"disk": "ssd"}), ni) is None
    assert run_filter(NodeAffinity(), pod("p", nodeSelector={"disk": "hdd"}), ni) == (
        "node(s) didn't match Pod's node affinity/selector",
    )


def test_match_requirement_operators() -> None:
    labels = {"zone": "a", "cores": "8"}
    assert match_requirement({"key": "zone", "operator": "In", "values": ["a", "b"]}, labels)
    assert not match_requirement({"key": "zone", "operator": "NotIn", "values": ["a"]}, labels)
    assert match_requirement({"key": "gpu", "operator": "NotIn", "values": ["x"]}, labels)
    assert match_requirement({"key": "zone", "operator": "Exists"}, labels)
    assert match_requirement({"key": "gpu", "operator": "DoesNotExist"}, labels)
    assert match_requirement({"key": "cores", "operator": "Gt", "values": ["4"]}, labels)
    assert not match_requirement({"key": "cores", "operator": "Lt", "values": ["4"]}, labels)
    assert not match_requirement({"key": "zone", "operator": "Gt", "values": ["4"]}, labels)


def _required(*terms):
    return {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": list(terms)}}}


def test_required_node_affinity_terms_are_ored() -> None:
    ni = node_info(node("n1", labels={"zone": "b"}))
    t_a = {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a"]}]}
    t_b = {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["b"]}]}
    assert run_filter(NodeAffinity(), pod("p", affinity=_required(t_a, t_b)), ni) is None
    assert run_filter(NodeAffinity(), pod("p", affinity=_required(t_a)), ni) is not None
    assert run_filter(NodeAffinity(), pod("p", affinity=_required({})), ni) is not None


def test_match_fields_metadata_name_restricts_nodes() -> None:
    term = {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n1"]}]}
    p = pod("p", affinity=_required(term))
    assert run_filter(NodeAffinity(), p, node_info(node("n1"))) is None
    assert run_filter(NodeAffinity(), p, node_info(node("n2"))) == "absent"
    conflict = {
        "matchFields": [
            {"key": "metadata.name", "operator": "In", "values": ["n1"]},
            {"key": "metadata.name", "operator": "In", "values": ["n2"]},
        ]
    }
    try:
        NodeAffinity().pre_filter(PodInfo.of(pod("p", affinity=_required(conflict))), [])
    except Unschedulable as e:
        assert str(e) == "pod affinity terms conflict"
    else:
        raise AssertionError("expected Unschedulable")


def test_preferred_node_affinity_score() -> None:
    na = NodeAffinity()
    pref = [
        {"weight": 10, "preference": {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a"]}]}},
        {"weight": 30, "preference": {"matchExpressions": [{"key": "disk", "operator": "Exists"}]}},
    ]
    p = PodInfo.of(pod("p", affinity={"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": pref}}))
    nodes = [
        node_info(node("a", labels={"zone": "a"})),
        node_info(node("b", labels={"zone": "a", "disk": "ssd"})),
        node_info(node("c")),
    ]
    scores = [na.score(p, None, n) for n in nodes]
    assert scores == [10, 40, 0]
    na.normalize(scores)
    assert scores == [25, 100, 0]
    assert na.pre_score(PodInfo.of(pod("q")), nodes) is SKIP


# --- InterPodAffinity ----------------------------------------------------------------------


def _anti(labels, key="kubernetes.io/hostname"):
    term = {"labelSelector": {"matchLabels": labels}, "topologyKey": key}
    return {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [term]}}


def _aff(labels, key="kubernetes.io/hostname"):
    term = {"labelSelector": {"matchLabels": labels}, "topologyKey": key}
    return {"podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [term]}}


def _run_all(plugin, p, nodes):
    info = PodInfo.of(p)
    st = plugin.pre_filter(info, nodes)
    if st is SKIP:
        return {n.name: None for n in nodes}
    return {n.name: plugin.filter(info, st, n) for n in nodes}


def test_pod_anti_affinity_hostname() -> None:
    web = pod("web-1", labels={"app": "web"}, node_name="n1")
    nodes = [node_info(node("n1"), web), node_info(node("n2"))]
    got = _run_all(InterPodAffinity(), pod("web-2", labels={"app": "web"}, affinity=_anti({"app": "web"})), nodes)
    assert got == {"n1": ("node(s) didn't match pod anti-affinity rules",), "n2": None}


def test_anti_affinity_ignores_other_namespaces() -> None:
    web = pod("web-1", labels={"app": "web"}, node_name="n1", namespace="other")
    nodes = [node_info(node("n1"), web)]
    assert _run_all(InterPodAffinity(), pod("p", affinity=_anti({"app": "web"})), nodes) == {"n1": None}


def test_existing_pods_anti_affinity() -> None:
    loner = pod("loner", node_name="n1", affinity=_anti({"app": "web"}))
    nodes = [node_info(node("n1"), loner), node_info(node("n2"))]
    got = _run_all(InterPodAffinity(), pod("web", labels={"app": "web"}), nodes)
    assert got == {"n1": ("node(s) didn't satisfy existing pods anti-affinity rules",), "n2": None}


def test_pod_affinity_zone_and_first_pod() -> None:
    db = pod("db", labels={"app": "db"}, node_name="n1")
    nodes = [
        node_info(node("n1", labels={"zone": "a"}), db),
        node_info(node("n2", labels={"zone": "a"})),
        node_info(node("n3", labels={"zone": "b"})),
    ]
    got = _run_all(InterPodAffinity(), pod("app", affinity=_aff({"app": "db"}, "zone")), nodes)
    assert got == {"n1": None, "n2": None, "n3": ("node(s) didn't match pod affinity rules",)}
    # No pod matches yet, but the pod matches its own term: it may go anywhere with the topology key.
    empty = [node_info(node("m1", labels={"zone": "a"})), node_info(node("m2"))]
    first = pod("c-1", labels={"app": "cache"}, affinity=_aff({"app": "cache"}, "zone"))
    assert _run_all(InterPodAffinity(), first, empty) == {
        "m1": None,
        "m2": ("node(s) didn't match pod affinity rules",),
    }


def test_interpod_skips_plain_pods() -> None:
    assert InterPodAffinity().pre_filter(PodInfo.of(pod("p")), [node_info(node("n1"))]) is SKIP


def _preferred(kind, labels, weight, key="kubernetes.io/hostname"):
    term = {"labelSelector": {"matchLabels": labels}, "topologyKey": key}
    return {kind: {"preferredDuringSchedulingIgnoredDuringExecution": [{"weight": weight, "podAffinityTerm": term}]}}


def _scores(plugin, p, nodes):
    info = PodInfo.of(p)
    st = plugin.pre_score(info, nodes)
    if st is SKIP:
        return None
    scores = [plugin.score(info, st, n) for n in nodes]
    plugin.normalize(scores)
    return scores


def test_interpod_preferred_anti_affinity_score() -> None:
    web = pod("web-1", labels={"app": "web"}, node_name="a")
    nodes = [node_info(node("a"), web), node_info(node("b")), node_info(node("c"))]
    p = pod("web-2", labels={"app": "web"}, affinity=_preferred("podAntiAffinity", {"app": "web"}, 50))
    assert _scores(InterPodAffinity(), p, nodes) == [0, 100, 100]
    q = pod("near", affinity=_preferred("podAffinity", {"app": "web"}, 10))
    assert _scores(InterPodAffinity(), q, nodes) == [100, 0, 0]


def test_interpod_existing_pods_terms_score_the_incoming_pod() -> None:
    cache_pod = pod("cache", node_name="b", affinity=_aff({"app": "web"}))
    nodes = [node_info(node("a")), node_info(node("b"), cache_pod)]
    assert _scores(InterPodAffinity(), pod("web", labels={"app": "web"}), nodes) == [0, 100]
    assert _scores(InterPodAffinity(), pod("other"), nodes) is None


def _spread(max_skew=1, key="zone", **extra):
    return [
        {
            "maxSkew": max_skew,
            "topologyKey": key,
            "whenUnsatisfiable": "DoNotSchedule",
            "labelSelector": {"matchLabels": {"app": "web"}},
            **extra,
        }
    ]


def test_topology_spread_max_skew() -> None:
    web = [pod(f"w{i}", labels={"app": "web"}, node_name="a") for i in range(2)]
    nodes = [
        node_info(node("a", labels={"zone": "z1"}), *web),
        node_info(node("b", labels={"zone": "z2"}), pod("w2", labels={"app": "web"}, node_name="b")),
        node_info(node("c")),
    ]
    p = pod("w3", labels={"app": "web"}, topologySpreadConstraints=_spread())
    assert _run_all(PodTopologySpread(), p, nodes) == {
        "a": ("node(s) didn't match pod topology spread constraints",),
        "b": None,
        "c": ("node(s) didn't match pod topology spread constraints (missing required label)",),
    }
    loose = pod("w3", labels={"app": "web"}, topologySpreadConstraints=_spread(max_skew=2))
    assert _run_all(PodTopologySpread(), loose, nodes)["a"] is None


def test_topology_spread_min_domains_and_node_affinity_policy() -> None:
    nodes = [
        node_info(node("a", labels={"zone": "z1"}), pod("w0", labels={"app": "web"}, node_name="a")),
        node_info(node("b", labels={"zone": "z2", "pool": "other"})),
    ]
    # z2 is not eligible for a pod selecting zone=z1, so z1 is the only domain and its minimum is itself.
    p = pod("w1", labels={"app": "web"}, nodeSelector={"zone": "z1"}, topologySpreadConstraints=_spread())
    assert _run_all(PodTopologySpread(), p, nodes)["a"] is None
    needs_two = pod(
        "w1", labels={"app": "web"}, nodeSelector={"zone": "z1"}, topologySpreadConstraints=_spread(minDomains=2)
    )
    assert _run_all(PodTopologySpread(), needs_two, nodes)["a"] == (
        "node(s) didn't match pod topology spread constraints",
    )
    soft = _spread()
    soft[0]["whenUnsatisfiable"] = "ScheduleAnyway"
    assert PodTopologySpread().pre_filter(PodInfo.of(pod("x", topologySpreadConstraints=soft)), nodes) is SKIP


def test_resource_scores_in_one_pass_match_per_node() -> None:
    nodes = [
        node_info(node("a", cpu="4", memory="8Gi"), pod("x", cpu="3", memory="1Gi", node_name="a")),
        node_info(node("b", cpu="1", memory="1Gi"), pod("y", cpu="2", memory="2Gi", node_name="b")),
        node_info(node("c", cpu="0", memory="4Gi")),
        node_info(node("d", cpu="2", memory="0")),
    ]
    for p in (PodInfo.of(pod("p", cpu="500m", memory="1Gi")), PodInfo.of(pod("q"))):
        for plugin in (NodeResourcesFit(), BalancedAllocation()):
            assert plugin.score_nodes(p, None, nodes) == [plugin.score(p, None, n) for n in nodes]

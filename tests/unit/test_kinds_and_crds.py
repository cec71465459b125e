"""The kind registry and the pure parts of CRDs: definitions, version order, JSONPath, CRD validation,
a CRD's printer, selectable fields and scale paths."""

from __future__ import annotations

import copy
import re
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest

from apimachinery.resources import RESOURCES, ResourceInfo, by_plural, version_priority
from apimachinery.selectors import SelectorError, parse_field_selector
from apiserver.crd.jsonpath import JSONPath, JSONPathError
from apiserver.crd.resource import definition_from_crd
from apiserver.crd.strategy import CLEANUP_FINALIZER, CustomResourceDefinitionStrategy
from apiserver.kindregistry import KindDefinition, KindRegistry
from apiserver.registry import Registry
from apiserver.subresources import SUBRESOURCES

CRD_RES = by_plural("apiextensions.k8s.io", "customresourcedefinitions")


def crd(**spec: Any) -> dict[str, Any]:
    """A valid CronTab CRD, with `spec` fields replaced."""
    version = {
        "name": "v1",
        "served": True,
        "storage": True,
        "schema": {"openAPIV3Schema": {"type": "object"}},
        "subresources": {
            "status": {},
            "scale": {"specReplicasPath": ".spec.size", "statusReplicasPath": ".status.size"},
        },
        "additionalPrinterColumns": [
            {"name": "Size", "type": "integer", "jsonPath": ".spec.size"},
            {"name": "Ready", "type": "string", "jsonPath": '.status.conditions[?(@.type=="Ready")].status'},
            {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
        ],
        "selectableFields": [{"jsonPath": ".spec.color"}],
    }
    base = {
        "group": "stable.example.com",
        "scope": "Namespaced",
        "names": {"plural": "crontabs", "kind": "CronTab", "shortNames": ["ct"]},
        "versions": [version],
    }
    return {"metadata": {"name": "crontabs.stable.example.com"}, "spec": {**base, **spec}}


def test_every_builtin_kind_has_one_definition_with_its_subresources_served() -> None:
    kinds = KindRegistry()
    for r in RESOURCES:
        d = kinds.of(r)
        assert d.resource is r and set(d.subresources) == set(r.subresources)
        assert kinds.resolve(r.group, r.version, r.plural) == r
    assert {"eviction", "attach"} <= set(by_plural("", "pods").subresources)  # type: ignore[union-attr]
    assert kinds.resolve("autoscaling", "v1", "horizontalpodautoscalers") is not None


def test_a_definition_naming_a_subresource_nothing_serves_is_refused() -> None:
    pods = by_plural("", "pods")
    assert pods is not None
    d = KindRegistry().of(pods)
    with pytest.raises(ValueError, match="resize"):
        replace(d, resource=replace(pods, subresources=(*pods.subresources, "resize")))
    with pytest.raises(ValueError, match="no conversion"):
        replace(d, resource=replace(pods, also_served=("v2",)))


def test_kinds_are_added_and_removed_at_run_time() -> None:
    kinds = KindRegistry()
    d = definition_from_crd(crd())
    kinds.add(d)
    assert kinds.resolve("stable.example.com", "v1", "crontabs") == d.resource
    assert "stable.example.com/v1" in kinds.group_versions()
    assert kinds.remove("stable.example.com", "crontabs") is d
    assert kinds.resolve("stable.example.com", "v1", "crontabs") is None
    assert "stable.example.com/v1" not in kinds.group_versions()


def test_custom_resources_have_group_qualified_keys_and_builtins_keep_theirs() -> None:
    res = definition_from_crd(crd()).resource
    assert Registry.key(res, "ns", "a") == "/registry/stable.example.com/crontabs/ns/a"
    assert Registry.prefix(res, None) == "/registry/stable.example.com/crontabs/"
    deployments = by_plural("apps", "deployments")
    assert deployments is not None and Registry.key(deployments, "ns", "a") == "/registry/deployments/ns/a"


@pytest.mark.parametrize(
    ("versions", "ordered"),
    [
        (
            ["v1beta1", "v1", "v2alpha1", "v2", "foo", "v1alpha1", "v10"],
            ["v10", "v2", "v1", "v1beta1", "v2alpha1", "v1alpha1", "foo"],
        ),
        (["v1beta1", "v1beta2"], ["v1beta2", "v1beta1"]),
    ],
)
def test_version_priority(versions: list[str], ordered: list[str]) -> None:
    assert sorted(versions, key=version_priority) == ordered


@pytest.mark.parametrize(
    ("path", "found"),
    [
        (".spec.size", [3]),
        ("{.spec.items[*].name}", ["a", "b"]),
        (".spec.items[1].name", ["b"]),
        (".spec.items[-1].name", ["b"]),
        ('.status.conditions[?(@.type=="Ready")].status', ["True"]),
        ('.status.conditions[?(@.type!="Ready")].type', ["Synced"]),
        (".metadata.labels['app.kubernetes.io/name']", ["x"]),
        (".spec.missing", []),
        (".spec.items[5]", []),
    ],
)
def test_jsonpath(path: str, found: list[Any]) -> None:
    obj = {
        "metadata": {"labels": {"app.kubernetes.io/name": "x"}},
        "spec": {"size": 3, "items": [{"name": "a"}, {"name": "b"}]},
        "status": {"conditions": [{"type": "Ready", "status": "True"}, {"type": "Synced", "status": "False"}]},
    }
    assert JSONPath(path).find(obj) == found


def test_jsonpath_outside_the_subset() -> None:
    with pytest.raises(JSONPathError):
        JSONPath(".spec..deep")
    assert JSONPath(".spec.a").simple and not JSONPath(".spec.a[0]").simple


def _causes(obj: dict[str, Any]) -> list[str]:
    assert CRD_RES is not None
    strategy = CustomResourceDefinitionStrategy(CRD_RES)
    strategy.default(obj)
    return [f"{c.field}: {c.message}" for c in strategy.validate_semantics(obj)]


def test_crd_defaults_and_a_valid_crd() -> None:
    obj = crd()
    assert _causes(obj) == []
    assert obj["spec"]["names"]["singular"] == "crontab" and obj["spec"]["names"]["listKind"] == "CronTabList"
    assert obj["spec"]["conversion"] == {"strategy": "None"}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"group": "example"}, 'spec.group: Invalid value: "example": should be a domain with at least one dot'),
        (
            {"scope": "Everywhere"},
            'spec.scope: Unsupported value: "Everywhere": supported values: "Cluster", "Namespaced"',
        ),
        ({"names": {"plural": "crontabs", "kind": ""}}, "spec.names.kind: Required value"),
        ({"versions": []}, "spec.versions: Invalid value: "),
        ({"conversion": {"strategy": "Magic"}}, 'spec.conversion.strategy: Unsupported value: "Magic"'),
    ],
)
def test_invalid_crds(change: dict[str, Any], message: str) -> None:
    assert any(c.startswith(message) for c in _causes(crd(**change))), _causes(crd(**change))


def test_crd_needs_schemas_and_one_storage_version() -> None:
    obj = crd()
    second = copy.deepcopy(obj["spec"]["versions"][0])
    second["name"] = "v1"
    del second["schema"]
    obj["spec"]["versions"].append(second)
    causes = _causes(obj)
    assert 'spec.versions[1].name: Duplicate value: "v1"' in causes
    assert "spec.versions[1].schema.openAPIV3Schema: Required value: schemas are required" in causes
    assert any("must have exactly one version marked as storage version" in c for c in causes)


def test_deleting_a_crd_keeps_it_until_its_objects_are_gone() -> None:
    assert CRD_RES is not None
    strategy = CustomResourceDefinitionStrategy(CRD_RES)
    obj = crd()
    assert strategy.deletion_pending(obj)  # the first delete marks it instead of removing it
    obj["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    strategy.mark_deleting(obj)
    assert obj["metadata"]["finalizers"] == [CLEANUP_FINALIZER]
    assert obj["status"]["conditions"][0]["type"] == "Terminating"
    assert strategy.deletion_pending(obj)
    obj["metadata"]["finalizers"] = []
    assert not strategy.deletion_pending(obj)


def test_crd_definition_prints_selects_and_scales() -> None:
    d: KindDefinition = definition_from_crd(crd())
    assert d.resource.custom and d.resource.short_names == ("ct",) and d.resource.has_status
    assert d.resource.subresources == ("status", "scale")
    now = datetime(2026, 1, 1, 1, 0, tzinfo=UTC)
    obj = {
        "metadata": {"name": "a", "creationTimestamp": "2026-01-01T00:00:00Z"},
        "spec": {"size": 2, "color": "red"},
        "status": {"size": 1, "conditions": [{"type": "Ready", "status": "True"}]},
    }
    assert [c.name for c in d.printer.columns] == ["Name", "Size", "Ready", "Age"]
    assert d.printer.row(obj, now)["cells"] == ["a", 2, "True", "60m"]
    assert d.fields.values(obj)["spec.color"] == "red"
    assert d.fields.convert(parse_field_selector("spec.color=red")).requirements[0].field == "spec.color"
    with pytest.raises(SelectorError, match=re.escape("field label not supported: spec.size")):
        d.fields.convert(parse_field_selector("spec.size=2"))
    scale = d.subresources["scale"].paths.to_scale(d.resource, obj)  # type: ignore[attr-defined]
    assert scale["spec"] == {"replicas": 2} and scale["status"] == {"replicas": 1, "selector": ""}
    assert SUBRESOURCES["scale"].paths.to_scale(d.resource, obj)["spec"] == {"replicas": 0}  # type: ignore[attr-defined]


def test_crd_without_columns_prints_name_and_age() -> None:
    version = crd()["spec"]["versions"][0]
    del version["additionalPrinterColumns"]
    d = definition_from_crd(crd(versions=[version]))
    assert [c.name for c in d.printer.columns] == ["Name", "Age"]
    no_fields = d.fields
    with pytest.raises(SelectorError, match=re.escape('"spec.color" is not a known field selector')):
        definition_from_crd(crd(versions=[{**version, "selectableFields": []}])).fields.convert(
            parse_field_selector("spec.color=x")
        )
    assert no_fields.supported >= {"metadata.name", "metadata.namespace"}


def test_served_versions_convert_by_apiversion() -> None:
    v1 = crd()["spec"]["versions"][0]
    d = definition_from_crd(crd(versions=[{**copy.deepcopy(v1), "name": "v1beta1", "storage": False}, v1]))
    assert d.resource.version == "v1" and d.resource.also_served == ("v1beta1",)
    assert [v.version for v in d.views()] == ["v1", "v1beta1"]
    assert ResourceInfo is type(d.views()[1])


class _SizeSchema:
    """A stand-in compiled schema: knows spec.size (an integer, default 1), prunes the rest."""

    def check_structural(self, path: str = "") -> list[Any]:
        return []

    def prune(self, obj: dict[str, Any]) -> dict[str, Any]:
        obj["spec"] = {k: v for k, v in (obj.get("spec") or {}).items() if k == "size"}
        return obj

    def default(self, obj: dict[str, Any]) -> None:
        obj["spec"].setdefault("size", 1)

    def validate(self, obj: dict[str, Any], old: dict[str, Any] | None = None) -> list[Any]:
        size = obj["spec"]["size"]
        errors: list[Any] = []
        if not isinstance(size, int):
            errors.append(("spec.size", "FieldValueTypeInvalid", f'Invalid value: "{size}": must be of type integer'))
        if old is not None and size < old["spec"]["size"]:
            errors.append(("spec.size", "FieldValueInvalid", "Invalid value: must not shrink"))
        return errors


def test_the_schema_seam_prunes_defaults_and_validates_custom_resources() -> None:
    d = definition_from_crd(crd(), lambda schema: _SizeSchema())
    obj = {"metadata": {"name": "a", "namespace": "n"}, "spec": {"junk": 1}}
    d.strategy.default(obj)
    assert obj["spec"] == {"size": 1}
    assert d.strategy.validate(obj) == []
    bad = {"metadata": {"name": "a", "namespace": "n"}, "spec": {"size": "big"}}
    assert [c.error() for c in d.strategy.validate(bad)] == ['spec.size: Invalid value: "big": must be of type integer']
    shrunk = {"metadata": {"name": "a", "namespace": "n"}, "spec": {"size": 0}}
    causes = d.strategy.validate_update(shrunk, {"spec": {"size": 1}})
    assert [c.error() for c in causes] == ["spec.size: Invalid value: must not shrink"]


def test_a_crd_whose_schema_is_not_structural_is_invalid() -> None:
    class NotStructural(_SizeSchema):
        def check_structural(self, path: str = "") -> list[Any]:
            why = "Required value: must not be empty for specified object fields"
            return [(f"{path}.properties[spec].type", "FieldValueRequired", why)]

    assert CRD_RES is not None
    strategy = CustomResourceDefinitionStrategy(CRD_RES, lambda schema: NotStructural())
    obj = crd()
    strategy.default(obj)
    causes = strategy.validate_semantics(obj)
    assert [c.field for c in causes] == ["spec.versions[0].schema.openAPIV3Schema.properties[spec].type"]
    assert causes[0].message.startswith("Required value")


def test_crd_paths_must_be_json_paths() -> None:
    version = crd()["spec"]["versions"][0]
    version["additionalPrinterColumns"][0]["jsonPath"] = ".spec..size"
    version["selectableFields"] = [{"jsonPath": ".spec.items[0]"}]
    version["subresources"]["scale"]["specReplicasPath"] = "spec.size"
    causes = _causes(crd(versions=[version]))
    assert (
        'spec.versions[0].additionalPrinterColumns[0].jsonPath: Invalid value: ".spec..size": must be a valid JSONPath'
        in causes
    )
    assert any(c.startswith("spec.versions[0].selectableFields[0].jsonPath: Invalid value") for c in causes)
    assert any(c.startswith("spec.versions[0].subresources.scale.specReplicasPath: Invalid value") for c in causes)


def test_each_crd_version_has_the_subresources_it_declares() -> None:
    storage = crd()["spec"]["versions"][0]
    storage = {**storage, "subresources": {}}  # v1 (storage): none
    beta = {**storage, "name": "v1beta1", "storage": False, "subresources": {"status": {}}}
    d = definition_from_crd(crd(versions=[beta, storage]))
    assert d.resource.subresources == () and not d.resource.has_status
    views = {r.version: (r.subresources, r.has_status) for r in d.views()}
    assert views == {"v1": ((), False), "v1beta1": (("status",), True)}
    assert set(d.subresources) == {"status"}
    kinds = KindRegistry()
    kinds.add(d)
    beta_view = kinds.resolve("stable.example.com", "v1beta1", "crontabs")
    assert beta_view is not None and beta_view.subresources == ("status",)
    with pytest.raises(ValueError, match="scale"):  # a version naming a subresource nothing serves
        replace(d, version_subresources={"v1beta1": ("status", "scale")})

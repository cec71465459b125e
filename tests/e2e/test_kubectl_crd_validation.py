"""The real kubectl shows upstream's messages for custom resources that break their CRD's schema or CEL rules."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.e2e.conftest import Kubectl
from tests.e2e.thirdparty_crd import crontab_crd, delete_crd, install_crd

GROUP = "invalid.thirdparty.example.com"  # its CronTabs have a CEL rule: at most 10 replicas
PLAIN_GROUP = "plain.thirdparty.example.com"  # its CronTabs have types only
TYPE_ERROR = 'spec.replicas: Invalid value: "string": spec.replicas in body must be of type integer: "string"'


@pytest.fixture(scope="module")
def validated_crds(http: httpx.Client) -> Iterator[None]:
    """This module's two CronTab CRDs (typed spec; with and without a CEL rule), installed; deleted after the module."""
    crds = [crontab_crd(GROUP), crontab_crd(PLAIN_GROUP, cel=False)]
    for crd in crds:
        install_crd(http, crd)
    yield
    for crd in crds:
        delete_crd(http, crd["metadata"]["name"])


def _crontab(replicas: str, group: str = GROUP) -> str:
    return (
        f"apiVersion: {group}/v1\nkind: CronTab\nmetadata:\n  name: x\n"
        f"spec:\n  cronSpec: '* * * * */5'\n  image: my-image\n  replicas: {replicas}\n"
    )


def test_kubectl_apply_reports_a_schema_type_error(kubectl: Kubectl, validated_crds: None, namespace: str) -> None:
    err = kubectl.fails("apply", "-n", namespace, "-f", "-", input=_crontab('"string"', PLAIN_GROUP))
    assert err.strip() == f'The CronTab "x" is invalid: {TYPE_ERROR}'
    assert kubectl.fails("get", f"crontabs.{PLAIN_GROUP}", "x", "-n", namespace).strip() == (
        f'Error from server (NotFound): crontabs.{PLAIN_GROUP} "x" not found'
    )


def test_kubectl_apply_schema_error_skips_cel_rules(kubectl: Kubectl, validated_crds: None, namespace: str) -> None:
    err = kubectl.fails("apply", "-n", namespace, "-f", "-", input=_crontab('"string"'))
    assert err.strip().splitlines() == [
        'The CronTab "x" is invalid: ',
        f"* {TYPE_ERROR}",
        "* <nil>: Invalid value: null: some validation rules were not checked because the object was invalid; "
        "correct the existing errors to complete validation",
    ]


def test_kubectl_apply_reports_a_cel_rule_violation(kubectl: Kubectl, validated_crds: None, namespace: str) -> None:
    err = kubectl.fails("apply", "-n", namespace, "-f", "-", input=_crontab("11"))
    assert err.strip() == 'The CronTab "x" is invalid: spec: Invalid value: "object": at most 10 replicas'
    out = kubectl.ok("apply", "-n", namespace, "-f", "-", input=_crontab("10"))
    assert out.strip() == f"crontab.{GROUP}/x created"
    err = kubectl.fails(
        "patch",
        f"crontabs.{GROUP}",
        "x",
        "-n",
        namespace,
        "--type",
        "merge",
        "-p",
        '{"spec":{"replicas":12}}',
    )
    assert err.strip() == 'The CronTab "x" is invalid: spec: Invalid value: "object": at most 10 replicas'

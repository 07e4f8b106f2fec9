"""Each overlay as kustomize renders it is committed (``deploy/k8s/rendered``), so a change
to a base, a component or an overlay shows in review as the change to what is applied.
``make manifests`` writes them anew."""

from __future__ import annotations

import difflib

import pytest

from tests.deploy.conftest import K8S, kustomize_output

RENDERED = K8S / "rendered"


@pytest.mark.parametrize("overlay", ["dev", "prod"])
def test_the_committed_rendering_is_what_kustomize_builds(overlay: str) -> None:
    committed = RENDERED / f"{overlay}.yaml"
    built = kustomize_output(K8S / "overlays" / overlay)
    assert committed.exists(), f"{committed} is missing: run `make manifests`"
    diff = "".join(
        difflib.unified_diff(
            committed.read_text().splitlines(keepends=True),
            built.splitlines(keepends=True),
            fromfile=f"{committed.relative_to(K8S.parents[1])} (committed)",
            tofile=f"kubectl kustomize deploy/k8s/overlays/{overlay}",
        )
    )
    assert not diff, f"the manifests changed: review the diff and run `make manifests`\n{diff}"

"""The committed ``steno.v1`` code is exactly what ``make protos`` generates from the protos."""

from __future__ import annotations

from pathlib import Path

from grpc_tools import protoc

from tests.support import ROOT

GENERATED = ROOT / "libs" / "contract" / "src" / "steno" / "v1"


def test_generated_code_matches_the_protos(tmp_path: Path) -> None:
    protos = sorted(str(p.relative_to(ROOT / "protos")) for p in (ROOT / "protos").rglob("*.proto"))
    include = Path(protoc.__file__).parent / "_proto"
    status = protoc.main(
        [
            "grpc_tools.protoc",
            f"-I{ROOT / 'protos'}",
            f"-I{include}",
            f"--python_out={tmp_path}",
            f"--pyi_out={tmp_path}",
            f"--grpc_python_out={tmp_path}",
            *protos,
        ]
    )
    assert status == 0
    fresh = {p.name: p.read_bytes() for p in (tmp_path / "steno" / "v1").iterdir()}
    committed = {p.name: p.read_bytes() for p in GENERATED.iterdir() if p.suffix in {".py", ".pyi"}}
    stale = sorted(name for name in fresh.keys() | committed.keys()
                   if fresh.get(name) != committed.get(name))  # fmt: skip
    assert not stale, f"generated code is stale, run `make protos`: {stale}"

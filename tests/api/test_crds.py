"""The CRDs in crds/ are generated from the models and stay in sync; they are structural."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from mcpyard import manifests
from mcpyard.api import crd
from mcpyard.cli import _crds
from tests.conftest import EXAMPLES, ROOT

CRDS = ROOT / "crds"


def test_committed_crds_equal_the_generated_ones() -> None:
    generated = _crds.files()
    committed = {p.name: p.read_text() for p in CRDS.glob("*.yaml")}
    assert set(committed) == set(generated), "run `mcpyard crds --out-dir crds`"
    for name, text in generated.items():
        assert committed[name] == text, f"{name} is stale: run `mcpyard crds --out-dir crds`"


def _walk(schema: Any, path: str = "") -> list[tuple[str, dict[str, Any]]]:
    out = []
    if isinstance(schema, dict):
        out.append((path, schema))
        for key, value in schema.items():
            out.extend(_walk(value, f"{path}/{key}"))
    elif isinstance(schema, list):
        for i, value in enumerate(schema):
            out.extend(_walk(value, f"{path}/{i}"))
    return out


@pytest.mark.parametrize("definition", crd.definitions(), ids=lambda d: d["spec"]["names"]["kind"])
def test_crds_are_structural_and_answer_kubectl(definition: dict[str, Any]) -> None:
    spec = definition["spec"]
    version = spec["versions"][0]
    schema = version["schema"]["openAPIV3Schema"]
    for path, node in _walk(schema):
        assert "$ref" not in node, path
        assert "default" not in node, f"{path}: defaults would rewrite stored objects"
        assert "anyOf" not in node and "oneOf" not in node, path
        if "properties" in node or "items" in node:
            assert node.get("type") in ("object", "array"), path
    assert version["subresources"] == {"status": {}}
    assert "mcpyard" in spec["names"]["categories"]
    assert spec["names"]["shortNames"]
    columns = {c["name"] for c in version["additionalPrinterColumns"]}
    assert {"Ready", "Age"} <= columns
    descriptions = [n["description"] for _, n in _walk(schema["properties"]["spec"])
                    if "description" in n]
    assert descriptions, "fields are documented once, in the models"


def test_workspace_columns_answer_the_obvious_question() -> None:
    ws = crd.definition(crd.Workspace)["spec"]["versions"][0]["additionalPrinterColumns"]
    assert [c["name"] for c in ws] == ["URL", "Plan", "Servers", "Members", "Tools", "Ready",
                                       "Age"]


def test_sops_block_is_preserved() -> None:
    props = crd.definition(crd.EncryptedSecret)["spec"]["versions"][0]["schema"][
        "openAPIV3Schema"]["properties"]
    assert props["sops"]["x-kubernetes-preserve-unknown-fields"] is True


def test_example_manifests_validate_against_the_crds() -> None:
    schemas = {d["spec"]["names"]["kind"]: d["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
               for d in crd.definitions()}
    loaded = manifests.load([EXAMPLES])
    assert loaded.resources
    for key, doc in loaded.documents.items():
        # OpenAPI 3.0 schemas follow draft 4 (boolean exclusiveMinimum)
        jsonschema.Draft4Validator(schemas[key[1]]).validate(doc)


def test_crds_command_prints_every_crd(capsys: pytest.CaptureFixture[str],
                                       tmp_path: Path) -> None:
    from mcpyard.cli import main

    assert main(["crds"]) == 0
    docs = list(yaml.safe_load_all(capsys.readouterr().out))
    assert [d["spec"]["names"]["kind"] for d in docs] == [
        "Workspace", "MCPServer", "Member", "EncryptedSecret"]
    assert main(["crds", "--out-dir", str(tmp_path)]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(_crds.files())

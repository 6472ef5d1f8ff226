"""The JSON readers: a missing field and a field of the wrong type read alike, never raise."""

from __future__ import annotations

from mcpyard.jsontypes import JSONObject, at, integer, obj, objects, seq, text, texts

DOC: JSONObject = {
    "metadata": {"name": "docs", "labels": {"team": "a"}},
    "spec": {"servers": [{"slug": "gh"}, "stray", 3], "replicas": 2, "suspend": True},
}


def test_at_walks_objects_and_stops_at_anything_else() -> None:
    assert at(DOC, "metadata", "name") == "docs"
    assert at(DOC) is DOC
    assert at(DOC, "metadata", "missing") is None
    assert at(DOC, "metadata", "name", "deeper") is None  # a string has no fields
    assert at(None, "metadata") is None


def test_obj_and_seq_read_absent_or_mistyped_as_empty() -> None:
    assert obj(DOC, "metadata", "labels") == {"team": "a"}
    assert obj(DOC, "spec", "replicas") == {}
    assert obj(DOC, "status") == {}
    assert seq(DOC, "spec", "servers") == [{"slug": "gh"}, "stray", 3]
    assert seq(DOC, "metadata") == []
    assert objects(DOC, "spec", "servers") == [{"slug": "gh"}]
    assert texts(DOC, "spec", "servers") == ["stray"]
    assert texts(DOC, "metadata", "name") == []  # a string is no list of them


def test_scalars_take_their_default_when_mistyped() -> None:
    assert text(DOC, "metadata", "name") == "docs"
    assert text(DOC, "spec", "replicas", default="?") == "?"
    assert integer(DOC, "spec", "replicas") == 2
    assert integer(DOC, "spec", "suspend", default=-1) == -1  # a bool is not a count
    assert integer(DOC, "metadata", "name") == 0

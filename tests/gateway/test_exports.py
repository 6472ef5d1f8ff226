"""The gateway package exports exactly what its __all__ says, sorted."""

from __future__ import annotations

import mcpyard.gateway as gateway


def test_all_is_sorted_and_honest() -> None:
    assert gateway.__all__ == sorted(gateway.__all__)
    public = {name for name in vars(gateway) if not name.startswith("_")}
    assert set(gateway.__all__) <= public
    assert set(gateway.__all__) == {"Settings", "build_app"}

"""What redaction costs a reply: ``Redactor.encode`` (the router's path when a server of the
workspace injects secrets) against plain ``orjson.dumps`` (no secret injected), on a tool
result of each size, with 3 injected values. ``python bench/redact.py``"""

from __future__ import annotations

import argparse
import timeit

import orjson

from mcpyard.gateway import _redact


def result(size: int) -> dict[str, object]:
    line = "the quick brown fox jumps over the lazy dog 0123456789 "
    text = (line * (size // len(line) + 1))[:size]
    return {"content": [{"type": "text", "text": text}], "isError": False}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--number", type=int, default=2000)
    args = ap.parse_args()
    redactor = _redact.Redactor(["sk_live/Kx+9q=Zt!2025~ab", "ghp_" + "A1b2C3d4" * 5,
                                 "xoxb-1234567890-abcdefghijkl"])
    print(f"{redactor.size} forms searched for")
    print("| result | orjson.dumps | Redactor.encode (clean) | added | ratio |")
    print("|---|---|---|---|---|")
    for size in (200, 2_000, 20_000, 200_000):
        value = result(size)
        n = max(20, args.number * 200 // size)
        plain = min(timeit.repeat(lambda v=value: orjson.dumps(v), number=n, repeat=5)) / n
        scrub = min(timeit.repeat(lambda v=value: redactor.encode(v), number=n,
                                  repeat=5)) / n
        print(f"| {size:,} B | {plain * 1e6:.1f} µs | {scrub * 1e6:.1f} µs | "
              f"{(scrub - plain) * 1e6:.1f} µs | {scrub / plain:.1f}x |")


if __name__ == "__main__":
    main()

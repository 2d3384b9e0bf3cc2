#!/usr/bin/env python3
"""src/api/tojson.c against Python's json.dumps(x, ensure_ascii=False), the `tojson` of the Qwen
chat templates under transformers: tool definitions (`tool | tojson`) and tool-call arguments are
serialised by tojson_dumps() and must come out byte-identical. Hand-picked values plus a seeded
random generator (nested objects with keys in random order, unicode incl. U+2028, control
characters, ints, floats across magnitudes) go through $AXLLAMA_BUILD/tools/tojson.
Prints each mismatch and ends with the line "N passed, M failed"."""
import json
import os
import random
import struct
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RANDOM_CASES = 2000
SEED = 20251202

FIXED = [
    {"type": "function", "function": {"name": "get_weather", "description": "Wetter für eine Stadt \u2028 ✓",
                                      "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                                                     "required": ["city"]}}},
    {"z": 1, "a": [1, 2.5, None, True, False], "m": {"": "", "q\"\\": "\n\r\t\b\f\x01\x1f\x7f/"}},
    [0.1, 1.0, -0.0, 1e-05, 1e16, 1e15, 5e-324, 1.7976931348623157e308, 123456789.125, 0.30000000000000004],
    "😀 emoji and \u0085 NEL", -9223372036854775808, 9223372036854775807, [], {},
]


def rand_string(r):
    alphabet = "abc XYZ \"\\/\n\t\x00\x01\x1f\x7f é ü ✓ \u2028 \u2029 😀 <>&'"
    return "".join(r.choice(alphabet) for _ in range(r.randint(0, 12)))


def rand_float(r):
    kind = r.randint(0, 3)
    if kind == 0:
        return r.uniform(-1000, 1000)
    if kind == 1:
        return r.random() * 10 ** r.randint(-30, 30)
    if kind == 2:
        return float(r.randint(-10**6, 10**6))
    while True:  # any finite double
        d = struct.unpack("<d", struct.pack("<Q", r.getrandbits(64)))[0]
        if d == d and d not in (float("inf"), float("-inf")):
            return d


def rand_value(r, depth=0):
    k = r.randint(0, 7 if depth < 3 else 4)
    if k == 0:
        return None
    if k == 1:
        return r.choice([True, False])
    if k == 2:
        return r.randint(-2**63, 2**63 - 1) if r.random() < 0.2 else r.randint(-1000, 1000)
    if k == 3:
        return rand_float(r)
    if k == 4:
        return rand_string(r)
    if k == 5:
        return [rand_value(r, depth + 1) for _ in range(r.randint(0, 4))]
    obj = {}
    for _ in range(r.randint(0, 4)):
        obj[rand_string(r)] = rand_value(r, depth + 1)
    return obj


def main():
    build = os.environ.get("AXLLAMA_BUILD", os.path.join(ROOT, "build"))
    r = random.Random(SEED)
    values = FIXED + [rand_value(r) for _ in range(RANDOM_CASES)]
    # NUL in strings: jansson refuses it by default, and a model's tool JSON never has one
    values = json.loads(json.dumps(values).replace("\\u0000", "\\u0001"))
    out = subprocess.run([os.path.join(build, "tools", "tojson")], input=json.dumps(values), capture_output=True,
                         text=True, timeout=120)
    if out.returncode != 0:
        print(out.stderr)
        print(f"0 passed, {len(values)} failed")
        return 1
    lines = out.stdout.splitlines()
    passed = failed = 0
    for i, v in enumerate(values):
        want = json.dumps(v, ensure_ascii=False)
        got = json.loads(lines[i]) if i < len(lines) else None
        if got == want:
            passed += 1
        else:
            failed += 1
            if failed <= 10:
                print(f"mismatch {i}:\n  python: {want!r}\n  C:      {got!r}")
    print(f"{passed} passed, {failed} failed")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())

"""Regenerates ruamel_scalars.json: how ruamel.yaml (DVC's YAML library)
writes and reads back the `path` of a `.dvc` output.

Each row is [value, text after "  path: " as ruamel writes it, value as
ruamel reads that text back] (ruamel's folding loses some double spaces).
Run with ruamel.yaml installed: python3 gen_ruamel_scalars.py
"""

import io
import json
import random

from ruamel.yaml import YAML

WRITER = YAML()
WRITER.default_flow_style = False
READER = YAML(typ="safe")


def row(value):
    stream = io.StringIO()
    WRITER.dump({"outs": [{"md5": "a", "hash": "md5", "path": value}]}, stream)
    text = stream.getvalue()
    written = text.split("  hash: md5\n  path: ", 1)[1][:-1]
    read_back = str(READER.load(text)["outs"][0]["path"])
    return [value, written, read_back]


SPECIALS = [
    "true", "1e3", "0x1F", "2024-01-02", "2024-1-2 3:04:05", "2024-01-02T03:04:05.5Z",
    "2024-1-2 3:04:05 +01:00", ".NaN", "-.inf", "0o7", "0b1", "+1_0", "1.5e-3", ".5e+3",
    ".5e3", "<<", "=", "null", "Null", "~", "- a", "? a", ": a", "a:", "a :b", "#a", "a#",
    "a #", "yes", "on", "0", "-0", "00", "_", "_0", "1__", "data.csv", "images/cat 01.png",
    "it's", 'a"b',
]
REALISTIC = list("abcdefghij0123456789 '-_.()é,&")
TRICKY = list("ab01 _-.:#,'\"[]{}?!&*|>%@`~=+/\\\t\x01\x7f\néü😀\ufeff")
LENGTHS = [1, 2, 3, 5, 8, 20, 60, 70, 72, 75, 78, 80, 85, 120, 200]

random.seed(11)
rows = [row(value) for value in SPECIALS]
for alphabet in (REALISTIC, TRICKY):
    for _ in range(200):
        length = random.choice(LENGTHS)
        rows.append(row("".join(random.choice(alphabet) for _ in range(length))))
with open("ruamel_scalars.json", "w") as out:
    json.dump(rows, out, indent=0)
    out.write("\n")

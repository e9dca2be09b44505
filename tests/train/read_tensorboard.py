#!/usr/bin/env python3
"""Oracle for duet's metrics writers (run by test_tensorboard_writer.cpp).

Usage: read_tensorboard.py TB_DIR EXPECTED_JSON [SVG ...]

Loads TB_DIR with TensorBoard's own EventAccumulator (which also applies the SessionLog START
purge of a resumed run) and checks that its scalars are exactly EXPECTED_JSON's
{"scalars": {tag: [[step, value, wall_time], ...]}}, values compared as float32. Each SVG must
parse as XML with an <svg> root in the SVG namespace. Exits non-zero with a message on the
first mismatch; prints "ok: N tags, M svg" on success.
"""
import json
import math
import sys
import xml.etree.ElementTree as ET

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator


def same_float(a, b):
    return (math.isnan(a) and math.isnan(b)) or a == b


def main():
    tb_dir, expected_path, svgs = sys.argv[1], sys.argv[2], sys.argv[3:]
    with open(expected_path) as f:
        expected = json.load(f)["scalars"]

    acc = EventAccumulator(tb_dir, size_guidance={"scalars": 0})  # 0: keep every event
    acc.Reload()
    tags = sorted(acc.Tags()["scalars"])
    if tags != sorted(expected):
        sys.exit(f"scalar tags {tags}, expected {sorted(expected)}")
    if acc.file_version != 2.0:
        sys.exit(f"file_version {acc.file_version}, expected 2 (brain.Event:2)")
    for tag in tags:
        got = [(e.step, e.value, e.wall_time) for e in acc.Scalars(tag)]
        want = [tuple(row) for row in expected[tag]]
        if len(got) != len(want) or not all(
            g[0] == w[0] and same_float(g[1], w[1]) and g[2] == w[2] for g, w in zip(got, want)
        ):
            sys.exit(f"tag {tag!r}: read {got}\n expected {want}")

    for path in svgs:
        root = ET.parse(path).getroot()
        if root.tag != "{http://www.w3.org/2000/svg}svg":
            sys.exit(f"{path}: root element {root.tag}, expected svg")
    print(f"ok: {len(tags)} tags, {len(svgs)} svg")


if __name__ == "__main__":
    main()

"""The cores-per-GPU table of docs/PERFORMANCE.md and its summary in the README: each
row's cores are the GPU rate over the measured images per CPU-second, rounded up, and
the README quotes the same figures as the doc."""

import math
import os
import re

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RATES = (10_000, 21_436)  # the doc's GPU anchors: eager and compiled, one H200


def read(*path):
    with open(os.path.join(ROOT, *path), encoding="utf-8") as f:
        return f.read()


def number(cell):
    return float(cell.strip().replace(",", ""))


def rows(text, header_start):
    """The rows (lists of cells) of the markdown table whose header starts so."""
    lines = text[text.index(header_start) :].splitlines()[2:]
    return [
        [c.strip() for c in line.strip("|").split("|")]
        for line in lines[: next(i for i, row in enumerate(lines) if not row.startswith("|"))]
    ]


def test_each_rows_cores_are_the_gpu_rate_over_the_per_core_figure():
    table = rows(read("docs", "PERFORMANCE.md"), "| input path | `--augment_on` |")
    assert len(table) == 5
    for path, _, per_core, _, *cores in table:
        expected = [math.ceil(rate / number(per_core)) for rate in RATES]
        assert [int(c) for c in cores] == expected, path


def test_the_readme_quotes_the_docs_figures():
    doc = {
        (re.sub(r" \(.*\)|, today's default", "", r[0]), r[1]): (r[2], r[4])
        for r in rows(read("docs", "PERFORMANCE.md"), "| input path | `--augment_on` |")
    }
    readme = rows(read("README.md"), "| input path | images per CPU-second |")
    assert len(readme) == 4
    for path, per_core, cores in readme:
        name, place = re.match(r"(.*), (host|device) augmentation", path).groups()
        name = re.sub(r" \(.*\)", "", name)
        assert doc[name, place] == (per_core, cores), path

"""Class taxonomy loading and validation."""

from __future__ import annotations

import numpy as np
import pytest

from ssr_ros.errors import ConfigError
from ssr_ros.taxonomy import ClassTaxonomy


def test_default_taxonomy_is_scannet20_with_unknown():
    taxonomy = ClassTaxonomy.load()
    assert taxonomy.num_classes == 21
    assert taxonomy.names[:3] == ["unknown", "wall", "floor"]
    assert taxonomy.id_of("otherfurniture") == 20
    np.testing.assert_array_equal(taxonomy.colorize(np.array([[1, 99, -1]])), [[[174, 199, 232], [0, 0, 0], [0, 0, 0]]])


@pytest.mark.parametrize(
    "text,match",
    [
        ("classes:\n  - {id: 1, name: wall, color: [1, 2, 3]}\n", "ids must be 0..N-1"),
        ("classes:\n  - {id: 0, name: wall, color: [1, 2, 3]}\n", "must start with id 0 named 'unknown'"),
        ("classes:\n  - {id: 0, name: unknown, color: [1, 2]}\n", "color \\[1, 2\\] is not three values"),
        ("classes:\n  - {id: 0, name: unknown}\n", "entry 0 .* is invalid"),
        ("- a\n", "must be a mapping with a 'classes' list"),
        (
            "classes:\n  - {id: 0, name: unknown, color: [0, 0, 0]}\n  - {id: 1, name: unknown, color: [0, 0, 0]}\n",
            "duplicate class names",
        ),
    ],
)
def test_bad_taxonomy_files_are_refused(tmp_path, text, match):
    path = tmp_path / "t.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=match):
        ClassTaxonomy.load(path)


def test_unknown_class_name_lists_the_known_ones():
    with pytest.raises(ConfigError, match="unknown class 'ceiling'.*'wall'"):
        ClassTaxonomy.load().id_of("ceiling")

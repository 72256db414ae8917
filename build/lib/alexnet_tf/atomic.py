"""Files written so that a kill at any moment leaves the old file or the new one."""

import json
import os


def write_json(path, value):
    """Writes `value` as JSON to `path` through a temporary file and one rename."""
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with open(path + ".tmp", "w", encoding="utf-8") as f:
        json.dump(value, f, indent=1)
    os.replace(path + ".tmp", path)

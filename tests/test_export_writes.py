"""An export never writes under the names users load: `model.keras`, `classes.json` and
`saved_model` only ever appear by a rename over the old entry.

A kill lands in a write only by luck (a tiny model's file is written in milliseconds),
so this watches the run folder with Linux's inotify instead: every file the export
creates, writes or renames there is an event naming it, however the writing is done
(Keras's zip writer, json, a symlink).
"""

import ctypes
import ctypes.util
import os
import struct

import pytest
from test_export import assert_loadable, export_once

IN_MODIFY = 0x002
IN_ATTRIB = 0x004
IN_CLOSE_WRITE = 0x008
IN_MOVED_FROM = 0x040
IN_MOVED_TO = 0x080
IN_CREATE = 0x100
IN_DELETE = 0x200
IN_NONBLOCK = 0o4000
WATCHED = IN_MODIFY | IN_ATTRIB | IN_CLOSE_WRITE | IN_MOVED_FROM | IN_MOVED_TO
WATCHED |= IN_CREATE | IN_DELETE
NAMES = {
    IN_MODIFY: "modified",
    IN_ATTRIB: "attributes changed",
    IN_CLOSE_WRITE: "closed after writing",
    IN_MOVED_FROM: "renamed away",
    IN_MOVED_TO: "renamed into place",
    IN_CREATE: "created",
    IN_DELETE: "deleted",
}
FINAL = ("model.keras", "classes.json", "saved_model")

libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)


class Watch:
    """inotify events of one folder (not its subfolders): [(name, what)]."""

    def __init__(self, folder):
        self.fd = libc.inotify_init1(IN_NONBLOCK)
        if self.fd < 0 or libc.inotify_add_watch(self.fd, os.fsencode(folder), WATCHED) < 0:
            pytest.skip(f"inotify unavailable: {os.strerror(ctypes.get_errno())}")

    def events(self):
        found = []
        while True:
            try:
                data = os.read(self.fd, 1 << 16)
            except BlockingIOError:
                return found
            offset = 0
            while offset < len(data):
                _, mask, _, length = struct.unpack_from("iIII", data, offset)
                name = data[offset + 16 : offset + 16 + length].rstrip(b"\0").decode()
                offset += 16 + length
                found += [(name, what) for bit, what in NAMES.items() if mask & bit]

    def close(self):
        os.close(self.fd)


def test_an_export_replaces_what_users_load_only_by_renames(tmp_path):
    export_once(str(tmp_path))  # the previous export
    watch = Watch(tmp_path)
    try:
        export_once(str(tmp_path))
        events = watch.events()
    finally:
        watch.close()
    assert_loadable(tmp_path, "after the second export")
    final = [(name, what) for name, what in events if name in FINAL]
    # Each one replaced (not left alone), and in one step: nothing else happened to it.
    assert sorted(final) == sorted((name, "renamed into place") for name in FINAL), events
    # The writes went to other names of the same folder (what was renamed into place).
    assert any(what == "closed after writing" for _, what in events), events

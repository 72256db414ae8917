"""Pickles from files of unknown origin, run only after two checks.

Python's unpickler trusts its input twice over: it imports and calls whatever a pickle
names (code execution), and it allocates what a pickle declares before reading it (a
`BINBYTES8` of 2**40 bytes or a memo index of 2**32 asks for terabytes in a 100-byte
file). `Unpickler` answers the first with an allow-list (`allowed(module, name)`, which
subclasses fill in); `check` answers the second by walking the pickle's opcodes with
`pickletools` first, over the bytes that are there, and refusing a length past the end
or a memo index past the opcodes seen.
"""

import pickle
import pickletools

_MEMO_PUTS = {"PUT", "BINPUT", "LONG_BINPUT"}


class Refused(Exception):
    """The pickle names something outside the allow-list: `args[0]` says what."""


class _Walk:
    """A read-only file over `buffer` (bytes, or an mmap of the file) from `pos`: a read
    copies only the bytes that are there, whatever length was asked for."""

    def __init__(self, buffer, pos):
        self.view, self.pos = memoryview(buffer), pos

    def read(self, n=-1):
        end = len(self.view) if n < 0 else min(self.pos + n, len(self.view))
        chunk, self.pos = self.view[self.pos : end].tobytes(), end
        return chunk

    def readline(self):
        start = self.pos
        while self.pos < len(self.view):
            chunk = self.view[self.pos : self.pos + 4096].tobytes()
            newline = chunk.find(b"\n")
            self.pos += len(chunk) if newline < 0 else newline + 1
            if newline >= 0:
                break
        return self.view[start : self.pos].tobytes()

    def tell(self):
        return self.pos


def check(buffer, pos):
    """Checks the one pickle at `buffer[pos:]`.

    Raises ValueError for a declared length (of data or of a frame) past the end of the
    data, a memo index past the opcodes read so far, an unknown opcode, or a pickle
    without its STOP.
    """
    opcodes, walk = 0, _Walk(buffer, pos)
    try:
        for opcode, arg, _ in pickletools.genops(walk):
            opcodes += 1
            if opcode.name in _MEMO_PUTS and not 0 <= arg <= opcodes:
                raise ValueError(f"a memo index of {arg} after {opcodes} opcodes")
            # A frame's opcodes follow it, read one by one here; the unpickler reads the
            # frame whole, and from a file allocates its declared length first.
            if opcode.name == "FRAME" and arg > len(walk.view) - walk.pos:
                raise ValueError(f"a frame of {arg} bytes runs past the end")
    except (ValueError, EOFError, OverflowError, UnicodeDecodeError) as err:
        text = " ".join(str(err).split())[:120] or type(err).__name__
        raise ValueError(f"a damaged pickle: {text}") from None
    finally:
        walk.view.release()  # the map of a file can close


class Unpickler(pickle.Unpickler):
    """An unpickler that resolves names only through `allowed`, and loads only pickles
    that `check` passed: `file` reads the same bytes as `buffer` at the same offsets
    (a file and its mmap, or an `io.BytesIO` and its bytes)."""

    def __init__(self, file, buffer, **kwargs):
        super().__init__(file, **kwargs)
        self._file, self._buffer = file, buffer

    def allowed(self, module, name):
        """The object for `module.name`; raise `Refused` for names not allowed."""
        raise Refused(f"{module}.{name}")

    def find_class(self, module, name):
        return self.allowed(module, name)

    def persistent_load(self, pid):
        raise Refused(f"persistent id {pid!r:.60}")

    def load(self):
        check(self._buffer, self._file.tell())
        return super().load()

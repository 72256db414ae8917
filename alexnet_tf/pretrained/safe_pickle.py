"""Pickles from files of unknown origin, run only after two checks.

Python's unpickler trusts its input twice over: it imports and calls whatever a pickle
names (code execution), and it allocates what a pickle declares before reading it (a
`BINBYTES8` of 2**40 bytes or a memo index of 2**32 asks for terabytes in a 100-byte
file). `Unpickler` answers the first with an allow-list (`allowed(module, name)`, which
subclasses fill in); `check_stream` answers the second by walking the pickle's opcodes
with `pickletools` first, which reads each declared length from the bytes that are
there, and refusing a length past the end or a memo index past the opcodes seen.
"""

import io
import pickle
import pickletools

_MEMO_PUTS = {"PUT", "BINPUT", "LONG_BINPUT"}


class Refused(Exception):
    """The pickle names something outside the allow-list: `args[0]` says what."""


def check_stream(stream):
    """Checks the one pickle at `stream`'s position (an `io.BytesIO`), then rewinds to it.

    Raises ValueError for a declared length past the end of the data, a memo index past
    the opcodes read so far, an unknown opcode, or a pickle without its STOP.
    """
    start = stream.tell()
    opcodes = 0
    try:
        for opcode, arg, _ in pickletools.genops(stream):
            opcodes += 1
            if opcode.name in _MEMO_PUTS and not 0 <= arg <= opcodes:
                raise ValueError(f"a memo index of {arg} after {opcodes} opcodes")
    except (ValueError, EOFError, OverflowError, UnicodeDecodeError) as err:
        text = " ".join(str(err).split())[:120] or type(err).__name__
        raise ValueError(f"a damaged pickle: {text}") from None
    stream.seek(start)


class Unpickler(pickle.Unpickler):
    """An unpickler that resolves names only through `allowed` and loads only pickles
    that `check_stream` passed."""

    def __init__(self, stream, **kwargs):
        if not isinstance(stream, io.BytesIO):
            raise TypeError("a checked pickle is read from an io.BytesIO")
        super().__init__(stream, **kwargs)
        self._stream = stream

    def allowed(self, module, name):
        """The object for `module.name`; raise `Refused` for names not allowed."""
        raise Refused(f"{module}.{name}")

    def find_class(self, module, name):
        return self.allowed(module, name)

    def persistent_load(self, pid):
        raise Refused(f"persistent id {pid!r:.60}")

    def load(self):
        check_stream(self._stream)
        return super().load()

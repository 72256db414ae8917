"""A PyTorch `.pth` state_dict read without PyTorch, refusing anything but tensors.

Two layouts of `torch.save` are read:

- the zip file (PyTorch >= 1.6): `ARCHIVE/data.pkl` (the pickle) and
  `ARCHIVE/data/KEY` (each storage's raw little-endian bytes);
- the legacy stream (torchvision's published `alexnet-owt-7be5be79.pth` is one): five
  pickles in a row (magic number, protocol, system info, the object, the storage keys),
  then each storage as an 8-byte element count and its bytes.

The pickle is run by an unpickler that knows only the few names a state_dict of plain
tensors needs (`torch._utils._rebuild_tensor_v2`, the storage classes,
`collections.OrderedDict`); a file naming any other Python object is refused before
anything in it runs. Every size the file declares (a pickle's lengths, a zip entry's
sizes, a storage's element count, a tensor's shape and strides) is checked against the
file's real size or the storage it lies in before anything of that size is allocated, so
a damaged or hostile file (a zip bomb among them) is refused in one line. Tensors come
back as NumPy arrays with PyTorch's shapes.
"""

import collections
import io
import math
import mmap
import os
import pickle
import struct
import zipfile
import zlib

import numpy as np

from alexnet_tf.errors import UserError
from alexnet_tf.pretrained import safe_pickle

_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
_STORAGE_DTYPES = {
    "FloatStorage": np.float32,
    "DoubleStorage": np.float64,
    "HalfStorage": np.float16,
    "LongStorage": np.int64,
    "IntStorage": np.int32,
    "ShortStorage": np.int16,
    "CharStorage": np.int8,
    "ByteStorage": np.uint8,
    "BoolStorage": np.bool_,
}
_MAX_DIMS = 8


class _StorageType:
    def __init__(self, name):
        self.dtype = np.dtype(_STORAGE_DTYPES[name]).newbyteorder("<")


class _Storage:
    """A storage's bytes, read when a tensor first needs them; `read()` returns exactly
    `count` elements' bytes or raises ValueError."""

    def __init__(self, dtype, count, read):
        self.dtype, self.count, self._read, self._array = dtype, count, read, None

    def array(self):
        if self._array is None:
            data = self._read()
            if self.count is not None and len(data) != self.count * self.dtype.itemsize:
                raise ValueError(f"a storage of {self.count} elements holds {len(data)} bytes")
            self._array = np.frombuffer(data, self.dtype)
        return self._array


def _index(value, what):
    if type(value) is not int or value < 0:
        raise ValueError(f"a tensor's {what} of {value!r:.40}")
    return value


class _Tensor:
    """A tensor to be read from its storage once every storage's bytes are known (the
    legacy stream stores them after the pickle)."""

    def __init__(self, storage, offset, size, stride, *unused):
        del unused  # requires_grad, backward hooks, metadata
        if not isinstance(storage, _Storage):
            raise ValueError(f"a tensor on a {type(storage).__name__}, not a storage")
        if not isinstance(size, tuple | list) or not isinstance(stride, tuple | list):
            raise ValueError("a tensor without its size and stride")
        if len(size) != len(stride) or len(size) > _MAX_DIMS:
            raise ValueError(f"a tensor of size {size!r:.60} and stride {stride!r:.60}")
        size = tuple(_index(n, "size") for n in size)
        stride = tuple(_index(n, "stride") for n in stride)
        self.parts = storage, _index(offset, "offset"), size, stride

    def array(self):
        return _tensor_array(*self.parts)


def _tensor_array(storage, offset, size, stride):
    values = storage.array()
    if math.prod(size) == 0:
        return np.zeros(size, values.dtype.newbyteorder("="))
    item = values.itemsize
    needed = offset + sum((n - 1) * s for n, s in zip(size, stride, strict=True)) + 1
    # A state_dict's tensors each hold their own values: none has more than its storage.
    if needed > values.size or math.prod(size) > values.size:
        raise ValueError(f"a tensor of size {tuple(size)} runs past its storage")
    if not size:
        return values[offset].copy()
    view = np.lib.stride_tricks.as_strided(
        values[offset:], tuple(size), tuple(s * item for s in stride), writeable=False
    )
    return np.array(view, dtype=values.dtype.newbyteorder("="))


class _Unpickler(safe_pickle.Unpickler):
    def __init__(self, file, buffer, load_storage):
        super().__init__(file, buffer)
        self._load_storage = load_storage
        self.storages = {}

    def allowed(self, module, name):
        if module == "collections" and name == "OrderedDict":
            return collections.OrderedDict
        if module == "torch._utils" and name == "_rebuild_tensor_v2":
            return _Tensor
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(name)
        return super().allowed(module, name)

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and len(pid) >= 3 and pid[0] == "storage"):
            raise safe_pickle.Refused(f"persistent id {pid!r:.60}")
        if self._load_storage is None:
            raise ValueError("a storage where none belongs")
        storage_type, key = pid[1], str(pid[2])
        if not isinstance(storage_type, _StorageType):
            raise safe_pickle.Refused(f"storage type {storage_type!r:.60}")
        count = _index(pid[4], "storage size") if len(pid) > 4 else None
        if key not in self.storages:
            load = self._load_storage(key, storage_type.dtype, count)
            self.storages[key] = _Storage(storage_type.dtype, count, load)
        return self.storages[key]


def _entry(archive, name, limit):
    """The bytes of the archive's entry `name`, refused before reading if it declares
    more than `limit` bytes, packed or unpacked (a zip bomb declares gigabytes)."""
    info = archive.getinfo(name)
    if max(info.file_size, info.compress_size) > limit:
        raise ValueError(
            f"{name} declares {max(info.file_size, info.compress_size)} bytes, more than {limit}"
        )
    return archive.read(info)


def _read_zip(archive, size):
    pickles = [n for n in archive.namelist() if n.endswith("data.pkl")]
    if len(pickles) != 1:
        raise ValueError("no data.pkl in the zip archive")
    prefix = pickles[0][: -len("data.pkl")]

    def load(key, dtype, count):
        # torch.save stores entries uncompressed: none holds more than the file's size.
        limit = size if count is None else min(size, count * dtype.itemsize)
        return lambda: _entry(archive, f"{prefix}data/{key}", limit)

    data = _entry(archive, pickles[0], size)
    return _Unpickler(io.BytesIO(data), data, load).load()


def _read_legacy(f, mapped):
    """The object in the legacy stream `f` (`mapped`: its map, of which the storages
    keep views rather than copies)."""
    plain = _Unpickler(f, mapped, None)
    if plain.load() != _LEGACY_MAGIC:
        raise ValueError("not a torch.save file (wrong magic number)")
    plain.load()  # protocol version
    plain.load()  # system info
    reads = {}
    unpickler = _Unpickler(f, mapped, lambda key, dtype, count: lambda: reads[key])
    result = unpickler.load()
    keys = _Unpickler(f, mapped, None).load()
    if not isinstance(keys, list):
        raise ValueError("no list of storage keys after the pickle")
    view = memoryview(mapped)
    for key in keys:
        storage = unpickler.storages.get(str(key))
        head = f.read(8)
        if len(head) != 8:
            raise EOFError("the file ends before its storages")
        (count,) = struct.unpack("<q", head)
        size = count * (storage.dtype.itemsize if storage else 1)
        start = f.tell()
        if not 0 <= size <= len(view) - start:
            raise ValueError(f"a storage of {count} elements runs past the end of the file")
        reads[str(key)] = view[start : start + size]
        f.seek(start + size)
    return result


def read_state_dict(path):
    """`{name: array}` of the state_dict in the `.pth` file at `path`.

    This reader runs no code from the file, but the same file given to `torch.load`
    without `weights_only=True` could.
    """
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                state = _read_zip(archive, os.path.getsize(path))
                arrays = _materialise(state)
        else:
            with open(path, "rb") as f:
                if os.fstat(f.fileno()).st_size == 0:
                    raise EOFError("the file is empty")
                # Not closed here: the arrays are copies, but views of the map may live on
                # in a traceback; the map closes when the last one goes.
                mapped = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
                arrays = _materialise(_read_legacy(f, mapped))
    except safe_pickle.Refused as err:
        raise UserError(
            f"{path} was refused: it names {err}, which is not part of a state_dict of tensors"
        ) from None
    except OSError as err:
        raise UserError(f"{path} cannot be read: {err}") from None
    except (
        pickle.UnpicklingError,
        EOFError,
        ValueError,
        KeyError,
        TypeError,
        zipfile.BadZipFile,
        zlib.error,
        NotImplementedError,  # a zip entry packed by a method zipfile does not know
        RuntimeError,  # an encrypted zip entry
    ) as err:
        text = " ".join(str(err).split())[:160] or type(err).__name__
        raise UserError(f"{path} is not a complete PyTorch state_dict file: {text}") from None
    return arrays


def _materialise(state):
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise ValueError(f"it holds a {type(state).__name__}, not a state_dict")
    return {str(k): v.array() for k, v in state.items() if isinstance(v, _Tensor)}

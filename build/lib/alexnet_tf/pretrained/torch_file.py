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
anything in it runs. Tensors come back as NumPy arrays with PyTorch's shapes.
"""

import collections
import io
import pickle
import struct
import zipfile

import numpy as np

from alexnet_tf.errors import UserError

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


class _Refused(Exception):
    pass


class _StorageType:
    def __init__(self, name):
        self.dtype = np.dtype(_STORAGE_DTYPES[name]).newbyteorder("<")


class _Storage:
    """A storage's bytes, read when a tensor first needs them."""

    def __init__(self, dtype, read):
        self.dtype, self._read, self._array = dtype, read, None

    def array(self):
        if self._array is None:
            self._array = np.frombuffer(self._read(), self.dtype)
        return self._array


class _Tensor:
    """A tensor to be read from its storage once every storage's bytes are known (the
    legacy stream stores them after the pickle)."""

    def __init__(self, storage, offset, size, stride, *unused):
        del unused  # requires_grad, backward hooks, metadata
        self.parts = storage, offset, tuple(size), tuple(stride)

    def array(self):
        return _tensor_array(*self.parts)


def _tensor_array(storage, offset, size, stride):
    values = storage.array()
    if not size:
        return values[offset].copy()
    item = values.itemsize
    needed = offset + sum((n - 1) * s for n, s in zip(size, stride, strict=True)) + 1
    if needed > values.size:
        raise ValueError(f"a tensor of size {tuple(size)} runs past its storage")
    view = np.lib.stride_tricks.as_strided(
        values[offset:], tuple(size), tuple(s * item for s in stride), writeable=False
    )
    return np.array(view, dtype=values.dtype.newbyteorder("="))


def _allowed(module, name):
    if module == "collections" and name == "OrderedDict":
        return collections.OrderedDict
    if module == "torch._utils" and name == "_rebuild_tensor_v2":
        return _Tensor
    if module == "torch" and name in _STORAGE_DTYPES:
        return _StorageType(name)
    raise _Refused(f"{module}.{name}")


class _Unpickler(pickle.Unpickler):
    def __init__(self, file, load_storage):
        super().__init__(file)
        self._load_storage = load_storage
        self.storages = {}

    def find_class(self, module, name):
        return _allowed(module, name)

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and pid and pid[0] == "storage"):
            raise _Refused(f"persistent id {pid!r:.60}")
        storage_type, key = pid[1], str(pid[2])
        if not isinstance(storage_type, _StorageType):
            raise _Refused(f"storage type {storage_type!r:.60}")
        if key not in self.storages:
            self.storages[key] = _Storage(storage_type.dtype, self._load_storage(key))
        return self.storages[key]


def _read_zip(archive):
    pickles = [n for n in archive.namelist() if n.endswith("data.pkl")]
    if len(pickles) != 1:
        raise ValueError("no data.pkl in the zip archive")
    prefix = pickles[0][: -len("data.pkl")]

    def load(key):
        return lambda: archive.read(f"{prefix}data/{key}")

    unpickler = _Unpickler(io.BytesIO(archive.read(pickles[0])), load)
    return unpickler.load()


def _read_legacy(f):
    plain = _Unpickler(f, None)
    if plain.load() != _LEGACY_MAGIC:
        raise ValueError("not a torch.save file (wrong magic number)")
    plain.load()  # protocol version
    plain.load()  # system info
    reads = {}
    unpickler = _Unpickler(f, lambda key: lambda: reads[key])
    result = unpickler.load()
    keys = _Unpickler(f, None).load()
    for key in keys:
        storage = unpickler.storages.get(str(key))
        (count,) = struct.unpack("<q", f.read(8))
        size = count * (storage.dtype.itemsize if storage else 1)
        data = f.read(size)
        if len(data) != size:
            raise EOFError("a storage runs past the end of the file")
        reads[str(key)] = data
    return result


def read_state_dict(path):
    """`{name: array}` of the state_dict in the `.pth` file at `path`.

    Only load files you trust: this reader runs no code from the file, but the same file
    given to `torch.load` without `weights_only=True` could.
    """
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                state = _read_zip(archive)
                arrays = _materialise(state)
        else:
            with open(path, "rb") as f:
                arrays = _materialise(_read_legacy(f))
    except _Refused as err:
        raise UserError(
            f"{path} was refused: it names {err}, which is not part of a state_dict of tensors"
        ) from None
    except OSError as err:
        raise UserError(f"{path} cannot be read: {err}") from None
    except (pickle.UnpicklingError, EOFError, ValueError, KeyError, zipfile.BadZipFile) as err:
        text = " ".join(str(err).split())[:160] or type(err).__name__
        raise UserError(f"{path} is not a complete PyTorch state_dict file: {text}") from None
    return arrays


def _materialise(state):
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise ValueError(f"it holds a {type(state).__name__}, not a state_dict")
    return {str(k): v.array() for k, v in state.items() if isinstance(v, _Tensor)}

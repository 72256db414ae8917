"""The `{layer: [W, b]}` NumPy dictionary of the TF fine-tuning repositories
(`bvlc_alexnet.npy`, converted from Caffe's bvlc_alexnet by caffe-tensorflow).

Its arrays are already in TensorFlow's layout: conv kernels `(kh, kw, in / groups,
out)`, FC weights `(in, out)` with fc6's rows in pool5's (H, W, C) order; its input
is Caffe's (BGR, 0-255, mean subtracted).

The file is a `.npy` of one object: a header, then the dictionary as a pickle. The
header is parsed here, and the pickle run by an unpickler that builds nothing but what
such a dictionary holds: dicts, lists, tuples, strings and numbers come from the
pickle's own opcodes, and of named objects only NumPy's array and dtype reconstructors
(`numpy.core.multiarray._reconstruct`, `numpy.ndarray`, `numpy.dtype`, and
`_codecs.encode` to latin-1 of protocol-2 bytes) are known, each replaced by a stand-in
that checks its arguments and its state (a numeric dtype; exactly as many bytes or
items as the shape declares) before an array is made. A file naming anything else is
refused with one line naming it.
"""

import math
import mmap
import pickle
import re
import tokenize

import numpy as np

from alexnet_tf.errors import UserError
from alexnet_tf.pretrained import safe_pickle

_RECONSTRUCT = {"numpy.core.multiarray", "numpy._core.multiarray"}
_DTYPE_NAME = re.compile(r"[<>|=]?([biuf])(\d{1,2})|O8?|O")
_NDARRAY = object()  # `numpy.ndarray`, only ever the first argument of _reconstruct
_MAX_DEPTH = 8  # {layer: [W, b]} or {layer: {"weights": W}}, inside a 0-d object array


class _Dtype:
    """`numpy.dtype(name, align, copy)` and its state (only the byte order is taken)."""

    def __init__(self, name, align=False, copy=True):
        del align, copy
        if not isinstance(name, str) or not _DTYPE_NAME.fullmatch(name):
            raise ValueError(f"an array of dtype {name!r:.40}, not a number or object")
        self.name, self.order = name.lstrip("<>|="), "<"

    def __setstate__(self, state):
        if not isinstance(state, tuple) or len(state) < 2 or state[1] not in "<>|=":
            raise ValueError("a dtype of unknown state")
        self.order = state[1] if state[1] in "<>" else "="

    def numpy(self):
        if self.name.startswith("O"):
            return np.dtype(object)
        return np.dtype(self.name).newbyteorder(self.order)


class _Array:
    """`_reconstruct(ndarray, (0,), b"b")`, then its state `(version, shape, dtype,
    fortran, data)`: the array is made only once its data fits its shape."""

    def __init__(self, cls, shape, typecode):
        if cls is not _NDARRAY or shape != (0,):
            raise ValueError("an array reconstructed otherwise than by numpy")
        self.value = None

    def __setstate__(self, state):
        if not isinstance(state, tuple) or len(state) not in (4, 5):
            raise ValueError("an array of unknown state")
        shape, dtype, fortran, data = state[-4:]
        ok_shape = isinstance(shape, tuple) and all(isinstance(n, int) and n >= 0 for n in shape)
        if not ok_shape or len(shape) > 8 or not isinstance(dtype, _Dtype):
            raise ValueError(f"an array of shape {shape!r:.40} and dtype {dtype!r:.40}")
        count, dtype = math.prod(shape), dtype.numpy()
        order = "F" if fortran else "C"
        if dtype.kind == "O":
            if not isinstance(data, list) or len(data) != count:
                raise ValueError(f"an object array of shape {shape} without its {count} items")
            value = np.empty(count, object)
            value[:] = data
            self.value = value.reshape(shape, order=order)
            return
        if isinstance(data, str):  # a Python 2 pickle's str, read as latin-1
            data = data.encode("latin-1")
        if not isinstance(data, bytes) or len(data) != count * dtype.itemsize:
            raise ValueError(f"an array of shape {shape} ({dtype}) without its bytes")
        self.value = np.frombuffer(data, dtype).reshape(shape, order=order)  # read-only


def _latin1(text, encoding):
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise ValueError("bytes encoded otherwise than to latin-1")
    return text.encode("latin-1")


class _Unpickler(safe_pickle.Unpickler):
    def allowed(self, module, name):
        if module in _RECONSTRUCT and name == "_reconstruct":
            return _Array
        if module == "numpy" and name == "ndarray":
            return _NDARRAY
        if module == "numpy" and name == "dtype":
            return _Dtype
        if module == "_codecs" and name == "encode":
            return _latin1
        return super().allowed(module, name)


def _plain(value, depth=0):
    """`value` with every stand-in replaced by its array."""
    if depth > _MAX_DEPTH:
        raise ValueError(f"containers nested deeper than {_MAX_DEPTH}")
    if isinstance(value, _Array):
        if value.value is None:
            raise ValueError("an array without its state")
        value = value.value
        if value.dtype != object:
            return value
        flat = [_plain(item, depth + 1) for item in value.ravel()]
        return flat[0] if value.shape == () else flat
    if isinstance(value, dict):
        return {k: _plain(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v, depth + 1) for v in value]
    if isinstance(value, _Dtype):
        raise ValueError("a dtype where an array belongs")
    return value


def _load(path):
    with open(path, "rb") as f:
        version = np.lib.format.read_magic(f)
        if version == (1, 0):
            shape, _, dtype = np.lib.format.read_array_header_1_0(f)
        elif version == (2, 0):
            shape, _, dtype = np.lib.format.read_array_header_2_0(f)
        else:
            raise ValueError(f".npy format version {version} (1.0 or 2.0 hold a dictionary)")
        if dtype.kind != "O":
            raise UserError(
                f"{path} holds an array of {dtype} of shape {shape}, not a {{layer: [W, b]}} "
                "dictionary"
            )
        # The pickle is checked on a map of the file, then read from the file: its arrays'
        # bytes are copied once, into the arrays.
        with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
            result = _Unpickler(f, mapped, encoding="latin1").load()
    if not isinstance(result, _Array) or result.value is None or result.value.shape != shape:
        raise ValueError(f"the pickle does not hold the object array of shape {shape}")
    return _plain(result)


def _arrays(path, name, blobs):
    if isinstance(blobs, dict):  # some converters write {"weights": W, "biases": b}
        blobs = [blobs.get("weights"), blobs.get("biases")]
    if not isinstance(blobs, list):
        raise UserError(f"{path}: layer {name} holds a {type(blobs).__name__}, not [W, b]")
    arrays = [b for b in blobs if b is not None]
    for b in arrays:
        if not isinstance(b, np.ndarray) or b.dtype.kind not in "biuf":
            raise UserError(f"{path}: layer {name} holds a {type(b).__name__}, not an array")
    return [b.astype(np.float32, copy=False) for b in arrays]


def read_npy_dict(path):
    """`{layer: [arrays]}` of the dictionary `.npy` at `path`."""
    try:
        value = _load(path)
    except safe_pickle.Refused as err:
        raise UserError(
            f"{path} was refused: its pickle names {err}, which is not part of a dictionary "
            "of arrays"
        ) from None
    except OSError as err:
        raise UserError(f"{path} cannot be read: {err.strerror or err}") from None
    except (ValueError, EOFError, SyntaxError, TypeError, tokenize.TokenError,
            pickle.UnpicklingError) as e:  # fmt: skip
        text = " ".join(str(e).split())[:160] or type(e).__name__
        raise UserError(f"{path} is not a readable .npy weights dictionary: {text}") from None
    if not isinstance(value, dict):
        raise UserError(f"{path} holds a {type(value).__name__}, not a {{layer: [W, b]}} dict")
    return {str(name): _arrays(path, name, blobs) for name, blobs in value.items()}

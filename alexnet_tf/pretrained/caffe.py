"""A `.caffemodel`'s weights, decoded from protobuf's wire format (no Caffe needed).

A caffemodel is a binary `NetParameter` message (caffe.proto). Only these fields are
read; everything else (the net's settings, the data layers) is skipped:

| message | field | number |
|---|---|---|
| NetParameter | layer (LayerParameter), current | 100 |
| NetParameter | layers (V1LayerParameter), legacy | 2 |
| LayerParameter | name; blobs (BlobProto) | 1; 7 |
| V1LayerParameter | name; blobs (BlobProto) | 4; 6 |
| BlobProto | num, channels, height, width (legacy 4-D shape) | 1, 2, 3, 4 |
| BlobProto | data (packed float32); shape (BlobShape) | 5; 7 |
| BlobShape | dim (packed int64) | 1 |

Wire format: each field is a varint key `(number << 3) | type`, then a varint (type
0), 8 bytes (1), a varint length and that many bytes (2), or 4 bytes (5).
"""

import numpy as np

from alexnet_tf.errors import UserError

_NET_LAYER, _NET_LAYERS_V1 = 100, 2
_LAYER_NAME, _LAYER_BLOBS = 1, 7
_V1_NAME, _V1_BLOBS = 4, 6
_BLOB_LEGACY_DIMS = (1, 2, 3, 4)
_BLOB_DATA, _BLOB_SHAPE = 5, 7
_SHAPE_DIM = 1


class _Truncated(Exception):
    pass


def _varint(buf, pos, end):
    value, shift = 0, 0
    while True:
        if pos >= end:
            raise _Truncated(pos)
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7
        if shift > 63:
            raise ValueError(f"a varint longer than 10 bytes at byte {pos}")


def fields(buf, start=0, end=None):
    """Yields `(number, wire_type, value)` of the message in `buf[start:end]`: the value
    is an int (types 0, 1, 5) or a `(start, end)` span of `buf` (type 2)."""
    end = len(buf) if end is None else end
    pos = start
    while pos < end:
        key, pos = _varint(buf, pos, end)
        number, kind = key >> 3, key & 7
        if kind == 0:
            value, pos = _varint(buf, pos, end)
        elif kind in (1, 5):
            size = 8 if kind == 1 else 4
            if pos + size > end:
                raise _Truncated(pos)
            value = int.from_bytes(buf[pos : pos + size], "little")
            pos += size
        elif kind == 2:
            size, pos = _varint(buf, pos, end)
            if pos + size > end:
                raise _Truncated(pos)
            value = (pos, pos + size)
            pos += size
        else:
            raise ValueError(f"wire type {kind} (field {number}) at byte {pos}")
        if number == 0:
            raise ValueError(f"field number 0 at byte {pos}")
        yield number, kind, value


def _packed_ints(buf, span):
    out, pos = [], span[0]
    while pos < span[1]:
        value, pos = _varint(buf, pos, span[1])
        out.append(value)
    return out


def _blob(buf, span):
    legacy, dims, chunks, singles = {}, [], [], []
    for number, kind, value in fields(buf, *span):
        if number == _BLOB_DATA and kind == 2:
            chunks.append(np.frombuffer(buf, "<f4", (value[1] - value[0]) // 4, value[0]))
        elif number == _BLOB_DATA and kind == 5:  # unpacked floats, one field each
            singles.append(value)
        elif number == _BLOB_SHAPE and kind == 2:
            for n, k, v in fields(buf, *value):
                if n == _SHAPE_DIM:
                    dims.extend(_packed_ints(buf, v) if k == 2 else [v])
        elif number in _BLOB_LEGACY_DIMS and kind == 0:
            legacy[number] = value
    if singles:
        chunks.append(np.array(singles, np.uint32).view("<f4"))
    data = np.concatenate(chunks) if chunks else np.zeros(0, np.float32)
    if not dims:
        dims = [legacy.get(n, 0) for n in _BLOB_LEGACY_DIMS]
        # Legacy blobs pad to 4-D with ones in front: (1, 1, out, in) is an FC weight.
        while len(dims) > 1 and dims[0] in (0, 1):
            dims = dims[1:]
    if int(np.prod(dims)) != data.size:
        raise ValueError(f"a blob of shape {tuple(dims)} holds {data.size} values")
    return data.astype(np.float32).reshape(dims)


def _layer(buf, span, name_field, blobs_field):
    name, blobs = None, []
    for number, kind, value in fields(buf, *span):
        if number == name_field and kind == 2:
            name = bytes(buf[value[0] : value[1]]).decode("utf-8", "replace")
        elif number == blobs_field and kind == 2:
            blobs.append(_blob(buf, value))
    return name, blobs


def read_caffemodel(path):
    """`{layer name: [weights, bias, ...]}` of the layers with blobs, in Caffe's layout."""
    try:
        with open(path, "rb") as f:
            buf = memoryview(f.read())
    except OSError as err:
        raise UserError(f"{path} cannot be read: {err.strerror}") from None
    layers = {}
    try:
        for number, kind, value in fields(buf):
            if kind != 2 or number not in (_NET_LAYER, _NET_LAYERS_V1):
                continue
            if number == _NET_LAYER:
                name, blobs = _layer(buf, value, _LAYER_NAME, _LAYER_BLOBS)
            else:
                name, blobs = _layer(buf, value, _V1_NAME, _V1_BLOBS)
            if blobs:  # Caffe's names are optional: a layer without one gets its place
                layers[f"(unnamed layer {len(layers) + 1})" if name is None else name] = blobs
    except _Truncated as err:
        raise UserError(
            f"{path} is truncated: a field at byte {err.args[0]} runs past the end of the "
            f"file ({len(buf)} bytes)"
        ) from None
    except ValueError as err:
        raise UserError(f"{path} is not a caffemodel (binary NetParameter): {err}") from None
    if not layers:
        raise UserError(f"{path} is not a caffemodel: it holds no layer with weights")
    return layers

"""A minimal protobuf wire-format encoder for the tests' own `.caffemodel` files.

Written from the wire format's definition and caffe.proto's field numbers, separately
from the reader under test (alexnet_tf/pretrained/caffe.py), so that a file built here
checks the reader rather than mirroring it.
"""

import numpy as np


def varint(n):
    out = bytearray()
    while True:
        low = n & 0x7F
        n >>= 7
        if n:
            out.append(low | 0x80)
        else:
            out.append(low)
            return bytes(out)


def key(number, wire_type):
    return varint((number << 3) | wire_type)


def length_delimited(number, payload):
    return key(number, 2) + varint(len(payload)) + payload


def int_field(number, value):
    return key(number, 0) + varint(value)


def blob(array, legacy=False):
    """BlobProto: shape (field 7, BlobShape.dim field 1 packed) or legacy num/channels/
    height/width (fields 1-4, padded to 4-D with leading ones); data field 5 packed."""
    array = np.asarray(array, "<f4")
    if legacy:
        dims = (1,) * (4 - array.ndim) + array.shape
        head = b"".join(int_field(n, d) for n, d in zip((1, 2, 3, 4), dims, strict=True))
    else:
        dims = b"".join(varint(d) for d in array.shape)
        head = length_delimited(7, length_delimited(1, dims))
    return head + length_delimited(5, array.tobytes())


def layer(name, blobs, legacy=False, type_name="Convolution"):
    """LayerParameter (name 1, type 2, blobs 7) or V1LayerParameter (name 4, blobs 6)."""
    if legacy:
        body = length_delimited(4, name.encode()) + int_field(5, 4)
        body += b"".join(length_delimited(6, blob(b, legacy=True)) for b in blobs)
        return length_delimited(2, body)
    body = length_delimited(1, name.encode()) + length_delimited(2, type_name.encode())
    body += b"".join(length_delimited(7, blob(b)) for b in blobs)
    return length_delimited(100, body)


def net(layers, legacy=False, name="AlexNet"):
    """NetParameter bytes: name (field 1), a data layer without blobs, then `layers`
    ({name: [weights, bias]})."""
    out = length_delimited(1, name.encode())
    out += layer("data", [], legacy, "Input")
    for layer_name, blobs in layers.items():
        out += layer(layer_name, blobs, legacy)
    return out


CAFFE_SHAPES = {
    "conv1": (96, 3, 11, 11),
    "conv2": (256, 48, 5, 5),
    "conv3": (384, 256, 3, 3),
    "conv4": (384, 192, 3, 3),
    "conv5": (256, 192, 3, 3),
    "fc6": (4096, 256 * 2 * 2),
    "fc7": (4096, 4096),
    "fc8": (10, 4096),
}


def he(rng, shape, fan_in):
    return (rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)).astype(np.float32)


def random_layers(shapes, seed):
    """{name: [W, b]} in (out, in, ...) layout, He scale, biases about 1."""
    rng = np.random.default_rng(seed)
    return {
        name: [he(rng, shape, int(np.prod(shape[1:]))), rng.normal(0, 1, shape[0]).astype("f4")]
        for name, shape in shapes.items()
    }

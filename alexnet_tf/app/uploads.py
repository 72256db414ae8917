"""What the page accepts as a photo, checked on the bytes before anything decodes them,
and the pictures it sends back.

An upload is refused, with one sentence the page shows, when it is larger than
`MAX_BYTES` (the server checks the request's Content-Length before reading the body),
when it is not a JPEG or PNG file, or when its header declares more than `MAX_SIDE`
pixels a side or `MAX_PIXELS` pixels in all: a 20,000 x 20,000 PNG is a few kilobytes on
disk and 1.2 GB once decoded, so the size is read from the PNG's IHDR chunk or the
JPEG's start-of-frame marker, never by decoding.
"""

import base64
import struct

import numpy as np

from alexnet_tf.errors import UserError

MAX_BYTES = 20 * 2**20  # 20 MiB: any camera's JPEG fits
MAX_SIDE = 8000  # pixels, either side
MAX_PIXELS = 50_000_000

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# JPEG start-of-frame markers (baseline, progressive, lossless, arithmetic ...): C0-CF
# except C4 (Huffman tables), C8 (reserved) and CC (arithmetic conditioning).
_SOF = {m for m in range(0xC0, 0xD0)} - {0xC4, 0xC8, 0xCC}
# Markers without a length field: TEM, the restart markers, start of image.
_STANDALONE = {0x01, 0xD8} | set(range(0xD0, 0xD8))


def declared_size(data):
    """`(format, width, height)` from the header of the encoded image `data` (bytes):
    format "png" or "jpeg". UserError if it is neither or the header is cut short."""
    if data.startswith(PNG_SIGNATURE):
        # The first chunk is IHDR: length (4), type (4), width (4), height (4), big-endian.
        if len(data) < 24 or data[12:16] != b"IHDR":
            raise UserError("the PNG file is cut short before its size (no IHDR chunk)")
        width, height = struct.unpack(">II", data[16:24])
        return "png", width, height
    if data.startswith(b"\xff\xd8\xff"):
        return ("jpeg", *_jpeg_size(data))
    raise UserError(f"not a JPEG or PNG image (the file starts with {data[:8]!r})")


def _jpeg_size(data):
    i = 2
    while i + 4 <= len(data):
        if data[i] != 0xFF:
            raise UserError(f"the JPEG file is damaged (no marker at byte {i})")
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte before a marker
            i += 1
            continue
        if marker in _STANDALONE:
            i += 2
            continue
        if marker == 0xDA:  # start of scan: image data before any frame header
            break
        (length,) = struct.unpack(">H", data[i + 2 : i + 4])
        if marker in _SOF:
            if i + 9 > len(data):
                break
            height, width = struct.unpack(">HH", data[i + 5 : i + 9])
            return width, height
        i += 2 + length
    raise UserError("the JPEG file is cut short before its size (no start-of-frame marker)")


def check_upload(data):
    """The upload's `(format, width, height)`; UserError saying why it is refused."""
    if len(data) == 0:
        raise UserError("the upload is empty")
    if len(data) > MAX_BYTES:
        raise UserError(too_large(len(data)))
    kind, width, height = declared_size(data)
    if width == 0 or height == 0:
        raise UserError(f"the {kind.upper()} file declares an empty image ({width}x{height})")
    if max(width, height) > MAX_SIDE or width * height > MAX_PIXELS:
        raise UserError(
            f"the image is {width}x{height} pixels; the limit is {MAX_SIDE} a side and "
            f"{MAX_PIXELS // 1_000_000} million in all"
        )
    return kind, width, height


def too_large(size):
    """The sentence that refuses an upload of `size` bytes."""
    return f"the upload is {size / 2**20:.1f} MB; the limit is {MAX_BYTES // 2**20} MB"


def png_data_url(image):
    """`image` (H, W, 3) or (H, W) uint8, or float in [0, 1], as a `data:image/png` URL."""
    import tensorflow as tf

    image = np.asarray(image)
    if image.dtype != np.uint8:
        image = np.round(np.clip(image, 0.0, 1.0) * 255).astype(np.uint8)
    if image.ndim == 2:
        image = image[..., None]
    encoded = tf.io.encode_png(image).numpy()
    return "data:image/png;base64," + base64.b64encode(encoded).decode("ascii")


def stretched(image):
    """A network input (H, W, 3), any range, stretched to [0, 1] over all its channels
    together (so its colours keep their balance): how the page shows a preprocessed crop."""
    image = np.asarray(image, np.float32)
    low, high = float(image.min()), float(image.max())
    return (image - low) / max(high - low, 1e-8)

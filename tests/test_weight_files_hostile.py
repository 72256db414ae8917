"""Weight files from strangers: damaged, hostile or crafted to run code.

Each reader (`.caffemodel`, `.npy`, `.pth` zip and legacy) meets a few hundred files
mutated from a small valid one with a fixed seed (cut at a random byte, random bits
flipped, a size field set to a huge value). The only acceptable outcomes are the arrays
(well formed, none larger than the file could hold) or the project's one-line
`UserError`; never another exception, never more than MEMORY_LIMIT bytes allocated,
never more than TIME_LIMIT seconds. Cases that found bugs are kept by name below.
"""

import collections
import io
import os
import pathlib
import pickle
import pickletools
import re
import struct
import subprocess
import sys
import time
import tracemalloc
import zipfile
import zlib

import caffe_wire
import numpy as np
import pytest
from optional import TORCH_MISSING

from alexnet_tf.errors import UserError
from alexnet_tf.pretrained import convert
from alexnet_tf.pretrained.caffe import read_caffemodel
from alexnet_tf.pretrained.npy_dict import read_npy_dict
from alexnet_tf.pretrained.torch_file import read_state_dict

ROOT = pathlib.Path(__file__).resolve().parent.parent
CASES = 300  # mutated files per format
MEMORY_LIMIT = 16 << 20  # bytes traced at the peak of reading one file of a few KB
TIME_LIMIT = 2.0  # seconds to read one file
HUGE = (1 << 31, 1 << 32, 1 << 40, (1 << 63) - 1)


def torch_module():
    """PyTorch, which writes the `.pth` files here as torch.save does: the `.pth` cases
    skip without it, the `.caffemodel` and `.npy` ones run."""
    return pytest.importorskip("torch", reason=TORCH_MISSING)


def tiny_layers():
    """Caffe's layout, small: a grouped conv and an FC layer, {name: [W, b]}."""
    rng = np.random.default_rng(0)
    return {
        "conv1": [rng.normal(size=(4, 3, 3, 3)).astype("f4"), rng.normal(size=4).astype("f4")],
        "fc6": [rng.normal(size=(5, 8)).astype("f4"), rng.normal(size=5).astype("f4")],
    }


def caffemodel_bytes(legacy=False):
    return caffe_wire.net(tiny_layers(), legacy=legacy)


def npy_bytes():
    buffer = io.BytesIO()
    np.save(buffer, tiny_layers(), allow_pickle=True)
    return buffer.getvalue()


def pth_bytes(zip_format=True):
    torch = torch_module()
    keys = {"conv1": "features.0", "fc6": "classifier.1"}  # torchvision's names
    state = {
        f"{keys[name]}.{part}": torch.from_numpy(array)
        for name, (w, b) in tiny_layers().items()
        for part, array in (("weight", w), ("bias", b))
    }
    buffer = io.BytesIO()
    torch.save(state, buffer, _use_new_zipfile_serialization=zip_format)
    return buffer.getvalue()


def check_layers(result, size):
    """A reader's `{name: [arrays]}`: well formed, and no more values than `size` bytes
    of float32 hold."""
    assert isinstance(result, dict) and result
    arrays = [a for blobs in result.values() for a in blobs]
    assert all(isinstance(k, str) for k in result)
    assert all(isinstance(a, np.ndarray) and a.dtype == np.float32 for a in arrays)
    assert sum(a.nbytes for a in arrays) <= size


def check_state(result, size):
    assert isinstance(result, dict)
    assert all(isinstance(k, str) and isinstance(a, np.ndarray) for k, a in result.items())
    assert sum(a.size for a in result.values()) <= size


READERS = {
    "caffe": (read_caffemodel, check_layers),
    "npy": (read_npy_dict, check_layers),
    "torchvision": (read_state_dict, check_state),
}


def refusal(call):
    """The one line of the UserError `call()` raises, or None if it returns; fails on
    any other exception, and on more than TIME_LIMIT seconds or MEMORY_LIMIT bytes."""
    tracemalloc.start()
    start = time.perf_counter()
    try:
        result, message = call(), None
    except UserError as err:
        result, message = None, str(err)
    finally:
        seconds = time.perf_counter() - start
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    assert seconds < TIME_LIMIT, seconds
    assert peak < MEMORY_LIMIT, peak
    if message is not None:
        assert message and "\n" not in message
    return result, message


def outcome(fmt, path):
    """'read' or 'refused' for the file at `path` by the reader of `fmt`, which then must
    pass the importer's checks, which refuse the small layers in one line."""
    read, check = READERS[fmt]
    result, message = refusal(lambda: read(str(path)))
    if message is None:
        check(result, os.path.getsize(path))
    else:
        assert str(path) in message, message
    _, message = refusal(lambda: convert.read(str(path), fmt))
    assert message is not None and str(path) in message, message
    return "read" if result is not None else "refused"


# --- mutations ------------------------------------------------------------------------


def varint(n):
    return caffe_wire.varint(n)


def truncate(data, rng):
    return data[: int(rng.integers(0, len(data)))]


def flip_bits(data, rng):
    out = bytearray(data)
    for _ in range(int(rng.integers(1, 9))):
        bit = int(rng.integers(0, len(out) * 8))
        out[bit // 8] ^= 1 << (bit % 8)
    return bytes(out)


def huge_at(data, rng, positions, width):
    """`width` bytes at one of `positions` replaced by a huge little-endian integer (or a
    huge varint where width is 0, inserted in place of the varint there)."""
    out = bytearray(data)
    pos = int(rng.choice(positions))
    value = int(rng.choice(HUGE))
    if width == 0:
        end = pos
        while end < len(out) and out[end] & 0x80:
            end += 1
        out[pos : end + 1] = varint(value)
    else:
        out[pos : pos + width] = (value % (1 << (8 * width))).to_bytes(width, "little")
    return bytes(out)


def caffe_varints(data):
    """Offsets of the caffemodel's varints that say a size: each type-2 field's length,
    each type-0 value (a legacy blob's num, channels, height, width) and each dim packed
    in a BlobShape, found by walking the messages as protobuf writes them (NetParameter
    > layer > blob > shape)."""
    found = []

    def walk(start, end, depth, packed):
        pos = start
        while pos < end:
            if packed:
                found.append(pos)
                _, pos = read_varint(data, pos)
                continue
            key, pos = read_varint(data, pos)
            if key & 7 == 0:
                found.append(pos)
                _, pos = read_varint(data, pos)
            elif key & 7 == 2:
                found.append(pos)
                size, pos = read_varint(data, pos)
                if depth < 4 and (key >> 3) in (100, 2, 6, 7, 1):
                    walk(pos, pos + size, depth + 1, depth == 3 and key >> 3 == 1)
                pos += size
            else:
                return

    walk(0, len(data), 0, False)
    return found


def read_varint(data, pos):
    value, shift = 0, 0
    while True:
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return value, pos


def pickle_lengths(data, start):
    """Offsets of the length fields of the pickle at `data[start:]` (4 or 8 bytes)."""
    found = []
    for opcode, _, pos in pickletools.genops(io.BytesIO(data[start:])):
        if opcode.name in ("BINBYTES", "BINUNICODE", "LONG4", "BINSTRING", "LONG_BINPUT"):
            found.append((start + pos + 1, 4))
        elif opcode.name in ("BINBYTES8", "BINUNICODE8", "FRAME"):
            found.append((start + pos + 1, 8))
    return found


def zip_sizes(data):
    """Offsets of the size fields of every local and central header of a zip file."""
    found = []
    for signature, fields in ((b"PK\x03\x04", (18, 22)), (b"PK\x01\x02", (20, 24))):
        pos = data.find(signature)
        while pos >= 0:
            found += [(pos + f, 4) for f in fields]
            pos = data.find(signature, pos + 1)
    return found


def mutants(data, rng, sized):
    """`CASES` files from `data`: cut, flipped, or a size field from `sized` (a list of
    (offset, width), width 0 for a varint) set huge."""
    for case in range(CASES):
        kind = case % 3
        if kind == 0:
            yield "truncate", truncate(data, rng)
        elif kind == 1:
            yield "flip", flip_bits(data, rng)
        else:
            pos, width = sized[int(rng.integers(0, len(sized)))]
            yield "huge", huge_at(data, rng, [pos], width)


def npy_payload_start(data):
    f = io.BytesIO(data)
    np.lib.format.read_magic(f)
    np.lib.format.read_array_header_1_0(f)
    return f.tell()


class Skimming(pickle.Unpickler):
    """Walks a torch pickle without torch: every name makes a dict, every storage None."""

    def find_class(self, module, name):
        return lambda *args: {}

    def persistent_load(self, pid):
        return None


def legacy_counts(data):
    """Offsets of the 8-byte element counts that follow the legacy stream's pickles."""
    f = io.BytesIO(data)
    for _ in range(5):
        Skimming(f).load()
    found, pos = [], f.tell()
    while pos + 8 <= len(data):
        found.append((pos, 8))
        (count,) = struct.unpack("<q", data[pos : pos + 8])
        pos += 8 + 4 * count
    return found


FORMATS = {
    "caffemodel": (
        lambda: caffemodel_bytes(),
        lambda d: [(p, 0) for p in caffe_varints(d)],
        "caffe",
    ),
    "caffemodel_v1": (
        lambda: caffemodel_bytes(legacy=True),
        lambda d: [(p, 0) for p in caffe_varints(d)],
        "caffe",
    ),
    "npy": (npy_bytes, lambda d: pickle_lengths(d, npy_payload_start(d)), "npy"),
    "pth_zip": (lambda: pth_bytes(True), zip_sizes, "torchvision"),
    # torch.save's legacy keys are memory addresses: written here, the bytes are the same
    # in every run, and so are the mutations.
    "pth_legacy": (lambda: legacy_pth(tiny_state()), legacy_counts, "torchvision"),
}


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_mutated_files_are_read_or_refused_in_one_line(tmp_path, fmt):
    build, sized, read = FORMATS[fmt]
    data = build()
    original = tmp_path / "original"
    original.write_bytes(data)
    assert outcome(read, original) == "read"
    rng = np.random.default_rng(2026)
    counts = {}
    for i, (kind, mutated) in enumerate(mutants(data, rng, sized(data))):
        path = tmp_path / f"{fmt}-{i}-{kind}"
        path.write_bytes(mutated)
        verdict = outcome(read, path)
        counts[kind, verdict] = counts.get((kind, verdict), 0) + 1
        path.unlink()
    assert sum(counts.values()) == CASES
    print(fmt, sorted(counts.items()))


# --- files written from the formats' definitions --------------------------------------

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C  # torch/serialization.py's MAGIC_NUMBER


class StorageRef:
    def __init__(self, key, numel):
        self.key, self.numel = key, numel


class TensorRecord:
    """Pickles as torch does a tensor: `_rebuild_tensor_v2(storage, offset, size,
    stride, requires_grad, backward_hooks)`."""

    def __init__(self, storage, offset, size, stride):
        self.args = storage, offset, tuple(size), tuple(stride)

    def __reduce__(self):
        torch = torch_module()
        return torch._utils._rebuild_tensor_v2, (*self.args, False, collections.OrderedDict())


class LegacyPickler(pickle.Pickler):
    def persistent_id(self, obj):
        if isinstance(obj, StorageRef):  # (tag, type, key, location, size, view metadata)
            return ("storage", torch_module().FloatStorage, obj.key, "cpu", obj.numel, None)
        return None


def legacy_pth(arrays, records=None, keys=None, counts=None):
    """torch.save's legacy stream of `{name: float32 array}`: five pickles (magic,
    protocol 1001, system info, the state_dict, the storage keys), then each storage as
    an int64 element count and its bytes. `records`, `keys` and `counts` replace what
    would be written, for the hostile files."""
    out = io.BytesIO()
    info = {"protocol_version": 1001, "little_endian": True, "type_sizes": {"int": 4}}
    for value in (LEGACY_MAGIC, 1001, info):
        pickle.dump(value, out, protocol=2)
    refs = {name: StorageRef(str(i), a.size) for i, (name, a) in enumerate(arrays.items())}
    if records is None:
        records = {
            name: TensorRecord(refs[name], 0, a.shape, [s // 4 for s in a.strides])
            for name, a in arrays.items()
        }
    LegacyPickler(out, protocol=2).dump(collections.OrderedDict(records))
    pickle.dump([r.key for r in refs.values()] if keys is None else keys, out, protocol=2)
    for i, a in enumerate(arrays.values()):
        count = a.size if counts is None else counts[i]
        out.write(struct.pack("<q", count) + np.ascontiguousarray(a, "<f4").tobytes())
    return out.getvalue()


def tiny_state():
    keys = {"conv1": "features.0", "fc6": "classifier.1"}  # torchvision's names
    return {
        f"{keys[name]}.{part}": array
        for name, (w, b) in tiny_layers().items()
        for part, array in (("weight", w), ("bias", b))
    }


def test_the_legacy_writer_writes_what_torch_loads_and_the_reader_reads_it(tmp_path):
    path = tmp_path / "legacy.pth"
    path.write_bytes(legacy_pth(tiny_state()))
    loaded = torch_module().load(path, weights_only=True)
    ours = read_state_dict(str(path))
    for name, array in tiny_state().items():
        np.testing.assert_array_equal(loaded[name].numpy(), array)
        np.testing.assert_array_equal(ours[name], array)


def local_header(name, method, crc, packed, size):
    return struct.pack("<4s5H3I2H", b"PK\x03\x04", 20, 0, method, 0, 0, crc, packed, size,
                       len(name), 0) + name  # fmt: skip


def zip_archive(entries):
    """A zip file of `entries` [(name, method, crc, packed bytes, size)], written from
    the format's definition (APPNOTE: local headers, central directory, end record)."""
    out, central = bytearray(), bytearray()
    for name, method, crc, packed, size in entries:
        name = name.encode()
        offset = len(out)
        out += local_header(name, method, crc, len(packed), size) + packed
        fields = (20, 20, 0, method, 0, 0, crc, len(packed), size, len(name), 0, 0, 0, 0, 0)
        central += struct.pack("<4s6H3I5H2I", b"PK\x01\x02", *fields, offset) + name
    end = struct.pack("<4s4H2IH", b"PK\x05\x06", 0, 0, len(entries), len(entries),
                      len(central), len(out), 0)  # fmt: skip
    return bytes(out + central + end)


def zip_bomb_pth(declared_size=None):
    """A torch zip whose first storage entry inflates to 2 GiB of zeros (2 MB packed: a
    16 MiB block of deflate repeated), its central directory declaring `declared_size`
    (default: the truth)."""
    with zipfile.ZipFile(io.BytesIO(pth_bytes(True))) as archive:
        entries = [
            (n, 0, zlib.crc32(archive.read(n)), archive.read(n), archive.getinfo(n).file_size)
            for n in archive.namelist()
        ]
    chunk, count = bytes(16 << 20), 128
    packer = zlib.compressobj(9, zlib.DEFLATED, -15)
    packer.compress(chunk)
    packer.flush(zlib.Z_FULL_FLUSH)
    block = packer.compress(chunk) + packer.flush(zlib.Z_FULL_FLUSH)  # after a full flush
    body = block * count + packer.flush()
    crc = 0
    for _ in range(count):
        crc = zlib.crc32(chunk, crc)
    i = next(i for i, e in enumerate(entries) if e[0].endswith("data/0"))
    size = len(chunk) * count if declared_size is None else declared_size
    entries[i] = (entries[i][0], zipfile.ZIP_DEFLATED, crc, body, size)
    return zip_archive(entries)


class RunsCode:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def npy_with_pickle(payload):
    """A `.npy` of one 0-d object array whose pickle is `payload` (header written from
    the format's definition: magic, version 1.0, little-endian header length, a dict
    literal padded with spaces to a multiple of 64 bytes, ending in a newline)."""
    return npy_with_header("{'descr': '|O', 'fortran_order': False, 'shape': (), }") + payload


def npy_with_header(text):
    pad = 64 - (10 + len(text) + 1) % 64
    header = (text + " " * pad + "\n").encode("latin-1")
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header


def pickle_bytes(value, protocol=3):
    return pickle.dumps(value, protocol=protocol)


def replace_length(data, opcode_name, value, width):
    """`data` (a .npy) with the first `opcode_name` of its pickle declaring `value`."""
    start = npy_payload_start(data)
    for opcode, _, pos in pickletools.genops(io.BytesIO(data[start:])):
        if opcode.name == opcode_name:
            at = start + pos + 1
            return data[:at] + value.to_bytes(width, "little") + data[at + width :]
    raise AssertionError(opcode_name)


def npy_named(module, name):
    """A `.npy` whose pickle asks for `module.name` (a GLOBAL opcode), called on 1."""
    return npy_with_pickle(f"\x80\x02c{module}\n{name}\nK\x01\x85R.".encode("latin-1"))


def with_header(data, fmt_fields, value):
    """The zip `data` with the 4-byte fields at `fmt_fields` [(signature, offset)] of
    every header set to `value`."""
    out = bytearray(data)
    for signature, offset in fmt_fields:
        pos = out.find(signature)
        while pos >= 0:
            out[pos + offset : pos + offset + 4] = struct.pack("<I", value)
            pos = out.find(signature, pos + 1)
    return bytes(out)


def huge_tensor():
    """A tensor of 10**12 values on a storage of 4: stride 0 repeats the first."""
    record = TensorRecord(StorageRef("0", 4), 0, (10**6, 10**6), (0, 0))
    return legacy_pth({"w": np.zeros(4, "f4")}, records={"features.0.weight": record})


def cut_before_last_count():
    data = legacy_pth(tiny_state())
    return data[: len(data) - 5 * 4 - 4]  # the last storage is fc6's 5 biases


# Each was found by the fuzz (or built from its findings) and failed on the first
# readers: a traceback from inside pickle, numpy, zipfile or struct, or gigabytes
# allocated for a file of a few KB.
REGRESSIONS = {
    "npy_truncated_pickle": ("npy", lambda: npy_bytes()[:-40], "not a readable .npy"),
    "npy_bytes_declaring_4GiB": (
        "npy",
        lambda: replace_length(npy_bytes(), "BINBYTES", (1 << 32) - 1, 4),
        "damaged pickle",
    ),
    "npy_frame_declaring_4GiB": (
        "npy",
        lambda: replace_length(npy_bytes(), "FRAME", 1 << 32, 8),
        "frame of 4294967296 bytes",
    ),
    "npy_memo_index_4G": (
        "npy",
        lambda: npy_with_pickle(b"\x80\x02K\x01r" + struct.pack("<I", 0xFFFFFFF0) + b"."),
        "memo index",
    ),
    "npy_misspelled_module": (
        "npy",
        lambda: npy_named("numpy._core.multiarsay", "_reconstruct"),
        "names numpy._core.multiarsay._reconstruct",
    ),
    "npy_header_unbalanced": (
        "npy",
        lambda: npy_with_header("{'descr': '|O', 'fortran_order': False, 'shape': ((), }"),
        "not a readable .npy",
    ),
    "npy_header_declaring_8TB_of_floats": (
        "npy",
        lambda: npy_with_header(
            "{'descr': '<f8', 'fortran_order': False, 'shape': (1000000000000,), }"
        ),
        r"holds an array of float64 of shape \(1000000000000,\), not a",
    ),
    "npy_calls_ndarray_of_a_TiB": (
        "npy",
        lambda: npy_with_pickle(
            b"\x80\x02cnumpy\nndarray\n\x8a\x06\x00\x00\x00\x00\x00\x01\x85\x85R."
        ),
        "not a readable .npy",
    ),
    "zip_entry_declaring_2GiB": (
        "torchvision",
        lambda: with_header(pth_bytes(True), [(b"PK\x01\x02", 20), (b"PK\x01\x02", 24)], 1 << 31),
        "declares 2147483648 bytes",
    ),
    "zip_unknown_compression": (
        "torchvision",
        lambda: with_header(pth_bytes(True), [(b"PK\x01\x02", 10), (b"PK\x03\x04", 8)], 99),
        "not a complete PyTorch",
    ),
    "zip_bomb_2GiB": ("torchvision", zip_bomb_pth, "declares 2147483648 bytes"),
    "legacy_storage_count_2_40": (
        "torchvision",
        lambda: legacy_pth(tiny_state(), counts=[1 << 40] * 4),
        "runs past the end of the file",
    ),
    "legacy_keys_not_a_list": (
        "torchvision",
        lambda: legacy_pth(tiny_state(), keys=7),
        "no list of storage keys",
    ),
    "legacy_tensor_of_10_12_values_on_4": (
        "torchvision",
        huge_tensor,
        r"size \(1000000, 1000000\) runs past its storage",
    ),
    "legacy_cut_before_a_count": ("torchvision", cut_before_last_count, "ends before"),
}


@pytest.mark.parametrize("case", list(REGRESSIONS))
def test_found_cases_are_refused_in_one_line(tmp_path, case):
    fmt, build, pattern = REGRESSIONS[case]
    path = tmp_path / case
    path.write_bytes(build())
    read, _ = READERS[fmt]
    _, message = refusal(lambda: read(str(path)))
    assert message is not None and re.search(pattern, message), message
    assert message.startswith(str(path)), message


def test_a_caffemodel_with_a_nameless_layer_is_refused_naming_the_missing_one(tmp_path):
    nameless = caffe_wire.length_delimited(
        100, caffe_wire.length_delimited(7, caffe_wire.blob(np.zeros(3, "f4")))
    )
    path = tmp_path / "nameless.caffemodel"
    path.write_bytes(caffe_wire.net({"fc6": tiny_layers()["fc6"]}) + nameless)
    assert sorted(read_caffemodel(str(path))) == ["(unnamed layer 2)", "fc6"]
    with pytest.raises(UserError, match=r"layer conv1 is missing .* has: \(unnamed layer 2\), fc6"):
        convert.read(str(path))


def test_a_zip_bomb_declaring_a_small_size_is_refused(tmp_path):
    path = tmp_path / "bomb.pth"
    path.write_bytes(zip_bomb_pth(declared_size=4 * 4 * 3 * 3 * 3))  # conv1's true size
    _, message = refusal(lambda: read_state_dict(str(path)))
    assert message is not None and "not a complete PyTorch state_dict" in message, message


def test_an_npy_whose_pickle_would_run_code_is_refused_before_it_runs(tmp_path):
    marker = tmp_path / "ran"
    path = tmp_path / "bvlc_alexnet.npy"
    path.write_bytes(npy_with_pickle(pickle_bytes(RunsCode(marker))))
    with pytest.raises(UserError, match=r"refused: its pickle names posix\.system"):
        read_npy_dict(str(path))
    assert not marker.exists()


def test_a_python2_era_npy_dictionary_is_read(tmp_path):
    """Protocol 2, NumPy 1's module name, dtype arguments as ints and array bytes as
    `_codecs.encode(text, "latin1")`: what Python 3 writes at protocol 2, with the
    module renamed as NumPy 1 wrote it."""
    layers = tiny_layers()
    payload = pickle_bytes(np.asarray(layers | {}, dtype=object), protocol=2)
    payload = payload.replace(b"numpy._core.multiarray", b"numpy.core.multiarray")
    path = tmp_path / "old.npy"
    path.write_bytes(npy_with_pickle(payload))
    read = read_npy_dict(str(path))
    assert sorted(read) == sorted(layers)
    for name, blobs in layers.items():
        for ours, theirs in zip(read[name], blobs, strict=True):
            np.testing.assert_array_equal(ours, theirs)


def test_np_save_dictionaries_are_read(tmp_path):
    path = tmp_path / "weights.npy"
    layers = tiny_layers()
    layers["fc6"] = {"weights": layers["fc6"][0].astype(np.float64), "biases": layers["fc6"][1]}
    np.save(path, layers, allow_pickle=True)
    read = read_npy_dict(str(path))
    np.testing.assert_array_equal(read["conv1"][0], tiny_layers()["conv1"][0])
    np.testing.assert_array_equal(read["fc6"][0], tiny_layers()["fc6"][0])
    assert all(a.dtype == np.float32 for blobs in read.values() for a in blobs)
    fortran = tmp_path / "fortran.npy"
    np.save(fortran, {"fc6": [np.asfortranarray(tiny_layers()["fc6"][0])]}, allow_pickle=True)
    np.testing.assert_array_equal(read_npy_dict(str(fortran))["fc6"][0], tiny_layers()["fc6"][0])
    plain = tmp_path / "plain.npy"
    np.save(plain, np.zeros((2, 3), np.float32))
    with pytest.raises(UserError, match=r"holds an array of float32 of shape \(2, 3\), not a"):
        read_npy_dict(str(plain))


def run_import(path, tmp_path, *flags):
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "alexnet_tf.import_weights",
            str(path),
            "--output",
            str(tmp_path / "out"),
            *flags,
        ],  # fmt: skip
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
    )


@pytest.mark.parametrize(
    "name, build, pattern",
    [
        ("cut.caffemodel", lambda: caffemodel_bytes()[:-7], "truncated"),
        ("bvlc_alexnet.npy", None, r"names posix\.system"),
        ("bomb.pth", zip_bomb_pth, "declares 2147483648 bytes"),
    ],
    ids=["caffemodel", "npy", "pth"],
)
def test_the_command_refuses_a_hostile_file_in_one_line_status_2(tmp_path, name, build, pattern):
    marker = tmp_path / "ran"
    path = tmp_path / name
    path.write_bytes(build() if build else npy_with_pickle(pickle_bytes(RunsCode(marker))))
    done = run_import(path, tmp_path)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), done.stderr
    assert re.search(pattern, lines[0]), lines[0]
    assert not marker.exists()

"""A run's model as files other runtimes load: ONNX, LiteRT, OpenVINO, and a SavedModel.

Every exported model takes the same input whatever the run's convention, so one client
serves a trained run, a Caffe import and a torchvision import alike: float32 (N, S, S, 3),
RGB pixel values 0-255 of the centre S x S crop of the image whose shorter side was scaled
to R and centre-cropped to R x R (S, R: the run's `image_size` and `resize`). The run's
own normalisation (its mean image or channel mean, its std, BGR for Caffe) is a part of
the exported graph (`pixels_model`), because a per-pixel mean image does not fit a few
numbers in a JSON file. The output is the logits (N, classes).

Beside each exported file a JSON file (`sidecar_path`) says so: the input's shape, size,
resize, channel order, scale, mean and std (a client computes
`(pixels / 255 * scale - mean) / std` in that channel order: here raw pixels, `scale` 255,
mean 0, std 1), the class names, and the convention folded into the graph.

Formats (docs/DEPLOY.md): `onnx` (Keras' ONNX export, tf2onnx), `litert` (Keras' LiteRT
export, TF's converter; `quantize` float16 or int8 calibrated on images), `openvino`
(OpenVINO's converter reading the SavedModel; weights kept float32), `saved_model` (the
JPEG-bytes-in, top-5-out `serving_default` signature of `export.serving_function` for
TF Serving, and a `logits` signature taking the pixels).
"""

import os
import tempfile

import keras
import numpy as np

from alexnet_tf.errors import UserError
from alexnet_tf.evaluation import export

FORMATS = ("saved_model", "onnx", "litert", "openvino")
QUANTIZE = ("none", "float16", "int8")
EXTENSION = {"saved_model": "", "onnx": ".onnx", "litert": ".tflite", "openvino": ".xml"}
# Where each format's converter comes from (requirements-export.txt pins them).
NEEDS = {"onnx": ("tf2onnx", "onnx"), "openvino": ("openvino",), "litert": (), "saved_model": ()}
INPUT_NAME = "pixels"


def pixels_model(model, data_cfg, stats):
    """`model` behind the run's normalisation: RGB 0-255 crops (N, S, S, 3) -> logits."""
    size = data_cfg.image_size
    mean = stats.center_mean(data_cfg.mean, size).astype(np.float32)  # (S, S, 3) or (3,)
    scale = stats.scale(data_cfg.normalize).astype(np.float32)  # (3,)
    pixels = keras.Input((size, size, 3), name=INPUT_NAME)
    x = (pixels - mean) * scale
    if data_cfg.channel_order == "bgr":  # a Caffe import: the channels reversed last
        x = keras.ops.flip(x, axis=-1)
    return keras.Model(pixels, model(x), name="alexnet_pixels")


def input_record(data_cfg, stats, class_names, fmt, quantize, family):
    """The sidecar JSON's content: what the exported file takes and returns."""
    return {
        "format": fmt,
        "quantize": None if quantize == "none" else quantize,
        "input": {
            "name": INPUT_NAME,
            "shape": [None, data_cfg.image_size, data_cfg.image_size, 3],
            "layout": "NHWC",
            "dtype": "float32",
            "encoded_images": fmt == "saved_model",  # serving_default takes the bytes
            "resize": data_cfg.resize,
            "size": data_cfg.image_size,
            "channel_order": "rgb",
            "scale": 255.0,
            "mean": [0.0, 0.0, 0.0],
            "std": [1.0, 1.0, 1.0],
            "preprocess": (
                f"shorter side to {data_cfg.resize} px (bilinear), centre "
                f"{data_cfg.resize}x{data_cfg.resize} square, centre "
                f"{data_cfg.image_size}x{data_cfg.image_size} crop; then "
                "(pixels / 255 * scale - mean) / std in channel_order"
            ),
        },
        "output": {"values": "logits", "shape": [None, len(class_names)]},
        "class_names": list(class_names),
        "inside_the_model": {
            "family": family,
            "mean": data_cfg.mean,
            "normalize": data_cfg.normalize,
            "channel_mean_0_255": [float(v) for v in stats.channel_mean],
            "channel_std_0_255": [float(v) for v in stats.channel_std],
            "channel_order": data_cfg.channel_order,
        },
    }


def sidecar_path(output):
    """The JSON beside `output`: its name plus `.json` (alexnet.onnx.json, saved_model.json)."""
    return output.rstrip(os.sep) + ".json"


def check_request(fmt, output, quantize, calibration):
    """UserError for flags that do not fit together, before any heavy work."""
    ext = EXTENSION[fmt]
    if ext and not output.endswith(ext):
        raise UserError(f"--output {output}: --format {fmt} writes a {ext} file")
    if quantize != "none" and fmt != "litert":
        raise UserError(f"--quantize {quantize} is for --format litert only")
    if quantize == "int8" and not calibration:
        raise UserError("--quantize int8 needs --data_dir: images to calibrate it on")
    parent = os.path.dirname(os.path.abspath(output))
    if not os.path.isdir(parent):
        raise UserError(f"--output {output}: folder {parent} does not exist")
    missing = [name for name in NEEDS[fmt] if not _importable(name)]
    if missing:
        raise UserError(
            f"--format {fmt} needs {', '.join(missing)}: "
            "pip install -r requirements-export.txt -c constraints.txt"
        )


def _importable(name):
    import importlib.util

    return importlib.util.find_spec(name) is not None


def export_model(model, data_cfg, stats, class_names, fmt, output, quantize="none", **kw):
    """Writes `model` (a plain float32 Keras model of the run) as `fmt` to `output`, and
    the sidecar JSON; returns the JSON record. `kw`: `calibration` (an iterable of RGB
    0-255 crops (S, S, 3), for int8) and `family` (the run's: trained, caffe, ...)."""
    import tensorflow as tf

    pixels = pixels_model(model, data_cfg, stats)
    spec = [tf.TensorSpec([None, data_cfg.image_size, data_cfg.image_size, 3], tf.float32)]
    if fmt == "saved_model":
        _write_saved_model(model, pixels, data_cfg, stats, class_names, output)
    elif fmt == "onnx":
        pixels.export(output, format="onnx", verbose=False, input_signature=spec)
    elif fmt == "litert":
        options = litert_options(quantize, kw.get("calibration"))
        pixels.export(output, format="litert", verbose=False, input_signature=spec, **options)
    elif fmt == "openvino":
        _write_openvino(pixels, spec, output)
    else:
        raise UserError(f"--format {fmt} is not one of {', '.join(FORMATS)}")
    record = input_record(data_cfg, stats, class_names, fmt, quantize, kw.get("family"))
    record["file"] = os.path.basename(output.rstrip(os.sep))
    from alexnet_tf.atomic import write_json

    write_json(sidecar_path(output), record)
    return record


def litert_options(quantize, calibration=None):
    """TF's converter settings for `quantize`: none, float16 (weights halved) or int8
    (weights and activations, ranges calibrated on `calibration`; input and output stay
    float32 so the client is the same)."""
    import tensorflow as tf

    if quantize == "none":
        return {}
    if quantize == "float16":
        return {
            "optimizations": [tf.lite.Optimize.DEFAULT],
            "target_spec": {"supported_types": [tf.float16]},
        }
    crops = [np.asarray(c, np.float32)[None] for c in calibration]
    if not crops:
        raise UserError("--quantize int8: no images to calibrate on")
    return {
        "optimizations": [tf.lite.Optimize.DEFAULT],
        "representative_dataset": lambda: ([c] for c in crops),
    }


def _write_saved_model(model, pixels, data_cfg, stats, class_names, output):
    import tensorflow as tf

    serve, signature = export.serving_function(model, data_cfg, stats, class_names)
    archive = keras.export.ExportArchive()
    archive.track(pixels)
    archive.add_endpoint("serving_default", serve, input_signature=signature)
    size = data_cfg.image_size
    archive.add_endpoint(
        "logits",
        lambda x: pixels(x, training=False),
        input_signature=[tf.TensorSpec([None, size, size, 3], tf.float32, name=INPUT_NAME)],
    )
    archive.write_out(output, verbose=False)


def _write_openvino(pixels, spec, output):
    """OpenVINO's converter on the pixels model's SavedModel; weights written float32
    (`save_model` halves them to float16 unless told not to)."""
    import openvino as ov

    with tempfile.TemporaryDirectory() as folder:
        pixels.export(folder, format="tf_saved_model", verbose=False, input_signature=spec)
        converted = ov.convert_model(folder)
        ov.save_model(converted, output, compress_to_fp16=False)


def center_crops(paths, data_cfg):
    """The RGB 0-255 centre crops (N, S, S, 3) float32 the exported models take, of the
    image files at `paths`, made with the run's own decode and resize."""
    import tensorflow as tf

    from alexnet_tf.data import image_ops

    resize, size = data_cfg.resize, data_cfg.image_size
    out = []
    for path in paths:
        image = image_ops.resize_shorter(
            image_ops.decode(tf.io.read_file(path)), resize, data_cfg.antialias_below
        )
        out.append(image_ops.center_crop(image_ops.center_crop(image, resize), size).numpy())
    return np.stack(out).astype(np.float32) if out else np.zeros((0, size, size, 3), np.float32)


def calibration_folder(data_dir):
    """Where int8 calibration images come from: `data_dir/train` if there is one (so that
    `--report`'s val/ images are not among them), else all of `data_dir`."""
    train = os.path.join(data_dir, "train")
    return train if os.path.isdir(train) else data_dir


def image_files(folder, limit=None):
    """Image files under `folder` (recursively, sorted); at most `limit`, spread evenly."""
    found = sorted(
        os.path.join(root, name)
        for root, _, names in os.walk(folder)
        for name in names
        if name.lower().endswith((".jpg", ".jpeg", ".png"))
    )
    if limit and len(found) > limit:
        found = [found[i] for i in np.linspace(0, len(found) - 1, limit).astype(int)]
    return found

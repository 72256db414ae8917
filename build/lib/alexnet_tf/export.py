"""`python -m alexnet_tf.export --model_dir RUN --format FORMAT --output PATH`.

Writes a run's model (a trained run or an imported Caffe/torchvision folder) for another
runtime, and beside it PATH.json: the input it takes and the class names.

    --format onnx          NAME.onnx     onnxruntime
    --format litert        NAME.tflite   LiteRT's interpreter (--quantize float16 | int8)
    --format openvino      NAME.xml      OpenVINO runtime (and NAME.bin)
    --format saved_model   FOLDER        TF Serving: JPEG bytes in, top 5 out ("logits": pixels in)

Every file takes float32 (N, S, S, 3): the RGB pixel values 0-255 of the centre S x S
crop of the image with its shorter side scaled to R and centre-cropped to R x R, and
returns logits. The run's normalisation is inside. `--quantize int8` calibrates on
`--data_dir`'s images. `--report` then runs the file in its runtime on the run's
validation images (or `--data_dir`'s val/) and prints its top-1 agreement with the Keras
model, the largest difference in probability, its size and its single-image latency.
The runtimes and converters: pip install -r requirements-export.txt -c constraints.txt.
docs/DEPLOY.md has a client per runtime.
"""

import json
import os
import sys

from absl import flags

from alexnet_tf.cli import app
from alexnet_tf.config import RUN_FILE
from alexnet_tf.errors import UserError

REPORT_IMAGES = 1000


def define_flags(fv):
    flags.DEFINE_string(
        "model_dir", None, "The run (or imported) folder to export.", flag_values=fv
    )
    flags.DEFINE_enum(
        "format", None, ["saved_model", "onnx", "litert", "openvino"], "Target.", flag_values=fv
    )
    flags.DEFINE_string("output", None, "The file (folder for saved_model).", flag_values=fv)
    flags.DEFINE_enum(
        "quantize", "none", ["none", "float16", "int8"], "LiteRT only.", flag_values=fv
    )
    flags.DEFINE_string(
        "data_dir",
        None,
        "Images: int8 calibration (its train/ if any), --report's val/.",
        flag_values=fv,
    )
    flags.DEFINE_integer(
        "calibration_images",
        200,
        "Images int8 calibrates on (spread over data_dir).",
        flag_values=fv,
    )
    flags.DEFINE_boolean(
        "report", False, "Print agreement with Keras, size and latency.", flag_values=fv
    )


def run(fv, args):
    del args
    for name in ("model_dir", "format", "output"):
        if not getattr(fv, name):
            raise UserError(f"--{name} is required")
    if not os.path.isdir(fv.model_dir):
        raise UserError(f"--model_dir {fv.model_dir} does not exist")
    if fv.data_dir and not os.path.isdir(fv.data_dir):
        raise UserError(f"--data_dir {fv.data_dir} does not exist")
    if not os.path.isfile(os.path.join(fv.model_dir, RUN_FILE)):
        raise UserError(f"--model_dir {fv.model_dir} has no run.json: its input is unknown")
    from alexnet_tf.quiet import tensorflow_imported

    tensorflow_imported()
    from alexnet_tf.config import EvalConfig
    from alexnet_tf.data.statistics import load_stats
    from alexnet_tf.evaluation import deploy, model_files

    calibration = fv.data_dir if fv.quantize == "int8" else None
    deploy.check_request(fv.format, fv.output, fv.quantize, calibration)
    run_record = model_files.read_run(fv.model_dir)
    kind, path = model_files.find_model(EvalConfig(model_dir=fv.model_dir), run_record)
    stats = load_stats(fv.model_dir)
    data_cfg = run_record.config.data
    report_paths = _report_images(fv, data_cfg) if fv.report else None
    model = model_files.load_model(kind, path, run_record, num_classes=None)
    names = _class_names(run_record, model.output_shape[-1])
    crops = None
    if calibration:
        files = deploy.image_files(deploy.calibration_folder(fv.data_dir), fv.calibration_images)
        if not files:
            raise UserError(f"--data_dir {fv.data_dir} has no .jpg/.jpeg/.png images")
        crops = deploy.center_crops(files, data_cfg)
    family = run_record.imported_family or "trained"
    deploy.export_model(
        model, data_cfg, stats, names, fv.format, fv.output, fv.quantize,
        calibration=crops, family=family,
    )  # fmt: skip
    print(f"wrote {fv.output} and {deploy.sidecar_path(fv.output)}")
    if fv.report:
        _print_report(fv, model, data_cfg, stats, report_paths)
    return 0


def _class_names(run_record, classes):
    from alexnet_tf.evaluation import class_names

    names = run_record.class_names
    if names is None and classes == 1000:
        names = class_names.tfds_wnids()
    if names is None:
        names = tuple(f"class_{i}" for i in range(classes))
    if len(names) != classes:
        raise UserError(f"classes.json lists {len(names)} classes, the model {classes}")
    return names


def _report_images(fv, data_cfg):
    from alexnet_tf.evaluation import deploy

    folder = fv.data_dir or data_cfg.data_dir
    if not folder:
        raise UserError("--report needs --data_dir (the run records no data folder)")
    val = os.path.join(folder, "val")
    if not os.path.isdir(val):
        raise UserError(f"--report needs a data folder with val/: {folder} has none")
    files = deploy.image_files(val, REPORT_IMAGES)
    if not files:
        raise UserError(f"{val} has no .jpg/.jpeg/.png images")
    return files


def _print_report(fv, model, data_cfg, stats, paths):
    from alexnet_tf.bench.machine import machine
    from alexnet_tf.evaluation import deploy, deploy_report

    crops = deploy.center_crops(paths, data_cfg)
    pixels = deploy.pixels_model(model, data_cfg, stats)
    reference, keras_ms = deploy_report.keras_figures(pixels, crops)
    figures = deploy_report.report(fv.format, fv.output, reference, crops)
    figures.update(format=fv.format, quantize=fv.quantize, keras_latency_ms=keras_ms)
    figures["machine"] = machine()
    print(json.dumps(figures, indent=2))


def main(argv=None):
    """`python -m alexnet_tf.export --model_dir RUN --format F --output PATH`; exit status."""
    argv = sys.argv[1:] if argv is None else argv
    return app.command(argv, "python -m alexnet_tf.export", define_flags, run)


if __name__ == "__main__":
    sys.exit(main())

"""Packages only the tests need, and the reason a test module gives when one is missing.

The README's test command installs them (`requirements-test.txt`); without them the
modules that need one skip with this reason instead of failing to collect.
"""

TORCH_MISSING = (
    "needs PyTorch, the independent reference of the pretrained-weight tests: "
    "pip install -r requirements-test.txt -c constraints.txt"
)

EXPORT_MISSING = (
    "needs the export runtimes and converters (onnxruntime, tf2onnx, LiteRT, OpenVINO): "
    "pip install -r requirements-export.txt -c constraints.txt"
)

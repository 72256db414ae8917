"""python classify_openvino.py alexnet.xml photo.jpg: the top 5 classes, with OpenVINO."""

import json
import sys

import numpy as np
import openvino
from PIL import Image

model_path, image_path = sys.argv[1], sys.argv[2]
with open(model_path + ".json") as f:  # written beside the model by the export
    spec = json.load(f)
inp = spec["input"]
image = Image.open(image_path).convert("RGB")
r = inp["resize"] / min(image.size)  # shorter side to `resize`, then centre crops
image = image.resize(
    (max(inp["resize"], round(image.width * r)), max(inp["resize"], round(image.height * r))),
    Image.BILINEAR,
)
left, top = (image.width - inp["size"]) // 2, (image.height - inp["size"]) // 2
image = image.crop((left, top, left + inp["size"], top + inp["size"]))
x = np.asarray(image, np.float32) / 255 * inp["scale"]
x = ((x - inp["mean"]) / inp["std"])[None].astype(np.float32)  # (1, S, S, 3) RGB
if inp["channel_order"] == "bgr":
    x = np.ascontiguousarray(x[..., ::-1])
# float32 arithmetic: on CPUs with bfloat16 units OpenVINO would compute in bfloat16.
model = openvino.Core().compile_model(model_path, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
logits = model(x)[0][0]
p = np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum()
for i in np.argsort(-p)[:5]:
    print(f"{spec['class_names'][i]}\t{p[i]:.4f}")

"""python classify_litert.py alexnet.tflite photo.jpg: the top 5 classes, with LiteRT."""

import json
import sys

import numpy as np
from ai_edge_litert.interpreter import Interpreter
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
interpreter = Interpreter(model_path=model_path)
interpreter.allocate_tensors()  # batch 1, the shape the file was written with
interpreter.set_tensor(interpreter.get_input_details()[0]["index"], x)
interpreter.invoke()
logits = interpreter.get_tensor(interpreter.get_output_details()[0]["index"])[0]
p = np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum()
for i in np.argsort(-p)[:5]:
    print(f"{spec['class_names'][i]}\t{p[i]:.4f}")

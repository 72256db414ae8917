"""Published AlexNet weights read from the user's files, without Caffe or PyTorch.

`caffe` (a `.caffemodel`), `npy_dict` (the `{layer: [W, b]}` NumPy dictionary),
`torch_file` (a torchvision `.pth` state_dict) each return the file's arrays in its
own layout; `convert` checks them against the family's shapes, moves them into this
project's layouts and names the input convention the weights were trained with.
docs/PRETRAINED.md describes the sources, layouts and conventions.
"""

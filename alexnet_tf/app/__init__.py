"""`python -m alexnet_tf.app`: a local web page that shows what a trained AlexNet does
with a photo (docs/APP.md)."""

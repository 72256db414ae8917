"""A model's results: scoring a split, the 10-crop report, export, prediction, model files."""

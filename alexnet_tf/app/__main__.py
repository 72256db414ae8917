"""`python -m alexnet_tf.app --model_dir RUN [--gallery DIR] [--port 8080] [--host 127.0.0.1]`.

Serves a local page (docs/APP.md) where a photo dropped on it shows:

- Classify: the top-5 classes of the centre crop and of the paper's 10 crops, as
  `python -m alexnet_tf.predict` computes them, and the 10 crops as the model takes them;
- Filters: conv1's kernels per tower (the paper's Figure 3), of this run or another;
- Activations: a layer's feature maps (conv1 ... conv5, per tower), strongest first;
- Neighbours: with --gallery, the gallery's images nearest the photo in fc7 (Figure 4).

The model is any run folder predict takes: a trained run or one made by
`python -m alexnet_tf.import_weights`, with its own preprocessing. Listens on 127.0.0.1
(this machine only) unless --host says otherwise; Ctrl-C stops it.
"""

import sys

from absl import flags

from alexnet_tf.cli import app, options


def define_flags(fv):
    flags.DEFINE_string("model_dir", None, "The run folder of the model to show.", flag_values=fv)
    flags.DEFINE_string(
        "gallery",
        None,
        "A folder of JPEG/PNG images for the Neighbours view (any depth); their fc7 "
        "features are computed once and cached in the run folder.",
        flag_values=fv,
    )
    flags.DEFINE_integer("port", 8080, "The port (0: any free one).", flag_values=fv)
    flags.DEFINE_string(
        "host", "127.0.0.1", "The address to listen on (0.0.0.0: every network).", flag_values=fv
    )
    options.define_preprocessing_flag(fv)


def run(fv, args):
    del args
    import os

    from alexnet_tf.errors import UserError
    from alexnet_tf.quiet import tensorflow_imported

    if not fv.model_dir:
        raise UserError("give --model_dir RUN (a training run or an imported model's folder)")
    if not os.path.isdir(fv.model_dir):
        raise UserError(f"--model_dir {fv.model_dir} does not exist")
    if fv.gallery and not os.path.isdir(fv.gallery):
        raise UserError(f"--gallery {fv.gallery} is not a folder")
    tensorflow_imported()
    from alexnet_tf.app.gallery import Gallery
    from alexnet_tf.app.server import make_server
    from alexnet_tf.app.views import Views

    views = Views.load(fv.model_dir, fv.preprocessing)
    gallery = None
    if fv.gallery:
        gallery = Gallery.load(views.predictor, fv.gallery, fv.model_dir)
    server = make_server(views, gallery, fv.host, fv.port)
    host, port = server.server_address[:2]
    print(f"serving {fv.model_dir} at http://{host}:{port}/  (Ctrl-C stops)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


def main(argv=None):
    """`python -m alexnet_tf.app [flags]`; returns the exit status."""
    argv = sys.argv[1:] if argv is None else argv
    return app.command(argv, "python -m alexnet_tf.app", define_flags, run)


if __name__ == "__main__":
    sys.exit(main())

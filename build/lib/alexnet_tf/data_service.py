"""Runs a tf.data service server for `train.py --data_service` (docs/DISTRIBUTED.md).

    python -m alexnet_tf.data_service dispatcher --port 5050 [--work_dir DIR]
    python -m alexnet_tf.data_service worker --dispatcher HOST:5050 --port 5051 [--host NAME]

One dispatcher, any number of workers; the trainers send them the training pipeline
(alexnet_tf/data/service.py), so a worker needs TensorFlow, this package and the data at
the same paths as the trainers. A server runs until it is stopped (Ctrl-C, SIGTERM).
"""

import os
import socket
import sys
import tempfile

from absl import flags

from alexnet_tf.cli import app

ROLES = ("dispatcher", "worker")


def define_flags(fv):
    flags.DEFINE_integer("port", None, "Port to listen on (required).", flag_values=fv)
    flags.DEFINE_string(
        "work_dir",
        None,
        "dispatcher: journal its state here and recover it after a restart (fault tolerance).",
        flag_values=fv,
    )
    flags.DEFINE_string(
        "dispatcher", None, "worker: the dispatcher's HOST:PORT (required).", flag_values=fv
    )
    flags.DEFINE_string(
        "host",
        socket.gethostname(),
        "worker: the name trainers reach this machine at.",
        flag_values=fv,
    )


def run(fv, args):
    from alexnet_tf.data import service
    from alexnet_tf.errors import UserError

    if len(args) != 1 or args[0] not in ROLES:
        raise UserError(f"give one role, dispatcher or worker; got {' '.join(args)!r}")
    if fv.port is None or not 0 < fv.port < 65536:
        raise UserError(f"--port {fv.port} is not a port number (1-65535)")
    if args[0] == "dispatcher":
        server = _started(fv.port, service.start_dispatcher, fv.port, fv.work_dir)
        print(f"dispatcher listening on grpc://{socket.gethostname()}:{fv.port}", flush=True)
    else:
        if not fv.dispatcher:
            raise UserError("worker needs --dispatcher HOST:PORT")
        service.check_address(f"grpc://{fv.dispatcher}", "--dispatcher")
        server = _started(fv.port, service.start_worker, fv.dispatcher, fv.port, fv.host)
        print(f"worker {fv.host}:{fv.port} serving dispatcher {fv.dispatcher}", flush=True)
    server.join()
    return 0


def _started(port, start, *args):
    """`start(*args)`; a port that cannot be taken is one line (gRPC's own C++ error line,
    written straight to file descriptor 2, is held back then)."""
    from alexnet_tf.errors import UserError

    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as held:
        os.dup2(held.fileno(), 2)
        try:
            server = start(*args)
        except RuntimeError as err:
            raise UserError(f"--port {port}: {err} (is the port in use?)") from None
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        held.seek(0)
        sys.stderr.write(held.read().decode("utf-8", "replace"))
    return server


def main(argv=None):
    return app.command(
        sys.argv[1:] if argv is None else argv, "data_service", define_flags, run, "ROLE"
    )


if __name__ == "__main__":
    from alexnet_tf.quiet import tensorflow_imported

    tensorflow_imported()
    sys.exit(main())

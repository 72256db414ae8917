"""The app's server for the tests: in a thread of the test process (`Served`), or as the
real command in a subprocess (`start_command`), on a free port; and plain HTTP calls."""

import http.client
import json
import os
import subprocess
import sys
import threading
import time

from alexnet_tf.app.gallery import Gallery
from alexnet_tf.app.server import make_server
from alexnet_tf.app.views import Views

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class Served:
    """`python -m alexnet_tf.app`'s server for `model_dir` in a thread; `.port`, `.stop()`."""

    def __init__(self, model_dir, gallery=None, stream=None):
        self.views = Views.load(model_dir)
        self.gallery = gallery and Gallery.load(self.views.predictor, gallery, model_dir, stream)
        self.server = make_server(self.views, self.gallery, "127.0.0.1", 0)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


def request(port, method, path, body=None, headers=None, timeout=60):
    """`(status, JSON body or bytes)` of one request to 127.0.0.1:`port`; the path is sent
    as given (no `..` folded away, as a browser would)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        data = response.read()
        if response.getheader("Content-Type", "").startswith("application/json"):
            data = json.loads(data)
        return response.status, data
    finally:
        conn.close()


def start_command(argv, env=None):
    """`python -m alexnet_tf.app ARGV --port 0` as a subprocess; returns `(process, url)`
    once it prints its address (stderr is kept in the process's `stderr` pipe)."""
    process = subprocess.Popen(
        [sys.executable, "-m", "alexnet_tf.app", *argv, "--port", "0"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **(env or {})},
    )
    line = process.stdout.readline()
    if "http://" not in line:
        process.kill()
        _, err = process.communicate(timeout=30)
        raise AssertionError(f"the app did not start: {line!r} {err[-2000:]}")
    url = line.split("at ", 1)[1].split()[0].rstrip("/")
    return process, url


def wait_exit(process, timeout=30):
    deadline = time.monotonic() + timeout
    while process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    return process.poll()

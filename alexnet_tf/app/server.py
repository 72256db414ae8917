"""The page's server: the standard library's `ThreadingHTTPServer`, one static page and a
small JSON API. Nothing to install, nothing fetched from the internet.

    GET  /                       the page (page.html, its script and style inline)
    GET  /api/info               the model, the Activations view's layers, the gallery's size
    GET  /api/filters?run=DIR    conv1's kernels (this run's, or the run folder DIR's)
    POST /api/classify           body: a JPEG or PNG file -> top-5 (centre, 10 crops), crops
    POST /api/activations?layer=conv2%20tower%20A    body: the file -> the layer's maps
    POST /api/neighbours         body: the file -> the gallery's nearest images by fc7
    GET  /gallery/PATH           a gallery image (only the gallery's own files)

An upload is the request's raw body (the page sends the file with `fetch`), refused by
its Content-Length before it is read when over `uploads.MAX_BYTES`, then checked on its
header (`uploads.check_upload`). It is written to a temporary folder, removed when the
request ends. Every refusal is `{"error": "..."}` with a 4xx status; an unexpected
failure is a 500 with the exception's one line, its traceback on the console, and the
server goes on serving.
"""

import json
import logging
import os
import shutil
import tempfile
import traceback
import urllib.parse
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from alexnet_tf.app import uploads
from alexnet_tf.errors import UserError

log = logging.getLogger(__name__)

PAGE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "page.html")
CONTENT_TYPES = {".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".png": "image/png"}


class Refused(Exception):
    """A request the server answers with `status` and `{"error": message}`."""

    def __init__(self, status, message):
        super().__init__(message)
        self.status = status


def make_server(views, gallery, host="127.0.0.1", port=8080):
    """The server for `views` (`views.Views`) and `gallery` (a `gallery.Gallery` or None),
    bound to `host`:`port` (0: a free port); call `serve_forever()` on it."""
    handler = type("Handler", (Handler,), {"views": views, "gallery": gallery})
    try:
        server = ThreadingHTTPServer((host, port), handler)
    except OSError as err:
        raise UserError(f"cannot listen on {host}:{port}: {err.strerror or err}") from None
    server.daemon_threads = True
    return server


class Handler(BaseHTTPRequestHandler):
    views = None
    gallery = None
    server_version = "alexnet_tf"

    def log_message(self, format, *args):  # noqa: A002 (the base class's name)
        log.debug("%s %s", self.address_string(), format % args)

    def do_GET(self):  # noqa: N802 (http.server's name)
        self._answer(self._get)

    def do_POST(self):  # noqa: N802
        self._answer(self._post)

    def _answer(self, route):
        url = urllib.parse.urlsplit(self.path)
        query = {k: v[-1] for k, v in urllib.parse.parse_qs(url.query).items()}
        try:
            route(url.path, query)
        except Refused as err:
            self._json({"error": str(err)}, err.status)
        except UserError as err:
            self._json({"error": str(err)}, HTTPStatus.BAD_REQUEST)
        except Exception as err:  # keep serving: the page shows the line, the console the rest
            traceback.print_exc()
            line = str(err).strip().splitlines()[0] if str(err).strip() else ""
            self._json({"error": f"internal error: {type(err).__name__} {line}"}, 500)

    def _get(self, path, query):
        if path in ("/", "/index.html"):
            with open(PAGE, "rb") as f:
                self._send(f.read(), "text/html; charset=utf-8")
        elif path == "/api/info":
            info = self.views.info()
            info["gallery_images"] = len(self.gallery.paths) if self.gallery else 0
            info["max_upload_bytes"] = uploads.MAX_BYTES
            self._json(info)
        elif path == "/api/filters":
            self._json(self.views.filters(query.get("run", "").strip() or None))
        elif path.startswith("/gallery/"):
            if self.gallery is None:
                raise Refused(HTTPStatus.NOT_FOUND, "no gallery: start with --gallery DIR")
            rel = urllib.parse.unquote(path[len("/gallery/") :])
            try:
                file = self.gallery.file(rel)
            except UserError as err:
                raise Refused(HTTPStatus.NOT_FOUND, str(err)) from None
            with open(file, "rb") as f:
                kind = CONTENT_TYPES[os.path.splitext(file)[1].lower()]
                self._send(f.read(), kind)
        else:
            raise Refused(HTTPStatus.NOT_FOUND, f"no page {path}")

    def _post(self, path, query):
        views = {
            "/api/classify": lambda file: self.views.classify(file),
            "/api/activations": lambda file: self.views.activations(file, query.get("layer", "")),
            "/api/neighbours": self._neighbours,
        }
        if path not in views:
            raise Refused(HTTPStatus.NOT_FOUND, f"no page {path}")
        data = self._body()
        kind, _, _ = uploads.check_upload(data)
        folder = tempfile.mkdtemp(prefix="alexnet_app_")
        try:
            file = os.path.join(folder, f"upload.{'png' if kind == 'png' else 'jpg'}")
            with open(file, "wb") as f:
                f.write(data)
            answer = views[path](file)
        finally:  # before the answer goes out: a client that has it finds no upload left
            shutil.rmtree(folder, ignore_errors=True)
        self._json(answer)

    def _neighbours(self, file):
        if self.gallery is None:
            raise Refused(HTTPStatus.NOT_FOUND, "no gallery: start the app with --gallery DIR")
        with self.views.lock:
            (query,) = self.views.predictor.features([file], "fc7", crops=1)
        found = self.gallery.nearest(query)
        return {
            "neighbours": [
                {"path": rel, "url": "/gallery/" + urllib.parse.quote(rel), "distance": dist}
                for rel, dist in found
            ]
        }

    def _body(self):
        """The request's body, refused unread when its declared length is over the limit."""
        length = self.headers.get("Content-Length")
        if length is None or not length.strip().isdigit():
            self.close_connection = True
            raise Refused(HTTPStatus.LENGTH_REQUIRED, "send the image file as the request body")
        size = int(length)
        if size > uploads.MAX_BYTES:
            # Not read: the connection closes after the answer.
            self.close_connection = True
            raise Refused(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, uploads.too_large(size))
        return self.rfile.read(size)

    def _json(self, value, status=HTTPStatus.OK):
        self._send(json.dumps(value).encode(), "application/json", status)

    def _send(self, body, content_type, status=HTTPStatus.OK):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)

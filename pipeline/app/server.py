"""The web application of ``avzsl-app``: one page (``static/``) and a small JSON API over the loaded models.

Routes:

- ``GET /``: the page; ``GET /static/app.js``, ``/static/app.css``: its script and style (nothing else is served
  from the package, and the page loads nothing from elsewhere: its Content-Security-Policy allows only this server);
- ``GET /api/info``: the models, the ready class lists, the limits, whether a videos folder is browsable;
- ``GET /api/lists?name=``: the names of one ready list;
- ``GET /api/videos``, ``GET /api/media?path=``: the videos under ``--videos-root`` and one of them (for playing);
- ``POST /api/predict``: multipart ``model``, ``classes``, ``top``, ``files`` (uploads) and ``paths`` (videos under
  the root) -> the ``avzsl-predict --json`` document of these videos, their CSV table and how they were computed;
- ``GET /api/health``: ``{"ok": true}``.

Every request is answered on its own (nothing of one request is kept for another); a request body larger than the
upload limits allow is refused before it is read (:class:`BodyLimit`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException

from avzsl.pipeline.app.browse import PathRefusedError, VideoRoot
from avzsl.pipeline.app.classlists import parse_class_names, ready_lists
from avzsl.pipeline.app.limits import BodyLimit
from avzsl.pipeline.app.models import Models
from avzsl.pipeline.app.tables import results_csv
from avzsl.pipeline.app.uploads import UploadRefusedError, display_name, save_upload, upload_folder
from avzsl.pipeline.core.errors import UserError
from avzsl.pipeline.core.version import package_version

_logger = logging.getLogger(__name__)

STATIC = {"app.js": "text/javascript", "app.css": "text/css"}
SECURITY_HEADERS = {
    # Only this server: no external script, style, font, image, media or connection, whatever the page holds.
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data: blob:; media-src 'self' blob:; "
                               "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
MAX_TOP = 50


@dataclass
class AppSettings:
    """Limits and options of a server.

    Attributes:
        videos_root: the folder whose videos the page may browse, or ``None``.
        max_upload_bytes: the largest uploaded file taken.
        max_files: the most videos (uploads and browsed) in one request.
    """

    videos_root: Path | None = None
    max_upload_bytes: int = 100 * 2**20
    max_files: int = 16

    @property
    def max_body_bytes(self) -> int:
        """The largest request body read: every file at the limit, plus 1 MiB for the form's fields."""
        return self.max_upload_bytes * self.max_files + 2**20


def _static_text(name: str) -> str:
    return (resources.files("avzsl.pipeline.app") / "static" / name).read_text(encoding="utf-8")


def _unique(key: str, taken: set[str]) -> str:
    """``key``, or ``key (2)``, ``key (3)``, ... when a video of the request already has that key."""
    candidate, n = key, 1
    while candidate in taken:
        n += 1
        candidate = f"{key} ({n})"
    taken.add(candidate)
    return candidate


def create_app(models: Models, settings: AppSettings) -> FastAPI:
    """The application serving ``models`` with ``settings``."""
    root = VideoRoot(settings.videos_root) if settings.videos_root is not None else None
    lists = ready_lists()
    page = _static_text("index.html")
    app = FastAPI(title="avzsl", version=package_version(), docs_url=None, redoc_url=None, openapi_url=None)

    @app.middleware("http")
    async def security_headers(request: Request, call_next: Any) -> Response:
        response = await call_next(request)
        response.headers.update(SECURITY_HEADERS)
        return response

    @app.get("/", response_class=HTMLResponse)
    def index() -> HTMLResponse:
        return HTMLResponse(page)

    @app.get("/static/{name}")
    def static(name: str) -> Response:
        if name not in STATIC:  # a fixed set: no path from the request reaches the file system
            return JSONResponse({"error": "not found"}, status_code=404)
        return Response(_static_text(name), media_type=STATIC[name])

    @app.get("/api/health")
    def health() -> dict[str, bool]:
        return {"ok": True}

    @app.get("/api/info")
    def info() -> dict[str, Any]:
        return {"version": package_version(), "models": models.describe(), "lists": list(lists),
                "videos_root": root is not None, "max_upload_bytes": settings.max_upload_bytes,
                "max_files": settings.max_files}

    @app.get("/api/lists")
    def class_list(name: str) -> Response:
        if name not in lists:
            return JSONResponse({"error": f"no ready list named {name!r}"}, status_code=404)
        return JSONResponse({"name": name, "classes": lists[name]})

    @app.get("/api/videos")
    def videos() -> Response:
        if root is None:
            return JSONResponse({"error": "the server was started without --videos-root"}, status_code=404)
        return JSONResponse({"videos": root.videos()})

    @app.get("/api/media")
    def media(path: str) -> Response:
        if root is None:
            return JSONResponse({"error": "the server was started without --videos-root"}, status_code=404)
        try:
            return FileResponse(root.resolve(path))
        except PathRefusedError as exc:
            return JSONResponse({"error": str(exc)}, status_code=403)

    @app.post("/api/predict")
    async def predict(request: Request) -> Response:
        try:
            form = await request.form(max_files=settings.max_files, max_fields=settings.max_files + 16,
                                      max_part_size=1 << 20)
        except MultiPartException as exc:
            return JSONResponse({"error": f"the form was refused: {exc.message}"}, status_code=400)
        try:
            return await run_in_threadpool(_predict, models, settings, root, form)
        finally:
            await form.close()

    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    return app


def _predict(models: Models, settings: AppSettings, root: VideoRoot | None, form: Any) -> Response:
    """The blocking part of ``POST /api/predict``: check and save uploads, predict, answer (uploads deleted)."""
    try:
        names = parse_class_names(str(form.get("classes") or ""))
        top = max(1, min(MAX_TOP, int(str(form.get("top") or "5"))))
    except ValueError as exc:
        return JSONResponse({"error": str(exc)}, status_code=400)
    model = str(form.get("model") or next(iter(models.by_name)))
    if model not in models.by_name:
        return JSONResponse({"error": f"no model named {model!r}"}, status_code=400)
    uploads = [f for f in form.getlist("files") if isinstance(f, UploadFile) and (f.filename or f.size)]
    paths = [str(p) for p in form.getlist("paths") if str(p)]
    if not uploads and not paths:
        return JSONResponse({"error": "choose at least one video (upload, or pick one from the folder)"},
                            status_code=400)
    if len(uploads) + len(paths) > settings.max_files:
        return JSONResponse({"error": f"{len(uploads) + len(paths)} videos: at most {settings.max_files} per "
                                      "request"}, status_code=400)
    document: dict[str, Any] = {}
    videos: list[dict[str, Any]] = []
    taken: set[str] = set()
    with upload_folder() as folder:
        todo: dict[str, str] = {}  # file path -> key
        renames: dict[str, str] = {}  # file path in messages -> what the page shows
        for index, upload in enumerate(uploads):
            key = _unique(display_name(upload.filename, index), taken)
            videos.append({"key": key, "source": "upload", "index": index, "media": None})
            try:
                saved = save_upload(upload.file, upload.size, folder, index, key, settings.max_upload_bytes)
            except UploadRefusedError as exc:
                document[key] = {"error": str(exc), "status": "refused"}
                continue
            todo[str(saved.path)] = key
            renames[str(saved.path)] = key
        for path in paths:
            key = _unique(path, taken)
            videos.append({"key": key, "source": "folder", "media": f"/api/media?path={quote(path)}"})
            if root is None:
                document[key] = {"error": "the server was started without --videos-root", "status": "refused"}
                continue
            try:
                todo[str(root.resolve(path))] = key
            except PathRefusedError as exc:
                document[key] = {"error": str(exc), "status": "refused"}
        gamma, seconds = None, 0.0
        if todo:
            try:
                prediction = models.predict(model, list(todo), names, top)
            except (UserError, ValueError, KeyError) as exc:
                return JSONResponse({"error": str(exc)}, status_code=400)
            gamma, seconds = prediction.gamma, prediction.seconds
            for path, entry in prediction.document.items():
                if "error" in entry:
                    entry["error"] = _renamed(entry["error"], renames)
                document[todo[path]] = entry
    ordered = {v["key"]: document[v["key"]] for v in videos}
    _logger.info("%d video(s) with %s in %.2f s", len(ordered), model, seconds)
    return JSONResponse({"model": models.by_name[model].describe(), "classes": names, "gamma": gamma,
                         "seconds": seconds, "document": ordered, "videos": videos, "csv": results_csv(ordered)})


def _renamed(message: str, renames: dict[str, str]) -> str:
    """A message with the temporary file paths of uploads replaced by their shown names."""
    for path, key in renames.items():
        message = message.replace(path, key)
    return message

"""``radimt review OUT``: the review page, served on 127.0.0.1 with the standard library.

Safe by default, as Jupyter is: bound to the loopback interface, every request carries a random
token (``?token=`` in the URL the command prints; the page sends it back in a header), a request
whose Host is not the loopback address is refused (no DNS rebinding), only files under OUT are
served (a path that resolves outside it, through ``..`` or a symlink, is refused), and decisions
are only taken by POST.

Routes (all need the token): ``/`` the page; ``/api/lesions`` the list; ``/api/lesion`` one
lesion's numbers, figures and history; ``/api/view`` its view image or mask as raw little-endian
float32 / uint8 (loaded when the lesion is opened, never before); ``/files/<path>`` a file under
OUT; ``POST /api/decision`` a decision (JSON body).
"""

from __future__ import annotations

import getpass
import hmac
import json
import logging
import math
import secrets
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import numpy as np
import SimpleITK as sitk

from radimt.dictionary import describe
from radimt.report.review_view import VIEW_IMAGE, VIEW_MASK, VIEW_META
from radimt.review.state import DECISIONS, ReviewError, ReviewItem, ReviewRun

log = logging.getLogger(__name__)

#: Key numbers shown per lesion (when the row has them), with the dictionary's units.
KEY_COLUMNS = (
    "lesion_longest_diameter_mm",
    "lesion_volume_cm3",
    "lesion_area_mm2",
    "lesion_perimeter_mm",
    "lesion_circularity",
    "kinetic_curve_type",
    "kinetic_suspicious_curve_type",
    "kinetic_initial_enhancement_pct",
    "kinetic_ser",
    "kinetic_time_to_peak_s",
    "adc_median_um2_ms",
    "adc_min_region_mean_um2_ms",
    "ct_rim_core_ratio",
    "candidate_score",
    "candidate_laterality",
)
_MAX_BODY = 64 * 1024
#: The page's own inline script and style, and requests to this server only.
_POLICY = (
    "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
    "script-src 'self' 'unsafe-inline'; connect-src 'self'; frame-ancestors 'none'"
)


def key_numbers(row: dict[str, str]) -> list[dict[str, str]]:
    """The row's key numbers with their unit and meaning (other modalities' sizes included)."""
    columns = list(KEY_COLUMNS)
    columns += [c for c in row if "_lesion_" in c and c.endswith(("_mm", "_mm2", "_mm3", "_circularity"))]
    out = []
    for column in columns:
        value = row.get(column, "")
        if value in ("", None):
            continue
        entry = describe(column)
        try:
            number = float(value)
            text = f"{number:.3g}" if abs(number) < 100 else f"{number:.0f}"
        except ValueError:
            text = str(value)
        out.append(
            {
                "column": column,
                "value": text,
                "unit": entry.unit if entry else "",
                "meaning": entry.meaning if entry else "",
            }
        )
    return out


class ReviewServer(ThreadingHTTPServer):
    """The review server of one run; ``url`` is what to open."""

    daemon_threads = True

    def __init__(
        self, out: str | Path, *, port: int = 0, reviewer: str | None = None, token: str | None = None
    ):
        self.run = ReviewRun(out)
        self.token = token or secrets.token_urlsafe(24)
        self.reviewer = reviewer or _user()
        self.view_requests = 0  # how many views were loaded (the page loads them lazily)
        self.page = resources.files("radimt.review").joinpath("page.html").read_text(encoding="utf-8")
        super().__init__(("127.0.0.1", port), _Handler)

    @property
    def url(self) -> str:
        port = self.server_address[1]
        return f"http://127.0.0.1:{port}/?token={self.token}"

    def serve_in_thread(self) -> threading.Thread:
        """Serve in a background thread (tests, notebooks); ``shutdown()`` stops it."""
        thread = threading.Thread(target=self.serve_forever, daemon=True)
        thread.start()
        return thread


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "reviewer"


class _Handler(BaseHTTPRequestHandler):
    server: ReviewServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        log.debug("%s %s", self.address_string(), format % args)

    # -- guards -------------------------------------------------------------------------------
    def _allowed(self, query: dict[str, list[str]]) -> bool:
        host = (self.headers.get("Host") or "").rsplit(":", 1)[0].strip("[]")
        if host not in ("127.0.0.1", "localhost", "::1"):
            self._send_text(HTTPStatus.FORBIDDEN, "refused: the review server answers only on 127.0.0.1")
            return False
        given = self.headers.get("X-Radimt-Token") or (query.get("token") or [""])[0]
        if not hmac.compare_digest(given.encode(), self.server.token.encode()):
            self._send_text(
                HTTPStatus.FORBIDDEN, "refused: a valid token is needed (open the URL radimt review printed)"
            )
            return False
        return True

    def _send(
        self, status: HTTPStatus, body: bytes, content_type: str, extra: dict[str, str] | None = None
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Referrer-Policy", "no-referrer")
        for name, value in (extra or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _send_text(self, status: HTTPStatus, text: str) -> None:
        self._send(status, text.encode(), "text/plain; charset=utf-8")

    def _send_json(self, value: Any, status: HTTPStatus = HTTPStatus.OK) -> None:
        self._send(status, json.dumps(value, allow_nan=False).encode(), "application/json")

    # -- GET ----------------------------------------------------------------------------------
    def do_GET(self) -> None:  # noqa: N802 - the base class's name
        parts = urlsplit(self.path)
        query = parse_qs(parts.query)
        if parts.path == "/favicon.ico":  # asked for by every browser, without the token
            self._send(HTTPStatus.NO_CONTENT, b"", "image/x-icon")
            return
        if not self._allowed(query):
            return
        route = parts.path
        try:
            if route == "/":
                self._page()
            elif route == "/api/lesions":
                self._send_json(
                    {
                        "reviewer": self.server.reviewer,
                        "decisions": list(DECISIONS),
                        "out": str(self.server.run.out),
                        "lesions": [item.summary() for item in self.server.run.items],
                    }
                )
            elif route == "/api/lesion":
                self._send_json(self._lesion(self._item(query)))
            elif route == "/api/view":
                self._view(self._item(query), (query.get("part") or ["image"])[0])
            elif route.startswith("/files/"):
                self._file(unquote(route[len("/files/") :]))
            else:
                self._send_text(HTTPStatus.NOT_FOUND, f"no such page: {route}")
        except ReviewError as exc:
            self._send_text(HTTPStatus.NOT_FOUND, str(exc))

    def _item(self, query: dict[str, list[str]]) -> ReviewItem:
        study = (query.get("study") or [""])[0]
        lesion = (query.get("lesion") or [""])[0]
        return self.server.run.item(study, lesion)

    def _page(self) -> None:
        page = self.server.page.replace("__TOKEN__", json.dumps(self.server.token))
        self._send(
            HTTPStatus.OK,
            page.encode(),
            "text/html; charset=utf-8",
            {"Content-Security-Policy": _POLICY},
        )

    def _lesion(self, item: ReviewItem) -> dict[str, Any]:
        folder = self.server.run.out / item.folder
        result: dict[str, Any] = {}
        if (folder / "result.json").is_file():
            result = json.loads((folder / "result.json").read_text())
        view = json.loads((folder / VIEW_META).read_text()) if (folder / VIEW_META).is_file() else None
        figures = [f for f in result.get("figures", []) if (folder / f).is_file()]
        thumbnails = sorted(p.name for p in folder.glob("thumb_*.png")) if folder.is_dir() else []
        return {
            **item.summary(),
            "seed": item.seed,
            "folder": item.folder,
            "numbers": key_numbers(item.row),
            "figures": figures,
            "thumbnails": thumbnails,
            "view": view,
            "history": item.history,
            "curves": _finite(result.get("curves", [])),
        }

    def _view(self, item: ReviewItem, part: str) -> None:
        folder = self.server.run.out / item.folder
        name = {"image": VIEW_IMAGE, "mask": VIEW_MASK}.get(part)
        if name is None or not (folder / name).is_file():
            self._send_text(HTTPStatus.NOT_FOUND, f"{item.study_id} lesion {item.lesion_id}: no view {part}")
            return
        self.server.view_requests += 1
        image = sitk.ReadImage(str(folder / name))
        values = sitk.GetArrayViewFromImage(image)
        if part == "image":
            meta = json.loads((folder / VIEW_META).read_text())
            data = (
                values.astype(np.float32) * np.float32(meta["scale"]) + np.float32(meta["offset"])
            ).astype("<f4")
        else:
            data = (values > 0).astype(np.uint8)
        self._send(HTTPStatus.OK, data.tobytes(), "application/octet-stream")

    def _file(self, relative: str) -> None:
        root = self.server.run.out
        target = (root / relative).resolve()
        if not target.is_relative_to(root) or not target.is_file():
            self._send_text(
                HTTPStatus.FORBIDDEN if not target.is_relative_to(root) else HTTPStatus.NOT_FOUND,
                f"refused: {relative!r} is not a file under the run folder",
            )
            return
        kinds = {
            ".png": "image/png",
            ".html": "text/html; charset=utf-8",
            ".csv": "text/csv; charset=utf-8",
            ".json": "application/json",
        }
        self._send(
            HTTPStatus.OK, target.read_bytes(), kinds.get(target.suffix.lower(), "application/octet-stream")
        )

    # -- POST ---------------------------------------------------------------------------------
    def do_POST(self) -> None:  # noqa: N802 - the base class's name
        parts = urlsplit(self.path)
        if not self._allowed({}):  # the token only in the header: a form elsewhere cannot send it
            return
        if parts.path != "/api/decision":
            self._send_text(HTTPStatus.NOT_FOUND, f"no such action: {parts.path}")
            return
        length = int(self.headers.get("Content-Length") or 0)
        if length <= 0 or length > _MAX_BODY:
            self._send_text(HTTPStatus.BAD_REQUEST, "a decision is a small JSON body")
            return
        try:
            body = json.loads(self.rfile.read(length))
            item = self.server.run.decide(
                str(body["study_id"]),
                str(body["lesion_id"]),
                str(body["decision"]),
                reviewer=str(body.get("reviewer") or self.server.reviewer),
                why=str(body.get("why") or ""),
                seed=body.get("seed"),
            )
        except (ValueError, KeyError, TypeError) as exc:
            self._send_text(HTTPStatus.BAD_REQUEST, f"not a decision: {exc}")
            return
        except ReviewError as exc:
            self._send_text(HTTPStatus.BAD_REQUEST, str(exc))
            return
        self._send_json({**item.summary(), "seed": item.seed, "history": item.history})


def _finite(value: Any) -> Any:
    """JSON-safe: NaN and infinities as null."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, list):
        return [_finite(v) for v in value]
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    return value


def serve(out: str | Path, *, port: int = 0, reviewer: str | None = None, open_browser: bool = False) -> None:
    """Serve the review page of the run in ``out`` until interrupted (``radimt review``)."""
    server = ReviewServer(out, port=port, reviewer=reviewer)
    print(f"review {len(server.run.items)} lesion(s) of {server.run.out}")
    print(f"open: {server.url}")
    print("decisions go to review.csv and manifest.reviewed.csv there; Ctrl-C stops")
    if open_browser:
        import webbrowser

        webbrowser.open(server.url)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()

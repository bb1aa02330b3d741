"""Files: the registry of file_ids, uploads and their checks, getFile and downloads."""

from __future__ import annotations

import secrets
import time
from typing import Any

from .model import ApiError, FileInfo, MediaSend, _Chat, _Req
from .state import EmulatorState
from .validation import UploadedFile

_PHOTO_MAX_BYTES = 10 * 1024 * 1024
_DOCUMENT_MAX_BYTES = 50 * 1024 * 1024


class FilesMixin(EmulatorState):
    """Every file known by file_id: the users', and the ones the bot uploaded."""

    def file_bytes(self, file_id: str) -> bytes | None:
        """The bytes of a file the bot uploaded (None when not kept or unknown)."""
        info = self._files.get(file_id)
        return info.data if info is not None else None

    def _register_file(
        self,
        kind: str,
        *,
        size: int,
        data: bytes | None = None,
        file_name: str | None = None,
        mime_type: str | None = None,
        width: int = 0,
        height: int = 0,
    ) -> FileInfo:
        n = next(self._file_ids)
        prefix = {"photo": "AgAC", "document": "BQAC", "sticker": "CAAC"}.get(kind, "BAAC")
        file_id = f"{prefix}AgIAAxkB{n:06d}{secrets.token_urlsafe(12)}"
        info = FileInfo(
            file_id=file_id,
            file_unique_id=f"AQAD{n:06d}",
            kind=kind,
            size=size,
            file_name=file_name,
            mime_type=mime_type,
            width=width,
            height=height,
            data=data if self.keep_file_bytes else None,
        )
        self._files[file_id] = info
        if kind == "photo":
            # Telegram returns several sizes, each with its own file_id
            for label, side in (("s", 90), ("m", 320)):
                if max(width, height) > side:
                    scale = side / max(width, height)
                    sid = f"{file_id}{label}"
                    info.photo_sizes.append(
                        {
                            "file_id": sid,
                            "file_unique_id": f"{info.file_unique_id}{label}",
                            "file_size": max(1, size // (8 if label == "s" else 3)),
                            "width": max(1, round(width * scale)),
                            "height": max(1, round(height * scale)),
                        }
                    )
                    self._files[sid] = info
            info.photo_sizes.append(
                {
                    "file_id": file_id,
                    "file_unique_id": info.file_unique_id,
                    "file_size": size,
                    "width": width,
                    "height": height,
                }
            )
        return info

    def _document_dict(self, info: FileInfo) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "file_id": info.file_id,
            "file_unique_id": info.file_unique_id,
            "file_size": info.size,
        }
        if info.file_name:
            doc["file_name"] = info.file_name
        if info.mime_type:
            doc["mime_type"] = info.mime_type
        return doc

    def _resolve_media(
        self, kind: str, value: Any, files: dict[str, UploadedFile]
    ) -> tuple[str, FileInfo | None, UploadedFile | None, str | None]:
        """(source, known file, upload, url) for a media parameter; raises 400 if invalid."""
        if isinstance(value, str) and value.startswith("attach://"):
            value = files.get(value[len("attach://") :])
            if value is None:
                raise ApiError(400, "Bad Request: wrong file identifier/HTTP URL specified")
        if isinstance(value, UploadedFile):
            if not value.data:
                raise ApiError(400, "Bad Request: file must be non-empty")
            limit = _PHOTO_MAX_BYTES if kind == "photo" else _DOCUMENT_MAX_BYTES
            if len(value.data) > limit:
                raise ApiError(400, "Bad Request: file is too big")
            return "upload", None, value, None
        if isinstance(value, str) and value.startswith(("http://", "https://")):
            return "url", None, None, value  # never fetched: no traffic leaves the host
        info = self._files.get(value) if isinstance(value, str) else None
        if info is None or (kind == "photo") != (info.kind == "photo"):
            raise ApiError(400, "Bad Request: wrong file identifier/HTTP URL specified")
        return "file_id", info, None, None

    def _store_media(
        self,
        req: _Req,
        chat: _Chat,
        kind: str,
        field_name: str,
        resolved: tuple[str, FileInfo | None, UploadedFile | None, str | None],
    ) -> tuple[FileInfo, MediaSend]:
        source, info, upload, url = resolved
        if info is None:
            if upload is not None:
                size = len(upload.data)
                name, mime = upload.filename, upload.content_type
                data: bytes | None = upload.data
            else:
                assert url is not None
                size, name, mime, data = 100_000, url.rsplit("/", 1)[-1] or None, None, None
            width = height = 0
            if kind == "photo":
                width, height = _image_size(data) if data else (800, 600)
            info = self._register_file(
                kind,
                size=size,
                data=data,
                file_name=name,
                mime_type=mime,
                width=width,
                height=height,
            )
        media = MediaSend(
            time.monotonic(), req.method, chat.id, field_name, source, info.file_id, info.size
        )
        self.media_sends.append(media)
        return info, media

    def _media_extra(self, kind: str, info: FileInfo) -> dict[str, Any]:
        if kind == "photo":
            return {"photo": info.photo_sizes}
        if kind == "document":
            return {"document": self._document_dict(info)}
        return {}

    async def _api_getFile(self, req: _Req) -> Any:
        info = self._files.get(req.params["file_id"])
        if info is None:
            raise ApiError(400, "Bad Request: invalid file_id")
        return {
            "file_id": req.params["file_id"],
            "file_unique_id": info.file_unique_id,
            "file_size": info.size,
            "file_path": info.file_path,
        }


def _image_size(data: bytes) -> tuple[int, int]:
    """(width, height) of a PNG, JPEG, GIF, BMP or WebP; raises ApiError otherwise."""
    if data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) >= 24:
        return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    if data[:6] in (b"GIF87a", b"GIF89a") and len(data) >= 10:
        return int.from_bytes(data[6:8], "little"), int.from_bytes(data[8:10], "little")
    if data[:2] == b"BM" and len(data) >= 26:
        return (
            int.from_bytes(data[18:22], "little"),
            abs(int.from_bytes(data[22:26], "little", signed=True)),
        )
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return 512, 512  # not worth decoding: only the format matters here
    if data[:2] == b"\xff\xd8":
        i = 2
        while i + 9 < len(data):
            if data[i] != 0xFF:
                i += 1
                continue
            marker = data[i + 1]
            if marker in (
                0xC0,
                0xC1,
                0xC2,
                0xC3,
                0xC5,
                0xC6,
                0xC7,
                0xC9,
                0xCA,
                0xCB,
                0xCD,
                0xCE,
                0xCF,
            ):
                return (
                    int.from_bytes(data[i + 7 : i + 9], "big"),
                    int.from_bytes(data[i + 5 : i + 7], "big"),
                )
            if marker in (0xD8, 0x01, 0xFF) or 0xD0 <= marker <= 0xD7:
                i += 1 if marker == 0xFF else 2
                continue
            i += 2 + int.from_bytes(data[i + 2 : i + 4], "big")
    raise ApiError(400, "Bad Request: IMAGE_PROCESS_FAILED")


def _check_image(data: bytes) -> None:
    width, height = _image_size(data)
    if (
        width <= 0
        or height <= 0
        or width + height > 10_000
        or max(width, height) > 20 * min(width, height)
    ):
        raise ApiError(400, "Bad Request: PHOTO_INVALID_DIMENSIONS")

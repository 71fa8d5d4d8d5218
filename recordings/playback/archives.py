"""Export documents in files: written into a folder, a zip or a tar.gz with a
manifest, and read back from one (manage.py export_recordings, import_recordings);
and the zip the admin's "Export selected" streams.

Each document goes to a temporary file first, as export_chunks streams it, and
into its place only once whole: a recording whose blobs cannot be read leaves no
half document behind, and no recording is held in memory to be written. Reading
one back (document_read) holds about one window's events at a time.
"""

from __future__ import annotations

import codecs
import hashlib
import io
import json
import os
import shutil
import tarfile
import tempfile
import time
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, Any

import orjson

from recordings import blobs

MANIFEST = "manifest.json"
MANIFEST_FORMAT = "replayhub-export"
# Suffixes of the archives an export writes and an import reads.
ZIP_SUFFIXES = (".zip",)
TAR_SUFFIXES = (".tar.gz", ".tgz")


class ArchiveError(Exception):
    """A folder or archive that cannot be read or written; the message says why."""


@dataclass(frozen=True)
class Written:
    """One document written to a temporary file, and what the manifest says of it."""

    path: Path
    size: int
    sha256: str


def document_write(pieces: Iterable[bytes], folder: Path) -> Written:
    """Write a document's pieces to a new file in `folder`, hashing as it goes.

    The file is removed if the pieces fail (a blob that cannot be read).
    """
    digest, size = hashlib.sha256(), 0
    fd, name = tempfile.mkstemp(dir=folder, suffix=".json")
    os.close(fd)
    path = Path(name)
    try:
        with path.open("wb") as handle:
            for piece in pieces:
                handle.write(piece)
                digest.update(piece)
                size += len(piece)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return Written(path, size, digest.hexdigest())


class ExportTarget:
    """Where an export's documents go: a folder, a zip or a tar.gz."""

    def __init__(self, destination: Path) -> None:
        self.destination = destination

    def add(self, name: str, path: Path) -> None:
        raise NotImplementedError

    def close(self, manifest: dict[str, Any]) -> None:
        raise NotImplementedError


class FolderTarget(ExportTarget):
    def __init__(self, destination: Path) -> None:
        super().__init__(destination)
        destination.mkdir(parents=True, exist_ok=True)

    def add(self, name: str, path: Path) -> None:
        shutil.move(path, self.destination / name)

    def close(self, manifest: dict[str, Any]) -> None:
        (self.destination / MANIFEST).write_bytes(blobs.dumps(manifest))


class ZipTarget(ExportTarget):
    def __init__(self, destination: Path) -> None:
        super().__init__(destination)
        self.archive = zipfile.ZipFile(destination, "w", zipfile.ZIP_DEFLATED)

    def add(self, name: str, path: Path) -> None:
        self.archive.write(path, name)
        path.unlink()

    def close(self, manifest: dict[str, Any]) -> None:
        self.archive.writestr(MANIFEST, blobs.dumps(manifest))
        self.archive.close()


class TarTarget(ExportTarget):
    def __init__(self, destination: Path) -> None:
        super().__init__(destination)
        self.archive = tarfile.open(destination, "w:gz")  # noqa: SIM115 - closed in close()

    def add(self, name: str, path: Path) -> None:
        self.archive.add(path, name)
        path.unlink()

    def close(self, manifest: dict[str, Any]) -> None:
        path = document_write([blobs.dumps(manifest)], self.destination.parent).path
        self.add(MANIFEST, path)
        self.archive.close()


def export_target(*, folder: Path | None, archive: Path | None) -> ExportTarget:
    if folder is not None:
        return FolderTarget(folder)
    assert archive is not None
    if archive.name.endswith(ZIP_SUFFIXES):
        return ZipTarget(archive)
    if archive.name.endswith(TAR_SUFFIXES):
        return TarTarget(archive)
    raise ArchiveError(f"{archive}: an archive is a .zip, .tar.gz or .tgz file")


@dataclass(frozen=True)
class ManifestEntry:
    code: str
    project: str
    session_id: str
    file: str
    bytes: int
    sha256: str
    windows: int
    events: int
    markers: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Document:
    """One export document read back: its file name, and the file, open, to be read
    once and forwards (document_read) before the next document is asked for."""

    name: str
    handle: IO[bytes]


def documents_read(source: Path) -> tuple[int, Iterator[Document]]:
    """How many export documents a folder or archive holds, and the documents,
    each checked against the manifest's checksum when there is one (ArchiveError
    when it differs). Each is read twice (the checksum, then the import), never
    held whole."""
    try:
        names, reader = _opened(source)
    except (zipfile.BadZipFile, tarfile.TarError, OSError) as exc:
        raise ArchiveError(f"{source}: not a readable export: {exc}") from exc
    count = len(names) - (MANIFEST in names)
    return count, _checked(reader(names))


def _opened(source: Path) -> tuple[list[str], Any]:
    if source.is_dir():
        files = [path.name for path in source.iterdir() if path.is_file()]
        return _names(files), lambda names: _folder_read(source, names)
    if source.name.endswith(ZIP_SUFFIXES) and source.is_file():
        with zipfile.ZipFile(source) as archive:
            listed = archive.namelist()
        return _names(listed), lambda names: _zip_read(source, names)
    if source.name.endswith(TAR_SUFFIXES) and source.is_file():
        with tarfile.open(source, "r:gz") as archive:
            listed = [member.name for member in archive.getmembers() if member.isfile()]
        return _names(listed), lambda names: _tar_read(source, names)
    raise ArchiveError(
        f"{source}: not a folder, .zip, .tar.gz or .tgz file that exists"
    )


def _checked(documents: Iterator[Document]) -> Iterator[Document]:
    try:
        yield from documents
    except (zipfile.BadZipFile, tarfile.TarError, OSError, EOFError) as exc:
        raise ArchiveError(f"the export cannot be read: {exc}") from exc


def _checksums(data: bytes) -> dict[str, str]:
    try:
        manifest = orjson.loads(data)
        return {row["file"]: row["sha256"] for row in manifest["recordings"]}
    except (ValueError, KeyError, TypeError) as exc:
        raise ArchiveError(f"{MANIFEST} is not an export manifest: {exc}") from exc


def _verify(name: str, checksums: dict[str, str], digest: str) -> None:
    expected = checksums.get(name)
    if expected and digest != expected:
        raise ArchiveError(f"{name}: its checksum is not the manifest's (damaged?)")


def _sha256(handle: IO[bytes]) -> str:
    digest = hashlib.sha256()
    while piece := handle.read(_READ_BYTES):
        digest.update(piece)
    return digest.hexdigest()


def _names(names: Iterable[str]) -> list[str]:
    """Document names, the manifest first (its checksums check the rest)."""
    names = list(names)
    documents = sorted(n for n in names if n.endswith(".json") and n != MANIFEST)
    return ([MANIFEST] if MANIFEST in names else []) + documents


def _folder_read(folder: Path, names: list[str]) -> Iterator[Document]:
    manifest = MANIFEST in names
    checksums = _checksums((folder / MANIFEST).read_bytes()) if manifest else {}
    for name in names[manifest:]:
        with (folder / name).open("rb") as handle:
            _verify(name, checksums, _sha256(handle))
        with (folder / name).open("rb") as handle:
            yield Document(name, handle)


def _zip_read(path: Path, names: list[str]) -> Iterator[Document]:
    manifest = MANIFEST in names
    with zipfile.ZipFile(path) as archive:
        checksums = _checksums(archive.read(MANIFEST)) if manifest else {}
        for name in names[manifest:]:
            with archive.open(name) as handle:
                _verify(name, checksums, _sha256(handle))
            with archive.open(name) as handle:
                yield Document(name, handle)


def _tar_read(path: Path, names: list[str]) -> Iterator[Document]:
    # A gzip stream is read forwards only: a first pass for the manifest (written
    # last) and each document's checksum, then the documents in the archive's order.
    checksums, digests = _tar_checksums(path) if MANIFEST in names else ({}, {})
    wanted = set(names) - {MANIFEST}
    with tarfile.open(path, "r|gz") as archive:
        for member in archive:
            if member.isfile() and member.name in wanted:
                _verify(member.name, checksums, digests.get(member.name, ""))
                handle = archive.extractfile(member)
                assert handle is not None  # a regular file
                yield Document(member.name, handle)


def _tar_checksums(path: Path) -> tuple[dict[str, str], dict[str, str]]:
    checksums: dict[str, str] = {}
    digests: dict[str, str] = {}
    with tarfile.open(path, "r|gz") as archive:
        for member in archive:
            handle = archive.extractfile(member) if member.isfile() else None
            if handle is None:
                continue
            if member.name == MANIFEST:
                checksums = _checksums(handle.read())
            else:
                digests[member.name] = _sha256(handle)
    return checksums, digests


# An export document is read this many bytes at a time.
_READ_BYTES = 1024 * 1024
_DECODER = json.JSONDecoder()
_SPACE = " \t\r\n"


def document_read(
    handle: IO[bytes],
) -> tuple[dict[str, Any], Iterator[tuple[str, Any]] | None]:
    """An export document's members but `windows`, and then its windows one by
    one as (window id, events): the memory held is about one window's events.

    `windows` comes last in an export (docs/storage-format.md); None when there is
    none. Raises ValueError (json.JSONDecodeError among them) for what is not JSON,
    the members before `windows` at once, the rest as the windows are read.
    """
    scanner = _Scanner(handle)
    members = scanner.members()
    header: dict[str, Any] = {}
    for key in members:
        if key == "windows":
            return header, _windows(scanner, members)
        header[key] = scanner.value()
    scanner.end()
    return header, None


def _windows(scanner: _Scanner, members: Iterator[str]) -> Iterator[tuple[str, Any]]:
    for window_id in scanner.members():
        yield window_id, scanner.value()
    for key in members:
        raise ValueError(f"`{key}` comes after `windows`: not an export document")
    scanner.end()


class _Scanner:
    """JSON read from a binary file a value at a time: arrays item by item, any
    other value whole (json's raw_decode, once enough of it has been read)."""

    def __init__(self, handle: IO[bytes]) -> None:
        self.handle = handle
        self.utf8 = codecs.getincrementaldecoder("utf-8")()
        self.text = ""
        self.at = 0
        self.eof = False

    def _more(self, size: int) -> None:
        if self.eof:
            raise ValueError("the document ends early")
        if self.at >= _READ_BYTES:  # what was read already is let go
            self.text, self.at = self.text[self.at :], 0
        data = self.handle.read(size)
        self.eof = not data
        self.text += self.utf8.decode(data, final=self.eof)

    def peek(self) -> str:
        while True:
            while self.at < len(self.text) and self.text[self.at] in _SPACE:
                self.at += 1
            if self.at < len(self.text):
                return self.text[self.at]
            self._more(_READ_BYTES)

    def take(self, char: str) -> None:
        if self.peek() != char:
            raise ValueError(f"expected {char!r}, found {self.peek()!r}")
        self.at += 1

    def end(self) -> None:
        while not self.eof:
            self._more(_READ_BYTES)
        if self.text[self.at :].strip(_SPACE):
            raise ValueError("more follows the document")

    def whole(self) -> Any:
        self.peek()
        size = _READ_BYTES
        while True:
            try:
                value, end = _DECODER.raw_decode(self.text, self.at)
            except json.JSONDecodeError:
                if self.eof:
                    raise
            else:
                # A number at the end of what was read may go on: read on to see.
                if end < len(self.text) or self.eof:
                    self.at = end
                    return value
            self._more(size)
            size *= 2  # a big value (a full snapshot) is parsed again a few times only

    def value(self) -> Any:
        return list(self.items()) if self.peek() == "[" else self.whole()

    def items(self) -> Iterator[Any]:
        self.take("[")
        if self.peek() == "]":
            self.at += 1
            return
        while True:
            yield self.whole()
            if self.peek() == "]":
                self.at += 1
                return
            self.take(",")

    def members(self) -> Iterator[str]:
        """An object's keys; the caller reads each one's value before the next."""
        self.take("{")
        if self.peek() == "}":
            self.at += 1
            return
        while True:
            key = self.whole()
            if not isinstance(key, str):
                raise ValueError("an object's key is not a string")
            self.take(":")
            yield key
            if self.peek() == "}":
                self.at += 1
                return
            self.take(",")


def progress_bar(done: int, total: int, started: float, width: int = 30) -> str:
    """`[######......] 12/40 (3.1/s)` for a command's progress on stderr."""
    filled = width * done // max(total, 1)
    rate = done / max(time.monotonic() - started, 1e-9)
    return f"[{'#' * filled}{'.' * (width - filled)}] {done}/{total} ({rate:.1f}/s)"


class _Sink(io.RawIOBase):
    """What a zip writer writes, kept until taken: a stream that cannot seek, so
    zipfile puts each member's sizes after its data."""

    def __init__(self) -> None:
        super().__init__()
        self.pieces: list[bytes] = []

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        self.pieces.append(bytes(data))
        return len(data)

    def take(self) -> bytes:
        data, self.pieces = b"".join(self.pieces), []
        return data


def zip_stream(documents: Iterable[tuple[str, Iterable[bytes]]]) -> Iterator[bytes]:
    """A zip of (name, pieces) documents, produced as the pieces come: the memory
    held is about one piece, compressed, whatever the documents' size."""
    sink = _Sink()
    with zipfile.ZipFile(sink, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, pieces in documents:
            with archive.open(name, "w", force_zip64=True) as member:
                for piece in pieces:
                    member.write(piece)
                    if sink.pieces:
                        yield sink.take()
    yield sink.take()

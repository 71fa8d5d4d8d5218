"""Export documents on disk: written into a folder, a zip or a tar.gz with a
manifest, and read back from one (manage.py export_recordings, import_recordings).

Each document goes to a temporary file first, as export_chunks streams it, and
into its place only once whole: a recording whose blobs cannot be read leaves no
half document behind, and no recording is held in memory to be written.
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import tarfile
import tempfile
import time
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

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
    """One export document read back: its file name and bytes."""

    name: str
    data: bytes


def documents_read(source: Path) -> tuple[int, Iterator[Document]]:
    """How many export documents a folder or archive holds, and the documents,
    each checked against the manifest's checksum when there is one (ArchiveError
    when it differs)."""
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
    checksums: dict[str, str] = {}
    try:
        yield from _verified(documents, checksums)
    except (zipfile.BadZipFile, tarfile.TarError, OSError) as exc:
        raise ArchiveError(f"the export cannot be read: {exc}") from exc


def _verified(
    documents: Iterator[Document], checksums: dict[str, str]
) -> Iterator[Document]:
    for document in documents:
        if document.name == MANIFEST:
            checksums.update(_checksums(document))
            continue
        expected = checksums.get(document.name)
        if expected and hashlib.sha256(document.data).hexdigest() != expected:
            raise ArchiveError(
                f"{document.name}: its checksum is not the manifest's (damaged?)"
            )
        yield document


def _checksums(manifest: Document) -> dict[str, str]:
    try:
        data = orjson.loads(manifest.data)
        return {row["file"]: row["sha256"] for row in data["recordings"]}
    except (ValueError, KeyError, TypeError) as exc:
        raise ArchiveError(f"{MANIFEST} is not an export manifest: {exc}") from exc


def _names(names: Iterable[str]) -> list[str]:
    """Document names, the manifest first (its checksums check the rest)."""
    names = list(names)
    documents = sorted(n for n in names if n.endswith(".json") and n != MANIFEST)
    return ([MANIFEST] if MANIFEST in names else []) + documents


def _folder_read(folder: Path, names: list[str]) -> Iterator[Document]:
    for name in names:
        yield Document(name, (folder / name).read_bytes())


def _zip_read(path: Path, names: list[str]) -> Iterator[Document]:
    with zipfile.ZipFile(path) as archive:
        for name in names:
            yield Document(name, archive.read(name))


def _tar_read(path: Path, names: list[str]) -> Iterator[Document]:
    # A gzip stream is read forwards only: the manifest (written last) on a first
    # pass, then the documents in the archive's order.
    wanted = set(names) - {MANIFEST}
    if MANIFEST in names:
        yield from _tar_members(path, {MANIFEST})
    yield from _tar_members(path, wanted)


def _tar_members(path: Path, wanted: set[str]) -> Iterator[Document]:
    with tarfile.open(path, "r|gz") as archive:
        for member in archive:
            if member.isfile() and member.name in wanted:
                handle = archive.extractfile(member)
                assert handle is not None  # a regular file
                yield Document(member.name, handle.read())


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

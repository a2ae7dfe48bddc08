"""The on-disk caches stay within their bound, dropping what was used longest ago."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import jax.numpy as jnp
import pytest

from bayes_unsl import _cache
from bayes_unsl.inference.stored import StoredProgram

MB = 2**20


def _entry(folder: Path, name: str, size: int, age_days: float) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_bytes(b"x" * size)
    used = time.time() - age_days * 86400
    os.utime(path, (used, used))
    return path


def test_prune_removes_the_least_recently_used_entries_of_every_folder(tmp_path):
    jax_dir, programs = tmp_path / "jax", tmp_path / "programs"
    oldest = _entry(jax_dir, "a-cache", 400, age_days=30)
    old = _entry(programs, "b.program", 400, age_days=20)
    recent = _entry(jax_dir, "c-cache", 400, age_days=2)
    newest = _entry(programs, "d.program", 400, age_days=1)
    lock = _entry(jax_dir, ".lockfile", 400, age_days=40)

    assert _cache.prune([jax_dir, programs], max_bytes=900) == 800
    assert not oldest.exists() and not old.exists()
    assert recent.exists() and newest.exists() and lock.exists()
    assert _cache.prune([jax_dir, programs], max_bytes=900) == 0  # within the bound already
    assert _cache.prune([tmp_path / "absent"], max_bytes=0) == 0


def test_the_bound_comes_from_the_environment(monkeypatch):
    monkeypatch.delenv("BAYES_UNSL_CACHE_MAX_MB", raising=False)
    assert _cache.max_cache_bytes() == _cache.DEFAULT_MAX_MB * MB
    monkeypatch.setenv("BAYES_UNSL_CACHE_MAX_MB", "2.5")
    assert _cache.max_cache_bytes() == int(2.5 * MB)
    for bad in ("lots", "0", "-1", "nan"):
        monkeypatch.setenv("BAYES_UNSL_CACHE_MAX_MB", bad)
        with pytest.raises(ValueError, match="BAYES_UNSL_CACHE_MAX_MB.*positive"):
            _cache.max_cache_bytes()


def test_a_user_s_own_compilation_cache_is_left_alone(tmp_path, monkeypatch):
    """Only the stored programs are pruned where the user pointed JAX's cache elsewhere."""
    theirs = _entry(tmp_path / "jax", "theirs-cache", MB, age_days=30)
    old = _entry(tmp_path / "programs", "old.program", MB, age_days=30)
    new = _entry(tmp_path / "programs", "new.program", MB, age_days=1)
    config = SimpleNamespace(jax_compilation_cache_dir=str(tmp_path / "jax"))
    monkeypatch.setattr(_cache, "jax", SimpleNamespace(config=config))
    monkeypatch.setattr(_cache, "_DONE", False)
    monkeypatch.setenv("BAYES_UNSL_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("BAYES_UNSL_CACHE_MAX_MB", "1.5")
    assert _cache.enable_compilation_cache() == str(tmp_path / "jax")
    assert theirs.exists() and new.exists() and not old.exists()


def test_a_new_process_prunes_its_cache_before_using_it(tmp_path):
    old = _entry(tmp_path / "jax", "old-cache", MB, age_days=30)
    new = _entry(tmp_path / "programs", "new.program", MB, age_days=1)
    env = dict(os.environ, BAYES_UNSL_CACHE_DIR=str(tmp_path), BAYES_UNSL_CACHE_MAX_MB="1.5")
    code = "from bayes_unsl._cache import enable_compilation_cache as e; print(e())"
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == str(tmp_path / "jax")
    assert new.exists() and not old.exists()


def test_loading_a_stored_program_marks_it_used(tmp_path):
    def build():
        return lambda v: 2.0 * v

    args = (jnp.arange(3.0),)
    first = StoredProgram(build, "double", tmp_path, "cpu")
    first(*args)
    assert first.source == "export"
    (path,) = tmp_path.glob("*.program")
    long_ago = time.time() - 30 * 86400
    os.utime(path, (long_ago, long_ago))
    again = StoredProgram(build, "double", tmp_path, "cpu")
    assert list(again(*args)) == [0.0, 2.0, 4.0]
    assert again.source == "store"
    assert path.stat().st_mtime > time.time() - 3600


def test_the_cache_command_shows_and_clears_the_caches(tmp_path, monkeypatch, capsys):
    from bayes_unsl.cli import main

    entry = _entry(tmp_path / "programs", "a.program", MB, age_days=1)
    monkeypatch.setenv("BAYES_UNSL_CACHE_DIR", str(tmp_path))
    assert main(["cache"]) == 0
    shown = capsys.readouterr().out
    assert f"{tmp_path / 'programs'}: 1 files, 1.0 MB" in shown and entry.exists()
    assert main(["cache", "--clear"]) == 0
    assert "Removed 1.0 MB." in capsys.readouterr().out and not entry.exists()
    monkeypatch.setenv("BAYES_UNSL_CACHE_DIR", "0")
    assert main(["cache"]) == 0
    assert "Caching is off" in capsys.readouterr().out

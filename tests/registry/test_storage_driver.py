"""The storage driver contract (corral/registry/storage.py), as one suite every driver runs.

Add a driver to DRIVERS and it must pass all of this unchanged.
"""

from __future__ import annotations

import threading

import pytest

from corral.registry.storage import FilesystemDriver

DRIVERS = {"filesystem": lambda tmp_path: FilesystemDriver(tmp_path / "store")}


@pytest.fixture(params=sorted(DRIVERS))
def driver(request, tmp_path):
    return DRIVERS[request.param](tmp_path)


def test_put_get_stat(driver):
    driver.put("a/b/c", b"hello")
    assert driver.get("a/b/c") == b"hello"
    info = driver.stat("a/b/c")
    assert (info.size, info.is_dir) == (5, False)
    assert driver.stat("a/b").is_dir
    assert driver.stat("nope") is None


def test_put_replaces_whole(driver):
    driver.put("x", b"old content")
    driver.put("x", b"new")
    assert driver.get("x") == b"new"


def test_missing_paths_raise_file_not_found(driver):
    for call in (lambda: driver.get("nope"), lambda: driver.reader("nope"),
                 lambda: driver.list("nope"), lambda: driver.delete("nope"),
                 lambda: driver.move("nope", "elsewhere")):
        with pytest.raises(FileNotFoundError):
            call()


def test_reader_from_offset(driver):
    driver.put("r", b"0123456789")
    with driver.reader("r", 4) as f:
        assert f.read() == b"456789"


def test_writer_appends_commits_and_cancels(driver):
    w = driver.writer("up/data")
    w.write(b"abc")
    w.commit()
    w = driver.writer("up/data", append=True)
    assert w.size == 3
    w.write(b"def")
    assert w.size == 6
    w.commit()
    assert driver.get("up/data") == b"abcdef"
    w = driver.writer("up/other")
    w.write(b"zzz")
    w.cancel()
    assert driver.stat("up/other") is None


def test_list_is_sorted_and_relative(driver):
    for name in ("b", "a", "c/d"):
        driver.put(f"dir/{name}", b"x")
    assert driver.list("dir") == ["dir/a", "dir/b", "dir/c"]


def test_move_is_atomic_and_replaces(driver):
    driver.put("src", b"new bytes")
    driver.put("dst/data", b"old")
    driver.move("src", "dst/data")
    assert driver.get("dst/data") == b"new bytes"
    assert driver.stat("src") is None


def test_delete_file_and_tree(driver):
    driver.put("t/1", b"x")
    driver.put("t/sub/2", b"y")
    driver.delete("t/1")
    assert driver.stat("t/1") is None
    driver.delete("t")
    assert driver.stat("t") is None


@pytest.mark.parametrize("path", ["../escape", "a/../../escape", "/../../etc/passwd"])
def test_paths_never_escape_the_root(driver, path):
    with pytest.raises(ValueError):
        driver.put(path, b"x")


def test_readers_never_see_a_partial_put(driver):
    big_a, big_b = b"a" * (4 << 20), b"b" * (4 << 20)
    driver.put("p", big_a)
    seen: set[bytes] = set()
    stop = threading.Event()

    def read():
        while not stop.is_set():
            data = driver.get("p")
            seen.add(data[:1] + data[-1:] + bytes([len(data) == len(big_a)]))

    t = threading.Thread(target=read)
    t.start()
    for i in range(20):
        driver.put("p", big_b if i % 2 == 0 else big_a)
    stop.set()
    t.join()
    assert seen <= {b"aa\x01", b"bb\x01"}

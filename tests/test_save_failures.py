"""Saves that fail for real reasons of the file system: a missing folder, a read-only folder (by
permissions, and a read-only mount) and a full disk (no space for the data, and no free inode).
Each raises an OSError with the errno's meaning that names the path, leaves the previous file byte
for byte, and leaves no temporary file (nor its blocks) behind. A disk that fills up half way
through the write by the file-size limit (EFBIG) is in test_model_file.py.

These faults are real, not simulated: the read-only folder is written to by an unprivileged
process (root writes anywhere, so a test running as root drops to `nobody` in a subprocess), and
the read-only mount and the full disks are a bind mount and small tmpfs file systems mounted in a
private mount namespace (`unshare --mount`) of a subprocess, which needs root; without it those
cases are skipped, saying why."""

import errno
import hashlib
import json
import os
import pickle
import pwd
import shutil
import subprocess
import sys
import tempfile
import textwrap

import pytest

import fastae
from fastae import Autoencoder

# ---- estimators and the subprocess that saves them ---------------------------------------------


@pytest.fixture(scope="module")
def estimators(tmp_path_factory):
    """A small model (about 1 KB on disk) and a big one (about 100 KB), pickled for subprocesses."""
    X = fastae.load_digits()[0][:200]
    small = Autoencoder(hidden_layer_sizes=(4,), epochs=1, random_state=0).fit(X)
    big = Autoencoder(hidden_layer_sizes=(64,), epochs=1, random_state=0).fit(X)
    folder = tmp_path_factory.mktemp("estimators")
    path = folder / "estimators.pkl"
    path.write_bytes(pickle.dumps({"small": small, "big": big}))
    small.save(folder / "small.fae")
    big.save(folder / "big.fae")
    return {"small": small, "big": big, "pickle": str(path), "big_size": os.path.getsize(folder / "big.fae"),
            "small_sha": hashlib.sha256((folder / "small.fae").read_bytes()).hexdigest()}


_CHILD = textwrap.dedent("""
    # Runs one failing save as the spec (argv[1], JSON) says and prints what it saw as JSON: the
    # mounts to make (in this process's private mount namespace), whether to save the old file
    # first, whether to drop root, then the save that must fail.
    import errno, hashlib, json, os, pickle, subprocess, sys
    import fastae

    spec = json.loads(sys.argv[1])
    est = pickle.loads(open(spec["estimators"], "rb").read())
    est["small"].save(spec["warmup"])  # as the starting user: every code path of save is loaded
    target, folder = spec["target"], os.path.dirname(spec["target"])
    out = {}
    for cmd in spec.get("mounts", []):
        run = subprocess.run(cmd, capture_output=True, text=True)
        if run.returncode != 0:
            print(json.dumps({"setup_failed": " ".join(cmd) + ": " + run.stderr.strip()}))
            sys.exit(0)
    if spec.get("save_old_first"):
        est["small"].save(target)
    if spec.get("drop_to"):
        os.setgroups([])
        os.setgid(spec["drop_to"][1])
        os.setuid(spec["drop_to"][0])
        out["euid"] = os.geteuid()

    def look():
        st = os.statvfs(folder)
        try:
            sha = hashlib.sha256(open(target, "rb").read()).hexdigest()
        except OSError as exc:
            sha = "unreadable: " + str(exc)
        return {"files": sorted(os.listdir(folder)), "sha": sha, "free_bytes": st.f_bfree * st.f_frsize,
                "free_inodes": st.f_ffree}

    out["before"] = look()
    try:
        est[spec["new"]].save(target)
        out["saved"] = True
    except OSError as exc:
        out.update(saved=False, type=type(exc).__name__, errno=errno.errorcode.get(exc.errno), message=str(exc))
    out["after"] = look()
    print(json.dumps(out))
""")


def _run_child(spec, namespace=False):
    cmd = [sys.executable, "-c", _CHILD, json.dumps(spec)]
    if namespace:
        cmd = ["unshare", "--mount", "--propagation", "private", *cmd]
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, f"the saving process died (rc {run.returncode}):\n{run.stderr[-3000:]}"
    result = json.loads(run.stdout.strip().splitlines()[-1])
    if "setup_failed" in result:
        pytest.skip(f"this machine cannot set the fault up: {result['setup_failed']}")
    return result


def _check_failed(result, target, errno_name, step, old_sha, private_fs=False):
    """The save raised the errno's OSError naming the path and the step; the old file is byte for
    byte the one before; the folder holds what it held and, on a file system of the test's own
    (others may write to a shared one meanwhile), the free space and inodes are back where they
    were: no temporary file is left, open or not."""
    assert result["saved"] is False, result
    assert result["errno"] == errno_name, result
    expected_type = {"EACCES": "PermissionError", "ENOENT": "FileNotFoundError"}.get(errno_name, "OSError")
    assert result["type"] == expected_type, result
    assert str(target) in result["message"] and step in result["message"], result["message"]
    assert result["before"]["sha"] == result["after"]["sha"] == old_sha
    assert result["after"]["files"] == result["before"]["files"] == [os.path.basename(target)]
    if private_fs:
        assert result["after"]["free_bytes"] == result["before"]["free_bytes"]
        assert result["after"]["free_inodes"] == result["before"]["free_inodes"]


def _need_root_and_mounts(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("mounting a read-only or a full file system needs root (CAP_SYS_ADMIN); not root here")
    if shutil.which("unshare") is None or shutil.which("mount") is None:
        pytest.skip("unshare(1) or mount(8) not installed")
    probe = tmp_path / "probe"
    probe.mkdir()
    run = subprocess.run(["unshare", "--mount", "--propagation", "private", "mount", "-t", "tmpfs", "-o", "size=64k",
                          "tmpfs", str(probe)], capture_output=True, text=True)
    if run.returncode != 0:
        pytest.skip(f"no private mount namespace with tmpfs here: {run.stderr.strip()}")


# ---- a missing folder ------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["missing folder", "a file where the folder should be"])
def test_saving_into_a_missing_folder_names_the_path_and_creates_nothing(estimators, tmp_path, kind):
    old = tmp_path / "m.fae"
    estimators["small"].save(old)
    before = old.read_bytes()
    if kind == "missing folder":
        target, expected = tmp_path / "missing" / "m.fae", FileNotFoundError
    else:
        (tmp_path / "notes.txt").write_text("a file, not a folder")
        target, expected = tmp_path / "notes.txt" / "m.fae", NotADirectoryError
    listing = sorted(os.listdir(tmp_path))
    with pytest.raises(expected) as info:
        estimators["big"].save(target)
    assert info.value.errno == (errno.ENOENT if expected is FileNotFoundError else errno.ENOTDIR)
    assert str(target) in str(info.value) and "cannot create a temporary file" in str(info.value)
    assert sorted(os.listdir(tmp_path)) == listing and old.read_bytes() == before


# ---- a read-only folder ----------------------------------------------------------------------

def test_saving_into_a_folder_without_write_permission(estimators, tmp_path):
    """The folder may not be written; the old file itself may (mode 0666), so a save that wrote
    in place would succeed: the atomic save must fail instead, at its temporary file."""
    folder = tempfile.mkdtemp(prefix="fastae-readonly-")  # not under tmp_path: its parents are 0700
    try:
        target = os.path.join(folder, "m.fae")
        estimators["small"].save(target)
        os.chmod(target, 0o666)
        spec = {"estimators": estimators["pickle"], "warmup": str(tmp_path / "warmup.fae"), "target": target,
                "new": "big"}
        if os.geteuid() == 0:
            # Root ignores permissions: the child drops to nobody, and the folder stays root's 0755.
            try:
                nobody = pwd.getpwnam("nobody")
                spec["drop_to"] = [nobody.pw_uid, nobody.pw_gid]
            except KeyError:
                spec["drop_to"] = [65534, 65534]
            os.chmod(folder, 0o755)
        else:
            os.chmod(folder, 0o555)
        result = _run_child(spec)
        if result["before"]["sha"].startswith("unreadable"):
            pytest.skip(f"the unprivileged process cannot reach {folder} at all ({result['before']['sha']})")
        if "drop_to" in spec:
            assert result["euid"] == spec["drop_to"][0]
        _check_failed(result, target, "EACCES", "cannot create a temporary file", estimators["small_sha"])
        assert os.stat(target).st_mode & 0o777 == 0o666
    finally:
        os.chmod(folder, 0o755)
        shutil.rmtree(folder)


def test_saving_onto_a_read_only_mount(estimators, tmp_path):
    _need_root_and_mounts(tmp_path)
    folder = tmp_path / "ro"
    folder.mkdir()
    target = folder / "m.fae"
    estimators["small"].save(target)
    spec = {"estimators": estimators["pickle"], "warmup": str(tmp_path / "warmup.fae"), "target": str(target),
            "new": "big",
            "mounts": [["mount", "--bind", str(folder), str(folder)],
                       ["mount", "-o", "remount,ro,bind", str(folder)]]}
    result = _run_child(spec, namespace=True)
    _check_failed(result, target, "EROFS", "cannot create a temporary file", estimators["small_sha"])
    # Seen from outside the namespace too: the real folder as it was.
    assert os.listdir(folder) == ["m.fae"]
    assert hashlib.sha256(target.read_bytes()).hexdigest() == estimators["small_sha"]


# ---- a full disk -----------------------------------------------------------------------------

@pytest.mark.parametrize("full", ["no space for the data", "no free inode"])
def test_saving_onto_a_full_disk(estimators, tmp_path, full):
    """A 64 KiB tmpfs holding the old ~1 KB file. The ~100 KB model runs out of blocks while its
    temporary file is written (ENOSPC from write); with nr_inodes=2 (the root and the old file)
    even the small model cannot create its temporary file (ENOSPC from open)."""
    _need_root_and_mounts(tmp_path)
    folder = tmp_path / "disk"
    folder.mkdir()
    target = folder / "m.fae"
    options = "size=64k" if full == "no space for the data" else "size=64k,nr_inodes=2"
    spec = {"estimators": estimators["pickle"], "warmup": str(tmp_path / "warmup.fae"), "target": str(target),
            "new": "big" if full == "no space for the data" else "small", "save_old_first": True,
            "mounts": [["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)]]}
    result = _run_child(spec, namespace=True)
    step = "cannot write the temporary file" if full == "no space for the data" else "cannot create a temporary file"
    _check_failed(result, target, "ENOSPC", step, estimators["small_sha"], private_fs=True)
    if full == "no free inode":
        assert result["before"]["free_inodes"] == 0
    else:
        assert result["before"]["free_bytes"] < estimators["big_size"]
    assert os.listdir(folder) == []  # the tmpfs was the child's alone

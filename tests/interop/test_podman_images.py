"""Images cross between podman and kobako in both directions, both archive formats.

podman → kobako: a busybox rootfs ``podman import``ed, ``podman save``d as oci-archive and docker-archive,
loads in kobako with the same config digest (the image ID) and the same layers, and unpacks to the files.
kobako → podman: a rootfs ``kobako import``ed and ``kobako save``d in both formats loads in ``podman load``
and runs there with runc (``echo hi`` prints hi). Podman is isolated (kobako.testing.podman).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from kobako.testing.podman import Podman

pytestmark = [pytest.mark.root, pytest.mark.interop]

KOBAKO = str(Path(__file__).resolve().parents[2] / ".venv" / "bin" / "kobako")
PODMAN_IMAGE = "localhost/kobako-interop/bb:1"


@pytest.fixture(scope="module")
def podman(tmp_path_factory: pytest.TempPathFactory, busybox_rootfs: Path) -> Iterator[Podman]:
    for tool in ("podman", "conmon", "runc"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed")
    pm = Podman(tmp_path_factory.mktemp("podman-images"))
    try:
        pm.import_rootfs(busybox_rootfs, PODMAN_IMAGE)
        yield pm
    finally:
        left = pm.close()
    assert not left, f"left behind by the podman tests: {left}"


def kobako(root: Path, *args: str) -> str:
    proc = subprocess.run([KOBAKO, *args], capture_output=True, text=True, timeout=120, check=False,
                          env={**os.environ, "KOBAKO_ROOT": str(root)})  # fmt: skip
    assert proc.returncode == 0, f"kobako {' '.join(args)}: {proc.stderr}"
    return proc.stdout


def _archive_facts(path: Path) -> tuple[str, list[str]]:
    """(config digest, layer digests as the archive names them) of a one-image archive."""
    with tarfile.open(path) as tar:
        names = tar.getnames()
        if "manifest.json" in names:
            item = json.load(tar.extractfile("manifest.json"))[0]
            config = "sha256:" + item["Config"].rsplit("/", 1)[-1].removesuffix(".json")
            return config, ["sha256:" + p.rsplit("/", 1)[-1].removesuffix(".tar") for p in item["Layers"]]
        index = json.load(tar.extractfile("index.json"))
        mdigest = index["manifests"][0]["digest"]
        manifest = json.load(tar.extractfile("blobs/sha256/" + mdigest[7:]))
        return manifest["config"]["digest"], [layer["digest"] for layer in manifest["layers"]]


@pytest.mark.parametrize("fmt", ["oci-archive", "docker-archive"])
def test_podman_archive_loads_in_kobako(podman: Podman, tmp_path: Path, fmt: str) -> None:
    archive = tmp_path / f"{fmt}.tar"
    podman("save", "--format", fmt, "-o", str(archive), PODMAN_IMAGE)
    podman_id = podman("image", "inspect", "--format", "{{.Id}}", PODMAN_IMAGE).stdout.strip()
    config_digest, layers = _archive_facts(archive)
    assert config_digest == "sha256:" + podman_id.removeprefix("sha256:")

    root = tmp_path / "kobako"
    assert kobako(root, "load", "-i", str(archive)) == f"Loaded image: {PODMAN_IMAGE}\n"
    doc = json.loads(kobako(root, "image", "inspect", PODMAN_IMAGE))[0]
    assert doc["Id"] == config_digest
    assert doc["Config"] == {"Cmd": ["sh"]}
    assert [layer["digest"] for layer in _kobako_manifest(root, doc)["layers"]] == layers
    from kobako.images.service import ImageService

    svc = ImageService(str(root))
    try:
        image = svc.resolve(PODMAN_IMAGE)
        svc.ensure_unpacked(image)
        assert {i.key for i in svc.snapshotter().walk()} == {image.top_snapshot}
    finally:
        svc.close()
    assert "no problems found" in kobako(root, "system", "check")


def _kobako_manifest(root: Path, doc: dict) -> dict:
    digest = doc["RepoDigests"][0].partition("@")[2]
    return json.loads((root / "content" / "blobs" / "sha256" / digest[7:]).read_text())


@pytest.mark.parametrize("fmt", ["oci-archive", "docker-archive"])
def test_kobako_archive_runs_in_podman(
    podman: Podman, tmp_path: Path, busybox_rootfs: Path, fmt: str
) -> None:
    busybox_tar = tmp_path / "rootfs.tar"
    with tarfile.open(busybox_tar, "w") as tar:
        tar.add(str(busybox_rootfs), arcname=".")
    root = tmp_path / "kobako"
    name = f"localhost/kobako-made/{fmt}:v1"
    image_id = kobako(root, "import", "-c", 'CMD ["sh"]', str(busybox_tar), name).strip()
    archive = tmp_path / "out.tar"
    kobako(root, "save", "--format", fmt, "-o", str(archive), name)
    out = podman("load", "-i", str(archive)).stdout
    assert name in out
    assert podman("image", "inspect", "--format", "{{.Id}}", name).stdout.strip() == image_id.removeprefix(
        "sha256:"
    )
    run = podman("run", "--rm", "--runtime", "runc", *podman.run_flags(), name, "echo", "hi", check=False)
    assert run.returncode == 0, run.stderr
    assert run.stdout == "hi\n"
    podman("rmi", name)

"""What the built image holds: no build leftovers in any layer, user and group 10001 with
their entries, the package's version in its label, exactly the pinned dependencies."""

from __future__ import annotations

import json

from pvewatch import __version__
from tests.image.conftest import REPO
from tests.image.support import Built

SMALL_LAYER_BYTES = 1_000_000


def _layers_above_base(built: Built) -> list[tuple[int, str]]:
    """(size in bytes, instruction) of each layer the Dockerfile adds, oldest first."""

    def history(image: str) -> list[tuple[int, str]]:
        out = built.engine.out("history", "--no-trunc", "--human=false",
                               "--format", "{{json .}}", image)  # fmt: skip
        rows = [json.loads(line) for line in out.splitlines()]
        return [(int(row["Size"]), str(row["CreatedBy"])) for row in reversed(rows)]

    base = history(built.base)
    ours = history(built.image)
    assert ours[: len(base)] == base
    return ours[len(base) :]


def _bytes_of_files(built: Built, path: str) -> int:
    """The bytes of the files under path as the engine sizes a layer: files and symlinks,
    a hard link once, directories not at all (`du -sb` counts each directory's 4 KiB too:
    1.07 MB over the virtualenv's directories once the email and MQTT sinks' packages
    came in)."""
    listing = built.engine.out("run", "--rm", "--network", "none", "--entrypoint", "find",
                               built.image, path, "!", "-type", "d",
                               "-printf", "%i %s\\n")  # fmt: skip
    sizes = dict(line.split() for line in listing.splitlines())
    return sum(map(int, sizes.values()))


def test_no_wheel_or_build_file_stays_in_any_layer(built: Built) -> None:
    """Issue 20 defect 1: copying the wheels in and removing them in a later RUN left an
    11.7 MB layer. Now one layer is big, the virtualenv, and it holds what it runs."""
    layers = _layers_above_base(built)
    big = [(size, created) for size, created in layers if size > SMALL_LAYER_BYTES]
    assert len(big) == 1, big
    size, created = big[0]
    assert "COPY dir:" in created or "/opt/pvewatch" in created, created
    assert abs(size - _bytes_of_files(built, "/opt/pvewatch")) < SMALL_LAYER_BYTES, size
    leftovers = built.engine.out(
        "run", "--rm", "--network", "none", "--entrypoint", "sh", built.image, "-c",
        "ls -d /tmp/wheels /wheels /src 2>/dev/null; find /opt /tmp /root -name '*.whl';"
        "ls /opt/pvewatch/bin | grep -x -e pip -e pip3 || true",
    )  # fmt: skip
    assert leftovers == ""


def test_user_and_group_10001_own_the_state_directory(built: Built) -> None:
    """Defect 2: the group was `pvewatch` with gid 999 while the process ran as 10001:10001."""
    out = built.engine.out(
        "run", "--rm", "--network", "none", "--entrypoint", "sh", built.image, "-c",
        "id -u; id -g; getent group 10001; getent passwd 10001 | cut -d: -f1,3,4,6;"
        "stat -c '%u:%g %a' /var/lib/pvewatch",
    )  # fmt: skip
    assert out.splitlines() == [
        "10001",
        "10001",
        "pvewatch:x:10001:",
        "pvewatch:10001:10001:/var/lib/pvewatch",
        "10001:10001 700",
    ]


def test_the_version_label_is_the_packages(built: Built) -> None:
    """Defect 6: the label said `dev`."""
    label = built.engine.out("image", "inspect", "--format",
                             '{{index .Config.Labels "org.opencontainers.image.version"}}',
                             built.image)  # fmt: skip
    assert label == __version__
    version = built.engine.out("run", "--rm", "--network", "none", built.image, "--version")
    assert version == f"pvewatch {__version__}"


def test_the_image_holds_exactly_the_pinned_versions(built: Built) -> None:
    """Reproducible builds: deploy/docker/constraints.txt decides every version."""
    script = ("import json, importlib.metadata as m; print(json.dumps("
              "{d.metadata['Name'].lower().replace('_', '-'): d.version "
              "for d in m.distributions()}))")  # fmt: skip
    run = ["run", "--rm", "--network", "none", "--entrypoint", "python", built.image]
    installed = json.loads(built.engine.out(*run, "-c", script))
    text = (REPO / "deploy" / "docker" / "constraints.txt").read_text()
    pins = dict(line.lower().replace("_", "-").split("==") for line in text.splitlines()
                if line and not line.startswith("#"))  # fmt: skip
    del pins["setuptools"]  # builds pvewatch, then leaves the virtualenv
    assert installed == pins | {"pvewatch": __version__}

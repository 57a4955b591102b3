"""``kobako import --change``: Dockerfile instructions applied to the config."""

from __future__ import annotations

import pytest

from kobako.errors import InvalidArgument
from kobako.images.changes import apply_changes


def test_changes() -> None:
    cfg = apply_changes({}, [
        'CMD ["sh", "-c", "echo hi"]',
        "ENTRYPOINT /bin/init --flag",
        "ENV A=1 B='two words'",
        "ENV LEGACY value with spaces",
        "ENV A=3",
        'LABEL maintainer="me" version=1',
        "EXPOSE 80 53/udp",
        'VOLUME ["/data", "/logs"]',
        "VOLUME /cache",
        "USER nobody",
        "WORKDIR app",
        "STOPSIGNAL SIGTERM",
        "onbuild RUN true",
    ])  # fmt: skip
    assert cfg["Cmd"] == ["sh", "-c", "echo hi"]
    assert cfg["Entrypoint"] == ["/bin/sh", "-c", "/bin/init --flag"]
    assert cfg["Env"] == ["B=two words", "LEGACY=value with spaces", "A=3"]
    assert cfg["Labels"] == {"maintainer": "me", "version": "1"}
    assert cfg["ExposedPorts"] == {"80/tcp": {}, "53/udp": {}}
    assert cfg["Volumes"] == {"/data": {}, "/logs": {}, "/cache": {}}
    assert (cfg["User"], cfg["WorkingDir"], cfg["StopSignal"]) == ("nobody", "/app", "SIGTERM")
    assert cfg["OnBuild"] == ["RUN true"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("RUN make", "not a valid change command"),
        ("CMD", "needs an argument"),
        ("EXPOSE http", "invalid port"),
        ("EXPOSE 70000", "invalid port"),
        ("VOLUME rel", "absolute"),
        ("LABEL novalue", "KEY=VALUE"),
        ("ENV 'unterminated", "quotation"),
    ],
)
def test_bad_changes(change: str, message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        apply_changes({}, [change])

"""Real Dockerfiles built by `kobako build`, their images run with `kobako run` and checked."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.root


def test_single_stage(kb, context) -> None:  # type: ignore[no-untyped-def]
    ctx = context(
        'FROM busybox\nENV APP=/app GREETING="hello world"\nWORKDIR $APP\nCOPY hello.txt .\n'
        'RUN cat hello.txt > copy.txt && echo "$GREETING" >> copy.txt\n'
        'EXPOSE 8080 53/udp\nLABEL org.example.name="demo app"\nVOLUME /data\nSTOPSIGNAL SIGINT\n'
        'ENTRYPOINT ["/bin/cat"]\nCMD ["/app/copy.txt"]\n',
        {"hello.txt": "hi there\n"},
    )
    out = kb.build(ctx, "-t", "demo:1").stdout
    assert "STEP 1/11: FROM busybox" in out and 'STEP 11/11: CMD ["/app/copy.txt"]' in out
    assert kb("run", "--rm", "--network", "none", "demo:1").stdout == "hi there\nhello world\n"
    cfg = kb.config("demo:1")["Config"]
    assert cfg["WorkingDir"] == "/app"
    assert cfg["Env"][-2:] == ["APP=/app", "GREETING=hello world"]
    assert cfg["ExposedPorts"] == {"8080/tcp": {}, "53/udp": {}}
    assert cfg["Labels"] == {"org.example.name": "demo app"}
    assert cfg["Volumes"] == {"/data": {}} and cfg["StopSignal"] == "SIGINT"
    assert cfg["Entrypoint"] == ["/bin/cat"] and cfg["Cmd"] == ["/app/copy.txt"]


def test_history_and_empty_layers(kb, context) -> None:  # type: ignore[no-untyped-def]
    ctx = context('FROM busybox\nARG V=1\nRUN true\nRUN echo $V > /v\nCMD ["sh", "-c", "cat /v"]\n')
    kb.build(ctx, "-t", "hist")
    history = kb.history("hist")[1:]  # after the import's entry
    assert [h["created_by"] for h in history] == [
        "RUN |1 V=1 /bin/sh -c true",
        "RUN |1 V=1 /bin/sh -c echo $V > /v",
        '/bin/sh -c #(nop)  CMD ["sh" "-c" "cat /v"]',
    ]
    assert [h.get("empty_layer", False) for h in history] == [True, False, True]
    layers = kb.layers("hist")
    assert len(layers) == 2  # the base and the one RUN that changed something
    assert [m.name for m in layers[1]] == ["v"]  # no /etc/hosts or /etc/resolv.conf mount points
    assert "V" not in str(kb.config("hist")["Config"]["Env"])


def test_multi_stage_copy_from_and_unused_stage(kb, context) -> None:  # type: ignore[no-untyped-def]
    ctx = context(
        "FROM busybox AS build\nRUN mkdir /out && echo artifact > /out/a && echo other > /out/b\n"
        "FROM busybox AS broken\nRUN exit 7\n"
        "FROM scratch AS tiny\nCOPY --from=build /out/a /a\n"
        "FROM busybox\nCOPY --from=build /out /opt/\nCOPY --from=tiny /a /from-tiny\nCOPY --from=0 /out/b /b\n"
        "COPY --from=busybox /bin/busybox /bb\n"
    )
    out = kb.build(ctx, "-t", "multi").stdout
    assert "exit 7" not in out and "STEP 1/9:" in out
    assert (
        kb.sh("multi", "cat /opt/a /opt/b /from-tiny /b; test -x /bb && echo bb")
        == "artifact\nother\nartifact\nother\nbb\n"
    )
    # --target builds the stage and what it needs only
    out = kb.build(ctx, "--target", "tiny", "-t", "tiny").stdout
    assert "STEP 4/4: COPY --from=build /out/a /a" in out
    assert [len(layer) for layer in kb.layers("tiny")] == [1]
    assert kb.build(ctx, "--target", "broken", check=False).returncode == 1


def test_heredocs(kb, context) -> None:  # type: ignore[no-untyped-def]
    ctx = context(
        "FROM busybox\nARG FOO=bar\n"
        "RUN <<EOF\nmkdir -p /h\necho one > /h/run\nEOF\n"
        'RUN <<EOF\n#!/bin/sh\necho "shebang $0" > /h/shebang\nEOF\n'
        "RUN <<A cat > /h/a && <<B cat > /h/b\nfirst\nA\nsecond\nB\n"
        "COPY <<EOF /h/expanded\nhello ${FOO}\nEOF\n"
        'COPY <<-"EOT" /h/literal\n\techo "hello ${FOO}"\nEOT\n'
        "COPY <<one <<two /h/dir/\n1\none\n2\ntwo\n"
    )
    kb.build(ctx, "-t", "heredoc")
    out = kb.sh(
        "heredoc",
        "cat /h/run /h/shebang /h/a /h/b /h/expanded /h/literal /h/dir/one /h/dir/two; ls -a / | grep -c kobako || true",
    )
    assert out == (
        'one\nshebang /.kobako-build-script\nfirst\nsecond\nhello bar\necho "hello ${FOO}"\n1\n2\n0\n'
    )


def test_arg_and_env_scoping(kb, context) -> None:  # type: ignore[no-untyped-def]
    ctx = context(
        "ARG BASE=busybox\nARG VERSION=1.0\nFROM ${BASE} AS base\n"
        "ARG VERSION\nARG ONLY_HERE=default\nARG CONT_IMG_VER\nENV CONT_IMG_VER=v1.0.0\n"
        'RUN echo "$VERSION $ONLY_HERE $CONT_IMG_VER" > /base.txt\n'
        'FROM base\nRUN echo "inherited=$ONLY_HERE" > /child.txt\n'
        "USER ${username:-some_user}\nARG username\nLABEL user=$username\nUSER root\n"
    )
    kb.build(ctx, "-t", "args", "--build-arg", "VERSION=2.0", "--build-arg", "CONT_IMG_VER=v2.0.1",
             "--build-arg", "username=what_user")  # fmt: skip
    assert kb.sh("args", "cat /base.txt /child.txt") == "2.0 default v1.0.0\ninherited=default\n"
    cfg = kb.config("args")["Config"]
    assert cfg["Labels"] == {"user": "what_user"}
    assert not any(e.startswith(("VERSION=", "ONLY_HERE=")) for e in cfg["Env"])
    out = kb.build(ctx, "--build-arg", "NOPE=1", check=True)
    assert "build-args ['NOPE'] were not consumed" in out.stderr


def test_user_and_workdir(kb, context) -> None:  # type: ignore[no-untyped-def]
    ctx = context(
        "FROM busybox\nWORKDIR /srv\nWORKDIR app\nUSER nobody\nWORKDIR data\n"
        "RUN id -u > /tmp/uid && id -g > /tmp/gid && pwd > /tmp/pwd && touch mine\n"
        "USER 1234:5678\nRUN id -u > /tmp/uid2\n"
    )
    kb.build(ctx, "-t", "users")
    out = kb.sh(
        "users",
        "cat /tmp/uid /tmp/uid2 /tmp/gid /tmp/pwd; stat -c '%U:%G %n' /srv/app /srv/app/data /srv/app/data/mine",
    )
    assert out == ("65534\n1234\n65534\n/srv/app/data\nroot:root /srv/app\nnobody:nogroup /srv/app/data\n"
                   "nobody:nogroup /srv/app/data/mine\n")  # fmt: skip
    cfg = kb.config("users")["Config"]
    assert cfg["User"] == "1234:5678" and cfg["WorkingDir"] == "/srv/app/data"


def test_dockerignore(kb, context) -> None:  # type: ignore[no-untyped-def]
    files = {".dockerignore": "# comment\n*.md\n!README.md\nsecret/\n**/*.tmp\n", "README.md": "r", "NOTES.md": "n",
             "secret/key": "k", "src/a.tmp": "t", "src/a.c": "c", "src/deep/b.tmp": "t"}  # fmt: skip
    ctx = context("FROM busybox\nCOPY . /ctx/\n", files)
    kb.build(ctx, "-t", "ignored")
    listing = kb.sh("ignored", "cd /ctx && find . | sort")
    assert listing.split() == [".", "./.dockerignore", "./Dockerfile", "./README.md", "./src", "./src/a.c",
                               "./src/deep"]  # fmt: skip
    bad = kb.build(context("FROM busybox\nCOPY secret/key /k\n", files), check=False)
    assert bad.returncode != 0
    assert (
        "Dockerfile:2: COPY secret/key /k: file not found in build context or excluded by .dockerignore"
        in bad.stderr
    )


def test_whiteouts_from_a_later_step(kb, context) -> None:  # type: ignore[no-untyped-def]
    ctx = context(
        "FROM busybox\nRUN mkdir -p /d/sub && echo 1 > /d/sub/f && echo 2 > /d/keep && echo 3 > /gone\n"
        "RUN rm /gone /bin/vi && rm -rf /d/sub\n"
        "RUN rm -rf /d && mkdir /d && echo new > /d/only\n"
    )
    kb.build(ctx, "-t", "wh")
    assert (
        kb.sh("wh", "ls -a /d; test -e /gone || echo gone; test -e /bin/vi || echo novi")
        == ".\n..\nonly\ngone\nnovi\n"
    )
    layers = kb.layers("wh")
    names = {m.name for m in layers[2]}
    assert {".wh.gone", "bin/.wh.vi", "d/.wh.sub"} <= names
    assert "d/.wh..wh..opq" in {m.name for m in layers[3]}


def test_copy_chown_chmod(kb, context) -> None:  # type: ignore[no-untyped-def]
    ctx = context(
        "FROM busybox\nCOPY --chown=65534:65534 --chmod=0750 src /src/\nCOPY --chown=nobody src/a /named\n"
        "COPY --chown=1000 --chmod=u=rwX,go=rX src /sym/\nCOPY src/a src/b /plain/\nCOPY src/* /glob/\n",
        {"src/a": "a", "src/b": "b", "src/d/c": "c"},
    )
    (ctx / "src" / "a").chmod(0o600)
    kb.build(ctx, "-t", "perm")
    out = kb.sh(
        "perm",
        "stat -c '%a %u:%g %n' /src /src/a /src/d /src/d/c /named /sym/a /sym/d /plain /plain/a /glob/c",
    )
    assert out.split("\n") == ["755 65534:65534 /src", "750 65534:65534 /src/a", "750 65534:65534 /src/d",
                               "750 65534:65534 /src/d/c", "600 65534:65534 /named", "644 1000:1000 /sym/a",
                               "755 1000:1000 /sym/d", "755 0:0 /plain", "600 0:0 /plain/a", "644 0:0 /glob/c", ""]  # fmt: skip


def _tar(entries: dict[str, str]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, text in entries.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.uid, info.gid = len(text), 0o640, 7, 8
            tar.addfile(info, io.BytesIO(text.encode()))
    return buf.getvalue()


def test_add_local_tar_and_refused_url(kb, context) -> None:  # type: ignore[no-untyped-def]
    ctx = context(
        "FROM busybox\nADD app.tar.gz /opt/app\nADD plain.txt /opt/\nADD --unpack=false app.tar.gz /raw/\n",
        {"app.tar.gz": _tar({"bin/tool": "tool", "README": "readme"}), "plain.txt": "plain"},
    )
    kb.build(ctx, "-t", "add")
    out = kb.sh("add", "stat -c '%a %u:%g %n' /opt/app/bin/tool; cat /opt/app/README /opt/plain.txt; ls /raw")
    assert out == "640 7:8 /opt/app/bin/tool\nreadmeplain" + "app.tar.gz\n"
    bad = kb.build(context("FROM busybox\nADD https://example.com/x.tgz /x\n"), check=False)
    assert bad.returncode == 1 and "no network" in bad.stderr


def test_onbuild_triggers(kb, context) -> None:  # type: ignore[no-untyped-def]
    kb.build(
        context("FROM busybox\nONBUILD RUN echo triggered > /trig\nONBUILD LABEL from=trigger\n"),
        "-t",
        "parent",
    )
    assert kb.config("parent")["Config"]["OnBuild"] == ["RUN echo triggered > /trig", "LABEL from=trigger"]
    out = kb.build(context("FROM parent\nRUN cat /trig\n"), "-t", "child").stdout
    assert "--> ONBUILD 1/2: RUN echo triggered > /trig" in out and "triggered\n" in out
    cfg = kb.config("child")["Config"]
    assert "OnBuild" not in cfg and cfg["Labels"] == {"from": "trigger"}


def test_shell_cmd_entrypoint_healthcheck(kb, context) -> None:  # type: ignore[no-untyped-def]
    ctx = context(
        'FROM busybox\nSHELL ["/bin/sh", "-e", "-c"]\nRUN echo $0 > /shell\nENTRYPOINT echo entry\n'
        "HEALTHCHECK --interval=5m --timeout=3s --retries=2 CMD wget -q localhost || exit 1\nMAINTAINER me@x\n"
    )
    kb.build(ctx, "-t", "forms")
    cfg = kb.config("forms")
    c = cfg["Config"]
    assert (
        c["Entrypoint"] == ["/bin/sh", "-e", "-c", "echo entry"] and "Cmd" not in c
    )  # ENTRYPOINT drops the CMD
    assert c["Shell"] == ["/bin/sh", "-e", "-c"]
    assert c["Healthcheck"] == {"Test": ["CMD-SHELL", "wget -q localhost || exit 1"], "Interval": 300 * 10**9,
                                "Timeout": 3 * 10**9, "Retries": 2}  # fmt: skip
    assert cfg["Author"] == "me@x"
    assert kb("run", "--rm", "--network", "none", "forms").stdout == "entry\n"


def test_run_mounts(kb, context) -> None:  # type: ignore[no-untyped-def]
    ctx = context(
        "FROM busybox\nRUN --mount=type=cache,target=/cache echo x >> /cache/log && wc -l < /cache/log > /count\n"
        "RUN --mount=type=bind,source=data,target=/data cat /data/f > /bound\n"
        "RUN --mount=type=bind,source=data,target=/rw,rw echo scratch > /rw/new && ls /rw > /rwlist\n"
        "RUN --mount=type=tmpfs,target=/scratch touch /scratch/x && ls / > /rootlist\n",
        {"data/f": "bound\n"},
    )
    kb.build(ctx, "-t", "mounts")
    assert kb.sh("mounts", "cat /count /bound /rwlist; test -e /cache || echo nocache; grep -c scratch /rootlist") == (
        "1\nbound\nf\nnew\nnocache\n1\n")  # fmt: skip
    assert not (ctx / "data" / "new").exists()  # writes to a rw bind never reach the context
    out = kb.build(ctx, "--no-cache", "-t", "mounts").stdout
    assert "CACHED" not in out
    assert kb.sh("mounts", "cat /count") == "2\n"  # the cache mount persisted between builds


def test_quiet_iidfile_label_and_stdin_dockerfile(kb, context, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    ctx = context("FROM busybox\nRUN echo quiet-output\n")
    iid = tmp_path / "iid"
    out = kb.build(ctx, "-q", "--iidfile", str(iid), "--label", "a=b", "-t", "q1", "-t", "q2:v")
    assert out.stdout == iid.read_text() + "\n" and out.stdout.startswith("sha256:")
    assert kb.config("q2:v")["Id"] == iid.read_text()
    assert kb.config("q1")["Config"]["Labels"] == {"a": "b"}
    other = tmp_path / "elsewhere.Dockerfile"
    other.write_text("FROM busybox\nLABEL from=file\n")
    kb.build(ctx, "-f", str(other), "-t", "viaf")
    assert kb.config("viaf")["Config"]["Labels"] == {"from": "file"}
    proc = kb("build", "-q", "-f", "-", "-t", "stdin", str(ctx), input=b"FROM busybox\nLABEL from=stdin\n")
    assert kb.config("stdin")["Id"] == proc.stdout.strip()


def test_scratch_image_runs_in_podman_style_layout(kb, context) -> None:  # type: ignore[no-untyped-def]
    ctx = context(
        'FROM scratch\nCOPY --from=busybox /bin/busybox /bin/busybox\nCMD ["/bin/busybox", "echo", "tiny"]\n'
    )
    kb.build(ctx, "-t", "scratchy")
    assert kb("run", "--rm", "--network", "none", "scratchy").stdout == "tiny\n"
    cfg = kb.config("scratchy")
    assert cfg["Config"]["Env"] == ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]
    assert len(cfg["RootFS"]["Layers"]) == 1


def test_copy_parents_and_exclude(kb, context) -> None:  # type: ignore[no-untyped-def]
    files = {"x/a.txt": "xa", "y/a.txt": "ya", "x/y/b.txt": "b", "x/y/c.md": "c", "home.txt": "h", "home.md": "m",
             "homer": "r"}  # fmt: skip
    ctx = context(
        "FROM busybox\nCOPY --parents ./x/a.txt ./y/a.txt /parents/\nCOPY --parents ./x/./y/*.txt /marker/\n"
        "COPY --exclude=*.txt --exclude=*.md hom* /mydir/\nCOPY --exclude=**/*.md x /nomd/\n",
        files,
    )
    kb.build(ctx, "-t", "parents")
    out = kb.sh("parents", "cd / && find parents marker mydir nomd -type f | sort")
    assert out.split() == ["marker/y/b.txt", "mydir/homer", "nomd/a.txt", "nomd/y/b.txt", "parents/x/a.txt",
                           "parents/y/a.txt"]  # fmt: skip

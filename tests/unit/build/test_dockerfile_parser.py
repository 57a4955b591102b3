"""The Dockerfile parser against the Dockerfile reference's own examples, plus its error positions."""

from __future__ import annotations

import pytest

from kobako.build.dockerfile.ast import Dockerfile, Instruction
from kobako.build.dockerfile.parser import DockerfileSyntaxError, parse
from kobako.errors import InvalidArgument


def one(text: str) -> Instruction:
    """The single instruction after ``FROM x``."""
    df = parse("FROM x\n" + text)
    assert len(df.stages[0].instructions) == 1, df.stages[0].instructions
    return df.stages[0].instructions[0]


def error(text: str) -> DockerfileSyntaxError:
    with pytest.raises(DockerfileSyntaxError) as info:
        parse(text, "df/Dockerfile")
    return info.value


# -- format -------------------------------------------------------------------------------------------------


def test_hash_inside_an_instruction_is_an_argument() -> None:
    assert one("RUN echo 'we are running some # of cool things'\n").args == [
        "echo 'we are running some # of cool things'"
    ]


def test_comment_lines_inside_a_continuation_are_removed() -> None:
    assert one("RUN echo hello \\\n# comment\nworld\n").args == ["echo hello world"]


def test_leading_whitespace_before_comments_and_instructions_is_ignored() -> None:
    df = parse("        # this is a comment-line\n    FROM x\n    RUN echo hello\nRUN echo world\n")
    assert [i.args for i in df.stages[0].instructions] == [["echo hello"], ["echo world"]]


def test_whitespace_inside_continued_arguments_is_kept() -> None:
    assert one('RUN echo "\\\n     hello\\\n     world"\n').args == ['echo "     hello     world"']


def test_instructions_are_case_insensitive() -> None:
    df = parse("from x\nrun echo hi\nEnV A=1\n")
    assert [i.cmd for i in df.stages[0].instructions] == ["RUN", "ENV"]


def test_blank_lines_inside_a_continuation_are_skipped() -> None:
    assert one("RUN echo a \\\n\n   \n\\\nb\n").args == ["echo a b"]


def test_continuation_at_end_of_file_ends_the_instruction() -> None:
    assert one("RUN echo a \\").args == ["echo a"]


def test_crlf_line_endings() -> None:
    df = parse("FROM x\r\nRUN echo a \\\r\n b\r\n")
    assert df.stages[0].instructions[0].args == ["echo a  b"]


# -- parser directives --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "line", ["#directive=value", "# escape =`", "#\tescape= `", "# escape = `", "#\t  eScApE=`"]
)
def test_directive_whitespace_and_case(line: str) -> None:
    line = line.replace("directive=value", "escape=`")
    df = parse(line + "\nFROM x\n")
    assert df.escape == "`"


def test_directive_given_twice_is_an_error() -> None:
    err = error("# escape=\\\n# escape=`\n\nFROM ImageName\n")
    assert (err.line, err.column) == (2, 1)
    assert "only one escape" in str(err)


def test_directive_after_an_instruction_is_a_comment() -> None:
    df = parse("FROM ImageName\n# escape=`\nRUN a \\\nb\n")
    assert df.escape == "\\" and df.stages[0].instructions[0].args == ["a b"]


def test_directive_after_a_comment_is_a_comment() -> None:
    df = parse("# About my dockerfile\n# escape=`\nFROM ImageName\n")
    assert df.escape == "\\" and df.directives == {}


def test_unknown_directive_ends_directives() -> None:
    df = parse("# unknowndirective=value\n# syntax=value\nFROM x\n")
    assert df.directives == {}


def test_continued_directive_is_not_a_directive() -> None:
    err = error("# direc \\\ntive=value\nFROM x\n")
    assert "unknown instruction: tive=value" in str(err) and err.line == 2


def test_syntax_and_check_directives_are_recorded() -> None:
    df = parse("# syntax=docker/dockerfile:1\n# check=skip=all\nFROM x\n")
    assert df.directives == {"syntax": "docker/dockerfile:1", "check": "skip=all"}


def test_bad_escape_token() -> None:
    assert "invalid escape token" in str(error("# escape=x\nFROM x\n"))


def test_windows_escape_example() -> None:
    # Without the directive the trailing backslash joins the next line (the reference's failing example).
    df = parse("FROM microsoft/nanoserver\nCOPY testfile.txt c:\\\\\nRUN dir c:\\\n")
    assert [(i.cmd, i.args) for i in df.stages[0].instructions] == [
        ("COPY", ["testfile.txt", "c:\\RUN", "dir", "c:"])
    ]
    df = parse("# escape=`\n\nFROM microsoft/nanoserver\nCOPY testfile.txt c:\\\nRUN dir c:\\\n")
    assert [(i.cmd, i.args) for i in df.stages[0].instructions] == [
        ("COPY", ["testfile.txt", "c:\\"]), ("RUN", ["dir c:\\"])]  # fmt: skip


# -- forms ----------------------------------------------------------------------------------------------------


def test_exec_form_is_json() -> None:
    ins = one('ENTRYPOINT ["/bin/bash", "-c", "echo hello"]')
    assert ins.json and ins.args == ["/bin/bash", "-c", "echo hello"]


def test_invalid_json_falls_back_to_shell_form() -> None:
    ins = one('RUN ["c:\\windows\\system32\\tasklist.exe"]')
    assert not ins.json and ins.args == ['["c:\\windows\\system32\\tasklist.exe"]']


def test_json_with_backslashes_escaped() -> None:
    ins = one('RUN ["c:\\\\windows\\\\system32\\\\tasklist.exe"]')
    assert ins.json and ins.args == ["c:\\windows\\system32\\tasklist.exe"]


def test_json_of_non_strings_is_shell_form() -> None:
    assert not one("CMD [1, 2]").json


def test_shell_requires_json() -> None:
    assert "JSON form" in str(error("FROM x\nSHELL /bin/bash -c\n"))
    assert one('SHELL ["powershell", "-command"]').args == ["powershell", "-command"]


# -- FROM -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "base", "name", "platform"),
    [
        ("FROM ubuntu", "ubuntu", "", ""),
        ("FROM ubuntu:22.04 AS Base", "ubuntu:22.04", "base", ""),
        ("FROM --platform=linux/amd64 busybox@sha256:" + "a" * 64 + " as x1", "busybox@sha256:" + "a" * 64, "x1",
         "linux/amd64"),
        ("FROM base:${CODE_VERSION}", "base:${CODE_VERSION}", "", ""),
    ],
)  # fmt: skip
def test_from_forms(line: str, base: str, name: str, platform: str) -> None:
    stage = parse(line + "\n").stages[0]
    assert (stage.base, stage.name, stage.platform) == (base, name, platform)


def test_from_errors() -> None:
    assert "one or three" in str(error("FROM a b\n"))
    assert "duplicate stage name" in str(error("FROM a AS x\nFROM b AS X\n"))
    assert "invalid stage name" in str(error("FROM a AS 9lives\n"))
    assert "no FROM" in str(error("ARG X=1\n"))
    assert "before the first FROM" in str(error("ARG X=1\nRUN true\nFROM x\n"))


def test_arg_before_from_is_a_meta_arg() -> None:
    df = parse(
        "ARG  CODE_VERSION=latest\nFROM base:${CODE_VERSION}\nCMD  /code/run-app\n\nFROM extras:${CODE_VERSION}\n"
    )
    assert isinstance(df, Dockerfile)
    assert df.meta_args[0].pairs == [("CODE_VERSION", "latest")]
    assert [s.base for s in df.stages] == ["base:${CODE_VERSION}", "extras:${CODE_VERSION}"]


# -- ENV / LABEL / ARG ------------------------------------------------------------------------------------------


def test_env_examples() -> None:
    assert one('ENV MY_NAME="John Doe"').pairs == [("MY_NAME", '"John Doe"')]
    assert one("ENV MY_DOG=Rex\\ The\\ Dog").pairs == [("MY_DOG", "Rex\\ The\\ Dog")]
    assert one('ENV MY_NAME="John Doe" MY_DOG=Rex\\ The\\ Dog \\\n    MY_CAT=fluffy').pairs == [
        ("MY_NAME", '"John Doe"'), ("MY_DOG", "Rex\\ The\\ Dog"), ("MY_CAT", "fluffy")]  # fmt: skip


def test_env_legacy_form_takes_the_rest_of_the_line() -> None:
    assert one("ENV ONE TWO= THREE=world").pairs == [("ONE", "TWO= THREE=world")]
    assert one("ENV MY_VAR my-value").pairs == [("MY_VAR", "my-value")]


def test_label_examples() -> None:
    assert one('LABEL "com.example.vendor"="ACME Incorporated"').pairs == [
        ('"com.example.vendor"', '"ACME Incorporated"')]  # fmt: skip
    assert one('LABEL description="This text illustrates \\\nthat label-values can span multiple lines."').pairs == [
        ("description", '"This text illustrates that label-values can span multiple lines."')]  # fmt: skip
    assert len(one('LABEL multi.label1="value1" multi.label2="value2" other="value3"').pairs) == 3


def test_env_and_label_errors() -> None:
    assert "can't find =" in str(error("FROM x\nLABEL a=1 b\n"))
    assert "names can not be blank" in str(error("FROM x\nENV =1\n"))
    assert "requires at least one argument" in str(error("FROM x\nENV\n"))
    assert "missing a value" in str(error("FROM x\nENV lonely\n"))


def test_arg_forms() -> None:
    assert one("ARG user1=someuser buildno=1 plain").pairs == [
        ("user1", "someuser"),
        ("buildno", "1"),
        ("plain", None),
    ]


# -- flags ------------------------------------------------------------------------------------------------------


def test_copy_flags() -> None:
    ins = one("COPY --chown=55:mygroup --chmod=644 --from=build files* /somedir/")
    assert ins.flags == {"chown": ["55:mygroup"], "chmod": ["644"], "from": ["build"]}
    assert ins.args == ["files*", "/somedir/"]


def test_repeatable_and_boolean_flags() -> None:
    ins = one("COPY --exclude=*.txt --exclude=*.md --link hom* /mydir/")
    assert ins.flags["exclude"] == ["*.txt", "*.md"] and ins.bool_flag("link")
    assert not one("COPY --link=false a b").bool_flag("link")


def test_flag_errors_name_the_flag_and_column() -> None:
    err = error("FROM x\nCOPY --chwon=1 a b\n")
    assert (err.line, err.column) == (2, 6) and "unknown flag: --chwon" in str(err)
    assert "missing a value on flag --from" in str(error("FROM x\nCOPY --from a b\n"))
    assert "duplicate flag" in str(error("FROM x\nCOPY --from=a --from=b a b\n"))
    assert "unknown flag: --help" in str(error("FROM x\nCMD --help\n"))


def test_run_mount_flags() -> None:
    ins = one("RUN --mount=type=cache,target=/root/.cache/go-build \\\n  go build ...")
    assert ins.flags["mount"] == ["type=cache,target=/root/.cache/go-build"] and ins.args == ["go build ..."]


# -- arity ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("COPY a", "at least two arguments"),
        ("ADD a", "at least two arguments"),
        ("RUN", "RUN requires at least one argument"),
        ("CMD", "CMD requires"),
        ("EXPOSE", "EXPOSE requires"),
        ("STOPSIGNAL SIGTERM SIGKILL", "exactly one"),
        ('VOLUME [""]', "empty string"),
        ("FOO bar", "unknown instruction: FOO"),
    ],
)
def test_arity_errors(text: str, message: str) -> None:
    err = error("FROM x\n" + text + "\n")
    assert message in str(err) and err.line == 2 and str(err).startswith("df/Dockerfile:2:")


def test_errors_are_invalid_argument_with_position() -> None:
    err = error("FROM x\n\n   RUN\n")
    assert isinstance(err, InvalidArgument)
    assert (err.path, err.line, err.column) == ("df/Dockerfile", 3, 4)


# -- ONBUILD / HEALTHCHECK / MAINTAINER / VOLUME / EXPOSE -------------------------------------------------------


def test_onbuild() -> None:
    ins = one("ONBUILD ADD . /app/src")
    assert ins.sub is not None and ins.sub.cmd == "ADD" and ins.args == ["ADD . /app/src"]
    assert "ONBUILD ONBUILD" in str(error("FROM x\nONBUILD ONBUILD RUN x\n"))
    assert "isn't allowed as an ONBUILD trigger" in str(error("FROM x\nONBUILD FROM y\n"))
    assert "unknown instruction" in str(error("FROM x\nONBUILD NOPE y\n"))


def test_healthcheck() -> None:
    ins = one("HEALTHCHECK --interval=5m --timeout=3s \\\n  CMD curl -f http://localhost/ || exit 1")
    assert ins.flags == {"interval": ["5m"], "timeout": ["3s"]}
    assert ins.sub is not None and ins.sub.args == ["curl -f http://localhost/ || exit 1"]
    assert one("HEALTHCHECK NONE").args == ["NONE"]
    assert one('HEALTHCHECK CMD ["/bin/check", "-x"]').sub.json  # type: ignore[union-attr]
    assert "takes no other arguments" in str(error("FROM x\nHEALTHCHECK NONE x\n"))
    assert "CMD" in str(error("FROM x\nHEALTHCHECK curl x\n"))
    assert "--retries" in str(error("FROM x\nHEALTHCHECK --retries=x CMD true\n"))


def test_volume_expose_maintainer_user_workdir() -> None:
    assert one('VOLUME ["/var/www", "/var/log/apache2", "/etc/apache2"]').args == [
        "/var/www", "/var/log/apache2", "/etc/apache2"]  # fmt: skip
    assert one("VOLUME /var/log /var/db").args == ["/var/log", "/var/db"]
    assert one("EXPOSE 80/tcp 80/udp").args == ["80/tcp", "80/udp"]
    assert one("MAINTAINER SvenDowideit@home.org.au").args == ["SvenDowideit@home.org.au"]
    assert one("USER patrick").args == ["patrick"]
    assert one("WORKDIR $DIRPATH/$DIRNAME").args == ["$DIRPATH/$DIRNAME"]


# -- here-documents ---------------------------------------------------------------------------------------------


def test_heredoc_run_with_command() -> None:
    ins = one("RUN <<EOT bash\n  set -ex\n  apt-get update\nEOT\n")
    assert ins.args == ["<<EOT bash"]
    assert ins.heredocs[0].name == "EOT" and ins.heredocs[0].content == "  set -ex\n  apt-get update\n"


def test_heredoc_multiple() -> None:
    ins = one("RUN <<FILE1 cat > file1 && <<FILE2 cat > file2\nI am\nfirst\nFILE1\nI am\nsecond\nFILE2\n")
    assert [(d.name, d.content) for d in ins.heredocs] == [
        ("FILE1", "I am\nfirst\n"),
        ("FILE2", "I am\nsecond\n"),
    ]


def test_heredoc_copy_chomp_and_quote() -> None:
    ins = one('COPY <<-"EOT" /script.sh\n\t  echo "hello ${FOO}"\nEOT\n')
    assert ins.args == ['<<-"EOT"', "/script.sh"]
    doc = ins.heredocs[0]
    assert (doc.name, doc.content, doc.expand) == ("EOT", '  echo "hello ${FOO}"\n', False)
    assert one("COPY <<EOF greeting.txt\nhello world\nEOF\n").heredocs[0].expand


def test_heredoc_does_not_swallow_following_instructions() -> None:
    df = parse('FROM x\nRUN <<EOF\n# not a comment here\nRUN not an instruction\nEOF\nCMD ["sh"]\n')
    ins = df.stages[0].instructions
    assert [i.cmd for i in ins] == ["RUN", "CMD"]
    assert ins[0].heredocs[0].content == "# not a comment here\nRUN not an instruction\n"
    assert ins[0].end_line == 5 and ins[1].line == 6


def test_heredoc_only_in_run_copy_add_and_not_in_quotes_or_exec_form() -> None:
    assert one("CMD cat <<EOF").heredocs == []
    assert one("RUN echo '<<EOF'").heredocs == []
    assert one('RUN ["cat", "<<EOF"]').heredocs == []


def test_unterminated_heredoc() -> None:
    err = error("FROM x\nRUN <<EOF\necho\n")
    assert "unterminated here-document" in str(err) and err.line == 2

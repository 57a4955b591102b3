"""`kobako system df` and `kobako info` count containers as the engine sees them."""

from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.root


def df(kobako) -> dict:  # type: ignore[no-untyped-def]
    # As docker prints it: one JSON object a line, values as strings.
    rows = [json.loads(line) for line in kobako("system", "df", "--format", "json").stdout.splitlines()]
    return {row["Type"]: row for row in rows}


def test_df_and_info_count_containers(kobako) -> None:
    cid = kobako.run_d("busybox", "sleep", "300")
    assert (df(kobako)["Containers"]["TotalCount"], df(kobako)["Containers"]["Active"]) == ("1", "1")
    kobako("rm", "-f", cid)
    assert df(kobako)["Containers"]["TotalCount"] == "0"  # the name index beside the records is no container
    assert json.loads(kobako("info", "--format", "json").stdout)["Containers"] == 0

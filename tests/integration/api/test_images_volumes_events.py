"""Images (list, inspect, history, tag, remove, save, load), volumes, networks and events through raw HTTP."""

from __future__ import annotations

import io
import json
import tarfile
import time
from urllib.parse import quote

import pytest

pytestmark = pytest.mark.root


def test_images_list_inspect_history_tag_remove(clean) -> None:
    api = clean
    rows = api.json("GET", "/images/json")
    assert [r["RepoTags"] for r in rows] == [["busybox:latest"]]
    image_id = rows[0]["Id"]
    assert api.json("GET", "/images/busybox/json")["Id"] == image_id
    assert api.json("GET", f"/images/{image_id[7:19]}/json")["Id"] == image_id
    assert api.json("GET", "/images/busybox:latest/history")[0]["Id"] == image_id
    assert api.request("POST", "/images/busybox/tag?repo=example.com/team/box&tag=v1")[0] == 201
    assert api.json("GET", "/images/example.com/team/box:v1/json")["Id"] == image_id
    filtered = api.json("GET", "/images/json?filters=" + quote('{"reference":["example.com/team/box"]}'))
    assert len(filtered) == 1
    assert api.json("DELETE", "/images/example.com/team/box:v1") == [{"Untagged": "example.com/team/box:v1"}]
    status, _h, body = api.request("GET", "/images/nosuch/json")
    assert status == 404 and "no such image" in json.loads(body)["message"]


def test_rmi_of_an_image_in_use_is_409(clean) -> None:
    api = clean
    api.json("POST", "/containers/create", {"Image": "busybox", "Cmd": ["true"]}, expect=201)
    status, _h, body = api.request("DELETE", "/images/busybox")
    assert status == 409 and "is using its referenced image" in json.loads(body)["message"]


def test_save_and_load_round_trip(clean) -> None:
    api = clean
    status, headers, archive = api.request("GET", "/images/get?names=busybox")
    assert status == 200 and headers["Content-Type"] == "application/x-tar"
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        manifest = json.loads(tar.extractfile("manifest.json").read())  # type: ignore[union-attr]
    assert manifest[0]["RepoTags"] == ["busybox:latest"]
    api.request("POST", "/images/busybox/tag?repo=copy&tag=1")
    assert api.request("DELETE", "/images/busybox")[0] == 200
    status, _h, body = api.request(
        "POST", "/images/load", raw=archive, headers={"Content-Type": "application/x-tar"}
    )
    assert status == 200
    assert json.loads(body.splitlines()[0]) == {"stream": "Loaded image: busybox:latest\n"}
    assert api.json("GET", "/images/busybox/json")["Id"]
    api.request("DELETE", "/images/copy:1")
    status, _h, body = api.request("POST", "/images/load", raw=b"not a tar at all" * 100)
    assert status == 200 and b'"error"' in body  # in-stream, as dockerd reports it
    assert api.request("GET", "/images/get?names=nosuch")[0] == 404


def test_volumes_create_list_inspect_remove(clean) -> None:
    api = clean
    vol = api.json("POST", "/volumes/create", {"Name": "data", "Labels": {"a": "b"}}, expect=201)
    assert vol["Name"] == "data" and vol["Labels"] == {"a": "b"}
    assert [v["Name"] for v in api.json("GET", "/volumes")["Volumes"]] == ["data"]
    assert api.json("GET", "/volumes/data")["Driver"] == "local"
    cid = api.json("POST", "/containers/create", {"Image": "busybox", "Cmd": ["true"],
                   "HostConfig": {"Binds": ["data:/data"]}}, expect=201)["Id"]  # fmt: skip
    assert api.request("DELETE", "/volumes/data")[0] == 409  # in use
    api.request("DELETE", f"/containers/{cid}")
    assert api.request("DELETE", "/volumes/data")[0] == 204
    assert api.request("GET", "/volumes/data")[0] == 404
    assert api.request("POST", "/volumes/create", {"Name": "x", "Driver": "nfs"})[0] == 400


def test_networks_create_list_remove(clean) -> None:
    api = clean
    net = api.json("POST", "/networks/create", {"Name": "apinet"}, expect=201)
    names = [n["Name"] for n in api.json("GET", "/networks")]
    assert {"apinet", "bridge", "host", "none"} <= set(names)
    assert api.json("GET", "/networks/apinet")["Id"] == net["Id"]
    assert api.request("POST", "/networks/create", {"Name": "apinet"})[0] == 409
    assert api.request("DELETE", "/networks/apinet")[0] == 204
    assert api.request("GET", "/networks/apinet")[0] == 404
    assert api.request("DELETE", "/networks/host")[0] == 409
    opts = {"com.docker.network.driver.mtu": "1400"}
    api.json("POST", "/networks/create", {"Name": "apimtu", "Options": opts}, expect=201)
    assert api.json("GET", "/networks/apimtu")["Options"]["com.docker.network.driver.mtu"] == "1400"
    assert api.request("DELETE", "/networks/apimtu")[0] == 204
    bad = {"Name": "apibad", "Options": {"com.docker.network.bridge.enable_icc": "false"}}
    assert api.request("POST", "/networks/create", bad)[0] == 400
    assert api.request("GET", "/networks/apibad")[0] == 404


def test_events_stream_container_lifecycle(clean) -> None:
    api = clean
    since = time.time() - 1
    cid = api.json("POST", "/containers/create", {"Image": "busybox", "Cmd": ["true"]}, expect=201)["Id"]
    api.request("POST", f"/containers/{cid}/start")
    api.json("POST", f"/containers/{cid}/wait")
    api.request("DELETE", f"/containers/{cid}")
    until = time.time() + 0.5
    filters = quote(json.dumps({"container": [cid], "type": ["container"]}))
    status, _h, body = api.request("GET", f"/events?since={since}&until={until}&filters={filters}")
    assert status == 200
    actions = [json.loads(line)["Action"] for line in body.splitlines()]
    assert actions == ["create", "start", "die", "destroy"], actions
    assert all(json.loads(line)["Actor"]["ID"] == cid for line in body.splitlines())

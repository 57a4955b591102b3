"""``/_ping``, ``/version``, ``/info``, ``/system/df``, ``/auth``: who this daemon is and what it holds."""

from __future__ import annotations

import os

from kobako import __version__
from kobako.api.http import Request, Response, json_response

TYPE_CHECKING = False
if TYPE_CHECKING:
    from kobako.api.app import Service

_GO_ARCH = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "i686": "386", "ppc64le": "ppc64le",
            "s390x": "s390x", "riscv64": "riscv64"}  # fmt: skip


def go_arch() -> str:
    machine = os.uname().machine
    return _GO_ARCH.get(machine, machine)


async def ping(svc: Service, req: Request) -> Response:
    # Builder-Version 1: the classic builder (POST /build); clients then do not look for BuildKit.
    headers = [("Builder-Version", "1"), ("Cache-Control", "no-cache, no-store, must-revalidate"),
               ("Pragma", "no-cache")]  # fmt: skip
    return Response(200, b"OK", "text/plain; charset=utf-8", headers)


async def version(svc: Service, req: Request) -> Response:
    from kobako.api.app import API_VERSION, MIN_API_VERSION

    details = {"ApiVersion": API_VERSION, "MinAPIVersion": MIN_API_VERSION, "Os": "linux", "Arch": go_arch(),
               "KernelVersion": os.uname().release, "GitCommit": "", "GoVersion": "python3", "BuildTime": "",
               "Experimental": "false"}  # fmt: skip
    return json_response({
        "Platform": {"Name": "kobako"},
        "Components": [{"Name": "Engine", "Version": __version__, "Details": details}],
        "Version": __version__, "ApiVersion": API_VERSION, "MinAPIVersion": MIN_API_VERSION, "GitCommit": "",
        "GoVersion": "python3", "Os": "linux", "Arch": go_arch(), "KernelVersion": os.uname().release,
        "BuildTime": "",
    })  # fmt: skip


def _info() -> dict:
    from kobako.engine.sysinfo import info
    from kobako.images.service import ImageService

    svc = ImageService()
    try:
        data = info(svc)
    finally:
        svc.close()
    with open("/proc/meminfo") as f:
        mem_total = int(f.readline().split()[1]) * 1024
    return {
        "ID": "kobako", "Containers": data["Containers"], "ContainersRunning": data["ContainersRunning"],
        "ContainersPaused": data["ContainersPaused"], "ContainersStopped": data["ContainersStopped"],
        "Images": data["Images"], "Driver": data["Driver"], "DriverStatus": [],
        "Plugins": {"Volume": ["local"], "Network": ["bridge", "host", "none"], "Log": ["json-file"]},
        "MemoryLimit": True, "SwapLimit": False, "CpuCfsPeriod": True, "CpuCfsQuota": True, "CPUShares": True,
        "CPUSet": True, "PidsLimit": True, "OomKillDisable": False, "IPv4Forwarding": True, "Debug": False,
        "NFd": len(os.listdir("/proc/self/fd")), "NGoroutines": 0, "SystemTime": _now(),
        "LoggingDriver": "json-file", "CgroupDriver": "cgroupfs", "CgroupVersion": data["CgroupVersion"],
        "NEventsListener": 0, "KernelVersion": data["KernelVersion"], "OperatingSystem": data["OperatingSystem"],
        "OSVersion": "", "OSType": "linux", "Architecture": data["Architecture"], "NCPU": data["NCPU"],
        "MemTotal": mem_total, "IndexServerAddress": "https://index.docker.io/v1/",
        "RegistryConfig": {"IndexConfigs": {}, "InsecureRegistryCIDRs": ["127.0.0.0/8"], "Mirrors": []},
        "DockerRootDir": data["KobakoRootDir"], "HttpProxy": "", "HttpsProxy": "", "NoProxy": "",
        "Name": os.uname().nodename, "Labels": [], "ExperimentalBuild": False, "ServerVersion": __version__,
        "Runtimes": {"kobako": {"path": "kobako-runtime"}}, "DefaultRuntime": "kobako",
        "Swarm": {"LocalNodeState": "inactive", "NodeID": "", "NodeAddr": "", "ControlAvailable": False,
                  "Error": "", "RemoteManagers": None},
        "LiveRestoreEnabled": True, "Isolation": "", "InitBinary": "", "SecurityOptions": ["name=seccomp,profile=builtin"],
        "ContainerdCommit": {"ID": ""}, "RuncCommit": {"ID": ""}, "InitCommit": {"ID": ""}, "Warnings": [],
    }  # fmt: skip


def _now() -> str:
    from kobako.engine.clock import rfc3339

    return rfc3339()


async def info(svc: Service, req: Request) -> Response:
    return json_response(await svc.run(_info))


def _df() -> dict:
    from kobako.images.service import ImageService

    svc = ImageService()
    try:
        size = sum(image.size for image in svc.list_images())
    finally:
        svc.close()
    return {"LayersSize": size, "Images": [], "Containers": [], "Volumes": [], "BuildCache": []}


async def df(svc: Service, req: Request) -> Response:
    return json_response(await svc.run(_df))


async def auth(svc: Service, req: Request) -> Response:
    await req.json()  # credentials are checked by the registry at pull/push time, as with an empty config
    return json_response({"Status": "Login Succeeded", "IdentityToken": ""})


ROUTES = [
    ("GET", "/_ping", ping),
    ("HEAD", "/_ping", ping),
    ("GET", "/version", version),
    ("GET", "/info", info),
    ("GET", "/system/df", df),
    ("POST", "/auth", auth),
]

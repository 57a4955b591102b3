"""Foreground `run` with a terminal and no console socket: receive the pty master and relay it to our stdio."""

from __future__ import annotations

import os
import socket


class TtyRelay:
    def __init__(self) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        self._sock = ours
        self.container_end = theirs.detach()

    def close_container_end(self) -> None:
        if self.container_end >= 0:
            os.close(self.container_end)
            self.container_end = -1

    def run(self) -> None:
        """Copy stdin → pty and pty → stdout until the container side hangs up."""
        import select
        import termios
        import tty

        _msg, fds, _flags, _addr = socket.recv_fds(self._sock, 64, 1)
        self._sock.close()
        if not fds:
            return
        master = fds[0]
        saved = None
        if os.isatty(0):
            saved = termios.tcgetattr(0)
            tty.setraw(0)
        try:
            poller = select.poll()
            poller.register(master, select.POLLIN)
            stdin_open = True
            poller.register(0, select.POLLIN)
            while True:
                for fd, _event in poller.poll():
                    if fd == master:
                        try:
                            data = os.read(master, 65536)
                        except OSError:  # EIO: the last slave fd closed, the process is gone
                            return
                        if not data:
                            return
                        os.write(1, data)
                    elif stdin_open:
                        data = os.read(0, 65536)
                        if not data:
                            stdin_open = False
                            poller.unregister(0)
                            os.write(master, b"\x04")
                        else:
                            os.write(master, data)
        finally:
            if saved is not None:
                termios.tcsetattr(0, termios.TCSADRAIN, saved)
            os.close(master)

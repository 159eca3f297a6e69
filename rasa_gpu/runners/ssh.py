"""Docker engines on other machines, reached with the user's own OpenSSH (its config, keys, agent and known_hosts).

A local unix socket stands in for the far engine: every connection made to it becomes one
`ssh HOST docker system dial-stdio`, the same command the docker CLI runs for `DOCKER_HOST=ssh://…`. The socket is
handed to ssh as its stdin and stdout, so no bytes pass through Python, and when rasa-gpu dies (even SIGKILLed)
its end of every connection closes, ssh sees the end of its input and the far engine ends the attach, which ends a
tied container (see engine.ContainerSpec.tied).
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from ..errors import EngineUnavailable, SettingsError

#: ssh options rasa-gpu adds to the user's own: never prompt (there may be no terminal), give up on a dead host.
BATCH_OPTIONS = ("-o", "BatchMode=yes", "-o", "ConnectTimeout=15", "-o", "ServerAliveInterval=30")
#: Seconds the shared SSH login outlives its last connection when rasa-gpu could not end it (a SIGKILL).
PERSIST = 30


@dataclass(frozen=True)
class SshTarget:
    """ssh://[user@]host[:port], as the docker CLI writes it."""

    host: str
    user: str | None = None
    port: int | None = None

    @classmethod
    def parse(cls, url: str) -> SshTarget:
        parts = urlsplit(url)
        try:
            port = parts.port
        except ValueError:
            port = -1
        if parts.scheme != "ssh" or not parts.hostname or port == -1 or parts.path not in ("", "/"):
            raise SettingsError(
                f"'{url}' is not an SSH engine address; write it as ssh://[user@]host[:port], e.g. ssh://me@gpu-box"
            )
        return cls(host=parts.hostname, user=parts.username, port=port)

    def __str__(self) -> str:
        user = f"{self.user}@" if self.user else ""
        port = f":{self.port}" if self.port else ""
        return f"ssh://{user}{self.host}{port}"

    def command(self, *remote: str, control: Path | None = None) -> list[str]:
        """The ssh command line that runs `remote` there (the user's ssh config decides everything else). With
        `control` (a socket path), connections share one login (see SshTunnel)."""
        return [*self._options(control), "--", self.host, *remote]

    def end_shared_login(self, control: Path) -> list[str]:
        """The ssh command line that ends the shared login at `control`."""
        return [*self._options(control), "-O", "exit", "--", self.host]

    def _options(self, control: Path | None) -> list[str]:
        args = ["ssh", *BATCH_OPTIONS]
        if control is not None:
            args += [
                "-o",
                "ControlMaster=auto",
                "-o",
                f"ControlPath={control}",
                "-o",
                f"ControlPersist={PERSIST}",
            ]
        if self.user:
            args += ["-l", self.user]
        if self.port:
            args += ["-p", str(self.port)]
        return args


def check(target: SshTarget) -> str:
    """Log in once and ask the far engine for its version; returns it. Every way this can fail is one line that says
    what to do: no ssh, host unreachable, host key not known, login refused, no docker there, no engine answering."""
    if shutil.which("ssh") is None:
        raise EngineUnavailable(
            f"cannot reach {target}: no `ssh` command on this machine; install OpenSSH's client "
            "(Debian/Ubuntu: `sudo apt-get install openssh-client`)"
        )
    try:
        proc = subprocess.run(
            target.command("docker", "version", "--format", "{{.Server.Version}}"),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=60,
            start_new_session=True,  # Ctrl+C is rasa-gpu's to handle
        )
    except subprocess.TimeoutExpired:
        raise EngineUnavailable(
            f"{target} did not answer over SSH within 60 s; check the host and network"
        ) from None
    if proc.returncode == 0 and proc.stdout.strip():
        return proc.stdout.strip().splitlines()[-1]
    raise EngineUnavailable(explain(target, proc.returncode, proc.stderr))


def explain(target: SshTarget, code: int, stderr: str) -> str:
    """One line for a failed `ssh … docker version`, from ssh's and docker's own words."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    text = "\n".join(lines).lower()
    last = lines[-1] if lines else f"exit code {code}"
    host = target.host
    if "host key verification failed" in text or "no matching host key" in text:
        return (
            f"the SSH host key of {host} is not known on this machine (ssh: Host key verification failed); "
            f"connect once with `{_plain_ssh(target)}`, check the fingerprint and accept it, then run again"
        )
    if "remote host identification has changed" in text:
        return (
            f"the SSH host key of {host} has CHANGED since it was last seen; if that is expected, remove the old key "
            f"with `ssh-keygen -R {host}`, otherwise do not connect"
        )
    if "docker daemon" in text or "docker.sock" in text:
        return (
            f"no Docker engine answers on {host} ({last}); start it there (`sudo systemctl start docker`) and make "
            "sure your user there may use it (group `docker`)"
        )
    if "permission denied" in text:
        return (
            f"SSH refused the login to {host} ({last}); rasa-gpu logs in without prompting: load your key into the "
            "agent (`ssh-add`) or install it there (`ssh-copy-id`), as for `ssh` itself"
        )
    if code == 255 and any(
        needle in text
        for needle in ("could not resolve", "connection", "no route", "timed out", "unreachable")
    ):
        return (
            f"cannot reach {target} over SSH ({last}); check the host name, the port and that sshd runs there"
        )
    if code == 127 or "command not found" in text:
        return (
            f"{host} has no `docker` command; install Docker there (https://docs.docker.com/engine/install/)"
        )
    if code == 255:
        return f"ssh to {target} failed ({last}); try `{_plain_ssh(target)}` to see why"
    return f"`docker version` on {host} failed ({last}); try `{_plain_ssh(target)} docker version`"


def _plain_ssh(target: SshTarget) -> str:
    args = ["ssh"]
    if target.port:
        args += ["-p", str(target.port)]
    return " ".join([*args, f"{target.user}@{target.host}" if target.user else target.host])


class SshTunnel:
    """A private unix socket (in a 0700 folder) that behaves like the far engine's Docker socket. Its connections share
    one SSH login (OpenSSH's ControlMaster, its socket in the same folder): docker-py opens a connection for each
    attach, wait and copy, and a full SSH handshake for each cost seconds per training."""

    def __init__(self, target: SshTarget) -> None:
        self.target = target
        self._folder = Path(tempfile.mkdtemp(prefix="rasa-gpu-ssh-"))
        self.socket_path = self._folder / "docker.sock"
        self._control = self._folder / "ssh-control"
        self._listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._listener.bind(str(self.socket_path))
        self._listener.listen(16)
        self._children: list[subprocess.Popen[bytes]] = []
        self._log = (self._folder / "ssh.log").open("ab")
        self._closed = False
        threading.Thread(target=self._accept, name="rasa-gpu-ssh", daemon=True).start()

    @property
    def url(self) -> str:
        return f"unix://{self.socket_path}"

    def _accept(self) -> None:
        while not self._closed:
            try:
                connection, _ = self._listener.accept()
            except OSError:
                return
            try:
                child = subprocess.Popen(
                    self.target.command("docker", "system", "dial-stdio", control=self._control),
                    stdin=connection.fileno(),
                    stdout=connection.fileno(),
                    stderr=self._log,
                    start_new_session=True,  # a Ctrl+C must not cut the connections that clean up
                )
                self._children = [c for c in self._children if c.poll() is None] + [child]
            except OSError:
                pass
            finally:
                connection.close()  # ssh holds its own copy

    def close(self) -> None:
        """Stop accepting, end the ssh processes still running and remove the folder."""
        self._closed = True
        self._listener.close()
        for child in self._children:
            if child.poll() is None:
                child.terminate()
        for child in self._children:
            try:
                child.wait(timeout=5)
            except subprocess.TimeoutExpired:
                child.kill()
        if self._control.exists():  # end the shared login now rather than PERSIST seconds later
            with contextlib.suppress(OSError, subprocess.TimeoutExpired):
                subprocess.run(
                    self.target.end_shared_login(self._control),
                    stdin=subprocess.DEVNULL,
                    capture_output=True,
                    timeout=10,
                    start_new_session=True,
                )
        self._log.close()
        shutil.rmtree(self._folder, ignore_errors=True)

    def log_tail(self) -> str:
        try:
            lines = (self._folder / "ssh.log").read_text(errors="replace").splitlines()
        except OSError:
            return ""
        return lines[-1].strip() if lines else ""


def is_ssh(url: str | None) -> bool:
    return bool(url) and str(url).startswith("ssh://")

"""A throwaway PostgreSQL server for the pipeline test and the change-store tests: initdb +
pg_ctl in a temp directory; `pause()` and `resume()` stop it as a crash would and start it
again on the same port and data.

The server binaries come from Debian's ``postgresql`` package (``scripts/install_test_services.sh``
installs it), found under ``/usr/lib/postgresql/<version>/bin`` or on PATH. PostgreSQL
refuses to run as root, so when the test runs as root every server command runs as the
``postgres`` user the package creates (``runuser -u postgres``), in a directory it owns.
SQL goes through ``psql`` over TCP, so the test needs no Python driver.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

SERVER_TOOLS = ("initdb", "pg_ctl", "psql")


def find_server_bin() -> Path | None:
    """Directory holding initdb, pg_ctl and psql (newest Debian version first), or None."""
    candidates = sorted(
        glob.glob("/usr/lib/postgresql/*/bin"),
        key=lambda d: [int(p) if p.isdigit() else 0 for p in Path(d).parent.name.split(".")],
        reverse=True,
    )
    for directory in candidates:
        if all(os.access(Path(directory, tool), os.X_OK) for tool in SERVER_TOOLS):
            return Path(directory)
    found = [shutil.which(tool) for tool in SERVER_TOOLS]
    if all(found):
        return Path(os.path.realpath(found[0])).parent  # type: ignore[arg-type]
    return None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class PostgresServer:
    """``with PostgresServer(bin_dir) as pg: pg.psql("select 1")``; stopped and removed after."""

    bin_dir: Path
    database: str = "crm"
    user: str = "postgres"
    password: str = "pipeline-test-password"  # scram-sha-256 over TCP, like a real server
    port: int = 0
    root: Path | None = None
    # Fast and safe while the server is stopped cleanly. A test that stops it as a crash
    # would (`pause`) and expects committed transactions to survive needs
    # synchronous_commit on.
    synchronous_commit: bool = False

    def _as_server_user(self, cmd: list[str]) -> list[str]:
        if os.geteuid() != 0:
            return cmd
        runuser = shutil.which("runuser")
        if runuser:
            return [runuser, "-u", "postgres", "--", *cmd]
        return ["su", "postgres", "-s", "/bin/sh", "-c", " ".join(cmd)]

    def start(self) -> PostgresServer:
        # Not under pytest's tmp_path: its parents are private to root, and the server runs
        # as the postgres user.
        self.root = Path(tempfile.mkdtemp(prefix="pipeline-pg-"))
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres", "postgres")
        data = self.root / "data"
        pwfile = self.root / "pwfile"
        pwfile.write_text(self.password + "\n")
        if os.geteuid() == 0:
            shutil.chown(pwfile, "postgres", "postgres")
        subprocess.run(
            self._as_server_user(
                [
                    str(self.bin_dir / "initdb"),
                    "-D",
                    str(data),
                    "-U",
                    self.user,
                    "--pwfile",
                    str(pwfile),
                    "--auth-host=scram-sha-256",
                    "--auth-local=trust",
                    "-E",
                    "UTF8",
                    "--locale=C",
                    "--no-sync",
                ]
            ),
            check=True,
            capture_output=True,
            cwd=self.root,
        )
        self.port = free_port()
        self._start_server()
        self.psql(f"CREATE DATABASE {self.database}", database="postgres")
        return self

    def _pg_ctl(self, *args: str, check: bool) -> None:
        assert self.root is not None
        subprocess.run(
            self._as_server_user(
                [str(self.bin_dir / "pg_ctl"), "-D", str(self.root / "data"), *args]
            ),
            check=check,
            capture_output=True,
            cwd=self.root,
        )

    def _start_server(self) -> None:
        assert self.root is not None
        sync = "on" if self.synchronous_commit else "off"
        options = (
            f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 "
            f"-c fsync=off -c synchronous_commit={sync} -c full_page_writes=off"
        )
        log = str(self.root / "server.log")
        self._pg_ctl("-l", log, "-o", options, "-w", "-t", "60", "start", check=True)

    def pause(self) -> None:
        """Stop the server at once, as a crash would (``-m immediate``); the data stays
        (with ``synchronous_commit`` every committed transaction)."""
        self._pg_ctl("-m", "immediate", "-w", "stop", check=True)

    def resume(self) -> None:
        """Start the server again on the same port and data directory."""
        self._start_server()

    def stop(self) -> None:
        if self.root is None:
            return
        self._pg_ctl("-m", "immediate", "-w", "stop", check=False)
        shutil.rmtree(self.root, ignore_errors=True)
        self.root = None

    @property
    def url(self) -> str:
        """``postgresql://`` URL of the database, password included."""
        return self.url_for(self.database)

    def url_for(self, database: str) -> str:
        return f"postgresql://{self.user}:{self.password}@127.0.0.1:{self.port}/{database}"

    def __enter__(self) -> PostgresServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def server_log(self) -> str:
        path = self.root / "server.log" if self.root else None
        return path.read_text(errors="replace")[-4000:] if path and path.exists() else ""

    def psql(self, sql: str, *, stdin: str | None = None, database: str | None = None) -> str:
        """Run ``sql`` (several statements allowed; COPY ... FROM STDIN reads ``stdin``).

        Returns unaligned, tuples-only output: one row a line, columns separated by ``|``.
        """
        env = {**os.environ, "PGPASSWORD": self.password, "PGCONNECT_TIMEOUT": "10"}
        proc = subprocess.run(
            [
                str(self.bin_dir / "psql"),
                "-X",
                "-q",
                "-At",
                "-v",
                "ON_ERROR_STOP=1",
                "-h",
                "127.0.0.1",
                "-p",
                str(self.port),
                "-U",
                self.user,
                "-d",
                database or self.database,
                "-c",
                sql,
            ],
            input=stdin,
            text=True,
            capture_output=True,
            env=env,
            check=False,
        )
        if proc.returncode != 0:
            raise RuntimeError(
                f"psql failed ({proc.returncode}): {proc.stderr.strip()}\nSQL: {sql}"
            )
        return proc.stdout

    def rows(self, sql: str) -> list[list[str]]:
        return [line.split("|") for line in self.psql(sql).splitlines() if line]

    def copy_in(self, table: str, columns: list[str], rows: list[tuple]) -> None:
        """Bulk-load rows (tab-separated text format; None becomes NULL)."""

        def cell(value: object) -> str:
            if value is None:
                return r"\N"
            return str(value).replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n")

        data = "".join("\t".join(cell(v) for v in row) + "\n" for row in rows)
        self.psql(f"COPY {table} ({', '.join(columns)}) FROM STDIN", stdin=data)

"""`scm batch`'s and WorkerPool's Dask security options, as ``batch.fit`` receives them."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from scm_client.cli import batch, build_parser
from scm_client.pool import security_params


def test_tls_paths_go_to_the_worker_absolute_and_insecure_only_when_asked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert security_params(False, None, None, None) == {}
    assert security_params(True, None, None, None) == {"insecure": True}
    params = security_params(False, "ca.pem", Path("certs/client.pem"), "~/client.key")
    assert params == {"tls_ca_file": str(tmp_path / "ca.pem"), "tls_cert": str(tmp_path / "certs" / "client.pem"),
                      "tls_key": os.path.expanduser("~/client.key")}


def test_scm_batch_passes_its_security_options_and_refuses_them_without_a_scheduler(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = build_parser().parse_args(["batch", str(tmp_path), "--scheduler", "tls://h:8786", "--tls-ca-file",
                                      "ca.pem", "--tls-cert", "c.pem", "--tls-key", "c.key", "--insecure"])
    assert (args.tls_ca_file, args.tls_cert, args.tls_key, args.insecure) == (
        Path("ca.pem"), Path("c.pem"), Path("c.key"), True)
    for extra in (["--insecure"], ["--tls-cert", "c.pem"]):
        assert batch.run(build_parser().parse_args(["batch", str(tmp_path), *extra])) == 2
        assert "add --scheduler" in capsys.readouterr().err

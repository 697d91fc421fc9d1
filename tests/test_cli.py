"""The `cdp` command line, run in-process against the test database."""

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from app.cli import cli

runner = CliRunner()


@pytest.fixture
def cli_env(database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CDP_DATABASE_URL", database_url)


def run_json(*args: str) -> object:
    result = runner.invoke(cli, [*args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


@pytest.mark.usefixtures("cli_env")
class TestProjectsAndKeys:
    def test_project_and_key_lifecycle(self) -> None:
        created = run_json("projects", "create", "shop", "--region", "DE")
        assert isinstance(created, dict)
        assert created["project"]["default_phone_region"] == "DE"
        assert created["admin_key"]["key"].startswith("cdp_")

        listed = run_json("projects", "list")
        assert [p["name"] for p in listed] == ["shop"]  # type: ignore[attr-defined]

        key = run_json(
            "keys",
            "create",
            "--project",
            "shop",
            "--scope",
            "customers:read",
            "--scope",
            "customers:write",
            "--name",
            "crm",
            "--touchpoint",
            "crm-sync",
        )
        assert isinstance(key, dict)
        assert key["scopes"] == ["customers:read", "customers:write"]
        assert key["touchpoint"] == "crm-sync"

        keys = run_json("keys", "list", "--project", "shop")
        assert {k["name"] for k in keys} == {"admin", "crm"}  # type: ignore[attr-defined]

        revoked = run_json("keys", "revoke", key["id"], "--project", "shop")
        assert isinstance(revoked, dict)
        assert revoked["revoked_at"] is not None
        remaining = run_json("keys", "list", "--project", "shop")
        assert {k["name"] for k in remaining} == {"admin"}  # type: ignore[attr-defined]
        everything = run_json("keys", "list", "--project", "shop", "--all")
        assert len(everything) == 2  # type: ignore[arg-type]

    def test_human_output_shows_the_key_once(self) -> None:
        result = runner.invoke(cli, ["projects", "create", "plain"])
        assert result.exit_code == 0, result.output
        assert "cdp_" in result.output

    def test_duplicate_project_fails_with_a_message(self) -> None:
        run_json("projects", "create", "twice")
        result = runner.invoke(cli, ["projects", "create", "twice"])
        assert result.exit_code == 1
        assert "already exists" in result.output

    def test_key_for_unknown_project_fails(self) -> None:
        result = runner.invoke(cli, ["keys", "create", "--project", "ghost", "--scope", "admin"])
        assert result.exit_code == 1
        assert "No project named 'ghost'" in result.output

    def test_unknown_scope_is_refused(self) -> None:
        result = runner.invoke(cli, ["keys", "create", "--project", "x", "--scope", "root"])
        assert result.exit_code == 2

    def test_migrate_is_idempotent(self) -> None:
        result = runner.invoke(cli, ["migrate"])
        assert result.exit_code == 0, result.output


def test_openapi_command_writes_the_spec(tmp_path: Path) -> None:
    target = tmp_path / "spec.json"
    result = runner.invoke(cli, ["openapi", "--output", str(target)])
    assert result.exit_code == 0, result.output
    assert json.loads(target.read_text())["info"]["title"] == "CDP API"


@pytest.mark.parametrize(
    "command",
    [
        [],
        ["serve"],
        ["migrate"],
        ["openapi"],
        ["projects", "create"],
        ["projects", "list"],
        ["keys", "create"],
        ["keys", "list"],
        ["keys", "revoke"],
    ],
)
def test_every_command_has_help(command: list[str]) -> None:
    result = runner.invoke(cli, [*command, "--help"])
    assert result.exit_code == 0
    assert "Usage" in result.output


@pytest.mark.usefixtures("cli_env")
class TestImport:
    def test_a_file_is_imported_with_its_error_report(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("CDP_IMPORT_DIR", str(tmp_path / "imports"))
        run_json("projects", "create", "shop", "--region", "DE")
        source = tmp_path / "people.csv"
        source.write_text("Mail,Name\nann@example.com,Ann\nbroken,Bob\n030 1234567,Carl\n")
        report = tmp_path / "errors.csv"
        result = runner.invoke(
            cli,
            [
                "import",
                str(source),
                "--project",
                "shop",
                "--map",
                "Mail=email",
                "--map",
                "Name=first_name",
                "--errors",
                str(report),
                "--json",
            ],
        )
        assert result.exit_code == 0, result.output
        shown = json.loads(result.output)
        assert shown["status"] == "succeeded"
        assert shown["source_kind"] == "cli"
        assert shown["counts"]["created"] == 1
        assert shown["counts"]["failed"] == 2
        lines = report.read_text().splitlines()
        assert lines[0] == "row,column,message,original_row"
        assert [line.split(",")[0] for line in lines[1:]] == ["2", "3"]
        assert not list((tmp_path / "imports").iterdir())

    def test_a_file_the_project_cannot_read_exits_non_zero(self, tmp_path: Path) -> None:
        run_json("projects", "create", "shop")
        source = tmp_path / "people.csv"
        source.write_text("shoe_size\n42\n")
        result = runner.invoke(cli, ["import", str(source), "--project", "shop"])
        assert result.exit_code == 1
        assert "shoe_size" in result.output

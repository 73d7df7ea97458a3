"""`reconcile import airbyte` never writes a secret into the spec files, masked by Airbyte or not."""

from __future__ import annotations

from tests.helpers import Project

CANARY = "GOOG1E-Canary-Hmac-5"


def test_a_secret_airbyte_does_not_mask_is_imported_as_a_reference(project: Project) -> None:
    assert project.run("apply", "--env", "prod", "--auto-approve").exit_code == 0
    lake = next(d for d in project.prod.stored("destinations") if d["name"] == "lake")
    project.prod.edit("destinations", lake["destinationId"], {"configuration": {"hmac_key_access_id": CANARY}})
    env_file = project.root / "environments" / "prod.yaml"
    env_file.write_text(env_file.read_text().split("  sources:")[0])
    (project.root / ".reconciler" / "state" / "prod.json").unlink()
    (project.root / "specs" / "airbyte" / "destinations.yaml").unlink()
    (project.root / "specs" / "airbyte" / "connections.yaml").unlink()  # every spec file is validated: none dangles

    result = project.run("import", "airbyte", "--env", "prod")
    assert result.exit_code == 0, result.output
    imported = (project.root / "specs" / "airbyte" / "imported-prod.yaml").read_text()
    assert CANARY not in imported and CANARY not in result.output
    assert "hmac_key_access_id:\n      secretRef:\n        env: PROD_LAKE_HMAC_KEY_ACCESS_ID" in imported
    assert "PROD_LAKE_HMAC_KEY_ACCESS_ID" in result.output
    assert project.run("validate", "--env", "prod").exit_code == 0

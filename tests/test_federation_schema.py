"""Local anonymization as configured: `[federation] schema` gives the QIs, sensitive attribute and
hierarchies; each client reports what it achieved. Plus the COMPAS example config."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from fedlab.config import load_simulation_config
from fedlab.core.errors import ConfigError
from fedlab.data import load_federation
from fedlab.federation.anonymize import anonymize_federation
from tests.conftest import PROJECT_ROOT, shared_file


def _csv(path: Path) -> Path:
    rng = np.random.default_rng(0)
    lines = ["age,sex,region,job,hours,paid"]
    for i in range(400):
        region = ["north", "south", "east"][i % 3]
        job = ["clerk", "cook", "pilot", "nurse"][int(rng.integers(4))]
        paid = "yes" if rng.random() < 0.4 else "no"
        lines.append(
            f"{20 + int(rng.integers(45))},{'F' if i % 2 else 'M'},{region},{job},{30 + i % 20},{paid}"
        )
    path.write_text("\n".join(lines) + "\n")
    return path


SCHEMA = """
name = "people"
target = "paid"
positive_label = "yes"
quasi_identifiers = ["age", "job"]
sensitive = "sex"
protected = { sex = "M" }

[hierarchies.age]
widths = [5, 10, 20, 40]

[hierarchies.job]
file = "job.csv"
"""


def _config(tmp_path: Path, schema: str, spec: str = "k=5,l=2"):
    _csv(tmp_path / "people.csv")
    (tmp_path / "job.csv").write_text("clerk,office,*\nnurse,care,*\ncook,care,*\npilot,office,*\n")
    (tmp_path / "people.toml").write_text(schema)
    (tmp_path / "run.toml").write_text(
        '[federation]\nname = "tabular"\ncsv = "people.csv"\ndomain_column = "region"\n'
        'label_column = "paid"\npositive_label = "yes"\nprotected = ["sex:M"]\nschema = "people.toml"\n'
    )
    return load_simulation_config(
        tmp_path / "run.toml", {"federation.data_dir": str(tmp_path), "anonymize.spec": spec}
    )


def test_schema_gives_qis_sensitive_and_hierarchies_and_clients_report_what_they_achieved(tmp_path) -> None:
    cfg = _config(tmp_path, SCHEMA)
    assert cfg.federation.schema_file == str(tmp_path / "people.toml")  # relative to the config file
    fed = load_federation(cfg.federation)
    anon = anonymize_federation(fed, "", cfg)
    assert anon.qis == ["age", "job"]
    for report in (a.report for a in anon.anonymized):
        assert report["qis"] == ["age", "job"] and report["sensitive"] == "sex"
        assert report["k"] >= 5 and report["l"] >= 2 and 0 <= report["t"] <= 1
        assert 0 <= report["info_loss"] <= 1 and report["suppressed"] == report["rows"] - report["kept"]
    # the job hierarchy of the schema file is the one used: generalized values are its nodes
    released = set().union(*(set(a.table["job"]) for a in anon.anonymized))
    assert released <= {"clerk", "nurse", "cook", "pilot", "office", "care", "*"}


def test_schema_errors_are_one_line(tmp_path) -> None:
    no_job = SCHEMA.replace('["age", "job"]', '["age", "zip"]').replace(
        '[hierarchies.job]\nfile = "job.csv"\n', ""
    )
    cfg = _config(tmp_path, no_job)
    with pytest.raises(ConfigError, match=r"quasi-identifier 'zip' \(from .*people.toml\) is not a feature"):
        anonymize_federation(load_federation(cfg.federation), "", cfg)
    bad = SCHEMA.replace('file = "job.csv"', 'file = "job.csv"')
    cfg = _config(tmp_path, bad)
    (tmp_path / "job.csv").write_text("clerk,office,*\nnurse,care,*\n")
    with pytest.raises(ConfigError, match=r"hierarchy of 'job' has no leaf 'cook'"):
        anonymize_federation(load_federation(cfg.federation), "", cfg)


def test_compas_example_config_loads_by_age_category_with_its_schema() -> None:
    csv = shared_file("compas", "compas-scores-two-years.csv")
    cfg = load_simulation_config(
        PROJECT_ROOT / "docs" / "examples" / "compas_federation.toml",
        {"federation.data_dir": str(csv.parents[1]), "federation.max_per_domain": 300},
    )
    fed = load_federation(cfg.federation)
    assert set(fed.domain_names) == {"25 - 45", "Greater than 45", "Less than 25"}
    assert fed.protected == {"race": "Caucasian", "sex": "Female"} and fed.class_names == ["0", "1"]
    leaks = {"is_recid", "decile_score", "v_decile_score", "score_text", "two_year_recid", "age_cat"}
    assert not leaks & set(fed.feature_columns)
    anon = anonymize_federation(
        fed, "", cfg.model_copy(update={"anonymize": cfg.anonymize.model_copy(update={"spec": "k=10"})})
    )
    assert anon.qis == ["age", "sex", "race"] and all(a.report["k"] >= 10 for a in anon.anonymized)

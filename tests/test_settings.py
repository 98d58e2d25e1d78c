"""SPEC §2: settings from defaults, a file, the environment and the factory; clear errors."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path

import pytest
from flask import Flask

from scheduler_service.errors import ConfigError
from scheduler_service.settings import DEFAULTS, load_settings
from tests.support.credentials import ADMIN


def test_every_default_has_a_type_check() -> None:
    settings = load_settings(environ={})
    assert set(DEFAULTS) <= set(settings)
    assert settings["SCHEDULER_TIMEZONE"] == "UTC"
    assert settings["SCHEDULER_ALLOWED_MODULES"] == ["jobs"]


def test_environment_values_are_json_decoded() -> None:
    settings = load_settings(
        environ={
            "SCHEDULER_ALLOWED_HOSTS": '["a", "b"]',
            "SCHEDULER_START_PAUSED": "true",
            "SCHEDULER_DEV_MODE": "no",
            "SCHEDULER_ADMIN_PASSWORD": "12345678",  # stays text, though it parses as JSON
            "SCHEDULER_PORT": "tcp://10.0.0.1:80",  # Kubernetes' service variable: ignored
        }
    )
    assert settings["SCHEDULER_ALLOWED_HOSTS"] == ["a", "b"]
    assert settings["SCHEDULER_START_PAUSED"] is True
    assert settings["SCHEDULER_DEV_MODE"] is False
    assert settings["SCHEDULER_ADMIN_PASSWORD"] == "12345678"
    assert "SCHEDULER_PORT" not in settings


def test_order_defaults_file_env_overrides(tmp_path: Path) -> None:
    file = tmp_path / "settings.toml"
    file.write_text(
        'SCHEDULER_TIMEZONE = "Europe/Paris"\nSCHEDULER_API_PREFIX = "/file"\n'
        "SCHEDULER_MAX_PAGE_SIZE = 7\n"
    )
    settings = load_settings(
        {"SCHEDULER_API_PREFIX": "/override"},
        environ={"SCHEDULER_CONFIG_FILE": str(file), "SCHEDULER_TIMEZONE": "Asia/Tokyo"},
    )
    assert settings["SCHEDULER_MAX_PAGE_SIZE"] == 7  # from the file
    assert settings["SCHEDULER_TIMEZONE"] == "Asia/Tokyo"  # env beats file
    assert settings["SCHEDULER_API_PREFIX"] == "/override"  # factory beats env


@pytest.mark.parametrize("suffix", [".py", ".json"])
def test_python_and_json_config_files(tmp_path: Path, suffix: str) -> None:
    file = tmp_path / f"settings{suffix}"
    file.write_text(
        'SCHEDULER_TIMEZONE = "Europe/Berlin"\nJOBS = []\n'
        if suffix == ".py"
        else '{"SCHEDULER_TIMEZONE": "Europe/Berlin", "JOBS": []}'
    )
    settings = load_settings({"SCHEDULER_CONFIG_FILE": str(file)}, environ={})
    assert settings["SCHEDULER_TIMEZONE"] == "Europe/Berlin"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"SCHEDULER_JOBSTORE": "x"}, "SCHEDULER_JOBSTORE: unknown setting .*SCHEDULER_JOBSTORES"),
        ({"SCHEDULER_TIMEZONE": "Mars/Base"}, "SCHEDULER_TIMEZONE .*unknown IANA"),
        ({"SCHEDULER_START_PAUSED": "perhaps"}, "SCHEDULER_START_PAUSED has value 'perhaps'"),
        ({"SCHEDULER_API_PREFIX": "scheduler/"}, "SCHEDULER_API_PREFIX"),
        ({"SCHEDULER_ALLOWED_MODULES": []}, "SCHEDULER_ALLOWED_MODULES"),
        ({"SCHEDULER_STORE_TIMEOUT": 0}, "SCHEDULER_STORE_TIMEOUT"),
        ({"SCHEDULER_CONFIG_FILE": "/nonexistent.toml"}, "SCHEDULER_CONFIG_FILE: no such file"),
        ({"SCHEDULER_HEARTBEAT_INTERVAL": 0}, "SCHEDULER_HEARTBEAT_INTERVAL has value 0"),
        (
            {"SCHEDULER_JOB_HTTP_ALLOWED_NETWORKS": ["10.0.0.0/33"]},
            "SCHEDULER_JOB_HTTP_ALLOWED_NETWORKS has value .*not an IP network",
        ),
        (
            {"SCHEDULER_JOB_SECRETS": ["DB_*_PASSWORD"]},
            "SCHEDULER_JOB_SECRETS has value .*not an environment variable name",
        ),
        ({"SCHEDULER_JOB_FILE_ROOTS": [""]}, "SCHEDULER_JOB_FILE_ROOTS"),
        (
            {"SCHEDULER_HEARTBEAT_INTERVAL": 10, "SCHEDULER_HEARTBEAT_TIMEOUT": 15},
            "SCHEDULER_HEARTBEAT_TIMEOUT: must be at least twice SCHEDULER_HEARTBEAT_INTERVAL",
        ),
    ],
)
def test_bad_settings_name_the_key(overrides: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_settings(overrides, environ={})


def test_bad_password_value_is_not_echoed() -> None:
    with pytest.raises(ConfigError) as info:
        load_settings({"SCHEDULER_ADMIN_PASSWORD": ["s3cret-list"]}, environ={})
    assert "SCHEDULER_ADMIN_PASSWORD" in str(info.value)
    assert "s3cret" not in str(info.value)


def test_unparseable_config_file(tmp_path: Path) -> None:
    file = tmp_path / "bad.toml"
    file.write_text("SCHEDULER_TIMEZONE = \n")
    with pytest.raises(ConfigError, match="does not parse"):
        load_settings({"SCHEDULER_CONFIG_FILE": str(file)}, environ={})


def test_factory_can_be_called_many_times_with_one_dict(make_app: Callable[..., Flask]) -> None:
    stores = {
        "default": {"type": "memory"},
        "other": {"type": "sqlalchemy", "url": "sqlite:///:memory:"},
    }
    executors = {"default": {"type": "threadpool", "max_workers": 3}}
    before = (copy.deepcopy(stores), copy.deepcopy(executors))
    for _ in range(3):
        app = make_app(SCHEDULER_JOBSTORES=stores, SCHEDULER_EXECUTORS=executors)
        info = app.test_client().get("/scheduler", headers=ADMIN).get_json()
        assert [s["alias"] for s in info["jobstores"]] == ["default", "other"]
        assert info["executors"]["default"]["max_workers"] == 3
    assert (stores, executors) == before  # APScheduler popped nothing out of our dicts


def test_jobstore_url_replaces_the_default_store(
    make_app: Callable[..., Flask], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SCHEDULER_JOBSTORE_URL", "memory://")
    info = make_app().test_client().get("/scheduler", headers=ADMIN).get_json()
    assert info["jobstores"][0]["type"] == "memory"


def test_default_store_is_sqlite_in_the_instance_folder(app: Flask) -> None:
    info = app.test_client().get("/scheduler", headers=ADMIN).get_json()
    assert info["jobstores"][0]["type"] == "sqlalchemy"
    assert Path(app.instance_path, "jobs.sqlite").is_file()


@pytest.mark.parametrize(
    ("stores", "message"),
    [
        ({"default": {"type": "cassandra"}}, r"SCHEDULER_JOBSTORES\['default'\].*cassandra"),
        ({"default": "ftp://host/x"}, r"SCHEDULER_JOBSTORES\['default'\]"),
        (
            {"default": {"type": "sqlalchemy", "url": "sqlite:///x.db", "bogus": 1}},
            r"SCHEDULER_JOBSTORES\['default'\].*bogus",
        ),
    ],
)
def test_bad_store_names_the_store(
    make_app: Callable[..., Flask], stores: dict, message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        make_app(SCHEDULER_JOBSTORES=stores)


def test_unreachable_store_stops_start_up_without_secrets(make_app: Callable[..., Flask]) -> None:
    with pytest.raises(ConfigError) as info:
        make_app(
            SCHEDULER_JOBSTORE_URL="postgresql+psycopg://u:s3cret@127.0.0.1:1/db",
            SCHEDULER_STORE_TIMEOUT=2,
        )
    message = str(info.value)
    assert "default" in message and "unreachable" in message
    assert "s3cret" not in message
    assert "\n" not in message


@pytest.mark.parametrize(
    ("executors", "message"),
    [
        ({"default": {"type": "gpu"}}, r"SCHEDULER_EXECUTORS\['default'\]"),
        ({"default": {"type": "threadpool", "max_workers": 0}}, "max_workers"),
        ({"other": {"type": "threadpool"}}, "needs a 'default' executor"),
    ],
)
def test_bad_executor_names_it(
    make_app: Callable[..., Flask], executors: dict, message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        make_app(SCHEDULER_EXECUTORS=executors)


@pytest.mark.parametrize(
    ("variable", "hint"),
    [
        ("SCHEDULER_TIMEZON", "did you mean SCHEDULER_TIMEZONE?"),
        ("SCHEDULER_JOBSTORE_URI", "did you mean SCHEDULER_JOBSTORE_URL?"),
        ("SCHEDULER_PORT", ""),  # not Kubernetes' (its value is tcp://...): an operator's guess
    ],
)
def test_unknown_environment_variable_names_it(variable: str, hint: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(environ={variable: "8080" if variable == "SCHEDULER_PORT" else "UTC"})
    message = caught.value.message
    assert message.startswith(f"{variable}: unknown setting in the environment"), message
    assert hint in message
    assert "\n" not in message


def test_kubernetes_service_links_are_not_settings() -> None:
    links = {
        "SCHEDULER_SERVICE_HOST": "10.0.0.1",
        "SCHEDULER_SERVICE_PORT": "80",
        "SCHEDULER_SERVICE_PORT_HTTP": "80",
        "SCHEDULER_PORT": "tcp://10.0.0.1:80",
        "SCHEDULER_PORT_80_TCP": "tcp://10.0.0.1:80",
        "SCHEDULER_PORT_80_TCP_ADDR": "10.0.0.1",
        "SCHEDULER_PORT_80_TCP_PORT": "80",
        "SCHEDULER_PORT_80_TCP_PROTO": "tcp",
        "SCHEDULER_SERVICE_SERVICE_HOST": "fd00::1",  # a Service named scheduler-service
        "SCHEDULER_SERVICE_PORT_8080_TCP": "tcp://[fd00::1]:8080",
    }
    settings = load_settings(environ=links)
    assert not set(links) & set(settings)
    with pytest.raises(ConfigError, match="SCHEDULER_SERVICE_HOST: unknown setting"):
        load_settings(environ={**links, "SCHEDULER_SERVICE_HOST": "not-an-address"})


def test_one_job_file_root_may_be_given_as_a_plain_string() -> None:
    settings = load_settings(environ={"SCHEDULER_JOB_FILE_ROOTS": "/srv/job-files"})
    assert settings["SCHEDULER_JOB_FILE_ROOTS"] == ["/srv/job-files"]
    settings = load_settings(environ={"SCHEDULER_JOB_FILE_ROOTS": '["/a", "/b"]'})
    assert settings["SCHEDULER_JOB_FILE_ROOTS"] == ["/a", "/b"]

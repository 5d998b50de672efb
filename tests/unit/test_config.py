"""Client settings: arguments, AGENTMETER_* variables, and which one wins."""

from __future__ import annotations

from decimal import Decimal

import pytest

from agentmeter import AgentMeterClient, AgentMeterConfig, AgentMeterValidationError
from agentmeter.config import DEFAULT_BASE_URL
from agentmeter.transport.http import HttpTransport

API_KEY = "sk-config-5e4d3c2b1a"
BASE_URL = "http://meter.test"
ENV = {
    "AGENTMETER_API_KEY": API_KEY,
    "AGENTMETER_BASE_URL": BASE_URL,
    "AGENTMETER_PROJECT_ID": "proj_env",
    "AGENTMETER_AGENT_ID": "agent_env",
    "AGENTMETER_USER_ID": "user_env",
}


@pytest.fixture
def environment(monkeypatch):
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)


def test_a_client_without_arguments_reads_the_environment(environment):
    client = AgentMeterClient()

    assert client.config.api_key_value == API_KEY
    assert (client.base_url, client.project_id, client.agent_id, client.user_id) == (
        BASE_URL,
        "proj_env",
        "agent_env",
        "user_env",
    )
    assert isinstance(client.transport, HttpTransport)


def test_timeout_and_retry_attempts_come_from_the_environment(environment, monkeypatch):
    monkeypatch.setenv("AGENTMETER_TIMEOUT", "2.5")
    monkeypatch.setenv("AGENTMETER_RETRY_ATTEMPTS", "7")

    client = AgentMeterClient()

    assert (client.config.timeout, client.config.retry_attempts) == (2.5, 7)
    assert client.transport.retry.max_attempts == 8
    assert client.transport._timeouts == (5.0, 2.5)


def test_explicit_arguments_win_over_the_environment(environment):
    client = AgentMeterClient(
        api_key="sk-explicit",
        project_id="proj_arg",
        agent_id="agent_arg",
        user_id="user_arg",
        base_url="http://other.test",
        timeout=3,
    )

    assert client.config.api_key_value == "sk-explicit"
    assert (client.base_url, client.project_id, client.agent_id, client.user_id) == (
        "http://other.test",
        "proj_arg",
        "agent_arg",
        "user_arg",
    )
    assert client.config.timeout == 3.0


def test_arguments_given_as_none_fall_back_to_the_environment(environment):
    client = AgentMeterClient(project_id=None, user_id="user_arg")
    assert (client.project_id, client.user_id) == ("proj_env", "user_arg")


def test_empty_variables_count_as_unset(monkeypatch):
    monkeypatch.setenv("AGENTMETER_BASE_URL", BASE_URL)
    monkeypatch.setenv("AGENTMETER_PROJECT_ID", "")

    assert AgentMeterClient().project_id is None


def test_from_env_reads_a_given_mapping():
    config = AgentMeterConfig.from_env({"AGENTMETER_PROJECT_ID": "p", "OTHER": "x"}, agent_id="a")
    assert (config.project_id, config.agent_id, config.api_key) == ("p", "a", None)


def test_a_client_can_be_rebuilt_from_its_config_dump():
    config = AgentMeterConfig(
        api_key=API_KEY,
        base_url=BASE_URL,
        project_id="proj_1",
        agent_id="agent_1",
        timeout=4,
        retry_attempts=1,
        input_token_price="0.00001",
    )

    client = AgentMeterClient(**config.model_dump())

    assert client.config == config
    assert client.config.api_key_value == API_KEY
    assert client.transport._session.headers["Authorization"] == f"Bearer {API_KEY}"
    assert client.transport.retry.max_attempts == 2


def test_defaults():
    config = AgentMeterConfig()

    assert config.api_key is None
    assert config.base_url is None
    assert (config.timeout, config.connect_timeout) == (10.0, 5.0)
    assert (config.retry_attempts, config.retry_deadline, config.max_retry_wait) == (3, 30.0, 30.0)
    assert config.batch_size == 500
    assert config.api_request_unit_price == Decimal("0.001")
    assert config.input_token_price == Decimal("0.000004")
    assert config.output_token_price == Decimal("0.000001")


def test_a_key_without_a_url_goes_to_the_hosted_service():
    client = AgentMeterClient(api_key=API_KEY)

    assert isinstance(client.transport, HttpTransport)
    assert client.base_url == DEFAULT_BASE_URL


def test_the_base_url_loses_its_trailing_slashes():
    assert AgentMeterConfig(base_url="http://meter.test//").base_url == "http://meter.test"


def test_retry_settings_reach_the_policy():
    client = AgentMeterClient(
        base_url=BASE_URL, retry_attempts=5, retry_deadline=12, max_retry_wait=4
    )
    policy = client.transport.retry
    assert (policy.max_attempts, policy.deadline, policy.max_wait) == (6, 12.0, 4.0)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("timeout", 0),
        ("timeout", -1),
        ("timeout", 601),
        ("timeout", "soon"),
        ("connect_timeout", 0),
        ("retry_attempts", -1),
        ("retry_attempts", 21),
        ("retry_attempts", 1.5),
        ("retry_deadline", 0),
        ("max_retry_wait", -1),
        ("batch_size", 0),
        ("batch_size", 1001),
        ("api_request_unit_price", "-0.001"),
        ("input_token_price", float("nan")),
        ("output_token_price", "free"),
    ],
)
def test_invalid_settings_raise_naming_the_field(field, value):
    with pytest.raises(AgentMeterValidationError) as raised:
        AgentMeterClient(base_url=BASE_URL, **{field: value})
    assert raised.value.field == field
    assert field in str(raised.value)


@pytest.mark.parametrize(
    ("variable", "field"),
    [("AGENTMETER_TIMEOUT", "timeout"), ("AGENTMETER_RETRY_ATTEMPTS", "retry_attempts")],
)
def test_invalid_variables_raise_naming_the_field(monkeypatch, variable, field):
    monkeypatch.setenv("AGENTMETER_BASE_URL", BASE_URL)
    monkeypatch.setenv(variable, "lots")

    with pytest.raises(AgentMeterValidationError) as raised:
        AgentMeterClient()
    assert raised.value.field == field


@pytest.mark.filterwarnings("error")
def test_config_dict_of_the_0_2_readme_works_without_a_warning():
    """``AgentMeterClient(**config.dict())``, as the 0.2 README shows (issue 11, item 16)."""
    config = AgentMeterConfig(
        project_id="proj_123",
        api_key="your_api_key",
        base_url=BASE_URL,
        api_request_unit_price=0.001,
        input_token_price=0.000004,
    )
    settings = config.dict()
    assert settings == config.model_dump()
    assert settings["api_key"].get_secret_value() == "your_api_key"
    assert "your_api_key" not in repr(settings)
    with AgentMeterClient(**settings) as client:
        assert client.project_id == "proj_123"
        assert client.base_url == BASE_URL


def test_an_unknown_keyword_raises_as_the_docs_say():
    with pytest.raises(AgentMeterValidationError) as raised:
        AgentMeterClient(base_url=BASE_URL, timeuot=5)
    assert raised.value.field == "timeuot"

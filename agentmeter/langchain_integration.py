"""The 0.2 SDK's import path for the LangChain callback: :mod:`agentmeter.integrations.langchain`.

``from agentmeter.langchain_integration import LangChainAgentMeterCallback``
keeps working (it needs the ``langchain`` extra); new code imports from
:mod:`agentmeter.integrations.langchain`.
"""

from .integrations.langchain import LangChainAgentMeterCallback, meter_langchain, read_usage

__all__ = ["LangChainAgentMeterCallback", "meter_langchain", "read_usage"]

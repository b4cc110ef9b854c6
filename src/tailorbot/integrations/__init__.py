"""Adapters that plug tailorbot into chatbots it does not control.

* :mod:`~tailorbot.integrations.rasa`: Rasa tracker events (event broker or HTTP) to
  tailorbot events and profile attributes.
* :mod:`~tailorbot.integrations.nlg`: Rasa's NLG-server request and response.
* :mod:`~tailorbot.integrations.chatwoot`: Chatwoot Agent Bot webhooks (signature check,
  payload to actions) and :mod:`~tailorbot.integrations.chatwoot_client`, the outbound
  client that replies and hands over off the request path.
* :mod:`~tailorbot.integrations.openai_tools`: function-calling tool definitions for LLM bots.

Each module only translates and transports; the decisions stay in the decision service.
"""

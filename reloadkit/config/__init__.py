"""Configuration: the options, the environment, ``[tool.reloadkit]``, env files."""

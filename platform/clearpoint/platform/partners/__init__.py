"""Partners and operators, and the API keys they call with."""

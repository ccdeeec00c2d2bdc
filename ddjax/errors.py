"""The error every layer raises for input it cannot take: one line naming the value and what is allowed."""


class ConfigError(ValueError):
    """A bad config value (or data that cannot be had for it); the message is one line naming the value and what
    is allowed. The CLI prints it and exits with code 2."""

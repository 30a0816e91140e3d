"""On-premise predictive dialer and call-center controller for Asterisk."""

__version__ = "0.1.0"

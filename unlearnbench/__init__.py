"""unlearnbench: a config-driven benchmark CLI for machine unlearning."""

__version__ = "0.1.0"

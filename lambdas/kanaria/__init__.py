"""Kanaria: experiments and canary rollouts for LLM chatbot configurations."""

__version__ = "0.1.0"

"""tailorbot: real-time personalization for customer-support chatbots."""

__version__ = "0.1.0"

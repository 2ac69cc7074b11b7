"""The transport-free engine: messages in, replies out."""

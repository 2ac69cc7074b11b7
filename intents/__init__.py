"""Understanding and intent handlers: transport-free, never imports telegram."""

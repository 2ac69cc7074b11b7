"""`python -m bot …`: one parser, one error guard, one way to open the store."""

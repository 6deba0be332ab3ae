"""The store-side scanner agent."""

"""The API's pydantic models, one per table."""

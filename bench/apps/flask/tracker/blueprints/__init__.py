"""The tracker's blueprints: web pages, projects, issues, users and the JSON API."""

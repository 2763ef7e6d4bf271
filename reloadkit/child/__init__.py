"""What runs inside the user's server process: standard library only, cheap to import."""

"""`cachefix mounts`: the cache map of a project's Dockerfiles, and carrying those caches between CI runs."""

"""Amazon ECR: repositories (and, with the registry, images, lifecycle, scanning config)."""

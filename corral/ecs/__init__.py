"""ECS: task definitions, clusters, the local container instance, tasks and the task agent."""

"""AWS wire layer: service models, protocols, SigV4, errors, request context, ARNs."""
